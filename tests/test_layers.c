/* The layers of attn/layers.h beyond what the operation registry (test_ops.c: every forward
 * against a double reference, every backward against finite differences, on every ISA path)
 * checks: exact results (embedding rows and padding_idx, in-place softmax, rows of -inf, every
 * cross-entropy target ignored), dropout's mask statistics and that its backward uses the
 * forward's mask, argument errors. Then, against PyTorch itself (tests/data/layers/, written
 * by tools/gen_layers_refs.py): a bidirectional nn.GRU and nn.LSTM on a packed batch with
 * per-sequence lengths, loaded from PyTorch's own parameter names, outputs and every
 * gradient; and F.cross_entropy with class weights, ignore_index and label smoothing.
 * The convolution and pooling over time (Kim 2014; tools/gen_conv_refs.py): F.conv1d with
 * padding and per-sequence lengths in PyTorch's weight layout on every ISA path, torch.max
 * and mean over time with exact ties and an empty sequence; the same bits for 1 and 3
 * threads; the tape ops against the raw functions; argument errors. The sparse linear layer
 * of the TF-IDF classifiers (the same generator) against torch.sparse.mm, forward and the
 * gradients of its weight and bias (its finite differences are test_ops.c's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/autograd.h"
#include "attn/io.h"
#include "attn/layers.h"
#include "nn/nn_internal.h"
#include "testutil.h"

static float *randn(size_t n, uint64_t seed, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    tu_randn(x, n, seed);
    for (size_t i = 0; i < n; i++) x[i] *= scale;
    return x;
}

static float *filled(size_t n, float v) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = v;
    return x;
}

/* ---- Embedding ---------------------------------------------------------------------------- */

static void test_embedding(void) {
    const int N = 6, V = 5, E = 3, pad = 2;
    const int32_t ids[6] = {1, 2, 4, 1, 0, 1}; // repeated ids accumulate; id 2 is padding
    float *table = randn((size_t)V * E, 21, 1.0f), *r = randn((size_t)N * E, 22, 1.0f);
    float out[18], dtable[15];
    CHECK(attn_embedding_forward(out, ids, table, N, V, E) == ATTN_OK, "embedding fwd");
    int ok = 1;
    for (int i = 0; i < N; i++)
        for (int e = 0; e < E; e++) ok &= out[i * E + e] == table[ids[i] * E + e];
    CHECK(ok, "embedding forward is not a row copy");
    for (int k = 0; k < V * E; k++) dtable[k] = 1.0f;
    CHECK(attn_embedding_backward(dtable, r, ids, N, V, E, pad) == ATTN_OK, "embedding bwd");
    // L = sum_i sum_e table[ids[i], e] r[i, e]  ->  dL/dtable[v, e] = sum_{i: ids[i] = v} r[i, e]
    double want[15] = {0}, got[15];
    for (int i = 0; i < N; i++)
        for (int e = 0; e < E; e++)
            if (ids[i] != pad) want[ids[i] * E + e] += r[i * E + e];
    for (int k = 0; k < V * E; k++) got[k] = dtable[k] - 1.0;
    tu_close_d("embedding dtable", got, want, (size_t)V * E, 1e-6, 1e-6);
    CHECK(got[pad * E] == 0.0 && got[pad * E + 1] == 0.0 && got[pad * E + 2] == 0.0, "padding row got a gradient");
    CHECK(attn_embedding_backward(dtable, r, ids, N, V, E, -1) == ATTN_OK, "no padding");
    CHECK(dtable[pad * E] != 1.0f, "without padding_idx the row gets its gradient");
    const int32_t bad[2] = {0, 5};
    CHECK(attn_embedding_forward(out, bad, table, 2, V, E) == ATTN_EINVAL, "id = V accepted");
    const int32_t neg[1] = {-1};
    CHECK(attn_embedding_forward(out, neg, table, 1, V, E) == ATTN_EINVAL, "id = -1 accepted");
    free(table), free(r);
}

/* ---- Softmax, log-softmax, cross-entropy: exact cases --------------------------------------- */

static void test_softmax(void) {
    const int N = 5, C = 9;
    const size_t n = (size_t)N * C;
    float *x = randn(n, 31, 3.0f), *y = malloc(n * sizeof(float)), *z = malloc(n * sizeof(float));
    for (int lg = 0; lg <= 1; lg++) {
        int st = lg ? attn_log_softmax_forward(y, x, N, C) : attn_softmax_forward(y, x, N, C);
        memcpy(z, x, n * sizeof(float));
        st |= lg ? attn_log_softmax_forward(z, z, N, C) : attn_softmax_forward(z, z, N, C);
        CHECK(st == ATTN_OK && !memcmp(z, y, n * sizeof(float)), "in-place %s differs", lg ? "log_softmax" : "softmax");
    }
    float row[3] = {-INFINITY, -INFINITY, -INFINITY}, out[3];
    attn_softmax_forward(out, row, 1, 3);
    CHECK(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f, "all -inf row: softmax should be 0");
    attn_log_softmax_forward(out, row, 1, 3);
    CHECK(out[0] == -INFINITY && out[2] == -INFINITY, "all -inf row: log_softmax should be -inf");
    free(x), free(y), free(z);
}

