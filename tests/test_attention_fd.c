/* Gradients of the attention function against central finite differences.
 *
 * For each case the test builds a small random problem, then
 *  (a) runs an independent double-precision forward written here with plain loops (every
 *      score, every mask, grouped heads) and checks that the library's float forward (O, P,
 *      lse) agrees with it to ~1e-5;
 *  (b) takes L = sum(O * dO) for a random dO and checks every analytic float gradient of the
 *      library (dQ, dK, dV, and the score parameters: W; Wa, ba, Ua, bu, va, bv) against
 *      central differences (L(x + eps) - L(x - eps)) / 2 eps of the double forward, eps 1e-6,
 *      at ~1e-4 relative.
 * The double forward is evaluated at the float inputs widened to double, so both sides look at
 * the same point. Not here: comparisons with PyTorch (test_attention_ref.c) and the
 * structural properties (test_attention_props.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "testutil.h"

enum { T_Q, T_K, T_V, T_W, T_WA, T_BA, T_UA, T_BU, T_VA, T_BV, NT };
static const char *const TNAME[NT] = {"dQ", "dK", "dV", "dW", "dWa", "dba", "dUa", "dbu", "dva", "dbv"};

typedef struct {
    const char *name;
    attn_score score;
    int B, H, Hkv, Nq, Nk, dq, dk, dv, A;
    float scale; /* 0 = default */
    int causal, window;
    int kl;      /* per-batch key lengths: Nk, 2, 0, ... */
    int bm[4];   /* bool mask shape (broadcast to B, H, Nq, Nk); all 0 = none */
    int bs[4];   /* bias shape, likewise */
    int no_lse;  /* give attn_backward lse = NULL (recomputed) */
} fdcase;

typedef struct {
    fdcase c;
    int G;
    float *f[NT];      /* library inputs (float) */
    double *d[NT];     /* the same values, double, perturbed by the finite differences */
    size_t n[NT];      /* element counts (0 = unused) */
    float *dO;         /* (B, H, Nq, dv) */
    int32_t kl[8];
    uint8_t *bmask;    /* library bool mask, its shape */
    int64_t bm_str[4];
    float *bias;       /* library bias, its shape */
    int64_t bias_str[4];
} problem;

static size_t prod4(const int s[4]) { return (size_t)s[0] * s[1] * s[2] * s[3]; }

/* ------------------------------------------------------------------------------------------
 * The independent double-precision forward. */

static double ddot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (int c = 0; c < n; c++) s += a[c] * b[c];
    return s;
}

static int ref_visible(const problem *p, int b, int h, int i, int j) {
    const fdcase *c = &p->c;
    if (c->kl && j >= p->kl[b]) return 0;
    if ((c->causal || c->window) && j > i) return 0;
    if (c->window && j <= i - c->window) return 0;
    if (p->bmask) {
        const int64_t *s = p->bm_str;
        if (!p->bmask[b * s[0] + h * s[1] + i * s[2] + j * s[3]]) return 0;
    }
    return 1;
}

static double ref_bias(const problem *p, int b, int h, int i, int j) {
    if (!p->bias) return 0.0;
    const int64_t *s = p->bias_str;
    return p->bias[b * s[0] + h * s[1] + i * s[2] + j * s[3]];
}

static double ref_score(const problem *p, int b, int h, int i, int j) {
    const fdcase *c = &p->c;
    const double *q = p->d[T_Q] + (((size_t)b * c->H + h) * c->Nq + i) * c->dq;
    const double *k = p->d[T_K] + (((size_t)b * c->Hkv + h / p->G) * c->Nk + j) * c->dk;
    double scale = c->scale;
    switch (c->score) {
    case ATTN_SCORE_DOT:
        return ddot(q, k, c->dq) * (scale ? scale : 1.0);
    case ATTN_SCORE_SCALED:
        return ddot(q, k, c->dq) * (scale ? scale : 1.0 / sqrt((double)c->dq));
    case ATTN_SCORE_COSINE: {
        double nq = fmax(sqrt(ddot(q, q, c->dq)), 1e-12), nk = fmax(sqrt(ddot(k, k, c->dk)), 1e-12);
        return ddot(q, k, c->dq) / (nq * nk) * (scale ? scale : 1.0);
    }
    case ATTN_SCORE_GENERAL: {
        double s = 0.0;
        for (int a = 0; a < c->dq; a++) s += q[a] * ddot(p->d[T_W] + (size_t)a * c->dk, k, c->dk);
        return s * (scale ? scale : 1.0);
    }
    case ATTN_SCORE_ADDITIVE: {
        double s = p->d[T_BV][0];
        for (int a = 0; a < c->A; a++)
            s += p->d[T_VA][a] * tanh(ddot(p->d[T_WA] + (size_t)a * c->dq, q, c->dq) + p->d[T_BA][a] +
                                      ddot(p->d[T_UA] + (size_t)a * c->dk, k, c->dk) + p->d[T_BU][a]);
        return s;
    }
    }
    return NAN;
}

