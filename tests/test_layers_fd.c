/* Every backward of attn/layers.h against central finite differences of an independent
 * double-precision forward written here (not the library's), and every forward against that
 * same double forward. The objective is L = sum(out * R) for fixed random R, so dout = R.
 * Gradient buffers start at 1 and the backward's result minus 1 is compared, which also
 * checks that backwards accumulate (+=). Covered: GRU (linear_before_reset 0 and 1, forward
 * and reverse, with and without per-sequence lengths, the single-step cell), LSTM (the same,
 * with and without peepholes), layernorm (with and without affine), embedding (repeated ids,
 * padding_idx), softmax, log-softmax, cross-entropy (ignore_index, label smoothing, class
 * weights, every reduction), tanh, sigmoid, relu, gelu; dropout's mask statistics and that
 * its backward uses the forward's mask; argument errors.
 * Then, once against PyTorch itself (tests/data/layers/, written by tools/gen_layers_refs.py):
 * a bidirectional nn.GRU and nn.LSTM on a packed batch with per-sequence lengths, loaded from
 * PyTorch's own parameter names, outputs and every gradient; and F.cross_entropy with class
 * weights, ignore_index and label smoothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/io.h"
#include "attn/layers.h"
#include "testutil.h"

#define FD_EPS 1e-6
#define RTOL 1e-4
#define ATOL 2e-5

typedef double (*objective_fn)(void *ctx);

static double *to_d(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

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

/* Compares analytic (the backward's accumulated result, buffers started at `base`) with the
 * central difference of f over each element of param (double, modified and restored). */
static void fd_check(const char *what, double *param, size_t n, const float *analytic, float base,
                     objective_fn f, void *ctx) {
    double *num = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double save = param[i];
        param[i] = save + FD_EPS;
        double lp = f(ctx);
        param[i] = save - FD_EPS;
        double lm = f(ctx);
        param[i] = save;
        num[i] = (lp - lm) / (2 * FD_EPS);
        got[i] = (double)analytic[i] - base;
    }
    tu_close_d(what, got, num, n, RTOL, ATOL);
    free(num);
    free(got);
}

static double dsig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- GRU and LSTM ----------------------------------------------------------------------- */

typedef struct {
    int lstm, T, B, I, H, rev, lbr, peep;
    const int32_t *len;
    double *x, *h0, *c0, *wih, *whh, *bih, *bhh, *P; /* P NULL without peepholes */
    const double *ry, *rh, *rc;                      /* objective weights, NULL = unused */
    double *y, *hn, *cn;                             /* outputs of the last evaluation */
} rnn_ctx;

