/* Structural properties of the attention function, for every score kind and every
 * instruction-set path this CPU runs:
 *  - results (forward, weights, log-sum-exp, every gradient, the three steps) are bitwise
 *    identical for 1, 2, 3 and 5 threads;
 *  - a query row that sees no key (key length 0, an all-false boolean row, an all -inf bias
 *    row, a window that falls past the key length) gets exactly zero weights, a zero output,
 *    lse -inf, a zero dQ row, passes no gradient to K, V or the parameters, and nothing is NaN;
 *  - attn_scores -> attn_normalize -> attn_weighted_sum equals the fused attn_forward;
 *  - grouped heads (Hkv < H) equal the same problem with K and V repeated per query head;
 *  - strided views (Q, K, V, O as slices of (B, N, H*d) projection outputs, K and V
 *    interleaved in one buffer) equal contiguous arrays, and the padding is left untouched;
 *  - parameter gradients accumulate (+=), lse = NULL in attn_backward is recomputed exactly;
 *  - malformed descriptions are refused with a status, and mask strides broadcast as numpy.
 * Values are checked against PyTorch in test_attention_ref.c and against finite differences in
 * test_ops.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "testutil.h"

/* ------------------------------------------------------------------------------------------
 * A random problem and its results. */

typedef struct {
    attn_score score;
    int B, H, Hkv, Nq, Nk, dq, dk, dv, A;
    float scale;
    int causal, window, kl, bmask, bias; /* bmask: (B, 1, Nq, Nk); bias: (1, H, Nq, Nk) with -inf */
} pcase;

typedef struct {
    pcase c;
    attn_desc a;
    attn_score_params prm;
    float *Q, *K, *V, *dO;
    float *pbuf;  /* the score parameters, carved into prm */
    size_t np;    /* floats in pbuf */
    int32_t kl[8];
    uint8_t *bm;
    float *bias;
} prob;

typedef struct {
    float *O, *P, *lse, *dQ, *dK, *dV, *dp; /* dp: parameter gradients, laid out as pbuf */
    float *S, *P3, *O3;                     /* the three steps */
} result;

/* Points prm's arrays into buf in a fixed order; returns the floats used. */
static size_t carve(attn_score_params *prm, float *buf, const pcase *c) {
    size_t off = 0;
    memset(prm, 0, sizeof *prm);
#define TAKE(field, n) (prm->field = buf ? buf + off : NULL, off += (size_t)(n))
    if (c->score == ATTN_SCORE_GENERAL) TAKE(W, c->dq * c->dk);
    if (c->score == ATTN_SCORE_ADDITIVE) {
        prm->A = c->A;
        TAKE(Wa, c->A * c->dq);
        TAKE(ba, c->A);
        TAKE(Ua, c->A * c->dk);
        TAKE(bu, c->A);
        TAKE(va, c->A);
        TAKE(bv, 1);
    }
#undef TAKE
    return off;
}

static float *randn(size_t n, uint64_t seed, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    tu_randn(x, n, seed);
    for (size_t i = 0; i < n; i++) x[i] *= scale;
    return x;
}

static void prob_init(prob *p, const pcase *c0, uint64_t seed) {
    memset(p, 0, sizeof *p);
    pcase *c = &p->c;
    *c = *c0;
    if (!c->Hkv) c->Hkv = c->H;
    if (!c->dk) c->dk = c->dq;
    if (!c->dv) c->dv = c->dk;
    p->Q = randn((size_t)c->B * c->H * c->Nq * c->dq, seed + 1, 1.0f);
    p->K = randn((size_t)c->B * c->Hkv * c->Nk * c->dk, seed + 2, 1.0f);
    p->V = randn((size_t)c->B * c->Hkv * c->Nk * c->dv, seed + 3, 1.0f);
    p->dO = randn((size_t)c->B * c->H * c->Nq * c->dv, seed + 4, 1.0f);
    p->np = carve(&p->prm, NULL, c);
    p->pbuf = randn(p->np, seed + 5, 0.5f);
    carve(&p->prm, p->pbuf, c);
    attn_desc *a = &p->a;
    a->B = c->B, a->H = c->H, a->Hkv = c->Hkv, a->Nq = c->Nq, a->Nk = c->Nk;
    a->dq = c->dq, a->dk = c->dk, a->dv = c->dv;
    a->score = c->score, a->scale = c->scale;
    a->params = &p->prm;
    a->mask.causal = c->causal;
    a->mask.window = c->window;
    const int64_t target[4] = {c->B, c->H, c->Nq, c->Nk};
    attn_rng r;
    attn_rng_seed(&r, seed + 6);
    if (c->kl) {
        for (int b = 0; b < c->B; b++) p->kl[b] = b == 0 ? c->Nk : (int32_t)(attn_rng_u32(&r) % (uint32_t)(c->Nk + 1));
        a->mask.key_lengths = p->kl;
    }
    if (c->bmask) {
        size_t n = (size_t)c->B * c->Nq * c->Nk;
        p->bm = malloc(n);
        for (size_t i = 0; i < n; i++) p->bm[i] = attn_rng_uniform(&r) < 0.8f;
        a->mask.bool_mask = p->bm;
        const int64_t shape[4] = {c->B, 1, c->Nq, c->Nk};
        attn_broadcast_strides(shape, 4, target, a->mask.bool_strides);
    }
    if (c->bias) {
        size_t n = (size_t)c->H * c->Nq * c->Nk;
        p->bias = randn(n, seed + 7, 1.0f);
        for (size_t i = 0; i < n; i++)
            if (attn_rng_uniform(&r) < 0.1f) p->bias[i] = -INFINITY;
        a->mask.bias = p->bias;
        const int64_t shape[4] = {1, c->H, c->Nq, c->Nk};
        attn_broadcast_strides(shape, 4, target, a->mask.bias_strides);
    }
}