/* O (B, H, Nq, dv), P (B, H, Nq, Nk) or NULL, lse (B, H, Nq) or NULL. */
static void ref_forward(const problem *p, double *O, double *P, double *lse) {
    const fdcase *c = &p->c;
    double *s = malloc(sizeof(double) * c->Nk);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Nq; i++) {
                size_t row = ((size_t)b * c->H + h) * c->Nq + i;
                double m = -INFINITY, sum = 0.0;
                for (int j = 0; j < c->Nk; j++) {
                    s[j] = ref_visible(p, b, h, i, j) ? ref_score(p, b, h, i, j) + ref_bias(p, b, h, i, j) : -INFINITY;
                    if (s[j] > m) m = s[j];
                }
                for (int j = 0; j < c->Nk; j++) {
                    s[j] = m == -INFINITY || s[j] == -INFINITY ? 0.0 : exp(s[j] - m);
                    sum += s[j];
                }
                double *o = O + row * c->dv;
                memset(o, 0, sizeof(double) * c->dv);
                for (int j = 0; j < c->Nk; j++) {
                    if (sum > 0) s[j] /= sum;
                    const double *v = p->d[T_V] + (((size_t)b * c->Hkv + h / p->G) * c->Nk + j) * c->dv;
                    for (int e = 0; e < c->dv; e++) o[e] += s[j] * v[e];
                    if (P) P[row * c->Nk + j] = s[j];
                }
                if (lse) lse[row] = sum > 0 ? m + log(sum) : -INFINITY;
            }
    free(s);
}

static double ref_loss(const problem *p, double *O) {
    const fdcase *c = &p->c;
    ref_forward(p, O, NULL, NULL);
    size_t n = (size_t)c->B * c->H * c->Nq * c->dv;
    double L = 0.0;
    for (size_t e = 0; e < n; e++) L += O[e] * p->dO[e];
    return L;
}

/* ------------------------------------------------------------------------------------------
 * Problems. */

static void fill(problem *p, int t, size_t n, uint64_t seed, float scale) {
    p->n[t] = n;
    p->f[t] = malloc(n * sizeof(float));
    p->d[t] = malloc(n * sizeof(double));
    tu_randn(p->f[t], n, seed);
    for (size_t e = 0; e < n; e++) p->d[t][e] = p->f[t][e] *= scale;
}

