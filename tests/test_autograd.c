/* The autograd tape: every op's backward against central finite differences of the forward
 * run through the tape itself (objective L = sum(y * R) for a fixed random R, accumulated in
 * double), a small composed model (embedding -> GRU encoder -> additive and general
 * attention -> GRU/LSTM decoder cells -> linear -> cross-entropy) checked the same way, and
 * the tape's machinery: sticky errors, gradient accumulation into leaves, views, arena reuse
 * across resets, evaluation mode, and bitwise identical gradients for 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/autograd.h"
#include "attn/layers.h"
#include "attn/train.h"
#include "testutil.h"

#define MAXL 16
#define FD_EPS 1e-2
#define FD_RTOL 1e-3
#define FD_ATOL 2e-4
#define SAMPLES 16

typedef struct {
    int n;
    int ndim[MAXL];
    int64_t shape[MAXL][4], numel[MAXL];
    float *data[MAXL], *grad[MAXL];
    int constant[MAXL];
    attn_var *v[MAXL];
} leaves;

typedef attn_var *(*build_fn)(attn_graph *g, attn_var **v, void *ctx);

static uint64_t g_seed = 1000;

static int leaf(leaves *L, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, float scale) {
    int i = L->n++;
    int64_t d[4] = {d0, d1, d2, d3};
    L->ndim[i] = ndim;
    L->numel[i] = 1;
    for (int k = 0; k < ndim; k++) L->shape[i][k] = d[k], L->numel[i] *= d[k];
    L->data[i] = malloc((size_t)L->numel[i] * sizeof(float));
    L->grad[i] = calloc((size_t)L->numel[i], sizeof(float));
    tu_randn(L->data[i], (size_t)L->numel[i], g_seed++);
    for (int64_t k = 0; k < L->numel[i]; k++) L->data[i][k] *= scale;
    L->constant[i] = 0;
    return i;
}

static void leaves_free(leaves *L) {
    for (int i = 0; i < L->n; i++) free(L->data[i]), free(L->grad[i]);
    L->n = 0;
}

/* With g_fresh, every leaf goes through a scale by 1 first, so that the op under test sees
 * intermediate nodes whose gradient buffers it allocates ("fresh": written, not added to);
 * without, it adds into the leaves' buffers. Both paths are checked. */
static int g_fresh;

static attn_var *build_all(attn_graph *g, leaves *L, build_fn f, void *ctx) {
    attn_graph_reset(g);
    for (int i = 0; i < L->n; i++) {
        L->v[i] = attn_graph_leaf(g, L->ndim[i], L->shape[i], L->data[i], L->constant[i] ? NULL : L->grad[i]);
        if (g_fresh && !L->constant[i]) L->v[i] = attn_ag_scale(g, L->v[i], 1.0f);
    }
    return f(g, L->v, ctx);
}

static double objective(const attn_var *y, const float *R) {
    double s = 0.0;
    for (int64_t i = 0; i < y->numel; i++) s += (double)y->data[i] * R[i];
    return s;
}

/* Runs the forward and the backward, then compares every leaf's gradient (up to SAMPLES
 * elements each) with central differences. */
static void fd_check1(const char *name, attn_graph *g, leaves *L, build_fn f, void *ctx) {
    attn_var *y = build_all(g, L, f, ctx);
    CHECK(y != NULL, "%s: forward failed: %s", name, attn_last_error());
    if (!y) return;
    int64_t ny = y->numel;
    float *R = malloc((size_t)ny * sizeof(float));
    tu_randn(R, (size_t)ny, 77);
    for (int i = 0; i < L->n; i++) memset(L->grad[i], 0, (size_t)L->numel[i] * sizeof(float));
    int st = attn_graph_backward_from(g, y, R);
    CHECK(st == ATTN_OK, "%s: backward failed: %s", name, attn_last_error());
    for (int i = 0; i < L->n; i++) {
        if (L->constant[i]) continue;
        int64_t n = L->numel[i], m = n < SAMPLES ? n : SAMPLES;
        float *ana = malloc((size_t)m * sizeof(float)), *num = malloc((size_t)m * sizeof(float));
        attn_rng r;
        attn_rng_seed(&r, 5 + (uint64_t)i);
        for (int64_t k = 0; k < m; k++) {
            int64_t j = n <= SAMPLES ? k : (int64_t)(attn_rng_u32(&r) % (uint32_t)n);
            ana[k] = L->grad[i][j];
            float save = L->data[i][j];
            L->data[i][j] = save + (float)FD_EPS;
            double fp = objective(build_all(g, L, f, ctx), R);
            L->data[i][j] = save - (float)FD_EPS;
            double fm = objective(build_all(g, L, f, ctx), R);
            L->data[i][j] = save;
            num[k] = (float)((fp - fm) / (2.0 * FD_EPS));
        }
        char what[128];
        snprintf(what, sizeof what, "%.100s: d/d leaf %d", name, i);
        tu_close(what, ana, num, (size_t)m, FD_RTOL, FD_ATOL);
        free(ana), free(num);
    }
    free(R);
}

static void fd_check(const char *name, attn_graph *g, leaves *L, build_fn f, void *ctx) {
    char n2[160];
    g_fresh = 0;
    fd_check1(name, g, L, f, ctx);
    g_fresh = 1;
    snprintf(n2, sizeof n2, "%s (fresh)", name);
    fd_check1(n2, g, L, f, ctx);
    g_fresh = 0;
}

/* ---- Cases ----------------------------------------------------------------------------- */

static attn_var *b_linear(attn_graph *g, attn_var **v, void *c) { return attn_ag_linear(g, v[0], v[1], c ? v[2] : NULL); }

