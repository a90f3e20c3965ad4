/* attn/attention.h: the attention function, in the seed's three steps and as one call,
 * forward and backward.
 *
 *   Attention(Q, K, V) = normalise(similarity(Q, K) + masks) V
 *
 * Shapes (C order, last dimension contiguous unless strides are given):
 *   Q (B, H, Nq, dq)      queries
 *   K (B, Hkv, Nk, dk)    keys      (dk == dq for dot, scaled and cosine scores)
 *   V (B, Hkv, Nk, dv)    values
 *   O (B, H, Nq, dv)      output
 *   P (B, H, Nq, Nk)      attention weights ("the attention distribution")
 *   H % Hkv == 0: query head h uses key/value head h / (H / Hkv) (grouped heads, no copy).
 *
 * Scores (step 1), for query q and key k:
 *   ATTN_SCORE_DOT       q . k (times scale if one is given; default 1)
 *   ATTN_SCORE_SCALED    (q . k) * scale, scale defaults to 1/sqrt(dq)      (the default)
 *   ATTN_SCORE_COSINE    cos(q, k) * scale, scale defaults to 1; cos = q.k / (max(|q|,eps) max(|k|,eps)), eps 1e-12
 *   ATTN_SCORE_GENERAL   q^T W k (Luong), W (dq, dk), times scale (default 1)
 *   ATTN_SCORE_ADDITIVE  va . tanh(Wa q + ba + Ua k + bu) + bv (Bahdanau), with
 *                        Wa (A, dq), ba (A), Ua (A, dk), bu (A), va (A), bv (1); scale ignored.
 *                        Wa and Ua may both be NULL (ba, bu too): Q and K are then already
 *                        projected (dq = dk = A), as a decoder projects its keys once per
 *                        sentence. tanh is a rational approximation (relative error < 4e-7)
 *
 * Masks (step 2), all optional, combined: a key is visible to a query when every mask allows
 * it; the float bias is added to the visible scores before the softmax:
 *   causal        query i sees keys j <= i (top-left aligned, as PyTorch's is_causal)
 *   window W > 0  query i sees keys i-W < j <= i (the W keys ending at i; implies causal)
 *   key_lengths   (B) int32: batch b sees keys j < key_lengths[b] (padding at the end)
 *   bool mask     uint8, nonzero = may attend (as F.scaled_dot_product_attention), broadcast
 *                 to (B, H, Nq, Nk) through its strides (0 for a broadcast dimension)
 *   bias          float, added to the scores, broadcast the same way (-inf hides a key)
 * A query that sees no key gets all-zero weights and a zero output (never NaN), and passes
 * no gradient. More masks and score modifiers (documents, prefix-LM, bottom-right causal,
 * mask_mod / score_mod callbacks, soft-capping, ALiBi, T5 buckets, sinks, dropout): attn_mods.
 *
 * Normalisation is the softmax; the log-sum-exp of each row can be returned for the backward.
 */
#ifndef ATTN_ATTENTION_H
#define ATTN_ATTENTION_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef enum {
    ATTN_SCORE_DOT = 0,
    ATTN_SCORE_SCALED = 1,
    ATTN_SCORE_COSINE = 2,
    ATTN_SCORE_GENERAL = 3,
    ATTN_SCORE_ADDITIVE = 4
} attn_score;

/* "dot", "scaled", "cosine", "general", "additive" <-> attn_score. Parse returns -1 if unknown. */
const char *attn_score_name(attn_score s);
int attn_score_parse(const char *name);

/* Parameters of the learned scores. Gradients use the same struct (non-NULL fields are
 * accumulated into with +=). */
typedef struct {
    float *W;  /* general: (dq, dk) */
    int A;     /* additive: hidden size */
    float *Wa; /* (A, dq) */
    float *ba; /* (A) */
    float *Ua; /* (A, dk) */
    float *bu; /* (A) */
    float *va; /* (A) */
    float *bv; /* (1) */
} attn_score_params;

/* Masks. Strides are in elements over (B, H, Nq, Nk); a stride of 0 broadcasts.
 * attn_broadcast_strides() computes them from a numpy-style shape. */
typedef struct {
    int causal;
    int window;                 /* 0 = none */
    const int32_t *key_lengths; /* (B) or NULL */
    const uint8_t *bool_mask;   /* or NULL */
    int64_t bool_strides[4];
    const float *bias;          /* or NULL */
    int64_t bias_strides[4];
} attn_mask;

