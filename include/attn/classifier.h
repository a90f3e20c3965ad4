/* attn/classifier.h: neural text classifiers, the seed's question in code: is attention
 * without positions more than "a refined bag of words"? Five kinds, from a plain bag to a
 * Transformer and a CNN, each a sentence of token ids in, class logits out, trained on the
 * autograd tape (attn/autograd.h) by the trainer (attn/classifier_train.h):
 *
 *   bow          h = mean_t e(x_t) over the real tokens; logits = fc(h). Every word weighs
 *                the same (the "distracted" classifier).
 *   attn-pool    the seed's "weighted bag of words": no positions; a learned query scores
 *                every word vector, softmax over the real tokens, h = sum_t a_t e(x_t).
 *                Scores: additive (Yang et al. 2016's form: a_t = softmax(u . tanh(W e_t + b))
 *                with a learned context vector u) or scaled (a_t = softmax(q . e_t / sqrt(E))).
 *   bigru-attn   Yang et al. 2016, word level: a bidirectional GRU h_t = [fwd_t; bwd_t], then
 *                the additive attention above over h_t (order enters through the recurrence).
 *   transformer  a Transformer encoder (attn/transformer.h's layers, post-LN, ReLU) with
 *                positions none|sinusoidal|learned|rope|alibi, pooled by a [CLS] position
 *                (ATTN_BOS prepended to every sentence; h = its final state) or by attention
 *                pooling (a learned query, scaled score, over the final states).
 *   cnn          Kim 2014 (CNN-rand): for each filter width w (default 3, 4, 5), a 1-D
 *                convolution of `maps` filters (default 100) over the word vectors, "wide"
 *                as in Kim's code: each sentence gets w - 1 zero vectors at both ends, so a
 *                sentence of L >= 1 tokens (shorter than w too) has L + w - 1 windows; then
 *                the max over those windows and ReLU; h = the maps of every width concatenated.
 * Dropout acts on the word vectors and on h; the last layer is fc (C, D).
 *
 * Exact bags: bow and attn-pool see a sentence as a multiset of tokens, and compute it so:
 * the forward sorts the real tokens of each sentence by id first, so every sum runs in one
 * order whatever the word order, and the logits are BITWISE the same for any permutation of
 * a sentence (in evaluation mode; dropout masks follow positions). The attention weights are
 * given back in the sentence's own order.
 *
 * Parameters (attn_params, PyTorch-like names): embed.weight (V, E); fc.weight (C, D),
 * fc.bias (C); attn-pool: pool.proj.weight (A, E), pool.proj.bias (A), pool.context (A)
 * (additive) or pool.query (E) (scaled); bigru-attn: gru.weight_ih_l0 (3 Hd, E),
 * gru.weight_hh_l0 (3 Hd, Hd), gru.bias_ih_l0, gru.bias_hh_l0 (3 Hd) and the same with
 * _reverse (nn.GRU(bidirectional=True)'s names), pool.proj.weight (A, 2 Hd), pool.proj.bias,
 * pool.context (A); transformer: encoder.layers.{i}.* and encoder.norm.* as
 * nn.TransformerEncoder's, pos_embed.weight (max_len, E) for learned positions, pool.query (E)
 * for attention pooling; cnn: convs.{i}.weight (maps, E, w_i) and convs.{i}.bias (maps) for
 * the i-th width (nn.Conv1d's layout).
 *
 * Letters: B sentences, T tokens (padded), V vocabulary, E embedding (d_model), Hd hidden,
 * A attention size (hidden for attn-pool, 2 hidden for bigru-attn), D the pooled size (E,
 * 2 Hd for bigru-attn, maps times the number of widths for cnn), C classes. Token ids follow
 * attn/text.h (0 <pad>, 1 <unk>, 2 <bos>).
 */
#ifndef ATTN_CLASSIFIER_H
#define ATTN_CLASSIFIER_H

#include <stdint.h>