/* The recurrences of attn/layers.h, one element at a time, in double. */
static double rnn_objective(void *vctx) {
    rnn_ctx *c = vctx;
    const int T = c->T, B = c->B, I = c->I, H = c->H, G = c->lstm ? 4 : 3;
    double *h = c->hn, *cs = c->cn; // running state (B, H)
    double *a = malloc((size_t)G * H * sizeof(double)), *ah = malloc((size_t)G * H * sizeof(double));
    double *hnew = malloc((size_t)H * sizeof(double)), *cnew = malloc((size_t)H * sizeof(double));
    double *rr = malloc((size_t)H * sizeof(double));
    for (int k = 0; k < B * H; k++) h[k] = c->h0 ? c->h0[k] : 0.0, cs[k] = c->c0 ? c->c0[k] : 0.0;
    for (int s = 0; s < T; s++) {
        const int t = c->rev ? T - 1 - s : s;
        for (int b = 0; b < B; b++) {
            double *yb = c->y + ((size_t)t * B + b) * H, *hb = h + (size_t)b * H, *cb = cs + (size_t)b * H;
            if (c->len && t >= c->len[b]) {
                for (int j = 0; j < H; j++) yb[j] = 0.0;
                continue;
            }
            const double *xb = c->x + ((size_t)t * B + b) * I;
            for (int r = 0; r < G * H; r++) { // input and recurrent pre-activations
                double si = c->bih ? c->bih[r] : 0.0, sh = c->bhh ? c->bhh[r] : 0.0;
                for (int i = 0; i < I; i++) si += c->wih[(size_t)r * I + i] * xb[i];
                for (int m = 0; m < H; m++) sh += c->whh[(size_t)r * H + m] * hb[m];
                a[r] = si, ah[r] = sh;
            }
            if (!c->lstm) {
                for (int j = 0; j < H; j++) rr[j] = dsig(a[j] + ah[j]);
                for (int j = 0; j < H; j++) {
                    double z = dsig(a[H + j] + ah[H + j]), n;
                    if (c->lbr) {
                        n = tanh(a[2 * H + j] + rr[j] * ah[2 * H + j]);
                    } else {
                        double s2 = c->bhh ? c->bhh[2 * H + j] : 0.0;
                        for (int m = 0; m < H; m++) s2 += c->whh[(size_t)(2 * H + j) * H + m] * rr[m] * hb[m];
                        n = tanh(a[2 * H + j] + s2);
                    }
                    hnew[j] = (1.0 - z) * n + z * hb[j];
                }
            } else {
                for (int j = 0; j < H; j++) {
                    double cp = cb[j];
                    double ig = dsig(a[j] + ah[j] + (c->P ? c->P[j] * cp : 0.0));
                    double fg = dsig(a[H + j] + ah[H + j] + (c->P ? c->P[H + j] * cp : 0.0));
                    double gg = tanh(a[2 * H + j] + ah[2 * H + j]);
                    double cc = fg * cp + ig * gg;
                    double og = dsig(a[3 * H + j] + ah[3 * H + j] + (c->P ? c->P[2 * H + j] * cc : 0.0));
                    cnew[j] = cc;
                    hnew[j] = og * tanh(cc);
                }
                memcpy(cb, cnew, (size_t)H * sizeof(double));
            }
            memcpy(hb, hnew, (size_t)H * sizeof(double));
            memcpy(yb, hnew, (size_t)H * sizeof(double));
        }
    }
    double L = 0.0;
    for (size_t k = 0; c->ry && k < (size_t)T * B * H; k++) L += c->y[k] * c->ry[k];
    for (size_t k = 0; c->rh && k < (size_t)B * H; k++) L += h[k] * c->rh[k];
    for (size_t k = 0; c->rc && k < (size_t)B * H; k++) L += cs[k] * c->rc[k];
    free(a), free(ah), free(hnew), free(cnew), free(rr);
    return L;
}

/* One configuration: the float layer vs the double recurrence, forward and every gradient.
 * use_dy / use_dh / use_dc choose which outputs enter the objective. cell: use the
 * single-step calls (T must be 1, no lengths, not reversed). */
