/* Programmable attention (attn_mods) against PyTorch: every case of
 * tests/data/attention_mods/cases.txt (tools/gen_attention_mods_refs.py, FlexAttention's
 * semantics in float64 torch ops, the reference's parameter gradients checked against finite
 * differences there) is run through attn_forward and attn_backward_mods on every instruction
 * set this CPU runs, with 1 and 2 threads: the output, lse, weights and every gradient (dQ,
 * dK, dV, dBias, dSlopes, dT5, dSinks and score_mod's own) must match the reference, and the
 * two thread counts must agree bitwise; the forward without the weights too (with few
 * queries it splits the keys into ranges). Plus: dropout keeps about 1 - p of the weights, the
 * block mask skips work without changing results, and bad descriptions are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attention.h"
#include "attn/autograd.h"
#include "attn/io.h"
#include "testutil.h"

#define DIR "data/attention_mods"

typedef struct {
    char name[128];
    int causal, window, align, prefix, t5_buckets, t5_maxd, t5_bidir, user, alibi_bidir;
    float softcap, dropout;
    unsigned long long seed;
    double rtol, atol;
} mcase;

/* The test's callbacks, as in the generator's docstring. ctx: theta (H). */
static int user_mask(int b, int h, int i, int j, void *ctx) {
    (void)b, (void)h, (void)ctx;
    return i / 100 == j / 100 && !(i == 130 && j % 3 == 0);
}
static float user_score(float s, int b, int h, int i, int j, void *ctx) {
    (void)b;
    const float *theta = ctx;
    return s + theta[h] * sinf(s + 0.05f * (float)(i - j));
}
static float user_score_bwd(float s, float g, int b, int h, int i, int j, void *ctx, float *dparams) {
    (void)b;
    const float *theta = ctx;
    float x = s + 0.05f * (float)(i - j);
    if (dparams) dparams[h] += g * sinf(x);
    return g * (1.0f + theta[h] * cosf(x));
}

/* The same modifier as a tile callback (attn_score_mod_tile_fn): score (i0 + l, j0 + jj) at
 * s[jj * ld + l]. The scalar backward stays for theta's gradient. */
static void user_score_tile(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] = user_score(s[jj * ld + l], b, h, i0 + l, j0 + jj, ctx);
}
static void user_score_tile_bwd(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0,
                                void *ctx) {
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) g[jj * ld + l] = user_score_bwd(s[jj * ld + l], 1.0f, b, h, i0 + l, j0 + jj, ctx, NULL);
}

static int load(const mcase *c, const char *file, attn_array *a) {
    char path[512];
    snprintf(path, sizeof path, DIR "/%s/%s.npy", c->name, file);
    if (access(path, R_OK) != 0) return 0;
    int st = attn_npy_load(path, a);
    CHECK(st == ATTN_OK, "%s: %s", path, attn_last_error());
    return st == ATTN_OK;
}

static void compare(const mcase *c, const char *tag, const char *file, const float *got, size_t n) {
    attn_array want = {0};
    if (!load(c, file, &want)) return;
    char what[256];
    snprintf(what, sizeof what, "%s [%s]: %s", c->name, tag, file);
    CHECK(want.dtype == ATTN_F64 && (size_t)attn_array_numel(&want) == n, "%s: wrong reference file", what);
    if (want.dtype == ATTN_F64 && (size_t)attn_array_numel(&want) == n) {
        double *g = malloc(n * sizeof *g), m = 0.0;
        const double *w = want.data;
        for (size_t i = 0; i < n; i++) {
            g[i] = got[i];
            if (isfinite(w[i]) && fabs(w[i]) > m) m = fabs(w[i]);
        }
        tu_close_d(what, g, w, n, c->rtol, c->atol * (m > 1.0 ? m : 1.0));
        free(g);
    }
    attn_array_free(&want);
}

enum { O_O, O_LSE, O_P, O_DQ, O_DK, O_DV, O_DBIAS, O_DSLOPES, O_DT5, O_DSINKS, O_DTHETA, O_COUNT };

