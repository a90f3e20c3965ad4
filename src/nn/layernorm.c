/* Layer normalisation over the last axis (Ba, Kiros & Hinton 2016), forward and backward, as
 * torch.nn.LayerNorm(C, eps, elementwise_affine) and ONNX LayerNormalization: biased
 * variance, optional per-feature weight and bias. Row statistics accumulate in double; mean
 * and rstd are kept (as floats) for the backward. This is the one implementation: the public
 * functions run it over all rows, the autograd tape over fixed blocks of rows in parallel.
 * Letters: R (N in the API) rows, C features per row.
 * Not here: RMSNorm, normalising over an axis that is not innermost. */
#include "attn/layers.h"

#include <math.h>

#include "core/internal.h"
#include "nn/nn_internal.h"

void attn__layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int64_t R, int64_t C, float eps) {
    for (int64_t r = 0; r < R; r++) {
        const float *x = inp + r * C; // (C)
        float *y = out + r * C;       // (C)
        double m = 0.0, v = 0.0;      // two passes: no cancellation for rows with a large mean
        for (int64_t j = 0; j < C; j++) m += x[j];
        m /= (double)C;
        for (int64_t j = 0; j < C; j++) v += (x[j] - m) * (x[j] - m);
        v /= (double)C;
        float mf = (float)m, rs = (float)(1.0 / sqrt(v + eps));
        if (mean) mean[r] = mf;
        if (rstd) rstd[r] = rs;
        for (int64_t j = 0; j < C; j++) {
            float h = (x[j] - mf) * rs; // normalised
            y[j] = h * (weight ? weight[j] : 1.0f) + (bias ? bias[j] : 0.0f);
        }
    }
}

void attn__layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const float *mean, const float *rstd, int64_t R, int64_t C,
                              int accumulate) {
    for (int64_t r = 0; r < R; r++) {
        const float *x = inp + r * C, *dy = dout + r * C; // (C)
        float m = mean[r], rs = rstd[r];
        // forward: h = (x[j] - mf) * rs;  y[j] = h * weight[j] + bias[j]
        //   dh = dy * weight;  dx = rs * (dh - mean(dh) - h * mean(dh * h))
        double a = 0.0, b = 0.0; // sums of dh and dh * h
        for (int64_t j = 0; j < C; j++) {
            float h = (x[j] - m) * rs, dh = dy[j] * (weight ? weight[j] : 1.0f);
            a += dh;
            b += (double)dh * h;
            if (dweight) dweight[j] += dy[j] * h;
            if (dbias) dbias[j] += dy[j];
        }
        if (!dinp) continue;
        float af = (float)(a / (double)C), bf = (float)(b / (double)C);
        float *dx = dinp + r * C; // (C)
        for (int64_t j = 0; j < C; j++) {
            float h = (x[j] - m) * rs, dh = dy[j] * (weight ? weight[j] : 1.0f);
            float d = rs * (dh - af - h * bf);
            dx[j] = accumulate ? dx[j] + d : d;
        }
    }
}

int attn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps) {
    if (!out || !inp) return attn__error(ATTN_EINVAL, "layernorm: NULL array");
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "layernorm: bad shape (%d, %d)", N, C);
    if (!(eps >= 0.0f)) return attn__error(ATTN_EINVAL, "layernorm: eps %g < 0", (double)eps);
    attn__layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
    return ATTN_OK;
}

int attn_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int N, int C) {
    if (!dout || !inp || !mean || !rstd)
        return attn__error(ATTN_EINVAL, "layernorm backward: NULL dout, inp, mean or rstd");
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "layernorm backward: bad shape (%d, %d)", N, C);
    attn__layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, 1);
    return ATTN_OK;
}
