/* attn/mha.h: the multi-head attention layer, forward and backward, with exactly the semantics
 * of PyTorch's torch.nn.MultiheadAttention(embed_dim, num_heads, bias=..., kdim=..., vdim=...,
 * batch_first=True) in inference mode (dropout 0), and its weights in safetensors files under
 * PyTorch's state_dict names.
 *
 *   q = query W_q^T + b_q     (B, Nq, E)      query (B, Nq, E)
 *   k = key   W_k^T + b_k     (B, Nk, E)      key   (B, Nk, kdim)
 *   v = value W_v^T + b_v     (B, Nk, E)      value (B, Nk, vdim)
 *   head h uses features [h*dh, (h+1)*dh) of q, k, v, dh = E / H
 *   o_h = softmax(q_h k_h^T / sqrt(dh) + masks) v_h, heads concatenated -> o (B, Nq, E)
 *   out = o W_out^T + b_out   (B, Nq, E)
 *
 * Letters: B batch, Nq query length, Nk key length, E embed_dim, H num_heads, dh = E / H.
 *
 * The API follows llama2.c / XNNPACK: a config (the blueprint), weights (one allocation carved
 * into views; read-only during forward and backward, so threads may share them), and a cache
 * (the per-call state: projections, attention output, log-sum-exp; one per thread). The
 * projected q, k, v stay in their (B, N, H*dh) layout and the attention core reads them as
 * strided (B, H, N, dh) views (attn_mha_attn_desc gives those strides): no transposes.
 *
 * Masks, as PyTorch's (attn_mha_masks):
 *   key_padding_mask (B, Nk) bool, nonzero = the key is PADDING and is ignored;
 *   attn_mask, either bool with nonzero = the pair is NOT allowed -- the OPPOSITE of
 *     F.scaled_dot_product_attention and of attn_mask.bool_mask in attn/attention.h, where
 *     nonzero means "may attend" -- or float, added to the scores (-inf hides the pair);
 *     shape (Nq, Nk) or (B*H, Nq, Nk) (row b*H + h for batch b, head h), or, an extension,
 *     (H, Nq, Nk) shared by every batch (ALiBi's bias, see attn/posenc.h);
 *   is_causal: query i sees keys j <= i (combined with the other masks; PyTorch 2's is_causal
 *     is only a hint that attn_mask is causal, and PyTorch 1.13 has none).
 *   A float attn_mask with a bool key_padding_mask: padding keys are hidden (PyTorch turns the
 *   padding into -inf and adds it, which is the same).
 *
 * Differences from PyTorch, on purpose:
 *   - A query that sees no key at all (every key masked) gets zero weights and a zero
 *     attention output (so out = b_out), and passes no gradient; PyTorch gives NaN there (a
 *     softmax of only -inf). Zeros keep a padded batch usable; NaN would poison training.
 *   - The scale 1/sqrt(dh) is applied to the scores, PyTorch 1.13 applies it to q first:
 *     the same in exact arithmetic, a few ulp apart in float.
 * Not here: add_bias_kv, add_zero_attn (files holding bias_k/bias_v are refused), dropout on
 * the weights, unbatched (2-D) inputs (use B = 1), NestedTensor fast paths.
 */
#ifndef ATTN_MHA_H
#define ATTN_MHA_H

#include "attn/attention.h"
#include "attn/core.h"
#include "attn/io.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* The blueprint. Zero-initialise, set embed_dim and num_heads; attn_mha_config_check fills the
 * defaults. */
typedef struct {
    int embed_dim; /* E */
    int num_heads; /* H; E % H must be 0 */
    int kdim;      /* features of key inputs; 0 = E */
    int vdim;      /* features of value inputs; 0 = E */
    int no_bias;   /* 1 = PyTorch's bias=False: no in_proj_bias, no out_proj.bias */
    /* An extension, off by default (0 = PyTorch semantics): rotary position encoding
     * (attn/posenc.h, rotate_half pairing, all dh features) applied to the projected q and k
     * of every head, query row n and key row n at position n. */
    int rope;
    float rope_base; /* 0 = 10000 */
} attn_mha_config;

/* Checks the config (sizes positive, E % H == 0, with the error naming them) and fills kdim
 * and vdim in place. Every call below checks a copy itself. */
int attn_mha_config_check(attn_mha_config *cfg);

/* The parameters: views into one allocation (data), in this order, which makes q_w..v_w
 * PyTorch's in_proj_weight (3E, E) when kdim == vdim == E, and q_b..v_b its in_proj_bias:
 *   q_w (E, E), k_w (E, kdim), v_w (E, vdim), q_b (E), k_b (E), v_b (E), out_w (E, E), out_b (E)
 * The biases are NULL with no_bias. Gradients use the same struct. */
typedef struct {
    float *q_w, *k_w, *v_w;
    float *q_b, *k_b, *v_b;
    float *out_w, *out_b;
    float *data;  /* the allocation (attn_malloc), owned */
    size_t size;  /* floats in data */
} attn_mha_weights;

/* Allocates zeroed weights for cfg. attn_mha_weights_free accepts a zeroed struct. */
int attn_mha_weights_init(attn_mha_weights *w, const attn_mha_config *cfg);
void attn_mha_weights_free(attn_mha_weights *w);
void attn_mha_weights_zero(attn_mha_weights *w); /* e.g. gradients before a backward */

