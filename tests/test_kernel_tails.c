/* The kernels at every awkward size, on every instruction-set path this CPU runs: a row or
 * vector that a tiled loop's tail skipped would keep its sentinel (NaN in outputs that are
 * written, 0 in those that are accumulated) and differ from the double-precision reference.
 *   - attention forward (output, log-sum-exp, weights) and backward (dQ, dK, dV) for every
 *     query count from 1 to 2 q_block + 1 and every key count from 1 to 2 k_block + 1, each
 *     against four counts of the other (with the causal mask, key counts within one of the
 *     query count), then every d and dv from 1 to 80;
 *   - sgemm for M from 1 to 25 and N from 1 to 129, every transpose, on its tiled path;
 *   - the dispatch tables: filled on every path, the optimiser entries bitwise equal to the
 *     reference at lengths 1 to 40, and the element type checked.
 * No timing anywhere. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "kernels/kernels.h"
#include "testutil.h"

static const char *const ISAS[] = {"ref", "avx2", "avx512"};
#define NISA 3

static float *randn(size_t n, uint64_t seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    tu_randn(x, n, seed);
    return x;
}

static float *filled(size_t n, float v) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = v;
    return x;
}

/* Is every got[i] within atol + rtol |want[i]| (NaN never is)? */
static int near(const float *got, const double *want, size_t n, double rtol, double atol) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]))) return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------------
 * Attention: one head, contiguous rows, in double precision. */

typedef struct {
    double *o, *lse, *p, *dq, *dk, *dv; /* (Nq, dv) (Nq) (Nq, Nk) (Nq, d) (Nk, d) (Nk, dv) */
} dref;

static dref dref_run(const attn__head *h, const float *dO) {
    int Nq = h->Nq, Nk = h->Nk, d = h->d, dv = h->dv;
    dref r = {calloc((size_t)Nq * dv, 8), calloc(Nq, 8), calloc((size_t)Nq * Nk, 8), calloc((size_t)Nq * d, 8),
              calloc((size_t)Nk * d, 8), calloc((size_t)Nk * dv, 8)};
    for (int i = 0; i < Nq; i++) {
        double *p = r.p + (size_t)i * Nk, m = -INFINITY, l = 0.0;
        for (int j = 0; j < Nk; j++) {
            double s = 0.0;
            for (int c = 0; c < d; c++) s += (double)h->q[i * h->q_rs + c] * h->k[j * h->k_rs + c];
            p[j] = attn__visible(h, i, j) ? s * h->scale : -INFINITY;
            if (p[j] > m) m = p[j];
        }
        for (int j = 0; j < Nk; j++) l += p[j] = exp(p[j] - m);
        r.lse[i] = m + log(l);
        double delta = 0.0;
        for (int j = 0; j < Nk; j++) {
            p[j] /= l;
            for (int c = 0; c < dv; c++) r.o[(size_t)i * dv + c] += p[j] * h->v[j * h->v_rs + c];
        }
        for (int c = 0; c < dv; c++) delta += (double)dO[i * dv + c] * r.o[(size_t)i * dv + c];
        for (int j = 0; j < Nk; j++) {
            double dp = 0.0;
            for (int c = 0; c < dv; c++) dp += (double)dO[i * dv + c] * h->v[j * h->v_rs + c];
            double ds = p[j] * (dp - delta) * h->scale;
            for (int c = 0; c < d; c++) {
                r.dq[(size_t)i * d + c] += ds * h->k[j * h->k_rs + c];
                r.dk[(size_t)j * d + c] += ds * h->q[i * h->q_rs + c];
            }
            for (int c = 0; c < dv; c++) r.dv[(size_t)j * dv + c] += p[j] * dO[i * dv + c];
        }
    }
    return r;
}

static void dref_free(dref *r) { free(r->o), free(r->lse), free(r->p), free(r->dq), free(r->dk), free(r->dv); }

/* Forward and backward of one head on table K, the calls split into its blocks as the
 * attention layer splits them; 1 if everything matches the reference. */
