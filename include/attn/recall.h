/* attn/recall.h: associative recall, the task only a soft, learnable address solves (Ba,
 * Hinton, Mnih, Leibo and Ionescu 2016, "Using fast weights to attend to the recent past",
 * section 4.1, the associative retrieval task). A sequence of K key-digit pairs, two '?',
 * then one of the keys; the answer is that key's digit:
 *
 *   c9k8j3f1??c  ->  9
 *
 * The data: attn_recall_generate makes n sequences from a seed (the same seed, the same
 * sequences on every machine): K distinct keys drawn without replacement, a digit 0-9 for
 * each (digits may repeat), the query one of the K keys uniformly. The keys are the 26
 * lowercase letters for K <= 26; 26 letters cannot hold more distinct keys, so for
 * 26 < K <= 52 the key alphabet is a-z then A-Z (52 keys).
 *
 * The models, each reading the 2K + 3 tokens with a recurrent network of hidden size H and
 * predicting the digit (10 classes) from what it has at the end:
 *   gru       h_T of a GRU -> linear -> 10 logits: every pair must live in the state;
 *   lstm      the same with an LSTM;
 *   gru-attn  a key-value memory written as the GRU reads: every state h_t (t = 1 .. T) is
 *             stored as key k_t = W_k h_t and value v_t = W_v h_t; at the end the query
 *             q = W_q h_T reads r = sum_t a_t v_t with a = softmax_t(q . k_t / sqrt(H)) (the
 *             soft address); logits = fc([h_T; r]);
 *   gru-hard  the same with the hard address: a = onehot(argmax_t q . k_t) in the forward,
 *             the softmax's gradient in the backward (straight-through, attn_ag_hard_softmax):
 *             its loss moves only through the one value it picks, so what the scores should
 *             become is guessed from a gradient that is not the forward's;
 *   gru-argmax  the hard address with its own gradient, which is zero: the scores (W_q, W_k)
 *             learn nothing, so the address stays where the initialisation put it (the
 *             control that shows the straight-through model learns through the softmax).
 * Parameters (PyTorch-like names): embed.weight (V, E); rnn.weight_ih_l0 (G H, E),
 * rnn.weight_hh_l0 (G H, H), rnn.bias_ih_l0, rnn.bias_hh_l0 (G H) (G = 3 GRU, 4 LSTM, gates as
 * nn.GRU / nn.LSTM); memory models: mem.query.weight, mem.key.weight, mem.value.weight (H, H)
 * (no biases); fc.weight (10, D), fc.bias (10), D = H (plain) or 2 H (memory).
 *
 * Token ids: 0-9 the digits, 10 '?', 11 + i the i-th key character ('a' + i for i < 26,
 * 'A' + i - 26 after): V = 63. Letters: N sequences, B a batch, K pairs, T = 2K + 3 tokens,
 * E embedding, H hidden.
 */
#ifndef ATTN_RECALL_H
#define ATTN_RECALL_H

#include <stdint.h>

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/params.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

enum {
    ATTN_RECALL_DIGITS = 10,     /* the classes */
    ATTN_RECALL_QMARK = 10,      /* the id of '?' */
    ATTN_RECALL_KEY0 = 11,       /* the id of the first key character */
    ATTN_RECALL_MAX_KEYS = 52,   /* a-z A-Z */
    ATTN_RECALL_VOCAB = 63,      /* V */
    ATTN_RECALL_MAX_PAIRS = 52
};

/* ---- Data ----------------------------------------------------------------------------- */

/* n sequences of K pairs: ids (n, T) row-major, T = 2K + 3, and the answers (n) in 0..9. */
typedef struct {
    int n, K, T;
    int32_t *ids;    /* (n, T) */
    int32_t *answer; /* (n) */
} attn_recall_data;

/* The key alphabet for K pairs: 26 (a-z) for K <= 26, 52 (a-z A-Z) above. */
int attn_recall_alphabet(int K);
/* n >= 0 sequences of K in [1, ATTN_RECALL_MAX_PAIRS] pairs from `seed` (attn_rng; the same
 * on every machine). The three splits of a run use seeds attn_seed_mix(seed, 0 / 1 / 2) (see
 * attn_recall_split_seed). ATTN_EINVAL for a bad K or n, ATTN_ENOMEM. */