/* Programmable attention (FlexAttention's score_mod / mask_mod, with a backward), and the
 * ready-made masks and modifiers built on it. Zero-initialise, set what you use, and point
 * attn_desc.mods at it (NULL: none). The fused kernels apply all of it inside their tiles.
 *
 * The score of query i and key j of (batch b, query head h) goes through, in this order:
 *   s0 = scale q.k + bias_ij + slope_h (j - i) [alibi] + table[bucket(j - i), h] [T5]
 *        (with alibi_bidirectional: - slope_h |j - i|, the same for j <= i, symmetric after)
 *   s1 = score_mod(s0, b, h, i, j, ctx)          (or score_mod_tile; s0 if neither)
 *   s  = softcap tanh(s1 / softcap)              (s1 if softcap is 0)
 * and is hidden (-inf) unless every mask allows it: those of attn_mask, then
 *   documents  doc_offsets (B, n_docs + 1), cu_seqlens style: per batch row, offsets from 0
 *              up to N, non-decreasing (empty documents allowed); query i sees only the keys
 *              of its own document (packing, varlen). Needs Nq == Nk. With causal: causal
 *              inside each document.
 *   causal     aligned top-left (j <= i, default) or bottom-right (j <= i + Nk - Nq: the
 *              last query sees every key, as in chunked prefill against a KV cache); the
 *              window W then keeps i + off - W < j <= i + off.
 *   prefix P   (with causal, without window) keys j < P are seen by every query (prefix-LM:
 *              bidirectional over the prefix, causal after).
 *   mask_mod   mask_mod(b, h, i, j, ctx) != 0 keeps the key.
 * Then the softmax, with sinks (a per-head logit z_h added to the denominator only:
 * p_ij = exp(s_ij) / (exp(z_h) + sum_j exp(s_ij)); the returned lse includes it), then dropout
 * on the weights: p_ij kept with probability 1 - dropout and scaled by 1 / (1 - dropout); the
 * mask is a hash of (seed, b, h, i, j) (attn_dropout_keep), so the backward sees the same
 * mask and the result is the same for any thread count. The P that attn_forward returns is
 * before dropout.
 *
 * The contract of the callbacks: pure functions of their arguments and of what ctx points to
 * (which must not change while a plan uses it), safe to call from several threads at once,
 * no allocation, no error. They are called only for keys the structural masks let through.
 *
 * mask_mod is evaluated once per plan (at its first call after attn_plan_new or
 * attn_plan_reshape; at every call of the one-shot functions) over every (b, h, i, j) into a
 * block mask: each key block of each query tile of the fast kernels is empty (skipped), full
 * (no per-element test) or partial. The reference kernels test every element instead.
 * The three steps one at a time (attn_scores, attn_normalize) apply the masks of attn_mods
 * but not its score modifiers, sinks or dropout: those need attn_forward.
 */
typedef int (*attn_mask_mod_fn)(int b, int h, int i, int j, void *ctx);
typedef float (*attn_score_mod_fn)(float s, int b, int h, int i, int j, void *ctx);
/* The backward of score_mod at s (its input): returns g * d score_mod / d s, and adds
 * g * d score_mod / d theta into dparams[...] for each parameter theta it reads through ctx
 * (dparams holds n_dparams floats; it is NULL when only the return value is wanted). */
typedef float (*attn_score_mod_bwd_fn)(float s, float g, int b, int h, int i, int j, void *ctx, float *dparams);
/* score_mod for a tile of scores at once, in the fused kernels' own layout (nothing is copied,
 * one call per tile instead of one per score, and its loop over the queries vectorises; build
 * it for the CPU's vector width, e.g. one copy per __attribute__((target(...))) picked by
 * attn_get_isa() as the example callbacks of src/cli/cli_bench_mods.c are, since the kernels
 * run AVX-512 where they can and a loop built for the baseline x86-64 has 4 lanes; GCC's
 * target_clones does the picking in the loader instead, where no sanitizer is in use):
 * the scores of queries i0 .. i0 + nq - 1 and keys j0 .. j0 + nk - 1 of (batch b, head h),
 * score (i0 + l, j0 + jj) at s[jj * ld + l] for l < nq, jj < nk, replaced in place by
 * score_mod of it. Contract, beside the one above:
 *   - every element is modified as if alone: the result of an element depends only on its
 *     value, (b, h, i, j) and ctx, never on the tile's shape or its neighbours (the kernels
 *     call it on tiles of any shape, single elements included, and the results of the
 *     reference and every instruction set must agree);
 *   - touch only the nq x nk elements: lanes l >= nq up to ld are the kernels' padding and
 *     must be left alone;
 *   - hidden scores (-inf) may be in the tile; what the callback writes there is ignored (the
 *     kernels keep them -inf), so it needs no test for them.
 * Its backward writes g[jj * ld + l] = d score_mod / d s at the tile's (unmodified) scores s,
 * same contract (the value at hidden scores is ignored). It is required by the backward of
 * dQ, dK, dV. The gradients of score_mod's own parameters (attn_mods_grad.dparams) come from
 * the scalar score_mod_bwd, which the tile form may also set for that alone (its return
 * value is then not used). */
