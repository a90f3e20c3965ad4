/* Row-wise ops on the tape, all over the last axis: softmax, log-softmax, the straight-through
 * argmax (hard attention: a one-hot forward, the softmax's backward), cross-entropy with
 * ignore_index and label smoothing, layer normalisation, and dropout. Thin adapters: the math
 * is nn/'s (nn/nn_internal.h), run here over fixed blocks of rows in parallel; per-block
 * partial sums (losses, layernorm's parameter gradients) are added in block order, so results
 * do not depend on the thread count. Letters: R rows (leading dimensions flattened), C the
 * last axis. */
#include <math.h>
#include <string.h>

#include "autograd/ag.h"
#include "nn/nn_internal.h"

/* ---- softmax, log-softmax -------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    int log;
    int64_t R, C;
} smax_entry;

typedef struct {
    float *y, *dx;
    const float *x, *dy;
    int64_t C;
    int log, fresh;
} smax_ctx;

static void smax_fwd_range(void *c, int64_t r0, int64_t r1) {
    smax_ctx *s = c;
    attn__softmax_forward(s->y + r0 * s->C, s->x + r0 * s->C, r1 - r0, s->C, s->log);
}

static void smax_bwd_range(void *c, int64_t r0, int64_t r1) {
    smax_ctx *s = c;
    attn__softmax_backward(s->dx + r0 * s->C, s->y + r0 * s->C, s->dy + r0 * s->C, r1 - r0, s->C, s->log, !s->fresh);
}

static void smax_backward(attn_graph *g, ag_entry *base) {
    smax_entry *e = (smax_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    smax_ctx c = {e->e.out->data, dx, e->x->data, ag_dy(e->e.out), e->C, e->log, fresh};
    ag_parallel_for(e->R, ag_block(e->C * 8), smax_bwd_range, &c);
}

static attn_var *softmax_op(attn_graph *g, const char *name, attn_var *x, int log) {
    if (!ag_ok1(g, name, x)) return NULL;
    if (x->ndim < 1) return ag_fail(g, ATTN_ESHAPE, "%s: needs at least one dimension", name);
    int64_t C = x->shape[x->ndim - 1], R = x->numel / C;
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad);
    if (!y) return NULL;
    smax_ctx c = {y->data, NULL, x->data, NULL, C, log, 0};
    ag_parallel_for(R, ag_block(C * 24), smax_fwd_range, &c);
    if (y->requires_grad) {
        smax_entry *e = ag_record(g, sizeof *e, smax_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->log = log, e->R = R, e->C = C;
    }
    return y;
}

attn_var *attn_ag_softmax(attn_graph *g, attn_var *x) { return softmax_op(g, "attn_ag_softmax", x, 0); }
attn_var *attn_ag_log_softmax(attn_graph *g, attn_var *x) { return softmax_op(g, "attn_ag_log_softmax", x, 1); }

/* ---- straight-through argmax ----------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    float *p; /* (R, C) softmax(x), what the backward differentiates */
    int64_t R, C;
} hard_entry;

/* dx = softmax'(x)^T dy with the softmax p kept by the forward: the softmax backward above,
 * run on p instead of the forward's output. */
static void hard_backward(attn_graph *g, ag_entry *base) {
    hard_entry *e = (hard_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    smax_ctx c = {e->p, dx, e->x->data, ag_dy(e->e.out), e->C, 0, fresh};
    ag_parallel_for(e->R, ag_block(e->C * 8), smax_bwd_range, &c);
}

attn_var *attn_ag_hard_softmax(attn_graph *g, attn_var *x) {
    const char *name = "attn_ag_hard_softmax";
    if (!ag_ok1(g, name, x)) return NULL;
    if (x->ndim < 1) return ag_fail(g, ATTN_ESHAPE, "%s: needs at least one dimension", name);
    int64_t C = x->shape[x->ndim - 1], R = x->numel / C;
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad);
    if (!y) return NULL;
    for (int64_t r = 0; r < R; r++) { /* y = onehot(argmax x): the forward */
        const float *xr = x->data + r * C;
        float *yr = y->data + r * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++) best = xr[c] > xr[best] ? c : best;
        for (int64_t c = 0; c < C; c++) yr[c] = c == best ? 1.0f : 0.0f;
    }
    if (y->requires_grad) {
        float *p = ag_floats(g, x->numel);
        hard_entry *e = p ? ag_record(g, sizeof *e, hard_backward, y, NULL) : NULL;
        if (!e) return NULL;
        smax_ctx c = {p, NULL, x->data, NULL, C, 0, 0};
        ag_parallel_for(R, ag_block(C * 24), smax_fwd_range, &c);
        e->x = x, e->p = p, e->R = R, e->C = C;
    }
    return y;
}

/* ---- cross-entropy --------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    int32_t *t;
    float *lse;   /* (R) */
    int64_t R, C, count;
    int ignore;
    float eps;
} ce_entry;

