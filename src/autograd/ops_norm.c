/* Row-wise ops on the tape, all over the last axis (rows in parallel, in fixed blocks):
 * softmax, log-softmax, cross-entropy with ignore_index and label smoothing (keeps only the
 * log-sum-exp per row for its backward, not the (R, C) probabilities), layer normalisation,
 * and dropout. Sums accumulate in double; per-block partial sums (losses, layernorm's
 * parameter gradients) are added in block order, so results do not depend on threads.
 * Letters: R rows (leading dimensions flattened), C the last axis. */
#include <math.h>
#include <string.h>

#include "autograd/ag.h"

#define CHUNK 512 /* columns per pass: exponentials go to a stack buffer, then are summed */

/* Row reductions in forms GCC vectorises without -ffast-math: eight independent lanes
 * (elementwise updates of small arrays), combined in a fixed order at the end. */

static inline uint32_t fkey(float x) { /* unsigned order key: monotonic in x, NaNs outside */
    uint32_t b;
    memcpy(&b, &x, 4);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* The row's maximum, or NaN if the row holds a NaN (which then reaches the results). */
static float row_max(const float *x, int64_t C) {
    uint32_t mx[8] = {0}, mn[8] = {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u}, a = 0, b = ~0u;
    int64_t j = 0;
    for (; j + 8 <= C; j += 8)
        for (int k = 0; k < 8; k++) {
            uint32_t key = fkey(x[j + k]);
            mx[k] = key > mx[k] ? key : mx[k];
            mn[k] = key < mn[k] ? key : mn[k];
        }
    for (int k = 0; k < 8; k++) a = mx[k] > a ? mx[k] : a, b = mn[k] < b ? mn[k] : b;
    for (; j < C; j++) {
        uint32_t key = fkey(x[j]);
        a = key > a ? key : a, b = key < b ? key : b;
    }
    if (a > 0xff800000u || b < 0x007fffffu) return NAN; /* beyond +inf or -inf: a NaN */
    uint32_t bits = (a & 0x80000000u) ? (a & 0x7fffffffu) : ~a;
    float m;
    memcpy(&m, &bits, 4);
    return m;
}

/* sum_j x[j] (and sum_j x[j] y[j]) in double. */
static double sum_f64(const float *x, int64_t n) {
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[j + k];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++) s += x[j];
    return s;
}

static double dot_f64(const float *x, const float *y, int64_t n) {
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)x[j + k] * y[j + k];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++) s += (double)x[j] * y[j];
    return s;
}

/* sum_j exp(x[j] - mx) in double; y, if not NULL, receives the exponentials. */
static double sum_exp(const float *x, float mx, int64_t C, float *y) {
    float buf[CHUNK];
    double s = 0.0;
    for (int64_t j0 = 0; j0 < C; j0 += CHUNK) {
        int64_t n = C - j0 < CHUNK ? C - j0 : CHUNK;
        float *e = y ? y + j0 : buf;
        const float *xs = x + j0;
        for (int64_t j = 0; j < n; j++) e[j] = ag_expf(xs[j] - mx);
        s += sum_f64(e, n);
    }
    return s;
}

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
    int64_t C = s->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = s->x + r * C;
        float *y = s->y + r * C;
        float mx = row_max(x, C);
        if (mx != mx) { /* a NaN in the row */
            for (int64_t j = 0; j < C; j++) y[j] = NAN;
            continue;
        }
        if (mx == -INFINITY) { /* every entry -inf */
            for (int64_t j = 0; j < C; j++) y[j] = s->log ? -INFINITY : 0.0f;
            continue;
        }
        if (s->log) {
            float lse = mx + (float)log(sum_exp(x, mx, C, NULL));
            for (int64_t j = 0; j < C; j++) y[j] = x[j] - lse;
        } else {
            float inv = (float)(1.0 / sum_exp(x, mx, C, y));
            for (int64_t j = 0; j < C; j++) y[j] *= inv;
        }
    }
}

static void smax_bwd_range(void *c, int64_t r0, int64_t r1) {
    smax_ctx *s = c;
    int64_t C = s->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *y = s->y + r * C, *dy = s->dy + r * C;
        float *dx = s->dx + r * C;
        double dot = 0.0;
        if (s->log) {
            /* y = x - lse: dx = dy - exp(y) * sum(dy) */
            dot = sum_f64(dy, C);
            float sd = (float)dot;
            if (s->fresh)
                for (int64_t j = 0; j < C; j++) dx[j] = dy[j] - ag_expf(y[j]) * sd;
            else
                for (int64_t j = 0; j < C; j++) dx[j] += dy[j] - ag_expf(y[j]) * sd;
        } else {
            /* y = softmax(x): dx = y * (dy - sum(dy * y)) */
            dot = dot_f64(dy, y, C);
            float sd = (float)dot;
            if (s->fresh)
                for (int64_t j = 0; j < C; j++) dx[j] = y[j] * (dy[j] - sd);
            else
                for (int64_t j = 0; j < C; j++) dx[j] += y[j] * (dy[j] - sd);
        }
    }
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
    int64_t C = s->C;
    double acc = 0.0;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = s->x + r * C;
        float mx = row_max(x, C);
        double lse = mx != mx ? (double)NAN : mx + log(sum_exp(x, mx, C, NULL));
        s->lse[r] = (float)lse;
        if (s->t[r] == s->ignore) continue;
        /* (1 - eps) * (lse - x_y) + eps * (lse - mean_c x_c) */
        double sx = s->eps != 0.0f ? sum_f64(x, C) : 0.0;
        acc += (1.0 - s->eps) * (lse - x[s->t[r]]) + s->eps * (lse - sx / (double)C);
    }
    s->part[r0 / s->block] = acc;
}

