/* Tests of the multi-head attention layer (attn/mha.h):
 *  1. against torch.nn.MultiheadAttention (files written by tools/gen_mha_refs.py): output,
 *     weights, the gradients of query, key, value and of every parameter, for self and cross
 *     attention, kdim/vdim != E, no bias, key padding, bool and float masks (2-D and 3-D),
 *     causal, averaged and per-head weights, N = 1, 7, 33;
 *  2. against a double-precision reference written here, with finite differences of its loss
 *     sum(out * dout) for every gradient, on what PyTorch cannot check: fully masked rows
 *     (zeros here, NaN there), the (H, Nq, Nk) mask extension with ALiBi, rope;
 *  3. error paths: missing and mis-shaped tensors, add_bias_kv files, E % H != 0, bad masks;
 *     save/load round trip, prefixes, determinism across thread counts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attn.h"
#include "testutil.h"

#define DATA "data/mha/"

static int meta_int(const attn_st *st, const char *key) {
    const char *v = attn_st_metadata(st, key);
    CHECK(v != NULL, "metadata '%s' missing", key);
    return v ? atoi(v) : 0;
}

static float maxabs(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* Compares with |got - want| <= rtol * (|want| + max |want|): relative to each element and,
 * for elements near zero, to the array's scale. */
static int close_scaled(const char *what, const float *got, const float *want, size_t n, double rtol) {
    return tu_close(what, got, want, n, rtol, rtol * maxabs(want, n));
}

/* A tensor of the file as float32 (NULL if absent); *n gets its numel. */
static float *get(const attn_st *st, const char *name, size_t *n, attn_array *keep) {
    memset(keep, 0, sizeof *keep);
    if (attn_st_find(st, name) < 0) return NULL;
    int rc = attn_st_get_f32(st, name, keep);
    CHECK(rc == ATTN_OK, "reading %s: %s", name, attn_last_error());
    if (rc) return NULL;
    if (n) *n = (size_t)attn_array_numel(keep);
    return keep->data;
}

static uint8_t *to_u8(const float *x, size_t n) {
    uint8_t *m = malloc(n);
    for (size_t i = 0; i < n; i++) m[i] = x[i] != 0.0f;
    return m;
}

/* ------------------------------------------------------------------------------------------
 * 1. PyTorch references. */

