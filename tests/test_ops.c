/* The operation test registry (in the manner of ggml's tests/test-backend-ops.cpp): ONE table,
 * ROWS below, lists every operation of src/nn with its shapes, and every row runs on every ISA
 * path (attn_set_isa "ref", "avx2", "avx512"; a path this CPU lacks is reported SKIP, never
 * as a pass). For each row and path:
 *  - forward: the library's float forward against a double-precision forward written here
 *    (at the float inputs widened to double), to the row's forward tolerance;
 *  - backward: with L = sum(out * R) for fixed random R, every analytic gradient of the
 *    library against central finite differences (L(x + h) - L(x - h)) / (x+h - x-h), the
 *    input perturbed in double and rounded to float, L summed in double from the library's
 *    float forward; Richardson's extrapolation of h = 1e-2 max(1, |x|) and h/2 removes the
 *    h^2 error. Tolerance: the row's relative one, and that times the row's largest gradient
 *    as the absolute one. Gradient buffers of layers that accumulate start at 1 and 1 is
 *    taken off (which checks the +=); those that are written start as NaN.
 * Sizes sweep below, at and above the kernels' steps (the attention kernels' 5 query rows
 * and 8 or 16 float vectors: 1, 4, 5, 6, 13 rows; 1, 15, 16, 17, 35 features), XNNPACK style.
 * `test_ops perf [OP]` times the PERF rows instead (median of 7 runs of forward + backward,
 * GFLOP/s or GB/s per op and ISA); ctest runs only the checks. Not here: comparisons with
 * PyTorch and ONNX (test_layers.c, test_attention_ref.c, test_onnx_nodes.c, test_mha.c),
 * which stay as independent references. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, for the perf mode */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_ops.h"

/* ---- Activations: s0 = n elements, v = 0 tanh, 1 sigmoid, 2 relu, 3 gelu ---------------------- */

static void act_init(prob *p) {
    float *x = add_in(p, "x", p->r->s[0], 1.5f, 2);
    for (int i = 0; i < p->r->s[0]; i++) /* keep relu's kink out of the finite differences' reach */
        if (fabsf(x[i]) < 0.05f) x[i] = x[i] < 0 ? -0.05f : 0.05f;
    if (p->r->s[0] >= 17) x[14] = 30.0f, x[15] = -30.0f, x[16] = -100.0f; /* saturated ends */
    add_out(p, p->r->s[0]);
    p->nloss = 1;
}

static int act_fwd(prob *p) {
    size_t n = p->n_in[0];
    switch (p->r->v) {
    case 0: attn_tanh_forward(p->out[0], p->in[0], n); break;
    case 1: attn_sigmoid_forward(p->out[0], p->in[0], n); break;
    case 2: attn_relu_forward(p->out[0], p->in[0], n); break;
    default: attn_gelu_forward(p->out[0], p->in[0], n); break;
    }
    return ATTN_OK;
}

static int act_bwd(prob *p, float *const *dout) {
    size_t n = p->n_in[0];
    switch (p->r->v) {
    case 0: attn_tanh_backward(p->g[0], p->out[0], dout[0], n); break;
    case 1: attn_sigmoid_backward(p->g[0], p->out[0], dout[0], n); break;
    case 2: attn_relu_backward(p->g[0], p->in[0], dout[0], n); break;
    default: attn_gelu_backward(p->g[0], p->in[0], dout[0], n); break;
    }
    return ATTN_OK;
}

static void act_ref(const prob *p, double *const *out) {
    for (size_t i = 0; i < p->n_in[0]; i++) {
        double x = p->in[0][i];
        out[0][i] = p->r->v == 0 ? tanh(x) : p->r->v == 1 ? dsig(x) : p->r->v == 2 ? (x > 0 ? x : 0)
                                                                                   : 0.5 * x * (1 + erf(x / sqrt(2.0)));
    }
}

static const opdef OP_ACT = {"activation", act_init, act_fwd, act_bwd, act_ref, NULL};

/* ---- Softmax and log-softmax: s0 = N rows, s1 = C; v = 0 softmax, 1 log-softmax ------------ */

static void sm_init(prob *p) {
    float *x = add_in(p, "x", (size_t)p->r->s[0] * p->r->s[1], 2.0f, 2);
    if (p->n_in[0] > 3) x[3] += 80.0f; /* a large logit */
    add_out(p, p->n_in[0]);
    p->nloss = 1;
}

static int sm_fwd(prob *p) {
    const row *r = p->r;
    return r->v ? attn_log_softmax_forward(p->out[0], p->in[0], r->s[0], r->s[1])
                : attn_softmax_forward(p->out[0], p->in[0], r->s[0], r->s[1]);
}

static int sm_bwd(prob *p, float *const *dout) {
    const row *r = p->r;
    return r->v ? attn_log_softmax_backward(p->g[0], p->out[0], dout[0], r->s[0], r->s[1])
                : attn_softmax_backward(p->g[0], p->out[0], dout[0], r->s[0], r->s[1]);
}

/* Each row's log-sum-exp in double. */
static double dlse(const float *x, int C) {
    double m = -INFINITY, s = 0;
    for (int c = 0; c < C; c++) m = fmax(m, x[c]);
    for (int c = 0; c < C; c++) s += exp(x[c] - m);
    return m + log(s);
}

static void sm_ref(const prob *p, double *const *out) {
    int N = p->r->s[0], C = p->r->s[1];
    for (int i = 0; i < N; i++) {
        const float *x = p->in[0] + (size_t)i * C;
        double l = dlse(x, C);
        for (int c = 0; c < C; c++) out[0][(size_t)i * C + c] = p->r->v ? x[c] - l : exp(x[c] - l);
    }
}

static const opdef OP_SOFTMAX = {"softmax", sm_init, sm_fwd, sm_bwd, sm_ref, NULL};

/* ---- Cross-entropy: s0 = N, s1 = C, v = the reduction (attn_reduction); label smoothing 0.1,
 * class weights, row 1 ignored (ignore_index -100); m = 1: neither smoothing nor weights. --- */