typedef struct { int ta, tb; } mm_ctx;
static attn_var *b_matmul(attn_graph *g, attn_var **v, void *c) {
    mm_ctx *m = c;
    return attn_ag_matmul(g, v[0], v[1], m->ta, m->tb);
}

static attn_var *b_add(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_add(g, v[0], v[1]); }
static attn_var *b_sub(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_sub(g, v[0], v[1]); }
static attn_var *b_mul(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_mul(g, v[0], v[1]); }
static attn_var *b_scale(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_scale(g, v[0], -1.75f); }
static attn_var *b_tanh(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_tanh(g, v[0]); }
static attn_var *b_sigmoid(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_sigmoid(g, v[0]); }
static attn_var *b_relu(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_relu(g, v[0]); }
static attn_var *b_gelu(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_gelu(g, v[0]); }
static attn_var *b_softmax(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_softmax(g, v[0]); }
static attn_var *b_log_softmax(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_log_softmax(g, v[0]); }
static attn_var *b_sum(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_sum(g, v[0]); }
static attn_var *b_mean(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_mean(g, v[0]); }
static attn_var *b_sum_axis(attn_graph *g, attn_var **v, void *c) { return attn_ag_sum_axis(g, v[0], *(int *)c); }
static attn_var *b_mean_axis(attn_graph *g, attn_var **v, void *c) { return attn_ag_mean_axis(g, v[0], *(int *)c); }
static attn_var *b_transpose(attn_graph *g, attn_var **v, void *c) { (void)c; return attn_ag_transpose(g, v[0]); }

static attn_var *b_concat(attn_graph *g, attn_var **v, void *c) { return attn_ag_concat(g, 3, v, *(int *)c); }
static attn_var *b_stack(attn_graph *g, attn_var **v, void *c) { return attn_ag_stack(g, 2, v, *(int *)c); }
static attn_var *b_slice(attn_graph *g, attn_var **v, void *c) {
    (void)c;
    /* a slice and a select of the same node: their gradients add up */
    attn_var *s = attn_ag_slice(g, v[0], 1, 1, 3);             /* (2, 2, 3) */
    attn_var *t = attn_ag_select(g, v[0], -1, 2);              /* (2, 4) */
    attn_var *t3 = attn_ag_reshape(g, t, 3, (int64_t[]){2, 2, 2});
    return attn_ag_add(g, attn_ag_tanh(g, s), attn_ag_slice(g, attn_ag_concat(g, 2, (attn_var *[]){t3, t3}, 2), 2, 0, 3));
}
static attn_var *b_reshape(attn_graph *g, attn_var **v, void *c) {
    (void)c;
    attn_var *r = attn_ag_reshape(g, v[0], 2, (int64_t[]){-1, 6});
    return attn_ag_mul(g, r, attn_ag_reshape(g, v[0], 2, (int64_t[]){4, 6})); /* x * x through two views */
}

typedef struct { const int32_t *ids; int ndim; int64_t shape[3]; int pad; } emb_ctx;
static attn_var *b_embedding(attn_graph *g, attn_var **v, void *c) {
    emb_ctx *e = c;
    return attn_ag_embedding(g, v[0], e->ids, e->ndim, e->shape, e->pad);
}

typedef struct { const int32_t *t; int ignore; float eps; } ce_ctx;
static attn_var *b_ce(attn_graph *g, attn_var **v, void *c) {
    ce_ctx *e = c;
    return attn_ag_cross_entropy(g, v[0], e->t, e->ignore, e->eps);
}

typedef struct { int stride, pad, bias; } conv2d_ctx;
static attn_var *b_conv2d(attn_graph *g, attn_var **v, void *c) {
    conv2d_ctx *k = c;
    return attn_ag_conv2d(g, v[0], v[1], k->bias ? v[2] : NULL, k->stride, k->pad);
}
static attn_var *b_pool2d(attn_graph *g, attn_var **v, void *c) { return attn_ag_max_pool2d(g, v[0], ((int *)c)[0], ((int *)c)[1]); }
static attn_var *b_glimpse(attn_graph *g, attn_var **v, void *c) { return attn_ag_glimpse(g, v[0], c, 3, 3); }

static attn_var *b_layernorm(attn_graph *g, attn_var **v, void *c) {
    return c ? attn_ag_layernorm(g, v[0], v[1], v[2], 1e-5f) : attn_ag_layernorm(g, v[0], NULL, NULL, 1e-5f);
}

static attn_var *b_dropout(attn_graph *g, attn_var **v, void *c) {
    (void)c;
    attn_graph_seed(g, 42); /* the same mask at every evaluation */
    return attn_ag_dropout(g, attn_ag_tanh(g, v[0]), 0.3f);
}

static attn_var *b_gru_cell(attn_graph *g, attn_var **v, void *c) {
    return attn_ag_gru_cell(g, v[0], c ? v[1] : NULL, v[2], v[3], v[4], v[5]);
}
static attn_var *b_lstm_cell(attn_graph *g, attn_var **v, void *c) {
    (void)c;
    attn_var *cn;
    attn_var *h = attn_ag_lstm_cell(g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], &cn);
    return attn_ag_concat(g, 2, (attn_var *[]){h, cn}, 0);
}

