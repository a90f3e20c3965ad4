/* attn/transformer.h: the Transformer encoder-decoder of "Attention is all you need"
 * (Vaswani et al. 2017): self-attention instead of recurrence, so every position meets every
 * other at distance one and a whole sequence is computed in parallel; position encodings,
 * because attention alone cannot see order; trained on the autograd tape (attn/autograd.h),
 * decoded with a key/value cache, greedily or by beam search.
 *
 *   encoder  x = dropout(embed(src) * sqrt(E) + pos);  per layer (post-LN, the paper's):
 *              x = LN1(x + drop(SelfAttn(x)));  x = LN2(x + drop(FF(x)))
 *            or pre-LN (norm_first):  x = x + drop(SelfAttn(LN1(x)));  x = x + drop(FF(LN2(x)))
 *            memory = LN_enc(x)
 *   decoder  y = dropout(embed(tgt_in) * sqrt(E) + pos);  per layer: causal self-attention,
 *            cross-attention over the memory, feed-forward, each with its residual and norm
 *            (LN1, LN2, LN3) as above;  out = LN_dec(y)
 *   logits   out W_g^T + b_g  (W_g the target embedding when tied)
 *   FF(x)    = linear2(drop(act(linear1(x))))   act = ReLU or GELU
 *
 * The layers are exactly PyTorch's nn.Transformer(d_model, nhead, num_encoder_layers,
 * num_decoder_layers, dim_feedforward, dropout, activation, batch_first=True, norm_first)
 * with dropout 0, and the parameters carry its state_dict names, so weights exported from
 * PyTorch load as they are:
 *   encoder.layers.{i}.self_attn.in_proj_weight (E + 2*Hkv*dh, E)  in_proj_bias (E + 2*Hkv*dh)
 *   encoder.layers.{i}.self_attn.out_proj.weight (E, E)  .bias (E)
 *   encoder.layers.{i}.linear1.weight (F, E) .bias (F)   linear2.weight (E, F) .bias (E)
 *   encoder.layers.{i}.norm1 / norm2 .weight .bias (E)    encoder.norm.weight .bias (E)
 *   decoder.layers.{i}.self_attn.*  decoder.layers.{i}.multihead_attn.* (cross-attention)
 *   decoder.layers.{i}.linear1/linear2/norm1/norm2/norm3.*  decoder.norm.weight .bias
 * and around them (not part of nn.Transformer):
 *   src_embed.weight (Vs, E)   tgt_embed.weight (Vt, E)   (one table "embed.weight" when all
 *   three are shared)  generator.weight (Vt, E) (absent when tied)  generator.bias (Vt)
 *   src_pos.weight, tgt_pos.weight (max_len, E) for learned positions.
 *   decoder.layers.{i}.self_attn.alibi_slopes (H) with learned ALiBi slopes (alibi_learn).
 * With grouped key/value heads (kv_heads < heads, Ainslie et al. 2023) the key and value
 * blocks of in_proj have kv_heads * dh rows each; with kv_heads == heads that is PyTorch's.
 *
 * Position encodings (attn/posenc.h), one kind for both stacks:
 *   none        attention sees a bag of words (the seed's "weakness")
 *   sinusoidal  the paper's fixed table added to the embeddings
 *   learned     trained tables (max_len, E) added to the embeddings
 *   rope        queries and keys of every self-attention rotated by their position (no
 *               embedding added; cross-attention is left unrotated)
 *   alibi       a bias -slope_h * distance on the self-attention scores (symmetric |i - j|
 *               in the encoder, causal in the decoder; none on cross-attention); the paper's
 *               geometric slopes, or with alibi_learn the decoder's slopes are parameters
 *               (initialised to those) trained through the kernels' dSlopes (attn_mods). The
 *               encoder's stay fixed: attn_mods' ALiBi is slope_h (j - i), which the causal
 *               decoder needs, and the encoder's symmetric -slope_h |j - i| has no gradient
 *               there (it is a bias mask).
 *
 * Attention runs through attn_forward / attn_backward (the fused kernels), reading the heads
 * of the packed q/k/v projections through strides. Dropout acts on the embeddings, the
 * residual branches and the feed-forward hidden layer, and (attn_dropout) on the attention
 * weights inside the fused kernels: each attention of each step draws its own mask seed from
 * the graph's generator, so masks differ between layers, kinds and steps. Not here: relative
 * position embeddings, encoder-only and decoder-only stacks.
 *
 * Letters: B batch, S source length, T target length, E d_model, H heads, Hkv key/value
 * heads, dh = E / H, F d_ff, Vs and Vt vocabulary sizes, K beam width. Token ids follow
 * attn/text.h: 0 <pad>, 1 <unk>, 2 <bos>, 3 <eos>.
 */