typedef void (*attn_score_mod_tile_fn)(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx);
typedef void (*attn_score_mod_tile_bwd_fn)(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0,
                                           int j0, void *ctx);

typedef enum { ATTN_ALIGN_TOP_LEFT = 0, ATTN_ALIGN_BOTTOM_RIGHT = 1 } attn_causal_align;

typedef struct {
    int causal_align;            /* attn_causal_align */
    int prefix;                  /* prefix-LM length (with causal), 0 = none */
    const int32_t *doc_offsets;  /* (B, n_docs + 1) or NULL */
    int n_docs;
    attn_mask_mod_fn mask_mod;   /* or NULL */
    attn_score_mod_fn score_mod; /* or NULL; score_mod_bwd is required with it */
    attn_score_mod_bwd_fn score_mod_bwd;
    attn_score_mod_tile_fn score_mod_tile; /* or NULL; not with score_mod (refused) */
    attn_score_mod_tile_bwd_fn score_mod_tile_bwd; /* required by the backward with score_mod_tile */
    void *ctx;                   /* passed to the callbacks */
    int n_dparams;               /* floats the score_mod's parameters have (attn_mods_grad.dparams) */
    float softcap;               /* > 0: soft-capping; 0 = none */
    const float *alibi_slopes;   /* (H) or NULL (attn_alibi_slopes of attn/posenc.h gives the paper's) */
    int alibi_bidirectional;     /* 1: ALiBi's bias is -slope_h |j - i| (encoders: keys after the
                                    query too, as attn_alibi_bias's symmetric form); 0: slope_h (j - i) */
    const float *t5_table;       /* (t5_buckets, H) or NULL */
    int t5_buckets, t5_max_distance, t5_bidirectional; /* as T5's relative_position_bucket */
    const float *sinks;          /* (H) or NULL */
    float dropout;               /* in [0, 1) */
    uint64_t seed;
} attn_mods;

/* Gradients of what attn_mods (and the float bias mask) hold, accumulated (+=); any NULL is
 * not computed. bias has the bias mask's shape and strides (attn_mask.bias_strides), so the
 * gradient is reduced over its broadcast dimensions. */
typedef struct {
    float *dparams;      /* (n_dparams) of score_mod (through the scalar score_mod_bwd) */
    float *alibi_slopes; /* (H) */
    float *t5_table;     /* (t5_buckets, H) */
    float *sinks;        /* (H) */
    float *bias;
} attn_mods_grad;

/* T5's bucket of the relative position rel = j - i (HF transformers' _relative_position_bucket). */
int attn_t5_bucket(int rel, int bidirectional, int num_buckets, int max_distance);
/* Whether dropout keeps weight (b, h, i, j): splitmix64 hashes of (seed, b, h) then (i, j),
 * the top 24 bits as u in [0, 1), kept when u >= p. */
int attn_dropout_keep(uint64_t seed, int b, int h, int i, int j, float p);

/* Strides that broadcast an array of shape `shape` (ndim 1..4, numpy rules: right-aligned,
 * a dimension of 1 broadcasts) to `target` (4 dims). ATTN_ESHAPE if it does not broadcast. */
int attn_broadcast_strides(const int64_t *shape, int ndim, const int64_t target[4], int64_t strides[4]);

/* The problem description shared by every call below. Zero-initialise it, then set the sizes.
 * Strides (in elements) let Q, K, V, O be views into larger arrays, e.g. the (B, N, H*d)
 * output of a projection; a zero stride array means contiguous (B, H, N, d). The last
 * dimension is always contiguous. dO, dQ, dK, dV use the strides of O, Q, K, V. */