typedef struct { const int32_t *len; int reverse; } rnn_ctx;
static attn_var *b_gru_seq(attn_graph *g, attn_var **v, void *c) {
    rnn_ctx *r = c;
    attn_var *hn;
    attn_var *y = attn_ag_gru(g, v[0], v[1], v[2], v[3], v[4], v[5], r->len, r->reverse, &hn);
    if (!y) return NULL;
    attn_var *y2 = attn_ag_reshape(g, y, 2, (int64_t[]){-1, y->shape[2]});
    return attn_ag_concat(g, 2, (attn_var *[]){y2, hn}, 0);
}
static attn_var *b_lstm_seq(attn_graph *g, attn_var **v, void *c) {
    rnn_ctx *r = c;
    attn_var *hn, *cn;
    attn_var *y = attn_ag_lstm(g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], r->len, r->reverse, &hn, &cn);
    if (!y) return NULL;
    attn_var *y2 = attn_ag_reshape(g, y, 2, (int64_t[]){-1, y->shape[2]});
    return attn_ag_concat(g, 3, (attn_var *[]){y2, hn, cn}, 0);
}
/* Only the final cell state reaches the objective (the entry must still run). */
static attn_var *b_lstm_cn_only(attn_graph *g, attn_var **v, void *c) {
    rnn_ctx *r = c;
    attn_var *cn;
    attn_var *y = attn_ag_lstm(g, v[0], NULL, NULL, v[3], v[4], v[5], v[6], r->len, r->reverse, NULL, &cn);
    return y ? cn : NULL;
}

typedef struct {
    attn_ag_attention_opts o;
    int kv_same;
    int W0; /* index of the first score parameter leaf */
} att_ctx;
static attn_var *b_attention(attn_graph *g, attn_var **v, void *c) {
    att_ctx *a = c;
    attn_ag_attention_opts o = a->o;
    if (o.score == ATTN_SCORE_GENERAL) o.W = v[a->W0];
    if (o.score == ATTN_SCORE_ADDITIVE) {
        o.Wa = v[a->W0], o.ba = v[a->W0 + 1], o.Ua = v[a->W0 + 2], o.bu = v[a->W0 + 3], o.va = v[a->W0 + 4], o.bv = v[a->W0 + 5];
    }
    return attn_ag_attention(g, v[0], v[1], a->kv_same ? v[1] : v[2], &o, NULL);
}

static attn_var *b_self_attention(attn_graph *g, attn_var **v, void *c) {
    att_ctx *a = c;
    return attn_ag_attention(g, v[0], v[0], v[0], &a->o, NULL);
}

/* ---- The composed model ---------------------------------------------------------------- */

enum { S_EMB, S_EWIH, S_EWHH, S_EBIH, S_EBHH, S_DWIH, S_DWHH, S_DBIH, S_DBHH, S_WA, S_UA, S_VA, S_WG, S_OW, S_OB, S_N };
#define V 7
#define E 4
#define HD 5
#define B 2
#define TS 4
#define TT 3

static const int32_t src_tm[TS * B] = {1, 2, 3, 4, 5, 6, 6, 0}; /* time-major (TS, B); batch 1 has length 3 */
static const int32_t src_len[B] = {4, 3};
static const int32_t tgt_in[TT][B] = {{1, 1}, {3, 5}, {2, 6}};
static const int32_t tgt_out[TT * B] = {3, 5, 2, 6, 4, 0}; /* (TT, B) row-major; 0 = pad, ignored */

static attn_var *b_model(attn_graph *g, attn_var **v, void *c) {
    int lstm = c != NULL;
    /* Encoder: embedding and a GRU over the padded batch. */
    attn_var *x = attn_ag_embedding(g, v[S_EMB], src_tm, 2, (int64_t[]){TS, B}, 0);
    attn_var *hn;
    attn_var *enc = attn_ag_gru(g, x, NULL, v[S_EWIH], v[S_EWHH], v[S_EBIH], v[S_EBHH], src_len, 0, &hn); /* (TS, B, HD) */
    attn_ag_attention_opts add = {0}, gen = {0};
    add.layout = gen.layout = ATTN_AG_NBHD;
    add.score = ATTN_SCORE_ADDITIVE;
    add.Wa = v[S_WA], add.Ua = v[S_UA], add.va = v[S_VA];
    add.mask.key_lengths = src_len;
    gen.score = ATTN_SCORE_GENERAL;
    gen.W = v[S_WG];
    gen.mask.key_lengths = src_len;
    attn_var *h = hn, *cst = NULL, *outs[TT];
    for (int t = 0; t < TT; t++) {
        /* Input feeding: the previous target word's embedding. */
        attn_var *y = attn_ag_embedding(g, v[S_EMB], tgt_in[t], 1, (int64_t[]){B}, 0); /* (B, E) */
        attn_var *q = attn_ag_reshape(g, h, 3, (int64_t[]){1, B, HD});
        attn_var *ctx = attn_ag_attention(g, q, enc, enc, t % 2 ? &gen : &add, NULL);
        attn_var *in = attn_ag_concat(g, 2, (attn_var *[]){y, attn_ag_reshape(g, ctx, 2, (int64_t[]){B, HD})}, 1);
        if (lstm) h = attn_ag_lstm_cell(g, in, h, cst, v[S_DWIH], v[S_DWHH], v[S_DBIH], v[S_DBHH], &cst);
        else h = attn_ag_gru_cell(g, in, h, v[S_DWIH], v[S_DWHH], v[S_DBIH], v[S_DBHH]);
        outs[t] = attn_ag_dropout(g, h, 0.0f);
    }
    attn_var *hs = attn_ag_stack(g, TT, outs, 0);                      /* (TT, B, HD) */
    attn_var *logits = attn_ag_linear(g, attn_ag_tanh(g, hs), v[S_OW], v[S_OB]); /* (TT, B, V) */
    return attn_ag_cross_entropy(g, logits, tgt_out, 0, 0.1f);
}