#ifndef ATTN_TRANSFORMER_H
#define ATTN_TRANSFORMER_H

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/text.h"
#include "attn/params.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef enum {
    ATTN_POS_NONE = 0,
    ATTN_POS_SINUSOIDAL = 1,
    ATTN_POS_LEARNED = 2,
    ATTN_POS_ROPE = 3,
    ATTN_POS_ALIBI = 4
} attn_pos_kind;
const char *attn_pos_name(attn_pos_kind k); /* "none", "sinusoidal", "learned", "rope", "alibi" */
int attn_pos_parse(const char *name);       /* -1 if unknown */

typedef enum {
    ATTN_SHARE_NONE = 0, /* three tables: source embedding, target embedding, generator */
    ATTN_SHARE_TGT = 1,  /* the generator is the target embedding (Press & Wolf 2017) */
    ATTN_SHARE_ALL = 2   /* one table for both embeddings and the generator (the paper's;
                            needs one vocabulary: src_vocab == tgt_vocab) */
} attn_share_kind;
const char *attn_share_name(attn_share_kind k); /* "none", "tgt", "all" */
int attn_share_parse(const char *name);

typedef enum { ATTN_ACT_RELU = 0, ATTN_ACT_GELU = 1 } attn_act_kind;

/* The blueprint. attn_transformer_config_default() gives the values noted here; then set the
 * vocabulary sizes. */
typedef struct {
    int src_vocab, tgt_vocab;  /* Vs, Vt (>= 4: the special ids) */
    int d_model;               /* E = 256 */
    int heads;                 /* H = 4; E % H == 0 and dh = E / H even for rope */
    int kv_heads;              /* Hkv: 0 = H; H % Hkv == 0 */
    int d_ff;                  /* F = 1024 */
    int enc_layers, dec_layers;/* 3, 3 (nn.Transformer's default is 6, 6) */
    int max_len;               /* 256: longest sequence (learned tables; decoding limit) */
    attn_pos_kind pos;         /* sinusoidal */
    float rope_base;           /* 10000 */
    int norm_first;            /* 0 = post-LN (the paper, PyTorch's default); 1 = pre-LN */
    attn_act_kind activation;  /* relu */
    attn_share_kind share;     /* tgt */
    int scale_embed;           /* 1: embeddings times sqrt(E), as the paper */
    float dropout;             /* 0.1 */
    float ln_eps;              /* 1e-5 */
    attn_tok_kind src_tok, tgt_tok; /* tokenisers of the text (ZH -> EN), as attn/seq2seq.h */
    float attn_dropout;        /* 0: dropout on the attention weights of every attention (in
                                  the fused kernels, attn_mods.dropout), training only */
    int alibi_learn;           /* 0; 1 (pos alibi only): the decoder's self-attention slopes
                                  are parameters, one vector (H) per layer */
} attn_transformer_config;

attn_transformer_config attn_transformer_config_default(void);
/* Checks every field (the message names the first bad one) and fills kv_heads. */
int attn_transformer_config_check(attn_transformer_config *cfg);

/* The config as a JSON object {"kind": "transformer", "src_vocab": ..., ...} (every field,
 * enums by name; the tokenisers as "src_tok"/"tgt_tok": "space", "en", "en-tutorial", "zh"),
 * in *json (freed with attn_free); and back. Parsing is strict about the
 * kind and the types and takes defaults for missing fields; unknown fields are ignored (so a
 * checkpoint's model object may carry more, e.g. the data settings). */
int attn_transformer_config_to_json(const attn_transformer_config *cfg, char **json);
int attn_transformer_config_from_json(const char *json, attn_transformer_config *cfg);

/* A model: its config and its parameters (an attn_params store it owns). */
typedef struct attn_transformer attn_transformer;

/* Declares and allocates the parameters for cfg (checked), initialised with `seed`:
 * Xavier-uniform weight matrices (nn.Transformer's _reset_parameters), zero attention
 * biases, nn.Linear's uniform biases, LayerNorm ones and zeros, embeddings normal(0, E^-0.5)
 * (so that times sqrt(E) they have unit variance), learned positions normal(0, 0.1). */
int attn_transformer_new(const attn_transformer_config *cfg, uint64_t seed, attn_transformer **out);
void attn_transformer_free(attn_transformer *m); /* accepts NULL */
const attn_transformer_config *attn_transformer_get_config(const attn_transformer *m);
attn_params *attn_transformer_params(attn_transformer *m);
int64_t attn_transformer_num_params(const attn_transformer *m);

