/* Ring attention (attn/dist.h) under mpirun (tests/mpirun.sh NP): every rank makes the whole
 * (small) problem from one seed, runs the single-process kernel (attn_forward / attn_backward,
 * itself checked against PyTorch in test_attention_ref) on all of it, then ring attention on its
 * own rows, and compares its rows of O, lse, dQ, dK, dV with the kernel's: within 1e-6 of the
 * array's largest magnitude. Both layouts (contiguous, zig-zag), with and without the causal
 * mask, scaled and cosine scores, grouped heads (H = 4, Hkv = 2), odd head sizes, on every ISA
 * path the CPU runs. Then the bad inputs (an unsupported mask, rows not a multiple of 2 for
 * zig-zag) are errors with messages. The ranks' failures are summed; rank 0 prints the total. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

enum { B = 2, H = 4, HKV = 2, DQ = 12, DV = 10 };

static int nfail;

/* got vs want: |got - want| <= 1e-6 * max|want| (+ a floor for an all-zero array). */
static void close_rel(const char *what, const float *got, const float *want, size_t n) {
    double big = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) big = fmax(big, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - (double)want[i]));
    if (!(worst <= 1e-6 * big + 1e-30)) {
        tu_msg("rank %d: %s: max |difference| %.3g, %.3g of the largest value %.3g", attn_dist_rank(), what, worst, worst / big, big);
        nfail++;
    }
}

/* Rows of x (B, heads, N, d) at this rank's global rows, into y (B, heads, nloc, d). */
static void take_rows(float *y, const float *x, int heads, int64_t N, int64_t nloc, int d, attn_ring_layout layout) {
    int P = attn_dist_size(), r = attn_dist_rank();
    for (int64_t bh = 0; bh < (int64_t)B * heads; bh++)
        for (int64_t i = 0; i < nloc; i++)
            memcpy(y + (bh * nloc + i) * d, x + (bh * N + attn_ring_row(N, P, r, layout, i)) * d, (size_t)d * sizeof(float));
}

static void one(int64_t N, attn_ring_layout layout, int causal, attn_score score, const char *isa) {
    int P = attn_dist_size();
    int64_t nloc = N / P;
    char what[160];
    snprintf(what, sizeof what, "N %lld, %s, %s%s, %s", (long long)N, layout ? "zig-zag" : "contiguous", causal ? "causal, " : "",
             attn_score_name(score), isa);
    size_t nq = (size_t)B * H * N * DQ, nk = (size_t)B * HKV * N * DQ, nv = (size_t)B * HKV * N * DV, no = (size_t)B * H * N * DV;
    size_t nr = (size_t)B * H * N;
    float *Q = malloc(nq * 4), *K = malloc(nk * 4), *V = malloc(nv * 4), *O = malloc(no * 4), *L = malloc(nr * 4), *dO = malloc(no * 4);
    float *dQ = malloc(nq * 4), *dK = malloc(nk * 4), *dV = malloc(nv * 4);
    size_t lq = nq / P, lk = nk / P, lv = nv / P, lo = no / P, lr = nr / P;
    float *q = malloc(lq * 4), *k = malloc(lk * 4), *v = malloc(lv * 4), *o = malloc(lo * 4), *l = malloc(lr * 4), *dout = malloc(lo * 4);
    float *dq = malloc(lq * 4), *dk = malloc(lk * 4), *dv = malloc(lv * 4), *want = calloc(lq > lo ? lq : lo, 4);
    CHECK(Q && K && V && O && L && dO && dQ && dK && dV && q && k && v && o && l && dout && dq && dk && dv && want, "out of memory");
    tu_randn(Q, nq, 1), tu_randn(K, nk, 2), tu_randn(V, nv, 3), tu_randn(dO, no, 4);
    attn_desc a = {0};
    a.B = B, a.H = H, a.Hkv = HKV, a.Nq = a.Nk = (int)N, a.dq = DQ, a.dv = DV, a.score = score, a.mask.causal = causal;
    CHECK(attn_forward(&a, Q, K, V, O, NULL, L) == ATTN_OK, "%s: forward: %s", what, attn_last_error());
    CHECK(attn_backward(&a, Q, K, V, O, L, dO, dQ, dK, dV, NULL) == ATTN_OK, "%s: backward: %s", what, attn_last_error());
    take_rows(q, Q, H, N, nloc, DQ, layout), take_rows(k, K, HKV, N, nloc, DQ, layout), take_rows(v, V, HKV, N, nloc, DV, layout);
    take_rows(dout, dO, H, N, nloc, DV, layout);
    attn_desc la = a;
    la.Nq = la.Nk = (int)nloc;
    if (attn_ring_forward(&la, layout, q, k, v, o, l) || attn_ring_backward(&la, layout, q, k, v, o, l, dout, dq, dk, dv)) {
        tu_msg("rank %d: %s: %s", attn_dist_rank(), what, attn_last_error());
        nfail++;
        goto done;
    }
    char name[200];
    take_rows(want, O, H, N, nloc, DV, layout), snprintf(name, sizeof name, "%s: O", what), close_rel(name, o, want, lo);
    take_rows(want, L, H, N, nloc, 1, layout), snprintf(name, sizeof name, "%s: lse", what), close_rel(name, l, want, lr);
    take_rows(want, dQ, H, N, nloc, DQ, layout), snprintf(name, sizeof name, "%s: dQ", what), close_rel(name, dq, want, lq);
    take_rows(want, dK, HKV, N, nloc, DQ, layout), snprintf(name, sizeof name, "%s: dK", what), close_rel(name, dk, want, lk);
    take_rows(want, dV, HKV, N, nloc, DV, layout), snprintf(name, sizeof name, "%s: dV", what), close_rel(name, dv, want, lv);
done:
    free(Q), free(K), free(V), free(O), free(L), free(dO), free(dQ), free(dK), free(dV);
    free(q), free(k), free(v), free(o), free(l), free(dout), free(dq), free(dk), free(dv), free(want);
}