static void run_case(const mcase *c) {
    static const char *const in_names[] = {"q", "k", "v", "do", "bias", "slopes", "t5", "sinks", "theta", "doc_offsets"};
    attn_array in[10] = {{0}};
    for (int x = 0; x < 10; x++) {
        int ok = load(c, in_names[x], &in[x]);
        CHECK(ok || x >= 4, "%s: %s.npy missing", c->name, in_names[x]);
        if (!ok && x < 4) goto done;
    }
    attn_array *q = &in[0], *k = &in[1], *v = &in[2], *dO = &in[3];
    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = (int)q->shape[0], a.H = (int)q->shape[1], a.Nq = (int)q->shape[2], a.dq = (int)q->shape[3];
    a.Hkv = (int)k->shape[1], a.Nk = (int)k->shape[2], a.dv = (int)v->shape[3];
    a.score = ATTN_SCORE_SCALED;
    a.mask.causal = c->causal, a.mask.window = c->window;
    const int64_t target[4] = {a.B, a.H, a.Nq, a.Nk};
    if (in[4].data) {
        a.mask.bias = in[4].data;
        CHECK(attn_broadcast_strides(in[4].shape, in[4].ndim, target, a.mask.bias_strides) == ATTN_OK, "bias strides");
    }
    attn_mods m;
    memset(&m, 0, sizeof m);
    m.causal_align = c->align, m.prefix = c->prefix, m.softcap = c->softcap;
    m.alibi_slopes = in[5].data, m.alibi_bidirectional = c->alibi_bidir, m.t5_table = in[6].data, m.sinks = in[7].data;
    m.t5_buckets = c->t5_buckets, m.t5_max_distance = c->t5_maxd, m.t5_bidirectional = c->t5_bidir;
    m.dropout = c->dropout, m.seed = c->seed;
    if (in[9].data) m.doc_offsets = in[9].data, m.n_docs = (int)in[9].shape[1] - 1;
    if (c->user) {
        m.mask_mod = user_mask, m.score_mod = user_score, m.score_mod_bwd = user_score_bwd;
        m.ctx = in[8].data, m.n_dparams = a.H;
    }
    a.mods = &m;
    size_t sizes[O_COUNT] = {(size_t)a.B * a.H * a.Nq * a.dv, (size_t)a.B * a.H * a.Nq, (size_t)a.B * a.H * a.Nq * a.Nk,
                             (size_t)attn_array_numel(q), (size_t)attn_array_numel(k), (size_t)attn_array_numel(v),
                             in[4].data ? (size_t)attn_array_numel(&in[4]) : 0, (size_t)a.H,
                             (size_t)c->t5_buckets * a.H, (size_t)a.H, (size_t)a.H};
    static const char *const want[O_COUNT] = {"o_ref", "lse_ref", "p_ref", "dq_ref", "dk_ref", "dv_ref", "dbias_ref",
                                              "dslopes_ref", "dt5_ref", "dsinks_ref", "dtheta_ref"};
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    /* A case with the user's score_mod runs twice: the scalar callback, then the tile one. */
    for (int run = 0; run < 3 * (1 + c->user); run++) {
        int s = run % 3, tile = run / 3;
        if (attn_set_isa(isas[s]) != ATTN_OK) continue;
        if (tile) m.score_mod = NULL, m.score_mod_tile = user_score_tile, m.score_mod_tile_bwd = user_score_tile_bwd;
        char isa[32];
        snprintf(isa, sizeof isa, "%s%s", isas[s], tile ? ", score_mod_tile" : "");
        float *got[2][O_COUNT];
        for (int t = 0; t < 2; t++) {
            attn_set_threads(t + 1);
            for (int x = 0; x < O_COUNT; x++) got[t][x] = calloc(sizes[x] + 1, sizeof(float));
            attn_mods_grad g = {c->user ? got[t][O_DTHETA] : NULL, in[5].data ? got[t][O_DSLOPES] : NULL,
                                in[6].data ? got[t][O_DT5] : NULL, in[7].data ? got[t][O_DSINKS] : NULL,
                                in[4].data ? got[t][O_DBIAS] : NULL};
            int st = attn_forward(&a, q->data, k->data, v->data, got[t][O_O], got[t][O_P], got[t][O_LSE]);
            CHECK(st == ATTN_OK, "%s: forward: %s", c->name, attn_last_error());
            st = attn_backward_mods(&a, q->data, k->data, v->data, got[t][O_O], got[t][O_LSE], dO->data, got[t][O_DQ],
                                    got[t][O_DK], got[t][O_DV], NULL, &g);
            CHECK(st == ATTN_OK, "%s: backward: %s", c->name, attn_last_error());
            if (t == 0) { /* without the weights (few queries: the forward that splits the keys) */
                float *o2 = calloc(sizes[O_O], sizeof(float)), *l2 = calloc(sizes[O_LSE], sizeof(float));
                st = attn_forward(&a, q->data, k->data, v->data, o2, NULL, l2);
                CHECK(st == ATTN_OK, "%s: forward: %s", c->name, attn_last_error());
                char tag[48];
                snprintf(tag, sizeof tag, "%s, no P", isa);
                compare(c, tag, "o_ref", o2, sizes[O_O]);
                compare(c, tag, "lse_ref", l2, sizes[O_LSE]);
                /* the weights recomputed from Q, K and the log-sum-exp (attn_weights) */
                float *w = calloc(sizes[O_P], sizeof(float));
                st = attn_weights(&a, q->data, k->data, got[t][O_LSE], NULL, a.B * a.H, 0, a.Nq, w);
                CHECK(st == ATTN_OK, "%s: attn_weights: %s", c->name, attn_last_error());
                snprintf(tag, sizeof tag, "%s, attn_weights", isa);
                compare(c, tag, "p_ref", w, sizes[O_P]);
                free(o2), free(l2), free(w);
            }
        }
        for (int x = 0; x < O_COUNT; x++) {
            compare(c, isa, want[x], got[0][x], sizes[x]);
            CHECK(memcmp(got[0][x], got[1][x], sizes[x] * sizeof(float)) == 0, "%s [%s]: %s differs between 1 and 2 threads",
                  c->name, isa, want[x]);
            free(got[0][x]), free(got[1][x]);
        }
    }
    attn_set_isa(start);
    attn_set_threads(0);
done:
    for (int x = 0; x < 10; x++) attn_array_free(&in[x]);
}

