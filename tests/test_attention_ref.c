/* The attention function against PyTorch: every case of tests/data/attention/cases.txt
 * (written by tools/gen_attention_refs.py in float64 from float32 inputs) is run through
 * attn_forward and attn_backward, and the output, the weights, the log-sum-exp and every
 * gradient (dQ, dK, dV, and dW or dWa, dba, dUa, dbu, dva, dbv) are compared with the files.
 *
 * Tolerance, per case from the manifest: |got - want| <= rtol |want| + atol max(1, max|want|)
 * elementwise (an absolute floor that scales with the array). The large-logit cases ("big")
 * have a looser tolerance, since a float32 logit of 1e4 is only known to ~1e-3, and are also
 * required to be finite everywhere and to put each row's largest weight on the reference's
 * argmax. Python is never needed at run time.
 *
 * attn_weights (the weights recomputed from Q, K and the forward's log-sum-exp) is checked on
 * every case too: against PyTorch's weights with the same tolerance, and bitwise against the
 * forward's P, for all heads and rows and for a few heads (out of order) and a range of rows.
 * Every case runs on every instruction set this CPU has (ref, avx2, avx512).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attention.h"
#include "attn/io.h"
#include "testutil.h"

#define DIR "data/attention"

typedef struct {
    char name[128], score[32];
    int causal, window, big;
    float scale;
    double rtol, atol;
} refcase;

static int exists(const refcase *c, const char *file) {
    char path[512];
    snprintf(path, sizeof path, DIR "/%s/%s.npy", c->name, file);
    return access(path, R_OK) == 0;
}

/* Loads DIR/case/file.npy, checking its dtype; returns 1 on success. */
static int load(const refcase *c, const char *file, attn_dtype dt, attn_array *a) {
    char path[512];
    snprintf(path, sizeof path, DIR "/%s/%s.npy", c->name, file);
    int st = attn_npy_load(path, a);
    CHECK(st == ATTN_OK, "%s: %s", path, attn_last_error());
    if (st != ATTN_OK) return 0;
    CHECK(a->dtype == dt, "%s: dtype %s, expected %s", path, attn_dtype_name(a->dtype), attn_dtype_name(dt));
    return a->dtype == dt;
}

