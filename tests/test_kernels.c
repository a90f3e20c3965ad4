/* The attention kernels of every instruction-set path (ref, avx2, avx512: those this CPU
 * runs) against a double-precision reference written here:
 *   - the fused forward (output, log-sum-exp, weights), the split over keys (fwd_part) and
 *     the fused backward (dQ, dK, dV), per head, at sizes below, at and above every vector
 *     width, tile and key block, with every mask kind (causal, window, key lengths, boolean
 *     mask, additive bias with -inf), fully masked rows (zero output, lse = -inf);
 *   - attn_forward / attn_backward through the public API on every path: grouped heads,
 *     strided views, the decoding split over keys, the split backward, and results bitwise
 *     identical for 1, 2 and 3 threads and when only some gradients are asked for (each
 *     path's values against a double reference and finite differences: test_ops.c);
 *   - the precision goal: max abs error <= 1e-5 against double precision on unit-normal
 *     inputs at N = 4096 (1024 under sanitizers), forward and backward.
 * No timing anywhere: benchmarks live in `attn bench`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "kernels/kernels.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *const ISAS[] = {"ref", "avx2", "avx512"};
#define NISA 3

/* ------------------------------------------------------------------------------------------
 * The double-precision reference, one head. */

typedef struct {
    double *o;   /* (Nq, dv) */
    double *lse; /* (Nq) */
    double *p;   /* (Nq, Nk) */
    double *dq, *dk, *dv;
    double *delta; /* (Nq) */
} dref;

static void dref_free(dref *r) {
    free(r->o), free(r->lse), free(r->p), free(r->dq), free(r->dk), free(r->dv), free(r->delta);
}

/* Rows of X (n rows at stride xs, c columns) as contiguous doubles. */
static double *to_double(const float *x, int64_t xs, int n, int c) {
    double *y = malloc(((size_t)n * c + 1) * sizeof *y);
    for (int r = 0; r < n; r++)
        for (int k = 0; k < c; k++) y[(size_t)r * c + k] = x[r * xs + k];
    return y;
}

static double ddot(const double *a, const double *b, int n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int c = 0;
    for (; c + 4 <= n; c += 4) s0 += a[c] * b[c], s1 += a[c + 1] * b[c + 1], s2 += a[c + 2] * b[c + 2], s3 += a[c + 3] * b[c + 3];
    for (; c < n; c++) s0 += a[c] * b[c];
    return (s0 + s1) + (s2 + s3);
}

/* Forward and, if dO is given, backward of head h in double precision. */
static dref dref_run(const attn__head *h, const float *dO) {
    int Nq = h->Nq, Nk = h->Nk, d = h->d, dv = h->dv;
    double *q = to_double(h->q, h->q_rs, Nq, d), *k = to_double(h->k, h->k_rs, Nk, d), *v = to_double(h->v, h->v_rs, Nk, dv);
    dref r = {0};
    r.o = calloc((size_t)Nq * dv, sizeof(double));
    r.lse = calloc((size_t)Nq, sizeof(double));
    r.p = calloc((size_t)Nq * Nk, sizeof(double));
    for (int i = 0; i < Nq; i++) {
        double m = -INFINITY, *p = r.p + (size_t)i * Nk;
        for (int j = 0; j < Nk; j++) {
            p[j] = -INFINITY;
            if (!attn__visible(h, i, j)) continue;
            double s = ddot(q + (size_t)i * d, k + (size_t)j * d, d) * h->scale;
            if (h->bias) s += h->bias[i * h->bias_rs + j * h->bias_cs];
            p[j] = s;
            if (s > m) m = s;
        }
        if (m == -INFINITY) {
            for (int j = 0; j < Nk; j++) p[j] = 0.0;
            r.lse[i] = -INFINITY;
            continue;
        }
        double sum = 0.0;
        for (int j = 0; j < Nk; j++) sum += p[j] = p[j] == -INFINITY ? 0.0 : exp(p[j] - m);
        for (int j = 0; j < Nk; j++) p[j] /= sum;
        r.lse[i] = m + log(sum);
        double *o = r.o + (size_t)i * dv;
        for (int j = 0; j < Nk; j++) {
            const double *vj = v + (size_t)j * dv;
            for (int c = 0; c < dv; c++) o[c] += p[j] * vj[c];
        }
    }
    if (dO) {
        double *g = to_double(dO, dv, Nq, dv);
        r.dq = calloc((size_t)Nq * d, sizeof(double));
        r.dk = calloc((size_t)Nk * d, sizeof(double));
        r.dv = calloc((size_t)Nk * dv, sizeof(double));
        r.delta = calloc((size_t)Nq, sizeof(double));
        for (int i = 0; i < Nq; i++) {
            const double *gi = g + (size_t)i * dv, *qi = q + (size_t)i * d;
            double *dqi = r.dq + (size_t)i * d;
            r.delta[i] = ddot(gi, r.o + (size_t)i * dv, dv);
            for (int j = 0; j < Nk; j++) {
                double p = r.p[(size_t)i * Nk + j];
                if (p == 0.0) continue;
                const double *vj = v + (size_t)j * dv, *kj = k + (size_t)j * d;
                double *dvj = r.dv + (size_t)j * dv, *dkj = r.dk + (size_t)j * d;
                double ds = p * (ddot(gi, vj, dv) - r.delta[i]) * h->scale;
                for (int c = 0; c < dv; c++) dvj[c] += p * gi[c];
                for (int c = 0; c < d; c++) dqi[c] += ds * kj[c];
                for (int c = 0; c < d; c++) dkj[c] += ds * qi[c];
            }
        }
        free(g);
    }
    free(q), free(k), free(v);
    return r;
}

