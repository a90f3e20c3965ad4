/* The translation memory (attn/knnmt.h) on small stores made on the fly:
 *  - exact search: the k nearest by squared L2 distance, against a brute-force search in
 *    double written here (sizes below, at and above a search block, k above the count);
 *  - the mixture log(lambda softmax(-d/T)-votes + (1 - lambda) p_model) against the same
 *    computed independently in double; lambda = 0 leaves the log-probabilities bit for bit;
 *  - the result does not depend on the thread count;
 *  - the file: round trip, same bytes for the same entries, and every truncation, single-byte
 *    corruption, bad magic or version, a value outside the vocabulary refused cleanly;
 *  - settings out of range refused;
 *  - the approximate index (attn_knn_index): probing every list gives the exact result, fewer
 *    lists give true distances of real entries, no nearer than the exact ones, and most of
 *    the exact neighbours; appending drops the index. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/knnmt.h"
#include "testutil.h"

enum { D = 5, V = 11 };

static attn_knn_store *make(int64_t n, uint64_t seed, float **keys_out, int32_t **vals_out) {
    attn_knn_store *s = NULL;
    CHECK(attn_knn_new(D, V, 0x1234, &s) == ATTN_OK, "new: %s", attn_last_error());
    float *k = malloc((size_t)n * D * sizeof(float));
    int32_t *v = malloc((size_t)n * sizeof(int32_t));
    tu_randn(k, (size_t)n * D, seed);
    for (int64_t i = 0; i < n; i++) v[i] = (int32_t)((i * 7 + seed) % V);
    /* a few exact duplicates, to exercise ties */
    if (n > 10) memcpy(k + 9 * D, k + 3 * D, D * sizeof(float));
    CHECK(attn_knn_append(s, n, k, v) == ATTN_OK, "append: %s", attn_last_error());
    *keys_out = k, *vals_out = v;
    return s;
}