static void test_cross_entropy(void) {
    const int C = 5;
    float *x = randn(10, 41, 2.0f);
    // every target ignored: MEAN gives 0 and no gradient (PyTorch: NaN)
    const int32_t all_ign[2] = {3, 3};
    float loss, lp[2], dx[10] = {0}, one = 1.0f;
    CHECK(attn_cross_entropy_forward(&loss, lp, x, all_ign, NULL, 2, C, 3, 0.1f, ATTN_REDUCE_MEAN) == ATTN_OK && loss == 0.0f,
          "all ignored: loss %g", (double)loss);
    attn_cross_entropy_backward(dx, &one, x, lp, all_ign, NULL, 2, C, 3, 0.1f, ATTN_REDUCE_MEAN);
    int zero = 1;
    for (int k = 0; k < 10; k++) zero &= dx[k] == 0.0f;
    CHECK(zero, "all ignored: non-zero gradient");
    const int32_t bad[1] = {5}, t[1] = {1};
    CHECK(attn_cross_entropy_forward(&loss, lp, x, bad, NULL, 1, C, -100, 0.0f, ATTN_REDUCE_MEAN) == ATTN_EINVAL,
          "target = C accepted");
    CHECK(attn_cross_entropy_forward(&loss, lp, x, t, NULL, 1, C, -100, 1.5f, ATTN_REDUCE_MEAN) == ATTN_EINVAL,
          "label smoothing 1.5 accepted");
    free(x);
}

/* ---- Dropout -------------------------------------------------------------------------------- */

static void test_dropout(void) {
    const size_t n = 100000;
    const float p = 0.3f;
    float *x = randn(n, 61, 1.0f), *y = malloc(n * sizeof(float)), *dy = randn(n, 62, 1.0f), *dx = filled(n, 1);
    uint8_t *mask = malloc(n), *mask2 = malloc(n);
    attn_rng rng;
    attn_rng_seed(&rng, 7);
    CHECK(attn_dropout_forward(y, mask, x, n, p, &rng) == ATTN_OK, "dropout fwd");
    size_t kept = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        kept += mask[i];
        ok &= mask[i] <= 1 && y[i] == (mask[i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f);
    }
    double frac = (double)kept / n; // binomial: sd sqrt(0.21 / n) = 0.0014
    CHECK(fabs(frac - (1.0 - p)) < 0.01, "dropout kept fraction %.4f, expected %.2f", frac, 1.0 - p);
    CHECK(ok, "dropout output is not inp * mask / (1 - p)");
    size_t runs = 0; // masks are not in long runs: the number of changes is about 2 p (1 - p) n
    for (size_t i = 1; i < n; i++) runs += mask[i] != mask[i - 1];
    CHECK(fabs((double)runs / n - 2 * p * (1 - p)) < 0.01, "dropout mask changes %.4f per element", (double)runs / n);
    CHECK(attn_dropout_backward(dx, dy, mask, n, p) == ATTN_OK, "dropout bwd");
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= fabsf(dx[i] - 1.0f - (mask[i] ? dy[i] / (1.0f - p) : 0.0f)) < 1e-5f;
    CHECK(ok, "dropout backward does not use the forward's mask");
    attn_rng_seed(&rng, 7);
    attn_dropout_forward(y, mask2, x, n, p, &rng);
    CHECK(!memcmp(mask, mask2, n), "dropout: the same seed gives another mask");
    attn_dropout_forward(y, mask2, x, n, p, &rng);
    CHECK(memcmp(mask, mask2, n) != 0, "dropout: the next call repeats the mask");
    CHECK(attn_dropout_forward(y, mask, x, n, 0.0f, NULL) == ATTN_OK && !memcmp(x, y, n * sizeof(float)), "p = 0 is not a copy");
    CHECK(attn_dropout_forward(y, mask, x, 4, 1.0f, NULL) == ATTN_OK && y[0] == 0.0f && mask[3] == 0, "p = 1 is not zero");
    CHECK(attn_dropout_forward(y, mask, x, n, 1.5f, &rng) == ATTN_EINVAL, "p = 1.5 accepted");
    free(x), free(y), free(dy), free(dx), free(mask), free(mask2);
}