static void torch_case(const char *name) {
    char path[256], wpath[256];
    snprintf(path, sizeof path, DATA "%s.safetensors", name);
    snprintf(wpath, sizeof wpath, DATA "%s.weights.safetensors", name);
    attn_st *st = NULL;
    int rc = attn_st_open(path, &st);
    CHECK(rc == ATTN_OK, "%s: %s", path, attn_last_error());
    if (rc) return;
    attn_mha_config cfg = {0};
    cfg.embed_dim = meta_int(st, "E");
    cfg.num_heads = meta_int(st, "H");
    cfg.kdim = meta_int(st, "kdim");
    cfg.vdim = meta_int(st, "vdim");
    cfg.no_bias = !meta_int(st, "bias");
    int B = meta_int(st, "B"), Nq = meta_int(st, "Nq"), Nk = meta_int(st, "Nk"), H = cfg.num_heads, E = cfg.embed_dim;
    int average = meta_int(st, "average"), causal = meta_int(st, "causal"), self = meta_int(st, "self");

    attn_mha_weights w, g, gwant;
    rc = attn_mha_load(&w, &cfg, wpath, NULL);
    CHECK(rc == ATTN_OK, "%s: %s", wpath, attn_last_error());
    CHECK(attn_mha_weights_init(&g, &cfg) == ATTN_OK, "grads init");
    CHECK(attn_mha_weights_init(&gwant, &cfg) == ATTN_OK, "grads init");
    /* The expected gradients carry the parameters' own names after "grad.". */
    rc = attn_mha_weights_read(&gwant, &cfg, st, "grad.");
    CHECK(rc == ATTN_OK, "%s grads: %s", name, attn_last_error());

    attn_array aq, ak, av, ado, akpm, amb, amf, aout, aw, adq, adk, adv;
    size_t nq, nk, nv, nout, nw, nm = 0;
    float *query = get(st, "query", &nq, &aq), *key = get(st, "key", &nk, &ak), *value = get(st, "value", &nv, &av);
    float *dout = get(st, "dout", NULL, &ado), *out_want = get(st, "out", &nout, &aout);
    float *w_want = get(st, "weights", &nw, &aw);
    float *dq_want = get(st, "dquery", NULL, &adq), *dk_want = get(st, "dkey", NULL, &adk);
    float *dv_want = get(st, "dvalue", NULL, &adv);
    float *kpm_f = get(st, "key_padding_mask", NULL, &akpm);
    float *mb = get(st, "attn_mask_bool", &nm, &amb), *mf = get(st, "attn_mask_float", &nm, &amf);
    attn_mha_masks masks = {0};
    uint8_t *kpm = kpm_f ? to_u8(kpm_f, (size_t)B * Nk) : NULL, *mbool = mb ? to_u8(mb, nm) : NULL;
    masks.key_padding_mask = kpm;
    masks.attn_mask_bool = mbool;
    masks.attn_mask_float = mf;
    masks.is_causal = causal;
    const attn_array *am = mb ? &amb : mf ? &amf : NULL;
    if (am) {
        masks.attn_mask_ndim = am->ndim;
        for (int i = 0; i < am->ndim; i++) masks.attn_mask_shape[i] = am->shape[i];
    }
    CHECK(nq == (size_t)B * Nq * E && nk == (size_t)B * Nk * cfg.kdim && nv == (size_t)B * Nk * cfg.vdim, "%s sizes", name);
    CHECK(nw == (size_t)B * (average ? 1 : H) * Nq * Nk, "%s weights size", name);

    attn_mha_cache c;
    rc = attn_mha_cache_init(&c, &cfg, B, Nq, Nk);
    CHECK(rc == ATTN_OK, "cache: %s", attn_last_error());
    float *out = malloc(nout * sizeof(float)), *wts = malloc(nw * sizeof(float)), *out2 = malloc(nout * sizeof(float));
    float *dq = malloc(nq * sizeof(float)), *dk = malloc(nk * sizeof(float)), *dv = malloc(nv * sizeof(float));
    char what[128];

    rc = attn_mha_forward(&cfg, &w, &c, query, key, value, &masks, out, wts, average);
    CHECK(rc == ATTN_OK, "%s forward: %s", name, attn_last_error());
    snprintf(what, sizeof what, "%s out", name);
    close_scaled(what, out, out_want, nout, 1e-5);
    snprintf(what, sizeof what, "%s weights", name);
    close_scaled(what, wts, w_want, nw, 1e-5);

    /* need_weights=False: the same output. */
    rc = attn_mha_forward(&cfg, &w, &c, query, key, value, &masks, out2, NULL, 0);
    CHECK(rc == ATTN_OK, "%s forward without weights: %s", name, attn_last_error());
    snprintf(what, sizeof what, "%s out (no weights)", name);
    close_scaled(what, out2, out_want, nout, 1e-5);

    attn_mha_weights_zero(&g);
    rc = attn_mha_backward(&cfg, &w, &c, query, key, value, &masks, dout, dq, dk, dv, &g);
    CHECK(rc == ATTN_OK, "%s backward: %s", name, attn_last_error());
    snprintf(what, sizeof what, "%s dquery", name);
    close_scaled(what, dq, dq_want, nq, 1e-4);
    snprintf(what, sizeof what, "%s dkey", name);
    close_scaled(what, dk, dk_want, nk, 1e-4);
    snprintf(what, sizeof what, "%s dvalue", name);
    close_scaled(what, dv, dv_want, nv, 1e-4);
    struct { const char *n; float *got, *want; size_t size; } parts[] = {
        {"q_w", g.q_w, gwant.q_w, (size_t)E * E},          {"k_w", g.k_w, gwant.k_w, (size_t)E * cfg.kdim},
        {"v_w", g.v_w, gwant.v_w, (size_t)E * cfg.vdim},   {"out_w", g.out_w, gwant.out_w, (size_t)E * E},
        {"q_b", g.q_b, gwant.q_b, (size_t)E},              {"k_b", g.k_b, gwant.k_b, (size_t)E},
        {"v_b", g.v_b, gwant.v_b, (size_t)E},              {"out_b", g.out_b, gwant.out_b, (size_t)E},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (!parts[i].got) continue;
        snprintf(what, sizeof what, "%s grad %s", name, parts[i].n);
        if (parts[i].got == g.k_b) {
            /* dLoss/db_k is 0 in exact arithmetic (a softmax does not see a shift common to
             * all keys): what remains is cancellation, on the scale of the key gradients. */
            tu_close(what, parts[i].got, parts[i].want, parts[i].size, 0.0, 1e-4 * maxabs(gwant.k_w, parts[1].size));
            continue;
        }
        close_scaled(what, parts[i].got, parts[i].want, parts[i].size, 1e-4);
    }
    if (self) {
        /* Self-attention: the gradient of the one input is the sum (the caller's job). */
        double worst = 0.0;
        for (size_t i = 0; i < nq; i++) {
            double want = (double)dq_want[i] + dk_want[i] + dv_want[i], got = (double)dq[i] + dk[i] + dv[i];
            worst = fmax(worst, fabs(got - want));
        }
        CHECK(worst < 1e-4 * (maxabs(dq_want, nq) + maxabs(dk_want, nq) + maxabs(dv_want, nq)), "%s self sum %g", name, worst);
    }
    /* A second backward accumulates the parameter gradients. */
    rc = attn_mha_backward(&cfg, &w, &c, query, key, value, &masks, dout, NULL, NULL, NULL, &g);
    CHECK(rc == ATTN_OK, "%s backward 2: %s", name, attn_last_error());
    for (size_t i = 0; i < gwant.size; i++) gwant.data[i] *= 2.0f;
    snprintf(what, sizeof what, "%s grads accumulate", name);
    tu_close(what, g.out_w, gwant.out_w, (size_t)E * E, 1e-4, 1e-4 * maxabs(gwant.out_w, (size_t)E * E));
    tu_close(what, g.q_w, gwant.q_w, (size_t)E * E, 1e-4, 1e-4 * maxabs(gwant.q_w, (size_t)E * E));

    free(out), free(out2), free(wts), free(dq), free(dk), free(dv), free(kpm), free(mbool);
    attn_array *arrays[] = {&aq, &ak, &av, &ado, &akpm, &amb, &amf, &aout, &aw, &adq, &adk, &adv};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) attn_array_free(arrays[i]);
    attn_mha_cache_free(&c);
    attn_mha_weights_free(&w);
    attn_mha_weights_free(&g);
    attn_mha_weights_free(&gwant);
    attn_st_free(st);
}