static void bad_inputs(void) {
    float x[64] = {0};
    attn_desc a = {0};
    a.B = 1, a.H = 1, a.Nq = a.Nk = 3, a.dq = 2, a.mask.window = 2;
    CHECK(attn_ring_forward(&a, ATTN_RING_CONTIGUOUS, x, x, x, x, NULL) == ATTN_EINVAL && tu_err_has("only the causal mask"),
          "a window is refused: %s", attn_last_error());
    a.mask.window = 0;
    attn_mods m = {.softcap = 5.0f};
    a.mods = &m;
    CHECK(attn_ring_forward(&a, ATTN_RING_CONTIGUOUS, x, x, x, x, NULL) == ATTN_EINVAL && tu_err_has("attn_mods"),
          "attn_mods are refused: %s", attn_last_error());
    a.mods = NULL;
    CHECK(attn_ring_forward(&a, ATTN_RING_ZIGZAG, x, x, x, x, NULL) == ATTN_ESHAPE && tu_err_has("even number"),
          "zig-zag with 3 rows per rank is refused: %s", attn_last_error());
    a.Nk = 2;
    CHECK(attn_ring_forward(&a, ATTN_RING_CONTIGUOUS, x, x, x, x, NULL) == ATTN_ESHAPE, "Nq != Nk is refused");
    CHECK(attn_ring_backward(&a, ATTN_RING_CONTIGUOUS, x, x, x, x, NULL, x, x, x, x) != ATTN_OK, "backward without lse is refused");
    CHECK(attn_ring_row(10, 4, 0, ATTN_RING_CONTIGUOUS, 0) == -1 && attn_ring_row(16, 4, 1, ATTN_RING_ZIGZAG, 3) == 13,
          "attn_ring_row");
}

int main(int argc, char **argv) {
    if (attn_dist_init(&argc, &argv)) {
        fprintf(stderr, "%s\n", attn_last_error());
        return 1;
    }
    int P = attn_dist_size();
    const char *isas[3] = {"ref", "avx2", "avx512"};
    for (int s = 0; s < 3; s++) {
        if (attn_set_isa(isas[s]) != ATTN_OK) continue; /* this CPU cannot run it */
        for (int layout = 0; layout < 2; layout++)
            for (int causal = 0; causal < 2; causal++) {
                one((int64_t)P * 2 * 5, (attn_ring_layout)layout, causal, ATTN_SCORE_SCALED, isas[s]);
                if (s == 0) one((int64_t)P * 2 * 3, (attn_ring_layout)layout, causal, ATTN_SCORE_COSINE, isas[s]);
            }
    }
    bad_inputs();
    double f = nfail + tu_failures;
    int st = attn_dist_sum_f64(&f, 1);
    if (attn_dist_rank() == 0) printf("mpi_ring on %d ranks: %s (%g failures)\n", P, st || f ? "FAILED" : "passed", f);
    attn_dist_finalize();
    return st || f ? 1 : 0;
}