static void check_rnn(int lstm, int lbr, int peep, int rev, const int32_t *len, int T, int B,
                      int I, int H, int use_dy, int use_dh, int use_dc, int cell, uint64_t seed) {
    char tag[160];
    snprintf(tag, sizeof tag, "%s%s lbr=%d peep=%d rev=%d len=%s T=%d dy=%d dh=%d dc=%d", cell ? "cell " : "",
             lstm ? "lstm" : "gru", lbr, peep, rev, len ? "yes" : "no", T, use_dy, use_dh, use_dc);
    const int G = lstm ? 4 : 3;
    const size_t nx = (size_t)T * B * I, nbh = (size_t)B * H, ny = (size_t)T * nbh;
    const size_t nwi = (size_t)G * H * I, nwh = (size_t)G * H * H, nb = (size_t)G * H, np = (size_t)3 * H;
    float *x = randn(nx, seed + 1, 1.0f), *h0 = randn(nbh, seed + 2, 0.5f), *c0 = randn(nbh, seed + 3, 0.5f);
    float *wih = randn(nwi, seed + 4, 0.4f), *whh = randn(nwh, seed + 5, 0.4f);
    float *bih = randn(nb, seed + 6, 0.3f), *bhh = randn(nb, seed + 7, 0.3f), *P = randn(np, seed + 8, 0.5f);
    float *ry = randn(ny, seed + 9, 1.0f), *rh = randn(nbh, seed + 10, 1.0f), *rc = randn(nbh, seed + 11, 1.0f);
    float *y = malloc(ny * sizeof(float)), *hn = malloc(nbh * sizeof(float)), *cn = malloc(nbh * sizeof(float));
    float *dx = filled(nx, 1), *dh0 = filled(nbh, 1), *dc0 = filled(nbh, 1), *dwih = filled(nwi, 1);
    float *dwhh = filled(nwh, 1), *dbih = filled(nb, 1), *dbhh = filled(nb, 1), *dP = filled(np, 1);
    attn_gru gm = {I, H, lbr, wih, whh, bih, bhh};
    attn_lstm lm = {I, H, wih, whh, bih, bhh, peep ? P : NULL};
    attn_gru_grad gg = {dwih, dwhh, dbih, dbhh};
    attn_lstm_grad lg = {dwih, dwhh, dbih, dbhh, dP};
    size_t ncache = lstm ? attn_lstm_cache_size(&lm, T, B) : attn_gru_cache_size(&gm, T, B);
    float *cache = malloc(ncache * sizeof(float));
    int st;
    if (cell && lstm) {
        st = attn_lstm_cell_forward(&lm, B, x, h0, c0, hn, cn, cache);
        memcpy(y, hn, nbh * sizeof(float));
        if (!st) st = attn_lstm_cell_backward(&lm, B, x, cache, use_dh ? rh : NULL, use_dc ? rc : NULL, dx, dh0, dc0, &lg);
    } else if (cell) {
        st = attn_gru_cell_forward(&gm, B, x, h0, hn, cache);
        memcpy(y, hn, nbh * sizeof(float));
        if (!st) st = attn_gru_cell_backward(&gm, B, x, cache, rh, dx, dh0, &gg);
    } else if (lstm) {
        st = attn_lstm_forward(&lm, T, B, rev, len, x, h0, c0, y, hn, cn, cache);
        if (!st)
            st = attn_lstm_backward(&lm, T, B, rev, len, x, cache, use_dy ? ry : NULL, use_dh ? rh : NULL,
                                    use_dc ? rc : NULL, dx, dh0, dc0, &lg);
    } else {
        st = attn_gru_forward(&gm, T, B, rev, len, x, h0, y, hn, cache);
        if (!st) st = attn_gru_backward(&gm, T, B, rev, len, x, cache, use_dy ? ry : NULL, use_dh ? rh : NULL, dx, dh0, &gg);
    }
    CHECK(st == ATTN_OK, "%s: %s", tag, attn_last_error());

    rnn_ctx c = {lstm, T, B, I, H, rev, lbr, peep, len, to_d(x, nx), to_d(h0, nbh), lstm ? to_d(c0, nbh) : NULL,
                 to_d(wih, nwi), to_d(whh, nwh), to_d(bih, nb), to_d(bhh, nb), lstm && peep ? to_d(P, np) : NULL,
                 NULL, NULL, NULL, malloc(ny * sizeof(double)), malloc(nbh * sizeof(double)), malloc(nbh * sizeof(double))};
    double *dry = to_d(ry, ny), *drh = to_d(rh, nbh), *drc = to_d(rc, nbh);
    c.ry = use_dy ? dry : NULL, c.rh = use_dh ? drh : NULL, c.rc = lstm && use_dc ? drc : NULL;
    rnn_objective(&c);
    char what[256];
    double *yf = to_d(y, ny), *hf = to_d(hn, nbh), *cf = to_d(cn, nbh);
    snprintf(what, sizeof what, "%s: y", tag), tu_close_d(what, yf, c.y, ny, 1e-5, 1e-6);
    snprintf(what, sizeof what, "%s: h_n", tag), tu_close_d(what, hf, c.hn, nbh, 1e-5, 1e-6);
    if (lstm) snprintf(what, sizeof what, "%s: c_n", tag), tu_close_d(what, cf, c.cn, nbh, 1e-5, 1e-6);
    free(yf), free(hf), free(cf);

    snprintf(what, sizeof what, "%s: dx", tag), fd_check(what, c.x, nx, dx, 1, rnn_objective, &c);
    snprintf(what, sizeof what, "%s: dh0", tag), fd_check(what, c.h0, nbh, dh0, 1, rnn_objective, &c);
    if (lstm) snprintf(what, sizeof what, "%s: dc0", tag), fd_check(what, c.c0, nbh, dc0, 1, rnn_objective, &c);
    snprintf(what, sizeof what, "%s: dweight_ih", tag), fd_check(what, c.wih, nwi, dwih, 1, rnn_objective, &c);
    snprintf(what, sizeof what, "%s: dweight_hh", tag), fd_check(what, c.whh, nwh, dwhh, 1, rnn_objective, &c);
    snprintf(what, sizeof what, "%s: dbias_ih", tag), fd_check(what, c.bih, nb, dbih, 1, rnn_objective, &c);
    snprintf(what, sizeof what, "%s: dbias_hh", tag), fd_check(what, c.bhh, nb, dbhh, 1, rnn_objective, &c);
    if (lstm && peep) snprintf(what, sizeof what, "%s: dpeephole", tag), fd_check(what, c.P, np, dP, 1, rnn_objective, &c);
    else if (lstm) CHECK(dP[0] == 1.0f, "%s: peephole gradient written without peepholes", tag);

    if (!cell) { // the cache survives the backward: a second call gives the same gradients
        float *dx2 = filled(nx, 1), *dwhh2 = filled(nwh, 1);
        attn_gru_grad gg2 = {NULL, dwhh2, NULL, NULL};
        attn_lstm_grad lg2 = {NULL, dwhh2, NULL, NULL, NULL};
        if (lstm)
            st = attn_lstm_backward(&lm, T, B, rev, len, x, cache, use_dy ? ry : NULL, use_dh ? rh : NULL,
                                    use_dc ? rc : NULL, dx2, NULL, NULL, &lg2);
        else
            st = attn_gru_backward(&gm, T, B, rev, len, x, cache, use_dy ? ry : NULL, use_dh ? rh : NULL, dx2, NULL, &gg2);
        CHECK(st == ATTN_OK && !memcmp(dx2, dx, nx * sizeof(float)) && !memcmp(dwhh2, dwhh, nwh * sizeof(float)),
              "%s: a second backward differs", tag);
        free(dx2), free(dwhh2);
    }
    free(c.x), free(c.h0), free(c.c0), free(c.wih), free(c.whh), free(c.bih), free(c.bhh), free(c.P);
    free(c.y), free(c.hn), free(c.cn), free(dry), free(drh), free(drc);
    free(x), free(h0), free(c0), free(wih), free(whh), free(bih), free(bhh), free(P), free(ry), free(rh), free(rc);
    free(y), free(hn), free(cn), free(dx), free(dh0), free(dc0), free(dwih), free(dwhh), free(dbih), free(dbhh);
    free(dP), free(cache);
}