/* ------------------------------------------------------------------------------------------
 * 2. A double-precision reference with the library's semantics (zeros for a row with no
 * key), and finite differences of its loss. Parameters are in the layout of
 * attn_mha_weights.data. */

typedef struct {
    attn_mha_config cfg; /* checked */
    int B, Nq, Nk;
    const attn_mha_masks *m;
    const float *dout;
    /* offsets of the parts in the parameter vector, -1 if absent */
    long q_w, k_w, v_w, q_b, k_b, v_b, out_w, out_b;
} refp;

static void ref_linear(double *y, const double *x, const double *W, const double *b, int M, int K, int N) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = b ? b[n] : 0.0;
            for (int k = 0; k < K; k++) acc += x[(size_t)m * K + k] * W[(size_t)n * K + k];
            y[(size_t)m * N + n] = acc;
        }
}

/* RoPE on (B, N, E) rows in double, rotate_half pairing, head by head. */
static void ref_rope(double *x, int B, int N, int E, int H, double base) {
    int dh = E / H, half = dh / 2;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++) {
                double *v = x + ((size_t)b * N + n) * E + h * dh;
                for (int c = 0; c < half; c++) {
                    double th = n * pow(base, -2.0 * c / dh), x1 = v[c], x2 = v[c + half];
                    v[c] = x1 * cos(th) - x2 * sin(th);
                    v[c + half] = x2 * cos(th) + x1 * sin(th);
                }
            }
}

static double mask_at(const attn_mha_masks *m, int which, int B, int H, int Nq, int Nk, int b, int h, int i, int j) {
    (void)B;
    size_t plane = (size_t)Nq * Nk, off;
    if (m->attn_mask_ndim == 2) off = (size_t)i * Nk + j;
    else if (m->attn_mask_shape[0] == H && B > 1) off = (size_t)h * plane + (size_t)i * Nk + j;
    else off = ((size_t)b * H + h) * plane + (size_t)i * Nk + j;
    return which ? (double)m->attn_mask_float[off] : (double)m->attn_mask_bool[off];
}

