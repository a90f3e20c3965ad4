/* ONNX's own operator node tests for the layers of attn/layers.h: GRU, LSTM,
 * LayerNormalization, Softmax, LogSoftmax and SoftmaxCrossEntropyLoss, with the inputs and
 * expected outputs ONNX ships (Debian's libonnx-testdata), converted to .npy by
 * tools/convert_onnx_tests.py into tests/data/onnx/<test>/ (list: index.txt; what was skipped
 * and why: README.md). Each test's outputs must match ONNX's within rtol 1e-5, atol 1e-6
 * (ONNX's own runner allows rtol 1e-3, atol 1e-7). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/io.h"
#include "attn/layers.h"
#include "testutil.h"

#define DIR "data/onnx/"
#define RTOL 1e-5
#define ATOL 1e-6

typedef struct {
    char key[64], val[64];
} kv;

static kv g_attrs[32];
static int g_nattrs;
static char g_test[256];

static int read_attrs(const char *name) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s/attrs.txt", name);
    FILE *f = fopen(path, "r");
    g_nattrs = 0;
    if (!f) return 0;
    while (g_nattrs < 32 && fscanf(f, "%63s %63s", g_attrs[g_nattrs].key, g_attrs[g_nattrs].val) == 2) g_nattrs++;
    fclose(f);
    return 1;
}

static const char *attr(const char *key) {
    for (int i = 0; i < g_nattrs; i++)
        if (!strcmp(g_attrs[i].key, key)) return g_attrs[i].val;
    return NULL;
}

static int attr_int(const char *key, int dflt) {
    const char *v = attr(key);
    return v ? atoi(v) : dflt;
}

/* Loads <test>/<file>.npy as float32 (or int32 when want_i32); returns NULL if absent.
 * Checks the element count when n > 0. The caller frees with attn_free / free_arr. */
static void *load(const char *file, int want_i32, size_t n) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s/%s.npy", g_test, file);
    FILE *probe = fopen(path, "rb");
    if (!probe) return NULL;
    fclose(probe);
    attn_array a;
    int st = want_i32 ? attn_npy_load(path, &a) : attn_npy_load_f32(path, &a);
    CHECK(st == ATTN_OK, "%s: %s", path, attn_last_error());
    if (st) return NULL;
    CHECK(!want_i32 || a.dtype == ATTN_I32, "%s: not int32", path);
    CHECK(n == 0 || (size_t)attn_array_numel(&a) == n, "%s: %lld elements, expected %zu", path,
          (long long)attn_array_numel(&a), n);
    if ((want_i32 && a.dtype != ATTN_I32) || (n && (size_t)attn_array_numel(&a) != n)) {
        attn_array_free(&a);
        return NULL;
    }
    void *d = a.data; // owned by attn_malloc: released with attn_free
    return d;
}

static int compare(const char *what, const float *got, const float *want, size_t n) {
    char label[400];
    snprintf(label, sizeof label, "%s %s", g_test, what);
    return tu_close(label, got, want, n, RTOL, ATOL);
}

