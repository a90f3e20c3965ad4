/* attn/translator.h: one interface over the model families that translate, so that
 * `attn translate` and `attn eval` (and any C program) work with every checkpoint: the
 * recurrent encoder-decoders of attn/seq2seq.h and the Transformer of attn/transformer.h.
 *
 * A checkpoint's config.json has a "model" object whose "kind" names its family
 * ("seq2seq", "transformer"); attn_translator_load reads it and dispatches to the family's
 * loader. Every family stores its vocabularies and tokenisers the same way (src_vocab.txt,
 * tgt_vocab.txt, "src_tok", "tgt_tok"), encodes the source with <eos> appended, and decodes
 * into attn_s2s_hyp (greedy or beam search with the length normalisation logp / n^alpha), so
 * everything after the model (BLEU, buckets, pictures) is shared.
 *
 * Adding a family is one entry in the table in src/models/translator.c: its kind, loader,
 * accessors, batch decoder and attention maps.
 */
#ifndef ATTN_TRANSLATOR_H
#define ATTN_TRANSLATOR_H

#include "attn/core.h"
#include "attn/seq2seq.h"
#include "attn/text.h"
#include "attn/io.h"
#include "attn/params.h"
#include "attn/transformer.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef struct attn_translator attn_translator;

/* Loads the model in the checkpoint directory dir (written by attn_translator_save, or by a
 * training run: attn_checkpoint_save), whatever its family: configuration, weights and
 * vocabularies, every file verified (a missing, truncated or corrupt file is ATTN_EIO or
 * ATTN_EFORMAT with a message naming it, never a crash; ATTN_EFORMAT naming the kind when no
 * family knows it). A training run's optimiser and training state are attn_checkpoint_open's. */
int attn_translator_load(const char *dir, attn_translator **out);
void attn_translator_free(attn_translator *t); /* accepts NULL */

/* A new model of family `kind` ("seq2seq": cfg is an attn_s2s_config; "transformer": an
 * attn_transformer_config) whose vocabulary sizes are those of src and tgt, initialised with
 * `seed`, owning both vocabularies (taken, also on failure) and owned by *out. */
int attn_translator_new(const char *kind, const void *cfg, uint64_t seed, attn_vocab *src, attn_vocab *tgt, attn_translator **out);

/* A translator over a model in memory (e.g. one being trained), which stays the caller's:
 * attn_translator_free frees only the wrapper. */
int attn_translator_wrap_seq2seq(attn_s2s *m, attn_translator **out);
int attn_translator_wrap_transformer(attn_transformer *m, attn_translator **out);

/* ---- Checkpoints and training ------------------------------------------------------------- */

/* What a checkpoint of t holds besides its weights (attn_translator_params): the model object
 * for config.json (the family's configuration with its "kind", plus "command", what made it;
 * command may be NULL) and the vocabularies as two files, src_vocab.txt and tgt_vocab.txt.
 * For attn_checkpoint_save (attn/train.h), which adds the optimiser and training state. */
typedef struct {
    char *model_json;
    attn_ckpt_file files[2];
    char *data_[2];           /* the files' bytes (owned) */
} attn_model_export;
int attn_translator_export(const attn_translator *t, const char *command, attn_model_export *out);
void attn_model_export_free(attn_model_export *e); /* frees and zeroes; accepts NULL */

/* Writes the model alone (weights, vocabularies, configuration; no optimiser or training
 * state) as a checkpoint directory for attn_translator_load. The model must have its
 * vocabularies. */
int attn_translator_save(const attn_translator *t, const char *dir, const char *command);

/* The teacher-forced training loss of n sentence pairs on graph g: source i is src[i]
 * (src_len[i] ids ending in <eos>), target i is tgt[i] (tgt_len[i] + 2 ids: <bos> y_1 .. y_n
 * <eos>); the decoder reads <bos> y_1 .. y_n and predicts y_1 .. y_n <eos>. The mean
 * cross-entropy over those tgt_len[i] + 1 targets per pair, with label smoothing; *n_tokens
 * (optional) gets their number. The batch is padded in a buffer of t's (so one translator is
 * not for two threads at once). NULL on failure (the error, or g's sticky error, says why). */
attn_var *attn_translator_loss(attn_translator *t, attn_graph *g, int n, const int32_t *const *src, const int *src_len,
                               const int32_t *const *tgt, const int *tgt_len, float label_smoothing, int64_t *n_tokens);