typedef struct {
    const float *x;
    const int32_t *t;
    float *lse, *dx;
    double *part; /* per block: loss sum */
    int64_t C, block;
    int ignore, fresh;
    float eps, scale;
} ce_ctx;

static void ce_fwd_range(void *c, int64_t r0, int64_t r1) {
    ce_ctx *s = c;
    s->part[r0 / s->block] = attn__cross_entropy_forward(NULL, s->lse + r0, s->x + r0 * s->C, s->t + r0, NULL, r1 - r0,
                                                         s->C, s->ignore, s->eps);
}

static void ce_bwd_range(void *c, int64_t r0, int64_t r1) {
    ce_ctx *s = c;
    attn__cross_entropy_backward(s->dx + r0 * s->C, s->x + r0 * s->C, s->lse + r0, s->t + r0, NULL, NULL, s->scale,
                                 r1 - r0, s->C, s->ignore, s->eps, !s->fresh);
}

static void ce_backward(attn_graph *g, ag_entry *base) {
    ce_entry *e = (ce_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    float dl = ag_dy(e->e.out)[0];
    ce_ctx c = {e->x->data, e->t, e->lse, dx, NULL, e->C, 0, e->ignore, fresh, e->eps,
                e->count ? (float)(dl / (double)e->count) : 0.0f};
    ag_parallel_for(e->R, ag_block(e->C * 24), ce_bwd_range, &c);
}

attn_var *attn_ag_cross_entropy(attn_graph *g, attn_var *logits, const int32_t *targets, int ignore_index, float label_smoothing) {
    if (!ag_ok1(g, "attn_ag_cross_entropy", logits)) return NULL;
    if (!targets) return ag_fail(g, ATTN_EINVAL, "attn_ag_cross_entropy: NULL targets");
    if (logits->ndim < 1) return ag_fail(g, ATTN_ESHAPE, "attn_ag_cross_entropy: logits need a class axis");
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        return ag_fail(g, ATTN_EINVAL, "attn_ag_cross_entropy: label smoothing %g is outside [0, 1]", (double)label_smoothing);
    int64_t C = logits->shape[logits->ndim - 1], R = logits->numel / C, count = 0;
    for (int64_t r = 0; r < R; r++) {
        if (targets[r] == ignore_index) continue;
        if (targets[r] < 0 || targets[r] >= C)
            return ag_fail(g, ATTN_EINVAL, "attn_ag_cross_entropy: target %d at row %lld is outside [0, %lld)", (int)targets[r],
                           (long long)r, (long long)C);
        count++;
    }
    attn_var *y = ag_new(g, 0, NULL, logits->requires_grad);
    if (!y) return NULL;
    int64_t block = ag_block(C * 24), nblk = (R + block - 1) / block;
    float *lse = ag_floats(g, R);
    double *part = ag_alloc(g, (size_t)nblk * sizeof(double));
    if (!lse || !part) return NULL;
    ce_ctx c = {logits->data, targets, lse, NULL, part, C, block, ignore_index, 0, label_smoothing, 0.0f};
    ag_parallel_for(R, block, ce_fwd_range, &c);
    double total = 0.0;
    for (int64_t b = 0; b < nblk; b++) total += part[b];
    y->data[0] = count ? (float)(total / (double)count) : 0.0f;
    if (y->requires_grad) {
        ce_entry *e = ag_record(g, sizeof *e, ce_backward, y, NULL);
        if (!e) return NULL;
        e->t = ag_alloc(g, (size_t)R * sizeof(int32_t));
        if (!e->t) return NULL;
        memcpy(e->t, targets, (size_t)R * sizeof(int32_t));
        e->x = logits, e->lse = lse, e->R = R, e->C = C, e->count = count;
        e->ignore = ignore_index, e->eps = label_smoothing;
    }
    return y;
}

/* ---- layer normalisation --------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x, *gamma, *beta;
    float *mean, *rstd; /* (R) */
    int64_t R, C;
} ln_entry;

typedef struct {
    const float *x, *gamma, *beta, *dy;
    float *y, *mean, *rstd, *dx;
    float *pg, *pb; /* per block partial dgamma, dbeta (nblk, C) */
    int64_t C, block;
    float eps;
    int fresh;
} ln_ctx;

static void ln_fwd_range(void *c, int64_t r0, int64_t r1) {
    ln_ctx *s = c;
    attn__layernorm_forward(s->y + r0 * s->C, s->mean + r0, s->rstd + r0, s->x + r0 * s->C, s->gamma, s->beta, r1 - r0,
                            s->C, s->eps);
}