static void ce_init(prob *p) {
    int N = p->r->s[0], C = p->r->s[1];
    add_in(p, "logits", (size_t)N * C, 2.0f, 2);
    p->aux = frand(C, 0.3f); /* class weights */
    for (int c = 0; c < C; c++) p->aux[c] = p->r->m ? 1.0f : 1.0f + fabsf(p->aux[c]);
    p->aux2 = malloc(N * sizeof(float)); /* lse */
    p->ids = malloc(N * sizeof(int32_t));
    for (int i = 0; i < N; i++) p->ids[i] = i == 1 ? -100 : (i * 7 + 3) % C;
    add_out(p, p->r->v == ATTN_REDUCE_NONE ? (size_t)N : 1);
    p->nloss = 1;
}

static int ce_fwd(prob *p) {
    return attn_cross_entropy_forward(p->out[0], p->aux2, p->in[0], p->ids, p->r->m ? NULL : p->aux, p->r->s[0],
                                      p->r->s[1], -100, p->r->m ? 0.0f : 0.1f, (attn_reduction)p->r->v);
}

static int ce_bwd(prob *p, float *const *dout) {
    return attn_cross_entropy_backward(p->g[0], dout[0], p->in[0], p->aux2, p->ids, p->r->m ? NULL : p->aux, p->r->s[0],
                                       p->r->s[1], -100, p->r->m ? 0.0f : 0.1f, (attn_reduction)p->r->v);
}

static void ce_ref(const prob *p, double *const *out) {
    int N = p->r->s[0], C = p->r->s[1];
    double sum = 0, den = 0, eps = p->r->m ? 0 : 0.1;
    for (int i = 0; i < N; i++) {
        double li = 0;
        if (p->ids[i] != -100) {
            const float *x = p->in[0] + (size_t)i * C;
            double l = dlse(x, C), smooth = 0;
            for (int c = 0; c < C; c++) smooth += p->aux[c] * (l - x[c]);
            li = (1 - eps) * p->aux[p->ids[i]] * (l - x[p->ids[i]]) + eps / C * smooth;
            den += p->aux[p->ids[i]];
        }
        sum += li;
        if (p->r->v == ATTN_REDUCE_NONE) out[0][i] = li;
    }
    if (p->r->v != ATTN_REDUCE_NONE) out[0][0] = p->r->v == ATTN_REDUCE_SUM ? sum : den > 0 ? sum / den : 0;
}

static double ce_flops(const prob *p) { return 4.0 * p->r->s[0] * p->r->s[1]; }

static const opdef OP_CE = {"cross_entropy", ce_init, ce_fwd, ce_bwd, ce_ref, ce_flops};

/* ---- Layer norm: s0 = N, s1 = C; v = 1 with weight and bias ------------------------------ */

static void ln_init(prob *p) {
    int N = p->r->s[0], C = p->r->s[1];
    float *x = add_in(p, "x", (size_t)N * C, 1.0f, 2);
    for (int i = 0; i < N * C; i++) x[i] += 3.0f; /* a non-zero mean */
    if (p->r->v) add_in(p, "weight", C, 1.0f, 2), add_in(p, "bias", C, 1.0f, 2);
    add_out(p, (size_t)N * C);
    p->aux = malloc(2 * N * sizeof(float)); /* mean, rstd */
    p->nloss = 1;
}

static int ln_fwd(prob *p) {
    int N = p->r->s[0], v = p->r->v;
    return attn_layernorm_forward(p->out[0], p->aux, p->aux + N, p->in[0], v ? p->in[1] : NULL, v ? p->in[2] : NULL, N,
                                  p->r->s[1], 1e-5f);
}

static int ln_bwd(prob *p, float *const *dout) {
    int N = p->r->s[0], v = p->r->v;
    return attn_layernorm_backward(p->g[0], v ? p->g[1] : NULL, v ? p->g[2] : NULL, dout[0], p->in[0],
                                   v ? p->in[1] : NULL, p->aux, p->aux + N, N, p->r->s[1]);
}

static void ln_ref(const prob *p, double *const *out) {
    int N = p->r->s[0], C = p->r->s[1];
    for (int i = 0; i < N; i++) {
        const float *x = p->in[0] + (size_t)i * C;
        double m = 0, var = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
        double rs = 1 / sqrt(var / C + 1e-5);
        for (int c = 0; c < C; c++)
            out[0][(size_t)i * C + c] = (x[c] - m) * rs * (p->r->v ? p->in[1][c] : 1) + (p->r->v ? p->in[2][c] : 0);
    }
}

static double ln_flops(const prob *p) { return 8.0 * p->r->s[0] * p->r->s[1]; }

static const opdef OP_LN = {"layernorm", ln_init, ln_fwd, ln_bwd, ln_ref, ln_flops};

/* ---- Dropout with a fixed mask (the rng reseeded each forward): s0 = n, p = 0.3 ------------ */

static void do_init(prob *p) {
    add_in(p, "x", p->r->s[0], 1.0f, 2);
    add_out(p, p->r->s[0]);
    p->mask = malloc(p->r->s[0] + 1);
    p->nloss = 1;
}

static int do_fwd(prob *p) {
    attn_rng rng;
    attn_rng_seed(&rng, 77);
    return attn_dropout_forward(p->out[0], p->mask, p->in[0], p->n_in[0], 0.3f, &rng);
}

static int do_bwd(prob *p, float *const *dout) { return attn_dropout_backward(p->g[0], dout[0], p->mask, p->n_in[0], 0.3f); }

/* The same draws, in double: kept iff u >= p. */
static void do_ref(const prob *p, double *const *out) {
    attn_rng rng;
    attn_rng_seed(&rng, 77);
    for (size_t i = 0; i < p->n_in[0]; i++) out[0][i] = attn_rng_uniform(&rng) >= 0.3f ? p->in[0][i] / (1.0 - 0.3f) : 0;
}