static int head_case(const attn__kernels *K, int Nq, int Nk, int d, int dv, int causal, uint64_t seed) {
    float *q = randn((size_t)Nq * d, seed), *k = randn((size_t)Nk * d, seed + 1), *v = randn((size_t)Nk * dv, seed + 2);
    float *dO = randn((size_t)Nq * dv, seed + 3);
    attn__head h = {0};
    h.dtype = ATTN__F32, h.Nq = Nq, h.Nk = Nk, h.d = d, h.dv = dv, h.scale = 1.0f / sqrtf((float)d);
    h.q = q, h.q_rs = d, h.k = k, h.k_rs = d, h.v = v, h.v_rs = dv, h.causal = causal, h.key_len = Nk;
    dref r = dref_run(&h, dO);
    size_t ns = K->scratch_floats(Nk, d, dv);
    if (K->bwd_scratch_floats && K->bwd_scratch_floats(Nq, Nk, d, dv) > ns) ns = K->bwd_scratch_floats(Nq, Nk, d, dv);
    float *scratch = malloc(ns * sizeof(float)), *o = filled((size_t)Nq * dv, NAN), *lse = filled(Nq, NAN);
    float *p = filled((size_t)Nq * Nk, NAN), *delta = filled(Nq, NAN);
    float *dq = filled((size_t)Nq * d, 0.0f), *dk = filled((size_t)Nk * d, 0.0f), *dvv = filled((size_t)Nk * dv, 0.0f);
    for (int i0 = 0; i0 < Nq; i0 += K->q_block)
        K->fwd(&h, i0, i0 + K->q_block < Nq ? i0 + K->q_block : Nq, o, dv, lse, p, Nk, scratch);
    if (K->rowdot) K->rowdot(Nq, dv, dO, dv, o, dv, delta);
    else
        for (int i = 0; i < Nq; i++) {
            delta[i] = 0.0f;
            for (int c = 0; c < dv; c++) delta[i] += dO[i * dv + c] * o[i * dv + c];
        }
    for (int j0 = 0; j0 < Nk; j0 += K->k_block) {
        int j1 = j0 + K->k_block < Nk ? j0 + K->k_block : Nk;
        if (K->bwd) K->bwd(&h, lse, delta, dO, dv, j0, j1, dq, d, dk, d, dvv, dv, scratch);
        else K->bwd_dkv(&h, lse, delta, dO, dv, j0, j1, dk, d, dvv, dv, scratch);
    }
    if (!K->bwd)
        for (int i0 = 0; i0 < Nq; i0 += K->q_block)
            K->bwd_dq(&h, lse, delta, dO, dv, i0, i0 + K->q_block < Nq ? i0 + K->q_block : Nq, dq, d, scratch);
    int ok = near(o, r.o, (size_t)Nq * dv, 1e-4, 1e-5) && near(lse, r.lse, Nq, 1e-5, 1e-5) &&
             near(p, r.p, (size_t)Nq * Nk, 1e-4, 1e-6) && near(dq, r.dq, (size_t)Nq * d, 1e-3, 1e-5) &&
             near(dk, r.dk, (size_t)Nk * d, 1e-3, 1e-5) && near(dvv, r.dv, (size_t)Nk * dv, 1e-4, 1e-5);
    CHECK(ok, "path %s: Nq %d Nk %d d %d dv %d causal %d differs from the reference", K->name, Nq, Nk, d, dv, causal);
    dref_free(&r);
    free(q), free(k), free(v), free(dO), free(scratch), free(o), free(lse), free(p), free(delta), free(dq), free(dk), free(dvv);
    return ok;
}

static void test_attention_sizes(const attn__kernels *K) {
    int bad = 0, nq = 2 * K->q_block + 1, nk = 2 * K->k_block + 1;
    /* Every query count against a few key counts (one key, the row path's reach, one past a
     * block, two blocks and one), and every key count against as many query counts. */
    const int ks[4] = {1, 13, K->k_block + 1, nk}, qs[4] = {1, 13, K->q_block + 1, nq};
    for (int Nq = 1; Nq <= nq && bad < 5; Nq++)
        for (int c = 0; c < 4 && bad < 5; c++) bad += !head_case(K, Nq, ks[c], 3, 5, 0, 100u * Nq + c);
    for (int Nk = 1; Nk <= nk && bad < 5; Nk++)
        for (int c = 0; c < 4 && bad < 5; c++) bad += !head_case(K, qs[c], Nk, 3, 5, 0, 100u * Nk + c + 50);
    /* Causal: the diagonal blocks' tails, for self-attention sizes and one off either way. */
    for (int Nq = 1; Nq <= nq && bad < 5; Nq++)
        for (int Nk = Nq > 1 ? Nq - 1 : 1; Nk <= Nq + 1 && bad < 5; Nk++) bad += !head_case(K, Nq, Nk, 3, 5, 1, Nq + 7u * Nk);
    for (int d = 1; d <= 80 && bad < 5; d++) bad += !head_case(K, K->q_block + 3, K->k_block + 5, d, 81 - d, d & 1, d);
    printf("path %s: attention at every size up to (%d, %d) %s\n", K->name, nq, nk, bad ? "FAILED" : "ok");
}