static int run_rnn(int lstm) {
    const int H = attr_int("hidden_size", 0), I = attr_int("input_size", 0);
    const int T = attr_int("T", 0), B = attr_int("B", 0);
    const char *direction = attr("direction");
    const size_t G = lstm ? 4 : 3, nBH = (size_t)B * H;
    int ok = 1;
    float *x = load("x", 0, (size_t)T * B * I);
    int32_t *lengths = load("lengths", 1, (size_t)B);
    for (int d = 0; d < 2; d++) {
        if (d == 0 && !strcmp(direction, "reverse")) continue;
        if (d == 1 && !strcmp(direction, "forward")) continue;
        const int rev = d == 1;
        const char *sfx = rev ? "_reverse" : "";
        char nm[64];
#define LOADD(var, base, i32, n) (snprintf(nm, sizeof nm, "%s%s", base, sfx), var = load(nm, i32, n))
        float *wih, *whh, *bih, *bhh, *h0, *c0, *P, *y, *hn, *cn;
        LOADD(wih, "weight_ih", 0, G * H * I);
        LOADD(whh, "weight_hh", 0, G * H * H);
        LOADD(bih, "bias_ih", 0, G * H);
        LOADD(bhh, "bias_hh", 0, G * H);
        LOADD(h0, "h0", 0, nBH);
        LOADD(c0, "c0", 0, nBH);
        LOADD(P, "peephole", 0, (size_t)3 * H);
        LOADD(y, "y", 0, (size_t)T * nBH);
        LOADD(hn, "h_n", 0, nBH);
        LOADD(cn, "c_n", 0, nBH);
#undef LOADD
        CHECK(x && wih && whh && (y || hn || cn), "%s: missing arrays", g_test);
        float *gy = calloc((size_t)T * nBH, sizeof(float));
        float *ghn = calloc(nBH, sizeof(float)), *gcn = calloc(nBH, sizeof(float));
        if (x && wih && whh) {
            int st;
            if (lstm) {
                attn_lstm m = {I, H, wih, whh, bih, bhh, P};
                float *cache = malloc(attn_lstm_cache_size(&m, T, B) * sizeof(float));
                st = attn_lstm_forward(&m, T, B, rev, lengths, x, h0, c0, gy, ghn, gcn, cache);
                free(cache);
            } else {
                attn_gru m = {I, H, attr_int("linear_before_reset", 0), wih, whh, bih, bhh};
                float *cache = malloc(attn_gru_cache_size(&m, T, B) * sizeof(float));
                st = attn_gru_forward(&m, T, B, rev, lengths, x, h0, gy, ghn, cache);
                free(cache);
            }
            CHECK(st == ATTN_OK, "%s: %s", g_test, attn_last_error());
            char what[64];
            if (y) snprintf(what, sizeof what, "Y%s", sfx), ok &= compare(what, gy, y, (size_t)T * nBH);
            if (hn) snprintf(what, sizeof what, "Y_h%s", sfx), ok &= compare(what, ghn, hn, nBH);
            if (cn) snprintf(what, sizeof what, "Y_c%s", sfx), ok &= compare(what, gcn, cn, nBH);
        } else {
            ok = 0;
        }
        free(gy), free(ghn), free(gcn);
        attn_free(wih), attn_free(whh), attn_free(bih), attn_free(bhh), attn_free(h0);
        attn_free(c0), attn_free(P), attn_free(y), attn_free(hn), attn_free(cn);
    }
    attn_free(x), attn_free(lengths);
    return ok;
}

static int run_layernorm(void) {
    const int N = attr_int("N", 0), C = attr_int("C", 0);
    const float eps = strtof(attr("epsilon"), NULL);
    const size_t n = (size_t)N * C;
    float *x = load("x", 0, n), *w = load("weight", 0, (size_t)C), *b = load("bias", 0, (size_t)C);
    float *y = load("y", 0, n), *mean = load("mean", 0, (size_t)N), *rstd = load("rstd", 0, (size_t)N);
    int ok = 0;
    CHECK(x && w && y, "%s: missing arrays", g_test);
    if (x && w && y) {
        float *gy = malloc(n * sizeof(float)), *gm = malloc((size_t)N * sizeof(float)), *gr = malloc((size_t)N * sizeof(float));
        int st = attn_layernorm_forward(gy, gm, gr, x, w, b, N, C, eps);
        CHECK(st == ATTN_OK, "%s: %s", g_test, attn_last_error());
        ok = compare("Y", gy, y, n);
        if (mean) ok &= compare("Mean", gm, mean, (size_t)N);
        if (rstd) ok &= compare("InvStdDev", gr, rstd, (size_t)N);
        free(gy), free(gm), free(gr);
    }
    attn_free(x), attn_free(w), attn_free(b), attn_free(y), attn_free(mean), attn_free(rstd);
    return ok;
}