static const opdef OP_DROPOUT = {"dropout", do_init, do_fwd, do_bwd, do_ref, NULL};

/* ---- Embedding: s0 = N ids, s1 = V, s2 = E; ids repeat (padding_idx: test_layers.c) -- ---- */

static void emb_init(prob *p) {
    int N = p->r->s[0], V = p->r->s[1];
    add_in(p, "table", (size_t)V * p->r->s[2], 1.0f, 2);
    p->ids = malloc(N * sizeof(int32_t));
    for (int i = 0; i < N; i++) p->ids[i] = (i * 5 + 2) % V;
    add_out(p, (size_t)N * p->r->s[2]);
    p->nloss = 1;
}

static int emb_fwd(prob *p) { return attn_embedding_forward(p->out[0], p->ids, p->in[0], p->r->s[0], p->r->s[1], p->r->s[2]); }

static int emb_bwd(prob *p, float *const *dout) {
    return attn_embedding_backward(p->g[0], dout[0], p->ids, p->r->s[0], p->r->s[1], p->r->s[2], -1);
}

static void emb_ref(const prob *p, double *const *out) {
    int E = p->r->s[2];
    for (int i = 0; i < p->r->s[0]; i++)
        for (int e = 0; e < E; e++) out[0][(size_t)i * E + e] = p->in[0][(size_t)p->ids[i] * E + e];
}

static const opdef OP_EMB = {"embedding", emb_init, emb_fwd, emb_bwd, emb_ref, NULL};

/* ---- Linear: s0 = M, s1 = K, s2 = N; v = 1 with bias ------------------------------------- */

static void lin_init(prob *p) {
    int M = p->r->s[0], K = p->r->s[1], N = p->r->s[2];
    add_in(p, "x", (size_t)M * K, 1.0f, 2);
    add_in(p, "W", (size_t)N * K, 0.5f, 2);
    if (p->r->v) add_in(p, "b", N, 1.0f, 2);
    add_out(p, (size_t)M * N);
    p->nloss = 1;
}

static int lin_fwd(prob *p) {
    return attn_linear_forward(p->out[0], p->in[0], p->in[1], p->r->v ? p->in[2] : NULL, p->r->s[0], p->r->s[1], p->r->s[2]);
}

static int lin_bwd(prob *p, float *const *dout) {
    return attn_linear_backward(p->g[0], p->g[1], p->r->v ? p->g[2] : NULL, dout[0], p->in[0], p->in[1], p->r->s[0],
                                p->r->s[1], p->r->s[2]);
}

static void lin_ref(const prob *p, double *const *out) {
    int M = p->r->s[0], K = p->r->s[1], N = p->r->s[2];
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            out[0][(size_t)m * N + n] =
                ddot_ff(p->in[0] + (size_t)m * K, p->in[1] + (size_t)n * K, K) + (p->r->v ? p->in[2][n] : 0);
}

static double lin_flops(const prob *p) { return 2.0 * p->r->s[0] * p->r->s[1] * p->r->s[2]; }

static const opdef OP_LINEAR = {"linear", lin_init, lin_fwd, lin_bwd, lin_ref, lin_flops};

/* ---- Sparse linear (nn/sparse_linear.c, internal): s0 = N rows, s1 = F, s2 = C; v = 1 with
 * bias. Row n holds (3 n + 1) % 5 non-zeros (rows 1, 6, ... are empty) at distinct columns;
 * rowptr lives in aux2 (N + 1 int64), the columns in ids, the values in aux. ------------- */

static int64_t *spl_rowptr(const prob *p) { return (int64_t *)(void *)p->aux2; }

static void spl_init(prob *p) {
    int N = p->r->s[0], F = p->r->s[1], C = p->r->s[2];
    add_in(p, "W", (size_t)C * F, 0.5f, 2);
    if (p->r->v) add_in(p, "b", C, 1.0f, 2);
    p->aux2 = malloc((N + 1) * sizeof(int64_t));
    int64_t *rp = spl_rowptr(p);
    rp[0] = 0;
    for (int n = 0; n < N; n++) rp[n + 1] = rp[n] + ((3 * n + 1) % 5 < F ? (3 * n + 1) % 5 : F);
    p->ids = malloc((rp[N] + 1) * sizeof(int32_t));
    p->aux = frand(rp[N], 1.0f);
    for (int n = 0; n < N; n++)
        for (int64_t k = rp[n]; k < rp[n + 1]; k++) p->ids[k] = (int32_t)((n * 7 + (k - rp[n]) * (F / 5 + 1)) % F);
    add_out(p, (size_t)N * C);
    p->nloss = 1;
}

static int spl_fwd(prob *p) {
    attn__sparse_linear_forward(p->out[0], spl_rowptr(p), p->ids, p->aux, p->in[0], p->r->v ? p->in[1] : NULL, p->r->s[0],
                                p->r->s[1], p->r->s[2]);
    return ATTN_OK;
}

static int spl_bwd(prob *p, float *const *dout) {
    attn__sparse_linear_backward(p->g[0], 1, p->r->v ? p->g[1] : NULL, 1, dout[0], spl_rowptr(p), p->ids, p->aux,
                                 p->r->s[0], p->r->s[1], p->r->s[2]);
    return ATTN_OK;
}

static void spl_ref(const prob *p, double *const *out) {
    int N = p->r->s[0], F = p->r->s[1], C = p->r->s[2];
    const int64_t *rp = spl_rowptr(p);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double s = p->r->v ? p->in[1][c] : 0;
            for (int64_t k = rp[n]; k < rp[n + 1]; k++) s += (double)p->aux[k] * p->in[0][(size_t)c * F + p->ids[k]];
            out[0][(size_t)n * C + c] = s;
        }
}

static double spl_flops(const prob *p) { return 2.0 * (double)spl_rowptr(p)[p->r->s[0]] * p->r->s[2]; }

