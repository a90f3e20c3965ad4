/* attn/knnmt.h: a translation memory read by soft addressing, k-nearest-neighbour machine
 * translation (Khandelwal et al. 2021, "Nearest neighbor machine translation"). A trained
 * translator (attn/translator.h, either family) is run with teacher forcing over sentence
 * pairs; each decoder state (the key: the vector its output projection reads, see
 * attn_translator_state_dim) is stored with the target token that followed it (the value).
 * While translating, the current decoder state q queries the store: its k nearest keys by
 * squared L2 distance d_j = ||q - k_j||^2 are weighted w_j = softmax(-d_j / T), their values'
 * weights summed into p_mem(v) = sum_{j: v_j = v} w_j, and mixed with the model's own:
 *   p(v) = lambda p_mem(v) + (1 - lambda) p_model(v).
 * The search is exact, over the whole store, with the library's matrix-product kernel
 * (||q||^2 + ||k||^2 - 2 q.k for a block of queries at once): attention itself, the store as
 * the keys and the decoder state as the query, with a hard top-k in place of the softmax over
 * every key. The model is not changed or retrained.
 *
 * The store file ("ATTNKNN", version 1), every field little-endian, 64-byte header:
 *    0  magic "ATTNKNN\0"        8 bytes
 *    8  version                  u32 (1)
 *   12  header size              u32 (64)
 *   16  count N                  u64 (entries)
 *   24  dim D                    u32 (the state size)
 *   28  vocab V                  u32 (the model's target vocabulary)
 *   32  model identity           u64 (attn_translator_identity of the model it was built with)
 *   40  k                        u32 \
 *   44  temperature T            f32  > the tuned settings (or the defaults, tuned = 0)
 *   48  lambda                   f32 /
 *   52  tuned                    u32 (1 once tuned on validation pairs)
 *   56  checksum                 u64 FNV-1a 64 of bytes 0 .. 55, then of the payload
 *   64  keys                     N * D f32, entry by entry
 *       values                   N u32 (target token ids)
 * The file's size must be exactly 64 + 4 N (D + 1). Written atomically, with no timestamp and
 * entries in the order they were added, so the same pairs and model give the same bytes.
 *
 * Letters: N entries, D state size, V target vocabulary, n queries, R rows of a decoding step.
 * A store is not for two threads at once (its search scratch is its own).
 */
#ifndef ATTN_KNNMT_H
#define ATTN_KNNMT_H

#include "attn/core.h"
#include "attn/translator.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef struct attn_knn_store attn_knn_store;

#define ATTN_KNN_MAX_K 1024

/* How the memory is read: k nearest keys (1 .. ATTN_KNN_MAX_K), temperature T > 0 of
 * softmax(-d / T), lambda in [0, 1) the memory's share of the mixture (0: the model alone,
 * exactly). */
typedef struct {
    int k;
    float temperature;
    float lambda;
} attn_knn_params;

/* Defaults before tuning: k 8, T 10 (Khandelwal et al.'s), lambda 0.25. */
attn_knn_params attn_knn_defaults(void);
/* ATTN_EINVAL with a message naming the bad field, or ATTN_OK. */
int attn_knn_params_check(const attn_knn_params *p);

/* An empty store for keys of size dim and values in [0, vocab), made for the model of that
 * identity (attn_translator_identity), with attn_knn_defaults as its settings. */
int attn_knn_new(int dim, int vocab, uint64_t model_id, attn_knn_store **out);
/* An empty store for translator t (its state size, target vocabulary and identity). */
int attn_knn_new_for(const attn_translator *t, attn_knn_store **out);
void attn_knn_free(attn_knn_store *s); /* accepts NULL */

/* Appends n entries: keys (n, D), values (n) in [0, V). */
int attn_knn_append(attn_knn_store *s, int64_t n, const float *keys, const int32_t *values);

