#define _POSIX_C_SOURCE 200809L /* setenv */
/* bf16 attention (attn_desc.dtype / compute = ATTN_BF16) against float64 computed from the
 * SAME bf16-rounded inputs, so that what is measured is the kernels' own error: the rounding of
 * the weights P and of dS to bf16 (relative 2^-9, round to nearest even) and fp32 sums.
 *
 * Tolerances, per element, twice the first-order bound of those roundings (2^-8 where the
 * bound has 2^-9), computed from the float64 values themselves:
 *   O_ic    2^-8 (sum_j p_ij |v_jc| + |O_ic|)            P's rounding; O's own for bf16 storage
 *   dV_jc   2^-8 (sum_i p_ij |dO_ic| + |dV_jc|)
 *   dS_ij   error e_ij = 2^-8 (|dS_ij| + p_ij (|dP_ij| + |delta_i|)) + p_ij sum_c |dO_ic| tolO_ic
 *           (dS's rounding, and delta = dO . O computed from the O the kernels returned)
 *   dQ_ic   |scale| sum_j e_ij |k_jc| + 2^-8 |dQ_ic|;  dK_jc  |scale| sum_i e_ij |q_ic| + 2^-8 |dK_jc|
 *   lse_i   1e-5 (1 + |lse_i|)                            fp32 sums and exp
 * plus 1e-5 absolute. Sizes around every tile edge (1, 31, 32, 33, 63, 64, 65, 130 queries and
 * keys, 530 and 600 where the backward splits the keys into ranges, and the decoding shapes
 * of 1-5 query rows against up to 2000 keys; d = 1, 17, 64, 128),
 * grouped heads, every mask, both storage modes; 1 and 2 threads bitwise identical; the fast
 * paths within the sum of their and the reference's tolerances of the reference path.
 *
 *   test_attention_bf16 [ref | f32 | avx512bf16 | amx | rounding]   (no argument: ref and rounding;
 *   f32 is the fp32 kernels on widened bf16 values)
 * A path this CPU (or build) does not run exits 77 (skipped), never 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "kernels/attn_bf16.h"
#include "testutil.h"

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint16_t r1(float f) {
    uint16_t y;
    attn_f32_to_bf16(&f, &y, 1);
    return y;
}

static void test_rounding(void) {
    CHECK(r1(1.0f) == 0x3f80, "1");
    CHECK(r1(1.0f + 0x1p-8f) == 0x3f80, "tie to even (down): %04x", r1(1.0f + 0x1p-8f));
    CHECK(r1(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie to even (up): %04x", r1(1.0f + 3 * 0x1p-8f));
    CHECK(r1(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "above the tie rounds up");
    CHECK(r1(-1.5f) == 0xbfc0, "-1.5");
    CHECK(r1(INFINITY) == 0x7f80 && r1(-INFINITY) == 0xff80, "inf");
    CHECK(r1(from_bits(0x7f7fffffu)) == 0x7f80, "the largest float rounds to inf");
    CHECK(r1(from_bits(0x7f7f7fffu)) == 0x7f7f, "below the tie stays finite");
    uint16_t n1 = r1(from_bits(0x7f800001u)), n2 = r1(from_bits(0xffc00000u)), n3 = r1(from_bits(0x7fffffffu));
    CHECK((n1 & 0x7f80) == 0x7f80 && (n1 & 0x7f), "signalling NaN stays NaN: %04x", n1);
    CHECK(n2 == 0xffc0, "negative quiet NaN keeps its sign: %04x", n2);
    CHECK((n3 & 0x7f80) == 0x7f80 && (n3 & 0x7f), "NaN with a full payload stays NaN (not inf): %04x", n3);
    CHECK(r1(from_bits(0x00000001u)) == 0x0000, "smallest denormal rounds to 0");
    CHECK(r1(from_bits(0x00018000u)) == 0x0002, "denormal tie to even (up)");
    CHECK(r1(from_bits(0x00008000u)) == 0x0000, "denormal tie to even (down)");
    CHECK(r1(from_bits(0x00008001u)) == 0x0001, "denormal above the tie");
    CHECK(r1(from_bits(0x80010000u)) == 0x8001, "negative denormal exact");
    float back[3];
    uint16_t in[3] = {0x3f80, 0x0001, 0xff80};
    attn_bf16_to_f32(in, back, 3);
    CHECK(back[0] == 1.0f && bits(back[1]) == 0x00010000u && back[2] == -INFINITY, "widening is exact");
}

typedef struct {
    int B, H, Hkv, Nq, Nk, d, dv;
    int causal, window, keylen, boolmask, bias; /* keylen: 1 key lengths, 2 also one of 0 */
} cfg;