/* The loss sum(out * dout); also out if wanted. */
static double ref_loss(const refp *r, const double *p, const double *query, const double *key, const double *value, double *out_keep) {
    const attn_mha_config *c = &r->cfg;
    int B = r->B, Nq = r->Nq, Nk = r->Nk, E = c->embed_dim, H = c->num_heads, dh = E / H;
    const attn_mha_masks *m = r->m;
    double *q = malloc(sizeof(double) * B * Nq * E), *k = malloc(sizeof(double) * B * Nk * E);
    double *v = malloc(sizeof(double) * B * Nk * E), *o = calloc((size_t)B * Nq * E, sizeof(double));
    double *out = malloc(sizeof(double) * B * Nq * E), *s = malloc(sizeof(double) * Nk);
    ref_linear(q, query, p + r->q_w, r->q_b >= 0 ? p + r->q_b : NULL, B * Nq, E, E);
    ref_linear(k, key, p + r->k_w, r->k_b >= 0 ? p + r->k_b : NULL, B * Nk, c->kdim, E);
    ref_linear(v, value, p + r->v_w, r->v_b >= 0 ? p + r->v_b : NULL, B * Nk, c->vdim, E);
    if (c->rope) {
        double base = c->rope_base ? c->rope_base : 10000.0;
        ref_rope(q, B, Nq, E, H, base);
        ref_rope(k, B, Nk, E, H, base);
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Nq; i++) {
                double mx = -INFINITY;
                for (int j = 0; j < Nk; j++) {
                    int vis = !(m && m->is_causal && j > i) && !(m && m->key_padding_mask && m->key_padding_mask[b * Nk + j]);
                    if (m && m->attn_mask_bool && mask_at(m, 0, B, H, Nq, Nk, b, h, i, j) != 0.0) vis = 0;
                    double sc = -INFINITY;
                    if (vis) {
                        sc = 0.0;
                        for (int d = 0; d < dh; d++)
                            sc += q[((size_t)b * Nq + i) * E + h * dh + d] * k[((size_t)b * Nk + j) * E + h * dh + d];
                        sc /= sqrt((double)dh);
                        if (m && m->attn_mask_float) sc += mask_at(m, 1, B, H, Nq, Nk, b, h, i, j);
                    }
                    s[j] = sc;
                    mx = fmax(mx, sc);
                }
                if (mx == -INFINITY) continue; /* no key: zero output */
                double sum = 0.0;
                for (int j = 0; j < Nk; j++) sum += s[j] = exp(s[j] - mx);
                for (int j = 0; j < Nk; j++)
                    for (int d = 0; d < dh; d++)
                        o[((size_t)b * Nq + i) * E + h * dh + d] += s[j] / sum * v[((size_t)b * Nk + j) * E + h * dh + d];
            }
    ref_linear(out, o, p + r->out_w, r->out_b >= 0 ? p + r->out_b : NULL, B * Nq, E, E);
    double loss = 0.0;
    for (size_t t = 0; t < (size_t)B * Nq * E; t++) loss += out[t] * r->dout[t];
    if (out_keep) memcpy(out_keep, out, sizeof(double) * B * Nq * E);
    free(q), free(k), free(v), free(o), free(out), free(s);
    return loss;
}

static double *to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Central differences of ref_loss with respect to x[0..n) (perturbed in place). */
static void fd_grad(const refp *r, double *p, double *query, double *key, double *value, double *x, size_t n, double *g) {
    const double h = 1e-5;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = ref_loss(r, p, query, key, value, NULL);
        x[i] = x0 - h;
        double lm = ref_loss(r, p, query, key, value, NULL);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * h);
    }
}

static void fd_compare(const char *what, const float *got, const double *want, size_t n) {
    double *g = to_d(got, n), m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(want[i]));
    tu_close_d(what, g, want, n, 1e-4, 1e-4 * m + 1e-7);
    free(g);
}

static void fd_case(const char *name, attn_mha_config cfg, int B, int Nq, int Nk, const attn_mha_masks *masks, uint64_t seed) {
    CHECK(attn_mha_config_check(&cfg) == ATTN_OK, "%s config: %s", name, attn_last_error());
    int E = cfg.embed_dim;
    attn_mha_weights w, g;
    attn_mha_cache c;
    attn_rng rng;
    attn_rng_seed(&rng, seed);
    CHECK(attn_mha_weights_init(&w, &cfg) == ATTN_OK && attn_mha_weights_init(&g, &cfg) == ATTN_OK, "init");
    attn_mha_weights_reset(&w, &cfg, &rng);
    if (w.q_b) tu_randn(w.q_b, 3 * (size_t)E, seed + 1); /* nonzero biases */
    if (w.out_b) tu_randn(w.out_b, (size_t)E, seed + 2);
    CHECK(attn_mha_cache_init(&c, &cfg, B, Nq, Nk) == ATTN_OK, "cache");
    size_t nq = (size_t)B * Nq * E, nk = (size_t)B * Nk * cfg.kdim, nv = (size_t)B * Nk * cfg.vdim;
    float *query = malloc(nq * 4), *key = malloc(nk * 4), *value = malloc(nv * 4), *dout = malloc(nq * 4);
    float *out = malloc(nq * 4), *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nv * 4);
    tu_randn(query, nq, seed + 3), tu_randn(key, nk, seed + 4), tu_randn(value, nv, seed + 5), tu_randn(dout, nq, seed + 6);

    refp r = {.cfg = cfg, .B = B, .Nq = Nq, .Nk = Nk, .m = masks, .dout = dout};
    r.q_w = w.q_w - w.data, r.k_w = w.k_w - w.data, r.v_w = w.v_w - w.data, r.out_w = w.out_w - w.data;
    r.q_b = w.q_b ? w.q_b - w.data : -1, r.k_b = w.k_b ? w.k_b - w.data : -1;
    r.v_b = w.v_b ? w.v_b - w.data : -1, r.out_b = w.out_b ? w.out_b - w.data : -1;
    double *p = to_d(w.data, w.size), *qd = to_d(query, nq), *kd = to_d(key, nk), *vd = to_d(value, nv);
    double *out_ref = malloc(nq * sizeof(double));
    ref_loss(&r, p, qd, kd, vd, out_ref);

    char what[128];
    int rc = attn_mha_forward(&cfg, &w, &c, query, key, value, masks, out, NULL, 0);
    CHECK(rc == ATTN_OK, "%s forward: %s", name, attn_last_error());
    snprintf(what, sizeof what, "%s out vs double", name);
    fd_compare(what, out, out_ref, nq);
    attn_mha_weights_zero(&g);
    rc = attn_mha_backward(&cfg, &w, &c, query, key, value, masks, dout, dq, dk, dv, &g);
    CHECK(rc == ATTN_OK, "%s backward: %s", name, attn_last_error());

    double *fd = malloc((w.size + nq + nk + nv) * sizeof(double));
    fd_grad(&r, p, qd, kd, vd, qd, nq, fd);
    snprintf(what, sizeof what, "%s dquery vs fd", name);
    fd_compare(what, dq, fd, nq);
    fd_grad(&r, p, qd, kd, vd, kd, nk, fd);
    snprintf(what, sizeof what, "%s dkey vs fd", name);
    fd_compare(what, dk, fd, nk);
    fd_grad(&r, p, qd, kd, vd, vd, nv, fd);
    snprintf(what, sizeof what, "%s dvalue vs fd", name);
    fd_compare(what, dv, fd, nv);
    fd_grad(&r, p, qd, kd, vd, p, w.size, fd);
    snprintf(what, sizeof what, "%s parameter grads vs fd", name);
    fd_compare(what, g.data, fd, w.size);
    for (size_t i = 0; i < nq; i++) CHECK(isfinite(out[i]) && isfinite(dq[i]), "%s finite", name);

    free(fd), free(p), free(qd), free(kd), free(vd), free(out_ref);
    free(query), free(key), free(value), free(dout), free(out), free(dq), free(dk), free(dv);
    attn_mha_cache_free(&c);
    attn_mha_weights_free(&w);
    attn_mha_weights_free(&g);
}