static void prob_free(prob *p) {
    free(p->Q), free(p->K), free(p->V), free(p->dO), free(p->pbuf), free(p->bm), free(p->bias);
}

static size_t n_o(const pcase *c) { return (size_t)c->B * c->H * c->Nq * c->dv; }
static size_t n_p(const pcase *c) { return (size_t)c->B * c->H * c->Nq * c->Nk; }
static size_t n_l(const pcase *c) { return (size_t)c->B * c->H * c->Nq; }
static size_t n_q(const pcase *c) { return (size_t)c->B * c->H * c->Nq * c->dq; }
static size_t n_k(const pcase *c) { return (size_t)c->B * c->Hkv * c->Nk * c->dk; }
static size_t n_v(const pcase *c) { return (size_t)c->B * c->Hkv * c->Nk * c->dv; }

static void result_free(result *r) {
    free(r->O), free(r->P), free(r->lse), free(r->dQ), free(r->dK), free(r->dV), free(r->dp);
    free(r->S), free(r->P3), free(r->O3);
    memset(r, 0, sizeof *r);
}

/* Forward with weights and lse, backward (lse given, or recomputed if !use_lse), and the
 * three steps. Returns 0 if any call failed (reported). */
static int run(const prob *p, result *r, int use_lse, const char *what) {
    const pcase *c = &p->c;
    memset(r, 0, sizeof *r);
    r->O = malloc(n_o(c) * sizeof(float));
    r->P = malloc(n_p(c) * sizeof(float));
    r->lse = malloc(n_l(c) * sizeof(float));
    r->dQ = malloc(n_q(c) * sizeof(float));
    r->dK = malloc(n_k(c) * sizeof(float));
    r->dV = malloc(n_v(c) * sizeof(float));
    r->dp = calloc(p->np + 1, sizeof(float));
    r->S = malloc(n_p(c) * sizeof(float));
    r->P3 = malloc(n_p(c) * sizeof(float));
    r->O3 = malloc(n_o(c) * sizeof(float));
    attn_score_params dprm;
    carve(&dprm, r->dp, c);
    int ok = 1, st;
    if ((st = attn_forward(&p->a, p->Q, p->K, p->V, r->O, r->P, r->lse)) != ATTN_OK) {
        CHECK(0, "%s: attn_forward: %s", what, attn_last_error());
        ok = 0;
    }
    st = attn_backward(&p->a, p->Q, p->K, p->V, r->O, use_lse ? r->lse : NULL, p->dO, r->dQ, r->dK, r->dV, &dprm);
    if (st != ATTN_OK) {
        CHECK(0, "%s: attn_backward: %s", what, attn_last_error());
        ok = 0;
    }
    if ((st = attn_scores(&p->a, p->Q, p->K, r->S)) != ATTN_OK || (st = attn_normalize(&p->a, r->S, r->P3)) != ATTN_OK ||
        (st = attn_weighted_sum(&p->a, r->P3, p->V, r->O3)) != ATTN_OK) {
        CHECK(0, "%s: three steps: %s", what, attn_last_error());
        ok = 0;
    }
    return ok;
}

static int same_bits(const char *what, const char *name, const float *a, const float *b, size_t n) {
    int ok = memcmp(a, b, n * sizeof(float)) == 0;
    CHECK(ok, "%s: %s differs bitwise", what, name);
    return ok;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]) || isinf(x[i])) return 0;
    return 1;
}

