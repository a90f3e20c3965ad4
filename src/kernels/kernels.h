/* The kernel layer: pure functions on raw pointers, a plain C reference for each, faster
 * versions per instruction set, and one dispatch table chosen at run time.
 *
 * Fused attention kernels work on one (batch, head) pair with the score already reduced to a
 * scaled dot product s_ij = scale * q_i . k_j (the attention layer turns cosine and general
 * scores into that form; additive scores have their own reference path). Masks arrive as in
 * attn_mask, resolved for this (batch, head). Letters: Nq queries, Nk keys, d = dq = dk,
 * dv value size; *_rs are row strides in elements.
 *
 * Dispatch (BLIS style): attn__kernels is the table of every operation family (attention,
 * gemm, row ops, activations, optimiser updates). dispatch.c fills one table per
 * instruction-set level: the portable reference first (ref/, the source of truth), then the entries each level overrides
 * (x86/avx2/, then x86/avx512/: the FlashAttention-2 style kernels of x86/attn_fast.h and the
 * optimiser loops), for the levels the CPU runs (core/cpu.c). The fastest is used unless
 * ATTN_ISA or attn_set_isa names another, for every family at once. A new ISA adds a folder
 * with its override table and one line in dispatch.c's list of levels.
 */
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/optim_kernels.h"
#include "kernels/row_kernels.h"

/* Element type of the tensors a kernel reads and writes. Only F32 has kernels; BF16 is
 * reserved for a bf16 path (AVX512-BF16, AMX), and attn__head_check rejects it until then. */
typedef enum { ATTN__F32 = 0, ATTN__BF16 = 1 } attn__dtype;

typedef struct {
    attn__dtype dtype;            /* of q, k, v and the outputs; F32 (0) in a zeroed head */
    int Nq, Nk, d, dv;
    float scale;
    const float *q; int64_t q_rs; /* (Nq, d) */
    const float *k; int64_t k_rs; /* (Nk, d) */
    const float *v; int64_t v_rs; /* (Nk, dv) */
    int causal;                   /* key j visible to query i only if j <= i */
    int window;                   /* > 0: also only if j > i - window (window implies causal) */
    int key_len;                  /* keys j >= key_len are hidden (Nk when no padding) */
    const uint8_t *bmask; int64_t bm_rs, bm_cs; /* element (i, j) at bmask[i*bm_rs + j*bm_cs], 0 hides */
    const float *bias; int64_t bias_rs, bias_cs;/* added to visible scores; -inf hides */
    /* Programmable attention (attn_mods of attn/attention.h), resolved for this head; a zeroed
     * head has none of it. */
    int b, hh;                    /* batch and query head, for the callbacks and the dropout hash */
    int coff;                     /* causal keeps j <= i + coff (0 top-left, Nk - Nq bottom-right) */
    int prefix;                   /* with causal: keys j < prefix are seen by every query */
    const int32_t *doc; int ndoc; /* document offsets (ndoc + 1): a query sees its own document */
    int (*mask_mod)(int b, int h, int i, int j, void *ctx);
    float (*score_mod)(float s, int b, int h, int i, int j, void *ctx);
    float (*score_mod_bwd)(float s, float g, int b, int h, int i, int j, void *ctx, float *dparams);
    void (*score_mod_tile)(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx);
    void (*score_mod_tile_bwd)(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0,
                               void *ctx);
    void *ctx;
    int ew;                       /* any element-wise score modifier below (or score_mod) */
    int alibi; float slope;       /* ALiBi: s += slope attn__alibi_dist (alibi 2: bidirectional) */
    const float *t5; int t5_rs, t5_nb, t5_maxd, t5_bidir; /* T5: s += t5[bucket * t5_rs] */
    const int *t5_bk;             /* T5: the bucket of j - i at t5_bk[j - i] (-Nq < j - i < Nk) */
    const float *t5_rev;          /* T5: this head's bias of j - i at t5_rev[i - j], for i - j from
                                   * -(Nk - 1) to Nq - 1 + 64 (0 past Nq - 1): a query tile's lanes
                                   * are consecutive entries */
    float softcap;                /* > 0: s -> softcap tanh(s / softcap) */
    const uint8_t *tiles; int tiles_nk; /* block mask of mask_mod: (query tile, key block) ->
                                   * ATTN__TILE_EMPTY / PARTIAL / FULL, or NULL */
    float drop;                   /* dropout probability (0: none) */
    float drop_scale;             /* 1 / (1 - drop) */
    uint64_t drop_key;            /* attn__drop_key(seed, b, h) */
} attn__head;