static double max_abs_d(const double *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* Compares float got (n) with the expected file of the case. */
static void compare(const refcase *c, const char *file, const float *got, size_t n) {
    attn_array want = {0};
    if (!load(c, file, ATTN_F64, &want)) return;
    char what[256];
    snprintf(what, sizeof what, "%s: %s", c->name, file);
    CHECK((size_t)attn_array_numel(&want) == n, "%s: %lld elements, expected %zu", what, (long long)attn_array_numel(&want), n);
    if ((size_t)attn_array_numel(&want) == n) {
        double *g = malloc((n ? n : 1) * sizeof(double));
        for (size_t i = 0; i < n; i++) g[i] = got[i];
        const double *w = want.data;
        double m = max_abs_d(w, n);
        tu_close_d(what, g, w, n, c->rtol, c->atol * (m > 1.0 ? m : 1.0));
        free(g);
    }
    attn_array_free(&want);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* The large-logit checks: every row's largest weight sits on the reference's argmax. */
static void check_argmax(const refcase *c, const float *P, size_t rows, int Nk) {
    attn_array want = {0};
    if (!load(c, "p", ATTN_F64, &want)) return;
    const double *w = want.data;
    int bad = 0;
    for (size_t r = 0; r < rows; r++) {
        int jw = 0, jg = 0;
        for (int j = 1; j < Nk; j++) {
            if (w[r * Nk + j] > w[r * Nk + jw]) jw = j;
            if (P[r * Nk + j] > P[r * Nk + jg]) jg = j;
        }
        /* Ties within the tolerance may go either way. */
        if (jg != jw && P[r * Nk + jg] - P[r * Nk + jw] > c->atol) bad++;
    }
    CHECK(bad == 0, "%s: %d rows put their largest weight on another key than PyTorch", c->name, bad);
    attn_array_free(&want);
}

/* attn_weights of every case: all heads and rows, then heads {last, 0, last} and rows
 * [Nq / 3, Nq), each bitwise the forward's P (and so within the tolerance of PyTorch's). */
static void check_weights(const refcase *c, const attn_desc *a, const float *Q, const float *K, const float *P,
                          const float *lse) {
    size_t np = (size_t)a->B * a->H * a->Nq * a->Nk;
    float *W = malloc((np + 3 * (size_t)a->Nq * a->Nk) * sizeof(float)); /* room for 3 heads too */
    int st = attn_weights(a, Q, K, lse, NULL, a->B * a->H, 0, a->Nq, W);
    CHECK(st == ATTN_OK, "%s: attn_weights: %s", c->name, attn_last_error());
    if (!st) {
        compare(c, "p", W, np);
        CHECK(memcmp(W, P, np * sizeof(float)) == 0, "%s (%s): attn_weights is not bitwise the forward's P", c->name,
              attn_get_isa());
    }
    int BH = a->B * a->H, heads[3] = {BH - 1, 0, BH - 1}, r0 = a->Nq / 3, nr = a->Nq - r0;
    st = attn_weights(a, Q, K, lse, heads, 3, r0, a->Nq, W);
    CHECK(st == ATTN_OK, "%s: attn_weights (3 heads): %s", c->name, attn_last_error());
    for (int t = 0; !st && t < 3; t++)
        CHECK(memcmp(W + (size_t)t * nr * a->Nk, P + ((size_t)heads[t] * a->Nq + r0) * a->Nk,
                     (size_t)nr * a->Nk * sizeof(float)) == 0,
              "%s (%s): attn_weights of head %d, rows [%d, %d) differ from the forward's", c->name, attn_get_isa(),
              heads[t], r0, a->Nq);
    free(W);
}

static void run_case(const refcase *c) {
    attn_array q = {0}, k = {0}, v = {0}, dO = {0}, mask = {0}, bias = {0}, kl = {0};
    attn_array prm[7] = {{0}};
    static const char *const prm_names[7] = {"W", "Wa", "ba", "Ua", "bu", "va", "bv"};
    float *O = NULL, *P = NULL, *lse = NULL, *dQ = NULL, *dK = NULL, *dV = NULL, *dprm[7] = {0};
    int score = attn_score_parse(c->score);
    CHECK(score >= 0, "%s: unknown score '%s'", c->name, c->score);
    if (score < 0) return;
    if (!load(c, "q", ATTN_F32, &q) || !load(c, "k", ATTN_F32, &k) || !load(c, "v", ATTN_F32, &v) ||
        !load(c, "do", ATTN_F32, &dO))
        goto done;
    CHECK(q.ndim == 4 && k.ndim == 4 && v.ndim == 4 && dO.ndim == 4, "%s: Q, K, V, dO must be 4-d", c->name);
    if (q.ndim != 4 || k.ndim != 4 || v.ndim != 4 || dO.ndim != 4) goto done;

    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = (int)q.shape[0], a.H = (int)q.shape[1], a.Nq = (int)q.shape[2], a.dq = (int)q.shape[3];
    a.Hkv = (int)k.shape[1], a.Nk = (int)k.shape[2], a.dk = (int)k.shape[3], a.dv = (int)v.shape[3];
    a.score = (attn_score)score;
    a.scale = c->scale;
    a.mask.causal = c->causal;
    a.mask.window = c->window;
    const int64_t target[4] = {a.B, a.H, a.Nq, a.Nk};
    if (exists(c, "mask")) {
        if (!load(c, "mask", ATTN_BOOL, &mask)) goto done;
        a.mask.bool_mask = mask.data;
        CHECK(attn_broadcast_strides(mask.shape, mask.ndim, target, a.mask.bool_strides) == ATTN_OK, "%s: mask: %s",
              c->name, attn_last_error());
    }
    if (exists(c, "bias")) {
        if (!load(c, "bias", ATTN_F32, &bias)) goto done;
        a.mask.bias = bias.data;
        CHECK(attn_broadcast_strides(bias.shape, bias.ndim, target, a.mask.bias_strides) == ATTN_OK, "%s: bias: %s",
              c->name, attn_last_error());
    }
    if (exists(c, "key_lengths")) {
        if (!load(c, "key_lengths", ATTN_I32, &kl)) goto done;
        a.mask.key_lengths = kl.data;
    }
    attn_score_params params, dparams;
    memset(&params, 0, sizeof params);
    memset(&dparams, 0, sizeof dparams);
    float **pf[7] = {&params.W, &params.Wa, &params.ba, &params.Ua, &params.bu, &params.va, &params.bv};
    float **gf[7] = {&dparams.W, &dparams.Wa, &dparams.ba, &dparams.Ua, &dparams.bu, &dparams.va, &dparams.bv};
    int first = score == ATTN_SCORE_GENERAL ? 0 : 1, last = score == ATTN_SCORE_GENERAL ? 1 : score == ATTN_SCORE_ADDITIVE ? 7 : 0;
    for (int i = first; i < last; i++) {
        if (!load(c, prm_names[i], ATTN_F32, &prm[i])) goto done;
        *pf[i] = prm[i].data;
        *gf[i] = dprm[i] = calloc((size_t)attn_array_numel(&prm[i]), sizeof(float));
    }
    if (score == ATTN_SCORE_ADDITIVE) params.A = dparams.A = (int)prm[1].shape[0];
    a.params = &params;

    size_t no = (size_t)a.B * a.H * a.Nq * a.dv, np = (size_t)a.B * a.H * a.Nq * a.Nk, nl = (size_t)a.B * a.H * a.Nq;
    size_t nq = (size_t)attn_array_numel(&q), nk = (size_t)attn_array_numel(&k), nv = (size_t)attn_array_numel(&v);
    O = malloc(no * sizeof(float)), P = malloc(np * sizeof(float)), lse = malloc(nl * sizeof(float));
    dQ = malloc(nq * sizeof(float)), dK = malloc(nk * sizeof(float)), dV = malloc(nv * sizeof(float));
    int st = attn_forward(&a, q.data, k.data, v.data, O, P, lse);
    CHECK(st == ATTN_OK, "%s: attn_forward: %s", c->name, attn_last_error());
    if (st) goto done;
    st = attn_backward(&a, q.data, k.data, v.data, O, lse, dO.data, dQ, dK, dV, &dparams);
    CHECK(st == ATTN_OK, "%s: attn_backward: %s", c->name, attn_last_error());
    if (st) goto done;

    compare(c, "o", O, no);
    compare(c, "p", P, np);
    compare(c, "lse", lse, nl);
    check_weights(c, &a, q.data, k.data, P, lse);
    compare(c, "dq", dQ, nq);
    compare(c, "dk", dK, nk);
    compare(c, "dv", dV, nv);
    for (int i = first; i < last; i++) {
        char file[8];
        snprintf(file, sizeof file, "d%s", prm_names[i]);
        compare(c, file, dprm[i], (size_t)attn_array_numel(&prm[i]));
    }
    if (c->big) {
        CHECK(all_finite(O, no) && all_finite(P, np) && all_finite(lse, nl) && all_finite(dQ, nq) && all_finite(dK, nk) &&
                  all_finite(dV, nv),
              "%s: large logits gave a NaN or an infinity", c->name);
        check_argmax(c, P, nl, a.Nk);
    }
done:
    free(O), free(P), free(lse), free(dQ), free(dK), free(dV);
    for (int i = 0; i < 7; i++) free(dprm[i]), attn_array_free(&prm[i]);
    attn_array_free(&q), attn_array_free(&k), attn_array_free(&v), attn_array_free(&dO);
    attn_array_free(&mask), attn_array_free(&bias), attn_array_free(&kl);
}

/* Every case of the manifest f on the current instruction set; the number run. */
static int run_cases(FILE *f) {
    char line[512];
    int ncases = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        refcase c;
        memset(&c, 0, sizeof c);
        int n = sscanf(line, "%127s %31s %d %d %f %lf %lf %d", c.name, c.score, &c.causal, &c.window, &c.scale, &c.rtol,
                       &c.atol, &c.big);
        CHECK(n == 8, "malformed line in cases.txt: %s", line);
        if (n != 8) continue;
        run_case(&c);
        ncases++;
    }
    return ncases;
}

int main(void) {
    FILE *f = fopen(DIR "/cases.txt", "r");
    CHECK(f != NULL, "cannot open " DIR "/cases.txt (run from tests/)");
    if (!f) return tu_summary("test_attention_ref");
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (attn_set_isa(isas[i]) != ATTN_OK) continue;
        int ncases = run_cases(f);
        CHECK(ncases >= 30, "only %d cases in cases.txt", ncases);
        printf("%s: %d PyTorch cases\n", isas[i], ncases);
    }
    attn_set_isa(start);
    fclose(f);
    return tu_summary("test_attention_ref");
}