static float max_abs(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* |got - want| <= rtol |want| + rtol * max|want| (an absolute floor scaled to the array). */
static int close_to(const char *what, const char *name, const float *got, const float *want, size_t n, double rtol) {
    char buf[320];
    snprintf(buf, sizeof buf, "%s: %s", what, name);
    return tu_close(buf, got, want, n, rtol, rtol * (max_abs(want, n) > 1.0f ? max_abs(want, n) : 1.0f));
}

/* ------------------------------------------------------------------------------------------
 * The cases: every score with and without masks and grouped heads, sizes over several
 * query/key blocks of the kernels. */

#define S(x) ATTN_SCORE_##x
static const pcase CASES[] = {
    /* score       B  H Hkv Nq  Nk dq dk dv A  scale causal win kl bm bias */
    {S(DOT),       2, 2, 0, 37, 41, 5, 0, 3, 0, 0.0f, 0, 0, 0, 0, 0},
    {S(SCALED),    2, 4, 2, 70, 45, 8, 0, 4, 0, 0.0f, 1, 0, 1, 0, 0},
    {S(SCALED),    1, 3, 1, 33, 67, 3, 0, 5, 0, 0.0f, 0, 9, 0, 1, 1},
    {S(COSINE),    2, 4, 2, 40, 35, 6, 0, 3, 0, 2.0f, 0, 0, 1, 1, 0},
    {S(GENERAL),   2, 2, 1, 35, 40, 4, 6, 3, 0, 0.0f, 1, 0, 0, 0, 1},
    {S(ADDITIVE),  2, 4, 2, 34, 33, 4, 5, 3, 7, 0.0f, 0, 0, 1, 1, 1},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

static void case_name(char *buf, size_t n, const pcase *c, const char *isa) {
    snprintf(buf, n, "[%s] %s H%d/%d Nq%d Nk%d%s%s%s%s%s", isa, attn_score_name(c->score), c->H, c->Hkv ? c->Hkv : c->H,
             c->Nq, c->Nk, c->causal ? " causal" : "", c->window ? " window" : "", c->kl ? " lengths" : "",
             c->bmask ? " bool" : "", c->bias ? " bias" : "");
}

/* ---- thread-count invariance ---- */

static void test_threads(const char *isa) {
    static const int counts[] = {1, 2, 3, 5};
    for (size_t ci = 0; ci < NCASES; ci++) {
        prob p;
        prob_init(&p, &CASES[ci], 100 + ci);
        char what[200];
        case_name(what, sizeof what, &p.c, isa);
        result r0, r;
        attn_set_threads(1);
        if (!run(&p, &r0, 1, what)) {
            result_free(&r0);
            prob_free(&p);
            continue;
        }
        for (size_t t = 1; t < sizeof counts / sizeof counts[0]; t++) {
            attn_set_threads(counts[t]);
            char w2[240];
            snprintf(w2, sizeof w2, "%s, %d threads vs 1", what, counts[t]);
            if (run(&p, &r, 1, w2)) {
                const pcase *c = &p.c;
                same_bits(w2, "O", r.O, r0.O, n_o(c));
                same_bits(w2, "P", r.P, r0.P, n_p(c));
                same_bits(w2, "lse", r.lse, r0.lse, n_l(c));
                same_bits(w2, "dQ", r.dQ, r0.dQ, n_q(c));
                same_bits(w2, "dK", r.dK, r0.dK, n_k(c));
                same_bits(w2, "dV", r.dV, r0.dV, n_v(c));
                same_bits(w2, "dparams", r.dp, r0.dp, p.np);
                same_bits(w2, "scores", r.S, r0.S, n_p(c));
                same_bits(w2, "normalize", r.P3, r0.P3, n_p(c));
                same_bits(w2, "weighted_sum", r.O3, r0.O3, n_o(c));
            }
            result_free(&r);
        }
        result_free(&r0);
        prob_free(&p);
    }
    attn_set_threads(2);
}

/* ---- three steps == fused; lse recomputed == lse given; dparams accumulate ---- */

static void test_steps(const char *isa) {
    for (size_t ci = 0; ci < NCASES; ci++) {
        prob p;
        prob_init(&p, &CASES[ci], 200 + ci);
        const pcase *c = &p.c;
        char what[200];
        case_name(what, sizeof what, c, isa);
        result r, r2;
        if (run(&p, &r, 1, what)) {
            close_to(what, "three steps P vs fused P", r.P3, r.P, n_p(c), 1e-6);
            close_to(what, "three steps O vs fused O", r.O3, r.O, n_o(c), 1e-6);
            /* Without weights (the fused path of the dispatch table) and without lse. */
            float *O2 = malloc(n_o(c) * sizeof(float)), *lse2 = malloc(n_l(c) * sizeof(float));
            CHECK(attn_forward(&p.a, p.Q, p.K, p.V, O2, NULL, lse2) == ATTN_OK, "%s: forward, P NULL: %s", what, attn_last_error());
            close_to(what, "O without P vs with P", O2, r.O, n_o(c), 1e-5);
            close_to(what, "lse without P vs with P", lse2, r.lse, n_l(c), 1e-5);
            CHECK(attn_forward(&p.a, p.Q, p.K, p.V, O2, NULL, NULL) == ATTN_OK, "%s: forward, O only: %s", what, attn_last_error());
            close_to(what, "O alone vs with P", O2, r.O, n_o(c), 1e-5);
            free(O2), free(lse2);
            /* attn_normalize in place (S == P). */
            CHECK(attn_normalize(&p.a, r.S, r.S) == ATTN_OK, "%s: normalize in place", what);
            same_bits(what, "normalize in place", r.S, r.P3, n_p(c));
            /* The weights of every row that sees a key sum to 1. */
            for (size_t row = 0; row < n_l(c); row++) {
                double sum = 0.0;
                for (int j = 0; j < c->Nk; j++) sum += r.P[row * c->Nk + j];
                if (r.lse[row] != -INFINITY) CHECK(fabs(sum - 1.0) < 1e-5, "%s: row %zu sums to %g", what, row, sum);
            }
            /* Backward with lse recomputed. */
            if (run(&p, &r2, 0, what)) {
                same_bits(what, "dQ (lse NULL vs given)", r2.dQ, r.dQ, n_q(c));
                same_bits(what, "dK (lse NULL vs given)", r2.dK, r.dK, n_k(c));
                same_bits(what, "dV (lse NULL vs given)", r2.dV, r.dV, n_v(c));
                same_bits(what, "dparams (lse NULL vs given)", r2.dp, r.dp, p.np);
            }
            result_free(&r2);
            /* Any of dQ, dK, dV may be NULL (and dparams too): the others are unchanged. */
            for (int want = 0; want < 3; want++) {
                size_t n = want == 0 ? n_q(c) : want == 1 ? n_k(c) : n_v(c);
                float *g = malloc(n * sizeof(float));
                int st = attn_backward(&p.a, p.Q, p.K, p.V, r.O, r.lse, p.dO, want == 0 ? g : NULL, want == 1 ? g : NULL,
                                       want == 2 ? g : NULL, NULL);
                CHECK(st == ATTN_OK, "%s: backward with one gradient: %s", what, attn_last_error());
                same_bits(what, want == 0 ? "dQ alone" : want == 1 ? "dK alone" : "dV alone", g,
                          want == 0 ? r.dQ : want == 1 ? r.dK : r.dV, n);
                free(g);
            }
            /* Parameter gradients accumulate: a second backward into r.dp doubles them. */
            if (p.np) {
                float *twice = malloc(p.np * sizeof(float));
                for (size_t i = 0; i < p.np; i++) twice[i] = 2.0f * r.dp[i];
                attn_score_params dprm;
                carve(&dprm, r.dp, c);
                CHECK(attn_backward(&p.a, p.Q, p.K, p.V, r.O, r.lse, p.dO, NULL, NULL, NULL, &dprm) == ATTN_OK,
                      "%s: backward, parameters only: %s", what, attn_last_error());
                close_to(what, "dparams accumulated twice", r.dp, twice, p.np, 1e-5);
                free(twice);
            }
        }
        result_free(&r);
        prob_free(&p);
    }
}

/* ---- rows that see no key ---- */

static void test_masked_rows(const char *isa) {
    for (int score = 0; score <= ATTN_SCORE_ADDITIVE; score++) {
        /* Batch 0: key length Nk, row 2 all false in the bool mask, row 4 all -inf in the bias;
         * batch 1: key length 0 (every row). Batch 2: key length 2 with window 2, so rows
         * i >= 3 see nothing (their window (i-2, i] is past the keys). */
        pcase c0 = {(attn_score)score, 3, 4, 2, 9, 11, 3, score >= ATTN_SCORE_GENERAL ? 4 : 0, 2, 5, 0.0f, 0, 0, 0, 0, 0};
        prob p;
        prob_init(&p, &c0, 300 + score);
        const pcase *c = &p.c;
        int Nq = c->Nq, Nk = c->Nk;
        p.kl[0] = Nk, p.kl[1] = 0, p.kl[2] = 2;
        p.a.mask.key_lengths = p.kl;
        p.bm = malloc((size_t)c->B * Nq * Nk);
        memset(p.bm, 1, (size_t)c->B * Nq * Nk);
        memset(p.bm + 2 * Nk, 0, (size_t)Nk);
        p.a.mask.bool_mask = p.bm;
        const int64_t target[4] = {c->B, c->H, Nq, Nk}, bshape[4] = {c->B, 1, Nq, Nk}, fshape[2] = {Nq, Nk};
        attn_broadcast_strides(bshape, 4, target, p.a.mask.bool_strides);
        p.bias = randn((size_t)Nq * Nk, 777, 1.0f);
        for (int j = 0; j < Nk; j++) p.bias[4 * Nk + j] = -INFINITY;
        p.a.mask.bias = p.bias;
        attn_broadcast_strides(fshape, 2, target, p.a.mask.bias_strides);
        /* The window applies to every batch; batch 0 rows then see at most 2 keys. */
        p.a.mask.window = 2;

        char what[200];
        snprintf(what, sizeof what, "[%s] %s fully masked rows", isa, attn_score_name(c->score));
        result r;
        if (run(&p, &r, 1, what)) {
            CHECK(all_finite(r.O, n_o(c)) && all_finite(r.P, n_p(c)) && all_finite(r.dQ, n_q(c)) &&
                      all_finite(r.dK, n_k(c)) && all_finite(r.dV, n_v(c)) && all_finite(r.dp, p.np) &&
                      all_finite(r.P3, n_p(c)) && all_finite(r.O3, n_o(c)),
                  "%s: NaN or inf in the results", what);
            int nmasked = 0, bad = 0;
            for (int b = 0; b < c->B; b++)
                for (int h = 0; h < c->H; h++)
                    for (int i = 0; i < Nq; i++) {
                        int dead = b == 1 || (b == 0 && (i == 2 || i == 4)) || (b == 2 && i >= 3);
                        if (!dead) continue;
                        nmasked++;
                        size_t row = ((size_t)b * c->H + h) * Nq + i;
                        if (r.lse[row] != -INFINITY) bad++;
                        for (int j = 0; j < Nk; j++)
                            if (r.P[row * Nk + j] != 0.0f || r.P3[row * Nk + j] != 0.0f) bad++;
                        for (int e = 0; e < c->dv; e++)
                            if (r.O[row * c->dv + e] != 0.0f || r.O3[row * c->dv + e] != 0.0f) bad++;
                        for (int e = 0; e < c->dq; e++)
                            if (r.dQ[row * c->dq + e] != 0.0f) bad++;
                        /* Give the dead row a large upstream gradient: nothing may change. */
                        for (int e = 0; e < c->dv; e++) p.dO[row * c->dv + e] = 1e3f * (float)(e + 1);
                    }
            CHECK(nmasked == c->H * (Nq + 2 + (Nq - 3)), "%s: %d masked rows", what, nmasked);
            CHECK(bad == 0, "%s: %d nonzero entries (or lse != -inf) in rows that see no key", what, bad);
            result r2;
            if (run(&p, &r2, 1, what)) {
                same_bits(what, "dK with the dead rows' dO changed", r2.dK, r.dK, n_k(c));
                same_bits(what, "dV with the dead rows' dO changed", r2.dV, r.dV, n_v(c));
                same_bits(what, "dQ with the dead rows' dO changed", r2.dQ, r.dQ, n_q(c));
                same_bits(what, "dparams with the dead rows' dO changed", r2.dp, r.dp, p.np);
            }
            result_free(&r2);
        }
        result_free(&r);
        prob_free(&p);
    }
}

/* ---- grouped heads == K and V repeated ---- */

static void test_grouped(const char *isa) {
    for (int score = 0; score <= ATTN_SCORE_ADDITIVE; score++)
        for (int Hkv = 1; Hkv <= 2; Hkv++) {
            pcase c0 = {(attn_score)score, 2, 4, Hkv, 35, 13, 3, score >= ATTN_SCORE_GENERAL ? 5 : 0, 2, 4, 0.0f,
                        1, 0, 1, 1, 1};
            prob g, rep;
            prob_init(&g, &c0, 400 + 10 * score + Hkv);
            const pcase *c = &g.c;
            int G = c->H / c->Hkv;
            /* The same problem with Hkv = H and K, V copied per query head. */
            c0.Hkv = c0.H;
            prob_init(&rep, &c0, 400 + 10 * score + Hkv);
            memcpy(rep.Q, g.Q, n_q(c) * sizeof(float));
            memcpy(rep.dO, g.dO, n_o(c) * sizeof(float));
            memcpy(rep.pbuf, g.pbuf, g.np * sizeof(float));
            memcpy(rep.kl, g.kl, sizeof g.kl);
            memcpy(rep.bm, g.bm, (size_t)c->B * c->Nq * c->Nk);
            memcpy(rep.bias, g.bias, (size_t)c->H * c->Nq * c->Nk * sizeof(float));
            size_t krow = (size_t)c->Nk * c->dk, vrow = (size_t)c->Nk * c->dv;
            for (int b = 0; b < c->B; b++)
                for (int h = 0; h < c->H; h++) {
                    memcpy(rep.K + ((size_t)b * c->H + h) * krow, g.K + ((size_t)b * c->Hkv + h / G) * krow, krow * sizeof(float));
                    memcpy(rep.V + ((size_t)b * c->H + h) * vrow, g.V + ((size_t)b * c->Hkv + h / G) * vrow, vrow * sizeof(float));
                }
            char what[200];
            case_name(what, sizeof what, c, isa);
            result rg, rr;
            memset(&rr, 0, sizeof rr);
            if (run(&g, &rg, 1, what) && run(&rep, &rr, 1, what)) {
                close_to(what, "grouped O vs repeated", rg.O, rr.O, n_o(c), 1e-6);
                close_to(what, "grouped P vs repeated", rg.P, rr.P, n_p(c), 1e-6);
                close_to(what, "grouped dQ vs repeated", rg.dQ, rr.dQ, n_q(c), 1e-5);
                close_to(what, "grouped dparams vs repeated", rg.dp, rr.dp, g.np, 1e-5);
                /* dK, dV of a shared head: the sum over the query heads of its group. */
                float *sk = calloc(n_k(c), sizeof(float)), *sv = calloc(n_v(c), sizeof(float));
                for (int b = 0; b < c->B; b++)
                    for (int h = 0; h < c->H; h++) {
                        for (size_t e = 0; e < krow; e++)
                            sk[((size_t)b * c->Hkv + h / G) * krow + e] += rr.dK[((size_t)b * c->H + h) * krow + e];
                        for (size_t e = 0; e < vrow; e++)
                            sv[((size_t)b * c->Hkv + h / G) * vrow + e] += rr.dV[((size_t)b * c->H + h) * vrow + e];
                    }
                close_to(what, "grouped dK vs summed repeated", rg.dK, sk, n_k(c), 1e-5);
                close_to(what, "grouped dV vs summed repeated", rg.dV, sv, n_v(c), 1e-5);
                free(sk), free(sv);
            }
            result_free(&rg);
            result_free(&rr);
            prob_free(&g);
            prob_free(&rep);
        }
}

/* ---- strided views == contiguous ---- */

#define SENTINEL 12345.0f

/* Copies contiguous X (B, Hx, N, d) into view storage with strides s (over B, Hx, N). */
static void scatter(float *dst, const int64_t s[3], const float *X, int B, int Hx, int N, int d) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hx; h++)
            for (int n = 0; n < N; n++) memcpy(dst + b * s[0] + h * s[1] + n * s[2], X + (((size_t)b * Hx + h) * N + n) * d, d * sizeof(float));
}

