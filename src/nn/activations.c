/* Elementwise activations, forward and backward: tanh, sigmoid, relu, gelu (exact erf form).
 * Each backward accumulates (+=) into dinp and states which forward value it reads: tanh and
 * sigmoid differentiate from their output, relu and gelu from their input. Not here: the
 * tanh approximation of GELU, and vectorised versions (these are memory-bound loops the
 * compiler vectorises where libm allows). Shapes: every array is (n). */
#include "attn/layers.h"

#include <math.h>

void attn_tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void attn_tanh_backward(float *dinp, const float *out, const float *dout, size_t n) {
    /* out = tanh(inp) -> d/dinp = 1 - out^2 */
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* Stable for large |x|: exp never overflows. */
static inline float sigmoidf(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

void attn_sigmoid_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = sigmoidf(inp[i]);
}

void attn_sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n) {
    /* out = 1 / (1 + exp(-inp)) -> d/dinp = out * (1 - out) */
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void attn_relu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void attn_relu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    /* out = max(inp, 0) -> d/dinp = [inp > 0] (0 at inp == 0, as PyTorch) */
    for (size_t i = 0; i < n; i++)
        if (inp[i] > 0.0f) dinp[i] += dout[i];
}

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

void attn_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + erf(x * INV_SQRT2)));
    }
}

void attn_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    /* out = x * Phi(x) -> d/dx = Phi(x) + x * phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double cdf = 0.5 * (1.0 + erf(x * INV_SQRT2));
        double pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
        dinp[i] += (float)(dout[i] * (cdf + x * pdf));
    }
}
