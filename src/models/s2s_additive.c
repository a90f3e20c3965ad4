/* The fused additive-attention step of the Bahdanau decoder (see s2s_internal.h), forward and
 * backward side by side. One tape entry per decoder step; the tanh values are kept for the
 * backward (B*S*A floats per step) so that the backward does not recompute them.
 *
 * Letters: B batch, S source positions, A score hidden size, D encoder state size.
 * Tensors: q (B, A), Uk (S, B, A), va (A), H (S, B, D), ctx (B, D), P (B, S), Tc (B, S, A).
 */
#include <math.h>
#include <string.h>

#include "autograd/ag.h"
#include "models/s2s_internal.h"

/* tanh as a rational function (Eigen's generic_fast_tanh_float: odd degree-13 numerator over
 * even degree-6 denominator on [-7.9, 7.9]), relative error below 4e-7 against tanhf, and
 * plain arithmetic, so loops over it vectorise (glibc's tanhf is a scalar call that cost a
 * third of a training step here). The backward uses the stored values, so forward and
 * backward stay consistent. */
static inline float fast_tanh(float x) {
    const float c = 7.90531110763549805f;
    float xc = x > c ? c : x < -c ? -c : x;
    float x2 = xc * xc;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

/* a . b over n, in 8 interleaved partial sums (a fixed order, and vectorisable). */
static inline float dot8(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef struct {
    ag_entry e;
    attn_var *q, *Uk, *va, *H;
    int B, S, A, D;
    int32_t *len;   /* (B) */
    float *P;       /* (B, S) weights */
    float *Tc;      /* (B, S, A) tanh(q_b + Uk_jb), rows j >= len[b] unused */
    float *dva_part;/* (B, A) per-row partial gradients of va, summed in row order */
} add_entry;

typedef struct {
    const float *q, *Uk, *va, *H;
    float *ctx, *P, *Tc;
    const int32_t *len;
    int B, S, A, D;
} fwd_ctx;

/* Rows [b0, b1): scores, softmax, weighted sum. */
static void fwd_rows(void *c, int64_t b0, int64_t b1) {
    fwd_ctx *f = c;
    const int B = f->B, S = f->S, A = f->A, D = f->D;
    float tloc[1024];
    for (int64_t b = b0; b < b1; b++) {
        const float *qb = f->q + b * A;
        float *p = f->P + b * S;
        int L = f->len[b];
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
            /* t_a = tanh(q_ba + Uk_jba), e_j = va . t */
            const float *uk = f->Uk + ((int64_t)j * B + b) * A;
            float *t = f->Tc ? f->Tc + (b * S + j) * (int64_t)A : tloc;
            float e = 0.0f;
            if (!f->Tc && A > 1024) {
                for (int a = 0; a < A; a++) e += f->va[a] * fast_tanh(qb[a] + uk[a]);
            } else {
                for (int a = 0; a < A; a++) t[a] = fast_tanh(qb[a] + uk[a]);
                e = dot8(f->va, t, A);
            }
            p[j] = e;
            if (e > mx) mx = e;
        }
        float sum = 0.0f;
        for (int j = 0; j < L; j++) sum += (p[j] = expf(p[j] - mx));
        float inv = 1.0f / sum;
        for (int j = 0; j < L; j++) p[j] *= inv;
        for (int j = L; j < S; j++) p[j] = 0.0f;
        /* ctx_b = sum_j p_j H_jb */
        float *o = f->ctx + b * D;
        memset(o, 0, (size_t)D * sizeof *o);
        for (int j = 0; j < L; j++) {
            const float *h = f->H + ((int64_t)j * B + b) * D;
            float w = p[j];
            for (int d = 0; d < D; d++) o[d] += w * h[d];
        }
    }
}

typedef struct {
    add_entry *e;
    const float *dctx;
    float *dq, *dUk, *dH; /* NULL when not wanted */
    float *dva_part;      /* NULL when not wanted */
} bwd_ctx;

static void bwd_rows(void *c, int64_t b0, int64_t b1) {
    bwd_ctx *k = c;
    add_entry *e = k->e;
    const int B = e->B, S = e->S, A = e->A, D = e->D;
    const float *va = e->va->data;
    float ds[4096];
    for (int64_t b = b0; b < b1; b++) {
        const float *p = e->P + b * S, *dc = k->dctx + b * D;
        int L = e->len[b];
        /* ctx = sum_j p_j H_j:  dp_j = dctx . H_j,  dH_j += p_j dctx */
        float dot = 0.0f;
        for (int j = 0; j < L; j++) {
            const float *h = e->H->data + ((int64_t)j * B + b) * D;
            float s = dot8(dc, h, D);
            ds[j] = s;
            dot += p[j] * s;
            if (k->dH) {
                float *dh = k->dH + ((int64_t)j * B + b) * D;
                for (int d = 0; d < D; d++) dh[d] += p[j] * dc[d];
            }
        }
        /* p = softmax(e):  de_j = p_j (dp_j - sum_i p_i dp_i) */
        for (int j = 0; j < L; j++) ds[j] = p[j] * (ds[j] - dot);
        /* e_j = va . t_j, t_j = tanh(q + Uk_j):  dva += de_j t_j,
         * d(q + Uk_j) = de_j va (1 - t_j^2) */
        float *dq = k->dq ? k->dq + b * A : NULL;
        float *dva = k->dva_part ? k->dva_part + b * A : NULL;
        if (dva) memset(dva, 0, (size_t)A * sizeof *dva);
        for (int j = 0; j < L; j++) {
            const float *t = e->Tc + (b * S + j) * (int64_t)A;
            float de = ds[j];
            float *duk = k->dUk ? k->dUk + ((int64_t)j * B + b) * A : NULL;
            if (dva)
                for (int a = 0; a < A; a++) dva[a] += de * t[a];
            for (int a = 0; a < A; a++) {
                float dz = de * va[a] * (1.0f - t[a] * t[a]);
                if (dq) dq[a] += dz;
                if (duk) duk[a] += dz;
            }
        }
    }
}

static void add_backward(attn_graph *g, ag_entry *base) {
    add_entry *e = (add_entry *)base;
    bwd_ctx k = {e, ag_dy(e->e.out), NULL, NULL, NULL, NULL};
    if (e->q->requires_grad && !(k.dq = ag_grad_zeroed(g, e->q))) return;
    if (e->Uk->requires_grad && !(k.dUk = ag_grad_zeroed(g, e->Uk))) return;
    if (e->H->requires_grad && !(k.dH = ag_grad_zeroed(g, e->H))) return;
    float *dva = NULL;
    if (e->va->requires_grad) {
        if (!(dva = ag_grad_zeroed(g, e->va))) return;
        k.dva_part = e->dva_part;
    }
    ag_parallel_for(e->B, ag_block((int64_t)e->S * (e->A * 4 + e->D * 2)), bwd_rows, &k);
    if (dva)
        for (int b = 0; b < e->B; b++) {
            const float *pa = e->dva_part + (int64_t)b * e->A;
            for (int a = 0; a < e->A; a++) dva[a] += pa[a];
        }
}

attn_var *attn__s2s_additive_step(attn_graph *g, attn_var *q, attn_var *Uk, attn_var *va, attn_var *H,
                                  const int32_t *len, attn_var **weights) {
    const char *op = "s2s additive attention";
    if (weights) *weights = NULL;
    if (!ag_ok(g, op, 4, (attn_var *const[]){q, Uk, va, H})) return NULL;
    if (!len) return ag_fail(g, ATTN_EINVAL, "%s: NULL lengths", op);
    char s1[64], s2[64], s3[64];
    if (q->ndim != 2 || Uk->ndim != 3 || H->ndim != 3 || Uk->shape[1] != q->shape[0] || Uk->shape[2] != q->shape[1] ||
        H->shape[0] != Uk->shape[0] || H->shape[1] != q->shape[0] || va->numel != q->shape[1])
        return ag_fail(g, ATTN_ESHAPE, "%s: q %s, Uk %s, H %s do not fit", op, ag_shape_str(q, s1, sizeof s1),
                       ag_shape_str(Uk, s2, sizeof s2), ag_shape_str(H, s3, sizeof s3));
    const int B = (int)q->shape[0], A = (int)q->shape[1], S = (int)H->shape[0], D = (int)H->shape[2];
    if (S > 4096) return ag_fail(g, ATTN_ESHAPE, "%s: %d source positions (at most 4096)", op, S);
    for (int b = 0; b < B; b++)
        if (len[b] < 1 || len[b] > S) return ag_fail(g, ATTN_EINVAL, "%s: len[%d] = %d is outside [1, %d]", op, b, (int)len[b], S);
    int rg = q->requires_grad || Uk->requires_grad || va->requires_grad || H->requires_grad;
    attn_var *ctx = ag_new(g, 2, (int64_t[]){B, D}, rg);
    attn_var *P = ag_new(g, 2, (int64_t[]){B, S}, 0);
    if (!ctx || !P) return NULL;
    rg = ctx->requires_grad;
    float *Tc = NULL, *dva_part = NULL;
    int32_t *lc = ag_alloc(g, (size_t)B * sizeof(int32_t));
    if (!lc) return NULL;
    memcpy(lc, len, (size_t)B * sizeof(int32_t));
    if (rg) {
        Tc = ag_floats(g, (int64_t)B * S * A);
        dva_part = va->requires_grad ? ag_floats(g, (int64_t)B * A) : NULL;
        if (!Tc || (va->requires_grad && !dva_part)) return NULL;
    }
    fwd_ctx f = {q->data, Uk->data, va->data, H->data, ctx->data, P->data, Tc, lc, B, S, A, D};
    ag_parallel_for(B, ag_block((int64_t)S * (A * 3 + D * 2)), fwd_rows, &f);
    if (rg) {
        add_entry *e = ag_record(g, sizeof *e, add_backward, ctx, NULL);
        if (!e) return NULL;
        e->q = q, e->Uk = Uk, e->va = va, e->H = H;
        e->B = B, e->S = S, e->A = A, e->D = D;
        e->len = lc, e->P = P->data, e->Tc = Tc, e->dva_part = dva_part;
    }
    if (weights) *weights = P;
    return ctx;
}
