/* attn/seq2seq.h: the encoder-decoder translation models of the seed, trainable in C: the
 * "distracted" model that squeezes the source into one vector C (Cho et al. 2014), and the
 * models with attention that build a new context C_i = sum_j a_ij h_j for every target word
 * (Bahdanau et al. 2014, additive scores; Luong et al. 2015, dot and general scores).
 *
 * The model, for a source x_1..x_S (followed by <eos>) and a target y_1..y_T:
 *   encoder   h_j = GRU(E_src x_j, h_{j-1})  (or an LSTM; bidirectional: the forward and
 *             backward states of size H/2 side by side, so h_j has size H either way);
 *             s_0 = the final state(s), C = s_0.
 *   decoder   with y_0 = <bos>, for t = 1..T:
 *     none      s_t = GRU([E_tgt y_{t-1}; C], s_{t-1});       c_t = C
 *     bahdanau  a_tj = softmax_j(va . tanh(Wa s_{t-1} + ba + Ua h_j + bu))
 *               c_t = sum_j a_tj h_j;  s_t = GRU([E_tgt y_{t-1}; c_t], s_{t-1})
 *     luong-*   s_t = GRU(E_tgt y_{t-1}, s_{t-1});  a_tj = softmax_j(score(s_t, h_j))
 *               c_t = sum_j a_tj h_j, score = s . h (dot) or s^T Wa h (general)
 *     all       h~_t = tanh(Wc [c_t; s_t] + bc);  p(y_t) = softmax(Ws h~_t + bs)
 *   The distracted model is thus the same network with c_t fixed to C: every source word
 *   weighs the same at every step. Keys are masked past each source's length (padding).
 *   Dropout (training only) on both embeddings and on h~. Luong's "input feeding" is left
 *   out, so the Luong decoders run their recurrence over the whole target in one call.
 *
 * Parameters carry PyTorch's names (a state_dict of the equivalent nn.Module loads as is):
 *   encoder.embedding.weight (Vs, E)
 *   encoder.gru.weight_ih_l0 (3*He, E), weight_hh_l0 (3*He, He), bias_ih_l0, bias_hh_l0
 *     (+ the same with the suffix _reverse when bidirectional; He = H or H/2; "lstm" and
 *     4*He for an LSTM)
 *   decoder.embedding.weight (Vt, E)
 *   decoder.gru.weight_ih_l0 (3*H, E + H for none and bahdanau, E for luong), ...
 *   decoder.attention.Wa.weight (A, H), Wa.bias (A), Ua.weight (A, H), Ua.bias (A),
 *     Va.weight (1, A)                                          (bahdanau)
 *   decoder.attention.Wa.weight (H, H)                          (luong-general)
 *   decoder.concat.weight (H, 2*H), decoder.concat.bias (H)
 *   decoder.out.weight (Vt, H), decoder.out.bias (Vt)
 *
 * Batches are time-major, as the recurrent layers take them: ids (S, B) with each column a
 * sentence followed by padding (ATTN_PAD). Vocabularies (attn/text.h) reserve ids 0..3 for
 * <pad> <unk> <bos> <eos>; the source is encoded with <eos> appended, the decoder input
 * starts with <bos> and the targets end with <eos>.
 *
 * A model object is not thread-safe: decoding uses a graph it owns.
 * Not here: beam search batched over sentences (beams run one sentence at a time; greedy
 * decoding is batched), input feeding, more than one layer, sub-word tokenisation.
 */
#ifndef ATTN_SEQ2SEQ_H
#define ATTN_SEQ2SEQ_H

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/text.h"
#include "attn/params.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef enum {
    ATTN_S2S_NONE = 0,         /* the distracted model: one context vector C */
    ATTN_S2S_BAHDANAU = 1,     /* additive attention, query = the previous decoder state */
    ATTN_S2S_LUONG_DOT = 2,    /* multiplicative, score s_t . h_j */
    ATTN_S2S_LUONG_GENERAL = 3 /* multiplicative, score s_t^T Wa h_j */
} attn_s2s_attention;

/* "none", "bahdanau", "luong-dot", "luong-general" <-> the enum; parse returns -1 if unknown. */
const char *attn_s2s_attention_name(attn_s2s_attention a);
int attn_s2s_attention_parse(const char *name);

typedef enum { ATTN_S2S_GRU = 0, ATTN_S2S_LSTM = 1 } attn_s2s_rnn;
const char *attn_s2s_rnn_name(attn_s2s_rnn r); /* "gru", "lstm" */
int attn_s2s_rnn_parse(const char *name);

typedef struct {
    attn_s2s_attention attention;
    attn_s2s_rnn rnn;
    int bidirectional;       /* encoder: two directions of H/2 each (H must be even) */
    int src_vocab, tgt_vocab;/* Vs, Vt: vocabulary sizes, the four specials included (>= 5) */
    int emb;                 /* E: embedding size of both sides */
    int hidden;              /* H: decoder state and encoder output size */
    int attn_size;           /* A: hidden size of the additive score (0: H) */
    float dropout;           /* in [0, 1) */
    attn_tok_kind src_tok, tgt_tok; /* tokenisers of the text-level calls (ZH and EN) */
} attn_s2s_config;

/* E 256, H 256, GRU, unidirectional, bahdanau, dropout 0.2, ZH -> EN; vocabulary sizes 0
 * (to be set). */
attn_s2s_config attn_s2s_defaults(void);

/* The configuration as a JSON object ({"kind": "seq2seq", "attention": "bahdanau", ...}),
 * freed with attn_free; and back (unknown keys are ignored, missing ones take the defaults,
 * bad values are ATTN_EFORMAT). */
int attn_s2s_config_to_json(const attn_s2s_config *cfg, char **out);
int attn_s2s_config_from_json(const char *json, attn_s2s_config *cfg);