/* max |got - want| over n, +inf on a NaN or an infinity mismatch. */
static double maxerr(const float *got, const double *want, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i]) && got[i] == want[i]) continue;
        double e = fabs(got[i] - want[i]);
        if (!(e <= m)) m = isnan(e) ? INFINITY : e;
    }
    return m;
}

/* ------------------------------------------------------------------------------------------
 * Kernel-level cases. */

typedef struct {
    int Nq, Nk, d, dv;
    int causal, window, key_len; /* key_len 0: Nk */
    int bmask, bias;             /* 1: random pattern (bias has -inf entries) */
    int hide_rows;               /* rows 0, 3 see no key (boolean mask) */
} kcase;

static float *randn(size_t n, uint64_t seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    tu_randn(x, n, seed);
    return x;
}

static void run_kcase(const attn__kernels *K, const kcase *kc, uint64_t seed) {
    int Nq = kc->Nq, Nk = kc->Nk, d = kc->d, dv = kc->dv;
    /* Strided rows (padding after each) so that kernels must honour the row strides. */
    int qrs = d + 3, krs = d + 1, vrs = dv + 2;
    float *q = randn((size_t)Nq * qrs, seed), *k = randn((size_t)Nk * krs, seed + 1), *v = randn((size_t)Nk * vrs, seed + 2);
    float *dO = randn((size_t)Nq * dv, seed + 3);
    uint8_t *bm = malloc((size_t)Nq * Nk + 1);
    float *bias = malloc(((size_t)Nq * Nk + 1) * sizeof *bias);
    attn_rng rng;
    attn_rng_seed(&rng, seed + 4);
    for (size_t x = 0; x < (size_t)Nq * Nk; x++) {
        bm[x] = attn_rng_u32(&rng) % 4 != 0;
        uint32_t u = attn_rng_u32(&rng) % 8;
        bias[x] = u == 0 ? -INFINITY : 0.5f * (float)u - 1.5f;
    }
    if (kc->hide_rows)
        for (int i = 0; i < Nq; i += 3)
            if (i == 0 || i == 3) memset(bm + (size_t)i * Nk, 0, (size_t)Nk);
    attn__head h = {0};
    h.Nq = Nq, h.Nk = Nk, h.d = d, h.dv = dv, h.scale = 1.0f / sqrtf((float)d);
    h.q = q, h.q_rs = qrs, h.k = k, h.k_rs = krs, h.v = v, h.v_rs = vrs;
    h.causal = kc->causal || kc->window > 0, h.window = kc->window;
    h.key_len = kc->key_len ? kc->key_len : Nk;
    if (kc->bmask || kc->hide_rows) h.bmask = bm, h.bm_rs = Nk, h.bm_cs = 1;
    if (kc->bias) h.bias = bias, h.bias_rs = 1, h.bias_cs = Nq; /* column-major: other strides */

    dref r = dref_run(&h, dO);
    char what[200];
    snprintf(what, sizeof what, "%s Nq=%d Nk=%d d=%d dv=%d causal=%d window=%d key_len=%d bmask=%d bias=%d hide=%d",
             K->name, Nq, Nk, d, dv, kc->causal, kc->window, kc->key_len, kc->bmask, kc->bias, kc->hide_rows);
    const double tol = 1e-5;

    /* Forward, in the orchestrator's query blocks, weights included. */
    float *o = malloc((size_t)Nq * dv * sizeof *o + 4), *lse = malloc((size_t)Nq * sizeof *lse + 4);
    float *p = malloc((size_t)Nq * Nk * sizeof *p + 4);
    size_t sf = K->scratch_floats(Nk, d, dv);
    float *scratch = malloc(sf * sizeof *scratch);
    for (int i0 = 0; i0 < Nq; i0 += K->q_block) {
        int i1 = i0 + K->q_block < Nq ? i0 + K->q_block : Nq;
        K->fwd(&h, i0, i1, o, dv, lse, p, Nk, scratch);
    }
    double eo = maxerr(o, r.o, (size_t)Nq * dv), el = maxerr(lse, r.lse, (size_t)Nq), ep = maxerr(p, r.p, (size_t)Nq * Nk);
    CHECK(eo <= tol && el <= tol && ep <= tol, "%s: forward errors o %.3g lse %.3g p %.3g", what, eo, el, ep);
    /* Without weights (the fast paths take another route then). */
    float *o2 = malloc((size_t)Nq * dv * sizeof *o2 + 4), *lse2 = malloc((size_t)Nq * sizeof *lse2 + 4);
    for (int i0 = 0; i0 < Nq; i0 += K->q_block) {
        int i1 = i0 + K->q_block < Nq ? i0 + K->q_block : Nq;
        K->fwd(&h, i0, i1, o2, dv, lse2, NULL, 0, scratch);
    }
    eo = maxerr(o2, r.o, (size_t)Nq * dv), el = maxerr(lse2, r.lse, (size_t)Nq);
    CHECK(eo <= tol && el <= tol, "%s: forward (no weights) errors o %.3g lse %.3g", what, eo, el);
    /* Split over keys, merged as the orchestrator does. */
    if (K->fwd_part) {
        int ns = 3, chunk = (Nk + ns - 1) / ns;
        float *po = malloc((size_t)ns * Nq * dv * sizeof *po + 4), *pl = malloc((size_t)ns * Nq * sizeof *pl + 4);
        for (int s = 0; s < ns; s++) {
            int k0 = s * chunk, k1 = k0 + chunk < Nk ? k0 + chunk : Nk;
            if (k0 > Nk) k0 = Nk;
            K->fwd_part(&h, 0, Nq, k0, k1, po + (size_t)s * Nq * dv, dv, pl + (size_t)s * Nq, NULL, 0, scratch);
        }
        for (int i = 0; i < Nq; i++) {
            double m = -INFINITY, sum = 0.0;
            for (int s = 0; s < ns; s++) m = fmax(m, pl[s * Nq + i]);
            for (int c = 0; c < dv; c++) o2[(size_t)i * dv + c] = 0.0f;
            if (m == -INFINITY) {
                lse2[i] = -INFINITY;
                continue;
            }
            for (int s = 0; s < ns; s++) sum += exp(pl[s * Nq + i] - m);
            for (int s = 0; s < ns; s++)
                for (int c = 0; c < dv; c++)
                    o2[(size_t)i * dv + c] += (float)(exp(pl[s * Nq + i] - m) / sum) * po[((size_t)s * Nq + i) * dv + c];
            lse2[i] = (float)(m + log(sum));
        }
        eo = maxerr(o2, r.o, (size_t)Nq * dv), el = maxerr(lse2, r.lse, (size_t)Nq);
        CHECK(eo <= tol && el <= tol, "%s: split forward errors o %.3g lse %.3g", what, eo, el);
        free(po), free(pl);
    }
    /* Fully masked rows: zero output and lse = -inf, exactly. */
    for (int i = 0; i < Nq; i++)
        if (r.lse[i] == -INFINITY) {
            int zero = lse[i] == -INFINITY;
            for (int c = 0; c < dv; c++) zero &= o[(size_t)i * dv + c] == 0.0f;
            CHECK(zero, "%s: row %d sees no key but has lse %g / nonzero output", what, i, lse[i]);
        }

    /* Backward from the reference lse and delta, both decompositions. */
    float *flse = malloc((size_t)Nq * sizeof *flse + 4), *fdelta = malloc((size_t)Nq * sizeof *fdelta + 4);
    for (int i = 0; i < Nq; i++) flse[i] = (float)r.lse[i], fdelta[i] = (float)r.delta[i];
    float *dq = calloc((size_t)Nq * d + 1, sizeof *dq), *dk = calloc((size_t)Nk * d + 1, sizeof *dk);
    float *dvv = calloc((size_t)Nk * dv + 1, sizeof *dvv);
    if (K->bwd) {
        float *ws = malloc(K->bwd_scratch_floats(Nq, Nk, d, dv) * sizeof *ws);
        /* two key ranges, accumulating (the kernel adds) */
        int mid = Nk / 2;
        K->bwd(&h, flse, fdelta, dO, dv, 0, mid, dq, d, dk, d, dvv, dv, ws);
        K->bwd(&h, flse, fdelta, dO, dv, mid, Nk, dq, d, dk, d, dvv, dv, ws);
        free(ws);
    } else {
        for (int i0 = 0; i0 < Nq; i0 += K->q_block)
            K->bwd_dq(&h, flse, fdelta, dO, dv, i0, i0 + K->q_block < Nq ? i0 + K->q_block : Nq, dq, d, scratch);
        for (int j0 = 0; j0 < Nk; j0 += K->k_block)
            K->bwd_dkv(&h, flse, fdelta, dO, dv, j0, j0 + K->k_block < Nk ? j0 + K->k_block : Nk, dk, d, dvv, dv, scratch);
    }
    double eq = maxerr(dq, r.dq, (size_t)Nq * d), ek = maxerr(dk, r.dk, (size_t)Nk * d), ev = maxerr(dvv, r.dv, (size_t)Nk * dv);
    CHECK(eq <= tol && ek <= tol && ev <= tol, "%s: backward errors dq %.3g dk %.3g dv %.3g", what, eq, ek, ev);

    free(q), free(k), free(v), free(dO), free(bm), free(bias), free(o), free(lse), free(p), free(scratch);
    free(o2), free(lse2), free(flse), free(fdelta), free(dq), free(dk), free(dvv);
    dref_free(&r);
}