static const opdef OP_SPLIN = {"sparse_linear", spl_init, spl_fwd, spl_bwd, spl_ref, spl_flops};

/* ---- Attention (attn_forward / attn_backward): s = B, H, Hkv, Nq, Nk, d (= dq = dk = dv);
 * v = the score (attn_score; additive with A = 3); m = the mask: 0 none, 1 causal, 2 key
 * lengths (Nk, 2, 0, ...), 3 sliding window of 2 (causal), 4 a boolean mask (B, 1, Nq, Nk)
 * whose first row sees nothing plus an additive bias (Nq, Nk) with some -inf, 5 causal with
 * an explicit scale 0.5 (the additive score has none), dv = d + 2 and the backward
 * recomputing lse. Q, K, V gradients are written, the score parameters' added. ----------- */

static void at_init(prob *p) {
    const int *s = p->r->s, A = 3;
    int B = s[0], H = s[1], Hkv = s[2], Nq = s[3], Nk = s[4], d = s[5], m = p->r->m, dv = m == 5 ? d + 2 : d;
    add_in(p, "Q", (size_t)B * H * Nq * d, 1.0f, 1);
    add_in(p, "K", (size_t)B * Hkv * Nk * d, 1.0f, 1);
    add_in(p, "V", (size_t)B * Hkv * Nk * dv, 1.0f, 1);
    attn_desc *a = &p->a;
    memset(a, 0, sizeof *a);
    a->B = B, a->H = H, a->Hkv = Hkv, a->Nq = Nq, a->Nk = Nk, a->dq = a->dk = d, a->dv = dv;
    a->scale = m == 5 ? 0.5f : 0.0f;
    a->score = (attn_score)p->r->v;
    a->params = &p->prm;
    if (a->score == ATTN_SCORE_GENERAL) p->prm.W = add_in(p, "W", (size_t)d * d, 0.5f, 2);
    if (a->score == ATTN_SCORE_ADDITIVE) {
        p->prm.A = p->dprm.A = A;
        p->prm.Wa = add_in(p, "Wa", (size_t)A * d, 0.6f, 2), p->prm.ba = add_in(p, "ba", A, 0.3f, 2);
        p->prm.Ua = add_in(p, "Ua", (size_t)A * d, 0.6f, 2), p->prm.bu = add_in(p, "bu", A, 0.3f, 2);
        p->prm.va = add_in(p, "va", A, 1.0f, 2), p->prm.bv = add_in(p, "bv", 1, 1.0f, 2);
    }
    if (a->score == ATTN_SCORE_GENERAL) p->dprm.W = p->g[3];
    if (a->score == ATTN_SCORE_ADDITIVE)
        p->dprm.Wa = p->g[3], p->dprm.ba = p->g[4], p->dprm.Ua = p->g[5], p->dprm.bu = p->g[6], p->dprm.va = p->g[7],
        p->dprm.bv = p->g[8];
    a->mask.causal = m == 1 || m == 3 || m == 5;
    a->mask.window = m == 3 ? 2 : 0;
    for (int b = 0; b < B && b < 4; b++) p->kl[b] = b == 0 ? Nk : b == 1 ? 2 : 0;
    if (m == 2) a->mask.key_lengths = p->kl;
    if (m == 4) {
        const int64_t target[4] = {B, H, Nq, Nk}, ms[4] = {B, 1, Nq, Nk}, bs[2] = {Nq, Nk};
        p->mask = malloc((size_t)B * Nq * Nk);
        for (size_t e = 0; e < (size_t)B * Nq * Nk; e++) p->mask[e] = (e * 7 + 3) % 10 < 7 ? (uint8_t)(1 + e % 200) : 0;
        memset(p->mask, 0, Nk);
        p->aux = frand((size_t)Nq * Nk, 1.0f);
        for (size_t e = 0; e < (size_t)Nq * Nk; e++)
            if (e % 5 == 4) p->aux[e] = -INFINITY;
        attn_broadcast_strides(ms, 4, target, a->mask.bool_strides);
        attn_broadcast_strides(bs, 2, target, a->mask.bias_strides);
        a->mask.bool_mask = p->mask, a->mask.bias = p->aux;
    }
    add_out(p, (size_t)B * H * Nq * dv);
    add_out(p, (size_t)B * H * Nq); /* lse, for the backward */
    p->nloss = 1;
}

static int at_fwd(prob *p) { return attn_forward(&p->a, p->in[0], p->in[1], p->in[2], p->out[0], NULL, p->out[1]); }

static int at_bwd(prob *p, float *const *dout) {
    const float *lse = p->r->m == 5 ? NULL : p->out[1];
    return attn_backward(&p->a, p->in[0], p->in[1], p->in[2], p->out[0], lse, dout[0], p->g[0], p->g[1], p->g[2],
                         &p->dprm);
}

static double at_score(const prob *p, const float *q, const float *k) {
    const attn_desc *a = &p->a;
    const attn_score_params *w = &p->prm;
    int d = a->dq;
    double sc = a->scale ? a->scale : 1.0;
    switch (a->score) {
    case ATTN_SCORE_DOT: return ddot_ff(q, k, d) * sc;
    case ATTN_SCORE_SCALED: return ddot_ff(q, k, d) * (a->scale ? a->scale : 1 / sqrt((double)d));
    case ATTN_SCORE_COSINE: {
        double nq = fmax(sqrt(ddot_ff(q, q, d)), 1e-12), nk = fmax(sqrt(ddot_ff(k, k, d)), 1e-12);
        return sc * ddot_ff(q, k, d) / (nq * nk);
    }
    case ATTN_SCORE_GENERAL: {
        double s = 0;
        for (int i = 0; i < d; i++) s += q[i] * ddot_ff(w->W + (size_t)i * d, k, d);
        return s * sc;
    }
    case ATTN_SCORE_ADDITIVE: {
        double s = w->bv[0];
        for (int i = 0; i < w->A; i++)
            s += w->va[i] * tanh(ddot_ff(w->Wa + (size_t)i * d, q, d) + w->ba[i] +
                                 ddot_ff(w->Ua + (size_t)i * d, k, d) + w->bu[i]);
        return s;
    }
    }
    return NAN;
}

