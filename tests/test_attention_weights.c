/* attn_weights beyond the PyTorch cases of test_attention_ref (which checks every case's
 * weights against PyTorch and bitwise against the forward's P on every instruction set):
 * bad arguments, a larger grouped-head problem with every mask at odd sizes (bitwise the
 * forward's P, on every instruction set, 1 and 2 threads alike), and the lse of a forward
 * without P that splits its keys (decoding shapes), where the weights agree to rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "testutil.h"

enum { B = 2, H = 4, HKV = 2, NQ = 77, NK = 131, D = 19 };

static void test_errors(void) {
    attn_desc a = {.B = 1, .H = 2, .Nq = 3, .Nk = 5, .dq = 4};
    float Q[2 * 3 * 4] = {0}, K[2 * 5 * 4] = {0}, lse[2 * 3] = {0}, P[2 * 3 * 5];
    int bad_head[1] = {2}, neg[1] = {-1}, ok[1] = {1};
    CHECK(attn_weights(&a, Q, K, lse, bad_head, 1, 0, 3, P) == ATTN_EINVAL && tu_err_has("head 2"),
          "head out of range: %s", attn_last_error());
    CHECK(attn_weights(&a, Q, K, lse, neg, 1, 0, 3, P) == ATTN_EINVAL && tu_err_has("outside"), "negative head");
    CHECK(attn_weights(&a, Q, K, NULL, ok, 1, 0, 3, P) == ATTN_EINVAL && tu_err_has("lse is NULL"), "NULL lse: %s",
          attn_last_error());
    CHECK(attn_weights(&a, Q, K, lse, ok, 1, 2, 2, P) == ATTN_EINVAL && tu_err_has("query rows"), "empty row range");
    CHECK(attn_weights(&a, Q, K, lse, ok, 1, 0, 4, P) == ATTN_EINVAL && tu_err_has("query rows"), "rows past Nq");
    CHECK(attn_weights(&a, Q, K, lse, NULL, 1, 0, 3, P) == ATTN_EINVAL && tu_err_has("all B * H = 2"),
          "heads NULL with nheads != B * H: %s", attn_last_error());
    CHECK(attn_weights(&a, Q, K, lse, ok, 0, 0, 3, P) == ATTN_EINVAL, "nheads 0");
    CHECK(attn_weights(&a, NULL, K, lse, ok, 1, 0, 3, P) == ATTN_EINVAL, "NULL Q");
    CHECK(attn_weights(&a, Q, K, lse, ok, 1, 0, 3, NULL) == ATTN_EINVAL, "NULL P");
    a.H = 3, a.Hkv = 2;
    CHECK(attn_weights(&a, Q, K, lse, ok, 1, 0, 3, P) == ATTN_ESHAPE, "a bad description is refused as by the forward");
}

/* Grouped heads, a window, key lengths, a broadcast bool mask and bias: attn_weights of heads
 * {5, 2} and rows [9, 70) against the forward's P, bitwise; then on 2 threads. */