typedef struct {
    cfg c;
    float scale;
    double *q, *k, *v, *dout;           /* bf16-rounded inputs */
    uint8_t *bm;                        /* (B, Nq, Nk) or NULL */
    float *bias;                        /* (Nq, Nk) or NULL */
    int32_t kl[4];
    double *O, *lse, *dQ, *dK, *dV;     /* float64 results */
    double *tO, *tdQ, *tdK, *tdV;       /* tolerances without the storage term */
} ref64;

static int visible(const ref64 *r, int b, int i, int j) {
    const cfg *c = &r->c;
    if (c->keylen && j >= r->kl[b]) return 0;
    if ((c->causal || c->window) && j > i) return 0;
    if (c->window && j <= i - c->window) return 0;
    if (r->bm && !r->bm[((size_t)b * c->Nq + i) * c->Nk + j]) return 0;
    return 1;
}

#define IX(x, b, h, n, H, N, D) ((x) + ((((size_t)(b) * (H) + (h)) * (N) + (n)) * (D)))

/* The float64 forward and backward with the tolerances of the top. */
static void reference(ref64 *r) {
    const cfg *c = &r->c;
    int G = c->H / c->Hkv, Nk = c->Nk;
    double *p = malloc(sizeof(double) * Nk), *dp = malloc(sizeof(double) * Nk), *e = malloc(sizeof(double) * Nk);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++) {
            int hk = h / G;
            for (int i = 0; i < c->Nq; i++) {
                const double *q = IX(r->q, b, h, i, c->H, c->Nq, c->d), *g = IX(r->dout, b, h, i, c->H, c->Nq, c->dv);
                double mx = -INFINITY, l = 0;
                for (int j = 0; j < Nk; j++) {
                    const double *k = IX(r->k, b, hk, j, c->Hkv, Nk, c->d);
                    double s = 0;
                    for (int x = 0; x < c->d; x++) s += q[x] * k[x];
                    s *= r->scale;
                    if (r->bias) s += r->bias[(size_t)i * Nk + j];
                    p[j] = visible(r, b, i, j) ? s : -INFINITY;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < Nk; j++) l += (p[j] = mx == -INFINITY ? 0 : exp(p[j] - mx));
                for (int j = 0; j < Nk; j++) p[j] = l > 0 ? p[j] / l : 0;
                r->lse[((size_t)b * c->H + h) * c->Nq + i] = l > 0 ? mx + log(l) : -INFINITY;
                double *o = IX(r->O, b, h, i, c->H, c->Nq, c->dv), *to = IX(r->tO, b, h, i, c->H, c->Nq, c->dv);
                double delta = 0, edelta = 0;
                for (int x = 0; x < c->dv; x++) {
                    double acc = 0, ab = 0;
                    for (int j = 0; j < Nk; j++) {
                        double vv = IX(r->v, b, hk, j, c->Hkv, Nk, c->dv)[x];
                        acc += p[j] * vv, ab += p[j] * fabs(vv);
                    }
                    o[x] = acc, to[x] = 0x1p-8 * (ab + fabs(acc));
                    delta += g[x] * acc, edelta += fabs(g[x]) * to[x];
                }
                for (int j = 0; j < Nk; j++) {
                    const double *vv = IX(r->v, b, hk, j, c->Hkv, Nk, c->dv);
                    double s = 0;
                    for (int x = 0; x < c->dv; x++) s += g[x] * vv[x];
                    dp[j] = p[j] * (s - delta);
                    e[j] = 0x1p-8 * (fabs(dp[j]) + p[j] * (fabs(s) + fabs(delta))) + p[j] * edelta;
                }
                double *dq = IX(r->dQ, b, h, i, c->H, c->Nq, c->d), *tq = IX(r->tdQ, b, h, i, c->H, c->Nq, c->d);
                for (int x = 0; x < c->d; x++) {
                    double acc = 0, t = 0;
                    for (int j = 0; j < Nk; j++) {
                        double kk = IX(r->k, b, hk, j, c->Hkv, Nk, c->d)[x];
                        acc += dp[j] * kk, t += e[j] * fabs(kk);
                    }
                    dq[x] = r->scale * acc, tq[x] = fabs(r->scale) * t;
                }
                for (int j = 0; j < Nk; j++) {
                    double *dk = IX(r->dK, b, hk, j, c->Hkv, Nk, c->d), *tk = IX(r->tdK, b, hk, j, c->Hkv, Nk, c->d);
                    double *dv = IX(r->dV, b, hk, j, c->Hkv, Nk, c->dv), *tv = IX(r->tdV, b, hk, j, c->Hkv, Nk, c->dv);
                    for (int x = 0; x < c->d; x++) dk[x] += r->scale * dp[j] * q[x], tk[x] += fabs(r->scale) * e[j] * fabs(q[x]);
                    for (int x = 0; x < c->dv; x++) dv[x] += p[j] * g[x], tv[x] += 0x1p-8 * p[j] * fabs(g[x]);
                }
            }
        }
    free(p), free(dp), free(e);
}

