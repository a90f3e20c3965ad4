/* Batching of variable-length sequences: epoch plans that shuffle with a seed and bucket by
 * length so that batches carry little padding (the trainer's; families pad their own batches).
 * Everything is deterministic for a given seed. */
#include <string.h>

#include "attn/train.h"
#include "core/internal.h"

static void shuffle(int *a, int n, attn_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(((uint64_t)attn_rng_u32(r) * (uint64_t)(i + 1)) >> 32);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Stable merge sort of idx[0..n) by lens[idx], using tmp (n). */
static void sort_by_len(int *idx, int *tmp, int n, const int *lens) {
    for (int w = 1; w < n; w *= 2)
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = lens[idx[j]] < lens[idx[i]] ? idx[j++] : idx[i++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
            memcpy(idx + lo, tmp + lo, (size_t)(hi - lo) * sizeof(int));
        }
}

int attn_batches_make(const int *lens, int n, int batch_size, int max_tokens, int bucket, uint64_t seed, attn_batches *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_batches_make: NULL output");
    memset(out, 0, sizeof *out);
    if (!lens || n < 1 || batch_size < 1) return attn__error(ATTN_EINVAL, "attn_batches_make: %d examples, batch size %d", n, batch_size);
    int *idx = attn_malloc((size_t)n * sizeof(int)), *tmp = attn_malloc((size_t)n * sizeof(int));
    int *off = attn_malloc((size_t)(n + 1) * sizeof(int)), *perm = attn_malloc((size_t)n * sizeof(int));
    if (!idx || !tmp || !off || !perm) {
        attn_free(idx), attn_free(tmp), attn_free(off), attn_free(perm);
        return attn__error(ATTN_ENOMEM, "attn_batches_make: out of memory");
    }
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) idx[i] = i;
    shuffle(idx, n, &r);
    if (bucket > 1) {
        int64_t win = (int64_t)bucket * batch_size;
        for (int64_t lo = 0; lo < n; lo += win) sort_by_len(idx + lo, tmp, (int)(lo + win < n ? win : n - lo), lens);
    }
    /* Cut into batches (in the sorted order), then shuffle the batch order. */
    int nb = 0;
    off[0] = 0;
    for (int i = 0; i < n;) {
        int j = i, longest = 0;
        while (j < n && j - i < batch_size) {
            int L = lens[idx[j]] > longest ? lens[idx[j]] : longest;
            if (max_tokens > 0 && j > i && (int64_t)L * (j - i + 1) > max_tokens) break;
            longest = L;
            j++;
        }
        off[++nb] = j;
        i = j;
    }
    for (int b = 0; b < nb; b++) perm[b] = b;
    shuffle(perm, nb, &r);
    int k = 0;
    out->offsets = attn_malloc((size_t)(nb + 1) * sizeof(int));
    if (!out->offsets) {
        attn_free(idx), attn_free(tmp), attn_free(off), attn_free(perm);
        return attn__error(ATTN_ENOMEM, "attn_batches_make: out of memory");
    }
    out->offsets[0] = 0;
    for (int b = 0; b < nb; b++) {
        int lo = off[perm[b]], hi = off[perm[b] + 1];
        memcpy(tmp + k, idx + lo, (size_t)(hi - lo) * sizeof(int));
        k += hi - lo;
        out->offsets[b + 1] = k;
    }
    out->n_batches = nb;
    out->index = tmp;
    attn_free(idx), attn_free(off), attn_free(perm);
    return ATTN_OK;
}

void attn_batches_free(attn_batches *b) {
    if (!b) return;
    attn_free(b->offsets);
    attn_free(b->index);
    memset(b, 0, sizeof *b);
}
