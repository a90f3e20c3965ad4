/* The activations that call libm, in portable C: tanh, sigmoid, gelu (exact erf form),
 * forward and backward, the reference table's entries (relu is in rows_ref.c). They have no
 * vector versions: tanhf, expf and erf are glibc's scalar routines, whose bits a vector
 * polynomial would not reproduce, and training's results depend on them. Shapes: every array
 * is (n). */
#include "kernels/kernels.h"

#include <math.h>

void attn__tanh_fwd_ref(float *out, const float *inp, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void attn__tanh_bwd_ref(float *dinp, const float *out, const float *dout, int64_t n) {
    /* out = tanh(inp) -> d/dinp = 1 - out^2 */
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* Stable for large |x|: exp never overflows. */
static inline float sigmoidf(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

void attn__sigmoid_fwd_ref(float *out, const float *inp, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = sigmoidf(inp[i]);
}

void attn__sigmoid_bwd_ref(float *dinp, const float *out, const float *dout, int64_t n) {
    /* out = 1 / (1 + exp(-inp)) -> d/dinp = out * (1 - out) */
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

void attn__gelu_fwd_ref(float *out, const float *inp, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + erf(x * INV_SQRT2)));
    }
}

void attn__gelu_bwd_ref(float *dinp, const float *inp, const float *dout, int64_t n) {
    /* out = x * Phi(x) -> d/dx = Phi(x) + x * phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
    for (int64_t i = 0; i < n; i++) {
        double x = inp[i];
        double cdf = 0.5 * (1.0 + erf(x * INV_SQRT2));
        double pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
        dinp[i] += (float)(dout[i] * (cdf + x * pdf));
    }
}
