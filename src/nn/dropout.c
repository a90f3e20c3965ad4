/* Inverted dropout (Srivastava et al. 2014), forward and backward: kept elements are scaled
 * by 1 / (1 - p) at training time so that nothing changes at inference (where the caller
 * simply skips dropout). Two mask generators, each implemented once here:
 *  - the stored mask (attn_dropout_forward, the tape's attn_ag_dropout): one attn_rng_uniform
 *    draw per element, in order, so a seed reproduces a run; the mask is kept for the backward;
 *  - the counter-based mask the Transformer fuses into y = x + dropout(f) (its residual
 *    branches) and y = dropout(relu(h)) (its feed-forward hidden layer): element i is kept iff
 *    u_i >= t, with u_i the 16-bit field (i mod 4) of splitmix64(seed + (i / 4) * golden),
 *    t = round(p * 65536) (so the rate is t / 65536, within 2^-17 of p, and kept elements are
 *    scaled by 1 / (1 - t / 65536)), and one 64-bit seed per op: the backward recomputes the
 *    mask, any split of [0, n) into ranges gives the same bits, and there is one hash per four
 *    elements and no per-element generator call.
 * Letters: n elements; [i0, i1) a range of them.
 * Not here: dropout of whole channels or tokens (Dropout2d, word dropout). */
#include "attn/layers.h"

#include "core/internal.h"
#include "nn/nn_internal.h"

/* ---- stored mask ----------------------------------------------------------------------- */

void attn__dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n, float p, attn_rng *rng) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        mask[i] = attn_rng_uniform(rng) >= p;
        out[i] = mask[i] ? inp[i] * scale : 0.0f;
    }
}

void attn__dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p, int accumulate) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    // forward: out[i] = mask[i] ? inp[i] * scale : 0
    for (int64_t i = 0; i < n; i++) {
        float d = mask[i] ? dout[i] * scale : 0.0f;
        dinp[i] = accumulate ? dinp[i] + d : d;
    }
}

int attn_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, attn_rng *rng) {
    if (!(p >= 0.0f && p <= 1.0f)) return attn__error(ATTN_EINVAL, "dropout: p = %g is not in [0, 1]", (double)p);
    if (n && (!out || !mask || !inp || (p > 0.0f && p < 1.0f && !rng)))
        return attn__error(ATTN_EINVAL, "dropout: NULL array or rng");
    if (p == 0.0f) { /* no draws */
        for (size_t i = 0; i < n; i++) out[i] = inp[i], mask[i] = 1;
        return ATTN_OK;
    }
    if (p == 1.0f && !rng) { /* no draws; with a generator, the draws happen as for any p */
        for (size_t i = 0; i < n; i++) out[i] = 0.0f, mask[i] = 0;
        return ATTN_OK;
    }
    attn__dropout_forward(out, mask, inp, (int64_t)n, p, rng);
    return ATTN_OK;
}

int attn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p) {
    if (!(p >= 0.0f && p <= 1.0f)) return attn__error(ATTN_EINVAL, "dropout backward: p = %g is not in [0, 1]", (double)p);
    if (n && (!dinp || !dout || !mask)) return attn__error(ATTN_EINVAL, "dropout backward: NULL array");
    attn__dropout_backward(dinp, dout, mask, (int64_t)n, p, 1);
    return ATTN_OK;
}

/* ---- counter-based mask, fused ------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t z) { /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

attn__dropmask attn__dropmask_make(uint64_t seed, float p) {
    attn__dropmask d;
    d.seed = seed;
    d.thresh = (uint32_t)((double)p * 65536.0 + 0.5);
    d.scale = (float)(65536.0 / (65536.0 - d.thresh));
    return d;
}

/* The multipliers of elements [i0, i1): m[i - i0] = scale if kept, else 0 (one hash per
 * group of four, branch-free for whole groups; i0 and i1 need not be multiples of four). */
