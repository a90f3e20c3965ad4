/* Embedding lookup, forward and backward, as torch.nn.Embedding (including padding_idx,
 * whose row gets no gradient). Letters: N looked-up positions, V vocabulary size, E
 * embedding size. Not here: max_norm renormalisation, sparse gradients, EmbeddingBag. */
#include "attn/layers.h"

#include <string.h>

#include "core/internal.h"

static int check_ids(const int32_t *ids, int N, int V, int E, const char *what) {
    if (N < 0 || V < 1 || E < 1) return attn__error(ATTN_EINVAL, "%s: bad sizes N=%d V=%d E=%d", what, N, V, E);
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return attn__error(ATTN_EINVAL, "%s: id %d at position %d is not in [0, %d)", what, (int)ids[i], i, V);
    return ATTN_OK;
}

int attn_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int V, int E) {
    if (!out || !ids || !table) return attn__error(ATTN_EINVAL, "embedding: NULL array");
    int st = check_ids(ids, N, V, E, "embedding");
    if (st) return st;
    for (int i = 0; i < N; i++) // out[i, :] = table[ids[i], :]
        memcpy(out + (size_t)i * E, table + (size_t)ids[i] * E, (size_t)E * sizeof(float));
    return ATTN_OK;
}

int attn_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int V,
                            int E, int padding_idx) {
    if (!dtable || !dout || !ids) return attn__error(ATTN_EINVAL, "embedding backward: NULL array");
    int st = check_ids(ids, N, V, E, "embedding backward");
    if (st) return st;
    if (padding_idx >= V)
        return attn__error(ATTN_EINVAL, "embedding backward: padding_idx %d is not in [0, %d)", padding_idx, V);
    for (int i = 0; i < N; i++) {
        // forward: out[i, :] = table[ids[i], :]  ->  dtable[ids[i], :] += dout[i, :]
        if (ids[i] == padding_idx) continue;
        float *dt = dtable + (size_t)ids[i] * E; // (E)
        const float *d = dout + (size_t)i * E;   // (E)
        for (int e = 0; e < E; e++) dt[e] += d[e];
    }
    return ATTN_OK;
}