enum { ATTN__TILE_EMPTY = 0, ATTN__TILE_PARTIAL = 1, ATTN__TILE_FULL = 2 };

/* The document [*lo, *hi) that position i belongs to (offsets searched by bisection). */
static inline void attn__doc_range(const attn__head *h, int i, int *lo, int *hi) {
    int a = 0, z = h->ndoc; /* doc[a] <= i < doc[z] */
    while (z - a > 1) {
        int m = (a + z) / 2;
        if (h->doc[m] <= i) a = m;
        else z = m;
    }
    while (a + 1 < h->ndoc && h->doc[a + 1] <= i) a++; /* past empty documents */
    *lo = h->doc[a], *hi = h->doc[a + 1];
}

/* The keys [*js, *je) the structural masks (key length, causal, window, prefix, documents)
 * allow for query rows [i0, i1) within [j0, j1): exact for one row, a bound for several. */
static inline void attn__key_range(const attn__head *h, int i0, int i1, int j0, int j1, int *js, int *je) {
    int s = j0, e = j1 < h->key_len ? j1 : h->key_len;
    if (h->causal) {
        int c = i1 + h->coff > h->prefix ? i1 + h->coff : h->prefix;
        if (c < e) e = c;
    }
    if (h->window > 0 && i0 + h->coff - h->window + 1 > s) s = i0 + h->coff - h->window + 1;
    if (h->doc) {
        int lo, hi, lo2, hi2;
        attn__doc_range(h, i0, &lo, &hi);
        attn__doc_range(h, i1 - 1, &lo2, &hi2);
        if (lo > s) s = lo;
        if (hi2 < e) e = hi2;
    }
    *js = s, *je = e;
}

/* The splitmix64 finaliser, the dropout hash's mixing step. */
static inline uint64_t attn__mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint64_t attn__drop_key(uint64_t seed, int b, int h) {
    return attn__mix64(seed ^ attn__mix64(((uint64_t)(uint32_t)b << 32) | (uint32_t)h));
}
/* Dropout's factor for weight (i, j): 0 (dropped) or 1 / (1 - p). */
static inline float attn__drop_factor(const attn__head *h, int i, int j) {
    uint64_t r = attn__mix64(h->drop_key ^ (((uint64_t)(uint32_t)i << 32) | (uint32_t)j));
    float u = (float)(r >> 40) * (1.0f / 16777216.0f);
    return u >= h->drop ? h->drop_scale : 0.0f;
}

int attn__t5_bucket(int rel, int bidirectional, int num_buckets, int max_distance);

/* ALiBi's distance of key j from query i: j - i, or -|j - i| when bidirectional (alibi 2). */
static inline float attn__alibi_dist(const attn__head *h, int i, int j) {
    int r = j - i;
    return (float)(h->alibi == 2 && r > 0 ? -r : r);
}

/* The element-wise modifiers of a visible score s (scale q.k + bias): ALiBi, T5, score_mod
 * (or score_mod_tile on this one score), softcap. *g (if not NULL) gets d result / d s. */
static inline float attn__mods_apply(const attn__head *h, int i, int j, float s, float *g) {
    if (h->alibi) s += h->slope * attn__alibi_dist(h, i, j);
    if (h->t5_bk) s += h->t5[h->t5_bk[j - i] * h->t5_rs];
    float gr = 1.0f;
    if (h->score_mod) {
        float s0 = s;
        s = h->score_mod(s0, h->b, h->hh, i, j, h->ctx);
        if (g) gr = h->score_mod_bwd(s0, 1.0f, h->b, h->hh, i, j, h->ctx, NULL);
    } else if (h->score_mod_tile) { /* a tile of one */
        if (g) h->score_mod_tile_bwd(&s, &gr, 1, 1, 1, h->b, h->hh, i, j, h->ctx);
        h->score_mod_tile(&s, 1, 1, 1, h->b, h->hh, i, j, h->ctx);
    }
    if (h->softcap > 0.0f) {
        float t = tanhf(s / h->softcap);
        s = h->softcap * t;
        gr *= 1.0f - t * t;
    }
    if (g) *g = gr;
    return s;
}