/* Appends the teacher-forced states of n pairs of translator t (attn_translator_states: pair
 * i gives tgt_len[i] + 1 entries, the state before each of y_1 .. y_n, <eos> with that token
 * as value). src[i] (src_len[i] ids ending in <eos>), tgt[i] (tgt_len[i] ids, no <bos>/<eos>).
 * ATTN_EINVAL if t is not the store's model (attn_knn_check). */
int attn_knn_add_pairs(attn_knn_store *s, attn_translator *t, int n, const int32_t *const *src, const int *src_len,
                       const int32_t *const *tgt, const int *tgt_len);

int64_t attn_knn_count(const attn_knn_store *s);
int attn_knn_dim(const attn_knn_store *s);
int attn_knn_vocab(const attn_knn_store *s);
uint64_t attn_knn_model_id(const attn_knn_store *s);
/* The settings stored with the store (the tuned ones once tuned, else the defaults). */
attn_knn_params attn_knn_get_params(const attn_knn_store *s, int *tuned);
int attn_knn_set_params(attn_knn_store *s, const attn_knn_params *p, int tuned);

/* ATTN_OK if s was built for translator t: the same state size, target vocabulary and model
 * identity; else ATTN_EINVAL with a message saying which differs. */
int attn_knn_check(const attn_knn_store *s, const attn_translator *t);

/* Writes s to path atomically in the format above. */
int attn_knn_save(const attn_knn_store *s, const char *path);
/* Reads a store written by attn_knn_save; the file is untrusted: a wrong magic or version,
 * sizes that disagree with the file's length (truncated or extended), a value outside the
 * vocabulary, settings out of range or a checksum mismatch are ATTN_EFORMAT with a message
 * naming the file; ATTN_EIO if it cannot be read. */
int attn_knn_load(const char *path, attn_knn_store **out);

/* Exact search (unless an index is set, see attn_knn_index): for each of n queries q (n, D),
 * the k nearest entries by squared L2 distance, nearest first (ties: the lower entry index;
 * through an index, the one met first), into idx (n, k) and dist (n, k) (either may be NULL). k is cut to the count (the rest of each row: index -1, distance +inf). The distances
 * are ||q||^2 + ||k_j||^2 - 2 q.k_j in float, clamped at 0; split over the library's threads
 * by blocks of entries, merged in a fixed order: the result does not depend on the thread
 * count. */
int attn_knn_search(attn_knn_store *s, int n, const float *q, int k, int32_t *idx, float *dist);

/* An approximate index (inverted lists, as faiss's IVF-Flat; Jegou et al. 2011): k-means
 * partitions the keys into nlist lists (centroids seeded with evenly spaced entries, 8 Lloyd
 * iterations on at most 32,768 evenly spaced entries, then every entry assigned to its nearest
 * centroid; deterministic), and attn_knn_search then scans only the nprobe lists whose
 * centroids are nearest each query: about nprobe / nlist of the store. nprobe >= nlist gives
 * the exact result; nlist 0 drops the index (exact search again). The index lives in memory
 * only (the file is unchanged); it holds a second copy of the keys, in list order. */
int attn_knn_index(attn_knn_store *s, int nlist, int nprobe);

/* The mixture for decoding rows rows[0 .. n) of a step: q (R, D) the rows' states, logp
 * (R, V) the model's log-probabilities, replaced for those rows by
 * log(lambda p_mem + (1 - lambda) exp(logp)). lambda = 0 leaves logp untouched. */
int attn_knn_mix(attn_knn_store *s, const attn_knn_params *p, int n, const int *rows, const float *q, float *logp);

/* A decoding hook (attn/core.h) that applies attn_knn_mix with settings p at every step of
 * attn_translator_decode: set opts.hook = &hook->hook. hook keeps pointers to s and a copy of p. */
typedef struct {
    attn_decode_hook hook;
    attn_knn_store *store;
    attn_knn_params params;
    int64_t queries; /* rows looked up so far */
} attn_knn_hook;
void attn_knn_hook_init(attn_knn_hook *h, attn_knn_store *s, const attn_knn_params *p);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
