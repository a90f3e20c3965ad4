/* attn/kvcache.h: a paged key/value cache for decoding (vLLM's PagedAttention layout).
 *
 * Keys and values live in fixed-size blocks of `block_size` tokens taken from one pool
 * allocated up front. A sequence is a list of blocks, its block table: token p of the
 * sequence is token p % block_size of block table[p / block_size]. Appending writes in place
 * into the sequence's last block, taking a new block from the pool when that one is full.
 *
 * Blocks are reference-counted. Forking a sequence (attn_kvcache_fork) gives another sequence
 * the same block table, sharing every block instead of copying keys and values: a beam search
 * whose beams extend one hypothesis shares its prefix. A shared block is read-only; the first
 * append to a sequence whose last block is shared and partly filled copies that block alone
 * (copy-on-write: at most block_size - 1 tokens), then writes. A block goes back to the pool
 * when no sequence holds it.
 *
 * attn_kvcache_attend is attention of one or a few query rows per sequence over that
 * sequence's cached keys and values, with grouped heads (Hkv key/value heads serve H query
 * heads). It gathers each sequence's keys and values block by block through its table into a
 * per-thread buffer and runs the library's fused attention kernel on them, so that its output
 * is bitwise attn_forward's over the same keys held contiguously (same kernel, same order of
 * sums), for any thread count.
 *
 * Layout in the pool: block b holds keys (block_size, Hkv, dk) and values (block_size, Hkv, dv).
 * Not thread-safe: one thread calls a cache at a time (attend runs its own threads inside).
 */
#ifndef ATTN_KVCACHE_H
#define ATTN_KVCACHE_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef struct {
    int Hkv, dk, dv;  /* key/value heads and sizes (dv 0 = dk) */
    int block_size;   /* tokens per block (0 = 16) */
    int num_blocks;   /* blocks in the pool: the cache holds num_blocks * block_size tokens */
    int max_seqs;     /* sequence slots 0 .. max_seqs - 1, empty at first */
} attn_kvcache_config;

typedef struct attn_kvcache attn_kvcache;

/* Allocates the pool (num_blocks * block_size * Hkv * (dk + dv) floats) and the tables.
 * ATTN_EINVAL with a message for a size <= 0, ATTN_ENOMEM if the pool cannot be allocated. */
int attn_kvcache_new(const attn_kvcache_config *cfg, attn_kvcache **out);
void attn_kvcache_free(attn_kvcache *c); /* accepts NULL */

/* Tokens in sequence seq, or -1 for a bad cache or slot. */
int attn_kvcache_len(const attn_kvcache *c, int seq);

/* Empties sequence seq, giving back the blocks no other sequence holds. */
int attn_kvcache_reset(attn_kvcache *c, int seq);

/* Sequence dst becomes a copy of src that shares its blocks (nothing is copied but the block
 * table); dst's own blocks are released first. src == dst does nothing. */
int attn_kvcache_fork(attn_kvcache *c, int src, int dst);

/* Appends n tokens to sequence seq: token i's keys (Hkv, dk) at k + i * k_rs and values
 * (Hkv, dv) at v + i * v_rs (rows of Hkv * dk floats when k_rs is 0, likewise v_rs).
 * Copy-on-write for a shared last block. ATTN_ENOMEM "pool exhausted" with a message when
 * the pool has no free block left: the sequence is then as it was before the call. */
int attn_kvcache_append(attn_kvcache *c, int seq, int n, const float *k, int64_t k_rs, const float *v, int64_t v_rs);

/* The queries of one attend call. Query rows are the last nq positions of each sequence. */
typedef struct {
    int nseq;            /* sequences attended, one batch row each */
    const int *seqs;     /* (nseq) their slots (a slot may repeat) */
    int H;               /* query heads, a multiple of Hkv */
    int nq;              /* query rows per sequence (decoding: 1), at most its length */
    float scale;         /* scores q.k * scale; 0 = 1/sqrt(dk) */
    int causal;          /* query row r (position len - nq + r) sees keys up to its position */
    const float *bias;   /* or NULL: added to the scores, (nseq, H, nq, len) through bias_strides */
    int64_t bias_strides[4];
    int64_t q_strides[3], o_strides[3]; /* over (seq, head, row), in floats; 0s = contiguous */
} attn_kvcache_query;

/* O (nseq, H, nq, dv) = softmax(Q K^T * scale + bias) V of each sequence's cached keys; Q (nseq,
 * H, nq, dk); lse (nseq, H, nq) the log-sum-exp per row, or NULL. ATTN_EINVAL with a message
 * for a bad slot, an empty sequence, nq > its length, H not a multiple of Hkv. */
int attn_kvcache_attend(attn_kvcache *c, const attn_kvcache_query *q, const float *Q, float *O, float *lse);

/* Counters since attn_kvcache_new. */
typedef struct {
    int blocks_total, blocks_used; /* the pool, and the blocks some sequence holds */
    int64_t bytes_copied;          /* keys and values copied by copy-on-write */
    int64_t bytes_gathered;        /* keys and values read through block tables by attend */
} attn_kvcache_stats;
int attn_kvcache_get_stats(const attn_kvcache *c, attn_kvcache_stats *out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