typedef struct {
    int B, H, Hkv, Nq, Nk, dq, dk, dv; /* Hkv 0 = H; dk 0 = dq; dv 0 = dk */
    attn_score score;
    float scale;                        /* 0 = the score's default */
    const attn_score_params *params;    /* general and additive only */
    attn_mask mask;
    int64_t q_strides[3], k_strides[3], v_strides[3], o_strides[3]; /* over (B, H, N) */
    int dtype;   /* element type of Q, K, V, O, dO, dQ, dK, dV (an attn_dtype of attn/io.h):
                  * ATTN_F32 (0, the default) or ATTN_BF16: the arrays are then uint16_t
                  * bfloat16 (pass them cast to float *: the calls read and write them as
                  * uint16_t); lse stays float. See "bf16" below. */
    int compute; /* the multiply: ATTN_F32 (0, the default: as dtype) or ATTN_BF16: fp32 arrays
                  * in and out, converted to bf16 once per call (see "bf16" below) */
    const attn_mods *mods; /* programmable masks and scores, or NULL */
} attn_desc;

/* bf16 (dtype or compute ATTN_BF16): products of bfloat16 values (8-bit significand; inputs
 * rounded to nearest even, NaN kept) accumulated in fp32; softmax and log-sum-exp in fp32.
 * What is rounded to bf16: Q, K, V (and dO) once, the weights P before they multiply V (and
 * dO), the score gradients dS before they multiply K and Q, and, for bf16 storage, the
 * outputs O, dQ, dK, dV. So O carries an error of about 2^-9 max|V| (P's rounding) beside the
 * inputs' own. Kernels: AMX tiles (TDPBF16PS) where the CPU has them and Linux grants the
 * tile permission; else AVX512-BF16 (VDPBF16PS) where it pays (AMD); else ("f32": Intel
 * without AMX, where VDPBF16PS does half the FMA's work, and CPUs without AVX512-BF16) the
 * fp32 kernels on the bf16 values widened once per call: exact products too, and P is not
 * rounded. ATTN_BF16_ISA=ref|f32|avx512bf16|amx forces one, attn_set_isa("ref") /
 * ATTN_ISA=ref the slow portable reference. A few query rows on bf16 arrays (decoding: G Nq <= 32
 * for G query heads per key/value head) read K and V in place, without the packed copy the
 * other calls make: on the "f32" route without masks, 256 keys at a time widened to fp32 for
 * the fp32 kernels; otherwise the decode kernel (dk % 32 == 0, dv % 16 == 0). Results do not
 * depend on the thread count.
 * Supported: attn_forward / attn_backward and their plans, with dot and scaled scores, every
 * mask of attn_mask, grouped heads, strided views, any size. Refused (ATTN_EINVAL with a
 * message): cosine, general and additive scores, attn_mods, the weights P (pass NULL),
 * score-parameter gradients, the three steps one at a time and attn_weights. */

/* fp32 <-> bf16 arrays of n elements: round to nearest even (ties to even; NaN stays a quiet
 * NaN of the same sign; inf stays inf; denormals are rounded, not flushed; values beyond the
 * largest bf16 round to inf), and the exact widening. */
void attn_f32_to_bf16(const float *x, uint16_t *y, size_t n);
void attn_bf16_to_f32(const uint16_t *x, float *y, size_t n);
/* The bf16 kernels a call would use now: "amx", "avx512bf16" or "ref". */
const char *attn_bf16_isa(void);

/* Checks the description and fills in its defaults (Hkv, dk, dv, scale, strides), in place.
 * Every call below does this itself; call it to read back the effective values. */
int attn_desc_check(attn_desc *a);

/* Step 1: raw similarity scores S (B, H, Nq, Nk), scale included, masks not applied. */
int attn_scores(const attn_desc *a, const float *Q, const float *K, float *S);
/* Step 2: masks and softmax: S (B, H, Nq, Nk) -> P (B, H, Nq, Nk). S == P is allowed. */
int attn_normalize(const attn_desc *a, const float *S, float *P);
/* Step 3: weighted sum O = P V: P (B, H, Nq, Nk), V (B, Hkv, Nk, dv) -> O (B, H, Nq, dv). */
int attn_weighted_sum(const attn_desc *a, const float *P, const float *V, float *O);

/* All three steps, fused (no (Nq, Nk) matrix in memory unless P is asked for).
 *   O   (B, H, Nq, dv) output
 *   P   (B, H, Nq, Nk) weights, or NULL
 *   lse (B, H, Nq) log-sum-exp of the masked scores per row (-inf for a fully masked row),
 *       or NULL; give it to attn_backward to save recomputing it. */
int attn_forward(const attn_desc *a, const float *Q, const float *K, const float *V,
                 float *O, float *P, float *lse);