static int run_softmax(int logsm) {
    const int N = attr_int("N", 0), C = attr_int("C", 0);
    const size_t n = (size_t)N * C;
    float *x = load("x", 0, n), *y = load("y", 0, n);
    int ok = 0;
    CHECK(x && y, "%s: missing arrays", g_test);
    if (x && y) {
        float *gy = malloc(n * sizeof(float));
        int st = logsm ? attn_log_softmax_forward(gy, x, N, C) : attn_softmax_forward(gy, x, N, C);
        CHECK(st == ATTN_OK, "%s: %s", g_test, attn_last_error());
        ok = compare("y", gy, y, n);
        free(gy);
    }
    attn_free(x), attn_free(y);
    return ok;
}

static int run_cross_entropy(void) {
    const int N = attr_int("N", 0), C = attr_int("C", 0);
    const char *red = attr("reduction");
    const attn_reduction r = !strcmp(red, "none") ? ATTN_REDUCE_NONE
                             : !strcmp(red, "sum") ? ATTN_REDUCE_SUM : ATTN_REDUCE_MEAN;
    const int ii = attr("ignore_index") ? attr_int("ignore_index", 0) : INT_MIN; // none
    const size_t nl = r == ATTN_REDUCE_NONE ? (size_t)N : 1;
    float *x = load("logits", 0, (size_t)N * C), *w = load("weight", 0, (size_t)C);
    int32_t *t = load("targets", 1, (size_t)N);
    float *loss = load("loss", 0, nl), *lp = load("log_prob", 0, (size_t)N * C);
    int ok = 0;
    CHECK(x && t && loss, "%s: missing arrays", g_test);
    if (x && t && loss) {
        float *gl = malloc(nl * sizeof(float)), *lse = malloc((size_t)N * sizeof(float));
        float *glp = malloc((size_t)N * C * sizeof(float));
        int st = attn_cross_entropy_forward(gl, lse, x, t, w, N, C, ii, 0.0f, r);
        CHECK(st == ATTN_OK, "%s: %s", g_test, attn_last_error());
        ok = compare("loss", gl, loss, nl);
        for (int i = 0; i < N * C; i++) glp[i] = x[i] - lse[i / C]; // log_prob = logits - lse
        if (lp) ok &= compare("log_prob", glp, lp, (size_t)N * C);
        free(gl), free(lse), free(glp);
    }
    attn_free(x), attn_free(w), attn_free(t), attn_free(loss), attn_free(lp);
    return ok;
}

int main(void) {
    FILE *idx = fopen(DIR "index.txt", "r");
    CHECK(idx != NULL, "cannot open " DIR "index.txt (run from tests/)");
    if (!idx) return tu_summary("test_onnx_nodes");
    int run = 0, passed = 0;
    while (fscanf(idx, "%255s", g_test) == 1) {
        int ok = 0;
        if (!read_attrs(g_test)) {
            CHECK(0, "%s: no attrs.txt", g_test);
            continue;
        }
        const char *op = attr("op");
        if (!op) {
            CHECK(0, "%s: no op", g_test);
            continue;
        }
        if (!strcmp(op, "gru")) ok = run_rnn(0);
        else if (!strcmp(op, "lstm")) ok = run_rnn(1);
        else if (!strcmp(op, "layernorm")) ok = run_layernorm();
        else if (!strcmp(op, "softmax")) ok = run_softmax(0);
        else if (!strcmp(op, "log_softmax")) ok = run_softmax(1);
        else if (!strcmp(op, "cross_entropy")) ok = run_cross_entropy();
        else CHECK(0, "%s: unknown op %s", g_test, op);
        run++;
        passed += ok;
        if (!ok) fprintf(stderr, "ONNX node test %s FAILED\n", g_test);
    }
    fclose(idx);
    CHECK(run >= 70, "only %d ONNX node tests ran", run);
    printf("ONNX node tests: %d of %d match\n", passed, run);
    return tu_summary("test_onnx_nodes");
}
