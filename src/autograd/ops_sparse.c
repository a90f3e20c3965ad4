/* The sparse linear layer on the tape: y (N, C) = X W^T + b for a batch X of N rows in
 * compressed sparse rows (the TF-IDF vectors of models/tfidf.c), W and b the parameters. The
 * forward and backward are nn/sparse_linear.c's; the tape copies the batch and records them.
 * X gets no gradient. Letters: N rows, F features, C outputs, nnz non-zeros. */
#include <string.h>

#include "autograd/ag.h"
#include "nn/nn_internal.h"

typedef struct {
    ag_entry e;
    attn_var *W, *b;
    int64_t *rowptr; /* (N + 1), the arena's copy */
    int32_t *col;    /* (nnz) */
    float *val;      /* (nnz) */
    int N, F, C;
} sparse_linear_entry;

static void sparse_linear_backward(attn_graph *g, ag_entry *base) {
    sparse_linear_entry *e = (sparse_linear_entry *)base;
    const float *dy = ag_dy(e->e.out); /* (N, C) */
    int fresh_W = 1, fresh_b = 1;
    float *dW = NULL, *db = NULL;
    if (e->W->requires_grad && !(dW = ag_grad(g, e->W, &fresh_W))) return;            /* (C, F) */
    if (e->b && e->b->requires_grad && !(db = ag_grad(g, e->b, &fresh_b))) return;     /* (C) */
    attn__sparse_linear_backward(dW, !fresh_W, db, !fresh_b, dy, e->rowptr, e->col, e->val, e->N, e->F, e->C);
}

attn_var *attn_ag_sparse_linear(attn_graph *g, int64_t N, const int64_t *rowptr, const int32_t *col, const float *val,
                                attn_var *W, attn_var *b) {
    if (!ag_ok1(g, "attn_ag_sparse_linear", W)) return NULL;
    char s1[64], s2[64];
    if (W->ndim != 2 || W->shape[1] > INT32_MAX || W->shape[0] > INT32_MAX)
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_sparse_linear: W %s must be (outputs, features)", ag_shape_str(W, s1, sizeof s1));
    int64_t C = W->shape[0], F = W->shape[1];
    if (b && (b->ndim != 1 || b->numel != C))
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_sparse_linear: bias %s, expected (%lld)", ag_shape_str(b, s2, sizeof s2),
                       (long long)C);
    if (N < 1 || N > INT32_MAX || !rowptr || rowptr[0] != 0 || (rowptr[N] > 0 && (!col || !val)))
        return ag_fail(g, ATTN_EINVAL, "attn_ag_sparse_linear: bad CSR batch (%lld rows)", (long long)N);
    for (int64_t n = 0; n < N; n++)
        if (rowptr[n + 1] < rowptr[n])
            return ag_fail(g, ATTN_EINVAL, "attn_ag_sparse_linear: row offsets decrease at row %lld", (long long)n);
    int64_t nnz = rowptr[N];
    for (int64_t k = 0; k < nnz; k++)
        if (col[k] < 0 || col[k] >= F)
            return ag_fail(g, ATTN_EINVAL, "attn_ag_sparse_linear: column %d out of range [0, %lld)", (int)col[k], (long long)F);
    attn_var *y = ag_new(g, 2, (int64_t[]){N, C}, W->requires_grad || (b && b->requires_grad));
    if (!y) return NULL;
    /* y (N, C) = X (N, F) W^T + b: nn/sparse_linear.c's forward */
    attn__sparse_linear_forward(y->data, rowptr, col, val, W->data, b ? b->data : NULL, (int)N, (int)F, (int)C);
    if (y->requires_grad) {
        sparse_linear_entry *e = ag_record(g, sizeof *e, sparse_linear_backward, y, NULL);
        if (!e) return NULL;
        e->rowptr = ag_alloc(g, (size_t)(N + 1) * sizeof(int64_t));
        e->col = ag_alloc(g, (size_t)(nnz ? nnz : 1) * sizeof(int32_t));
        e->val = ag_alloc(g, (size_t)(nnz ? nnz : 1) * sizeof(float));
        if (!e->rowptr || !e->col || !e->val) return NULL;
        memcpy(e->rowptr, rowptr, (size_t)(N + 1) * sizeof(int64_t));
        if (nnz) memcpy(e->col, col, (size_t)nnz * sizeof(int32_t)), memcpy(e->val, val, (size_t)nnz * sizeof(float));
        e->W = W, e->b = b;
        e->N = (int)N, e->F = (int)F, e->C = (int)C;
    }
    return y;
}