static void gather(float *X, const float *src, const int64_t s[3], int B, int Hx, int N, int d) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hx; h++)
            for (int n = 0; n < N; n++) memcpy(X + (((size_t)b * Hx + h) * N + n) * d, src + b * s[0] + h * s[1] + n * s[2], d * sizeof(float));
}

/* Counts entries of buf (n) outside the view (and outside a second view at off2 with strides
 * s2, if given) that no longer hold SENTINEL. */
static int touched_padding(const float *buf, size_t n, const int64_t s[3], int B, int Hx, int N, int d,
                           const int64_t *s2, int64_t off2, int Hx2, int d2) {
    unsigned char *in = calloc(n, 1);
    for (int b = 0; b < B; b++)
        for (int nn = 0; nn < N; nn++) {
            for (int h = 0; h < Hx; h++) memset(in + b * s[0] + h * s[1] + nn * s[2], 1, (size_t)d);
            if (s2)
                for (int h = 0; h < Hx2; h++) memset(in + off2 + b * s2[0] + h * s2[1] + nn * s2[2], 1, (size_t)d2);
        }
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!in[i] && memcmp(&buf[i], &(float){SENTINEL}, sizeof(float)) != 0) bad++;
    free(in);
    return bad;
}

static void test_strided(const char *isa) {
    for (size_t ci = 0; ci < NCASES; ci++) {
        prob p;
        prob_init(&p, &CASES[ci], 500 + ci);
        const pcase *c = &p.c;
        char what[200];
        case_name(what, sizeof what, c, isa);
        strcat(what, " strided");
        result r0;
        if (!run(&p, &r0, 1, what)) {
            result_free(&r0);
            prob_free(&p);
            continue;
        }
        int B = c->B, H = c->H, Hkv = c->Hkv, Nq = c->Nq, Nk = c->Nk, dq = c->dq, dk = c->dk, dv = c->dv;
        /* Q and O as slices of (B, Nq, H*d + pad) rows; K and V interleaved in one
         * (B, Nk, Hkv*dk + Hkv*dv + pad) buffer, as a fused K/V projection writes them. */
        int64_t qrow = (int64_t)H * dq + 3, orow = (int64_t)H * dv + 2, kvrow = (int64_t)Hkv * (dk + dv) + 1;
        int64_t qs[3] = {Nq * qrow, dq, qrow}, os[3] = {Nq * orow, dv, orow};
        int64_t ks[3] = {Nk * kvrow, dk, kvrow}, vs[3] = {Nk * kvrow, dv, kvrow};
        size_t nqb = (size_t)B * Nq * qrow, nob = (size_t)B * Nq * orow, nkvb = (size_t)B * Nk * kvrow;
        float *Qb = malloc(nqb * sizeof(float)), *Ob = malloc(nob * sizeof(float)), *dOb = malloc(nob * sizeof(float));
        float *KVb = malloc(nkvb * sizeof(float)), *dQb = malloc(nqb * sizeof(float)), *dKVb = malloc(nkvb * sizeof(float));
        for (size_t i = 0; i < nqb; i++) Qb[i] = dQb[i] = SENTINEL;
        for (size_t i = 0; i < nob; i++) Ob[i] = dOb[i] = SENTINEL;
        for (size_t i = 0; i < nkvb; i++) KVb[i] = dKVb[i] = SENTINEL;
        const int64_t voff = (int64_t)Hkv * dk; /* V starts after the Hkv keys of a row */
        scatter(Qb, qs, p.Q, B, H, Nq, dq);
        scatter(KVb, ks, p.K, B, Hkv, Nk, dk);
        scatter(KVb + voff, vs, p.V, B, Hkv, Nk, dv);
        scatter(dOb, os, p.dO, B, H, Nq, dv);
        attn_desc a = p.a;
        memcpy(a.q_strides, qs, sizeof qs);
        memcpy(a.k_strides, ks, sizeof ks);
        memcpy(a.v_strides, vs, sizeof vs);
        memcpy(a.o_strides, os, sizeof os);
        float *P = malloc(n_p(c) * sizeof(float)), *lse = malloc(n_l(c) * sizeof(float)), *S = malloc(n_p(c) * sizeof(float));
        float *dp = calloc(p.np + 1, sizeof(float));
        attn_score_params dprm;
        carve(&dprm, dp, c);
        int st = attn_forward(&a, Qb, KVb, KVb + voff, Ob, P, lse);
        CHECK(st == ATTN_OK, "%s: attn_forward: %s", what, attn_last_error());
        st = attn_backward(&a, Qb, KVb, KVb + voff, Ob, lse, dOb, dQb, dKVb, dKVb + voff, &dprm);
        CHECK(st == ATTN_OK, "%s: attn_backward: %s", what, attn_last_error());
        float *x = malloc((n_p(c) > n_q(c) + n_o(c) + n_k(c) + n_v(c) ? n_p(c) : n_q(c) + n_o(c) + n_k(c) + n_v(c)) * sizeof(float));
        gather(x, Ob, os, B, H, Nq, dv);
        same_bits(what, "O", x, r0.O, n_o(c));
        same_bits(what, "P", P, r0.P, n_p(c));
        same_bits(what, "lse", lse, r0.lse, n_l(c));
        gather(x, dQb, qs, B, H, Nq, dq);
        same_bits(what, "dQ", x, r0.dQ, n_q(c));
        gather(x, dKVb, ks, B, Hkv, Nk, dk);
        same_bits(what, "dK", x, r0.dK, n_k(c));
        gather(x, dKVb + voff, vs, B, Hkv, Nk, dv);
        same_bits(what, "dV", x, r0.dV, n_v(c));
        same_bits(what, "dparams", dp, r0.dp, p.np);
        CHECK(touched_padding(Ob, nob, os, B, H, Nq, dv, NULL, 0, 0, 0) == 0, "%s: O padding written", what);
        CHECK(touched_padding(dQb, nqb, qs, B, H, Nq, dq, NULL, 0, 0, 0) == 0, "%s: dQ padding written", what);
        CHECK(touched_padding(dKVb, nkvb, ks, B, Hkv, Nk, dk, vs, voff, Hkv, dv) == 0, "%s: dK/dV padding written", what);
        /* The three steps with strided Q, K, V, O. */
        float *P3 = malloc(n_p(c) * sizeof(float));
        for (size_t i = 0; i < nob; i++) Ob[i] = SENTINEL;
        st = attn_scores(&a, Qb, KVb, S);
        if (!st) st = attn_normalize(&a, S, P3);
        if (!st) st = attn_weighted_sum(&a, P3, KVb + voff, Ob);
        CHECK(st == ATTN_OK, "%s: three steps: %s", what, attn_last_error());
        same_bits(what, "three steps S", S, r0.S, n_p(c));
        gather(x, Ob, os, B, H, Nq, dv);
        same_bits(what, "three steps O", x, r0.O3, n_o(c));
        CHECK(touched_padding(Ob, nob, os, B, H, Nq, dv, NULL, 0, 0, 0) == 0, "%s: weighted_sum O padding written", what);
        free(P3), free(x), free(P), free(lse), free(S), free(dp);
        free(Qb), free(Ob), free(dOb), free(KVb), free(dQb), free(dKVb);
        result_free(&r0);
        prob_free(&p);
    }
}