static void test_rnn(void) {
    const int32_t len[3] = {5, 2, 0}; // a full, a short and an empty sequence (T = 5)
    const int32_t len2[3] = {3, 5, 1};
    uint64_t seed = 100;
    for (int lbr = 0; lbr <= 1; lbr++)
        for (int rev = 0; rev <= 1; rev++)
            for (int l = 0; l < 3; l++)
                check_rnn(0, lbr, 0, rev, l == 0 ? NULL : l == 1 ? len : len2, 5, 3, 3, 4, 1, 1, 0, 0, seed += 20);
    for (int peep = 0; peep <= 1; peep++)
        for (int rev = 0; rev <= 1; rev++)
            for (int l = 0; l < 3; l++)
                check_rnn(1, 0, peep, rev, l == 0 ? NULL : l == 1 ? len : len2, 5, 3, 3, 4, 1, 1, 1, 0, seed += 20);
    // gradients through one output only
    check_rnn(0, 1, 0, 0, len2, 5, 3, 3, 4, 1, 0, 0, 0, seed += 20);
    check_rnn(0, 0, 0, 1, len2, 5, 3, 3, 4, 0, 1, 0, 0, seed += 20);
    check_rnn(1, 0, 1, 0, len2, 5, 3, 3, 4, 0, 0, 1, 0, seed += 20);
    check_rnn(1, 0, 0, 1, NULL, 5, 3, 3, 4, 1, 0, 0, 0, seed += 20);
    // single steps
    check_rnn(0, 0, 0, 0, NULL, 1, 2, 5, 3, 0, 1, 0, 1, seed += 20);
    check_rnn(0, 1, 0, 0, NULL, 1, 2, 5, 3, 0, 1, 0, 1, seed += 20);
    check_rnn(1, 0, 0, 0, NULL, 1, 2, 5, 3, 0, 1, 1, 1, seed += 20);
    check_rnn(1, 0, 1, 0, NULL, 1, 2, 5, 3, 0, 1, 0, 1, seed += 20);

    // argument errors
    float w[48] = {0}, x[16] = {0}, cache[256], y[16];
    attn_gru gm = {2, 2, 1, w, w, NULL, NULL};
    const int32_t bad[2] = {1, 3};
    CHECK(attn_gru_forward(&gm, 2, 2, 0, bad, x, NULL, y, NULL, cache) == ATTN_EINVAL, "length > T accepted");
    CHECK(attn_gru_forward(&gm, 0, 2, 0, NULL, x, NULL, y, NULL, cache) == ATTN_EINVAL, "T = 0 accepted");
    gm.linear_before_reset = 2;
    CHECK(attn_gru_forward(&gm, 2, 2, 0, NULL, x, NULL, y, NULL, cache) == ATTN_EINVAL, "lbr = 2 accepted");
    attn_lstm lm = {2, 2, NULL, w, NULL, NULL, NULL};
    CHECK(attn_lstm_forward(&lm, 2, 2, 0, NULL, x, NULL, NULL, y, NULL, NULL, cache) == ATTN_EINVAL, "NULL weight accepted");
    CHECK(attn_gru_cache_size(&gm, 3, 2) == (size_t)(4 * 2 * 2 + 3 * 2 * 4 * 2), "gru cache size");
    CHECK(attn_lstm_cache_size(&lm, 3, 2) == (size_t)(2 * 4 * 2 * 2 + 3 * 2 * 5 * 2), "lstm cache size");
}