static void model_leaves(leaves *L, int lstm) {
    int G = lstm ? 4 : 3;
    leaf(L, 2, V, E, 0, 0, 1.0f);
    leaf(L, 2, 3 * HD, E, 0, 0, 0.5f), leaf(L, 2, 3 * HD, HD, 0, 0, 0.5f), leaf(L, 1, 3 * HD, 0, 0, 0, 0.3f), leaf(L, 1, 3 * HD, 0, 0, 0, 0.3f);
    leaf(L, 2, G * HD, E + HD, 0, 0, 0.5f), leaf(L, 2, G * HD, HD, 0, 0, 0.5f), leaf(L, 1, G * HD, 0, 0, 0, 0.3f), leaf(L, 1, G * HD, 0, 0, 0, 0.3f);
    leaf(L, 2, 6, HD, 0, 0, 0.5f), leaf(L, 2, 6, HD, 0, 0, 0.5f), leaf(L, 1, 6, 0, 0, 0, 0.5f);
    leaf(L, 2, HD, HD, 0, 0, 0.5f);
    leaf(L, 2, V, HD, 0, 0, 0.7f), leaf(L, 1, V, 0, 0, 0, 0.2f);
}

/* ---- Tests ----------------------------------------------------------------------------- */

static void test_ops(attn_graph *g) {
    leaves L = {0};
    /* linear, with and without bias, over (2, 3, 4) rows */
    leaf(&L, 3, 2, 3, 4, 0, 1.0f), leaf(&L, 2, 5, 4, 0, 0, 0.5f), leaf(&L, 1, 5, 0, 0, 0, 0.5f);
    fd_check("linear", g, &L, b_linear, (void *)1);
    fd_check("linear no bias", g, &L, b_linear, NULL);
    leaves_free(&L);

    /* matmul: batched, every transpose, and a shared 2-D right operand */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            mm_ctx m = {ta, tb};
            char name[64];
            leaf(&L, 3, 2, ta ? 4 : 3, ta ? 3 : 4, 0, 1.0f);
            leaf(&L, 3, 2, tb ? 5 : 4, tb ? 4 : 5, 0, 1.0f);
            snprintf(name, sizeof name, "matmul ta=%d tb=%d", ta, tb);
            fd_check(name, g, &L, b_matmul, &m);
            leaves_free(&L);
            leaf(&L, 3, 2, ta ? 4 : 3, ta ? 3 : 4, 0, 1.0f);
            leaf(&L, 2, tb ? 5 : 4, tb ? 4 : 5, 0, 0, 1.0f);
            snprintf(name, sizeof name, "matmul shared ta=%d tb=%d", ta, tb);
            fd_check(name, g, &L, b_matmul, &m);
            leaves_free(&L);
        }

    /* broadcasting binaries: same shape, suffix (bias row), general */
    int64_t bshapes[3][3] = {{2, 3, 4}, {3, 4, 0}, {3, 1, 0}};
    int bnd[3] = {3, 2, 2};
    const char *bname[3] = {"same", "suffix", "general"};
    for (int k = 0; k < 3; k++) {
        char name[64];
        leaf(&L, 3, 2, 3, 4, 0, 1.0f);
        leaf(&L, bnd[k], bshapes[k][0], bshapes[k][1], bshapes[k][2], 0, 1.0f);
        snprintf(name, sizeof name, "add %s", bname[k]);
        fd_check(name, g, &L, b_add, NULL);
        snprintf(name, sizeof name, "sub %s", bname[k]);
        fd_check(name, g, &L, b_sub, NULL);
        snprintf(name, sizeof name, "mul %s", bname[k]);
        fd_check(name, g, &L, b_mul, NULL);
        leaves_free(&L);
    }
    /* general broadcast on a leading axis: (2, 3, 4) * (2, 1, 4) */
    leaf(&L, 3, 2, 3, 4, 0, 1.0f), leaf(&L, 3, 2, 1, 4, 0, 1.0f);
    fd_check("mul general leading", g, &L, b_mul, NULL);
    leaves_free(&L);

    /* elementwise */
    leaf(&L, 2, 4, 5, 0, 0, 1.0f);
    fd_check("scale", g, &L, b_scale, NULL);
    fd_check("tanh", g, &L, b_tanh, NULL);
    fd_check("sigmoid", g, &L, b_sigmoid, NULL);
    fd_check("gelu", g, &L, b_gelu, NULL);
    fd_check("softmax", g, &L, b_softmax, NULL);
    fd_check("log_softmax", g, &L, b_log_softmax, NULL);
    fd_check("sum", g, &L, b_sum, NULL);
    fd_check("mean", g, &L, b_mean, NULL);
    fd_check("transpose", g, &L, b_transpose, NULL);
    fd_check("dropout", g, &L, b_dropout, NULL);
    for (int ax = -2; ax < 2; ax++) {
        fd_check("sum_axis", g, &L, b_sum_axis, &ax);
        fd_check("mean_axis", g, &L, b_mean_axis, &ax);
    }
    for (int64_t i = 0; i < L.numel[0]; i++) /* relu: keep inputs away from the kink */
        L.data[0][i] += L.data[0][i] >= 0 ? 0.1f : -0.1f;
    fd_check("relu", g, &L, b_relu, NULL);
    leaves_free(&L);

    /* shapes */
    for (int ax = 0; ax < 3; ax++) {
        leaf(&L, 3, ax == 0 ? 1 : 2, ax == 1 ? 1 : 3, ax == 2 ? 1 : 4, 0, 1.0f);
        leaf(&L, 3, ax == 0 ? 2 : 2, ax == 1 ? 2 : 3, ax == 2 ? 2 : 4, 0, 1.0f);
        leaf(&L, 3, ax == 0 ? 3 : 2, ax == 1 ? 3 : 3, ax == 2 ? 3 : 4, 0, 1.0f);
        fd_check("concat", g, &L, b_concat, &ax);
        leaves_free(&L);
    }
    for (int ax = 0; ax <= 2; ax++) {
        leaf(&L, 2, 3, 4, 0, 0, 1.0f), leaf(&L, 2, 3, 4, 0, 0, 1.0f);
        fd_check("stack", g, &L, b_stack, &ax);
        leaves_free(&L);
    }
    leaf(&L, 3, 2, 4, 3, 0, 1.0f);
    fd_check("slice/select", g, &L, b_slice, NULL);
    fd_check("reshape views", g, &L, b_reshape, NULL);
    leaves_free(&L);

    /* embedding: repeated ids, a padding row that gets no gradient */
    {
        static const int32_t ids[6] = {1, 3, 1, 0, 4, 3};
        emb_ctx e = {ids, 2, {2, 3, 0}, -1};
        leaf(&L, 2, 5, 3, 0, 0, 1.0f);
        fd_check("embedding", g, &L, b_embedding, &e);
        e.pad = 0;
        attn_var *y = build_all(g, &L, b_embedding, &e);
        float *R = malloc((size_t)y->numel * sizeof(float));
        for (int64_t i = 0; i < y->numel; i++) R[i] = 1.0f;
        memset(L.grad[0], 0, (size_t)L.numel[0] * sizeof(float));
        attn_graph_backward_from(g, y, R);
        CHECK(L.grad[0][0] == 0.0f && L.grad[0][1] == 0.0f && L.grad[0][2] == 0.0f, "padding row got a gradient");
        CHECK(L.grad[0][3] == 2.0f, "row 1 used twice: %g", (double)L.grad[0][3]);
        free(R);
        leaves_free(&L);
    }

    /* cross-entropy: ignored targets, label smoothing, 3-D logits */
    {
        static const int32_t t[6] = {2, -100, 0, 4, 4, 1}, t2[6] = {2, 3, 0, 4, 4, 1};
        ce_ctx c0 = {t, -100, 0.0f}, c1 = {t, -100, 0.25f}, c2 = {t2, 4, 0.1f};
        leaf(&L, 3, 2, 3, 5, 0, 1.5f);
        fd_check("cross_entropy", g, &L, b_ce, &c0);
        fd_check("cross_entropy smoothing", g, &L, b_ce, &c1);
        fd_check("cross_entropy ignore 4", g, &L, b_ce, &c2);
        leaves_free(&L);
    }

    /* layernorm with and without the affine parameters */
    leaf(&L, 3, 2, 3, 6, 0, 1.0f), leaf(&L, 1, 6, 0, 0, 0, 1.0f), leaf(&L, 1, 6, 0, 0, 0, 1.0f);
    for (int64_t i = 0; i < 6; i++) L.data[1][i] += 1.0f;
    fd_check("layernorm", g, &L, b_layernorm, (void *)1);
    fd_check("layernorm plain", g, &L, b_layernorm, NULL);
    leaves_free(&L);

    /* conv2d: padding, stride 2 and odd sizes, a rectangular filter, with and without bias */
    {
        conv2d_ctx c1 = {1, 1, 1}, c2 = {2, 1, 1}, c3 = {2, 0, 0};
        leaf(&L, 4, 2, 3, 5, 6, 1.0f), leaf(&L, 4, 4, 3, 3, 2, 0.5f), leaf(&L, 1, 4, 0, 0, 0, 0.5f);
        fd_check("conv2d pad 1", g, &L, b_conv2d, &c1);
        fd_check("conv2d stride 2", g, &L, b_conv2d, &c2);
        fd_check("conv2d stride 2 no bias", g, &L, b_conv2d, &c3);
        leaves_free(&L);
    }
    /* max_pool2d: floor mode and overlapping windows; distinct inputs 0.05 apart, beyond the
     * differences' step, so no argmax moves */
    {
        int k22[2] = {2, 2}, k31[2] = {3, 1};
        leaf(&L, 4, 2, 2, 5, 7, 1.0f);
        for (int64_t i = 0; i < L.numel[0]; i++) L.data[0][i] = 0.05f * (float)((i * 37) % L.numel[0]) - 3.5f;
        fd_check("max_pool2d 2x2", g, &L, b_pool2d, k22);
        fd_check("max_pool2d 3 stride 1", g, &L, b_pool2d, k31);
        leaves_free(&L);
    }
    /* the glimpse sensor: 3 scales of 3 x 3 at the centre, a corner, partly outside */
    {
        float loc[6] = {0, 0, -1, 1, 0.9f, -1.3f};
        leaf(&L, 4, 3, 2, 9, 10, 1.0f);
        fd_check("glimpse", g, &L, b_glimpse, loc);
        leaves_free(&L);
    }
}