#include "attn/attention.h"
#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/params.h"
#include "attn/text.h"
#include "attn/transformer.h"
#include "attn/translator.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef enum {
    ATTN_CLS_BOW = 0,
    ATTN_CLS_ATTN_POOL = 1,
    ATTN_CLS_BIGRU_ATTN = 2,
    ATTN_CLS_TRANSFORMER = 3,
    ATTN_CLS_CNN = 4
} attn_cls_kind;
const char *attn_cls_kind_name(attn_cls_kind k); /* "bow", "attn-pool", "bigru-attn", "transformer", "cnn" */
int attn_cls_kind_parse(const char *name);       /* -1 if unknown */

typedef enum { ATTN_CLS_POOL_CLS = 0, ATTN_CLS_POOL_ATTENTION = 1 } attn_cls_pool;
const char *attn_cls_pool_name(attn_cls_pool p); /* "cls", "attention" */
int attn_cls_pool_parse(const char *name);       /* -1 if unknown */

enum { ATTN_CLS_MAX_WIDTHS = 8 };

/* The blueprint: attn_classifier_config_default() gives the values noted here; then set the
 * kind, the vocabulary size and the number of classes. */
typedef struct {
    attn_cls_kind kind;   /* bow */
    int vocab;            /* V >= 4 (the special ids) */
    int classes;          /* C >= 2 */
    int embed;            /* E = 128 (the Transformer's d_model) */
    int hidden;           /* 128: attn-pool's attention size A, bigru-attn's GRU size per direction */
    attn_score score;     /* attn-pool: ATTN_SCORE_ADDITIVE (the default) or ATTN_SCORE_SCALED */
    int heads, layers;    /* transformer: 4, 2 (E % heads == 0; an even E / heads for rope) */
    int d_ff;             /* transformer: 256 */
    attn_pos_kind pos;    /* transformer: sinusoidal */
    attn_cls_pool pool;   /* transformer: cls */
    int max_len;          /* 512: the longest sentence in tokens (the [CLS] position not counted) */
    float dropout;        /* 0.1, in [0, 1) */
    attn_tok_kind tok;    /* the tokeniser of the text (for the command line): en */
    int maps;             /* cnn: feature maps (filters) per width: 100 */
    int n_widths;         /* cnn: the number of filter widths, in [1, ATTN_CLS_MAX_WIDTHS]: 3 */
    int widths[ATTN_CLS_MAX_WIDTHS]; /* cnn: the filter widths in tokens, each in [1, 64]: 3, 4, 5
                                        (the entries past n_widths are 0) */
} attn_classifier_config;

attn_classifier_config attn_classifier_config_default(void);
/* Checks every field (ATTN_EINVAL, the message names the first bad one). */
int attn_classifier_config_check(const attn_classifier_config *cfg);

/* The config as a JSON object {"kind": "classifier", "model": "bow", "vocab": ..., ...} (every
 * field, enums by name), in *json (freed with attn_free); and back: strict about the kinds and
 * the types, defaults for missing fields, unknown fields ignored; the result is checked. */
int attn_classifier_config_to_json(const attn_classifier_config *cfg, char **json);
int attn_classifier_config_from_json(const char *json, attn_classifier_config *cfg);

/* A model: its config, its parameters, and (for files) its vocabulary and label names. */
typedef struct attn_classifier attn_classifier;

/* Declares and initialises the parameters for cfg (checked) with `seed`: embeddings
 * normal(0, 1) (the Transformer's normal(0, E^-1/2), times sqrt(E) in the forward), nn.Linear's
 * and nn.GRU's uniform defaults, the learned query or context vector normal(0, 0.1). */
int attn_classifier_new(const attn_classifier_config *cfg, uint64_t seed, attn_classifier **out);
void attn_classifier_free(attn_classifier *m); /* accepts NULL */
const attn_classifier_config *attn_classifier_get_config(const attn_classifier *m);
attn_params *attn_classifier_params(attn_classifier *m);
int64_t attn_classifier_num_params(const attn_classifier *m);