static void problem_init(problem *p, const fdcase *c, uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->c = *c;
    fdcase *cc = &p->c;
    if (!cc->Hkv) cc->Hkv = cc->H;
    if (!cc->dk) cc->dk = cc->dq;
    if (!cc->dv) cc->dv = cc->dk;
    p->G = cc->H / cc->Hkv;
    fill(p, T_Q, (size_t)cc->B * cc->H * cc->Nq * cc->dq, seed + 1, 1.0f);
    fill(p, T_K, (size_t)cc->B * cc->Hkv * cc->Nk * cc->dk, seed + 2, 1.0f);
    fill(p, T_V, (size_t)cc->B * cc->Hkv * cc->Nk * cc->dv, seed + 3, 1.0f);
    if (cc->score == ATTN_SCORE_GENERAL) fill(p, T_W, (size_t)cc->dq * cc->dk, seed + 4, 0.7f);
    if (cc->score == ATTN_SCORE_ADDITIVE) {
        fill(p, T_WA, (size_t)cc->A * cc->dq, seed + 5, 0.6f);
        fill(p, T_BA, (size_t)cc->A, seed + 6, 0.3f);
        fill(p, T_UA, (size_t)cc->A * cc->dk, seed + 7, 0.6f);
        fill(p, T_BU, (size_t)cc->A, seed + 8, 0.3f);
        fill(p, T_VA, (size_t)cc->A, seed + 9, 1.0f);
        fill(p, T_BV, 1, seed + 10, 1.0f);
    }
    size_t no = (size_t)cc->B * cc->H * cc->Nq * cc->dv;
    p->dO = malloc(no * sizeof(float));
    tu_randn(p->dO, no, seed + 11);
    for (int b = 0; b < cc->B; b++) p->kl[b] = b == 0 ? cc->Nk : b == 1 ? 2 : 0;
    const int64_t target[4] = {cc->B, cc->H, cc->Nq, cc->Nk};
    attn_rng r;
    attn_rng_seed(&r, seed + 12);
    if (cc->bm[0]) {
        size_t n = prod4(cc->bm);
        p->bmask = malloc(n);
        for (size_t e = 0; e < n; e++) /* nonzero = visible, any nonzero value */
            p->bmask[e] = attn_rng_uniform(&r) < 0.7f ? (uint8_t)(1 + attn_rng_u32(&r) % 255) : 0;
        /* The first row (of the first batch and head) sees nothing. */
        memset(p->bmask + (cc->bm[2] > 1 ? cc->bm[3] : 0), 0, (size_t)cc->bm[3]);
        int64_t shape[4] = {cc->bm[0], cc->bm[1], cc->bm[2], cc->bm[3]};
        CHECK(attn_broadcast_strides(shape, 4, target, p->bm_str) == ATTN_OK, "%s: bool mask strides", cc->name);
    }
    if (cc->bs[0]) {
        size_t n = prod4(cc->bs);
        p->bias = malloc(n * sizeof(float));
        tu_randn(p->bias, n, seed + 13);
        for (size_t e = 0; e < n; e++)
            if (attn_rng_uniform(&r) < 0.2f) p->bias[e] = -INFINITY;
        /* The last query row of the first (batch, head) is hidden by the bias alone. */
        for (int j = 0; j < cc->bs[3]; j++) p->bias[(size_t)(cc->bs[2] - 1) * cc->bs[3] + j] = -INFINITY;
        int64_t shape[4] = {cc->bs[0], cc->bs[1], cc->bs[2], cc->bs[3]};
        CHECK(attn_broadcast_strides(shape, 4, target, p->bias_str) == ATTN_OK, "%s: bias strides", cc->name);
    }
}

static void problem_free(problem *p) {
    for (int t = 0; t < NT; t++) free(p->f[t]), free(p->d[t]);
    free(p->dO);
    free(p->bmask);
    free(p->bias);
}

static attn_desc desc_of(const problem *p, attn_score_params *prm) {
    const fdcase *c = &p->c;
    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = c->B, a.H = c->H, a.Hkv = c->Hkv, a.Nq = c->Nq, a.Nk = c->Nk;
    a.dq = c->dq, a.dk = c->dk, a.dv = c->dv;
    a.score = c->score;
    a.scale = c->scale;
    memset(prm, 0, sizeof *prm);
    prm->W = p->f[T_W];
    prm->A = c->A;
    prm->Wa = p->f[T_WA], prm->ba = p->f[T_BA], prm->Ua = p->f[T_UA];
    prm->bu = p->f[T_BU], prm->va = p->f[T_VA], prm->bv = p->f[T_BV];
    a.params = prm;
    a.mask.causal = c->causal;
    a.mask.window = c->window;
    a.mask.key_lengths = c->kl ? p->kl : NULL;
    a.mask.bool_mask = p->bmask;
    memcpy(a.mask.bool_strides, p->bm_str, sizeof p->bm_str);
    a.mask.bias = p->bias;
    memcpy(a.mask.bias_strides, p->bias_str, sizeof p->bias_str);
    return a;
}