int attn_recall_generate(int K, int n, uint64_t seed, attn_recall_data *out);
void attn_recall_data_free(attn_recall_data *d); /* frees and zeroes; accepts a zeroed struct */
/* The seed of split 0 (train), 1 (valid) or 2 (test) of a run seeded with `seed`. */
uint64_t attn_recall_split_seed(uint64_t seed, int split);
/* Sequence i as text ("c9k8j3f1??c"), NUL-terminated, into buf (at least T + 1 bytes). */
void attn_recall_format(const attn_recall_data *d, int i, char *buf);
/* Checks d: every row has K distinct keys from the alphabet at the even positions, digits at
 * the odd ones, '?' '?' and a query that is one of the keys, whose digit is the answer.
 * ATTN_OK or ATTN_EFORMAT naming the first bad row. */
int attn_recall_check(const attn_recall_data *d);

/* ---- Models --------------------------------------------------------------------------- */

typedef enum {
    ATTN_RECALL_GRU = 0,
    ATTN_RECALL_LSTM = 1,
    ATTN_RECALL_GRU_ATTN = 2,
    ATTN_RECALL_GRU_HARD = 3,
    ATTN_RECALL_GRU_ARGMAX = 4
} attn_recall_kind;
const char *attn_recall_kind_name(attn_recall_kind k); /* "gru", "lstm", "gru-attn", "gru-hard", "gru-argmax" */
int attn_recall_kind_parse(const char *name);          /* -1 if unknown */

typedef struct {
    attn_recall_kind kind; /* gru */
    int pairs;             /* K in [1, ATTN_RECALL_MAX_PAIRS]: 16 (the data the model is for) */
    int hidden;            /* H >= 1: 32 */
    int embed;             /* E >= 1: 32 */
    uint64_t data_seed;    /* the seed its data came from (attn eval makes the test split from it): 1 */
    int n_train, n_valid, n_test; /* the split sizes it was trained with: 20000, 2000, 5000 */
} attn_recall_config;

attn_recall_config attn_recall_config_default(void);
int attn_recall_config_check(const attn_recall_config *c); /* ATTN_EINVAL naming the bad field */
/* {"kind": "recall", "model": "gru-attn", "pairs": 16, ...} (freed with attn_free), and back
 * (strict about types and names, defaults for missing fields; the result is checked). */
int attn_recall_config_to_json(const attn_recall_config *c, char **json);
int attn_recall_config_from_json(const char *json, attn_recall_config *c);

typedef struct attn_recall attn_recall;

/* Declares and initialises the parameters (nn.Embedding's normal(0, 1), nn.Linear's and
 * nn.GRU's / nn.LSTM's uniform defaults) with `seed`. */
int attn_recall_new(const attn_recall_config *c, uint64_t seed, attn_recall **out);
void attn_recall_free(attn_recall *m); /* accepts NULL */
const attn_recall_config *attn_recall_get_config(const attn_recall *m);
attn_params *attn_recall_params(attn_recall *m);
int64_t attn_recall_num_params(const attn_recall *m);

/* The logits (B, 10) of ids (B, T) (T = 2 pairs + 3 of the model's config, every id in
 * [0, V)) on graph g; weights, if not NULL, gets (B, T) the memory's address a_t (the
 * softmax, or the one-hot pick of gru-hard and gru-argmax; zeros for gru and lstm). ATTN_EINVAL (sticky in g)
 * for a bad id or shape. NULL on failure. */
attn_var *attn_recall_forward(attn_recall *m, attn_graph *g, int B, const int32_t *ids, float *weights);
/* The mean cross-entropy of the logits against answers (B) in 0..9: a scalar node. */
attn_var *attn_recall_loss(attn_recall *m, attn_graph *g, int B, const int32_t *ids, const int32_t *answers);
/* Inference on a graph of its own: pred (B) the most probable digit, weights (B, T) as the
 * forward's; either may be NULL. */
int attn_recall_predict(attn_recall *m, int B, const int32_t *ids, int32_t *pred, float *weights);
/* The share of d's sequences answered right (batches of 256; 0 for an empty d). d->K must be
 * the model's pairs. */
int attn_recall_accuracy(attn_recall *m, const attn_recall_data *d, double *accuracy);

/* The "model" object of a checkpoint (the config with "command", what made it; may be NULL),
 * for attn_checkpoint_save (freed with attn_free). */
int attn_recall_model_json(const attn_recall *m, const char *command, char **json);
/* The model alone as a checkpoint directory (config.json + model.safetensors), and back
 * (every file verified; a missing or corrupt file ATTN_EIO or ATTN_EFORMAT naming it; a
 * checkpoint of another kind ATTN_EFORMAT). Loads training checkpoints too. */
int attn_recall_save(const attn_recall *m, const char *dir, const char *command);
int attn_recall_load(const char *dir, attn_recall **out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
