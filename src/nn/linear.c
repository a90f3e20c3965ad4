/* The linear layer y = x W^T + b: its one forward and one backward (llm.c style, raw pointers),
 * on top of the kernel table's sgemm. The public attn_linear_* (attn/layers.h), the autograd
 * tape (autograd/ops_linear.c), multi-head attention (nn/mha.c) and the Transformer decoder
 * all run this code. Not here: the batched matmul of the tape, which is not a layer.
 * Letters: M rows, K input features, N output features. */
#include <string.h>

#include "attn/layers.h"
#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/nn_internal.h"

void attn__linear_forward(float *y, const float *x, int64_t ldx, const float *W, const float *b, int M, int K, int N) {
    if (ldx == 0) ldx = K;
    /* y = b (broadcast over rows), then y += x W^T. */
    if (b)
        for (int m = 0; m < M; m++) memcpy(y + (size_t)m * N, b, (size_t)N * sizeof(float));
    attn__kern()->sgemm(0, 1, M, N, K, 1.0f, x, ldx, W, K, b ? 1.0f : 0.0f, y, N);
}

/* The bias gradient, split over blocks of columns on the library's threads: each column is
 * summed in row order whatever the split, so the bits do not depend on the thread count. */
enum { COLSUM_BLOCK = 64 };

typedef struct {
    float *db;
    const float *dy;
    int M, N, acc;
} colsum_ctx;

static void colsum_task(void *ctx, int task, int thread) {
    (void)thread;
    const colsum_ctx *s = ctx;
    int j0 = task * COLSUM_BLOCK, j1 = j0 + COLSUM_BLOCK < s->N ? j0 + COLSUM_BLOCK : s->N;
    if (!s->acc)
        for (int j = j0; j < j1; j++) s->db[j] = 0.0f;
    for (int m = 0; m < s->M; m++) {
        const float *r = s->dy + (size_t)m * s->N;
        for (int j = j0; j < j1; j++) s->db[j] += r[j];
    }
}

void attn__linear_backward(float *dx, int dx_acc, float *dW, int dW_acc, float *db, int db_acc, const float *dy,
                           const float *x, int64_t ldx, const float *W, int M, int K, int N) {
    if (ldx == 0) ldx = K;
    const attn__kernels *kern = attn__kern();
    if (M < 1) { /* no rows: the gradients of W and b are zero */
        if (dW && !dW_acc) memset(dW, 0, (size_t)N * K * sizeof(float));
        if (db && !db_acc) memset(db, 0, (size_t)N * sizeof(float));
        return;
    }
    /* y = x W^T + b  =>  dx (M, K) (+)= dy (M, N) W (N, K) */
    if (dx) kern->sgemm(0, 0, M, K, N, 1.0f, dy, N, W, K, dx_acc ? 1.0f : 0.0f, dx, K);
    /* dW (N, K) (+)= dy^T (N, M) x (M, K) */
    if (dW) kern->sgemm(1, 0, N, K, M, 1.0f, dy, N, x, ldx, dW_acc ? 1.0f : 0.0f, dW, K);
    /* db (N) (+)= sum over m of dy[m] */
    if (db) {
        colsum_ctx c = {db, dy, M, N, db_acc};
        attn__parallel((N + COLSUM_BLOCK - 1) / COLSUM_BLOCK, colsum_task, &c);
    }
}

int attn_linear_forward(float *y, const float *x, const float *W, const float *b, int M, int K, int N) {
    if (!y || !x || !W) return attn__error(ATTN_EINVAL, "linear: NULL y, x or W");
    if (M < 0 || K < 1 || N < 1) return attn__error(ATTN_EINVAL, "linear: bad shape M %d, K %d, N %d", M, K, N);
    if (M > 0) attn__linear_forward(y, x, 0, W, b, M, K, N);
    return ATTN_OK;
}

int attn_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W, int M,
                         int K, int N) {
    if (!dy || (dx && !W) || (dW && !x)) return attn__error(ATTN_EINVAL, "linear backward: NULL dy, x or W");
    if (M < 0 || K < 1 || N < 1) return attn__error(ATTN_EINVAL, "linear backward: bad shape M %d, K %d, N %d", M, K, N);
    attn__linear_backward(dx, 1, dW, 1, db, 1, dy, x, 0, W, M, K, N);
    return ATTN_OK;
}