static void test_rnn(attn_graph *g) {
    leaves L = {0};
    /* GRU cell: x (3, 4), h (3, 5), weights for Hd = 5 */
    leaf(&L, 2, 3, 4, 0, 0, 1.0f), leaf(&L, 2, 3, 5, 0, 0, 1.0f);
    leaf(&L, 2, 15, 4, 0, 0, 0.5f), leaf(&L, 2, 15, 5, 0, 0, 0.5f), leaf(&L, 1, 15, 0, 0, 0, 0.5f), leaf(&L, 1, 15, 0, 0, 0, 0.5f);
    fd_check("gru_cell", g, &L, b_gru_cell, (void *)1);
    fd_check("gru_cell h0 = 0", g, &L, b_gru_cell, NULL);
    leaves_free(&L);
    /* LSTM cell */
    leaf(&L, 2, 3, 4, 0, 0, 1.0f), leaf(&L, 2, 3, 5, 0, 0, 1.0f), leaf(&L, 2, 3, 5, 0, 0, 1.0f);
    leaf(&L, 2, 20, 4, 0, 0, 0.5f), leaf(&L, 2, 20, 5, 0, 0, 0.5f), leaf(&L, 1, 20, 0, 0, 0, 0.5f), leaf(&L, 1, 20, 0, 0, 0, 0.5f);
    fd_check("lstm_cell", g, &L, b_lstm_cell, NULL);
    leaves_free(&L);
    /* sequences: x (T=4, B=3, I=3), lengths, both directions */
    static const int32_t len[3] = {4, 2, 3};
    for (int rev = 0; rev < 2; rev++) {
        rnn_ctx r = {len, rev}, r0 = {NULL, rev};
        leaf(&L, 3, 4, 3, 3, 0, 1.0f), leaf(&L, 2, 3, 4, 0, 0, 1.0f);
        leaf(&L, 2, 12, 3, 0, 0, 0.5f), leaf(&L, 2, 12, 4, 0, 0, 0.5f), leaf(&L, 1, 12, 0, 0, 0, 0.5f), leaf(&L, 1, 12, 0, 0, 0, 0.5f);
        fd_check(rev ? "gru reverse lengths" : "gru lengths", g, &L, b_gru_seq, &r);
        fd_check(rev ? "gru reverse" : "gru", g, &L, b_gru_seq, &r0);
        leaves_free(&L);
        leaf(&L, 3, 4, 3, 3, 0, 1.0f), leaf(&L, 2, 3, 4, 0, 0, 1.0f), leaf(&L, 2, 3, 4, 0, 0, 1.0f);
        leaf(&L, 2, 16, 3, 0, 0, 0.5f), leaf(&L, 2, 16, 4, 0, 0, 0.5f), leaf(&L, 1, 16, 0, 0, 0, 0.5f), leaf(&L, 1, 16, 0, 0, 0, 0.5f);
        fd_check(rev ? "lstm reverse lengths" : "lstm lengths", g, &L, b_lstm_seq, &r);
        fd_check(rev ? "lstm reverse" : "lstm", g, &L, b_lstm_seq, &r0);
        L.constant[1] = L.constant[2] = 1;
        fd_check("lstm c_n only", g, &L, b_lstm_cn_only, &r);
        leaves_free(&L);
    }
}