/* ---- Against PyTorch ------------------------------------------------------------------------ */

#define LDATA "data/layers/"

/* Loads LDATA<dir>/<name>.npy (float32, or int32 when i32) of n elements; NULL + failure if not. */
static void *ld(const char *dir, const char *name, size_t n, int i32) {
    char path[256];
    snprintf(path, sizeof path, LDATA "%s/%s.npy", dir, name);
    attn_array a;
    int st = i32 ? attn_npy_load(path, &a) : attn_npy_load_f32(path, &a);
    CHECK(st == ATTN_OK, "%s: %s", path, attn_last_error());
    if (st) return NULL;
    if ((i32 && a.dtype != ATTN_I32) || (size_t)attn_array_numel(&a) != n) {
        CHECK(0, "%s: %lld elements (dtype %s), expected %zu", path, (long long)attn_array_numel(&a),
              attn_dtype_name(a.dtype), n);
        attn_array_free(&a);
        return NULL;
    }
    return a.data;
}

/* A bidirectional nn.GRU / nn.LSTM (one layer) over a packed batch: two calls per pass. */
static void test_torch_rnn(int lstm) {
    const char *dir = lstm ? "lstm" : "gru";
    const int T = 6, B = 4, I = 5, H = 7, G = lstm ? 4 : 3;
    const size_t nbh = (size_t)B * H, ny = (size_t)T * nbh;
    float *x = ld(dir, "x", (size_t)T * B * I, 0), *h0 = ld(dir, "h0", 2 * nbh, 0);
    float *c0 = lstm ? ld(dir, "c0", 2 * nbh, 0) : NULL;
    int32_t *len = ld(dir, "lengths", (size_t)B, 1);
    float *out = ld(dir, "output", 2 * ny, 0), *hn = ld(dir, "h_n", 2 * nbh, 0);
    float *cn = lstm ? ld(dir, "c_n", 2 * nbh, 0) : NULL;
    float *r_out = ld(dir, "r_output", 2 * ny, 0), *r_hn = ld(dir, "r_h_n", 2 * nbh, 0);
    float *r_cn = lstm ? ld(dir, "r_c_n", 2 * nbh, 0) : NULL;
    float *gx = ld(dir, "grad_x", (size_t)T * B * I, 0), *gh0 = ld(dir, "grad_h0", 2 * nbh, 0);
    float *gc0 = lstm ? ld(dir, "grad_c0", 2 * nbh, 0) : NULL;
    static const char *pn[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    const size_t psz[4] = {(size_t)G * H * I, (size_t)G * H * H, (size_t)G * H, (size_t)G * H};
    float *par[2][4], *gpar[2][4], *mygrad[2][4];
    int ok = x && h0 && len && out && hn && r_out && r_hn && gx && gh0 && (!lstm || (c0 && cn && r_cn && gc0));
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 4; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s_l0%s", pn[k], d ? "_reverse" : "");
            par[d][k] = ld(dir, nm, psz[k], 0);
            snprintf(nm, sizeof nm, "grad_%s_l0%s", pn[k], d ? "_reverse" : "");
            gpar[d][k] = ld(dir, nm, psz[k], 0);
            mygrad[d][k] = calloc(psz[k], sizeof(float));
            ok &= par[d][k] && gpar[d][k];
        }
    if (ok) {
        float *y = malloc(ny * sizeof(float)), *ycat = malloc(2 * ny * sizeof(float));
        float *myhn = malloc(2 * nbh * sizeof(float)), *mycn = malloc(2 * nbh * sizeof(float));
        float *dy = malloc(ny * sizeof(float)), *dx = calloc((size_t)T * B * I, sizeof(float));
        float *dh0 = calloc(2 * nbh, sizeof(float)), *dc0 = calloc(2 * nbh, sizeof(float));
        for (int d = 0; d < 2; d++) {
            attn_gru gm = {I, H, 1, par[d][0], par[d][1], par[d][2], par[d][3]};
            attn_lstm lm = {I, H, par[d][0], par[d][1], par[d][2], par[d][3], NULL};
            attn_gru_grad gg = {mygrad[d][0], mygrad[d][1], mygrad[d][2], mygrad[d][3]};
            attn_lstm_grad lg = {mygrad[d][0], mygrad[d][1], mygrad[d][2], mygrad[d][3], NULL};
            size_t nc = lstm ? attn_lstm_cache_size(&lm, T, B) : attn_gru_cache_size(&gm, T, B);
            float *cache = malloc(nc * sizeof(float));
            int st = lstm ? attn_lstm_forward(&lm, T, B, d, len, x, h0 + d * nbh, c0 + d * nbh, y, myhn + d * nbh,
                                              mycn + d * nbh, cache)
                          : attn_gru_forward(&gm, T, B, d, len, x, h0 + d * nbh, y, myhn + d * nbh, cache);
            CHECK(st == ATTN_OK, "torch %s forward: %s", dir, attn_last_error());
            for (size_t tb = 0; tb < (size_t)T * B; tb++) { // PyTorch's output[..., d*H:(d+1)*H]
                memcpy(ycat + tb * 2 * H + (size_t)d * H, y + tb * H, (size_t)H * sizeof(float));
                memcpy(dy + tb * H, r_out + tb * 2 * H + (size_t)d * H, (size_t)H * sizeof(float));
            }
            st = lstm ? attn_lstm_backward(&lm, T, B, d, len, x, cache, dy, r_hn + d * nbh, r_cn + d * nbh, dx,
                                           dh0 + d * nbh, dc0 + d * nbh, &lg)
                      : attn_gru_backward(&gm, T, B, d, len, x, cache, dy, r_hn + d * nbh, dx, dh0 + d * nbh, &gg);
            CHECK(st == ATTN_OK, "torch %s backward: %s", dir, attn_last_error());
            free(cache);
        }
        char what[96];
        snprintf(what, sizeof what, "torch %s output", dir), tu_close(what, ycat, out, 2 * ny, 1e-5, 1e-6);
        snprintf(what, sizeof what, "torch %s h_n", dir), tu_close(what, myhn, hn, 2 * nbh, 1e-5, 1e-6);
        if (lstm) snprintf(what, sizeof what, "torch %s c_n", dir), tu_close(what, mycn, cn, 2 * nbh, 1e-5, 1e-6);
        snprintf(what, sizeof what, "torch %s grad_x", dir), tu_close(what, dx, gx, (size_t)T * B * I, 1e-4, 1e-5);
        snprintf(what, sizeof what, "torch %s grad_h0", dir), tu_close(what, dh0, gh0, 2 * nbh, 1e-4, 1e-5);
        if (lstm) snprintf(what, sizeof what, "torch %s grad_c0", dir), tu_close(what, dc0, gc0, 2 * nbh, 1e-4, 1e-5);
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 4; k++) {
                snprintf(what, sizeof what, "torch %s grad_%s_l0%s", dir, pn[k], d ? "_reverse" : "");
                tu_close(what, mygrad[d][k], gpar[d][k], psz[k], 1e-4, 1e-5);
            }
        free(y), free(ycat), free(myhn), free(mycn), free(dy), free(dx), free(dh0), free(dc0);
    }
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 4; k++) attn_free(par[d][k]), attn_free(gpar[d][k]), free(mygrad[d][k]);
    attn_free(x), attn_free(h0), attn_free(c0), attn_free(len), attn_free(out), attn_free(hn), attn_free(cn);
    attn_free(r_out), attn_free(r_hn), attn_free(r_cn), attn_free(gx), attn_free(gh0), attn_free(gc0);
}