/* d loss / d x_j = scale * (p_j - eps / C - (1 - eps) [j == y]), p = softmax(x) */
static void ce_bwd_range(void *c, int64_t r0, int64_t r1) {
    ce_ctx *s = c;
    int64_t C = s->C;
    float smooth = s->eps / (float)C, hit = 1.0f - s->eps, sc = s->scale;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = s->x + r * C;
        float *dx = s->dx + r * C;
        int32_t t = s->t[r];
        if (t == s->ignore) {
            if (s->fresh) memset(dx, 0, (size_t)C * sizeof(float));
            continue;
        }
        float lse = s->lse[r];
        if (s->fresh)
            for (int64_t j = 0; j < C; j++) dx[j] = sc * (ag_expf(x[j] - lse) - smooth);
        else
            for (int64_t j = 0; j < C; j++) dx[j] += sc * (ag_expf(x[j] - lse) - smooth);
        dx[t] -= sc * hit;
    }
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
    int64_t C = s->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = s->x + r * C;
        float *y = s->y + r * C;
        double m = 0.0, v = 0.0;
        for (int64_t j = 0; j < C; j++) m += x[j];
        m /= (double)C;
        for (int64_t j = 0; j < C; j++) v += (x[j] - m) * (x[j] - m);
        v /= (double)C;
        float mf = (float)m, rs = (float)(1.0 / sqrt(v + s->eps));
        s->mean[r] = mf;
        s->rstd[r] = rs;
        for (int64_t j = 0; j < C; j++) {
            float h = (x[j] - mf) * rs;
            y[j] = h * (s->gamma ? s->gamma[j] : 1.0f) + (s->beta ? s->beta[j] : 0.0f);
        }
    }
}

static void ln_bwd_range(void *c, int64_t r0, int64_t r1) {
    ln_ctx *s = c;
    int64_t C = s->C, blk = r0 / s->block;
    float *pg = s->pg ? s->pg + blk * C : NULL, *pb = s->pb ? s->pb + blk * C : NULL;
    if (pg) memset(pg, 0, (size_t)C * sizeof(float));
    if (pb) memset(pb, 0, (size_t)C * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        const float *x = s->x + r * C, *dy = s->dy + r * C;
        float m = s->mean[r], rs = s->rstd[r];
        double a = 0.0, b = 0.0; /* mean(dxhat), mean(dxhat * xhat) */
        for (int64_t j = 0; j < C; j++) {
            float h = (x[j] - m) * rs, dh = dy[j] * (s->gamma ? s->gamma[j] : 1.0f);
            a += dh;
            b += (double)dh * h;
            if (pg) pg[j] += dy[j] * h;
            if (pb) pb[j] += dy[j];
        }
        if (!s->dx) continue;
        float af = (float)(a / (double)C), bf = (float)(b / (double)C);
        float *dx = s->dx + r * C;
        for (int64_t j = 0; j < C; j++) {
            float h = (x[j] - m) * rs, dh = dy[j] * (s->gamma ? s->gamma[j] : 1.0f);
            float d = rs * (dh - af - h * bf);
            dx[j] = s->fresh ? d : dx[j] + d;
        }
    }
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
    float scale;
} drop_entry;

static void drop_backward(attn_graph *g, ag_entry *base) {
    drop_entry *e = (drop_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    const float *dy = ag_dy(e->e.out);
    for (int64_t i = 0; i < e->x->numel; i++) {
        float d = e->mask[i] ? dy[i] * e->scale : 0.0f;
        dx[i] = fresh ? d : dx[i] + d;
    }
}

attn_var *attn_ag_dropout(attn_graph *g, attn_var *x, float p) {
    if (!ag_ok1(g, "attn_ag_dropout", x)) return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) return ag_fail(g, ATTN_EINVAL, "attn_ag_dropout: p = %g is outside [0, 1]", (double)p);
    if (!g->training || p == 0.0f) return x;
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad);
    uint8_t *mask = ag_alloc(g, (size_t)x->numel);
    if (!y || !mask) return NULL;
    /* One uniform per element in order; kept iff u >= p (attn_dropout_forward's rule). */
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (int64_t i = 0; i < x->numel; i++) {
        mask[i] = attn_rng_uniform(&g->rng) >= p;
        y->data[i] = mask[i] ? x->data[i] * scale : 0.0f;
    }
    if (y->requires_grad) {
        drop_entry *e = ag_record(g, sizeof *e, drop_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->mask = mask, e->scale = scale;
    }
    return y;
}