/* |got - want| <= tol + 2^-8 |want| (storage) + 1e-5 for every element. */
static int close64(const char *what, const float *got, const double *want, const double *tol, size_t n, int storage) {
    size_t worst = 0;
    double wr = -1;
    for (size_t i = 0; i < n; i++) {
        double t = tol[i] + (storage ? 0x1p-8 * fabs(want[i]) : 0) + 1e-5, err = fabs(got[i] - want[i]);
        double rr = isnan(got[i]) ? INFINITY : err / t;
        if (want[i] == -INFINITY && got[i] == -INFINITY) rr = 0;
        if (rr > wr) wr = rr, worst = i;
    }
    CHECK(wr <= 1.0, "%s: element %zu got %.7g want %.7g (%.2f x tolerance)", what, worst, got[worst], want[worst], wr);
    return wr <= 1.0;
}

typedef struct {
    float *O, *lse, *dQ, *dK, *dV;
} outs;

static size_t nq_(const cfg *c, int d) { return (size_t)c->B * c->H * c->Nq * d; }
static size_t nk_(const cfg *c, int d) { return (size_t)c->B * c->Hkv * c->Nk * d; }

/* Runs forward and backward with storage (1: bf16 arrays, 0: fp32 arrays, bf16 compute) and
 * returns fp32 copies of the outputs. */
static int run(const cfg *c, const ref64 *r, int storage, outs *o) {
    attn_desc a = {.B = c->B, .H = c->H, .Hkv = c->Hkv, .Nq = c->Nq, .Nk = c->Nk, .dq = c->d, .dv = c->dv,
                   .score = ATTN_SCORE_SCALED, .scale = r->scale};
    a.mask.causal = c->causal, a.mask.window = c->window;
    if (c->keylen) a.mask.key_lengths = r->kl;
    if (r->bm) {
        a.mask.bool_mask = r->bm;
        a.mask.bool_strides[0] = (int64_t)c->Nq * c->Nk, a.mask.bool_strides[2] = c->Nk, a.mask.bool_strides[3] = 1;
    }
    if (r->bias) a.mask.bias = r->bias, a.mask.bias_strides[2] = c->Nk, a.mask.bias_strides[3] = 1;
    if (storage) a.dtype = ATTN_BF16;
    else a.compute = ATTN_BF16;
    size_t n[8] = {nq_(c, c->d), nk_(c, c->d), nk_(c, c->dv), nq_(c, c->dv), nq_(c, c->dv), nq_(c, c->d), nk_(c, c->d),
                   nk_(c, c->dv)};
    const double *src[5] = {r->q, r->k, r->v, NULL, r->dout};
    void *buf[8];
    size_t es = storage ? 2 : 4;
    for (int t = 0; t < 8; t++) {
        buf[t] = calloc(n[t], es);
        for (size_t i = 0; t < 5 && src[t] && i < n[t]; i++) {
            if (storage) ((uint16_t *)buf[t])[i] = r1((float)src[t][i]);
            else ((float *)buf[t])[i] = (float)src[t][i];
        }
    }
    o->lse = malloc(sizeof(float) * c->B * c->H * c->Nq);
    int st = attn_forward(&a, buf[0], buf[1], buf[2], buf[3], NULL, o->lse);
    if (!st) st = attn_backward(&a, buf[0], buf[1], buf[2], buf[3], o->lse, buf[4], buf[5], buf[6], buf[7], NULL);
    float **dst[5] = {&o->O, NULL, &o->dQ, &o->dK, &o->dV};
    int which[5] = {3, -1, 5, 6, 7};
    for (int t = 0; t < 5; t++) {
        if (!dst[t]) continue;
        size_t m = n[which[t]];
        *dst[t] = malloc(sizeof(float) * m);
        if (storage) attn_bf16_to_f32(buf[which[t]], *dst[t], m);
        else memcpy(*dst[t], buf[which[t]], sizeof(float) * m);
    }
    for (int t = 0; t < 8; t++) free(buf[t]);
    CHECK(st == 0, "bf16 attention failed: %s", attn_last_error());
    return st;
}