/* Backward of attn_forward. O and lse are the forward's (lse may be NULL: recomputed).
 *   dO (B, H, Nq, dv) in; dQ, dK, dV out (overwritten; any may be NULL if not wanted);
 *   dparams: gradients of the score parameters, accumulated (+=), or NULL. */
int attn_backward(const attn_desc *a, const float *Q, const float *K, const float *V,
                  const float *O, const float *lse, const float *dO,
                  float *dQ, float *dK, float *dV, attn_score_params *dparams);

/* attn_backward with the gradients of attn_mods' parameters and of the bias (dmods may be
 * NULL). */
int attn_backward_mods(const attn_desc *a, const float *Q, const float *K, const float *V,
                       const float *O, const float *lse, const float *dO,
                       float *dQ, float *dK, float *dV, attn_score_params *dparams, attn_mods_grad *dmods);
/* Exact attention weights of chosen heads and query rows, recomputed from Q, K and the
 * log-sum-exp of a forward that did not keep them: the fused forward runs as fast as without
 * weights, and a picture pays O(rows Nk d) per head shown instead of a forward with P.
 *   lse    (B, H, Nq) the forward's (attn_forward's lse); required
 *   heads  (nheads) the (batch, query head) pairs wanted, as indices b * H + h (repeats
 *          allowed); NULL for all of them in order, nheads = B * H
 *   rows   the query rows [row0, row1), 0 <= row0 < row1 <= Nq
 *   P      (nheads, row1 - row0, Nk) out: P[t][i - row0][j] = exp(s_ij - lse_i) for visible
 *          keys j, 0 for hidden keys and for rows that see no key
 * Every score kind and mask of attn_forward. Q and K as given to the forward (V is not
 * needed). Exactness: bitwise equal to the P that attn_forward writes when asked for it, on
 * the same kernels (attn_get_isa), given that forward's lse: the fast kernels' forward itself
 * normalises its weights with the final lse, and where the forward divides by the row's sum
 * instead (the reference kernels, additive scores) this recomputes that softmax. A forward
 * without P may return an lse that differs in its last bit: it splits long key ranges over
 * threads when it has few query rows (fewer than 16 (b, h, row block) tasks and Nk >= 512);
 * the weights then differ from the P forward's by the same relative rounding (~1e-7).
 * ATTN_EINVAL with a message for a NULL pointer, a head or row out of range. */
int attn_weights(const attn_desc *a, const float *Q, const float *K, const float *lse,
                 const int *heads, int nheads, int row0, int row1, float *P);

/* Plans, for calls that repeat (decoding steps, training steps): create with a description
 * (checked once, as attn_desc_check), then run forward and backward as often as needed. The
 * plan owns a workspace that the first call which needs a buffer allocates and later calls
 * reuse, so repeated calls of one shape allocate nothing. attn_forward and attn_backward are
 * these calls on a plan made for one call; results are bitwise the same either way.
 * The description is copied, but what it points to (score parameters, key lengths, masks) is
 * read at each call and must stay valid while the plan is used.
 * attn_plan_reshape takes a new description (new sizes, strides, masks or parameters) and
 * keeps the workspace, growing a buffer only when the new shape needs more: reshape a plan
 * made for the largest shape and no call allocates. Not for concurrent use by two threads.
 * Every call returns ATTN_OK or an error code with a message (attn_last_error). */
typedef struct attn_plan attn_plan;

int attn_plan_new(const attn_desc *a, attn_plan **out);
int attn_plan_reshape(attn_plan *plan, const attn_desc *a);
/* The plan's checked description (defaults filled in), or NULL for a NULL plan. */
const attn_desc *attn_plan_desc(const attn_plan *plan);
/* As attn_forward and attn_backward, with the plan's description. */
int attn_plan_forward(attn_plan *plan, const float *Q, const float *K, const float *V,
                      float *O, float *P, float *lse);
int attn_plan_backward(attn_plan *plan, const float *Q, const float *K, const float *V,
                       const float *O, const float *lse, const float *dO,
                       float *dQ, float *dK, float *dV, attn_score_params *dparams);
int attn_plan_backward_mods(attn_plan *plan, const float *Q, const float *K, const float *V,
                            const float *O, const float *lse, const float *dO, float *dQ, float *dK,
                            float *dV, attn_score_params *dparams, attn_mods_grad *dmods);
/* As attn_weights, with the plan's description and workspace. */
int attn_plan_weights(attn_plan *plan, const float *Q, const float *K, const float *lse,
                      const int *heads, int nheads, int row0, int row1, float *P);
/* Frees the plan and its workspace; NULL is allowed. */
void attn_plan_free(attn_plan *plan);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