/* The tape's attention entry with ALiBi slopes or sinks as nodes (what the Transformer
 * learns through): the gradients of q, k, v and the node against the case's reference. */
static void test_autograd(const char *name, int with_slopes) {
    mcase c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", name);
    c.rtol = 2e-4, c.atol = 2e-5;
    attn_array in[5] = {{0}};
    static const char *const names[5] = {"q", "k", "v", "do", "slopes"};
    int ok = 1;
    for (int x = 0; x < 5; x++) ok &= load(&c, x < 4 || with_slopes ? names[x] : "sinks", &in[x]);
    CHECK(ok, "%s: fixtures missing", name);
    attn_graph *g = NULL;
    if (!ok || attn_graph_new(0, &g) != ATTN_OK) goto done;
    float *grads[5];
    attn_var *x[5];
    for (int i = 0; i < 5; i++) {
        if (i == 3) continue;
        grads[i] = calloc((size_t)attn_array_numel(&in[i]), sizeof(float));
        x[i] = attn_graph_leaf(g, in[i].ndim, in[i].shape, in[i].data, grads[i]);
    }
    attn_ag_attention_opts o;
    memset(&o, 0, sizeof o);
    o.layout = ATTN_AG_BHND, o.score = ATTN_SCORE_SCALED, o.mask.causal = 1;
    if (with_slopes) o.alibi_slopes = x[4];
    else o.sinks = x[4];
    attn_var *y = attn_ag_attention(g, x[0], x[1], x[2], &o, NULL);
    CHECK(y != NULL, "%s: attn_ag_attention: %s", name, attn_last_error());
    if (y) CHECK(attn_graph_backward_from(g, y, in[3].data) == ATTN_OK, "%s: backward: %s", name, attn_last_error());
    compare(&c, "autograd", "o_ref", y ? y->data : grads[0], y ? (size_t)y->numel : 0);
    static const char *const want[5] = {"dq_ref", "dk_ref", "dv_ref", "", "dslopes_ref"};
    for (int i = 0; i < 5; i++)
        if (i != 3) compare(&c, "autograd", i == 4 && !with_slopes ? "dsinks_ref" : want[i], grads[i], (size_t)attn_array_numel(&in[i]));
    for (int i = 0; i < 5; i++)
        if (i != 3) free(grads[i]);
done:
    attn_graph_free(g);
    for (int i = 0; i < 5; i++) attn_array_free(&in[i]);
}