static void test_kernels(void) {
    /* Sizes around the widths: vectors of 8 and 16, query tiles of 16 (avx2) and 64
     * (avx512), key blocks of 64, tiles of 6 rows x 2 or 4 vectors, the row path (<= 4 or 8
     * rows), sgemm panels of 16 or 64 columns. */
    static const int NS[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 129, 130};
    static const int DS[] = {1, 5, 8, 16, 17, 24, 64, 80, 128};
    uint64_t seed = 100;
    for (int t = 0; t < NISA; t++) {
        const attn__kernels *K = attn__kern_named(ISAS[t]);
        if (!K) {
            printf("path %s: not run on this CPU\n", ISAS[t]);
            continue;
        }
        int before = tu_failures;
        /* Shapes: every N against a few others, unmasked. */
        for (size_t a = 0; a < sizeof NS / sizeof *NS; a++) {
            kcase kc = {NS[a], NS[(a * 7 + 3) % 15], 64, 64, 0, 0, 0, 0, 0, 0};
            run_kcase(K, &kc, seed++);
            kcase kc2 = {NS[(a * 5 + 2) % 15], NS[a], 16, 24, 0, 0, 0, 0, 0, 0};
            run_kcase(K, &kc2, seed++);
        }
        /* Feature sizes, at a size with full and partial tiles. */
        for (size_t a = 0; a < sizeof DS / sizeof *DS; a++) {
            kcase kc = {37, 70, DS[a], DS[(a + 4) % 9], 0, 0, 0, 0, 0, 0};
            run_kcase(K, &kc, seed++);
        }
        /* Every mask kind, alone and together, through full and partial blocks. */
        static const kcase M[] = {
            {100, 100, 64, 64, 1, 0, 0, 0, 0, 0},   {100, 130, 32, 32, 1, 0, 0, 0, 0, 0},
            {130, 100, 17, 9, 1, 0, 0, 0, 0, 0},    {100, 100, 64, 64, 0, 7, 0, 0, 0, 0},
            {100, 150, 24, 40, 0, 40, 0, 0, 0, 0},  {70, 70, 16, 16, 0, 1, 0, 0, 0, 0},
            {100, 130, 64, 64, 0, 0, 77, 0, 0, 0},  {40, 130, 8, 8, 0, 0, 1, 0, 0, 0},
            {33, 65, 64, 64, 0, 0, 0, 1, 0, 0},     {33, 65, 64, 64, 0, 0, 0, 0, 1, 0},
            {65, 33, 20, 12, 0, 0, 0, 1, 1, 1},     {100, 100, 64, 64, 1, 0, 90, 1, 1, 0},
            {100, 100, 64, 64, 1, 20, 60, 1, 1, 1}, {3, 200, 33, 17, 1, 0, 150, 1, 1, 1},
            {1, 300, 64, 64, 0, 0, 0, 0, 1, 0},     {5, 70, 64, 64, 0, 0, 0, 1, 0, 1},
            {50, 50, 16, 16, 0, 0, 0, 0, 0, 1},     {20, 30, 8, 8, 1, 0, 0, 0, 0, 1},
            {129, 140, 64, 64, 1, 0, 0, 0, 0, 0},   {128, 128, 16, 16, 0, 33, 100, 1, 1, 0},
            {127, 65, 24, 24, 1, 0, 0, 1, 0, 1},    {9, 129, 64, 64, 1, 0, 0, 0, 1, 0},
        };
        for (size_t a = 0; a < sizeof M / sizeof *M; a++) run_kcase(K, &M[a], seed++);
        printf("path %s: kernel cases %s\n", ISAS[t], tu_failures == before ? "ok" : "FAILED");
    }
}