static int at_visible(const prob *p, int b, int i, int j) {
    const attn_mask *m = &p->a.mask;
    if (m->key_lengths && j >= m->key_lengths[b]) return 0;
    if (m->causal && j > i) return 0;
    if (m->window && j <= i - m->window) return 0;
    if (m->bool_mask && !m->bool_mask[((size_t)b * p->a.Nq + i) * p->a.Nk + j]) return 0;
    return 1;
}

static void at_ref(const prob *p, double *const *out) {
    const attn_desc *a = &p->a;
    int d = a->dq, dv = a->dv, G = a->H / a->Hkv, Nk = a->Nk;
    double *s = malloc(Nk * sizeof(double));
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->H; h++)
            for (int i = 0; i < a->Nq; i++) {
                size_t row = ((size_t)b * a->H + h) * a->Nq + i;
                const float *q = p->in[0] + row * d;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < Nk; j++) {
                    const float *k = p->in[1] + (((size_t)b * a->Hkv + h / G) * Nk + j) * d;
                    double bias = a->mask.bias ? a->mask.bias[(size_t)i * Nk + j] : 0;
                    s[j] = at_visible(p, b, i, j) ? at_score(p, q, k) + bias : -INFINITY;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < Nk; j++) sum += s[j] = mx == -INFINITY || s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                for (int e = 0; e < dv; e++) {
                    double o = 0;
                    for (int j = 0; j < Nk; j++)
                        o += (sum > 0 ? s[j] / sum : 0) * p->in[2][(((size_t)b * a->Hkv + h / G) * Nk + j) * dv + e];
                    out[0][row * dv + e] = o;
                }
                out[1][row] = sum > 0 ? mx + log(sum) : -INFINITY;
            }
    free(s);
}

static double at_flops(const prob *p) { return 4.0 * p->a.B * p->a.H * p->a.Nq * p->a.Nk * p->a.dq; }

static const opdef OP_ATTN = {"attention", at_init, at_fwd, at_bwd, at_ref, at_flops};

/* ---- The table ------------------------------------------------------------------------------ */

/* Forward tolerances (see struct row): F, and FA for attention, whose float scores of up to
 * 35 products lose more through the exponential. */
#define F 1e-5
#define FA 1e-4
#define ROW(op, v, m, f, b, ...) {&op, {__VA_ARGS__}, v, m, f, b, 0}
#define PERF(op, v, m, ...) {&op, {__VA_ARGS__}, v, m, 0, 0, 1}
/* Five sizes around a step of 16 floats (1, 15, 16, 17, 35) of an op with one size. */
#define SWEEP16(op, v, m, f, b) ROW(op, v, m, f, b, 1), ROW(op, v, m, f, b, 15), ROW(op, v, m, f, b, 16), \
                                ROW(op, v, m, f, b, 17), ROW(op, v, m, f, b, 35)
/* Attention with one score and mask over query rows 1, 4, 5, 6, 13 (the kernels' step is 5)
 * and head sizes 1, 15, 16, 17, 35, with and without grouped heads. */
#define ATTN_SWEEP(v, m, b) ROW(OP_ATTN, v, m, FA, b, 1, 1, 1, 1, 1, 1), ROW(OP_ATTN, v, m, FA, b, 2, 2, 2, 4, 6, 15), \
    ROW(OP_ATTN, v, m, FA, b, 2, 4, 2, 5, 5, 16), ROW(OP_ATTN, v, m, FA, b, 3, 2, 1, 6, 4, 17),                      \
    ROW(OP_ATTN, v, m, FA, b, 1, 2, 2, 13, 13, 3), ROW(OP_ATTN, v, m, FA, b, 2, 1, 1, 5, 7, 35)