/* ALiBi and soft-capping written as tile callbacks, as a user would: plain loops. ctx: the
 * slopes (H) for ALiBi, the cap for soft-capping. */
static void alibi_tile(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b;
    const float slope = ((const float *)ctx)[h];
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] += slope * (float)(j0 + jj - (i0 + l));
}
static void alibi_tile_bwd(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)s, (void)b, (void)h, (void)i0, (void)j0, (void)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) g[jj * ld + l] = 1.0f;
}
/* cap tanh(s / cap) of -inf is -cap: the kernels must keep hidden scores hidden themselves. */
static void softcap_tile(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b, (void)h, (void)i0, (void)j0;
    const float cap = *(const float *)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] = cap * tanhf(s[jj * ld + l] / cap);
}
static void softcap_tile_bwd(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0,
                             void *ctx) {
    (void)b, (void)h, (void)i0, (void)j0;
    const float cap = *(const float *)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) {
            float t = tanhf(s[jj * ld + l] / cap);
            g[jj * ld + l] = 1.0f - t * t;
        }
}

/* The tile callbacks against the built-ins they copy (causal: hidden scores inside the
 * diagonal blocks; a few queries: the row path and the split keys): O, lse, the weights and
 * dQ, dK, dV within float rounding (the built-in soft-capping's tanh is exp-based), on every
 * instruction set, 1 and 2 threads bitwise. */
static void test_tile_vs_builtin(int softcap, int Nq, int Nk) {
    const int B = 2, H = 3, d = 24, dv = 20;
    size_t nq = (size_t)B * H * Nq, nk = (size_t)B * H * Nk;
    float slopes[3] = {0.5f, 0.25f, 0.125f}, cap = 2.5f;
    float *q = malloc(nq * d * sizeof *q), *k = malloc(nk * d * sizeof *k), *v = malloc(nk * dv * sizeof *v);
    float *dO = malloc(nq * dv * sizeof *dO);
    tu_randn(q, nq * d, 11), tu_randn(k, nk * d, 12), tu_randn(v, nk * dv, 13), tu_randn(dO, nq * dv, 14);
    for (size_t x = 0; x < nq * d; x++) q[x] *= 3.0f; /* large scores: the cap matters */
    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = B, a.H = H, a.Hkv = H, a.Nq = Nq, a.Nk = Nk, a.dq = d, a.dv = dv, a.score = ATTN_SCORE_SCALED;
    a.mask.causal = 1;
    attn_mods bi, ti;
    memset(&bi, 0, sizeof bi), memset(&ti, 0, sizeof ti);
    bi.causal_align = ti.causal_align = ATTN_ALIGN_BOTTOM_RIGHT;
    if (softcap) bi.softcap = cap, ti.score_mod_tile = softcap_tile, ti.score_mod_tile_bwd = softcap_tile_bwd, ti.ctx = &cap;
    else bi.alibi_slopes = slopes, ti.score_mod_tile = alibi_tile, ti.score_mod_tile_bwd = alibi_tile_bwd, ti.ctx = slopes;
    size_t sz[6] = {nq * dv, nq, nq * Nk, nq * d, nk * d, nk * dv};
    static const char *const names[6] = {"O", "lse", "P", "dQ", "dK", "dV"};
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    for (int s = 0; s < 3; s++) {
        if (attn_set_isa(isas[s]) != ATTN_OK) continue;
        float *out[3][6]; /* built-in; tile with 1 thread; tile with 2 */
        for (int r = 0; r < 3; r++) {
            attn_set_threads(r == 2 ? 2 : 1);
            a.mods = r == 0 ? &bi : &ti;
            for (int x = 0; x < 6; x++) out[r][x] = calloc(sz[x], sizeof(float));
            int st = attn_forward(&a, q, k, v, out[r][0], out[r][2], out[r][1]);
            if (!st) st = attn_backward(&a, q, k, v, out[r][0], out[r][1], dO, out[r][3], out[r][4], out[r][5], NULL);
            CHECK(st == ATTN_OK, "tile %s [%s]: %s", softcap ? "softcap" : "alibi", isas[s], attn_last_error());
        }
        for (int x = 0; x < 6; x++) {
            char what[96];
            snprintf(what, sizeof what, "tile %s %dx%d [%s]: %s", softcap ? "softcap" : "alibi", Nq, Nk, isas[s], names[x]);
            tu_close(what, out[1][x], out[0][x], sz[x], softcap ? 1e-5 : 1e-6, softcap ? 1e-5 : 1e-6);
            CHECK(memcmp(out[1][x], out[2][x], sz[x] * sizeof(float)) == 0, "%s differs between 1 and 2 threads", what);
            for (int r = 0; r < 3; r++) free(out[r][x]);
        }
    }
    attn_set_isa(start);
    attn_set_threads(0);
    free(q), free(k), free(v), free(dO);
}