static void test_torch_cross_entropy(void) {
    const int N = 9, C = 6;
    float *logits = ld("cross_entropy", "logits", (size_t)N * C, 0), *w = ld("cross_entropy", "weight", C, 0);
    int32_t *t = ld("cross_entropy", "targets", N, 1);
    float *loss = ld("cross_entropy", "loss", 1, 0), *g = ld("cross_entropy", "grad_logits", (size_t)N * C, 0);
    if (logits && w && t && loss && g) {
        float my, one = 1.0f, lp[9], dx[54] = {0};
        CHECK(attn_cross_entropy_forward(&my, lp, logits, t, w, N, C, -100, 0.1f, ATTN_REDUCE_MEAN) == ATTN_OK, "ce");
        CHECK(attn_cross_entropy_backward(dx, &one, logits, lp, t, w, N, C, -100, 0.1f, ATTN_REDUCE_MEAN) == ATTN_OK, "ce bwd");
        tu_close("torch cross_entropy loss", &my, loss, 1, 1e-5, 1e-6);
        tu_close("torch cross_entropy grad_logits", dx, g, (size_t)N * C, 1e-4, 1e-6);
    }
    attn_free(logits), attn_free(w), attn_free(t), attn_free(loss), attn_free(g);
}

/* ---- Convolution and pooling over time ------------------------------------------------------ */