/* ------------------------------------------------------------------------------------------
 * sgemm: C (M, N) = op(A) op(B), C pre-filled with NaN (beta = 0 ignores it), with K large
 * enough that the fast paths take their tiled route (M N K >= 4096). */

static void test_sgemm_sizes(const attn__kernels *K) {
    int bad = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int M = 1; M <= 25 && bad < 5; M++)
                for (int N = 1; N <= 129 && bad < 5; N++) {
                    int Kd = 4096 / (M * N) + 1;
                    float *A = randn((size_t)M * Kd, M), *B = randn((size_t)Kd * N, N), *C = filled((size_t)M * N, NAN);
                    double *want = malloc((size_t)M * N * sizeof *want);
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            double acc = 0.0;
                            for (int k = 0; k < Kd; k++)
                                acc += (double)(ta ? A[k * M + m] : A[m * Kd + k]) * (tb ? B[n * Kd + k] : B[k * N + n]);
                            want[m * N + n] = acc;
                        }
                    K->sgemm(ta, tb, M, N, Kd, 1.0f, A, ta ? M : Kd, B, tb ? Kd : N, 0.0f, C, N);
                    int ok = near(C, want, (size_t)M * N, 1e-4, 1e-4 * sqrt((double)Kd));
                    CHECK(ok, "path %s: sgemm M %d N %d K %d ta %d tb %d differs", K->name, M, N, Kd, ta, tb);
                    bad += !ok;
                    free(A), free(B), free(C), free(want);
                }
    printf("path %s: sgemm at every size up to (25, 129) %s\n", K->name, bad ? "FAILED" : "ok");
}

/* ------------------------------------------------------------------------------------------
 * The tables themselves. */

static void test_tables(const attn__kernels *K) {
    CHECK(K->q_block > 0 && K->k_block > 0 && K->scratch_floats && K->fwd && K->bwd_dq && K->bwd_dkv && K->sgemm &&
              K->sgd && K->adam,
          "path %s: a required entry is missing", K->name);
    CHECK(!K->bwd == !K->rowdot && !K->bwd == !K->bwd_scratch_floats, "path %s: bwd without rowdot or scratch", K->name);
    /* The optimiser loops at every length around the vector widths: the reference's bits. */
    const attn__kernels *R = attn__kern_named("ref");
    attn__sgd_k sk = {0.01f, 0.9f, 1.0f, -0.1f, 0, 1};
    attn__adam_k ak = {0.999f, 0.0f, 0.9f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, -0.01f};
    for (int n = 1; n <= 40; n++) {
        float *x[2][4];
        for (int t = 0; t < 2; t++)
            for (int b = 0; b < 4; b++) {
                x[t][b] = randn(n, 10u * n + b);
                if (b == 3)
                    for (int i = 0; i < n; i++) x[t][b][i] = fabsf(x[t][b][i]); /* Adam's v >= 0 */
            }
        R->sgd(x[0][0], x[0][1], x[0][2], n, &sk), K->sgd(x[1][0], x[1][1], x[1][2], n, &sk);
        R->adam(x[0][0], x[0][1], x[0][2], x[0][3], n, &ak), K->adam(x[1][0], x[1][1], x[1][2], x[1][3], n, &ak);
        int same = 1;
        for (int b = 0; b < 4; b++) same &= !memcmp(x[0][b], x[1][b], (size_t)n * sizeof(float));
        CHECK(same, "path %s: optimiser update of %d floats differs from the reference", K->name, n);
        for (int t = 0; t < 2; t++)
            for (int b = 0; b < 4; b++) free(x[t][b]);
    }
}

static void test_head_check(void) {
    attn__head h = {0};
    h.Nq = h.Nk = h.d = h.dv = h.key_len = 4;
    CHECK(attn__head_check(&h) == ATTN_OK, "a zeroed f32 head is refused");
    h.dtype = ATTN__BF16;
    CHECK(attn__head_check(&h) == ATTN_EINVAL, "a bf16 head is accepted, with no bf16 kernels");
    h.dtype = ATTN__F32, h.key_len = 5;
    CHECK(attn__head_check(&h) == ATTN_EINVAL, "key_len > Nk is accepted");
}

int main(void) {
    int ran = 0;
    for (int t = 0; t < NISA; t++) {
        const attn__kernels *K = attn__kern_named(ISAS[t]);
        if (!K) {
            printf("path %s: not run on this CPU\n", ISAS[t]);
            continue;
        }
        ran++;
        test_tables(K);
        test_attention_sizes(K);
        test_sgemm_sizes(K);
    }
    CHECK(ran >= 1 && attn__kern_named("ref"), "the reference path is missing");
    test_head_check();
    return tu_summary("test_kernel_tails");
}