/* The score of key j for query i once the structural masks let it through: the boolean mask
 * and mask_mod (when check_mm), the bias and the modifiers; -INFINITY if hidden. */
static inline float attn__score_elem(const attn__head *h, int i, int j, float s, int check_mm, float *g) {
    if (g) *g = 1.0f;
    if (h->bmask && !h->bmask[(int64_t)i * h->bm_rs + (int64_t)j * h->bm_cs]) return -INFINITY;
    if (check_mm && h->mask_mod && !h->mask_mod(h->b, h->hh, i, j, h->ctx)) return -INFINITY;
    if (h->bias) s += h->bias[(int64_t)i * h->bias_rs + (int64_t)j * h->bias_cs];
    if (h->ew && s != -INFINITY) s = attn__mods_apply(h, i, j, s, g);
    return s;
}

/* ATTN_OK if the kernels can run this head (a known element type that has kernels, sizes
 * >= 1, key_len <= Nk), else ATTN_EINVAL with a message; callers check before any kernel. */
int attn__head_check(const attn__head *h);

/* Is key j visible to query i under the structural and boolean masks (bias aside)? */
static inline int attn__visible(const attn__head *h, int i, int j) {
    if (j >= h->key_len) return 0;
    if (h->causal && j >= h->prefix && j > i + h->coff) return 0;
    if (h->window > 0 && j <= i + h->coff - h->window) return 0;
    if (h->bmask && !h->bmask[i * h->bm_rs + j * h->bm_cs]) return 0;
    if (h->doc) {
        int lo, hi;
        attn__doc_range(h, i, &lo, &hi);
        if (j < lo || j >= hi) return 0;
    }
    if (h->mask_mod && !h->mask_mod(h->b, h->hh, i, j, h->ctx)) return 0;
    return 1;
}

/* Forward for query rows [i0, i1):
 *   o   rows i of (Nq, dv) at o + i*o_rs (written)
 *   lse (Nq): lse[i] = log sum_j exp(s_ij) over visible j, -INFINITY if none (written)
 *   p   optional (Nq, Nk) weights at p + i*p_rs (written, 0 for hidden keys), may be NULL.
 * scratch holds scratch_floats(Nk, d, dv) floats for this call's thread. */
typedef void (*attn__fwd_fn)(const attn__head *h, int i0, int i1, float *o, int64_t o_rs,
                             float *lse, float *p, int64_t p_rs, float *scratch);

/* Backward, part 1: dq rows [i0, i1) (overwritten), from
 *   lse (Nq) of the forward, delta (Nq) = rowsum(dO * O), dO (Nq, dv). */
typedef void (*attn__bwd_dq_fn)(const attn__head *h, const float *lse, const float *delta,
                                const float *dO, int64_t do_rs, int i0, int i1,
                                float *dq, int64_t dq_rs, float *scratch);

/* Backward, part 2: dk, dv rows [j0, j1), accumulated (+=) so that the query heads sharing
 * one key/value head can be summed in a fixed order. Either may be NULL. */
typedef void (*attn__bwd_dkv_fn)(const attn__head *h, const float *lse, const float *delta,
                                 const float *dO, int64_t do_rs, int j0, int j1,
                                 float *dk, int64_t dk_rs, float *dv, int64_t dv_rs,
                                 float *scratch);

/* C (M, N) = alpha * op(A) op(B) + beta * C, row-major; op(X) = X or X^T (trans != 0).
 * A is (M, K) or, transposed, (K, M); B is (K, N) or (N, K). Deterministic: each element of
 * C is computed in a fixed order whatever the thread count. */
typedef void (*attn__sgemm_fn)(int transA, int transB, int M, int N, int K, float alpha,
                               const float *A, int64_t lda, const float *B, int64_t ldb,
                               float beta, float *C, int64_t ldc);

/* Forward of query rows [i0, i1) restricted to keys [j0, j1) (masks still apply with the
 * absolute indices): o and lse as for attn__fwd_fn but normalised over that key range only,
 * so that key ranges computed apart can be merged (lse = log sum exp lse_r, o = sum
 * exp(lse_r - lse) o_r): the split over keys of single-query decoding. p, if not NULL, gets
 * columns [j0, j1) of its rows. */