/* ---- Layer norm --------------------------------------------------------------------------- */

typedef struct {
    int N, C, affine;
    double *x, *w, *b, *y;
    const double *r;
    float eps;
} ln_ctx;

/* Writes c->y (N, C) and returns sum(y * r). */
static double ln_objective(void *vctx) {
    ln_ctx *c = vctx;
    double L = 0.0;
    for (int i = 0; i < c->N; i++) {
        const double *x = c->x + (size_t)i * c->C;
        double *y = c->y + (size_t)i * c->C, m = 0.0, v = 0.0;
        for (int j = 0; j < c->C; j++) m += x[j];
        m /= c->C;
        for (int j = 0; j < c->C; j++) v += (x[j] - m) * (x[j] - m);
        v /= c->C;
        for (int j = 0; j < c->C; j++) {
            y[j] = (x[j] - m) / sqrt(v + c->eps);
            if (c->affine) y[j] = y[j] * c->w[j] + c->b[j];
            L += y[j] * c->r[(size_t)i * c->C + j];
        }
    }
    return L;
}

static void test_layernorm(void) {
    for (int affine = 0; affine <= 1; affine++) {
        const int N = 4, C = 7;
        const size_t n = (size_t)N * C;
        const float eps = 1e-5f;
        float *x = randn(n, 7 + affine, 2.0f), *w = randn(C, 8, 1.0f), *b = randn(C, 9, 1.0f), *r = randn(n, 10, 1.0f);
        for (size_t k = 0; k < n; k++) x[k] += 3.0f; // a non-zero mean
        float *y = malloc(n * sizeof(float)), mean[4], rstd[4];
        float *dx = filled(n, 1), *dw = filled(C, 1), *db = filled(C, 1);
        CHECK(attn_layernorm_forward(y, mean, rstd, x, affine ? w : NULL, affine ? b : NULL, N, C, eps) == ATTN_OK, "ln fwd");
        CHECK(attn_layernorm_backward(dx, affine ? dw : NULL, affine ? db : NULL, r, x, affine ? w : NULL, mean, rstd, N, C) == ATTN_OK, "ln bwd");
        double *rd = to_d(r, n), *yf = to_d(y, n);
        ln_ctx c = {N, C, affine, to_d(x, n), to_d(w, C), to_d(b, C), malloc(n * sizeof(double)), rd, eps};
        ln_objective(&c);
        tu_close_d(affine ? "layernorm y" : "layernorm y (no affine)", yf, c.y, n, 1e-5, 1e-6);
        fd_check(affine ? "layernorm dx" : "layernorm dx (no affine)", c.x, n, dx, 1, ln_objective, &c);
        if (affine) {
            fd_check("layernorm dweight", c.w, C, dw, 1, ln_objective, &c);
            fd_check("layernorm dbias", c.b, C, db, 1, ln_objective, &c);
        }
        free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
        free(c.x), free(c.w), free(c.b), free(c.y), free(rd), free(yf);
    }
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

/* ---- Softmax, log-softmax, cross-entropy ---------------------------------------------------- */

typedef struct {
    int N, C, log;
    double *x;
    const double *r;
} sm_ctx;

static void dsoftmax_row(const double *x, double *p, int C, int logp) {
    double m = -INFINITY, s = 0.0;
    for (int j = 0; j < C; j++) m = x[j] > m ? x[j] : m;
    for (int j = 0; j < C; j++) s += exp(x[j] - m);
    for (int j = 0; j < C; j++) p[j] = logp ? x[j] - m - log(s) : exp(x[j] - m) / s;
}

static double sm_objective(void *vctx) {
    sm_ctx *c = vctx;
    double L = 0.0, p[64];
    for (int i = 0; i < c->N; i++) {
        dsoftmax_row(c->x + (size_t)i * c->C, p, c->C, c->log);
        for (int j = 0; j < c->C; j++) L += p[j] * c->r[(size_t)i * c->C + j];
    }
    return L;
}

static void test_softmax(void) {
    for (int lg = 0; lg <= 1; lg++) {
        const int N = 5, C = 9;
        const size_t n = (size_t)N * C;
        float *x = randn(n, 31 + lg, 3.0f), *r = randn(n, 33, 1.0f), *y = malloc(n * sizeof(float));
        float *dx = filled(n, 1);
        x[3] += 80.0f; // large logits stay finite
        int st = lg ? attn_log_softmax_forward(y, x, N, C) : attn_softmax_forward(y, x, N, C);
        CHECK(st == ATTN_OK, "softmax fwd");
        st = lg ? attn_log_softmax_backward(dx, y, r, N, C) : attn_softmax_backward(dx, y, r, N, C);
        CHECK(st == ATTN_OK, "softmax bwd");
        sm_ctx c = {N, C, lg, to_d(x, n), NULL};
        double *rd = to_d(r, n), *yd = malloc(n * sizeof(double)), *yf = to_d(y, n);
        c.r = rd;
        for (int i = 0; i < N; i++) dsoftmax_row(c.x + (size_t)i * C, yd + (size_t)i * C, C, lg);
        tu_close_d(lg ? "log_softmax y" : "softmax y", yf, yd, n, 1e-5, 1e-6);
        fd_check(lg ? "log_softmax dx" : "softmax dx", c.x, n, dx, 1, sm_objective, &c);
        // in place
        memcpy(dx, x, n * sizeof(float));
        st = lg ? attn_log_softmax_forward(dx, dx, N, C) : attn_softmax_forward(dx, dx, N, C);
        CHECK(st == ATTN_OK && !memcmp(dx, y, n * sizeof(float)), "in-place softmax differs");
        free(x), free(r), free(y), free(dx), free(c.x), free(rd), free(yd), free(yf);
    }
    float row[3] = {-INFINITY, -INFINITY, -INFINITY}, out[3];
    attn_softmax_forward(out, row, 1, 3);
    CHECK(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f, "all -inf row: softmax should be 0");
    attn_log_softmax_forward(out, row, 1, 3);
    CHECK(out[0] == -INFINITY && out[2] == -INFINITY, "all -inf row: log_softmax should be -inf");
}

typedef struct {
    int N, C, ii, red;
    double eps;
    double *x;
    const int32_t *t;
    const double *w, *r;
} ce_ctx;

static double ce_objective(void *vctx) {
    ce_ctx *c = vctx;
    double total = 0.0, den = 0.0, L = 0.0, lp[64];
    for (int i = 0; i < c->N; i++) {
        int y = c->t[i];
        double li = 0.0;
        if (y != c->ii) {
            dsoftmax_row(c->x + (size_t)i * c->C, lp, c->C, 1);
            double wy = c->w ? c->w[y] : 1.0, sm = 0.0;
            for (int j = 0; j < c->C; j++) sm += (c->w ? c->w[j] : 1.0) * -lp[j];
            li = (1 - c->eps) * wy * -lp[y] + c->eps / c->C * sm;
            den += wy;
        }
        total += li;
        if (c->red == ATTN_REDUCE_NONE) L += li * c->r[i];
    }
    if (c->red == ATTN_REDUCE_SUM) L = total * c->r[0];
    if (c->red == ATTN_REDUCE_MEAN) L = den ? total / den * c->r[0] : 0.0;
    return L;
}

static void test_cross_entropy(void) {
    const int N = 6, C = 5;
    const size_t n = (size_t)N * C;
    const int32_t t[6] = {1, -100, 4, 0, 4, 2};
    float *x = randn(n, 41, 2.0f), *w = randn(C, 42, 0.3f), *r = randn(N, 43, 1.0f);
    for (int j = 0; j < C; j++) w[j] += 1.0f;
    for (int red = 0; red <= 2; red++)
        for (int sm = 0; sm <= 1; sm++)
            for (int wt = 0; wt <= 1; wt++) {
                char tag[128];
                snprintf(tag, sizeof tag, "cross_entropy reduction=%d smoothing=%d weight=%d", red, sm, wt);
                const float eps = sm ? 0.15f : 0.0f;
                const size_t nl = red == ATTN_REDUCE_NONE ? (size_t)N : 1;
                float loss[6], lp[6], *dx = filled(n, 1);
                int st = attn_cross_entropy_forward(loss, lp, x, t, wt ? w : NULL, N, C, -100, eps, red);
                CHECK(st == ATTN_OK, "%s: %s", tag, attn_last_error());
                st = attn_cross_entropy_backward(dx, r, x, lp, t, wt ? w : NULL, N, C, -100, eps, red);
                CHECK(st == ATTN_OK, "%s: %s", tag, attn_last_error());
                double *wd = to_d(w, C), *rd = to_d(r, N);
                ce_ctx c = {N, C, -100, red, eps, to_d(x, n), t, wt ? wd : NULL, rd};
                double want[6], ones[6] = {1, 1, 1, 1, 1, 1}, got[6];
                // the loss values: the objective with r = unit vectors (NONE) or 1 (MEAN, SUM)
                for (size_t k = 0; k < nl; k++) {
                    double unit[6] = {0};
                    unit[k] = 1.0;
                    c.r = red == ATTN_REDUCE_NONE ? unit : ones;
                    want[k] = ce_objective(&c);
                    got[k] = loss[k];
                }
                c.r = rd;
                char what[160];
                snprintf(what, sizeof what, "%s: loss", tag), tu_close_d(what, got, want, nl, 1e-5, 1e-6);
                snprintf(what, sizeof what, "%s: dlogits", tag), fd_check(what, c.x, n, dx, 1, ce_objective, &c);
                int ign_ok = 1; // the ignored row gets no gradient
                for (int j = 0; j < C; j++) ign_ok &= dx[C + j] == 1.0f;
                CHECK(ign_ok, "%s: ignored row got a gradient", tag);
                free(dx), free(wd), free(rd), free(c.x);
            }
    // every target ignored: MEAN gives 0 and no gradient (PyTorch: NaN)
    const int32_t all_ign[2] = {3, 3};
    float loss, lp[2], dx[10] = {0}, one = 1.0f;
    CHECK(attn_cross_entropy_forward(&loss, lp, x, all_ign, NULL, 2, C, 3, 0.1f, ATTN_REDUCE_MEAN) == ATTN_OK && loss == 0.0f,
          "all ignored: loss %g", (double)loss);
    attn_cross_entropy_backward(dx, &one, x, lp, all_ign, NULL, 2, C, 3, 0.1f, ATTN_REDUCE_MEAN);
    int zero = 1;
    for (int k = 0; k < 10; k++) zero &= dx[k] == 0.0f;
    CHECK(zero, "all ignored: non-zero gradient");
    const int32_t bad[1] = {5};
    CHECK(attn_cross_entropy_forward(&loss, lp, x, bad, NULL, 1, C, -100, 0.0f, ATTN_REDUCE_MEAN) == ATTN_EINVAL,
          "target = C accepted");
    CHECK(attn_cross_entropy_forward(&loss, lp, x, t, NULL, 1, C, -100, 1.5f, ATTN_REDUCE_MEAN) == ATTN_EINVAL,
          "label smoothing 1.5 accepted");
    free(x), free(w), free(r);
}

/* ---- Activations ---------------------------------------------------------------------------- */

typedef struct {
    int kind, n;
    double *x;
    const double *r;
} act_ctx;

static double act_d(int kind, double x) {
    switch (kind) {
    case 0: return tanh(x);
    case 1: return 1.0 / (1.0 + exp(-x));
    case 2: return x > 0 ? x : 0.0;
    default: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    }
}

static double act_objective(void *vctx) {
    act_ctx *c = vctx;
    double L = 0.0;
    for (int i = 0; i < c->n; i++) L += act_d(c->kind, c->x[i]) * c->r[i];
    return L;
}

static void test_activations(void) {
    static const char *names[4] = {"tanh", "sigmoid", "relu", "gelu"};
    const int n = 64;
    float *x = randn(n, 51, 3.0f), *r = randn(n, 52, 1.0f);
    x[0] = 30.0f, x[1] = -30.0f, x[2] = -100.0f; // saturated ends
    for (int k = 0; k < 4; k++) {
        float *y = malloc(n * sizeof(float)), *dx = filled(n, 1);
        switch (k) {
        case 0: attn_tanh_forward(y, x, n), attn_tanh_backward(dx, y, r, n); break;
        case 1: attn_sigmoid_forward(y, x, n), attn_sigmoid_backward(dx, y, r, n); break;
        case 2: attn_relu_forward(y, x, n), attn_relu_backward(dx, x, r, n); break;
        default: attn_gelu_forward(y, x, n), attn_gelu_backward(dx, x, r, n); break;
        }
        act_ctx c = {k, n, to_d(x, n), NULL};
        double *rd = to_d(r, n), *yd = malloc(n * sizeof(double)), *yf = to_d(y, n);
        c.r = rd;
        for (int i = 0; i < n; i++) yd[i] = act_d(k, c.x[i]);
        char what[64];
        snprintf(what, sizeof what, "%s y", names[k]), tu_close_d(what, yf, yd, n, 2e-6, 1e-7);
        snprintf(what, sizeof what, "%s dx", names[k]), fd_check(what, c.x, n, dx, 1, act_objective, &c);
        CHECK(isfinite(y[0]) && isfinite(y[2]) && isfinite(dx[2]), "%s: not finite at the ends", names[k]);
        free(y), free(dx), free(c.x), free(rd), free(yd), free(yf);
    }
    free(x), free(r);
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

int main(void) {
    test_rnn();
    test_layernorm();
    test_embedding();
    test_softmax();
    test_cross_entropy();
    test_activations();
    test_dropout();
    test_torch_rnn(0);
    test_torch_rnn(1);
    test_torch_cross_entropy();
    return tu_summary("test_layers_fd");
}