/* The three steps apply the documents (and do not trip over a T5 table they ignore). */
static void test_steps(void) {
    float q[10], S[25], P[25], t5[8] = {0};
    tu_randn(q, 10, 3);
    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = 1, a.H = 1, a.Nq = 5, a.Nk = 5, a.dq = 2;
    int32_t offs[3] = {0, 2, 5};
    attn_mods m;
    memset(&m, 0, sizeof m);
    m.doc_offsets = offs, m.n_docs = 2, m.t5_table = t5, m.t5_buckets = 4, m.t5_max_distance = 8;
    a.mods = &m;
    CHECK(attn_scores(&a, q, q, S) == ATTN_OK && attn_normalize(&a, S, P) == ATTN_OK, "steps: %s", attn_last_error());
    for (int i = 0; i < 5; i++) {
        double sum = 0.0;
        for (int j = 0; j < 5; j++) {
            sum += P[i * 5 + j];
            CHECK((i < 2) == (j < 2) || P[i * 5 + j] == 0.0f, "steps: query %d sees key %d of another document", i, j);
        }
        CHECK(fabs(sum - 1.0) < 1e-5, "steps: row %d sums to %g", i, sum);
    }
}

/* Dropout keeps about 1 - p of the weights (200,000 draws: 4 standard deviations < 0.5%). */
static void test_keep_rate(void) {
    long kept = 0, n = 0;
    for (int i = 0; i < 400; i++)
        for (int j = 0; j < 500; j++, n++) kept += attn_dropout_keep(42, i % 3, i % 5, i, j, 0.3f);
    double rate = (double)kept / n;
    CHECK(fabs(rate - 0.7) < 0.005, "dropout keeps %.4f of the weights, expected 0.7", rate);
    kept = 0;
    for (int j = 0; j < 1000; j++) kept += attn_dropout_keep(42, 0, 0, 0, j, 0.0f);
    CHECK(kept == 1000, "dropout 0 keeps every weight (%ld of 1000)", kept);
}