typedef void (*attn__fwd_part_fn)(const attn__head *h, int i0, int i1, int j0, int j1, float *o, int64_t o_rs,
                                  float *lse, float *p, int64_t p_rs, float *scratch);

/* Fused backward of keys [j0, j1) against every query (FlashAttention-2's loop order): the
 * probabilities are recomputed from lse, then
 *   dq (Nq, d) += the contribution of these keys,  dk, dv rows [j0, j1) +=  (each may be NULL).
 * Sums are in an order fixed by the shapes. scratch holds bwd_scratch_floats(Nq, Nk, d, dv). */
typedef void (*attn__bwd_fn)(const attn__head *h, const float *lse, const float *delta, const float *dO,
                             int64_t do_rs, int j0, int j1, float *dq, int64_t dq_rs, float *dk, int64_t dk_rs,
                             float *dv, int64_t dv_rs, float *scratch);

/* The weights of query rows [i0, i1) as fwd writes them when asked for p, recomputed from the
 * forward's lse (Nq) without the output (attn_weights): row i at p + (i - i0)*p_rs, Nk floats,
 * 0 for hidden keys and for rows that see none. The fast kernels' fwd normalises its weights
 * with the final lse, so theirs use it; the reference's divides each row by its sum, so its
 * version recomputes that softmax (and reads no lse). scratch as for fwd. */
typedef void (*attn__probs_fn)(const attn__head *h, const float *lse, int i0, int i1, float *p, int64_t p_rs,
                               float *scratch);

/* The optimiser family: one update of n parameters p (n) from their gradients g (n), with the
 * optimiser's state buffers (n each; buf may be NULL for SGD without momentum). Every path
 * gives the bits of the element functions of optim_kernels.h. */
typedef void (*attn__sgd_fn)(float *p, const float *g, float *buf, int64_t n, const attn__sgd_k *k);
typedef void (*attn__adam_fn)(float *p, const float *g, float *m, float *v, int64_t n, const attn__adam_k *k);

/* The table of one instruction-set level. In an override table (ref/, x86/...) NULL or 0
 * means "inherit the level below"; the tables dispatch.c hands out have every entry except
 * the optional ones marked below. */
typedef struct {
    const char *name;   /* "ref", "avx2", "avx512" */
    /* Attention: the fused kernels and their task geometry. */
    int q_block;        /* query rows per forward / dq task */
    int k_block;        /* key rows per dk/dv task */
    int rows_max;       /* at most this many rows go through the keys together (fwd_part's row
                         * path: K and V read once for all of them); 0: no row path */
    size_t (*scratch_floats)(int Nk, int d, int dv);
    attn__fwd_fn fwd;
    attn__bwd_dq_fn bwd_dq;
    attn__bwd_dkv_fn bwd_dkv;
    /* Optional (NULL in the reference table): the fast paths above. */
    attn__fwd_part_fn fwd_part;
    attn__bwd_fn bwd;
    size_t (*bwd_scratch_floats)(int Nq, int Nk, int d, int dv);
    /* Gemm: the linear layers' products. */
    attn__sgemm_fn sgemm;
    /* Row ops. out[i] = a_i . b_i for rows i < n of length len (rows at a + i*a_rs, b + i*b_rs),
     * summed as bwd sums its dot products, so that delta = rowsum(dO * O) cancels dO . V
     * exactly where one key takes all the weight. Optional, with bwd. */
    void (*rowdot)(int n, int len, const float *a, int64_t a_rs, const float *b, int64_t b_rs, float *out);
    /* Row ops of the layers (nn/loss.c), on one row of n floats, each with the bits of the
     * reference on every path (row_kernels.h). row_max: the largest x (n), NaN if x holds one.
     * sum_f64, dot_f64: sum_j x[j] (* y[j]) in double, eight partial sums. exp_sum: sum_j
     * attn__expf(x[j] - mx) in double (chunks of 512 summed as sum_f64, added in order), the
     * exponentials into y (n) unless y is NULL. logsm_bwd_row: dx (n) (+)= dy - attn__expf(y)
     * * sd (acc: +=). ce_bwd_row: dx (n) (+)= sc * (attn__expf(x - lse) - b). */
    float (*row_max)(const float *x, int64_t n);
    double (*sum_f64)(const float *x, int64_t n);
    double (*dot_f64)(const float *x, const float *y, int64_t n);
    double (*exp_sum)(float *y, const float *x, float mx, int64_t n);
    void (*logsm_bwd_row)(float *dx, const float *y, const float *dy, float sd, int64_t n, int acc);
    void (*ce_bwd_row)(float *dx, const float *x, float lse, float sc, float b, int64_t n, int acc);
    /* Activations of n elements (nn/activations.c): out (n) = f(inp); the backwards add (+=)
     * into dinp (n), tanh and sigmoid from their output, relu and gelu from their input. */
    void (*tanh_fwd)(float *out, const float *inp, int64_t n);
    void (*tanh_bwd)(float *dinp, const float *out, const float *dout, int64_t n);
    void (*sigmoid_fwd)(float *out, const float *inp, int64_t n);
    void (*sigmoid_bwd)(float *dinp, const float *out, const float *dout, int64_t n);
    void (*relu_fwd)(float *out, const float *inp, int64_t n);
    /* y (n) = the bf16 values x (n) widened to fp32 (exact: the 16 bits on top of 16 zeros). */
    void (*bf16_widen)(const uint16_t *x, float *y, int64_t n);
    void (*relu_bwd)(float *dinp, const float *inp, const float *dout, int64_t n);
    void (*gelu_fwd)(float *out, const float *inp, int64_t n);
    void (*gelu_bwd)(float *dinp, const float *inp, const float *dout, int64_t n);
    /* Optimiser updates. */
    attn__sgd_fn sgd;
    attn__adam_fn adam;
    /* Attention weights from the log-sum-exp (attn_weights). */
    attn__probs_fn probs;
} attn__kernels;

