/* Embedding lookup, forward and backward, as torch.nn.Embedding (including padding_idx,
 * whose row gets no gradient). Letters: N looked-up positions, V vocabulary size, E
 * embedding size. This is the one implementation (the autograd tape calls the internal pair,
 * the forward over blocks of rows in parallel). Not here: max_norm renormalisation, sparse gradients, EmbeddingBag. */
#include "attn/layers.h"

#include <string.h>

#include "core/internal.h"
#include "nn/nn_internal.h"

static int check_ids(const int32_t *ids, int N, int V, int E, const char *what) {
    if (N < 0 || V < 1 || E < 1) return attn__error(ATTN_EINVAL, "%s: bad sizes N=%d V=%d E=%d", what, N, V, E);
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return attn__error(ATTN_EINVAL, "%s: id %d at position %d is not in [0, %d)", what, (int)ids[i], i, V);
    return ATTN_OK;
}

void attn__embedding_forward(float *out, const int32_t *ids, const float *table, int64_t N, int64_t E) {
    for (int64_t i = 0; i < N; i++) // out[i, :] = table[ids[i], :]
        memcpy(out + i * E, table + (int64_t)ids[i] * E, (size_t)E * sizeof(float));
}

void attn__embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t E,
                              int padding_idx) {
    for (int64_t i = 0; i < N; i++) {
        // forward: out[i, :] = table[ids[i], :]  ->  dtable[ids[i], :] += dout[i, :]
        if (ids[i] == padding_idx) continue;
        float *dt = dtable + (int64_t)ids[i] * E; // (E)
        const float *d = dout + i * E;           // (E)
        for (int64_t e = 0; e < E; e++) dt[e] += d[e];
    }
}

int attn_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int V, int E) {
    if (!out || !ids || !table) return attn__error(ATTN_EINVAL, "embedding: NULL array");
    int st = check_ids(ids, N, V, E, "embedding");
    if (st) return st;
    attn__embedding_forward(out, ids, table, N, E);
    return ATTN_OK;
}

int attn_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int V,
                            int E, int padding_idx) {
    if (!dtable || !dout || !ids) return attn__error(ATTN_EINVAL, "embedding backward: NULL array");
    int st = check_ids(ids, N, V, E, "embedding backward");
    if (st) return st;
    if (padding_idx >= V)
        return attn__error(ATTN_EINVAL, "embedding backward: padding_idx %d is not in [0, %d)", padding_idx, V);
    attn__embedding_backward(dtable, dout, ids, N, E, padding_idx);
    return ATTN_OK;
}