typedef struct attn_s2s attn_s2s;

/* A model with its parameters declared, allocated and initialised as PyTorch does by default
 * (see attn_init_fan), seeded with `seed`. ATTN_EINVAL for a configuration that does not make
 * sense, with a message saying why. Checkpoints: attn_translator_save / attn_translator_load. */
int attn_s2s_new(const attn_s2s_config *cfg, uint64_t seed, attn_s2s **out);
void attn_s2s_free(attn_s2s *m); /* accepts NULL */
const attn_s2s_config *attn_s2s_get_config(const attn_s2s *m);
attn_params *attn_s2s_params(attn_s2s *m);

/* Vocabularies for the text-level calls. The model takes ownership of both (also on
 * failure); their sizes must equal the configuration's. */
int attn_s2s_set_vocabs(attn_s2s *m, attn_vocab *src, attn_vocab *tgt);
const attn_vocab *attn_s2s_src_vocab(const attn_s2s *m); /* NULL if none was set */
const attn_vocab *attn_s2s_tgt_vocab(const attn_s2s *m);

/* ---- Training ---------------------------------------------------------------------------- */

/* A teacher-forced batch, time-major. */
typedef struct {
    int B, S, T;
    const int32_t *src;     /* (S, B) source ids (ending in <eos>), ATTN_PAD after src_len[b] */
    const int32_t *src_len; /* (B) in [1, S] */
    const int32_t *tgt_in;  /* (T, B) decoder inputs: <bos> y_1 .. y_{n-1}, padded */
    const int32_t *tgt_out; /* (T, B) targets: y_1 .. y_{n-1} <eos>, ATTN_PAD (ignored) after */
} attn_s2s_batch;

/* The logits (T, B, Vt) of the batch on graph g (recorded for the backward when g records
 * gradients; dropout when g is training). *weights, if not NULL, gets the attention weights
 * (T, B, S) as a node without gradient (NULL for the none model). NULL on failure (the
 * graph's sticky error says why). */
attn_var *attn_s2s_forward(attn_s2s *m, attn_graph *g, const attn_s2s_batch *b, attn_var **weights);

/* The training loss: cross-entropy of the logits against tgt_out, averaged over the target
 * tokens that are not padding, with label smoothing eps (PyTorch's definition). */
attn_var *attn_s2s_loss(attn_s2s *m, attn_graph *g, const attn_s2s_batch *b, float label_smoothing);

/* ---- Decoding ---------------------------------------------------------------------------- */

typedef struct {
    int beam;           /* beam width K (<= 1: greedy) */
    float len_alpha;    /* length normalisation: a hypothesis scores logp / len^alpha, len
                           counting <eos> (0: raw log-probability); default 1 */
    int max_len;        /* most target tokens (<eos> aside); 0: 2 * S + 10 */
    const attn_decode_hook *hook; /* called at every step (attn/core.h); NULL: none */
} attn_s2s_decode_opts;

attn_s2s_decode_opts attn_s2s_decode_defaults(void); /* greedy, alpha 1, max_len 0 */

/* One decoded sentence. */
typedef struct {
    int n;          /* target tokens, <eos> excluded */
    int32_t *ids;   /* (n) */
    int eos;        /* 1 if decoding ended with <eos> (not by max_len) */
    int S;          /* source positions, <eos> included */
    float *align;   /* (n + eos, S) attention weights of each output step (the <eos> step
                       last); NULL for the none model */
    double logp;    /* log-probability of the tokens (and <eos>) */
    double score;   /* what the beam ranked: logp / (n + eos)^alpha */
} attn_s2s_hyp;

void attn_s2s_hyp_free(attn_s2s_hyp *h); /* frees and zeroes; accepts NULL */

/* Decodes n sentences of source ids (each ending in <eos>, ids in [0, Vs)), greedily in
 * batches, or with beam search one at a time. A sentence of length 0 gives an empty
 * hypothesis without running the model. hyps (n) start zeroed or freed. */
int attn_s2s_decode(attn_s2s *m, int n, const int32_t *const *src, const int *src_len,
                    const attn_s2s_decode_opts *opts, attn_s2s_hyp *hyps);

/* ---- Text ------------------------------------------------------------------------------- */

/* A sentence translated: its source tokens (with "<eos>" last; unknown ones shown as they
 * were written, with n_unk counting them), the hypothesis, its tokens and detokenised text. */
typedef struct {
    attn_tokens src;    /* S tokens, the last "<eos>"; empty (n = 0) for an empty input */
    int n_unk;          /* source tokens not in the vocabulary (read as <unk>) */
    attn_s2s_hyp hyp;
    attn_tokens out;    /* the hyp.n target tokens; "<unk>" where the model wrote it */
    char *text;         /* detokenised, capitalised ("I love you."); "" for an empty input */
} attn_s2s_translation;

void attn_s2s_translation_free(attn_s2s_translation *t); /* frees and zeroes; accepts NULL */

/* Source ids of a sentence: tokenised with the model's source tokeniser, unknown tokens ->
 * <unk>, <eos> appended; *n gets their number (0 for an input with no token: no <eos>
 * then), *n_unk (optional) the unknown ones. ids freed with attn_free. ATTN_EINVAL if the
 * sentence has more than ATTN_S2S_MAX_SRC tokens. */
#define ATTN_S2S_MAX_SRC 1000
int attn_s2s_encode_source(attn_s2s *m, const char *sentence, int32_t **ids, int *n, int *n_unk);

/* Translates one sentence (UTF-8; invalid bytes read as U+FFFD; an empty or white-space
 * line gives an empty translation). */
int attn_s2s_translate(attn_s2s *m, const char *sentence, const attn_s2s_decode_opts *opts,
                       attn_s2s_translation *out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