/* One F.conv1d case: B sequences of T positions, Cin -> Cout channels. */
static void test_torch_conv(const char *dir, int B, int T, int Cin, int Cout) {
    int32_t *prm = ld(dir, "params", 2, 1), *len = ld(dir, "lengths", B, 1);
    if (!prm || !len) return;
    int K = prm[0], pad = prm[1], To = attn_conv1d_out_length(T, K, pad);
    size_t nx = (size_t)B * T * Cin, nw = (size_t)Cout * Cin * K, ny = (size_t)B * To * Cout;
    float *x = ld(dir, "x", nx, 0), *w = ld(dir, "weight", nw, 0), *b = ld(dir, "bias", Cout, 0);
    float *y = ld(dir, "y", ny, 0), *r = ld(dir, "r", ny, 0), *gx = ld(dir, "grad_x", nx, 0);
    float *gw = ld(dir, "grad_weight", nw, 0), *gb = ld(dir, "grad_bias", Cout, 0);
    if (x && w && b && y && r && gx && gw && gb) {
        float *my = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float)), *dw = malloc(nw * sizeof(float));
        float *db = malloc(Cout * sizeof(float));
        const char *isas[3] = {"ref", "avx2", "avx512"}, *isa0 = attn_get_isa();
        for (int i = 0; i < 3; i++) {
            if (attn_set_isa(isas[i]) != ATTN_OK) continue; /* reported by test_ops */
            char what[128];
            memset(dx, 0, nx * sizeof(float)), memset(dw, 0, nw * sizeof(float)), memset(db, 0, Cout * sizeof(float));
            CHECK(attn_conv1d_forward(my, x, len, w, b, B, T, Cin, Cout, K, pad) == ATTN_OK, "%s: %s", dir, attn_last_error());
            CHECK(attn_conv1d_backward(dx, dw, db, r, x, len, w, B, T, Cin, Cout, K, pad) == ATTN_OK, "%s bwd", dir);
            snprintf(what, sizeof what, "torch %s y %s", dir, isas[i]), tu_close(what, my, y, ny, 1e-5, 1e-6);
            snprintf(what, sizeof what, "torch %s grad_x %s", dir, isas[i]), tu_close(what, dx, gx, nx, 1e-5, 1e-6);
            snprintf(what, sizeof what, "torch %s grad_weight %s", dir, isas[i]), tu_close(what, dw, gw, nw, 1e-5, 1e-6);
            snprintf(what, sizeof what, "torch %s grad_bias %s", dir, isas[i]), tu_close(what, db, gb, Cout, 1e-5, 1e-6);
        }
        attn_set_isa(isa0);
        free(my), free(dx), free(dw), free(db);
    }
    attn_free(prm), attn_free(len), attn_free(x), attn_free(w), attn_free(b), attn_free(y), attn_free(r);
    attn_free(gx), attn_free(gw), attn_free(gb);
}

/* The sparse linear layer (nn/sparse_linear.c) against torch.sparse.mm: y = X W^T + b for X
 * (N, F) in compressed sparse rows with an empty row, and the gradients of W and b. */
static void test_torch_sparse_linear(void) {
    const int N = 6, F = 13, C = 4;
    int32_t *rp32 = ld("sparse_linear", "rowptr", (size_t)N + 1, 1);
    int nnz = rp32 ? rp32[N] : 0;
    int32_t *col = rp32 ? ld("sparse_linear", "col", (size_t)nnz, 1) : NULL;
    float *val = ld("sparse_linear", "val", (size_t)nnz, 0), *w = ld("sparse_linear", "weight", (size_t)C * F, 0);
    float *b = ld("sparse_linear", "bias", C, 0), *y = ld("sparse_linear", "y", (size_t)N * C, 0);
    float *r = ld("sparse_linear", "r", (size_t)N * C, 0), *gw = ld("sparse_linear", "grad_weight", (size_t)C * F, 0);
    float *gb = ld("sparse_linear", "grad_bias", C, 0);
    if (rp32 && col && val && w && b && y && r && gw && gb) {
        int64_t rp[7];
        for (int n = 0; n <= N; n++) rp[n] = rp32[n];
        CHECK(nnz == 15 && rp[2] == rp[1], "sparse_linear fixture: %d non-zeros, row 1 not empty", nnz);
        float my[24], dw[52], db[4];
        attn__sparse_linear_forward(my, rp, col, val, w, b, N, F, C);
        tu_close("torch sparse_linear y", my, y, (size_t)N * C, 1e-6, 1e-6);
        attn__sparse_linear_backward(dw, 0, db, 0, r, rp, col, val, N, F, C);
        tu_close("torch sparse_linear grad_weight", dw, gw, (size_t)C * F, 1e-6, 1e-6);
        tu_close("torch sparse_linear grad_bias", db, gb, C, 1e-6, 1e-6);
        /* Accumulation adds to what is there: a second backward doubles the gradients. */
        attn__sparse_linear_backward(dw, 1, db, 1, r, rp, col, val, N, F, C);
        for (int i = 0; i < C * F; i++) dw[i] *= 0.5f;
        for (int i = 0; i < C; i++) db[i] *= 0.5f;
        tu_close("torch sparse_linear accumulated grad_weight / 2", dw, gw, (size_t)C * F, 1e-6, 1e-6);
        tu_close("torch sparse_linear accumulated grad_bias / 2", db, gb, C, 1e-6, 1e-6);
    }
    attn_free(rp32), attn_free(col), attn_free(val), attn_free(w), attn_free(b), attn_free(y), attn_free(r);
    attn_free(gw), attn_free(gb);
}