static void outs_free(outs *o) { free(o->O), free(o->lse), free(o->dQ), free(o->dK), free(o->dV); }

static int same_bits(const outs *x, const outs *y, const cfg *c) {
    return !memcmp(x->O, y->O, 4 * nq_(c, c->dv)) && !memcmp(x->lse, y->lse, 4 * (size_t)c->B * c->H * c->Nq) &&
           !memcmp(x->dQ, y->dQ, 4 * nq_(c, c->d)) && !memcmp(x->dK, y->dK, 4 * nk_(c, c->d)) &&
           !memcmp(x->dV, y->dV, 4 * nk_(c, c->dv));
}

static double *rounded(size_t n, uint64_t seed) {
    float *f = malloc(sizeof(float) * n);
    double *x = malloc(sizeof(double) * n);
    tu_randn(f, n, seed);
    for (size_t i = 0; i < n; i++) {
        uint16_t b = r1(f[i]);
        float y;
        attn_bf16_to_f32(&b, &y, 1);
        x[i] = y;
    }
    free(f);
    return x;
}

static void one_case(const cfg *c, const char *path, uint64_t seed) {
    ref64 r = {.c = *c};
    r.scale = 1.0f / sqrtf((float)c->d);
    r.q = rounded(nq_(c, c->d), seed), r.k = rounded(nk_(c, c->d), seed + 1);
    r.v = rounded(nk_(c, c->dv), seed + 2), r.dout = rounded(nq_(c, c->dv), seed + 3);
    for (int b = 0; b < c->B; b++) r.kl[b] = c->keylen == 2 && b == 1 ? 0 : c->Nk - (b * 7) % c->Nk;
    if (c->boolmask) {
        r.bm = malloc((size_t)c->B * c->Nq * c->Nk);
        for (size_t i = 0; i < (size_t)c->B * c->Nq * c->Nk; i++) r.bm[i] = (i * 2654435761u >> 7) % 5 != 0;
    }
    if (c->bias) {
        r.bias = malloc(sizeof(float) * c->Nq * c->Nk);
        tu_randn(r.bias, (size_t)c->Nq * c->Nk, seed + 4);
    }
    size_t sz[9] = {nq_(c, c->dv), (size_t)c->B * c->H * c->Nq, nq_(c, c->d), nk_(c, c->d), nk_(c, c->dv),
                    nq_(c, c->dv), nq_(c, c->d), nk_(c, c->d), nk_(c, c->dv)};
    double **dst[9] = {&r.O, &r.lse, &r.dQ, &r.dK, &r.dV, &r.tO, &r.tdQ, &r.tdK, &r.tdV};
    for (int t = 0; t < 9; t++) *dst[t] = calloc(sz[t], sizeof(double));
    reference(&r);
    double *tl = malloc(sizeof(double) * sz[1]);
    for (size_t i = 0; i < sz[1]; i++) tl[i] = 1e-5 * (1 + (isfinite(r.lse[i]) ? fabs(r.lse[i]) : 0));
    char what[160];
    for (int storage = 0; storage < 2; storage++) {
        outs o1, o2, oref;
        setenv("ATTN_BF16_ISA", path, 1);
        attn_set_threads(1);
        if (run(c, &r, storage, &o1)) continue;
        attn_set_threads(2);
        if (run(c, &r, storage, &o2)) continue;
        snprintf(what, sizeof what, "%s %s B%d H%d/%d N%d/%d d%d/%d causal%d window%d keylen%d bool%d bias%d", path,
                 storage ? "bf16" : "fp32+bf16", c->B, c->H, c->Hkv, c->Nq, c->Nk, c->d, c->dv, c->causal, c->window,
                 c->keylen, c->boolmask, c->bias);
        CHECK(same_bits(&o1, &o2, c), "%s: 1 and 2 threads differ", what);
        char w[200];
        snprintf(w, sizeof w, "%s O", what), close64(w, o1.O, r.O, r.tO, sz[0], storage);
        snprintf(w, sizeof w, "%s lse", what), close64(w, o1.lse, r.lse, tl, sz[1], 0);
        snprintf(w, sizeof w, "%s dQ", what), close64(w, o1.dQ, r.dQ, r.tdQ, sz[2], storage);
        snprintf(w, sizeof w, "%s dK", what), close64(w, o1.dK, r.dK, r.tdK, sz[3], storage);
        snprintf(w, sizeof w, "%s dV", what), close64(w, o1.dV, r.dV, r.tdV, sz[4], storage);
        if (strcmp(path, "ref") != 0) { /* the fast path against the reference path */
            setenv("ATTN_BF16_ISA", "ref", 1);
            if (!run(c, &r, storage, &oref)) {
                float *got[4] = {o1.O, o1.dQ, o1.dK, o1.dV}, *want[4] = {oref.O, oref.dQ, oref.dK, oref.dV};
                double *tol[4] = {r.tO, r.tdQ, r.tdK, r.tdV};
                const char *nm[4] = {"O", "dQ", "dK", "dV"};
                for (int t = 0; t < 4; t++) {
                    size_t m = sz[t == 0 ? 0 : t + 1], bad = m;
                    for (size_t i = 0; i < m && bad == m; i++)
                        if (!(fabs(got[t][i] - want[t][i]) <= 2 * (tol[t][i] + (storage ? 0x1p-8 * fabs(want[t][i]) : 0)) + 2e-5))
                            bad = i;
                    CHECK(bad == m, "%s: %s vs reference path at %zu: %g vs %g", what, nm[t], bad, bad < m ? got[t][bad] : 0.0,
                          bad < m ? want[t][bad] : 0.0);
                }
                outs_free(&oref);
            }
        }
        outs_free(&o1), outs_free(&o2);
    }
    free(tl);
    for (int t = 0; t < 9; t++) free(*dst[t]);
    free(r.q), free(r.k), free(r.v), free(r.dout), free(r.bm), free(r.bias);
}