/* No visible key at all (key length 0; in kcase 0 means Nk). */
static void test_zero_keys(void) {
    for (int t = 0; t < NISA; t++) {
        const attn__kernels *K = attn__kern_named(ISAS[t]);
        if (!K) continue;
        int Nq = 40, Nk = 40, d = 16;
        float *q = randn((size_t)Nq * d, 1), *k = randn((size_t)Nk * d, 2), *v = randn((size_t)Nk * d, 3);
        attn__head h = {0};
        h.Nq = Nq, h.Nk = Nk, h.d = d, h.dv = d, h.scale = 0.25f, h.q = q, h.q_rs = d, h.k = k, h.k_rs = d, h.v = v,
        h.v_rs = d, h.key_len = 0;
        float o[40 * 16], lse[40], p[40 * 40];
        float *scratch = malloc(K->scratch_floats(Nk, d, d) * sizeof *scratch);
        for (int i0 = 0; i0 < Nq; i0 += K->q_block)
            K->fwd(&h, i0, i0 + K->q_block < Nq ? i0 + K->q_block : Nq, o, d, lse, p, Nk, scratch);
        int ok = 1;
        for (int i = 0; i < Nq; i++) ok &= lse[i] == -INFINITY;
        for (int x = 0; x < Nq * d; x++) ok &= o[x] == 0.0f;
        for (int x = 0; x < Nq * Nk; x++) ok &= p[x] == 0.0f;
        CHECK(ok, "%s: no visible key must give zero output, zero weights, lse -inf", K->name);
        free(q), free(k), free(v), free(scratch);
    }
}

