/* Decoding shapes on every instruction-set path this CPU runs: a few query rows (1 to 25:
 * around the row path's limit, ROWS_MAX, which is 24 on avx512 and 12 on avx2) against keys
 * around the row path's chunk of 4 vectors (RK = 64 on avx512, 32 on avx2) and long enough
 * that attn_forward splits them into key ranges and merges them (fwd_part), with grouped
 * heads; unmasked, causal aligned bottom-right (each row sees a different number of keys, as
 * a beam or chunked prefill against a cache does), and a sliding window (rows that start at
 * different keys). Unmasked, the G query heads of a group go through the keys as the G * Nq
 * rows of one head (attn_forward folds them). Checked against a double-precision reference (O and the log-sum-exp), and
 * bitwise identical for 1, 2 and 3 threads. No timing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

static const char *const ISAS[] = {"ref", "avx2", "avx512"};

typedef struct {
    int B, H, Hkv, Nq, Nk, d, causal, window;
} dcase;

/* The reference: O (B, H, Nq, d), lse (B, H, Nq) in double. */
static void reference(const dcase *c, const float *Q, const float *K, const float *V, double *O, double *lse) {
    int G = c->H / c->Hkv, off = c->Nk - c->Nq;
    double *s = malloc((size_t)c->Nk * sizeof *s);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Nq; i++) {
                const float *q = Q + (((size_t)b * c->H + h) * c->Nq + i) * c->d;
                const float *k = K + ((size_t)b * c->Hkv + h / G) * c->Nk * c->d, *v = V + ((size_t)b * c->Hkv + h / G) * c->Nk * c->d;
                double m = -INFINITY, l = 0;
                for (int j = 0; j < c->Nk; j++) {
                    int seen = !(c->causal || c->window) || j <= i + off;
                    if (c->window) seen = seen && j > i + off - c->window;
                    s[j] = -INFINITY;
                    if (!seen) continue;
                    double dot = 0;
                    for (int e = 0; e < c->d; e++) dot += (double)q[e] * k[(size_t)j * c->d + e];
                    s[j] = dot / sqrt((double)c->d);
                    m = s[j] > m ? s[j] : m;
                }
                double *o = O + (((size_t)b * c->H + h) * c->Nq + i) * c->d;
                memset(o, 0, (size_t)c->d * sizeof *o);
                for (int j = 0; j < c->Nk; j++) {
                    if (s[j] == -INFINITY) continue;
                    double p = exp(s[j] - m);
                    l += p;
                    for (int e = 0; e < c->d; e++) o[e] += p * v[(size_t)j * c->d + e];
                }
                for (int e = 0; e < c->d; e++) o[e] /= l;
                lse[((size_t)b * c->H + h) * c->Nq + i] = m + log(l);
            }
    free(s);
}

static int run(const dcase *c, const float *Q, const float *K, const float *V, float *O, float *lse) {
    attn_desc a = {0};
    a.B = c->B, a.H = c->H, a.Hkv = c->Hkv, a.Nq = c->Nq, a.Nk = c->Nk, a.dq = c->d;
    a.score = ATTN_SCORE_SCALED;
    a.mask.causal = c->causal || c->window, a.mask.window = c->window;
    attn_mods mods = {0};
    mods.causal_align = ATTN_ALIGN_BOTTOM_RIGHT;
    a.mods = c->causal || c->window ? &mods : NULL; /* unmasked: no attn_mods, so the group's heads fold */
    return attn_forward(&a, Q, K, V, O, NULL, lse);
}

static void check_case(const dcase *c, const char *isa, uint64_t seed) {
    size_t nq = (size_t)c->B * c->H * c->Nq, nk = (size_t)c->B * c->Hkv * c->Nk * c->d;
    float *Q = malloc(nq * c->d * sizeof *Q), *K = malloc(nk * sizeof *K), *V = malloc(nk * sizeof *V);
    tu_randn(Q, nq * c->d, seed), tu_randn(K, nk, seed + 1), tu_randn(V, nk, seed + 2);
    double *O = malloc(nq * c->d * sizeof *O), *L = malloc(nq * sizeof *L);
    reference(c, Q, K, V, O, L);
    float *o[3], *l[3];
    char what[200];
    snprintf(what, sizeof what, "[%s] B%d H%d/%d Nq%d Nk%d d%d%s%s", isa, c->B, c->H, c->Hkv, c->Nq, c->Nk, c->d,
             c->causal ? " causal" : "", c->window ? " window" : "");
    for (int t = 0; t < 3; t++) {
        o[t] = malloc(nq * c->d * sizeof(float)), l[t] = malloc(nq * sizeof(float));
        attn_set_threads(t + 1);
        int st = run(c, Q, K, V, o[t], l[t]);
        CHECK(st == ATTN_OK, "%s: attn_forward failed: %s", what, attn_last_error());
    }
    double *of = malloc(nq * c->d * sizeof *of), *lf = malloc(nq * sizeof *lf);
    for (size_t x = 0; x < nq * c->d; x++) of[x] = o[0][x];
    for (size_t x = 0; x < nq; x++) lf[x] = l[0][x];
    char w2[240];
    snprintf(w2, sizeof w2, "%s O", what);
    tu_close_d(w2, of, O, nq * c->d, 1e-4, 2e-5);
    snprintf(w2, sizeof w2, "%s lse", what);
    tu_close_d(w2, lf, L, nq, 1e-5, 2e-5);
    for (int t = 1; t < 3; t++) {
        CHECK(!memcmp(o[t], o[0], nq * c->d * sizeof(float)), "%s: O with %d threads differs from 1 thread", what, t + 1);
        CHECK(!memcmp(l[t], l[0], nq * sizeof(float)), "%s: lse with %d threads differs from 1 thread", what, t + 1);
    }
    for (int t = 0; t < 3; t++) free(o[t]), free(l[t]);
    free(Q), free(K), free(V), free(O), free(L), free(of), free(lf);
}

int main(void) {
    static const int nqs[] = {1, 2, 4, 5, 8, 9, 12, 13, 24, 25}, nks[] = {1, 31, 33, 64, 65, 129, 600, 1031}, ds[] = {1, 7, 64, 100};
    int paths = 0;
    for (int s = 0; s < 3; s++) {
        if (attn_set_isa(ISAS[s])) continue;
        paths++;
        uint64_t seed = 1;
        for (size_t iq = 0; iq < sizeof nqs / sizeof *nqs; iq++)
            for (size_t ik = 0; ik < sizeof nks / sizeof *nks; ik++)
                for (size_t id = 0; id < sizeof ds / sizeof *ds; id++)
                    for (int mask = 0; mask < 3; mask++) {
                        dcase c = {1, 6, 2, nqs[iq], nks[ik], ds[id], mask == 1, mask == 2 ? 40 : 0};
                        if (c.Nq > c.Nk) continue;
                        if (ds[id] == 100 && nks[ik] < 600) c.B = 2; /* another batch row too */
                        check_case(&c, ISAS[s], seed += 7);
                    }
    }
    CHECK(paths >= 1, "no instruction-set path ran");
    attn_set_threads(2);
    return tu_summary("test_decode_rows");
}