static const row ROWS[] = {
    SWEEP16(OP_ACT, 0, 0, F, 1e-4), SWEEP16(OP_ACT, 1, 0, F, 1e-4), SWEEP16(OP_ACT, 2, 0, F, 1e-4),
    SWEEP16(OP_ACT, 3, 0, F, 1e-4), SWEEP16(OP_DROPOUT, 0, 0, F, 1e-4),
    ROW(OP_SOFTMAX, 0, 0, F, 1e-3, 1, 1), ROW(OP_SOFTMAX, 0, 0, F, 1e-3, 3, 15), ROW(OP_SOFTMAX, 0, 0, F, 1e-3, 4, 16),
    ROW(OP_SOFTMAX, 0, 0, F, 1e-3, 5, 17), ROW(OP_SOFTMAX, 1, 0, F, 1e-3, 1, 1), ROW(OP_SOFTMAX, 1, 0, F, 1e-3, 3, 16),
    ROW(OP_SOFTMAX, 1, 0, F, 1e-3, 6, 35), ROW(OP_CE, 1, 0, F, 1e-3, 2, 1), ROW(OP_CE, 1, 0, F, 1e-3, 5, 16),
    ROW(OP_CE, 1, 0, F, 1e-3, 7, 35), ROW(OP_CE, 0, 0, F, 1e-3, 4, 17), ROW(OP_CE, 2, 0, F, 1e-3, 6, 15),
    ROW(OP_CE, 0, 1, F, 1e-3, 3, 5), ROW(OP_CE, 1, 1, F, 1e-3, 4, 16),
    ROW(OP_LN, 0, 0, F, 1e-3, 1, 1), ROW(OP_LN, 0, 0, F, 1e-3, 3, 15),
    ROW(OP_LN, 1, 0, F, 1e-3, 4, 16), ROW(OP_LN, 1, 0, F, 1e-3, 5, 17), ROW(OP_LN, 1, 0, F, 1e-3, 2, 35),
    ROW(OP_EMB, 0, 0, F, 1e-4, 1, 1, 1), ROW(OP_EMB, 0, 0, F, 1e-4, 9, 4, 16), ROW(OP_EMB, 0, 0, F, 1e-4, 12, 7, 35),
    ROW(OP_LINEAR, 0, 0, F, 1e-3, 1, 1, 1), ROW(OP_LINEAR, 1, 0, F, 1e-3, 4, 15, 5), ROW(OP_LINEAR, 1, 0, F, 1e-3, 5, 16, 16),
    ROW(OP_LINEAR, 0, 0, F, 1e-3, 6, 17, 15), ROW(OP_LINEAR, 1, 0, F, 1e-3, 13, 35, 17),
    ROW(OP_SPLIN, 0, 0, F, 1e-3, 1, 1, 1), ROW(OP_SPLIN, 1, 0, F, 1e-3, 2, 15, 2), ROW(OP_SPLIN, 1, 0, F, 1e-3, 4, 16, 5),
    ROW(OP_SPLIN, 0, 0, F, 1e-3, 5, 17, 16), ROW(OP_SPLIN, 1, 0, F, 1e-3, 13, 35, 17), ROW(OP_SPLIN, 1, 0, F, 1e-3, 7, 64, 1),
    ATTN_SWEEP(ATTN_SCORE_DOT, 0, 1e-3), ATTN_SWEEP(ATTN_SCORE_SCALED, 1, 1e-3), ATTN_SWEEP(ATTN_SCORE_SCALED, 2, 1e-3),
    ATTN_SWEEP(ATTN_SCORE_DOT, 3, 1e-3), ATTN_SWEEP(ATTN_SCORE_SCALED, 4, 1e-3), ATTN_SWEEP(ATTN_SCORE_COSINE, 0, 3e-3),
    ATTN_SWEEP(ATTN_SCORE_COSINE, 2, 3e-3), ATTN_SWEEP(ATTN_SCORE_GENERAL, 1, 2e-3), ATTN_SWEEP(ATTN_SCORE_GENERAL, 4, 2e-3),
    ATTN_SWEEP(ATTN_SCORE_ADDITIVE, 0, 2e-3), ATTN_SWEEP(ATTN_SCORE_ADDITIVE, 3, 2e-3), ATTN_SWEEP(ATTN_SCORE_DOT, 5, 1e-3),
    ATTN_SWEEP(ATTN_SCORE_COSINE, 5, 3e-3), ATTN_SWEEP(ATTN_SCORE_GENERAL, 5, 2e-3), ATTN_SWEEP(ATTN_SCORE_ADDITIVE, 4, 2e-3),
    /* Around the query tiles (16 avx2, 64 avx512) and key blocks (64); sampled differences. */
    ROW(OP_ATTN, 1, 0, FA, 1e-3, 1, 1, 1, 64, 64, 16), ROW(OP_ATTN, 1, 1, FA, 1e-3, 1, 2, 1, 65, 63, 8),
    ROW(OP_ATTN, 1, 2, FA, 1e-3, 2, 1, 1, 17, 130, 16), ROW(OP_ATTN, 1, 4, FA, 1e-3, 1, 1, 1, 63, 65, 17),
    ROW(OP_ATTN, 0, 3, FA, 1e-3, 1, 1, 1, 129, 129, 4),
    ROW(OP_RNN, 0, 0, F, 1e-3, 1, 2, 3, 4), ROW(OP_RNN, 1, 0, F, 1e-3, 1, 3, 5, 2), ROW(OP_RNN, 2, 0, F, 1e-3, 1, 2, 3, 4),
    ROW(OP_RNN, 3, 0, F, 1e-3, 1, 1, 2, 5), ROW(OP_RNN, 0, 1, F, 1e-3, 4, 2, 3, 3), ROW(OP_RNN, 1, 0, F, 1e-3, 3, 2, 2, 4),
    ROW(OP_RNN, 2, 1, F, 1e-3, 3, 2, 3, 3), ROW(OP_RNN, 3, 0, F, 1e-3, 4, 1, 2, 3),
    ROW(OP_RNN, 0, 2, F, 1e-3, 4, 4, 3, 3), ROW(OP_RNN, 1, 3, F, 1e-3, 3, 4, 2, 3), ROW(OP_RNN, 2, 3, F, 1e-3, 4, 4, 3, 2),
    ROW(OP_RNN, 3, 2, F, 1e-3, 3, 4, 2, 3),
    /* conv1d: channels around the vector widths, K = 1, 3, 4, 5, T < K, T = K, short lengths, padding. */
    ROW(OP_CONV, 0, 0, F, 1e-3, 1, 1, 1, 1, 1, 0), ROW(OP_CONV, 1, 0, F, 1e-3, 2, 6, 15, 17, 3, 0),
    ROW(OP_CONV, 1, 1, F, 1e-3, 4, 7, 16, 8, 4, 0), ROW(OP_CONV, 1, 1, F, 1e-3, 3, 9, 17, 16, 5, 0),
    ROW(OP_CONV, 1, 0, F, 1e-3, 2, 3, 8, 5, 3, 0), ROW(OP_CONV, 0, 1, F, 1e-3, 3, 2, 5, 3, 3, 1),
    ROW(OP_CONV, 1, 0, F, 1e-3, 2, 2, 3, 4, 4, 0), ROW(OP_CONV, 1, 1, F, 1e-3, 5, 8, 33, 35, 3, 2),
    ROW(OP_CONV, 1, 1, F, 1e-3, 6, 5, 4, 6, 5, 4), ROW(OP_CONV, 0, 0, F, 1e-3, 2, 3, 4, 2, 5, 1),
    ROW(OP_POOL, 0, 0, F, 1e-4, 1, 1, 1), ROW(OP_POOL, 0, 1, F, 1e-4, 4, 5, 16), ROW(OP_POOL, 0, 1, F, 1e-4, 3, 7, 17),
    ROW(OP_POOL, 1, 0, F, 1e-4, 2, 3, 15), ROW(OP_POOL, 1, 1, F, 1e-4, 4, 6, 17), ROW(OP_POOL, 1, 1, F, 1e-4, 6, 2, 35),
    /* conv2d: s = B, Cin, H, W, Cout, K; v = stride (+ 4: no bias); m = pad. Channels around the
     * vector widths, strides 1-3, padding, odd sizes, a filter as large as the padded image. */
    ROW(OP_CONV2D, 1, 0, F, 1e-3, 1, 1, 1, 1, 1, 1), ROW(OP_CONV2D, 1, 1, F, 1e-3, 2, 3, 5, 4, 4, 3),
    ROW(OP_CONV2D, 2, 0, F, 1e-3, 3, 2, 7, 6, 17, 3), ROW(OP_CONV2D, 6, 2, F, 1e-3, 2, 1, 8, 9, 16, 5),
    ROW(OP_CONV2D, 3, 1, F, 1e-3, 5, 4, 6, 7, 5, 2), ROW(OP_CONV2D, 5, 1, F, 1e-3, 1, 15, 4, 3, 3, 3),
    ROW(OP_CONV2D, 1, 2, F, 1e-3, 2, 2, 3, 3, 2, 7),
    /* max_pool2d: s = B, C, H, W, k, stride: floor mode (odd sizes), overlapping windows. */
    ROW(OP_POOL2D, 0, 0, F, 1e-4, 1, 1, 1, 1, 1, 1), ROW(OP_POOL2D, 0, 0, F, 1e-4, 2, 3, 7, 7, 2, 2),
    ROW(OP_POOL2D, 0, 0, F, 1e-4, 1, 2, 8, 9, 3, 2), ROW(OP_POOL2D, 0, 0, F, 1e-4, 3, 17, 5, 6, 3, 1),
    /* glimpse: s = B, C, H, W, size, scales; the locations of tests/ops_vision.c. */
    ROW(OP_GLIMPSE, 0, 0, F, 1e-4, 1, 1, 1, 1, 1, 1), ROW(OP_GLIMPSE, 0, 0, F, 1e-4, 6, 1, 12, 12, 4, 3),
    ROW(OP_GLIMPSE, 0, 0, F, 1e-4, 6, 2, 9, 7, 3, 2), ROW(OP_GLIMPSE, 0, 0, F, 1e-4, 3, 3, 5, 8, 2, 4),
    PERF(OP_ACT, 0, 0, 1 << 20), PERF(OP_ACT, 3, 0, 1 << 20), PERF(OP_DROPOUT, 0, 0, 1 << 20), PERF(OP_SOFTMAX, 0, 0, 512, 1024),
    PERF(OP_CE, 1, 0, 512, 8192), PERF(OP_CE, 1, 1, 512, 8192), PERF(OP_SOFTMAX, 1, 0, 512, 1024), PERF(OP_ACT, 2, 0, 1 << 20),
    PERF(OP_LN, 1, 0, 2048, 512), PERF(OP_EMB, 0, 0, 4096, 8192, 256), PERF(OP_LINEAR, 1, 0, 512, 512, 512),
    PERF(OP_SPLIN, 1, 0, 4096, 1 << 18, 2), PERF(OP_ATTN, ATTN_SCORE_SCALED, 0, 2, 8, 8, 512, 512, 64),
    PERF(OP_ATTN, ATTN_SCORE_SCALED, 1, 2, 8, 2, 512, 512, 64), PERF(OP_ATTN, ATTN_SCORE_ADDITIVE, 0, 1, 1, 1, 128, 128, 64),
    PERF(OP_RNN, 0, 0, 32, 32, 256, 256), PERF(OP_RNN, 2, 0, 32, 32, 256, 256), PERF(OP_CONV, 1, 0, 50, 50, 300, 100, 3, 0),
    PERF(OP_CONV2D, 1, 2, 64, 16, 30, 30, 32, 5), PERF(OP_POOL2D, 0, 0, 64, 32, 30, 30, 2, 2),
    PERF(OP_GLIMPSE, 0, 0, 64, 1, 100, 100, 8, 3),
};
#define NROWS (sizeof ROWS / sizeof ROWS[0])