/* ------------------------------------------------------------------------------------------
 * Through the public API: grouped heads, strided views, thread counts. */

typedef struct {
    int B, H, Hkv, Nq, Nk, d;
    int causal, window, keylens, bmask, bias;
} acase;

static void api_case(const acase *c, uint64_t seed) {
    attn_desc a = {0};
    a.B = c->B, a.H = c->H, a.Hkv = c->Hkv, a.Nq = c->Nq, a.Nk = c->Nk, a.dq = c->d;
    a.score = ATTN_SCORE_SCALED;
    a.mask.causal = c->causal, a.mask.window = c->window;
    /* Q as a view into (B, Nq, H, d + 5): strided like a projection's output. */
    int qw = c->d + 5;
    a.q_strides[0] = (int64_t)c->Nq * c->H * qw, a.q_strides[1] = qw, a.q_strides[2] = (int64_t)c->H * qw;
    size_t nq = (size_t)c->B * c->Nq * c->H * qw, nk = (size_t)c->B * c->Hkv * c->Nk * c->d;
    size_t no = (size_t)c->B * c->H * c->Nq * c->d;
    float *Q = randn(nq, seed), *K = randn(nk, seed + 1), *V = randn(nk, seed + 2), *dO = randn(no, seed + 3);
    int32_t kl[4] = {c->Nk, c->Nk / 2 + 1, 0, c->Nk};
    if (c->keylens) a.mask.key_lengths = kl;
    uint8_t *bm = NULL;
    float *bias = NULL;
    if (c->bmask) {
        /* (B, 1, Nq, Nk): broadcast over heads */
        bm = malloc((size_t)c->B * c->Nq * c->Nk);
        attn_rng r;
        attn_rng_seed(&r, seed + 4);
        for (size_t x = 0; x < (size_t)c->B * c->Nq * c->Nk; x++) bm[x] = attn_rng_u32(&r) % 5 != 0;
        int64_t shape[4] = {c->B, 1, c->Nq, c->Nk}, target[4] = {c->B, c->H, c->Nq, c->Nk};
        attn_broadcast_strides(shape, 4, target, a.mask.bool_strides);
        a.mask.bool_mask = bm;
    }
    if (c->bias) {
        /* (H, Nq, Nk): broadcast over the batch */
        bias = randn((size_t)c->H * c->Nq * c->Nk, seed + 5);
        int64_t shape[3] = {c->H, c->Nq, c->Nk}, target[4] = {c->B, c->H, c->Nq, c->Nk};
        attn_broadcast_strides(shape, 3, target, a.mask.bias_strides);
        a.mask.bias = bias;
    }
    float *O[NISA][3] = {{0}}, *L[NISA][3] = {{0}}, *G[NISA][3][3] = {{{0}}};
    char what[160];
    snprintf(what, sizeof what, "api B=%d H=%d Hkv=%d Nq=%d Nk=%d d=%d causal=%d window=%d keylens=%d bmask=%d bias=%d",
             c->B, c->H, c->Hkv, c->Nq, c->Nk, c->d, c->causal, c->window, c->keylens, c->bmask, c->bias);
    for (int t = 0; t < NISA; t++) {
        if (!attn__kern_named(ISAS[t])) continue;
        CHECK(attn_set_isa(ISAS[t]) == ATTN_OK, "set isa %s", ISAS[t]);
        for (int th = 0; th < 3; th++) {
            attn_set_threads(th + 1);
            O[t][th] = malloc(no * sizeof(float)), L[t][th] = malloc((size_t)c->B * c->H * c->Nq * sizeof(float));
            G[t][th][0] = malloc(nq * sizeof(float)), G[t][th][1] = malloc(nk * sizeof(float)), G[t][th][2] = malloc(nk * sizeof(float));
            memset(G[t][th][0], 0, nq * sizeof(float));
            CHECK(attn_forward(&a, Q, K, V, O[t][th], NULL, L[t][th]) == ATTN_OK, "%s forward: %s", what, attn_last_error());
            CHECK(attn_backward(&a, Q, K, V, O[t][th], L[t][th], dO, G[t][th][0], G[t][th][1], G[t][th][2], NULL) == ATTN_OK,
                  "%s backward: %s", what, attn_last_error());
            if (th > 0) {
                int same = !memcmp(O[t][th], O[t][0], no * sizeof(float)) &&
                           !memcmp(L[t][th], L[t][0], (size_t)c->B * c->H * c->Nq * sizeof(float));
                for (int g = 0; g < 3; g++) same &= !memcmp(G[t][th][g], G[t][0][g], (g ? nk : nq) * sizeof(float));
                CHECK(same, "%s: path %s with %d threads differs from 1 thread", what, ISAS[t], th + 1);
            }
        }
        /* Only some gradients asked for: the same numbers. */
        attn_set_threads(2);
        float *dv_only = malloc(nk * sizeof(float)), *dq_only = malloc(nq * sizeof(float));
        memset(dq_only, 0, nq * sizeof(float));
        CHECK(attn_backward(&a, Q, K, V, O[t][0], L[t][0], dO, NULL, NULL, dv_only, NULL) == ATTN_OK, "%s: dV only", what);
        CHECK(!memcmp(dv_only, G[t][0][2], nk * sizeof(float)), "%s: path %s, dV alone differs", what, ISAS[t]);
        CHECK(attn_backward(&a, Q, K, V, O[t][0], L[t][0], dO, dq_only, NULL, NULL, NULL) == ATTN_OK, "%s: dQ only", what);
        CHECK(!memcmp(dq_only, G[t][0][0], nq * sizeof(float)), "%s: path %s, dQ alone differs", what, ISAS[t]);
        free(dv_only), free(dq_only);
    }
    for (int t = 0; t < NISA; t++)
        for (int th = 0; th < 3; th++) {
            free(O[t][th]), free(L[t][th]);
            for (int g = 0; g < 3; g++) free(G[t][th][g]);
        }
    free(Q), free(K), free(V), free(dO), free(bm), free(bias);
}