/* torch.max and mean over time, with two exact ties and an empty sequence. */
static void test_torch_pool(void) {
    const int B = 4, T = 6, C = 7;
    size_t nx = (size_t)B * T * C, ny = (size_t)B * C;
    float *x = ld("pool", "x", nx, 0), *r = ld("pool", "r", ny, 0), *maxy = ld("pool", "max_y", ny, 0);
    float *meany = ld("pool", "mean_y", ny, 0), *gmax = ld("pool", "grad_max_x", nx, 0);
    float *gmean = ld("pool", "grad_mean_x", nx, 0);
    int32_t *len = ld("pool", "lengths", B, 1);
    if (x && r && maxy && meany && gmax && gmean && len) {
        float y[28], dx[168] = {0};
        int32_t arg[28];
        CHECK(attn_max_pool_time_forward(y, arg, x, len, B, T, C) == ATTN_OK, "max pool: %s", attn_last_error());
        CHECK(!memcmp(y, maxy, sizeof y), "torch max over time: not the same floats");
        CHECK(arg[1] == 2 && arg[2] == 0, "ties: argmax %d and %d, expected the first (2 and 0)", arg[1], arg[2]);
        CHECK(arg[3 * C] == -1 && y[3 * C] == 0.0f, "empty sequence: argmax %d, y %g", arg[3 * C], y[3 * C]);
        CHECK(attn_max_pool_time_backward(dx, r, arg, B, T, C) == ATTN_OK, "max pool bwd");
        CHECK(!memcmp(dx, gmax, sizeof dx), "torch max over time: gradient differs");
        memset(dx, 0, sizeof dx);
        CHECK(attn_mean_pool_time_forward(y, x, len, B, T, C) == ATTN_OK, "mean pool: %s", attn_last_error());
        CHECK(attn_mean_pool_time_backward(dx, r, len, B, T, C) == ATTN_OK, "mean pool bwd");
        tu_close("torch mean over time", y, meany, ny, 1e-6, 1e-7);
        tu_close("torch mean over time: gradient", dx, gmean, nx, 1e-6, 1e-7);
    }
    attn_free(x), attn_free(r), attn_free(maxy), attn_free(meany), attn_free(gmax), attn_free(gmean), attn_free(len);
}

/* A padded layer with lengths (one sequence empty): forward and backward bits equal for 1 and 3
 * threads; padded positions never reach an output. */
static void test_conv_threads(void) {
    const int B = 7, T = 11, Cin = 40, Cout = 37, K = 4, pad = 1, To = attn_conv1d_out_length(T, K, pad);
    const int32_t len[7] = {11, 3, 1, 0, 9, 11, 2};
    size_t nx = (size_t)B * T * Cin, nw = (size_t)Cout * Cin * K, ny = (size_t)B * To * Cout;
    float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float)), *b = malloc(Cout * sizeof(float));
    float *r = malloc(ny * sizeof(float)), *out[2][4];
    tu_randn(x, nx, 1), tu_randn(w, nw, 2), tu_randn(b, Cout, 3), tu_randn(r, ny, 4);
    const size_t n[4] = {ny, nx, nw, (size_t)Cout};
    int threads0 = attn_get_threads();
    for (int k = 0; k < 2; k++) {
        attn_set_threads(k ? 3 : 1);
        for (int i = 0; i < 4; i++) out[k][i] = calloc(n[i], sizeof(float));
        attn_conv1d_forward(out[k][0], x, len, w, b, B, T, Cin, Cout, K, pad);
        attn_conv1d_backward(out[k][1], out[k][2], out[k][3], r, x, len, w, B, T, Cin, Cout, K, pad);
    }
    attn_set_threads(threads0);
    for (int i = 0; i < 4; i++) {
        CHECK(!memcmp(out[0][i], out[1][i], n[i] * sizeof(float)), "conv1d output %d differs between 1 and 3 threads", i);
        free(out[0][i]), free(out[1][i]);
    }
    /* Padded positions never reach an output: changing them changes nothing. */
    float *y1 = malloc(ny * sizeof(float)), *y2 = malloc(ny * sizeof(float));
    attn_conv1d_forward(y1, x, len, w, b, B, T, Cin, Cout, K, pad);
    for (int bb = 0; bb < B; bb++)
        for (size_t e = (size_t)len[bb] * Cin; e < (size_t)T * Cin; e++) x[(size_t)bb * T * Cin + e] = 1e30f;
    attn_conv1d_forward(y2, x, len, w, b, B, T, Cin, Cout, K, pad);
    CHECK(!memcmp(y1, y2, ny * sizeof(float)), "conv1d: a padded position reached an output");
    int zero = 1; /* sequence 3 is empty: all its rows 0 */
    for (size_t e = 0; e < (size_t)To * Cout; e++) zero &= y1[(size_t)3 * To * Cout + e] == 0.0f;
    CHECK(zero, "conv1d: an empty sequence has non-zero outputs");
    free(x), free(w), free(b), free(r), free(y1), free(y2);
}