static void fd_cases(void) {
    attn_mha_config cfg = {.embed_dim = 8, .num_heads = 2};
    fd_case("fd self", cfg, 2, 5, 5, NULL, 100);

    attn_mha_config cross = {.embed_dim = 6, .num_heads = 3, .kdim = 5, .vdim = 3};
    attn_mha_masks causal = {.is_causal = 1};
    fd_case("fd cross causal kdim/vdim", cross, 2, 4, 6, &causal, 200);

    /* Batch 1 fully padded, and a bool mask that hides every key from query 2: zeros. */
    uint8_t kpm[2 * 5] = {0, 0, 1, 0, 0, 1, 1, 1, 1, 1};
    uint8_t bm[4 * 5] = {0};
    for (int j = 0; j < 5; j++) bm[2 * 5 + j] = 1;
    bm[0 * 5 + 1] = 1;
    attn_mha_masks pad = {.key_padding_mask = kpm, .attn_mask_bool = bm, .attn_mask_ndim = 2, .attn_mask_shape = {4, 5}};
    attn_mha_config nb = {.embed_dim = 8, .num_heads = 4, .no_bias = 1};
    fd_case("fd fully masked rows, no bias", nb, 2, 4, 5, &pad, 300);

    /* ALiBi through the (H, Nq, Nk) float mask extension, causal, with padding. */
    float alibi[2 * 6 * 6];
    attn_alibi_bias(2, 6, 6, 0, 0, alibi);
    uint8_t kpm2[3 * 6] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    attn_mha_masks al = {.key_padding_mask = kpm2, .attn_mask_float = alibi, .attn_mask_ndim = 3,
                         .attn_mask_shape = {2, 6, 6}, .is_causal = 1};
    fd_case("fd alibi (H,Nq,Nk) causal padding", cfg, 3, 6, 6, &al, 400);

    /* Float mask (B*H, Nq, Nk) with -inf entries, bool padding on top. */
    float fm[2 * 2 * 3 * 4];
    tu_randn(fm, 48, 9);
    fm[5] = fm[17] = fm[30] = -INFINITY;
    uint8_t kpm3[2 * 4] = {0, 0, 0, 1, 1, 0, 0, 0};
    attn_mha_masks f3 = {.key_padding_mask = kpm3, .attn_mask_float = fm, .attn_mask_ndim = 3, .attn_mask_shape = {4, 3, 4}};
    fd_case("fd float mask 3-D + padding", cfg, 2, 3, 4, &f3, 500);

    /* The rope extension. */
    attn_mha_config rope = {.embed_dim = 8, .num_heads = 2, .rope = 1, .rope_base = 100.0f};
    fd_case("fd rope", rope, 2, 5, 5, &causal, 600);
}