static void test_api(void) {
    static const acase C[] = {
        {2, 4, 2, 70, 90, 16, 0, 0, 0, 0, 0},
        {2, 4, 2, 70, 90, 16, 1, 0, 1, 1, 1},
        {1, 4, 1, 33, 33, 64, 1, 9, 0, 0, 0},
        /* decoding: one query against many keys, few heads: the split over keys */
        {1, 2, 1, 1, 1000, 64, 0, 0, 0, 0, 0},
        {2, 2, 2, 3, 700, 32, 0, 0, 1, 1, 1},
        /* one (b, kv head) group and many keys: the split backward */
        {1, 2, 1, 40, 600, 16, 1, 0, 0, 0, 0},
        {1, 1, 1, 300, 520, 24, 0, 0, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof C / sizeof *C; i++) api_case(&C[i], 1000 + 10 * i);
    attn_set_threads(0);
}

/* ------------------------------------------------------------------------------------------
 * sgemm of every path against a double-precision product: every transpose, alpha, beta,
 * strided operands, sizes around the tiles; bitwise identical for 1, 2 and 3 threads. */

static void test_sgemm(void) {
    static const int S[][3] = {{1, 1, 1}, {5, 7, 3}, {6, 64, 64}, {7, 65, 33}, {100, 17, 100}, {97, 130, 61},
                               {200, 256, 64}, {64, 129, 200}, {13, 16, 700}, {1, 300, 40}};
    for (int t = 0; t < NISA; t++) {
        const attn__kernels *K = attn__kern_named(ISAS[t]);
        if (!K) continue;
        int before = tu_failures;
        for (size_t s = 0; s < sizeof S / sizeof *S; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int be = 0; be < 2; be++) {
                        int M = S[s][0], N = S[s][1], Kd = S[s][2];
                        int lda = (ta ? M : Kd) + 3, ldb = (tb ? Kd : N) + 2, ldc = N + 1;
                        size_t na = (size_t)(ta ? Kd : M) * lda, nb = (size_t)(tb ? N : Kd) * ldb, nc = (size_t)M * ldc;
                        float *A = randn(na, 7 * s + 1), *B = randn(nb, 7 * s + 2), *C0 = randn(nc, 7 * s + 3);
                        float *C[3];
                        double *want = malloc(nc * sizeof *want);
                        float alpha = 1.25f, beta = be ? -0.5f : 0.0f;
                        for (size_t x = 0; x < nc; x++) want[x] = C0[x]; /* padding columns stay */
                        for (int m = 0; m < M; m++)
                            for (int n = 0; n < N; n++) {
                                double acc = 0.0;
                                for (int k = 0; k < Kd; k++)
                                    acc += (double)(ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k]) *
                                           (tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n]);
                                want[(size_t)m * ldc + n] = alpha * acc + (be ? beta * (double)C0[(size_t)m * ldc + n] : 0.0);
                            }
                        for (int th = 0; th < 3; th++) {
                            attn_set_threads(th + 1);
                            C[th] = malloc(nc * sizeof(float));
                            memcpy(C[th], C0, nc * sizeof(float));
                            if (!be) /* beta = 0 must ignore C, even NaN */
                                for (int m = 0; m < M; m++) C[th][(size_t)m * ldc] = NAN;
                            K->sgemm(ta, tb, M, N, Kd, alpha, A, lda, B, ldb, beta, C[th], ldc);
                        }
                        double err = maxerr(C[0], want, nc), tol = 1e-5 * (1.0 + sqrt((double)Kd)) * 4.0;
                        CHECK(err <= tol, "%s sgemm M=%d N=%d K=%d ta=%d tb=%d beta=%g: error %.3g", K->name, M, N, Kd, ta, tb,
                              beta, err);
                        CHECK(!memcmp(C[0], C[1], nc * sizeof(float)) && !memcmp(C[0], C[2], nc * sizeof(float)),
                              "%s sgemm M=%d N=%d K=%d: differs across thread counts", K->name, M, N, Kd);
                        for (int th = 0; th < 3; th++) free(C[th]);
                        free(A), free(B), free(C0), free(want);
                    }
        attn_set_threads(0);
        printf("path %s: sgemm %s\n", ISAS[t], tu_failures == before ? "ok" : "FAILED");
    }
}