static void test_attention(attn_graph *g) {
    leaves L = {0};
    static const int32_t kl[2] = {5, 3};
    /* BHND, scaled dot, causal, grouped heads (H 4, Hkv 2) */
    {
        att_ctx a = {{0}, 0, 0};
        a.o.layout = ATTN_AG_BHND;
        a.o.score = ATTN_SCORE_SCALED;
        a.o.mask.causal = 1;
        leaf(&L, 4, 2, 4, 3, 4, 1.0f), leaf(&L, 4, 2, 2, 5, 4, 1.0f), leaf(&L, 4, 2, 2, 5, 3, 1.0f);
        fd_check("attention bhnd causal gqa", g, &L, b_attention, &a);
        leaves_free(&L);
    }
    /* BNHD, 2 heads, key lengths, general score */
    {
        att_ctx a = {{0}, 0, 3};
        a.o.layout = ATTN_AG_BNHD;
        a.o.heads = 2;
        a.o.score = ATTN_SCORE_GENERAL;
        a.o.mask.key_lengths = kl;
        leaf(&L, 3, 2, 3, 8, 0, 1.0f), leaf(&L, 3, 2, 5, 6, 0, 1.0f), leaf(&L, 3, 2, 5, 4, 0, 1.0f);
        leaf(&L, 2, 4, 3, 0, 0, 0.5f);
        fd_check("attention bnhd general lengths", g, &L, b_attention, &a);
        leaves_free(&L);
    }
    /* NBHD (time-major), additive, K = V the same node */
    {
        att_ctx a = {{0}, 1, 2};
        a.o.layout = ATTN_AG_NBHD;
        a.o.score = ATTN_SCORE_ADDITIVE;
        a.o.mask.key_lengths = kl;
        leaf(&L, 3, 3, 2, 4, 0, 1.0f), leaf(&L, 3, 5, 2, 6, 0, 1.0f);
        leaf(&L, 2, 7, 4, 0, 0, 0.5f), leaf(&L, 1, 7, 0, 0, 0, 0.5f), leaf(&L, 2, 7, 6, 0, 0, 0.5f), leaf(&L, 1, 7, 0, 0, 0, 0.5f),
            leaf(&L, 1, 7, 0, 0, 0, 0.5f), leaf(&L, 1, 1, 0, 0, 0, 0.5f);
        fd_check("attention nbhd additive k=v", g, &L, b_attention, &a);
        leaves_free(&L);
    }
    /* Self-attention: q = k = v the same node, cosine score, causal */
    {
        att_ctx a = {{0}, 0, 0};
        a.o.layout = ATTN_AG_BNHD;
        a.o.heads = 2;
        a.o.score = ATTN_SCORE_COSINE;
        a.o.scale = 3.0f;
        a.o.mask.causal = 1;
        leaf(&L, 3, 2, 4, 6, 0, 1.0f);
        fd_check("self-attention q=k=v cosine", g, &L, b_self_attention, &a);
        leaves_free(&L);
    }
    /* Weights come back as a node without gradient, rows summing to 1 over visible keys. */
    {
        leaf(&L, 3, 2, 3, 4, 0, 1.0f), leaf(&L, 3, 2, 5, 4, 0, 1.0f);
        attn_graph_reset(g);
        attn_var *q = attn_graph_leaf(g, 3, L.shape[0], L.data[0], L.grad[0]);
        attn_var *k = attn_graph_leaf(g, 3, L.shape[1], L.data[1], L.grad[1]);
        attn_ag_attention_opts o = {0};
        o.layout = ATTN_AG_BNHD;
        o.mask.key_lengths = kl;
        attn_var *P;
        attn_var *y = attn_ag_attention(g, q, k, k, &o, &P);
        CHECK(y && P && P->ndim == 4 && P->shape[3] == 5 && !P->requires_grad, "weights node");
        if (P) {
            double s = 0;
            for (int j = 0; j < 5; j++) s += P->data[(1 * 3 + 2) * 5 + j];
            CHECK(fabs(s - 1.0) < 1e-5 && P->data[(1 * 3 + 2) * 5 + 4] == 0.0f, "weights of batch 1 row 2: sum %g", s);
        }
        leaves_free(&L);
    }
}