static const char *const ISAS[] = {"ref", "avx2", "avx512"};

/* ---- Running a row ---------------------------------------------------------------------- */

static void prob_free(prob *p) {
    for (int t = 0; t < p->nin; t++) free(p->in[t]), free(p->g[t]);
    for (int o = 0; o < p->nout; o++) free(p->out[o]);
    free(p->ids), free(p->mask), free(p->aux), free(p->aux2);
}

/* L = sum over the loss outputs of out * R, in double. */
static double loss(const prob *p, float *const *R) {
    double L = 0;
    for (int o = 0; o < p->nloss; o++)
        for (size_t e = 0; e < p->n_out[o]; e++) L += (double)p->out[o][e] * R[o][e];
    return L;
}

/* Finite differences visit every element of inputs up to FD_MAX elements, and an evenly
 * spread sample of about FD_MAX of larger ones (every element of a gradient must still be
 * finite). Sanitizer builds (unoptimised, instrumented) sample fewer. */
#if defined(__SANITIZE_ADDRESS__)
#define FD_MAX 40
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FD_MAX 40
#endif
#endif
#ifndef FD_MAX
#define FD_MAX 300
#endif
static size_t fd_step(size_t n) { return n <= FD_MAX ? 1 : n / FD_MAX + 1; }

/* (L(x + h) - L(x - h)) / (x+h - x-h) for element e of input t, the steps rounded to float. */
static double central(prob *p, float *const *R, int t, size_t e, double h) {
    float x = p->in[t][e], xp = (float)(x + h), xm = (float)(x - h);
    p->in[t][e] = xp;
    p->r->op->fwd(p);
    double Lp = loss(p, R);
    p->in[t][e] = xm;
    p->r->op->fwd(p);
    double Lm = loss(p, R);
    p->in[t][e] = x;
    return (Lp - Lm) / ((double)xp - (double)xm);
}