/* Each block adds its rows' parameter gradients into its own zeroed partial sums. */
static void ln_bwd_range(void *c, int64_t r0, int64_t r1) {
    ln_ctx *s = c;
    int64_t C = s->C, blk = r0 / s->block;
    float *pg = s->pg ? s->pg + blk * C : NULL, *pb = s->pb ? s->pb + blk * C : NULL;
    if (pg) memset(pg, 0, (size_t)C * sizeof(float));
    if (pb) memset(pb, 0, (size_t)C * sizeof(float));
    attn__layernorm_backward(s->dx ? s->dx + r0 * C : NULL, pg, pb, s->dy + r0 * C, s->x + r0 * C, s->gamma,
                             s->mean + r0, s->rstd + r0, r1 - r0, C, !s->fresh);
}

static void ln_backward(attn_graph *g, ag_entry *base) {
    ln_entry *e = (ln_entry *)base;
    int64_t R = e->R, C = e->C, block = ag_block(C * 16), nblk = (R + block - 1) / block;
    int wantg = e->gamma && e->gamma->requires_grad, wantb = e->beta && e->beta->requires_grad;
    ln_ctx c = {e->x->data, e->gamma ? e->gamma->data : NULL, NULL, ag_dy(e->e.out), NULL, e->mean, e->rstd, NULL, NULL, NULL,
                C, block, 0.0f, 0};
    if (e->x->requires_grad && !(c.dx = ag_grad(g, e->x, &c.fresh))) return;
    if (wantg && !(c.pg = ag_floats(g, nblk * C))) return;
    if (wantb && !(c.pb = ag_floats(g, nblk * C))) return;
    ag_parallel_for(R, block, ln_bwd_range, &c);
    for (int k = 0; k < 2; k++) {
        attn_var *p = k ? e->beta : e->gamma;
        const float *part = k ? c.pb : c.pg;
        if (!part) continue;
        int fresh;
        float *dp = ag_grad(g, p, &fresh);
        if (!dp) return;
        for (int64_t j = 0; j < C; j++) {
            float s = 0.0f;
            for (int64_t b = 0; b < nblk; b++) s += part[b * C + j];
            dp[j] = fresh ? s : dp[j] + s;
        }
    }
}

attn_var *attn_ag_layernorm(attn_graph *g, attn_var *x, attn_var *gamma, attn_var *beta, float eps) {
    if (!ag_ok1(g, "attn_ag_layernorm", x)) return NULL;
    if (x->ndim < 1) return ag_fail(g, ATTN_ESHAPE, "attn_ag_layernorm: needs at least one dimension");
    int64_t C = x->shape[x->ndim - 1], R = x->numel / C;
    for (int k = 0; k < 2; k++) {
        attn_var *p = k ? beta : gamma;
        if (p && (p->ndim != 1 || p->numel != C)) {
            char s1[64];
            return ag_fail(g, ATTN_ESHAPE, "attn_ag_layernorm: %s %s, expected (%lld)", k ? "beta" : "gamma", ag_shape_str(p, s1, sizeof s1), (long long)C);
        }
    }
    if (!(eps >= 0.0f)) return ag_fail(g, ATTN_EINVAL, "attn_ag_layernorm: eps %g", (double)eps);
    int rg = x->requires_grad || (gamma && gamma->requires_grad) || (beta && beta->requires_grad);
    attn_var *y = ag_new(g, x->ndim, x->shape, rg);
    if (!y) return NULL;
    float *mean = ag_floats(g, R), *rstd = ag_floats(g, R);
    if (!mean || !rstd) return NULL;
    ln_ctx c = {x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, NULL, y->data, mean, rstd, NULL, NULL, NULL,
                C, 0, eps, 0};
    ag_parallel_for(R, ag_block(C * 8), ln_fwd_range, &c);
    if (y->requires_grad) {
        ln_entry *e = ag_record(g, sizeof *e, ln_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->gamma = gamma, e->beta = beta, e->mean = mean, e->rstd = rstd, e->R = R, e->C = C;
    }
    return y;
}

/* ---- dropout --------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    uint8_t *mask;
    float p;
} drop_entry;

static void drop_backward(attn_graph *g, ag_entry *base) {
    drop_entry *e = (drop_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    attn__dropout_backward(dx, ag_dy(e->e.out), e->mask, e->x->numel, e->p, !fresh);
}

attn_var *attn_ag_dropout(attn_graph *g, attn_var *x, float p) {
    if (!ag_ok1(g, "attn_ag_dropout", x)) return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) return ag_fail(g, ATTN_EINVAL, "attn_ag_dropout: p = %g is outside [0, 1]", (double)p);
    if (!g->training || p == 0.0f) return x;
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad);
    uint8_t *mask = ag_alloc(g, (size_t)x->numel);
    if (!y || !mask) return NULL;
    attn__dropout_forward(y->data, mask, x->data, x->numel, p, &g->rng);
    if (y->requires_grad) {
        drop_entry *e = ag_record(g, sizeof *e, drop_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->mask = mask, e->p = p;
    }
    return y;
}
