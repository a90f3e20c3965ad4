/* Layer normalisation over the last axis (Ba, Kiros & Hinton 2016), forward and backward, as
 * torch.nn.LayerNorm(C, eps, elementwise_affine) and ONNX LayerNormalization: biased
 * variance, optional per-feature weight and bias. Statistics accumulate in double; mean and
 * rstd are returned for the backward. Letters: N rows, C features per row.
 * Not here: RMSNorm, normalising over an axis that is not innermost. */
#include "attn/layers.h"

#include <math.h>

#include "core/internal.h"

int attn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps) {
    if (!out || !inp) return attn__error(ATTN_EINVAL, "layernorm: NULL array");
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "layernorm: bad shape (%d, %d)", N, C);
    if (!(eps >= 0.0f)) return attn__error(ATTN_EINVAL, "layernorm: eps %g < 0", (double)eps);
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C; // (C)
        float *y = out + (size_t)i * C;       // (C)
        double m = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        double v = 0.0; // two passes: no cancellation for rows with a large mean
        for (int c = 0; c < C; c++) {
            double d = x[c] - m;
            v += d * d;
        }
        v /= C;
        double s = 1.0 / sqrt(v + eps);
        float fm = (float)m, fs = (float)s;
        for (int c = 0; c < C; c++) {
            float n = (float)(((double)x[c] - m) * s); // normalised
            y[c] = n * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
        }
        if (mean) mean[i] = fm;
        if (rstd) rstd[i] = fs;
    }
    return ATTN_OK;
}

int attn_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int N, int C) {
    if (!dout || !inp || !mean || !rstd)
        return attn__error(ATTN_EINVAL, "layernorm backward: NULL dout, inp, mean or rstd");
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "layernorm backward: bad shape (%d, %d)", N, C);
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C; // (C)
        float m = mean[i], s = rstd[i];
        // forward: n[c] = (x[c] - m) * s;  y[c] = n[c] * w[c] + b[c]
        //   dn[c] = dy[c] * w[c];  dx[c] = s * (dn[c] - mean(dn) - n[c] * mean(dn * n))
        double sum_dn = 0.0, sum_dn_n = 0.0;
        for (int c = 0; c < C; c++) {
            float n = (x[c] - m) * s;
            float dn = dy[c] * (weight ? weight[c] : 1.0f);
            sum_dn += dn;
            sum_dn_n += (double)dn * n;
            if (dbias) dbias[c] += dy[c];
            if (dweight) dweight[c] += dy[c] * n;
        }
        if (!dinp) continue;
        float a = (float)(sum_dn / C), b = (float)(sum_dn_n / C);
        float *dx = dinp + (size_t)i * C; // (C)
        for (int c = 0; c < C; c++) {
            float n = (x[c] - m) * s;
            float dn = dy[c] * (weight ? weight[c] : 1.0f);
            dx[c] += s * (dn - a - n * b);
        }
    }
    return ATTN_OK;
}
