/* Internals of the sequence-to-sequence models (not API): the additive-attention step of the
 * Bahdanau decoder, a call of the library's attention tape op. */
#ifndef ATTN_MODELS_S2S_INTERNAL_H
#define ATTN_MODELS_S2S_INTERNAL_H

#include "attn/autograd.h"
#include "attn/seq2seq.h"
#include "io/common.h"

/* One decoder step of additive (Bahdanau) attention over time-major encoder states, with the
 * keys' projection Uk = H Ua^T + bu computed once per batch by the caller (the attention op
 * then runs the additive score on projected queries and keys):
 *   e_bj   = va . tanh(q_b + Uk_jb)              j < len[b]   (hidden keys: weight 0)
 *   a_b    = softmax_j(e_b)
 *   ctx_b  = sum_j a_bj H_jb
 * q (B, A) = Wa s + ba, Uk (S, B, A), va a node of A elements (e.g. Va.weight (1, A)),
 * H (S, B, D), len (B) int32 in [1, S] (copied). Returns ctx (B, D); *weights (optional)
 * gets a (B, S) node without gradient. The backward gives q, Uk, va and H their gradients.
 * Every result is the same for any thread count (work split by batch row, va's gradient
 * summed in a fixed order). */
attn_var *attn__s2s_additive_step(attn_graph *g, attn_var *q, attn_var *Uk, attn_var *va, attn_var *H,
                                  const int32_t *len, attn_var **weights);

/* The model: configuration, parameters (views into one store), vocabularies, and the graph
 * decoding runs on. */
struct attn_s2s {
    attn_s2s_config cfg;
    int He;                   /* encoder hidden size per direction: H or H/2 */
    attn_params *ps;
    attn_param *enc_emb;
    attn_param *enc_rnn[2][4];/* direction x {weight_ih, weight_hh, bias_ih, bias_hh} */
    attn_param *dec_emb;
    attn_param *dec_rnn[4];
    attn_param *Wa, *ba, *Ua, *bu, *va; /* bahdanau */
    attn_param *Wg;                     /* luong-general */
    attn_param *Wc, *bc, *Ws, *bs;
    attn__vocab_pair voc;
    attn_graph *g;            /* decoding */
    attn_tokens tok;          /* scratch for the text calls */
};

/* The encoder's results on a graph. */
typedef struct {
    int S, B;
    attn_var *H;      /* (S, B, H) states, zeros past each length */
    attn_var *Uk;     /* (S, B, A) bahdanau keys, else NULL */
    attn_var *s0, *c0;/* (B, H) initial decoder state (c0: LSTM only) */
    const int32_t *len; /* (B) */
} s2s_enc;

/* Encoder over src (S, B) with lengths (B). 0 on failure (sticky error in g). */
int attn__s2s_encode(attn_s2s *m, attn_graph *g, const int32_t *src, const int32_t *len, int S, int B, s2s_enc *enc);

/* One decoder step for B rows: previous tokens y (B), state s (B, H) (and c for an LSTM).
 * Returns the logits (B, Vt); *s_out (*c_out) the new state, *weights (optional) the
 * attention weights (B, S) (NULL for the none model), *hidden (optional) the output layer's
 * input tanh(Wc [ctx; s] + bc) (B, H): the decoder's final state, the key of attn/knnmt.h. */
attn_var *attn__s2s_step(attn_s2s *m, attn_graph *g, const s2s_enc *enc, const int32_t *y, attn_var *s, attn_var *c,
                         attn_var **s_out, attn_var **c_out, attn_var **weights, attn_var **hidden);

/* Teacher forcing for the translation memory: the decoder's final states (as attn__s2s_step's
 * *hidden) at every target position of n pairs: pair i (source src[i] (len[i] ids ending in
 * <eos>), target tgt[i] (tgt_len[i] ids, no <bos> / <eos>)) reads <bos> y_1 .. y_n and gives
 * tgt_len[i] + 1 rows of out (sum_i (tgt_len[i] + 1), H), pairs in order. */
int attn__s2s_forced_states(attn_s2s *m, int n, const int32_t *const *src, const int *len, const int32_t *const *tgt,
                            const int *tgt_len, float *out);

/* Beam search over one sentence of len source ids (len >= 1), any K >= 1 (attn_s2s_decode
 * sends K = 1 to the greedy path; tests call this to compare the two). */
int attn__s2s_beam(attn_s2s *m, const int32_t *src, int len, const attn_s2s_decode_opts *o, attn_s2s_hyp *h);

#endif
