/* The linear map y = x W^T + b and its backward, on top of the kernel table's sgemm.
 * Internal (see nn/nn_internal.h); the attention layers use it for their projections.
 * Letters: M rows, K input features, N output features. */
#include <string.h>

#include "kernels/kernels.h"
#include "nn/nn_internal.h"

void attn__linear_forward(float *y, const float *x, int64_t ldx, const float *W, const float *b, int M, int K, int N) {
    if (ldx == 0) ldx = K;
    /* y = b (broadcast over rows), then y += x W^T. */
    if (b)
        for (int m = 0; m < M; m++) memcpy(y + (size_t)m * N, b, (size_t)N * sizeof(float));
    attn__kern()->sgemm(0, 1, M, N, K, 1.0f, x, ldx, W, K, b ? 1.0f : 0.0f, y, N);
}

void attn__linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, int64_t ldx,
                           const float *W, int M, int K, int N) {
    if (ldx == 0) ldx = K;
    const attn__kernels *kern = attn__kern();
    /* y = x W^T + b  =>  dx = dy W,  dW += dy^T x,  db += sum_m dy[m]. */
    if (dx) kern->sgemm(0, 0, M, K, N, 1.0f, dy, N, W, K, 0.0f, dx, K);
    if (dW) kern->sgemm(1, 0, N, K, M, 1.0f, dy, N, x, ldx, 1.0f, dW, K);
    if (db)
        for (int m = 0; m < M; m++) {
            const float *g = dy + (size_t)m * N;
            for (int n = 0; n < N; n++) db[n] += g[n];
        }
}