/* One padded batch. Sequences are padded at the end with <pad> (0); src rows need no <bos>
 * or <eos> by convention of the caller (the CLI appends <eos> to the source); tgt_in is
 * <bos> y1 .. yn and tgt_out is y1 .. yn <eos>, padded. */
typedef struct {
    int B, S, T;
    const int32_t *src;     /* (B, S) ids in [0, Vs) */
    const int32_t *src_len; /* (B) in [1, S] */
    const int32_t *tgt_in;  /* (B, T) ids in [0, Vt) */
    const int32_t *tgt_out; /* (B, T) ids, <pad> where there is no target (loss only) */
} attn_transformer_batch;

/* Attention weights of one forward, for pictures: P of every layer and head. */
typedef struct {
    int enc_layers, dec_layers, heads, S, T, B;
    float *enc_self;  /* (enc_layers, B, H, S, S) */
    float *dec_self;  /* (dec_layers, B, H, T, T) */
    float *cross;     /* (dec_layers, B, H, T, S) */
} attn_transformer_maps;
void attn_transformer_maps_free(attn_transformer_maps *maps); /* frees and zeroes; accepts NULL */

/* The logits (B, T, Vt) of a teacher-forced forward on graph g (its training flag decides
 * dropout; its gradient flag whether a tape is recorded). maps, if not NULL, gets the
 * attention weights (allocated here). NULL on failure (sticky error in g). */
attn_var *attn_transformer_forward(attn_transformer *m, attn_graph *g, const attn_transformer_batch *b,
                                   attn_transformer_maps *maps);
/* The mean cross-entropy over the non-<pad> targets of tgt_out, with label smoothing eps:
 * a scalar node for attn_graph_backward. *n_tokens (optional) gets the number of targets. */
attn_var *attn_transformer_loss(attn_transformer *m, attn_graph *g, const attn_transformer_batch *b,
                                float label_smoothing, int64_t *n_tokens);

/* ---- Decoding ------------------------------------------------------------------------------ */

typedef struct {
    int beam;              /* K: 1 = greedy (the default when 0) */
    float length_penalty;  /* alpha: hypotheses are ranked by log p / n^alpha, n their length
                              counting <eos> (attn/seq2seq.h's len_alpha); 0 = raw log p */
    int max_len;           /* most output tokens (<eos> not counted); 0 = 2 S + 10, capped
                              at the config's max_len - 1 */
    const attn_decode_hook *hook; /* called at every step (attn/core.h); NULL: none */
} attn_decode_opts;

/* What decoding found for one sentence, besides its ids. */
typedef struct {
    double logp;  /* log-probability of the output tokens (and of <eos> when eos) */
    double score; /* what the beam ranked: logp / (n + eos)^alpha (logp when alpha is 0) */
    int eos;      /* 1 if the output ended with <eos>; 0 if cut by max_len */
} attn_transformer_result;

/* Translates B sentences (src (B, S) padded, src_len (B)) with a key/value cache: the
 * encoder runs once, then each step runs the decoder on the newest token only, attending
 * over the cached keys and values of the earlier ones.
 *   out (B, cap) gets each output's ids (no <bos>, no <eos>), out_len (B) their lengths
 *   (cut at cap), res (B) (optional) their scores. A sentence stops at <eos> or at max_len
 *   tokens. Deterministic; no dropout. */
int attn_transformer_translate(const attn_transformer *m, int B, int S, const int32_t *src, const int32_t *src_len,
                               const attn_decode_opts *opts, int cap, int32_t *out, int32_t *out_len,
                               attn_transformer_result *res);

/* The attention weights of one sentence pair (src (S), tgt_in (T): <bos> then the output), for
 * pictures: a teacher-forced forward in evaluation mode with B = 1. */
int attn_transformer_attention_maps(const attn_transformer *m, const int32_t *src, int S, const int32_t *tgt_in, int T,
                                    attn_transformer_maps *maps);

/* The decoder's log-probabilities (T, Vt) for the next token after each prefix of tgt_in (T),
 * computed step by step with the key/value cache (what decoding computes), for testing it
 * against the teacher-forced forward. */
int attn_transformer_step_logprobs(const attn_transformer *m, const int32_t *src, int S, const int32_t *tgt_in, int T,
                                   float *logp);

/* ---- Vocabularies ------------------------------------------------------- */

/* Vocabularies for text: the model takes ownership of both (also on failure); their sizes
 * must equal the config's. */
int attn_transformer_set_vocabs(attn_transformer *m, attn_vocab *src, attn_vocab *tgt);
const attn_vocab *attn_transformer_src_vocab(const attn_transformer *m); /* NULL if none set */
const attn_vocab *attn_transformer_tgt_vocab(const attn_transformer *m);

/* Checkpoints: attn_translator_save / attn_translator_load (attn/translator.h). */

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