/* ---- additive score: ba, bu, bv are optional (NULL = zero) ---- */

static void test_additive_optional_biases(const char *isa) {
    pcase c0 = {S(ADDITIVE), 2, 2, 1, 9, 12, 3, 4, 2, 5, 0.0f, 1, 0, 0, 0, 0};
    prob p;
    prob_init(&p, &c0, 600);
    const pcase *c = &p.c;
    char what[200];
    case_name(what, sizeof what, c, isa);
    strcat(what, " NULL biases");
    memset(p.prm.ba, 0, c->A * sizeof(float));
    memset(p.prm.bu, 0, c->A * sizeof(float));
    p.prm.bv[0] = 0.0f;
    result r0, r;
    memset(&r, 0, sizeof r);
    if (run(&p, &r0, 1, what)) {
        float *ba = p.prm.ba, *bu = p.prm.bu, *bv = p.prm.bv;
        p.prm.ba = p.prm.bu = p.prm.bv = NULL;
        if (run(&p, &r, 1, what)) {
            same_bits(what, "O", r.O, r0.O, n_o(c));
            same_bits(what, "dQ", r.dQ, r0.dQ, n_q(c));
            same_bits(what, "dK", r.dK, r0.dK, n_k(c));
            same_bits(what, "dV", r.dV, r0.dV, n_v(c));
            same_bits(what, "S", r.S, r0.S, n_p(c));
        }
        p.prm.ba = ba, p.prm.bu = bu, p.prm.bv = bv;
    }
    result_free(&r0);
    result_free(&r);
    prob_free(&p);
}