/* Explicit check of the documented fully-masked semantics: out = b_out, weights 0. */
static void fully_masked(void) {
    attn_mha_config cfg = {.embed_dim = 8, .num_heads = 2};
    attn_mha_weights w;
    attn_mha_cache c;
    attn_rng rng;
    attn_rng_seed(&rng, 1);
    attn_mha_weights_init(&w, &cfg);
    attn_mha_weights_reset(&w, &cfg, &rng);
    tu_randn(w.out_b, 8, 2);
    attn_mha_cache_init(&c, &cfg, 1, 3, 4);
    float x[3 * 8], kv[4 * 8], out[3 * 8], wts[3 * 4], dx[3 * 8], dout[3 * 8];
    tu_randn(x, 24, 3), tu_randn(kv, 32, 4), tu_randn(dout, 24, 5);
    uint8_t kpm[4] = {1, 1, 1, 1};
    attn_mha_masks m = {.key_padding_mask = kpm};
    CHECK(attn_mha_forward(&cfg, &w, &c, x, kv, kv, &m, out, wts, 1) == ATTN_OK, "%s", attn_last_error());
    for (int i = 0; i < 3; i++) CHECK(memcmp(out + i * 8, w.out_b, 8 * sizeof(float)) == 0, "row %d is not b_out", i);
    for (int i = 0; i < 12; i++) CHECK(wts[i] == 0.0f, "weight %d = %g", i, wts[i]);
    CHECK(attn_mha_backward(&cfg, &w, &c, x, kv, kv, &m, dout, dx, NULL, NULL, NULL) == ATTN_OK, "%s", attn_last_error());
    for (int i = 0; i < 24; i++) CHECK(dx[i] == 0.0f, "dquery %d = %g", i, dx[i]);
    attn_mha_cache_free(&c);
    attn_mha_weights_free(&w);
}

/* ------------------------------------------------------------------------------------------
 * 3. Files, errors, threads. */

static int msg_has(const char *s) { return strstr(attn_last_error(), s) != NULL; }