static void test_model(attn_graph *g) {
    for (int lstm = 0; lstm < 2; lstm++) {
        leaves L = {0};
        model_leaves(&L, lstm);
        fd_check(lstm ? "model lstm" : "model gru", g, &L, b_model, lstm ? (void *)1 : NULL);
        leaves_free(&L);
    }
}

/* Errors are sticky; NULL inputs propagate; backward reports the first failure. */
static void test_errors(attn_graph *g) {
    float a[6] = {0}, w[8] = {0}, ga[6], gw[8];
    attn_graph_reset(g);
    attn_var *x = attn_graph_leaf(g, 2, (int64_t[]){2, 3}, a, ga);
    attn_var *W = attn_graph_leaf(g, 2, (int64_t[]){2, 4}, w, gw);
    attn_var *y = attn_ag_linear(g, x, W, NULL);
    CHECK(y == NULL && attn_graph_status(g) == ATTN_ESHAPE, "linear shape mismatch");
    CHECK(strstr(attn_last_error(), "attn_ag_linear") != NULL, "message: %s", attn_last_error());
    attn_var *z = attn_ag_tanh(g, x); /* a valid op after a failure still fails */
    CHECK(z == NULL, "sticky error");
    CHECK(attn_ag_sum(g, y) == NULL, "NULL input");
    attn_graph_reset(g);
    CHECK(attn_graph_status(g) == ATTN_OK, "reset clears the error");
    x = attn_graph_leaf(g, 2, (int64_t[]){2, 3}, a, ga);
    CHECK(attn_graph_backward(g, x) == ATTN_ESHAPE, "backward of a non-scalar");
    CHECK(attn_ag_slice(g, x, 1, 2, 5) == NULL && attn_graph_status(g) == ATTN_EINVAL, "slice out of range");
    attn_graph_reset(g);
    x = attn_graph_leaf(g, 2, (int64_t[]){2, 3}, a, ga);
    static const int32_t bad_ids[2] = {0, 9};
    CHECK(attn_ag_embedding(g, x, bad_ids, 1, (int64_t[]){2}, -1) == NULL && attn_graph_status(g) == ATTN_EINVAL, "id out of range");
    attn_graph_reset(g);
    x = attn_graph_leaf(g, 2, (int64_t[]){2, 3}, a, ga);
    static const int32_t bad_t[2] = {0, 3};
    CHECK(attn_ag_cross_entropy(g, x, bad_t, -100, 0.0f) == NULL, "target out of range");
    CHECK(attn_graph_backward(g, NULL) == ATTN_EINVAL, "backward after a failed op");
    attn_graph_reset(g);
    x = attn_graph_leaf(g, 2, (int64_t[]){2, 3}, a, ga);
    CHECK(attn_ag_reshape(g, x, 2, (int64_t[]){4, 2}) == NULL, "reshape to another size");
    attn_graph_reset(g);
    CHECK(attn_graph_input(g, 2, (int64_t[]){0, 3}, NULL) == NULL, "zero-size dimension");
}

/* Leaves accumulate; inputs get no gradient; eval mode and no-grad mode; arena reuse. */
static void test_machinery(attn_graph *g) {
    float a[4] = {1, 2, 3, 4}, ga[4] = {10, 10, 10, 10};
    attn_graph_reset(g);
    attn_var *x = attn_graph_leaf(g, 1, (int64_t[]){4}, a, ga);
    attn_var *c = attn_graph_input(g, 1, (int64_t[]){4}, a);
    attn_var *loss = attn_ag_sum(g, attn_ag_mul(g, x, c));
    CHECK(loss && fabsf(loss->data[0] - 30.0f) < 1e-6f, "forward");
    CHECK(attn_graph_backward(g, loss) == ATTN_OK, "backward");
    CHECK(ga[0] == 11 && ga[3] == 14, "accumulated into the leaf: %g %g", (double)ga[0], (double)ga[3]);
    CHECK(c->grad == NULL, "input got a gradient");
    /* no-grad: nothing is recorded, nothing requires a gradient */
    attn_graph_reset(g);
    attn_graph_set_grad(g, 0);
    x = attn_graph_leaf(g, 1, (int64_t[]){4}, a, ga);
    attn_var *y = attn_ag_tanh(g, attn_ag_scale(g, x, 2.0f));
    CHECK(y && !y->requires_grad, "no-grad mode");
    attn_graph_set_grad(g, 1);
    /* evaluation: dropout is the identity */
    attn_graph_reset(g);
    attn_graph_set_training(g, 0);
    x = attn_graph_leaf(g, 1, (int64_t[]){4}, a, ga);
    CHECK(attn_ag_dropout(g, x, 0.5f) == x, "dropout in eval mode");
    attn_graph_set_training(g, 1);
    /* dropout statistics and scale */
    attn_graph_reset(g);
    attn_graph_seed(g, 3);
    attn_var *big = attn_graph_input(g, 1, (int64_t[]){10000}, NULL);
    for (int i = 0; i < 10000; i++) big->data[i] = 1.0f;
    attn_var *d = attn_ag_dropout(g, big, 0.25f);
    int zeros = 0, ok = 1;
    for (int i = 0; i < 10000; i++) {
        zeros += d->data[i] == 0.0f;
        ok &= d->data[i] == 0.0f || fabsf(d->data[i] - 1.0f / 0.75f) < 1e-6f;
    }
    CHECK(ok && zeros > 2300 && zeros < 2700, "dropout: %d zeros of 10000", zeros);
    /* The arena stops growing: after a reset, the same step allocates nothing new. */
    leaves L = {0};
    model_leaves(&L, 0);
    build_all(g, &L, b_model, NULL);
    build_all(g, &L, b_model, NULL);
    size_t reserved = attn_graph_arena_reserved(g);
    for (int i = 0; i < 3; i++) {
        attn_var *l = build_all(g, &L, b_model, NULL);
        attn_graph_backward(g, l);
    }
    CHECK(attn_graph_arena_reserved(g) == reserved, "arena grew: %zu -> %zu", reserved, attn_graph_arena_reserved(g));
    leaves_free(&L);
}