/* The table in use (see attn_get_isa / attn_set_isa / ATTN_ISA). */
const attn__kernels *attn__kern(void);
/* The table of that name ("ref", "avx2", "avx512"), or NULL if not built or not supported by
 * this CPU: for tests and benchmarks that compare paths without switching the global one. */
const attn__kernels *attn__kern_named(const char *name);

/* The portable reference kernels (also the fallback for anything a faster table lacks). */
extern const attn__kernels attn__kernels_ref;
/* The override tables of the x86 levels (x86/avx2/, x86/avx512/; only in x86-64 builds). */
extern const attn__kernels attn__kernels_avx2, attn__kernels_avx512;
void attn__fwd_ref(const attn__head *h, int i0, int i1, float *o, int64_t o_rs, float *lse,
                   float *p, int64_t p_rs, float *scratch);
void attn__bwd_dq_ref(const attn__head *h, const float *lse, const float *delta,
                      const float *dO, int64_t do_rs, int i0, int i1, float *dq, int64_t dq_rs,
                      float *scratch);
void attn__bwd_dkv_ref(const attn__head *h, const float *lse, const float *delta,
                       const float *dO, int64_t do_rs, int j0, int j1, float *dk, int64_t dk_rs,
                       float *dv, int64_t dv_rs, float *scratch);
void attn__probs_ref(const attn__head *h, const float *lse, int i0, int i1, float *p, int64_t p_rs, float *scratch);
void attn__sgemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void attn__sgd_ref(float *p, const float *g, float *buf, int64_t n, const attn__sgd_k *k);
void attn__adam_ref(float *p, const float *g, float *m, float *v, int64_t n, const attn__adam_k *k);

/* Softmax of one score row in place over the visible entries (vis[j] != 0), -inf entries
 * hidden too; hidden entries become 0. Returns the log-sum-exp (-INFINITY if none visible). */
float attn__softmax_row(float *s, const uint8_t *vis, int n);

/* Weights p (n) normalised with their own log-sum-exp l, rescaled to a row's final one l2
 * (attention sinks add a term to the denominator after the kernels: p *= exp(l - l2), as
 * attn__mods_sinks does to the forward's P); nothing when l2 is l or l is not finite. */
static inline void attn__sinks_rescale(float *p, int n, float l, float l2) {
    if (l == l2 || !isfinite(l) || !isfinite(l2)) return;
    float f = expf(l - l2);
    for (int j = 0; j < n; j++) p[j] *= f;
}

#endif