static void test_masks(const char *isa) {
    size_t nq = (size_t)B * H * NQ * D, nk = (size_t)B * HKV * NK * D, np = (size_t)B * H * NQ * NK;
    float *Q = malloc(nq * sizeof(float)), *K = malloc(nk * sizeof(float)), *V = malloc(nk * sizeof(float));
    float *O = malloc((size_t)B * H * NQ * D * sizeof(float)), *P = malloc(np * sizeof(float));
    float *lse = malloc((size_t)B * H * NQ * sizeof(float)), *W = malloc(np * sizeof(float)), *W2 = malloc(np * sizeof(float));
    float *bias = malloc((size_t)NQ * NK * sizeof(float));
    uint8_t *bm = malloc((size_t)H * NK);
    tu_randn(Q, nq, 1), tu_randn(K, nk, 2), tu_randn(V, nk, 3), tu_randn(bias, (size_t)NQ * NK, 4);
    for (int i = 0; i < H * NK; i++) bm[i] = (uint8_t)(i % 7 != 3);
    int32_t kl[B] = {NK, 100};
    attn_desc a = {.B = B, .H = H, .Hkv = HKV, .Nq = NQ, .Nk = NK, .dq = D, .score = ATTN_SCORE_SCALED};
    a.mask.window = 40, a.mask.key_lengths = kl;
    a.mask.bool_mask = bm, a.mask.bool_strides[1] = NK, a.mask.bool_strides[3] = 1; /* (H, 1, Nk) */
    a.mask.bias = bias, a.mask.bias_strides[2] = NK, a.mask.bias_strides[3] = 1;    /* (Nq, Nk) */
    int heads[2] = {5, 2}, r0 = 9, r1 = 70, nr = r1 - r0;
    CHECK(attn_forward(&a, Q, K, V, O, P, lse) == ATTN_OK, "%s: forward: %s", isa, attn_last_error());
    attn_set_threads(1);
    CHECK(attn_weights(&a, Q, K, lse, heads, 2, r0, r1, W) == ATTN_OK, "%s: weights: %s", isa, attn_last_error());
    attn_set_threads(2);
    CHECK(attn_weights(&a, Q, K, lse, heads, 2, r0, r1, W2) == ATTN_OK, "%s: weights: %s", isa, attn_last_error());
    for (int t = 0; t < 2; t++)
        CHECK(memcmp(W + (size_t)t * nr * NK, P + ((size_t)heads[t] * NQ + r0) * NK, (size_t)nr * NK * sizeof(float)) == 0,
              "%s: head %d differs from the forward's P", isa, heads[t]);
    CHECK(memcmp(W, W2, (size_t)2 * nr * NK * sizeof(float)) == 0, "%s: 1 and 2 threads differ", isa);
    /* Every head on 2 threads (tasks run in parallel when the call is large enough). */
    CHECK(attn_weights(&a, Q, K, lse, NULL, B * H, 0, NQ, W) == ATTN_OK && memcmp(W, P, np * sizeof(float)) == 0,
          "%s: all heads on 2 threads differ from the forward's P", isa);
    attn_set_threads(0);
    free(Q), free(K), free(V), free(O), free(P), free(lse), free(W), free(W2), free(bias), free(bm);
}

/* One query row against 700 keys in 2 heads: the forward without P splits the keys and merges
 * the ranges, so its lse may differ from the P forward's in the last bit; the weights agree
 * to that and float rounding and still sum to 1. One ulp of an lse near 9 (these rows' value)
 * is 9.5e-7 and changes every weight exp(s - lse) by as much, relatively; 2e-6 allows it and
 * the weights' own rounding, and still catches a second bit. */
static void test_split_lse(const char *isa) {
    enum { N = 700, d = 8 };
    float Q[2 * d], *K = malloc((size_t)2 * N * d * sizeof(float)), *V = malloc((size_t)2 * N * d * sizeof(float));
    float O[2 * d], P[2 * N], lse[2], W[2 * N];
    tu_randn(Q, 2 * d, 5), tu_randn(K, (size_t)2 * N * d, 6), tu_randn(V, (size_t)2 * N * d, 7);
    attn_desc a = {.B = 1, .H = 2, .Nq = 1, .Nk = N, .dq = d};
    CHECK(attn_forward(&a, Q, K, V, O, P, lse) == ATTN_OK, "%s: forward with P", isa);
    CHECK(attn_forward(&a, Q, K, V, O, NULL, lse) == ATTN_OK, "%s: forward", isa);
    CHECK(attn_weights(&a, Q, K, lse, NULL, 2, 0, 1, W) == ATTN_OK, "%s: weights: %s", isa, attn_last_error());
    double sum = 0.0;
    for (int j = 0; j < N; j++) sum += W[j];
    CHECK(fabs(sum - 1.0) < 1e-5, "%s: weights sum to %.9f", isa, sum);
    tu_close(isa, W, P, 2 * N, 2e-6, 1e-9);
    free(K), free(V);
}

int main(void) {
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    test_errors();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (attn_set_isa(isas[i]) != ATTN_OK) continue;
        test_masks(isas[i]);
        test_split_lse(isas[i]);
    }
    attn_set_isa(start);
    return tu_summary("test_attention_weights");
}