/* The same gradients, bit for bit, for 1 and 2 threads, and for two runs. */
static void test_determinism(void) {
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    leaves L = {0};
    model_leaves(&L, 1);
    float *keep[MAXL];
    int nth[3] = {1, 2, 1};
    int same = 1;
    for (int run = 0; run < 3; run++) {
        attn_set_threads(nth[run]);
        for (int i = 0; i < L.n; i++) memset(L.grad[i], 0, (size_t)L.numel[i] * sizeof(float));
        attn_var *l = build_all(g, &L, b_model, (void *)1);
        attn_graph_backward(g, l);
        for (int i = 0; i < L.n; i++) {
            if (run == 0) {
                keep[i] = malloc((size_t)L.numel[i] * sizeof(float));
                memcpy(keep[i], L.grad[i], (size_t)L.numel[i] * sizeof(float));
            } else {
                same &= !memcmp(keep[i], L.grad[i], (size_t)L.numel[i] * sizeof(float));
            }
        }
    }
    CHECK(same, "gradients differ between thread counts or runs");
    for (int i = 0; i < L.n; i++) free(keep[i]);
    leaves_free(&L);
    attn_graph_free(g);
    attn_set_threads(2);
}

/* Parameters of the store as leaves. */
static void test_param_leaves(void) {
    attn_params *ps; CHECK(attn_params_new(&ps) == ATTN_OK, "%s", attn_last_error());
    attn_param *W = attn_params_add(ps, "lin.weight", 2, (int64_t[]){3, 2}, attn_init_constant(0.5f));
    attn_param *b = attn_params_add(ps, "lin.bias", 1, (int64_t[]){3}, attn_init_zeros());
    b->frozen = 1;
    CHECK(attn_params_init(ps, 1) == ATTN_OK, "init");
    attn_graph *g; CHECK(attn_graph_new(4096, &g) == ATTN_OK, "%s", attn_last_error());
    attn_var *x = attn_graph_input(g, 2, (int64_t[]){1, 2}, (float[]){1.0f, 2.0f});
    attn_var *l = attn_ag_sum(g, attn_ag_linear(g, x, attn_param_var(g, W), attn_param_var(g, b)));
    CHECK(l && fabsf(l->data[0] - 4.5f) < 1e-6f, "forward through parameters");
    CHECK(attn_graph_backward(g, l) == ATTN_OK, "backward");
    CHECK(W->grad[0] == 1.0f && W->grad[1] == 2.0f && W->grad[5] == 2.0f, "weight gradient");
    CHECK(b->grad[0] == 0.0f, "frozen parameter got a gradient");
    attn_graph_free(g);
    attn_params_free(ps);
}

/* The tape runs the row ops of attn/layers.h (checked against PyTorch there): the same bits. */
static void test_vs_layers(void) {
    enum { N = 7, C = 9 };
    float x[N * C], w[C], bb[C], want[N * C], mean[N], rstd[N], lse[N], lw;
    tu_randn(x, N * C, 1);
    tu_randn(w, C, 2);
    tu_randn(bb, C, 3);
    for (int i = 0; i < N * C; i++) x[i] *= 2.0f;
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_var *xv = attn_graph_input(g, 2, (int64_t[]){N, C}, x);
    attn_var *wv = attn_graph_input(g, 1, (int64_t[]){C}, w), *bv = attn_graph_input(g, 1, (int64_t[]){C}, bb);
    attn_softmax_forward(want, x, N, C);
    tu_close("softmax vs layers", attn_ag_softmax(g, xv)->data, want, N * C, 0, 0);
    attn_log_softmax_forward(want, x, N, C);
    tu_close("log_softmax vs layers", attn_ag_log_softmax(g, xv)->data, want, N * C, 0, 0);
    attn_layernorm_forward(want, mean, rstd, x, w, bb, N, C, 1e-5f);
    tu_close("layernorm vs layers", attn_ag_layernorm(g, xv, wv, bv, 1e-5f)->data, want, N * C, 0, 0);
    const int32_t t[N] = {0, 8, -100, 3, 3, 7, -100};
    for (int k = 0; k < 2; k++) {
        float eps = k ? 0.2f : 0.0f;
        attn_cross_entropy_forward(&lw, lse, x, t, NULL, N, C, -100, eps, ATTN_REDUCE_MEAN);
        attn_var *l = attn_ag_cross_entropy(g, xv, t, -100, eps);
        tu_close("cross_entropy vs layers", l->data, &lw, 1, 0, 0);
    }
    float *d = attn_graph_alloc(g, N * C * sizeof(float));
    CHECK(d && ((uintptr_t)d & 63) == 0, "attn_graph_alloc alignment");
    attn_graph_free(g);
}

int main(void) {
    attn_set_threads(2);
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    test_ops(g);
    test_rnn(g);
    test_attention(g);
    test_model(g);
    test_errors(g);
    test_machinery(g);
    attn_graph_free(g);
    test_determinism();
    test_param_leaves();
    test_vs_layers();
    return tu_summary("test_autograd");
}
