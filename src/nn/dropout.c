/* Inverted dropout (Srivastava et al. 2014), forward and backward: kept elements are scaled
 * by 1 / (1 - p) at training time so that nothing changes at inference (where the caller
 * simply skips dropout). The mask is returned for the backward. Randomness comes from the
 * caller's attn_rng: one uniform draw per element, in order, so a seed reproduces a run.
 * Not here: dropout of whole channels or tokens (Dropout2d, word dropout). */
#include "attn/layers.h"

#include "core/internal.h"

int attn_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, attn_rng *rng) {
    if (!(p >= 0.0f && p <= 1.0f)) return attn__error(ATTN_EINVAL, "dropout: p = %g is not in [0, 1]", (double)p);
    if (n && (!out || !mask || !inp || (p > 0.0f && p < 1.0f && !rng)))
        return attn__error(ATTN_EINVAL, "dropout: NULL array or rng");
    if (p == 0.0f) {
        for (size_t i = 0; i < n; i++) out[i] = inp[i], mask[i] = 1;
        return ATTN_OK;
    }
    if (p == 1.0f) {
        for (size_t i = 0; i < n; i++) out[i] = 0.0f, mask[i] = 0;
        return ATTN_OK;
    }
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        uint8_t keep = attn_rng_uniform(rng) >= p;
        mask[i] = keep;
        out[i] = keep ? inp[i] * scale : 0.0f;
    }
    return ATTN_OK;
}

int attn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p) {
    if (!(p >= 0.0f && p <= 1.0f)) return attn__error(ATTN_EINVAL, "dropout backward: p = %g is not in [0, 1]", (double)p);
    if (n && (!dinp || !dout || !mask)) return attn__error(ATTN_EINVAL, "dropout backward: NULL array");
    if (p == 1.0f) return ATTN_OK; // forward: out = 0
    float scale = 1.0f / (1.0f - p);
    // forward: out[i] = mask[i] ? inp[i] * scale : 0
    for (size_t i = 0; i < n; i++)
        if (mask[i]) dinp[i] += dout[i] * scale;
    return ATTN_OK;
}