static void row_name(const row *r, const char *isa, char *buf, size_t n) {
    snprintf(buf, n, "%s v%d m%d [%d %d %d %d %d %d] %s", r->op->name, r->v, r->m, r->s[0], r->s[1], r->s[2], r->s[3],
             r->s[4], r->s[5], isa);
}

static void check_row(const row *r, const char *isa) {
    char name[128], what[192];
    row_name(r, isa, name, sizeof name);
    prob p = {.r = r};
    g_seed = 1000 + 37 * (uint64_t)(r - ROWS);
    r->op->init(&p);
    CHECK(r->op->fwd(&p) == ATTN_OK, "%s: forward: %s", name, attn_last_error());
    /* The forward against the double one. */
    double *ref[MAXO], *got = NULL;
    for (int o = 0; o < p.nout; o++) ref[o] = calloc(p.n_out[o] + 1, sizeof(double));
    r->op->ref(&p, ref);
    for (int o = 0; o < p.nout; o++) {
        got = realloc(got, (p.n_out[o] + 1) * sizeof(double));
        for (size_t e = 0; e < p.n_out[o]; e++) got[e] = p.out[o][e];
        snprintf(what, sizeof what, "%s: output %d vs double", name, o);
        tu_close_d(what, got, ref[o], p.n_out[o], r->ftol, r->ftol * 0.1);
    }
    /* The backward against central finite differences of the float forward. */
    float *R[MAXO];
    for (int o = 0; o < p.nout; o++) R[o] = o < p.nloss ? frand(p.n_out[o], 1.0f) : NULL;
    for (int t = 0; t < p.nin; t++)
        for (size_t e = 0; p.g[t] && e < p.n_in[t]; e++) p.g[t][e] = p.acc[t] ? 1.0f : NAN;
    CHECK(r->op->bwd(&p, R) == ATTN_OK, "%s: backward: %s", name, attn_last_error());
    double *fd[MAXT] = {0}, big = 1e-3;
    for (int t = 0; t < p.nin; t++) {
        if (!p.g[t]) continue;
        fd[t] = malloc((p.n_in[t] + 1) * sizeof(double));
        for (size_t e = 0; e < p.n_in[t]; e += fd_step(p.n_in[t])) {
            double h = 1e-2 * fmax(1.0, fabs(p.in[t][e]));
            /* Richardson's extrapolation of steps h and h/2 cancels the h^2 error term. */
            fd[t][e] = (4 * central(&p, R, t, e, h / 2) - central(&p, R, t, e, h)) / 3;
            big = fmax(big, fabs(fd[t][e]));
        }
    }
    for (int t = 0; t < p.nin; t++) {
        if (!p.g[t]) continue;
        size_t n = 0, step = fd_step(p.n_in[t]);
        got = realloc(got, (p.n_in[t] + 1) * sizeof(double));
        for (size_t e = 0; e < p.n_in[t]; e += step, n++) got[n] = p.g[t][e] - (p.acc[t] ? 1.0 : 0.0), fd[t][n] = fd[t][e];
        int finite = 1;
        for (size_t e = 0; e < p.n_in[t]; e++) finite &= isfinite(p.g[t][e]) != 0;
        CHECK(finite, "%s: d%s has a NaN or inf", name, p.iname[t]);
        snprintf(what, sizeof what, "%s: d%s vs finite differences", name, p.iname[t]);
        tu_close_d(what, got, fd[t], n, r->btol, r->btol * big);
        free(fd[t]);
    }
    for (int o = 0; o < p.nout; o++) free(ref[o]), free(R[o]);
    free(got);
    prob_free(&p);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of 7 runs of forward + backward; GFLOP/s counts the backward as twice the forward. */
static void perf_row(const row *r, const char *isa) {
    char name[128];
    row_name(r, isa, name, sizeof name);
    prob p = {.r = r};
    r->op->init(&p);
    float *R[MAXO] = {0};
    for (int o = 0; o < p.nout; o++) R[o] = frand(p.n_out[o], 1.0f);
    double t[7];
    for (int k = 0; k < 7; k++) {
        double t0 = now();
        r->op->fwd(&p);
        r->op->bwd(&p, R);
        t[k] = now() - t0;
    }
    qsort(t, 7, sizeof t[0], cmp_double);
    if (r->op->flops) {
        printf("%-60s %9.3f ms %8.2f GFLOP/s\n", name, t[3] * 1e3, 3 * r->op->flops(&p) / t[3] * 1e-9);
    } else {
        double bytes = 0;
        for (int i = 0; i < p.nin; i++) bytes += 3.0 * p.n_in[i] * sizeof(float);
        for (int o = 0; o < p.nout; o++) bytes += 2.0 * p.n_out[o] * sizeof(float);
        printf("%-60s %9.3f ms %8.2f GB/s\n", name, t[3] * 1e3, bytes / t[3] * 1e-9);
    }
    for (int o = 0; o < p.nout; o++) free(R[o]);
    prob_free(&p);
}

int main(int argc, char **argv) {
    int perf = argc > 1 && !strcmp(argv[1], "perf");
    const char *only = perf && argc > 2 ? argv[2] : NULL;
    int skipped = 0, rows = 0;
    for (size_t i = 0; i < sizeof ISAS / sizeof ISAS[0]; i++) {
        if (attn_set_isa(ISAS[i]) != ATTN_OK) {
            printf("SKIP %s: this CPU cannot run it\n", ISAS[i]);
            skipped++;
            continue;
        }
        for (size_t k = 0; k < NROWS; k++) {
            const row *r = &ROWS[k];
            if (r->perf != perf || (only && strcmp(only, r->op->name))) continue;
            if (perf) perf_row(r, ISAS[i]);
            else check_row(r, ISAS[i]), rows++;
        }
    }
    if (perf) return 0;
    printf("%d rows checked over %d ISA paths, %d paths skipped\n", rows, 3 - skipped, skipped);
    return tu_summary("test_ops");
}
