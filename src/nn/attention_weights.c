/* Small pieces of the attention API kept apart from nn/attention.c: the score names, mask
 * broadcasting, and attn_weights, the exact weights of chosen heads and rows recomputed from
 * the forward's log-sum-exp (its loop over heads lives in nn/attention.c, beside the score
 * preparation it shares with the forward). */
#include "attn/attention.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "nn/nn_internal.h"

static const char *const SCORE_NAMES[] = {"dot", "scaled", "cosine", "general", "additive"};

const char *attn_score_name(attn_score s) {
    return (unsigned)s < 5 ? SCORE_NAMES[s] : "unknown";
}

int attn_score_parse(const char *name) {
    for (int i = 0; name && i < 5; i++)
        if (strcmp(name, SCORE_NAMES[i]) == 0) return i;
    return -1;
}

int attn_broadcast_strides(const int64_t *shape, int ndim, const int64_t target[4], int64_t strides[4]) {
    if (ndim < 1 || ndim > 4) return attn__error(ATTN_ESHAPE, "a mask must have 1 to 4 dimensions, not %d", ndim);
    int64_t stride = 1;
    for (int t = 3, s = ndim - 1; t >= 0; t--, s--) {
        int64_t n = s >= 0 ? shape[s] : 1;
        if (n == target[t]) {
            strides[t] = n == 1 ? 0 : stride;
        } else if (n == 1) {
            strides[t] = 0;
        } else {
            return attn__error(ATTN_ESHAPE, "mask dimension %d of size %lld does not broadcast to %lld",
                               s, (long long)n, (long long)target[t]);
        }
        stride *= n;
    }
    return ATTN_OK;
}

int attn_plan_weights(attn_plan *pl, const float *Q, const float *K, const float *lse, const int *heads, int nheads,
                      int row0, int row1, float *P) {
    if (!pl) return attn__error(ATTN_EINVAL, "attn_weights: attention plan is NULL");
    const attn_desc *a = attn_plan_desc(pl);
    int BH = a->B * a->H;
    if (!Q || !K || !P) return attn__error(ATTN_EINVAL, "attn_weights: Q, K and P must not be NULL");
    if (!lse)
        return attn__error(ATTN_EINVAL, "attn_weights: lse is NULL (give the log-sum-exp (B, H, Nq) that attn_forward "
                                        "wrote; the weights are recomputed from it)");
    if (row0 < 0 || row1 > a->Nq || row0 >= row1)
        return attn__error(ATTN_EINVAL, "attn_weights: query rows [%d, %d) are not a non-empty range within [0, %d)",
                           row0, row1, a->Nq);
    if (!heads && nheads != BH)
        return attn__error(ATTN_EINVAL, "attn_weights: heads NULL means all B * H = %d heads, but nheads is %d", BH,
                           nheads);
    if (nheads < 1) return attn__error(ATTN_EINVAL, "attn_weights: nheads must be >= 1, not %d", nheads);
    for (int t = 0; heads && t < nheads; t++)
        if (heads[t] < 0 || heads[t] >= BH)
            return attn__error(ATTN_EINVAL, "attn_weights: head %d (heads[%d]) is outside [0, B * H = %d)", heads[t], t,
                               BH);
    return attn__plan_weights(pl, Q, K, lse, heads, nheads, row0, row1, P);
}

int attn_weights(const attn_desc *desc, const float *Q, const float *K, const float *lse, const int *heads, int nheads,
                 int row0, int row1, float *P) {
    attn_plan *pl;
    int st = attn_plan_new(desc, &pl);
    if (!st) st = attn_plan_weights(pl, Q, K, lse, heads, nheads, row0, row1, P);
    attn_plan_free(pl);
    return st;
}