static void drop_multipliers(attn__dropmask d, int64_t i0, int64_t i1, float *m) {
    uint64_t seed = d.seed;
    uint32_t thresh = d.thresh;
    float scale = d.scale;
    int64_t i = i0;
    for (; i < i1 && (i & 3); i++) { /* the head of a group */
        uint64_t h = mix64(seed + (uint64_t)(i >> 2) * 0x9e3779b97f4a7c15ull);
        m[i - i0] = (uint32_t)(h >> (16 * (i & 3)) & 0xffffu) >= thresh ? scale : 0.0f;
    }
    for (; i + 4 <= i1; i += 4) {
        uint64_t h = mix64(seed + (uint64_t)(i >> 2) * 0x9e3779b97f4a7c15ull);
        float *o = m + (i - i0);
        o[0] = (uint32_t)(h & 0xffffu) >= thresh ? scale : 0.0f;
        o[1] = (uint32_t)(h >> 16 & 0xffffu) >= thresh ? scale : 0.0f;
        o[2] = (uint32_t)(h >> 32 & 0xffffu) >= thresh ? scale : 0.0f;
        o[3] = (uint32_t)(h >> 48) >= thresh ? scale : 0.0f;
    }
    for (; i < i1; i++) { /* the tail */
        uint64_t h = mix64(seed + (uint64_t)(i >> 2) * 0x9e3779b97f4a7c15ull);
        m[i - i0] = (uint32_t)(h >> (16 * (i & 3)) & 0xffffu) >= thresh ? scale : 0.0f;
    }
}

#define DROP_CHUNK 1024 /* elements per stack buffer of multipliers */

void attn__add_dropout_forward(float *y, const float *a, const float *b, attn__dropmask d, int64_t i0, int64_t i1) {
    float m[DROP_CHUNK];
    for (int64_t k0 = i0; k0 < i1; k0 += DROP_CHUNK) {
        int64_t k1 = k0 + DROP_CHUNK < i1 ? k0 + DROP_CHUNK : i1;
        drop_multipliers(d, k0, k1, m);
        for (int64_t j = 0; j < k1 - k0; j++) y[k0 + j] = a[k0 + j] + b[k0 + j] * m[j];
    }
}

void attn__add_dropout_backward(float *da, float *db, const float *dy, attn__dropmask d, int64_t i0, int64_t i1,
                                int accumulate_a, int accumulate_b) {
    float m[DROP_CHUNK];
    for (int64_t k0 = i0; k0 < i1; k0 += DROP_CHUNK) {
        int64_t k1 = k0 + DROP_CHUNK < i1 ? k0 + DROP_CHUNK : i1, n = k1 - k0;
        const float *g = dy + k0;
        // forward: y = a + b * m  ->  da = dy, db = dy * m
        if (da) {
            float *o = da + k0;
            if (!accumulate_a) memcpy(o, g, (size_t)n * sizeof(float));
            else
                for (int64_t j = 0; j < n; j++) o[j] += g[j];
        }
        if (db) {
            drop_multipliers(d, k0, k1, m);
            float *o = db + k0;
            if (!accumulate_b)
                for (int64_t j = 0; j < n; j++) o[j] = g[j] * m[j];
            else
                for (int64_t j = 0; j < n; j++) o[j] += g[j] * m[j];
        }
    }
}

void attn__relu_dropout_forward(float *y, const float *a, attn__dropmask d, int64_t i0, int64_t i1) {
    float m[DROP_CHUNK];
    for (int64_t k0 = i0; k0 < i1; k0 += DROP_CHUNK) {
        int64_t k1 = k0 + DROP_CHUNK < i1 ? k0 + DROP_CHUNK : i1;
        drop_multipliers(d, k0, k1, m);
        const float *x = a + k0;
        float *o = y + k0;
        for (int64_t j = 0; j < k1 - k0; j++) o[j] = x[j] > 0.0f ? x[j] * m[j] : 0.0f;
    }
}

void attn__relu_dropout_backward(float *da, const float *a, const float *dy, attn__dropmask d, int64_t i0, int64_t i1,
                                 int accumulate) {
    float m[DROP_CHUNK];
    for (int64_t k0 = i0; k0 < i1; k0 += DROP_CHUNK) {
        int64_t k1 = k0 + DROP_CHUNK < i1 ? k0 + DROP_CHUNK : i1, n = k1 - k0;
        drop_multipliers(d, k0, k1, m);
        const float *x = a + k0, *g = dy + k0;
        float *o = da + k0;
        // forward: y = x > 0 ? x * m : 0  ->  dx = x > 0 ? dy * m : 0
        if (!accumulate)
            for (int64_t j = 0; j < n; j++) o[j] = x[j] > 0.0f ? g[j] * m[j] : 0.0f;
        else
            for (int64_t j = 0; j < n; j++) o[j] += x[j] > 0.0f ? g[j] * m[j] : 0.0f;
    }
}