static int all_finite(const float *x, size_t n) {
    for (size_t e = 0; e < n; e++)
        if (!isfinite(x[e])) return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */

static void run_case(const fdcase *c, uint64_t seed) {
    problem p;
    problem_init(&p, c, seed);
    const fdcase *pc = &p.c;
    attn_score_params prm, dprm;
    attn_desc a = desc_of(&p, &prm);
    size_t no = (size_t)pc->B * pc->H * pc->Nq * pc->dv, np = (size_t)pc->B * pc->H * pc->Nq * pc->Nk;
    size_t nl = (size_t)pc->B * pc->H * pc->Nq;
    float *O = malloc(no * sizeof(float)), *P = malloc(np * sizeof(float)), *lse = malloc(nl * sizeof(float));
    double *Od = malloc(no * sizeof(double)), *Pd = malloc(np * sizeof(double)), *lsed = malloc(nl * sizeof(double));
    char what[160];

    /* (a) the float forward against the double forward. */
    int st = attn_forward(&a, p.f[T_Q], p.f[T_K], p.f[T_V], O, P, lse);
    CHECK(st == ATTN_OK, "%s: attn_forward: %s", pc->name, attn_last_error());
    ref_forward(&p, Od, Pd, lsed);
    double *tmp = malloc(sizeof(double) * (np > no ? np : no));
    for (size_t e = 0; e < no; e++) tmp[e] = O[e];
    snprintf(what, sizeof what, "%s: O vs double forward", pc->name);
    tu_close_d(what, tmp, Od, no, 1e-5, 1e-6);
    for (size_t e = 0; e < np; e++) tmp[e] = P[e];
    snprintf(what, sizeof what, "%s: P vs double forward", pc->name);
    tu_close_d(what, tmp, Pd, np, 1e-5, 1e-6);
    for (size_t e = 0; e < nl; e++) tmp[e] = lse[e];
    snprintf(what, sizeof what, "%s: lse vs double forward", pc->name);
    tu_close_d(what, tmp, lsed, nl, 1e-5, 1e-6);
    free(tmp);

    /* (b) analytic gradients. dQ, dK, dV start as NaN (they must be overwritten); parameter
     * gradients start at 0 (they are accumulated). */
    float *g[NT] = {0};
    for (int t = 0; t < NT; t++) {
        if (!p.n[t]) continue;
        g[t] = malloc(p.n[t] * sizeof(float));
        for (size_t e = 0; e < p.n[t]; e++) g[t][e] = t <= T_V ? NAN : 0.0f;
    }
    memset(&dprm, 0, sizeof dprm);
    dprm.A = pc->A;
    dprm.W = g[T_W], dprm.Wa = g[T_WA], dprm.ba = g[T_BA], dprm.Ua = g[T_UA];
    dprm.bu = g[T_BU], dprm.va = g[T_VA], dprm.bv = g[T_BV];
    st = attn_backward(&a, p.f[T_Q], p.f[T_K], p.f[T_V], O, pc->no_lse ? NULL : lse, p.dO, g[T_Q], g[T_K], g[T_V], &dprm);
    CHECK(st == ATTN_OK, "%s: attn_backward: %s", pc->name, attn_last_error());

    const double eps = 1e-6;
    for (int t = 0; t < NT; t++) {
        if (!p.n[t]) continue;
        snprintf(what, sizeof what, "%s: %s finite", pc->name, TNAME[t]);
        CHECK(all_finite(g[t], p.n[t]), "%s", what);
        double *fd = malloc(p.n[t] * sizeof(double)), *an = malloc(p.n[t] * sizeof(double)), big = 1.0;
        for (size_t e = 0; e < p.n[t]; e++) {
            double x = p.d[t][e];
            p.d[t][e] = x + eps;
            double Lp = ref_loss(&p, Od);
            p.d[t][e] = x - eps;
            double Lm = ref_loss(&p, Od);
            p.d[t][e] = x;
            fd[e] = (Lp - Lm) / (2 * eps);
            an[e] = g[t][e];
            if (fabs(fd[e]) > big) big = fabs(fd[e]);
        }
        snprintf(what, sizeof what, "%s: %s vs finite differences", pc->name, TNAME[t]);
        tu_close_d(what, an, fd, p.n[t], 1e-4, 2e-6 * big);
        free(fd);
        free(an);
    }
    for (int t = 0; t < NT; t++) free(g[t]);
    free(O), free(P), free(lse), free(Od), free(Pd), free(lsed);
    problem_free(&p);
}

#define S(x) ATTN_SCORE_##x
static const fdcase CASES[] = {
    /* name                      score        B  H Hkv Nq Nk dq dk dv A  scale causal win kl  bool mask      bias */
    {"dot",                      S(DOT),      2, 2, 0, 5, 7, 3, 0, 2, 0, 0.0f, 0, 0, 0, {0}, {0}, 0},
    {"dot_scale_causal",         S(DOT),      2, 2, 0, 5, 7, 3, 0, 2, 0, 0.5f, 1, 0, 0, {0}, {0}, 1},
    {"scaled",                   S(SCALED),   2, 2, 0, 6, 6, 4, 0, 3, 0, 0.0f, 0, 0, 0, {0}, {0}, 0},
    {"scaled_d1_n1",             S(SCALED),   1, 1, 0, 1, 1, 1, 0, 1, 0, 0.0f, 0, 0, 0, {0}, {0}, 0},
    {"scaled_causal_nq_gt_nk",   S(SCALED),   2, 1, 0, 7, 4, 3, 0, 2, 0, 0.0f, 1, 0, 0, {0}, {0}, 0},
    {"scaled_window2",           S(SCALED),   1, 2, 0, 7, 7, 3, 0, 2, 0, 0.0f, 0, 2, 0, {0}, {0}, 1},
    {"scaled_key_lengths",       S(SCALED),   3, 2, 0, 5, 6, 3, 0, 2, 0, 0.0f, 0, 0, 1, {0}, {0}, 0},
    {"scaled_bool_bias",         S(SCALED),   2, 2, 0, 5, 6, 3, 0, 2, 0, 0.0f, 0, 0, 0, {2, 2, 5, 6}, {1, 1, 5, 6}, 0},
    {"scaled_combo",             S(SCALED),   2, 2, 0, 6, 6, 3, 0, 2, 0, 0.0f, 1, 0, 1, {2, 1, 1, 6}, {1, 2, 6, 6}, 1},
    {"scaled_grouped_kv2",       S(SCALED),   2, 4, 2, 5, 6, 3, 0, 2, 0, 0.0f, 1, 0, 0, {0}, {0}, 0},
    {"dot_grouped_kv1_window",   S(DOT),      1, 4, 1, 6, 6, 3, 0, 2, 0, 0.0f, 0, 3, 0, {0}, {0}, 0},
    {"cosine",                   S(COSINE),   2, 2, 0, 5, 7, 3, 0, 2, 0, 0.0f, 0, 0, 0, {0}, {0}, 0},
    {"cosine_scale_window",      S(COSINE),   1, 2, 0, 6, 6, 4, 0, 3, 0, 3.0f, 0, 2, 0, {0}, {0}, 1},
    {"cosine_grouped_kv2_len",   S(COSINE),   3, 4, 2, 5, 6, 3, 0, 2, 0, 0.0f, 0, 0, 1, {0}, {1, 4, 5, 6}, 0},
    {"general",                  S(GENERAL),  2, 2, 0, 5, 7, 3, 4, 2, 0, 0.0f, 0, 0, 0, {0}, {0}, 0},
    {"general_scale_kv1_bool",   S(GENERAL),  2, 4, 1, 5, 6, 4, 3, 2, 0, 0.5f, 0, 0, 0, {1, 4, 5, 6}, {0}, 1},
    {"general_grouped_causal",   S(GENERAL),  1, 4, 2, 6, 6, 3, 0, 3, 0, 0.0f, 1, 0, 1, {0}, {0}, 0},
    {"additive",                 S(ADDITIVE), 2, 2, 0, 5, 7, 3, 4, 2, 5, 0.0f, 0, 0, 0, {0}, {0}, 0},
    {"additive_grouped_causal",  S(ADDITIVE), 2, 4, 2, 5, 6, 3, 0, 2, 4, 0.0f, 1, 0, 0, {0}, {2, 4, 5, 6}, 0},
    {"additive_kv1_len_bool",    S(ADDITIVE), 3, 2, 1, 5, 6, 2, 3, 2, 3, 0.0f, 0, 0, 1, {3, 2, 5, 6}, {0}, 1},
    {"additive_window_nq_gt_nk", S(ADDITIVE), 1, 1, 0, 7, 4, 3, 0, 2, 4, 0.0f, 0, 2, 0, {0}, {0}, 0},
};

int main(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(&CASES[i], 1000 + 100 * i);
    return tu_summary("test_attention_fd");
}