static void errors(void) {
    attn_mha_config bad = {.embed_dim = 10, .num_heads = 3};
    CHECK(attn_mha_config_check(&bad) == ATTN_ESHAPE && msg_has("divisible"), "E %% H: %s", attn_last_error());
    attn_mha_weights w;
    attn_mha_cache c;
    CHECK(attn_mha_weights_init(&w, &bad) == ATTN_ESHAPE && w.data == NULL, "init with E %% H");
    CHECK(attn_mha_cache_init(&c, &bad, 1, 2, 2) == ATTN_ESHAPE, "cache with E %% H");
    attn_mha_weights_free(&w);
    attn_mha_cache_free(&c);
    attn_mha_config zero = {0};
    CHECK(attn_mha_config_check(&zero) == ATTN_EINVAL, "E = 0");
    CHECK(attn_mha_config_check(NULL) == ATTN_EINVAL, "NULL config");

    attn_mha_config cfg = {.embed_dim = 12, .num_heads = 3};
    int rc = attn_mha_load(&w, &cfg, DATA "broken_missing.safetensors", NULL);
    CHECK(rc == ATTN_ENOTFOUND && msg_has("out_proj.bias") && w.data == NULL, "missing: %d %s", rc, attn_last_error());
    rc = attn_mha_load(&w, &cfg, DATA "broken_shape.safetensors", NULL);
    CHECK(rc == ATTN_ESHAPE && msg_has("out_proj.weight") && msg_has("(12, 13)"), "shape: %d %s", rc, attn_last_error());
    rc = attn_mha_load(&w, &cfg, DATA "broken_bias_kv.safetensors", NULL);
    CHECK(rc == ATTN_EINVAL && msg_has("bias_k"), "bias_kv: %d %s", rc, attn_last_error());
    rc = attn_mha_load(&w, &cfg, DATA "does_not_exist.safetensors", NULL);
    CHECK(rc == ATTN_EIO, "no file: %d %s", rc, attn_last_error());
    /* A file with in_proj_weight for a config with kdim != E, and the reverse. */
    attn_mha_config kd = {.embed_dim = 12, .num_heads = 3, .kdim = 5};
    rc = attn_mha_load(&w, &kd, DATA "self_e12h3_n7.weights.safetensors", NULL);
    CHECK(rc == ATTN_ENOTFOUND && msg_has("q_proj_weight") && msg_has("in_proj_weight"), "kdim: %d %s", rc, attn_last_error());
    attn_mha_config cross = {.embed_dim = 16, .num_heads = 4};
    rc = attn_mha_load(&w, &cross, DATA "cross_kv_e16h4.weights.safetensors", NULL);
    CHECK(rc == ATTN_ENOTFOUND && msg_has("in_proj_weight") && msg_has("kdim"), "in_proj: %d %s", rc, attn_last_error());
    attn_mha_config nob = {.embed_dim = 12, .num_heads = 3, .no_bias = 1};
    rc = attn_mha_load(&w, &nob, DATA "self_e12h3_n7.weights.safetensors", NULL);
    CHECK(rc == ATTN_EINVAL && msg_has("no_bias"), "no_bias: %d %s", rc, attn_last_error());
    attn_mha_config h4 = {.embed_dim = 12, .num_heads = 4}; /* heads are not in the file: loads */
    rc = attn_mha_load(&w, &h4, DATA "self_e12h3_n7.weights.safetensors", NULL);
    CHECK(rc == ATTN_OK, "H=4: %s", attn_last_error());
    attn_mha_weights_free(&w);

    /* Prefixed names, as a layer inside a model. */
    attn_mha_weights a, b;
    rc = attn_mha_load(&a, &cfg, DATA "prefixed.safetensors", "layers.0.self_attn.");
    CHECK(rc == ATTN_OK, "prefix: %s", attn_last_error());
    rc = attn_mha_load(&b, &cfg, DATA "prefixed.safetensors", NULL);
    CHECK(rc == ATTN_ENOTFOUND && msg_has("'in_proj_weight'"), "no prefix: %s", attn_last_error());
    /* Round trip through a file, and the names written. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/attn_test_mha_%d.safetensors", (int)getpid());
    rc = attn_mha_save(&a, &cfg, path, "enc.");
    CHECK(rc == ATTN_OK, "save: %s", attn_last_error());
    rc = attn_mha_load(&b, &cfg, path, "enc.");
    CHECK(rc == ATTN_OK && b.size == a.size && memcmp(a.data, b.data, a.size * sizeof(float)) == 0, "round trip: %s",
          attn_last_error());
    attn_st *st = NULL;
    CHECK(attn_st_open(path, &st) == ATTN_OK, "reopen");
    const char *names[] = {"enc.in_proj_weight", "enc.in_proj_bias", "enc.out_proj.weight", "enc.out_proj.bias"};
    CHECK(attn_st_count(st) == 4, "4 tensors, not %d", attn_st_count(st));
    for (int i = 0; i < 4; i++) CHECK(attn_st_find(st, names[i]) >= 0, "saved name %s", names[i]);
    attn_st_free(st);
    remove(path);
    /* Gradients for another config are refused. */
    attn_mha_weights g;
    attn_mha_weights_init(&g, &cross);
    attn_mha_cache_init(&c, &cfg, 1, 2, 2);
    float x[2 * 12] = {0}, out[2 * 12];
    attn_mha_masks m = {0};
    CHECK(attn_mha_forward(&cfg, &a, &c, x, x, x, &m, out, NULL, 0) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_mha_backward(&cfg, &a, &c, x, x, x, &m, out, NULL, NULL, NULL, &g) == ATTN_ESHAPE, "grads of another config");
    /* Masks. */
    uint8_t mb[4] = {0};
    float mf[4] = {0};
    attn_mha_masks both = {.attn_mask_bool = mb, .attn_mask_float = mf, .attn_mask_ndim = 2, .attn_mask_shape = {2, 2}};
    CHECK(attn_mha_forward(&cfg, &a, &c, x, x, x, &both, out, NULL, 0) == ATTN_EINVAL, "two attn masks");
    attn_mha_masks shape = {.attn_mask_bool = mb, .attn_mask_ndim = 2, .attn_mask_shape = {2, 3}};
    CHECK(attn_mha_forward(&cfg, &a, &c, x, x, x, &shape, out, NULL, 0) == ATTN_ESHAPE && msg_has("(2, 3)"), "%s",
          attn_last_error());
    attn_mha_masks s3 = {.attn_mask_float = mf, .attn_mask_ndim = 3, .attn_mask_shape = {2, 2, 2}};
    CHECK(attn_mha_forward(&cfg, &a, &c, x, x, x, &s3, out, NULL, 0) == ATTN_ESHAPE, "3-D first dim");
    attn_mha_masks s4 = {.attn_mask_float = mf, .attn_mask_ndim = 4, .attn_mask_shape = {2, 2, 2}};
    CHECK(attn_mha_forward(&cfg, &a, &c, x, x, x, &s4, out, NULL, 0) == ATTN_ESHAPE, "4-D");
    CHECK(attn_mha_forward(&cfg, &a, &c, NULL, x, x, &m, out, NULL, 0) == ATTN_EINVAL, "NULL query");
    attn_mha_config rope_odd = {.embed_dim = 9, .num_heads = 3, .rope = 1};
    CHECK(attn_mha_config_check(&rope_odd) == ATTN_ESHAPE, "rope with odd head size");
    attn_mha_cache_free(&c);
    attn_mha_weights_free(&g);
    attn_mha_weights_free(&a);
    attn_mha_weights_free(&b);
}