/* ------------------------------------------------------------------------------------------
 * Precision at the size of the goal. */

static void test_precision(void) {
    int NMAX = SANITIZED ? 256 : 4096, d = 64;
    float *q = randn((size_t)NMAX * d, 7), *k = randn((size_t)NMAX * d, 8), *v = randn((size_t)NMAX * d, 9);
    float *dO = randn((size_t)NMAX * d, 10);
    for (int causal = 0; causal < 2; causal++) {
        int N = causal ? NMAX / 4 : NMAX; /* the double-precision reference takes seconds */
        attn__head h = {0};
        h.Nq = N, h.Nk = N, h.d = d, h.dv = d, h.scale = 0.125f, h.q = q, h.q_rs = d, h.k = k, h.k_rs = d, h.v = v,
        h.v_rs = d, h.key_len = N, h.causal = causal;
        dref r = dref_run(&h, dO);
        for (int t = 0; t < NISA; t++) {
            const attn__kernels *K = attn__kern_named(ISAS[t]);
            if (!K || !K->bwd) continue; /* the reference kernels take minutes at this size */
            attn_desc a = {0};
            a.B = 1, a.H = 1, a.Nq = N, a.Nk = N, a.dq = d, a.score = ATTN_SCORE_SCALED, a.mask.causal = causal;
            attn_set_isa(ISAS[t]);
            float *o = malloc((size_t)N * d * sizeof *o), *lse = malloc((size_t)N * sizeof *lse);
            float *dq = malloc((size_t)N * d * sizeof *dq), *dk = malloc((size_t)N * d * sizeof *dk), *dv = malloc((size_t)N * d * sizeof *dv);
            CHECK(attn_forward(&a, q, k, v, o, NULL, lse) == ATTN_OK, "forward");
            CHECK(attn_backward(&a, q, k, v, o, lse, dO, dq, dk, dv, NULL) == ATTN_OK, "backward");
            double eo = maxerr(o, r.o, (size_t)N * d), el = maxerr(lse, r.lse, (size_t)N);
            double eq = maxerr(dq, r.dq, (size_t)N * d), ek = maxerr(dk, r.dk, (size_t)N * d), ev = maxerr(dv, r.dv, (size_t)N * d);
            printf("precision %s N=%d d=%d causal=%d: max abs error o %.2g lse %.2g dq %.2g dk %.2g dv %.2g\n", ISAS[t], N, d,
                   causal, eo, el, eq, ek, ev);
            CHECK(eo <= 1e-5 && el <= 1e-5 && eq <= 1e-5 && ek <= 1e-5 && ev <= 1e-5, "precision goal missed on %s", ISAS[t]);
            free(o), free(lse), free(dq), free(dk), free(dv);
        }
        dref_free(&r);
    }
    free(q), free(k), free(v), free(dO);
}

int main(void) {
    const char *env_isa = attn_get_isa();
    printf("default path: %s\n", env_isa);
    test_kernels();
    test_zero_keys();
    test_sgemm();
    test_api();
    test_precision();
    attn_set_isa(env_isa);
    return tu_summary("test_kernels");
}