/* The family ("seq2seq", "transformer") and a short label for tables: the attention kind of
 * a seq2seq model ("bahdanau", "none", ...), "transformer" for the Transformer. */
const char *attn_translator_kind(const attn_translator *t);
const char *attn_translator_label(const attn_translator *t);
/* The model itself, for family-specific calls: NULL when t is of the other family. */
attn_s2s *attn_translator_seq2seq(attn_translator *t);
attn_transformer *attn_translator_transformer(attn_translator *t);

attn_tok_kind attn_translator_src_tok(const attn_translator *t);
attn_tok_kind attn_translator_tgt_tok(const attn_translator *t);
const attn_vocab *attn_translator_src_vocab(const attn_translator *t);
const attn_vocab *attn_translator_tgt_vocab(const attn_translator *t);
/* The parameters (for an optimiser), and their number. */
attn_params *attn_translator_params(attn_translator *t);
int64_t attn_translator_num_params(const attn_translator *t);

/* Decodes n sentences of source ids (each ending in <eos>) as attn_s2s_decode does (a
 * sentence of length 0 gives an empty hypothesis). For the Transformer, hyps[i].align is the
 * cross-attention of the last decoder layer averaged over its heads, (n + eos, S). */
int attn_translator_decode(attn_translator *t, int n, const int32_t *const *src, const int *src_len,
                           const attn_s2s_decode_opts *opts, attn_s2s_hyp *hyps);

/* ---- The decoder's states, for a translation memory (attn/knnmt.h) ------------------------ */

/* The size of the decoder's final state, the vector the output projection reads (the key of
 * attn/knnmt.h and the `state` of attn_decode_hook): the hidden size of a seq2seq model (its
 * output layer's tanh(Wc [ctx; s] + bc)), d_model for the Transformer (after the last layer
 * norm). */
int attn_translator_state_dim(const attn_translator *t);

/* Teacher forcing: the decoder's final states at every target position of n pairs, computed
 * by the same decoding steps as attn_translator_decode (so that a state seen here and one
 * seen while decoding the same prefix are the same vector). Pair i: source src[i] (src_len[i]
 * >= 1 ids ending in <eos>), target tgt[i] (tgt_len[i] >= 0 ids, no <bos> / <eos>); the
 * decoder reads <bos> y_1 .. y_n and gives tgt_len[i] + 1 rows (the states that predicted
 * y_1 .. y_n, <eos>). out (sum_i (tgt_len[i] + 1), attn_translator_state_dim(t)), pairs in
 * order. ATTN_EINVAL for an id out of range or (Transformer) a side longer than its max_len. */
int attn_translator_states(attn_translator *t, int n, const int32_t *const *src, const int *src_len,
                           const int32_t *const *tgt, const int *tgt_len, float *out);

/* A 64-bit identity of the model: FNV-1a over its configuration (JSON, without "command"),
 * its weights' bytes and both vocabularies, so that a file made for one model (a translation
 * memory) can refuse another. */
int attn_translator_identity(const attn_translator *t, uint64_t *out);

/* One sentence of text, as attn_s2s_translate. */
int attn_translator_translate(attn_translator *t, const char *sentence, const attn_s2s_decode_opts *opts,
                              attn_s2s_translation *out);

/* Every attention map of one translated sentence, for pictures: for the Transformer each
 * layer and head of the encoder self-attention (S, S), the decoder self-attention
 * (n + 1, n + 1) over the decoder inputs <bos> y_1 .. y_n, and the cross-attention
 * (n + eos, S); for a seq2seq model with attention, its alignment as one cross map (layer
 * 0, head 0); none for the distracted model. */
typedef enum { ATTN_MAP_ENCODER_SELF = 0, ATTN_MAP_DECODER_SELF = 1, ATTN_MAP_CROSS = 2 } attn_map_kind;
const char *attn_map_kind_name(attn_map_kind k); /* "encoder self-attention", ... */

typedef struct {
    attn_map_kind kind;
    int layer, head;
    int rows, cols;
    float *w; /* (rows, cols) */
} attn_map;

typedef struct {
    int n;
    attn_map *maps;
    float *data_; /* private: the storage of every w */
} attn_map_set;

void attn_map_set_free(attn_map_set *s); /* frees and zeroes; accepts NULL */

/* src (S) the source ids as decoded (with <eos>), hyp the decoded sentence. */
int attn_translator_maps(attn_translator *t, const int32_t *src, int S, const attn_s2s_hyp *hyp, attn_map_set *out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