/* The same bits for any thread count. */
static void threads(void) {
    attn_mha_config cfg = {.embed_dim = 16, .num_heads = 4};
    int B = 3, N = 40;
    attn_mha_weights w, g1, g3;
    attn_mha_cache c;
    attn_rng rng;
    attn_rng_seed(&rng, 5);
    attn_mha_weights_init(&w, &cfg), attn_mha_weights_init(&g1, &cfg), attn_mha_weights_init(&g3, &cfg);
    attn_mha_weights_reset(&w, &cfg, &rng);
    attn_mha_cache_init(&c, &cfg, B, N, N);
    size_t n = (size_t)B * N * 16;
    float *x = malloc(n * 4), *o1 = malloc(n * 4), *o3 = malloc(n * 4), *d1 = malloc(n * 4), *d3 = malloc(n * 4);
    tu_randn(x, n, 6);
    attn_mha_masks m = {.is_causal = 1};
    int saved = attn_get_threads();
    attn_set_threads(1);
    attn_mha_forward(&cfg, &w, &c, x, x, x, &m, o1, NULL, 0);
    attn_mha_backward(&cfg, &w, &c, x, x, x, &m, x, d1, NULL, NULL, &g1);
    attn_set_threads(3);
    attn_mha_forward(&cfg, &w, &c, x, x, x, &m, o3, NULL, 0);
    attn_mha_backward(&cfg, &w, &c, x, x, x, &m, x, d3, NULL, NULL, &g3);
    attn_set_threads(saved);
    CHECK(memcmp(o1, o3, n * 4) == 0 && memcmp(d1, d3, n * 4) == 0 && memcmp(g1.data, g3.data, g1.size * 4) == 0,
          "results depend on the thread count");
    free(x), free(o1), free(o3), free(d1), free(d3);
    attn_mha_cache_free(&c);
    attn_mha_weights_free(&w), attn_mha_weights_free(&g1), attn_mha_weights_free(&g3);
}


/* Out of memory at every allocation in turn: a clean ATTN_ENOMEM, nothing leaked (ASan). */
static int fail_at, n_allocs;
static void *failing_malloc(size_t size, void *user) {
    (void)user;
    return n_allocs++ == fail_at ? NULL : malloc(size);
}
static void plain_free(void *p, void *user) {
    (void)user;
    free(p);
}

static void out_of_memory(void) {
    attn_mha_config cfg = {.embed_dim = 8, .num_heads = 2, .rope = 1};
    float x[2 * 3 * 8], out[2 * 3 * 8], wts[2 * 3 * 3], dx[2 * 3 * 8];
    tu_randn(x, 48, 1);
    uint8_t kpm[6] = {0, 0, 1, 0, 0, 0};
    uint8_t bm[9] = {0, 1, 0, 0, 0, 0, 0, 0, 0};
    attn_mha_masks m = {.key_padding_mask = kpm, .attn_mask_bool = bm, .attn_mask_ndim = 2, .attn_mask_shape = {3, 3}};
    int finished = 0;
    for (fail_at = 0; fail_at < 200 && !finished; fail_at++) {
        n_allocs = 0;
        attn_set_allocator(failing_malloc, plain_free, NULL);
        attn_mha_weights w = {0}, g = {0};
        attn_mha_cache c = {0};
        int rc = attn_mha_load(&w, &(attn_mha_config){.embed_dim = 12, .num_heads = 3}, DATA "self_e12h3_n7.weights.safetensors", NULL);
        attn_mha_weights_free(&w);
        if (!rc) rc = attn_mha_weights_init(&w, &cfg);
        if (!rc) rc = attn_mha_weights_init(&g, &cfg);
        if (!rc) rc = attn_mha_cache_init(&c, &cfg, 2, 3, 3);
        if (!rc) rc = attn_mha_forward(&cfg, &w, &c, x, x, x, &m, out, wts, 1);
        if (!rc) rc = attn_mha_backward(&cfg, &w, &c, x, x, x, &m, x, dx, NULL, NULL, &g);
        attn_set_allocator(NULL, NULL, NULL);
        CHECK(rc == ATTN_OK || rc == ATTN_ENOMEM, "allocation %d: status %d (%s)", fail_at, rc, attn_last_error());
        finished = rc == ATTN_OK;
        attn_mha_cache_free(&c);
        attn_mha_weights_free(&w);
        attn_mha_weights_free(&g);
    }
    CHECK(finished, "never finished");
}

int main(void) {
    const char *cases[] = {"self_e12h3_n7",        "self_e12h3_n1",          "cross_kv_e16h4",
                           "nobias_e16h4_n33",     "kpm_e12h3",              "boolmask3d_kpm_e16h4",
                           "boolmask2d_e12h3",     "floatmask2d_kpm_e12h3", "floatmask3d_e12h3",
                           "causal_kpm_e16h4_n33", "causal_float_e12h3"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) torch_case(cases[i]);
    fd_cases();
    fully_masked();
    errors();
    threads();
    out_of_memory();
    return tu_summary("test_mha");
}
