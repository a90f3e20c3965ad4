/* Elementwise activations, forward and backward: tanh, sigmoid, relu, gelu (exact erf form),
 * through the kernel table's activation entries (kernels/ref/act_ref.c, rows_ref.c and the x86
 * versions, which give the same bits). Each backward accumulates (+=) into dinp and states
 * which forward value it reads: tanh and sigmoid differentiate from their output, relu and
 * gelu from their input. Not here: the tanh approximation of GELU. Shapes: every array is (n). */
#include "attn/layers.h"

#include "kernels/kernels.h"

void attn_tanh_forward(float *out, const float *inp, size_t n) { attn__kern()->tanh_fwd(out, inp, (int64_t)n); }

void attn_tanh_backward(float *dinp, const float *out, const float *dout, size_t n) {
    attn__kern()->tanh_bwd(dinp, out, dout, (int64_t)n);
}

void attn_sigmoid_forward(float *out, const float *inp, size_t n) { attn__kern()->sigmoid_fwd(out, inp, (int64_t)n); }

void attn_sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n) {
    attn__kern()->sigmoid_bwd(dinp, out, dout, (int64_t)n);
}

void attn_relu_forward(float *out, const float *inp, size_t n) { attn__kern()->relu_fwd(out, inp, (int64_t)n); }

void attn_relu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    attn__kern()->relu_bwd(dinp, inp, dout, (int64_t)n);
}

void attn_gelu_forward(float *out, const float *inp, size_t n) { attn__kern()->gelu_fwd(out, inp, (int64_t)n); }

void attn_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    attn__kern()->gelu_bwd(dinp, inp, dout, (int64_t)n);
}