/* PyTorch's initialisation (the same distributions, not the same numbers): xavier_uniform_
 * of in_proj_weight (3E, E) (or of each of q/k/v_proj_weight when kdim or vdim differ),
 * out_proj.weight uniform(-1/sqrt(E), 1/sqrt(E)), biases zero. */
int attn_mha_weights_reset(attn_mha_weights *w, const attn_mha_config *cfg, attn_rng *rng);

/* Reads the weights from an open safetensors file under PyTorch's state_dict names, each
 * prefixed by `prefix` (NULL or "" for none; e.g. "encoder.layers.0.self_attn."):
 *   kdim == vdim == E: in_proj_weight (3E, E);  otherwise q_proj_weight (E, E),
 *   k_proj_weight (E, kdim), v_proj_weight (E, vdim);  in_proj_bias (3E) unless no_bias;
 *   out_proj.weight (E, E);  out_proj.bias (E) unless no_bias.
 * ATTN_ENOTFOUND naming a missing tensor, ATTN_ESHAPE naming a mis-shaped one (with its
 * shape and the expected one), ATTN_EINVAL for a file with bias_k/bias_v (add_bias_kv) or
 * with biases when cfg has no_bias. w must be initialised for cfg. Any dtype the safetensors
 * reader converts (F32, F64, F16, BF16) is accepted. */
int attn_mha_weights_read(attn_mha_weights *w, const attn_mha_config *cfg, const attn_st *st, const char *prefix);

/* Adds the weights to a safetensors writer under the same names (F32). */
int attn_mha_weights_write(const attn_mha_weights *w, const attn_mha_config *cfg, attn_st_writer *wr,
                           const char *prefix);

/* Whole files: init + read (on failure *w is left zeroed), and write + save (atomic). */
int attn_mha_load(attn_mha_weights *w, const attn_mha_config *cfg, const char *path, const char *prefix);
int attn_mha_save(const attn_mha_weights *w, const attn_mha_config *cfg, const char *path, const char *prefix);

/* The per-call state, for one problem size. The forward fills it; the backward reads it (so
 * the backward must follow a forward with the same inputs and masks, with no forward on
 * other inputs in between). */
typedef struct {
    int B, Nq, Nk;
    float *q;    /* (B, Nq, E) projected queries (rotated, with rope); head h = columns h*dh.. */
    float *k;    /* (B, Nk, E) projected keys (rotated, with rope) */
    float *v;    /* (B, Nk, E) projected values */
    float *o;    /* (B, Nq, E) attention output, heads concatenated, before out_proj */
    float *lse;  /* (B, H, Nq) log-sum-exp of each masked score row; -inf for a row with no key */
    float *data;      /* the allocation of the above, owned */
    float *grad_data; /* backward scratch, allocated by the first backward, owned */
} attn_mha_cache;

int attn_mha_cache_init(attn_mha_cache *c, const attn_mha_config *cfg, int B, int Nq, int Nk);
void attn_mha_cache_free(attn_mha_cache *c); /* accepts a zeroed struct */

/* The attention core's description for this cache: B, H, Nq, Nk, dq = dk = dv = dh, scaled
 * dot-product score, and the strides that read q, k, v, o (B, N, E) as (B, H, N, dh) views:
 * {N*E, dh, E}. No masks. */
int attn_mha_attn_desc(const attn_mha_config *cfg, const attn_mha_cache *c, attn_desc *out);

/* Masks of one call (see the top). A zeroed struct, or NULL, is no mask. */
typedef struct {
    const uint8_t *key_padding_mask; /* (B, Nk), nonzero = padding; or NULL */
    const uint8_t *attn_mask_bool;   /* nonzero = NOT allowed; or NULL */
    const float *attn_mask_float;    /* added to the scores; or NULL (not both) */
    int attn_mask_ndim;              /* 2 or 3 */
    int64_t attn_mask_shape[3];      /* (Nq, Nk) / (B*H, Nq, Nk) / (H, Nq, Nk) */
    int is_causal;
} attn_mha_masks;

/* Forward.
 *   query (B, Nq, E), key (B, Nk, kdim), value (B, Nk, vdim); for self-attention pass the
 *   same array three times. B, Nq, Nk are the cache's.
 *   out (B, Nq, E), written.
 *   weights: NULL (PyTorch's need_weights=False), else written: (B, Nq, Nk) averaged over the
 *   heads when average_weights (PyTorch's default), (B, H, Nq, Nk) per head otherwise.
 * Runs on the library's threads; deterministic for any thread count. */
int attn_mha_forward(const attn_mha_config *cfg, const attn_mha_weights *w, attn_mha_cache *cache,
                     const float *query, const float *key, const float *value, const attn_mha_masks *masks,
                     float *out, float *weights, int average_weights);

/* Backward of the last attn_mha_forward on this cache, for dout (B, Nq, E) = dLoss/dout.
 *   dquery (B, Nq, E), dkey (B, Nk, kdim), dvalue (B, Nk, vdim): written (overwritten), each
 *   may be NULL; they must not overlap. In self-attention (query, key and value the same
 *   array x) dLoss/dx is dquery + dkey + dvalue: summing them is the caller's job.
 *   grads: parameter gradients, accumulated (+=) so that several calls add up; NULL for none.
 *   Zero them (attn_mha_weights_zero) before the first. Initialised for the same cfg. */
int attn_mha_backward(const attn_mha_config *cfg, const attn_mha_weights *w, attn_mha_cache *cache,
                      const float *query, const float *key, const float *value, const attn_mha_masks *masks,
                      const float *dout, float *dquery, float *dkey, float *dvalue, attn_mha_weights *grads);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