/* ---- argument checking and broadcasting ---- */

static void test_checks(void) {
    float W[12] = {0};
    attn_score_params prm = {0};
    attn_desc base = {0};
    base.B = 1, base.H = 4, base.Nq = 3, base.Nk = 5, base.dq = 3;
    attn_desc a = base;
    CHECK(attn_desc_check(&a) == ATTN_OK, "a plain description: %s", attn_last_error());
    CHECK(a.Hkv == 4 && a.dk == 3 && a.dv == 3 && a.score == ATTN_SCORE_DOT && a.scale == 1.0f, "defaults filled in");
    CHECK(a.q_strides[0] == 4 * 3 * 3 && a.q_strides[1] == 9 && a.q_strides[2] == 3, "contiguous Q strides");
    a = base, a.score = ATTN_SCORE_SCALED;
    CHECK(attn_desc_check(&a) == ATTN_OK && fabsf(a.scale - 1.0f / sqrtf(3.0f)) < 1e-7f, "scaled default 1/sqrt(d)");
    a = base, a.Hkv = 3;
    CHECK(attn_desc_check(&a) == ATTN_ESHAPE, "H %% Hkv != 0 refused");
    a = base, a.dk = 4;
    CHECK(attn_desc_check(&a) == ATTN_ESHAPE, "dot score with dq != dk refused");
    a = base, a.score = ATTN_SCORE_GENERAL, a.dk = 4;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "general score without W refused");
    prm.W = W, a.params = &prm;
    CHECK(attn_desc_check(&a) == ATTN_OK, "general score with dq != dk: %s", attn_last_error());
    a = base, a.score = ATTN_SCORE_ADDITIVE, a.params = &prm;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "additive score without its parameters refused");
    a = base, a.score = (attn_score)7;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "unknown score refused");
    a = base, a.Nq = 0;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "Nq = 0 refused");
    a = base, a.mask.window = -1;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "negative window refused");
    int32_t kl = 6;
    a = base, a.mask.key_lengths = &kl;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "key length > Nk refused");
    a = base, a.scale = NAN;
    CHECK(attn_desc_check(&a) == ATTN_EINVAL, "NaN scale refused");
    CHECK(attn_desc_check(NULL) == ATTN_EINVAL, "NULL description refused");
    a = base;
    float buf[64] = {0};
    CHECK(attn_forward(&a, NULL, buf, buf, buf, NULL, NULL) == ATTN_EINVAL, "NULL Q refused");
    CHECK(attn_forward(&a, buf, buf, buf, NULL, NULL, NULL) == ATTN_EINVAL, "NULL O refused");
    CHECK(attn_score_parse("cosine") == ATTN_SCORE_COSINE && attn_score_parse("nope") == -1, "score names");

    const int64_t target[4] = {2, 3, 4, 5};
    int64_t s[4];
    const int64_t sh1[2] = {4, 5}, sh2[4] = {2, 1, 1, 5}, sh3[4] = {1, 3, 4, 5}, sh4[1] = {5}, bad[2] = {3, 5};
    CHECK(attn_broadcast_strides(sh1, 2, target, s) == ATTN_OK && s[0] == 0 && s[1] == 0 && s[2] == 5 && s[3] == 1, "(Nq, Nk) strides");
    CHECK(attn_broadcast_strides(sh2, 4, target, s) == ATTN_OK && s[0] == 5 && s[1] == 0 && s[2] == 0 && s[3] == 1, "(B, 1, 1, Nk) strides");
    CHECK(attn_broadcast_strides(sh3, 4, target, s) == ATTN_OK && s[0] == 0 && s[1] == 20 && s[2] == 5 && s[3] == 1, "(1, H, Nq, Nk) strides");
    CHECK(attn_broadcast_strides(sh4, 1, target, s) == ATTN_OK && s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 1, "(Nk) strides");
    CHECK(attn_broadcast_strides(bad, 2, target, s) == ATTN_ESHAPE, "(3, Nk) does not broadcast to Nq = 4");
}

int main(void) {
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    test_checks();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (attn_set_isa(isas[i]) != ATTN_OK) continue;
        test_threads(isas[i]);
        test_steps(isas[i]);
        test_masked_rows(isas[i]);
        test_grouped(isas[i]);
        test_strided(isas[i]);
        test_additive_optional_biases(isas[i]);
    }
    attn_set_isa(start);
    return tu_summary("test_attention_props");
}
