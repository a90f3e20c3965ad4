/* Internal helpers of the neural-network layers (not API): the linear map that projections
 * are made of. Matrix products go through the kernel table's sgemm (attn__kern()->sgemm), so
 * they get faster when it does and stay deterministic for any thread count.
 * Letters: M rows (batch times sequence), K input features, N output features.
 */
#ifndef ATTN_NN_INTERNAL_H
#define ATTN_NN_INTERNAL_H

#include <stdint.h>

/* y (M, N) = x (M, K) W^T + b, with W (N, K) (PyTorch's nn.Linear layout), b (N) or NULL.
 * x rows are ldx floats apart (ldx >= K; 0 = K); y is contiguous. */
void attn__linear_forward(float *y, const float *x, int64_t ldx, const float *W, const float *b, int M, int K, int N);

/* Backward of attn__linear_forward, for dy (M, N):
 *   dx (M, K) = dy W        (overwritten; skipped when dx is NULL)
 *   dW (N, K) += dy^T x     (skipped when NULL)
 *   db (N)    += sum of dy's rows (skipped when NULL) */
void attn__linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, int64_t ldx,
                           const float *W, int M, int K, int N);

#endif