static void test_errors(void) {
    float x[64] = {0}, o[64];
    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = 1, a.H = 1, a.Nq = 4, a.Nk = 6, a.dq = 2;
    attn_mods m;
    memset(&m, 0, sizeof m);
    a.mods = &m;
    int32_t offs[3] = {0, 2, 6};
    m.doc_offsets = offs, m.n_docs = 2;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_ESHAPE && tu_err_has("Nq == Nk"), "documents with Nq != Nk");
    a.Nq = 6, offs[2] = 5;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("from 0 to N"), "offsets not ending at N");
    offs[2] = 6, offs[1] = 7;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL, "decreasing offsets");
    memset(&m, 0, sizeof m);
    m.prefix = 2;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("causal"), "prefix without causal");
    memset(&m, 0, sizeof m);
    m.dropout = 1.0f;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("dropout"), "dropout 1");
    memset(&m, 0, sizeof m);
    m.softcap = -1.0f;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("softcap"), "negative softcap");
    memset(&m, 0, sizeof m);
    m.score_mod = user_score;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("score_mod_bwd"), "score_mod without backward");
    memset(&m, 0, sizeof m);
    m.score_mod = user_score, m.score_mod_bwd = user_score_bwd, m.score_mod_tile = user_score_tile;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("both"), "score_mod and score_mod_tile");
    memset(&m, 0, sizeof m);
    float theta = 0.5f, lse[8], dq[64], dtheta = 0.0f;
    m.score_mod_tile = user_score_tile, m.ctx = &theta, m.n_dparams = 1;
    CHECK(attn_forward(&a, x, x, x, o, NULL, lse) == ATTN_OK, "score_mod_tile without backward, forward: %s",
          attn_last_error());
    CHECK(attn_backward(&a, x, x, x, o, lse, x, dq, dq, dq, NULL) == ATTN_EINVAL && tu_err_has("score_mod_tile_bwd"),
          "score_mod_tile without backward, backward");
    m.score_mod_tile_bwd = user_score_tile_bwd;
    attn_mods_grad g = {&dtheta, NULL, NULL, NULL, NULL};
    CHECK(attn_backward_mods(&a, x, x, x, o, lse, x, dq, dq, dq, NULL, &g) == ATTN_EINVAL &&
              tu_err_has("scalar score_mod_bwd"),
          "score_mod_tile's parameter gradients without the scalar backward");
    CHECK(attn_backward(&a, x, x, x, o, lse, x, dq, dq, dq, NULL) == ATTN_OK, "score_mod_tile backward: %s",
          attn_last_error());
    memset(&m, 0, sizeof m);
    m.causal_align = 2;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("alignment"), "bad alignment");
    memset(&m, 0, sizeof m);
    m.t5_table = x, m.t5_buckets = 1, m.t5_max_distance = 8;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("T5"), "one T5 bucket");
    memset(&m, 0, sizeof m);
    m.alibi_slopes = x, m.alibi_bidirectional = 2;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("alibi_bidirectional"),
          "alibi_bidirectional 2");
}

int main(void) {
    FILE *f = fopen(DIR "/cases.txt", "r");
    CHECK(f != NULL, "cannot open " DIR "/cases.txt (run from tests/)");
    if (!f) return tu_summary("test_attention_mods");
    char line[512];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        mcase c;
        memset(&c, 0, sizeof c);
        int n = sscanf(line, "%127s %d %d %d %d %f %d %d %d %f %llu %d %lf %lf %d", c.name, &c.causal, &c.window, &c.align,
                       &c.prefix, &c.softcap, &c.t5_buckets, &c.t5_maxd, &c.t5_bidir, &c.dropout, &c.seed, &c.user, &c.rtol,
                       &c.atol, &c.alibi_bidir);
        CHECK(n == 15, "malformed line in cases.txt: %s", line);
        if (n != 15) continue;
        run_case(&c);
        ncases++;
    }
    fclose(f);
    CHECK(ncases >= 15, "only %d cases in cases.txt", ncases);
    printf("%d PyTorch cases\n", ncases);
    test_autograd("alibi", 1);
    test_autograd("sinks", 0);
    test_tile_vs_builtin(0, 77, 77);
    test_tile_vs_builtin(1, 77, 77);
    test_tile_vs_builtin(0, 3, 150);
    test_tile_vs_builtin(1, 3, 150);
    test_steps();
    test_keep_rate();
    test_errors();
    return tu_summary("test_attention_mods");
}