static void test_path(const char *path) {
    static const cfg cases[] = {
        /* B H Hkv Nq Nk d dv causal window keylen bool bias */
        {1, 1, 1, 1, 1, 64, 64, 0, 0, 0, 0, 0},
        {1, 2, 1, 1, 65, 64, 64, 0, 0, 0, 0, 0},
        {1, 1, 1, 31, 31, 17, 17, 0, 0, 0, 0, 0},
        {1, 1, 1, 32, 63, 1, 3, 0, 0, 0, 0, 0},
        {1, 1, 1, 33, 64, 64, 64, 1, 0, 0, 0, 0},
        {2, 4, 2, 65, 65, 64, 64, 1, 0, 0, 0, 0},
        {1, 2, 2, 64, 33, 128, 128, 0, 0, 1, 0, 0},
        {2, 2, 1, 63, 130, 32, 48, 0, 0, 1, 1, 0},
        {1, 3, 1, 130, 130, 64, 64, 1, 0, 0, 0, 1},
        {1, 2, 2, 97, 97, 64, 64, 0, 20, 0, 0, 0},
        {1, 1, 1, 7, 129, 33, 31, 0, 0, 0, 0, 1},
        {1, 2, 1, 20, 600, 64, 64, 0, 0, 0, 0, 0},   /* key ranges split (fused backward, dQ summed) */
        {2, 2, 1, 530, 530, 16, 16, 1, 0, 2, 0, 0}, /* keylen 2: batch 1 sees no key (zero output) */
        /* decoding (few rows, bf16 storage: the decode kernel), key ranges split and merged */
        {2, 8, 2, 5, 1100, 64, 32, 0, 0, 1, 0, 0},
        {1, 4, 4, 1, 2000, 128, 128, 0, 0, 0, 1, 1},
        {1, 2, 1, 3, 50, 32, 16, 1, 0, 0, 0, 0},
        {2, 2, 2, 1, 17, 32, 16, 0, 0, 2, 0, 0},
        /* unmasked decoding on the f32 route: K and V widened 256 keys at a time (odd sizes) */
        {1, 6, 2, 2, 700, 40, 24, 0, 0, 0, 0, 0},
        {1, 4, 1, 1, 1300, 64, 64, 0, 0, 0, 0, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) one_case(&cases[t], path, 100 + 10 * t);
}

/* A plan called twice, and the one-shot calls, give the same bits; a backward without the
 * forward's lse recomputes it and gives the same bits too (bf16 storage, strided Q view). */
static void test_plan_and_lse(void) {
    enum { B = 1, H = 2, N = 45, D = 20 };
    size_t n = (size_t)B * H * N * D;
    float f[4][B * H * N * D];
    uint16_t x[4][B * H * N * D], qv[B * N * H * D * 2], o[3][B * H * N * D], g[2][3][B * H * N * D];
    for (int t = 0; t < 4; t++) tu_randn(f[t], n, 900 + t), attn_f32_to_bf16(f[t], x[t], n);
    /* Q as a (B, N, H, 2D) view holding (B, H, N, D) in its first D of each row */
    for (int h = 0; h < H; h++)
        for (int i = 0; i < N; i++) memcpy(qv + ((size_t)i * H + h) * 2 * D, x[0] + ((size_t)h * N + i) * D, D * 2);
    attn_desc a = {.B = B, .H = H, .Nq = N, .Nk = N, .dq = D, .score = ATTN_SCORE_SCALED, .dtype = ATTN_BF16};
    a.mask.causal = 1;
    attn_desc av = a;
    av.q_strides[0] = (int64_t)N * H * 2 * D, av.q_strides[1] = 2 * D, av.q_strides[2] = (int64_t)H * 2 * D;
    float lse[B * H * N];
    attn_plan *pl = NULL;
    CHECK(attn_plan_new(&av, &pl) == 0, "plan: %s", attn_last_error());
    int st = attn_plan_forward(pl, (float *)qv, (float *)x[1], (float *)x[2], (float *)o[0], NULL, lse);
    st |= attn_plan_forward(pl, (float *)qv, (float *)x[1], (float *)x[2], (float *)o[1], NULL, NULL);
    st |= attn_forward(&a, (float *)x[0], (float *)x[1], (float *)x[2], (float *)o[2], NULL, NULL);
    CHECK(st == 0 && !memcmp(o[0], o[1], sizeof o[0]) && !memcmp(o[0], o[2], sizeof o[0]),
          "plan calls and the strided view differ from the one-shot call");
    for (int r = 0; r < 2; r++)
        st |= attn_plan_backward(pl, (float *)qv, (float *)x[1], (float *)x[2], (float *)o[0], r ? NULL : lse,
                                 (float *)x[3], (float *)g[r][0], (float *)g[r][1], (float *)g[r][2], NULL);
    CHECK(st == 0 && !memcmp(g[0], g[1], sizeof g[0]), "the backward without lse differs from the one with it");
    CHECK(attn_plan_backward(pl, (float *)qv, (float *)x[1], (float *)x[2], (float *)o[0], lse, NULL, NULL, NULL, NULL,
                             NULL) == ATTN_EINVAL, "NULL dO accepted");
    attn_plan_free(pl);
}

/* What the bf16 path refuses, with a message and no crash. */
static void test_refusals(void) {
    float x[64] = {0}, o[64];
    attn_desc a = {.B = 1, .H = 1, .Nq = 2, .Nk = 2, .dq = 4, .score = ATTN_SCORE_COSINE, .compute = ATTN_BF16};
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("bf16"), "cosine refused");
    a.score = ATTN_SCORE_SCALED;
    float P[4];
    CHECK(attn_forward(&a, x, x, x, o, P, NULL) == ATTN_EINVAL && tu_err_has("weights"), "P refused");
    attn_mods m = {0};
    a.mods = &m;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL && tu_err_has("attn_mods"), "mods refused");
    a.mods = NULL, a.compute = ATTN_F16;
    CHECK(attn_forward(&a, x, x, x, o, NULL, NULL) == ATTN_EINVAL, "unknown compute type refused");
    a.compute = ATTN_BF16;
    float S[4];
    CHECK(attn_scores(&a, x, x, S) == ATTN_EINVAL && tu_err_has("bf16"), "the steps refuse bf16");
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : NULL;
    if (path && strcmp(path, "rounding") == 0) {
        test_rounding();
        return tu_summary("test_attention_bf16 rounding");
    }
    if (path && !attn__bf16_kern_named(path)) {
        printf("test_attention_bf16: the %s path is not built or this CPU lacks it: skipped\n", path);
        return TU_SKIP;
    }
    if (!path) test_rounding(), test_refusals();
    if (path) setenv("ATTN_BF16_ISA", path, 1);
    test_plan_and_lse();
    test_path(path ? path : "ref");
    return tu_summary("test_attention_bf16");
}