/* Kim's layer on the tape, max_pool_time(conv1d(x)) and mean_pool_time(x): the same bits as
 * the raw functions, forward and backward. */
static void test_conv_tape(void) {
    enum { B = 3, T = 6, Cin = 5, Cout = 4, K = 3, pad = 1, To = T + 2 * pad - K + 1 };
    const int32_t len[B] = {6, 2, 4};
    int32_t olen[B], arg[B * Cout];
    for (int b = 0; b < B; b++) olen[b] = attn_conv1d_out_length(len[b], K, pad);
    float x[B * T * Cin], w[Cout * Cin * K], bias[Cout], r[B * Cout], rx[B * Cin], pm[B * Cin];
    float gx[B * T * Cin] = {0}, gw[Cout * Cin * K] = {0}, gb[Cout] = {0}, y[B * To * Cout], p[B * Cout];
    float dy[B * To * Cout] = {0}, dx[B * T * Cin] = {0}, dw[Cout * Cin * K] = {0}, db[Cout] = {0};
    tu_randn(x, B * T * Cin, 5), tu_randn(w, Cout * Cin * K, 6), tu_randn(bias, Cout, 7), tu_randn(r, B * Cout, 8);
    tu_randn(rx, B * Cin, 9);
    attn_graph *g = NULL;
    CHECK(attn_graph_new(0, &g) == ATTN_OK, "graph: %s", attn_last_error());
    if (!g) return;
    attn_var *vx = attn_graph_leaf(g, 3, (int64_t[]){B, T, Cin}, x, gx);
    attn_var *vw = attn_graph_leaf(g, 3, (int64_t[]){Cout, Cin, K}, w, gw);
    attn_var *vb = attn_graph_leaf(g, 1, (int64_t[]){Cout}, bias, gb);
    attn_var *vp = attn_ag_max_pool_time(g, attn_ag_conv1d(g, vx, vw, vb, pad, len), olen);
    CHECK(vp && attn_graph_backward_from(g, vp, r) == ATTN_OK, "tape conv1d + max pool: %s", attn_last_error());
    attn_conv1d_forward(y, x, len, w, bias, B, T, Cin, Cout, K, pad);
    attn_max_pool_time_forward(p, arg, y, olen, B, To, Cout);
    attn_max_pool_time_backward(dy, r, arg, B, To, Cout);
    attn_conv1d_backward(dx, dw, db, dy, x, len, w, B, T, Cin, Cout, K, pad);
    CHECK(vp && !memcmp(vp->data, p, sizeof p), "tape max_pool_time(conv1d) forward differs");
    CHECK(!memcmp(gx, dx, sizeof dx) && !memcmp(gw, dw, sizeof dw) && !memcmp(gb, db, sizeof db),
          "tape conv1d backward differs");
    attn_graph_reset(g);
    memset(gx, 0, sizeof gx), memset(dx, 0, sizeof dx);
    vx = attn_graph_leaf(g, 3, (int64_t[]){B, T, Cin}, x, gx);
    vp = attn_ag_mean_pool_time(g, vx, len);
    CHECK(vp && attn_graph_backward_from(g, vp, rx) == ATTN_OK, "tape mean pool: %s", attn_last_error());
    attn_mean_pool_time_forward(pm, x, len, B, T, Cin);
    attn_mean_pool_time_backward(dx, rx, len, B, T, Cin);
    CHECK(vp && !memcmp(vp->data, pm, sizeof pm) && !memcmp(gx, dx, sizeof dx), "tape mean pool differs");
    /* Errors: T + 2 pad < K (no output), pad >= K, a length past T, a wrong weight. */
    attn_graph_reset(g);
    vx = attn_graph_leaf(g, 3, (int64_t[]){B, 2, Cin}, x, NULL);
    CHECK(!attn_ag_conv1d(g, vx, attn_graph_leaf(g, 3, (int64_t[]){Cout, Cin, 5}, w, NULL), NULL, 1, NULL) &&
              attn_graph_status(g) == ATTN_ESHAPE, "tape conv1d: T + 2 pad < K accepted");
    attn_graph_reset(g);
    vx = attn_graph_leaf(g, 3, (int64_t[]){B, T, Cin}, x, NULL);
    CHECK(!attn_ag_conv1d(g, vx, vw = attn_graph_leaf(g, 3, (int64_t[]){Cout, Cin, K}, w, NULL), NULL, K, NULL),
          "tape conv1d: pad = K accepted");
    attn_graph_reset(g);
    vx = attn_graph_leaf(g, 3, (int64_t[]){B, T, Cin}, x, NULL);
    CHECK(!attn_ag_max_pool_time(g, vx, (int32_t[]){1, 7, 1}), "tape max pool: a length past T accepted");
    attn_graph_reset(g);
    vx = attn_graph_leaf(g, 3, (int64_t[]){B, T, Cin}, x, NULL);
    CHECK(!attn_ag_conv1d(g, vx, attn_graph_leaf(g, 3, (int64_t[]){Cout, Cin + 1, K}, w, NULL), NULL, 0, NULL) &&
              attn_graph_status(g) == ATTN_ESHAPE, "tape conv1d: Cin mismatch accepted");
    attn_graph_free(g);
}