/* A padded batch: ids (B, T) in [0, V), each row's len[b] in [1, T] real tokens first, then
 * anything (ignored; <pad> by convention). T <= max_len. */
typedef struct {
    int B, T;
    const int32_t *ids; /* (B, T) */
    const int32_t *len; /* (B) */
} attn_cls_batch;

/* The logits (B, C) on graph g (its training flag decides dropout, its gradient flag whether a
 * tape is recorded). weights, if not NULL, gets (B, T) the weight of every token in the
 * pooling: 1/len for bow; the attention weights for attn-pool, bigru-attn and the Transformer
 * with attention pooling; for [CLS] pooling, the [CLS] row of the last layer's self-attention
 * averaged over the heads (without the weight [CLS] gives itself, so a row sums to at most 1);
 * for cnn, the share of the max-pooled maps each token takes part in: every map whose maximum
 * is positive (after ReLU, the maps that reach fc) gives one vote, split evenly between the
 * real tokens of its winning window, and a token's weight is its votes over the number of
 * such maps (a row sums to 1, or is all 0 when no map is positive); 0 at padded positions.
 * An id outside [0, V), a length outside [1, T] or T > max_len is ATTN_EINVAL (sticky in g),
 * never a crash. NULL on failure. */
attn_var *attn_classifier_forward(attn_classifier *m, attn_graph *g, const attn_cls_batch *b, float *weights);
/* The mean cross-entropy of the logits against labels (B) in [0, C), with label smoothing:
 * a scalar node for attn_graph_backward. */
attn_var *attn_classifier_loss(attn_classifier *m, attn_graph *g, const attn_cls_batch *b, const int32_t *labels,
                               float label_smoothing);
/* Inference on a graph of its own (evaluation mode, no tape): probs (B, C) the softmax of the
 * logits, logits (B, C) and weights (B, T) as attn_classifier_forward's; any may be NULL. */
int attn_classifier_predict(attn_classifier *m, const attn_cls_batch *b, float *probs, float *logits, float *weights);

/* A data set as token ids: sentence i is ids[i] (len[i] >= 1 ids) with class labels[i]. */
typedef struct {
    int n;
    const int32_t *const *ids;
    const int *len;
    const int32_t *labels;
} attn_cls_examples;

/* The fraction of d's sentences whose most probable class is their label (predicted in
 * batches of 64; d->n 0 gives 0). */
int attn_classifier_accuracy(attn_classifier *m, const attn_cls_examples *d, double *accuracy);

/* ---- Vocabulary, labels, files ---------------------------------------------------------- */

/* The vocabulary (taken, also on failure; its size must be V) and the class names (copied;
 * C non-empty UTF-8 strings without '\n' or '\r'), as the training data writes them. */
int attn_classifier_set_vocab(attn_classifier *m, attn_vocab *v);
const attn_vocab *attn_classifier_vocab(const attn_classifier *m); /* NULL if none set */
int attn_classifier_set_labels(attn_classifier *m, int n, const char *const *names);
const char *attn_classifier_label(const attn_classifier *m, int c); /* NULL if unset or out of range */

/* What a checkpoint holds besides the weights: the model object (the config with "command",
 * what made it; command may be NULL) and two files, vocab.txt and labels.txt (one per line).
 * For attn_checkpoint_save (attn/train.h), which adds the optimiser and training state. The
 * model must have its vocabulary and labels. */
int attn_classifier_export(const attn_classifier *m, const char *command, attn_model_export *out);
/* The model alone as a checkpoint directory, and back (every file verified: a missing,
 * truncated or corrupt file is ATTN_EIO or ATTN_EFORMAT naming it; another model kind is
 * ATTN_EFORMAT). Loads training checkpoints too. */
int attn_classifier_save(const attn_classifier *m, const char *dir, const char *command);
int attn_classifier_load(const char *dir, attn_classifier **out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