static double d2(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < D; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

/* Brute force: the k smallest distances in double (ties: lower index). */
static void brute(const float *keys, int64_t n, const float *q, int k, int64_t *idx, double *dist) {
    for (int t = 0; t < k; t++) idx[t] = -1, dist[t] = INFINITY;
    for (int64_t j = 0; j < n; j++) {
        double d = d2(q, keys + j * D);
        int t = k;
        while (t > 0 && d < dist[t - 1]) t--;
        if (t == k) continue;
        for (int u = k - 1; u > t; u--) idx[u] = idx[u - 1], dist[u] = dist[u - 1];
        idx[t] = j, dist[t] = d;
    }
}

static void test_search(int64_t n, int k) {
    float *keys;
    int32_t *vals;
    attn_knn_store *s = make(n, (uint64_t)n, &keys, &vals);
    enum { NQ = 7 };
    float q[NQ * D];
    tu_randn(q, NQ * D, 99);
    if (n > 10) memcpy(q, keys + 3 * D, D * sizeof(float)); /* a query equal to a key (and its duplicate) */
    int32_t idx[NQ * 64];
    float dist[NQ * 64];
    CHECK(attn_knn_search(s, NQ, q, k, idx, dist) == ATTN_OK, "search: %s", attn_last_error());
    for (int i = 0; i < NQ; i++) {
        int64_t bi[64];
        double bd[64];
        brute(keys, n, q + i * D, k, bi, bd);
        for (int t = 0; t < k; t++) {
            if (bi[t] < 0) {
                CHECK(idx[i * k + t] == -1 && isinf(dist[i * k + t]), "n %lld k %d: slot %d should be empty", (long long)n, k, t);
                continue;
            }
            /* the same distance (float rounding), and the same entry unless two are that close */
            CHECK(fabs(dist[i * k + t] - bd[t]) < 1e-4 * (1 + bd[t]), "n %lld k %d q %d: distance %d is %g, want %g", (long long)n, k, i,
                  t, dist[i * k + t], bd[t]);
            int same = idx[i * k + t] == bi[t] || fabs(d2(q + i * D, keys + (int64_t)idx[i * k + t] * D) - bd[t]) < 1e-4 * (1 + bd[t]);
            CHECK(same, "n %lld k %d q %d: neighbour %d is %d, want %lld", (long long)n, k, i, t, idx[i * k + t], (long long)bi[t]);
        }
    }
    if (n > 10) CHECK(idx[0] == 3 && idx[1] == 9, "a key's own query: nearest %d, %d (want 3 then its duplicate 9)", idx[0], idx[1]);
    /* the thread count does not change anything */
    int32_t idx1[NQ * 64];
    float dist1[NQ * 64];
    int th = attn_get_threads();
    attn_set_threads(1);
    CHECK(attn_knn_search(s, NQ, q, k, idx1, dist1) == ATTN_OK, "search");
    attn_set_threads(3);
    int32_t idx3[NQ * 64];
    float dist3[NQ * 64];
    CHECK(attn_knn_search(s, NQ, q, k, idx3, dist3) == ATTN_OK, "search");
    attn_set_threads(th);
    CHECK(!memcmp(idx1, idx3, sizeof(int32_t) * NQ * k) && !memcmp(dist1, dist3, sizeof(float) * NQ * k),
          "search depends on the thread count (n %lld)", (long long)n);
    attn_knn_free(s);
    free(keys), free(vals);
}

static void test_mix(void) {
    const int64_t n = 300;
    float *keys;
    int32_t *vals;
    attn_knn_store *s = make(n, 5, &keys, &vals);
    enum { R = 4 };
    float q[R * D], lp[R * V], lp0[R * V];
    tu_randn(q, R * D, 7);
    tu_randn(lp, R * V, 8);
    for (int r = 0; r < R; r++) { /* log-softmax rows */
        double z = 0;
        for (int v = 0; v < V; v++) z += exp(lp[r * V + v]);
        for (int v = 0; v < V; v++) lp[r * V + v] -= (float)log(z);
    }
    memcpy(lp0, lp, sizeof lp);
    int rows[2] = {3, 1}; /* rows 0 and 2 must stay as they are */
    attn_knn_params p = {6, 2.5f, 0.35f};
    CHECK(attn_knn_mix(s, &p, 2, rows, q, lp) == ATTN_OK, "mix: %s", attn_last_error());
    for (int r = 0; r < R; r++) {
        int on = r == 3 || r == 1;
        if (!on) {
            CHECK(!memcmp(lp + r * V, lp0 + r * V, V * sizeof(float)), "row %d changed", r);
            continue;
        }
        int64_t bi[6];
        double bd[6], w[6], z = 0, want[V], got[V], mass = 0;
        brute(keys, n, q + r * D, p.k, bi, bd);
        for (int t = 0; t < p.k; t++) z += w[t] = exp(-bd[t] / p.temperature);
        double pm[V] = {0};
        for (int t = 0; t < p.k; t++) pm[vals[bi[t]]] += w[t] / z;
        for (int v = 0; v < V; v++) {
            want[v] = log(p.lambda * pm[v] + (1 - p.lambda) * exp((double)lp0[r * V + v]));
            got[v] = lp[r * V + v];
            mass += exp(got[v]);
        }
        char what[32];
        snprintf(what, sizeof what, "mix row %d", r);
        tu_close_d(what, got, want, V, 1e-5, 1e-5);
        CHECK(fabs(mass - 1) < 1e-5, "row %d: the mixture sums to %g", r, mass);
    }
    /* lambda = 0: the model's own, bit for bit */
    memcpy(lp, lp0, sizeof lp);
    attn_knn_params z0 = {6, 2.5f, 0.0f};
    int all[R] = {0, 1, 2, 3};
    CHECK(attn_knn_mix(s, &z0, R, all, q, lp) == ATTN_OK && !memcmp(lp, lp0, sizeof lp), "lambda 0 changed the log-probabilities");
    /* settings out of range */
    attn_knn_params bad[4] = {{0, 1, 0.1f}, {ATTN_KNN_MAX_K + 1, 1, 0.1f}, {4, 0, 0.1f}, {4, 1, 1.0f}};
    for (int i = 0; i < 4; i++) CHECK(attn_knn_mix(s, &bad[i], R, all, q, lp) == ATTN_EINVAL, "bad setting %d accepted", i);
    int32_t bv = V;
    CHECK(attn_knn_append(s, 1, q, &bv) == ATTN_EINVAL, "a value outside the vocabulary was appended");
    attn_knn_free(s);
    free(keys), free(vals);
}

static int load_check(const char *path) {
    attn_knn_store *s = NULL;
    int st = attn_knn_load(path, &s);
    if (st == ATTN_OK) {
        CHECK(attn_knn_count(s) >= 0 && attn_knn_dim(s) > 0, "a loaded store is inconsistent");
        attn_knn_free(s);
    } else {
        CHECK(st == ATTN_EFORMAT || st == ATTN_EIO, "load returned %d", st);
        CHECK(attn_last_error()[0] != 0, "no message");
    }
    return st;
}

static void test_file(void) {
    CHECK(tu_scratch_new("test_knnmt"), "scratch");
    float *keys;
    int32_t *vals;
    attn_knn_store *s = make(40, 3, &keys, &vals);
    attn_knn_params p = {16, 0.75f, 0.4f};
    CHECK(attn_knn_set_params(s, &p, 1) == ATTN_OK, "set params");
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s", tu_path("a.knn"));
    snprintf(b, sizeof b, "%s", tu_path("b.knn"));
    CHECK(attn_knn_save(s, a) == ATTN_OK, "save: %s", attn_last_error());
    /* the same entries give the same bytes */
    attn_knn_store *s2 = NULL;
    CHECK(attn_knn_new(D, V, 0x1234, &s2) == ATTN_OK, "new");
    CHECK(attn_knn_append(s2, 25, keys, vals) == ATTN_OK && attn_knn_append(s2, 15, keys + 25 * D, vals + 25) == ATTN_OK, "append");
    CHECK(attn_knn_set_params(s2, &p, 1) == ATTN_OK && attn_knn_save(s2, b) == ATTN_OK, "save");
    size_t na, nb;
    unsigned char *fa = tu_read_file(a, &na), *fb = tu_read_file(b, &nb);
    CHECK(fa && fb && na == nb && !memcmp(fa, fb, na), "the same store gave different bytes");
    CHECK(na == 64 + 4 * 40 * (D + 1), "file of %zu bytes", na);
    CHECK(tu_count_tmp_files() == 0, "temporary files left");
    /* round trip */
    attn_knn_store *r = NULL;
    CHECK(attn_knn_load(a, &r) == ATTN_OK, "load: %s", attn_last_error());
    int tuned = 0;
    attn_knn_params rp = attn_knn_get_params(r, &tuned);
    CHECK(attn_knn_count(r) == 40 && attn_knn_dim(r) == D && attn_knn_vocab(r) == V && attn_knn_model_id(r) == 0x1234, "header");
    CHECK(tuned && rp.k == 16 && rp.temperature == 0.75f && rp.lambda == 0.4f, "settings");
    float q[D];
    tu_randn(q, D, 4);
    int32_t i1[8], i2[8];
    float d1[8], d2_[8];
    CHECK(attn_knn_search(s, 1, q, 8, i1, d1) == ATTN_OK && attn_knn_search(r, 1, q, 8, i2, d2_) == ATTN_OK, "search");
    CHECK(!memcmp(i1, i2, sizeof i1) && !memcmp(d1, d2_, sizeof d1), "the loaded store searches differently");
    attn_knn_free(r);
    /* damage */
    unsigned char *bad = malloc(na);
    memcpy(bad, fa, na), bad[0] = 'X';
    tu_write_file(b, bad, na);
    CHECK(load_check(b) == ATTN_EFORMAT && tu_err_has("magic"), "bad magic: %s", attn_last_error());
    memcpy(bad, fa, na), bad[8] = 2;
    tu_write_file(b, bad, na);
    CHECK(load_check(b) == ATTN_EFORMAT && tu_err_has("version"), "bad version: %s", attn_last_error());
    tu_write_file(b, fa, na - 4);
    CHECK(load_check(b) == ATTN_EFORMAT && tu_err_has("truncated"), "truncated: %s", attn_last_error());
    memcpy(bad, fa, na), bad[100] ^= 0x40;
    tu_write_file(b, bad, na);
    CHECK(load_check(b) == ATTN_EFORMAT && tu_err_has("checksum"), "corrupt payload: %s", attn_last_error());
    tu_fuzz_file(a, load_check, "knn");
    free(bad), free(fa), free(fb);
    attn_knn_free(s), attn_knn_free(s2);
    free(keys), free(vals);
    tu_scratch_remove();
}

static size_t g_limit;
static void *capped_malloc(size_t n, void *user) { return (void)user, n > g_limit ? NULL : malloc(n); }
static void capped_free(void *ptr, void *user) { (void)user, free(ptr); }

/* A header cannot make the loader allocate more than its file holds (found by fuzz_knn): an
 * empty store of dimension 2^20 (a 64-byte file) loads under an allocator that refuses any
 * block over 64 MiB (it asked for 1024 entries, 4 GiB, before). */
static void test_small_file_small_memory(void) {
    CHECK(tu_scratch_new("test_knnmt"), "scratch");
    attn_knn_store *s = NULL, *r = NULL;
    CHECK(attn_knn_new(1 << 20, V, 7, &s) == ATTN_OK && attn_knn_save(s, tu_path("wide.knn")) == ATTN_OK, "save: %s", attn_last_error());
    g_limit = (size_t)64 << 20;
    attn_set_allocator(capped_malloc, capped_free, NULL);
    int st = attn_knn_load(tu_path("wide.knn"), &r);
    attn_set_allocator(NULL, NULL, NULL);
    CHECK(st == ATTN_OK && attn_knn_count(r) == 0 && attn_knn_dim(r) == 1 << 20, "wide empty store: %d %s", st, attn_last_error());
    attn_knn_free(r), attn_knn_free(s);
    tu_scratch_remove();
}

static void test_index(void) {
    const int64_t n = 3000;
    const int k = 8, NQ = 20;
    float *keys;
    int32_t *vals;
    attn_knn_store *s = make(n, 11, &keys, &vals);
    float q[NQ * D];
    tu_randn(q, NQ * D, 12);
    int32_t ie[NQ * 8], ia[NQ * 8];
    float de[NQ * 8], da[NQ * 8];
    CHECK(attn_knn_search(s, NQ, q, k, ie, de) == ATTN_OK, "exact search");
    CHECK(attn_knn_index(s, 0, 1) == ATTN_OK, "no index");
    CHECK(attn_knn_index(s, 5000, 1) == ATTN_EINVAL && attn_knn_index(s, 16, 0) == ATTN_EINVAL, "bad index sizes accepted");
    /* every list probed: the exact path */
    CHECK(attn_knn_index(s, 16, 16) == ATTN_OK, "index: %s", attn_last_error());
    CHECK(attn_knn_search(s, NQ, q, k, ia, da) == ATTN_OK && !memcmp(ia, ie, sizeof ia) && !memcmp(da, de, sizeof da),
          "probing every list differs from the exact search");
    /* 4 of 16 lists */
    CHECK(attn_knn_index(s, 16, 4) == ATTN_OK, "index: %s", attn_last_error());
    CHECK(attn_knn_search(s, NQ, q, k, ia, da) == ATTN_OK, "index search: %s", attn_last_error());
    int found = 0;
    for (int i = 0; i < NQ; i++)
        for (int t = 0; t < k; t++) {
            int32_t j = ia[i * k + t];
            CHECK(j >= 0 && j < n, "index search: entry %d", j);
            if (j < 0 || j >= n) continue;
            CHECK(fabs(da[i * k + t] - d2(q + i * D, keys + (int64_t)j * D)) < 1e-4 * (1 + da[i * k + t]), "index search: wrong distance");
            CHECK(da[i * k + t] >= de[i * k + t] - 1e-5f * (1 + de[i * k + t]), "index search: nearer than the exact search");
            CHECK(t == 0 || da[i * k + t] >= da[i * k + t - 1], "index search: not sorted");
            for (int u = 0; u < k; u++) found += ie[i * k + u] == j;
        }
    CHECK(found >= NQ * k / 2, "index search found %d of the %d exact neighbours with 4 of 16 lists", found, NQ * k);
    /* the same with one thread or three */
    int32_t i1[NQ * 8], i3[NQ * 8];
    int th = attn_get_threads();
    attn_set_threads(1);
    CHECK(attn_knn_index(s, 16, 4) == ATTN_OK && attn_knn_search(s, NQ, q, k, i1, NULL) == ATTN_OK, "index, 1 thread");
    attn_set_threads(3);
    CHECK(attn_knn_index(s, 16, 4) == ATTN_OK && attn_knn_search(s, NQ, q, k, i3, NULL) == ATTN_OK, "index, 3 threads");
    attn_set_threads(th);
    CHECK(!memcmp(i1, i3, sizeof i1) && !memcmp(i1, ia, sizeof i1), "the index depends on the thread count");
    /* appending drops the index: exact again */
    CHECK(attn_knn_append(s, 1, keys, vals) == ATTN_OK && attn_knn_search(s, NQ, q, k, ia, da) == ATTN_OK, "append");
    CHECK(!memcmp(da, de, sizeof da), "after an append the search is not exact");
    attn_knn_free(s);
    free(keys), free(vals);
}

int main(void) {
    test_search(1, 3);    /* k above the count */
    test_search(37, 5);
    test_search(2048, 8); /* one search block exactly */
    test_search(2049, 8); /* one above */
    test_search(5000, 32);
    test_mix();
    test_file();
    test_small_file_small_memory();
    test_index();
    return tu_summary("test_knnmt");
}
