/* Non-finite inputs propagate through attention as they do in PyTorch and numpy, on every
 * instruction-set path this CPU runs, on the row path (few queries), the tile path (many) and
 * the key-split path (few heads against many keys), fused and in three steps:
 *  - a NaN in a key makes every row that sees that key NaN (a row that does not see it, under
 *    a causal mask, keeps its finite value);
 *  - a NaN in a query makes that row NaN, and only that row;
 *  - a NaN in a value makes every row that sees that key NaN (a row that does not see it may
 *    be NaN too: the tiled kernels multiply whole blocks of weights by values, 0 x NaN is NaN,
 *    as in PyTorch's P @ V);
 *  - an infinite key component gives a +inf score for queries with a positive component
 *    (softmax of +inf: NaN) and a -inf score (weight 0) for negative ones.
 * The expectation is computed here in double precision by the textbook formula,
 * o_i = sum_j exp(s_ij - max_j s_ij) v_j / sum_j exp(s_ij - max_j s_ij), with IEEE rules (a max
 * that keeps NaN, as numpy's), independently of the library; finite values must agree to
 * 1e-4 and NaN must appear exactly where the formula gives NaN. A row that sees no key gives
 * zeros (the library's documented choice; PyTorch gives NaN), tested in test_attention_props.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "attn/core.h"
#include "testutil.h"

/* The expected output of one head: Q (Nq, d), K (Nk, d), V (Nk, d) -> O (Nq, d). */
static void expect(const float *Q, const float *K, const float *V, int Nq, int Nk, int d, int causal, double *O) {
    double *s = malloc((size_t)Nk * sizeof *s);
    for (int i = 0; i < Nq; i++) {
        int n = causal && i + 1 < Nk ? i + 1 : Nk;
        double m = -INFINITY, sum = 0.0;
        for (int j = 0; j < n; j++) {
            double a = 0.0;
            for (int c = 0; c < d; c++) a += (double)Q[i * d + c] * K[j * d + c];
            s[j] = a / sqrt((double)d);
            if (isnan(s[j]) || s[j] > m) m = isnan(m) ? m : s[j]; /* a NaN stays */
        }
        for (int j = 0; j < n; j++) sum += s[j] = exp(s[j] - m);
        for (int c = 0; c < d; c++) {
            double o = 0.0;
            for (int j = 0; j < n; j++) o += s[j] * V[j * d + c];
            O[i * d + c] = o / sum;
        }
    }
    free(s);
}

/* Runs one case on the current ISA; 1 if the output matches the formula's NaN pattern and
 * finite values. */
static int run_case(const char *what, const float *Q, const float *K, const float *V, int Nq, int Nk, int d, int causal,
                    int three_steps, int nan_ok) {
    attn_desc a = {.B = 1, .H = 1, .Nq = Nq, .Nk = Nk, .dq = d, .score = ATTN_SCORE_SCALED};
    a.mask.causal = causal;
    float *O = calloc((size_t)Nq * d, sizeof *O), *P = calloc((size_t)Nq * Nk, sizeof *P);
    double *E = malloc((size_t)Nq * d * sizeof *E);
    int st = three_steps ? attn_scores(&a, Q, K, P) || attn_normalize(&a, P, P) || attn_weighted_sum(&a, P, V, O)
                         : attn_forward(&a, Q, K, V, O, NULL, NULL);
    expect(Q, K, V, Nq, Nk, d, causal, E);
    int ok = st == ATTN_OK, bad = -1;
    for (int i = 0; ok && i < Nq * d; i++) {
        int want_nan = isnan(E[i]);
        if (nan_ok && isnan(O[i])) continue;
        if (want_nan != !!isnan(O[i]) || (!want_nan && fabs(O[i] - E[i]) > 1e-4 * (1 + fabs(E[i])))) ok = 0, bad = i;
    }
    CHECK(ok, "%s (%s, Nq %d, Nk %d%s%s): status %d, element %d: got %g, want %g", what, attn_get_isa(), Nq, Nk,
          causal ? ", causal" : "", three_steps ? ", three steps" : "", st, bad, bad >= 0 ? O[bad] : 0.0, bad >= 0 ? E[bad] : 0.0);
    free(O), free(P), free(E);
    return ok;
}

static void cases(int Nq, int Nk, int d) {
    size_t nq = (size_t)Nq * d, nk = (size_t)Nk * d;
    float *Q = malloc(nq * sizeof *Q), *K = malloc(nk * sizeof *K), *V = malloc(nk * sizeof *V);
    int j = Nk > 5 ? 5 : Nk - 1, i = Nq / 2;
    for (int causal = 0; causal < 2; causal++)
        for (int three = 0; three < 2; three++) {
            if (three && Nk > 64) continue; /* the three steps hold (Nq, Nk): small only */
            tu_randn(Q, nq, 1), tu_randn(K, nk, 2), tu_randn(V, nk, 3);
            run_case("finite", Q, K, V, Nq, Nk, d, causal, three, 0);
            K[j * d + 1] = NAN;
            run_case("NaN in a key", Q, K, V, Nq, Nk, d, causal, three, 0);
            tu_randn(K, nk, 2);
            Q[i * d] = NAN;
            run_case("NaN in a query", Q, K, V, Nq, Nk, d, causal, three, 0);
            tu_randn(Q, nq, 1);
            V[j * d + 2] = NAN;
            run_case("NaN in a value", Q, K, V, Nq, Nk, d, causal, three, causal);
            tu_randn(V, nk, 3);
            K[j * d] = INFINITY;
            run_case("+inf in a key", Q, K, V, Nq, Nk, d, causal, three, 0);
        }
    free(Q), free(K), free(V);
}

int main(void) {
    const char *isas[] = {"ref", "avx2", "avx512"};
    for (int k = 0; k < 3; k++) {
        if (attn_set_isa(isas[k]) != ATTN_OK) continue;
        cases(3, 9, 8);     /* the row path */
        cases(40, 37, 16);  /* the tile path */
        cases(2, 700, 16);  /* the key-split path, rows */
        cases(20, 600, 8);  /* the key-split path, tiles */
    }
    return tu_summary("test_nonfinite");
}
