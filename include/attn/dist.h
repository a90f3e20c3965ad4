/* attn/dist.h: attn on several processes (and machines) with MPI: data-parallel training and
 * sequence-parallel ("ring") attention. Optional at build time: a library built without MPI
 * (cmake -DATTN_MPI=OFF, or no OpenMPI found) has these calls too, and they fail with
 * ATTN_EINVAL ("built without MPI"); attn_dist_available() tells which.
 *
 * The processes ("ranks" 0 .. P-1) are started by mpirun; every rank makes the same calls in
 * the same order. Communication uses MPI_COMM_WORLD. Every wait has a deadline
 * (attn_dist_set_timeout, default 300 s, or the environment's ATTN_DIST_TIMEOUT): when a rank
 * dies or hangs, the others return ATTN_EIO with a message that says so instead of hanging,
 * and a program then ends them all with attn_dist_abort.
 *
 *   attn_dist_init(&argc, &argv);
 *   attn_trainer_config c = attn_trainer_defaults();
 *   attn_dist_trainer(&c);            data-parallel: each rank a shard of every global batch
 *   st = attn_trainer_run(&m, &c, &r);
 *   if (st) attn_dist_abort(1);
 *   attn_dist_finalize();
 *
 * Ring attention (Liu et al. 2023, "Ring Attention with Blockwise Transformers"): Q, K and V
 * of a sequence of N rows are split along the sequence over the P ranks; each rank keeps its
 * queries and passes its keys and values around the ring, one block per step, with
 * non-blocking sends overlapped with the fused kernel on the block in hand; the partial
 * outputs are merged with the online softmax (the per-row log-sum-exp of attn_forward). The
 * backward passes K, V and their gradients around the ring once more, so that each rank's
 * dK and dV come back to it complete. Memory per rank is O(N/P * d): no rank holds more than
 * its own block and two blocks in flight.
 *
 * Which rows a rank holds (the layout):
 *   ATTN_RING_CONTIGUOUS  rank r holds rows [r N/P, (r+1) N/P)
 *   ATTN_RING_ZIGZAG      the sequence cut into 2P chunks of N/(2P) rows; rank r holds chunks r
 *                         and 2P-1-r, in that order: with a causal mask every rank then has the
 *                         same work (contiguous blocks leave rank 0 idle most of the ring)
 * attn_ring_rows gives a rank's rows; the local arrays are (B, H, Nloc, d) contiguous, Nloc
 * = N/P, the rows in the order above.
 */
#ifndef ATTN_DIST_H
#define ATTN_DIST_H

#include "attn/attention.h"
#include "attn/core.h"
#include "attn/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* 1 when the library was built with MPI, else 0. */
int attn_dist_available(void);
/* 1 when this process was started by mpirun (or another MPI launcher), else 0. */
int attn_dist_launched(void);
/* Initialises MPI once (later calls do nothing): ATTN_OK, or ATTN_EINVAL without MPI. */
int attn_dist_init(int *argc, char ***argv);
/* This rank and the number of ranks: 0 and 1 before attn_dist_init or without MPI. */
int attn_dist_rank(void);
int attn_dist_size(void);
/* The deadline of every wait, in seconds (> 0). */
void attn_dist_set_timeout(double seconds);
double attn_dist_timeout(void);
/* Ends MPI (after the last call); nothing without MPI or before attn_dist_init. */
void attn_dist_finalize(void);
/* 1 once a wait of this rank has failed (a timeout or an MPI error): the ranks are no longer
 * in step, and the program should end them all with attn_dist_abort rather than
 * attn_dist_finalize (which would wait for the missing rank). */
int attn_dist_failed(void);
/* Ends every rank with this exit code (after an error on one rank); returns only without MPI
 * or before attn_dist_init. */
void attn_dist_abort(int code);
/* The sum over the ranks of x (n values), in rank order and therefore the same on every run
 * and every rank (x_0 + x_1 + x_2 + ..., whatever the timing; MPI_Allreduce does not promise
 * an order). In buckets of at most 1 Mi values, each a reduce-scatter (rank k adds slice k
 * of every rank's bucket) and an all-gather: 2 (P-1)/P of the bucket sent and received per
 * rank, as a ring all-reduce. ATTN_EIO on a timeout. */
int attn_dist_sum(float *x, int64_t n);
int attn_dist_sum_f64(double *x, int n);

/* Rank 0's `bytes` bytes at buf, copied to buf on every rank. */
int attn_dist_bcast(void *buf, int64_t bytes);

/* Makes c train data-parallel over the ranks (c->dist): nothing with one rank. */
int attn_dist_trainer(attn_trainer_config *c);

typedef enum { ATTN_RING_CONTIGUOUS = 0, ATTN_RING_ZIGZAG = 1 } attn_ring_layout;

/* The global rows of rank `rank`'s local row i, for a sequence of N rows over P ranks; -1 when
 * N is not a multiple of P (2P for zig-zag) or an argument is out of range. */
int64_t attn_ring_row(int64_t N, int P, int rank, attn_ring_layout layout, int64_t i);

/* Ring attention over all ranks. a describes the LOCAL problem: Nq = Nk = N/P rows per rank,
 * B, H, Hkv, dq, dv, the score (dot, scaled or cosine), scale and mask.causal (the global
 * causal mask, with the rows' global positions); no other mask, no strides (contiguous local
 * arrays). Every rank passes the same a and layout.
 *   forward:  O (B, H, Nloc, dv) and lse (B, H, Nloc) (or NULL) of the local queries against
 *             every key of the sequence
 *   backward: from the forward's O and lse (not NULL) and dO, the local dQ, dK, dV (all
 *             three required, overwritten). */
int attn_ring_forward(const attn_desc *a, attn_ring_layout layout, const float *Q, const float *K, const float *V, float *O,
                      float *lse);
int attn_ring_backward(const attn_desc *a, attn_ring_layout layout, const float *Q, const float *K, const float *V,
                       const float *O, const float *lse, const float *dO, float *dQ, float *dK, float *dV);

/* Between rank 0's whole (B, heads, N, d) array and every rank's (B, heads, N/P, d) rows of it
 * (the layout's rows): scatter sends each rank its rows (full is read on rank 0 only, NULL
 * elsewhere), gather brings them back to rank 0 (full written on rank 0 only). */
int attn_ring_scatter(const float *full, float *local, int B, int heads, int64_t N, int d, attn_ring_layout layout);
int attn_ring_gather(const float *local, float *full, int B, int heads, int64_t N, int d, attn_ring_layout layout);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
