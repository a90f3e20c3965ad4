/* The sparse linear layer y = X W^T + b for X in compressed sparse rows (CSR): the one forward
 * and the one backward (llm.c style, raw pointers), for bag-of-n-gram classifiers whose
 * inputs have a few non-zeros among up to millions of features (models/tfidf.c). The
 * autograd tape (autograd/ops_sparse.c) runs this code. Not here: the gradient of X (the
 * features are data, never parameters), a dense X (nn/linear.c).
 * Letters: N rows, F features, C outputs; a row n holds the non-zeros k = rowptr[n] ..
 * rowptr[n + 1] - 1, at columns col[k] with values val[k]. */
#include <string.h>

#include "nn/nn_internal.h"

void attn__sparse_linear_forward(float *y, const int64_t *rowptr, const int32_t *col, const float *val, const float *W,
                                 const float *b, int N, int F, int C) {
    for (int n = 0; n < N; n++) {
        float *yn = y + (size_t)n * C; /* (C) */
        for (int c = 0; c < C; c++) {
            const float *w = W + (size_t)c * F; /* (F) */
            float s = b ? b[c] : 0.0f;
            for (int64_t k = rowptr[n]; k < rowptr[n + 1]; k++) s += val[k] * w[col[k]];
            yn[c] = s;
        }
    }
}

void attn__sparse_linear_backward(float *dW, int dW_acc, float *db, int db_acc, const float *dy, const int64_t *rowptr,
                                  const int32_t *col, const float *val, int N, int F, int C) {
    /* y[n, c] = b[c] + sum over k of val[k] W[c, col[k]]
     *   =>  dW[c, col[k]] += dy[n, c] val[k],  db[c] += dy[n, c] (rows in order n = 0 .. N-1) */
    if (dW) {
        if (!dW_acc) memset(dW, 0, (size_t)C * F * sizeof(float));
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                float d = dy[(size_t)n * C + c], *w = dW + (size_t)c * F;
                for (int64_t k = rowptr[n]; k < rowptr[n + 1]; k++) w[col[k]] += d * val[k];
            }
    }
    if (db) {
        if (!db_acc) memset(db, 0, (size_t)C * sizeof(float));
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) db[c] += dy[(size_t)n * C + c];
    }
}