/* A sequence shorter than K gives no output; bad arguments are errors, not crashes. */
static void test_conv_errors(void) {
    float x[12] = {0}, w[24] = {0}, y[8], dx[12];
    CHECK(attn_conv1d_out_length(2, 3, 0) == 0 && attn_conv1d_out_length(2, 3, 1) == 2 &&
              attn_conv1d_out_length(3, 3, 0) == 1 && attn_conv1d_out_length(0, 1, 0) == 0, "conv1d_out_length");
    CHECK(attn_conv1d_forward(y, x, NULL, w, NULL, 2, 2, 3, 2, 3, 0) == ATTN_OK, "T < K: no outputs is not an error");
    for (int i = 0; i < 12; i++) dx[i] = 1.0f;
    CHECK(attn_conv1d_backward(dx, NULL, NULL, y, x, NULL, w, 2, 2, 3, 2, 3, 0) == ATTN_OK && dx[0] == 1.0f && dx[11] == 1.0f,
          "T < K: the input gradient is unchanged");
    CHECK(attn_conv1d_forward(y, x, NULL, w, NULL, 1, 2, 3, 2, 2, 2) == ATTN_EINVAL, "pad = K accepted");
    CHECK(attn_conv1d_forward(y, x, (int32_t[]){3}, w, NULL, 1, 2, 3, 2, 2, 0) == ATTN_EINVAL, "length past T accepted");
    CHECK(attn_conv1d_forward(NULL, x, NULL, w, NULL, 1, 2, 3, 2, 2, 0) == ATTN_EINVAL, "NULL y accepted");
    CHECK(attn_conv1d_forward(y, x, NULL, w, NULL, 1, 2, 0, 2, 2, 0) == ATTN_EINVAL, "Cin = 0 accepted");
    int32_t arg[2];
    CHECK(attn_max_pool_time_forward(y, arg, x, (int32_t[]){-1}, 1, 2, 2) == ATTN_EINVAL, "negative length accepted");
    CHECK(attn_max_pool_time_backward(dx, y, (int32_t[]){0, 2}, 1, 2, 2) == ATTN_EINVAL, "argmax = T accepted");
    CHECK(attn_mean_pool_time_forward(y, NULL, NULL, 1, 2, 2) == ATTN_EINVAL, "NULL x accepted");
    float nan_x[3] = {1.0f, NAN, 5.0f}, m;
    CHECK(attn_max_pool_time_forward(&m, arg, nan_x, NULL, 1, 3, 1) == ATTN_OK && isnan(m) && arg[0] == 1,
          "max over time: a NaN propagates (torch.max)");
}

int main(void) {
    test_embedding();
    test_softmax();
    test_cross_entropy();
    test_dropout();
    test_torch_rnn(0);
    test_torch_rnn(1);
    test_torch_cross_entropy();
    test_torch_conv("conv_pad", 3, 7, 5, 4);
    test_torch_conv("conv_valid", 3, 6, 17, 9);
    test_torch_pool();
    test_torch_sparse_linear();
    test_conv_threads();
    test_conv_tape();
    test_conv_errors();
    return tu_summary("test_layers");
}
