/* The row-op and activation kernels (not API): the library's own exponential, and the
 * declarations of the portable loops (ref/rows_ref.c, ref/act_ref.c) and their x86 versions
 * (x86/avx2/rows_avx2.c, x86/avx512/rows_avx512.c), entries of the dispatch table (kernels.h).
 * Every path gives the bits of the portable loop: element-wise work is the same float
 * operations per element (no fused multiply-add), and each reduction keeps the reference's
 * order (eight double partial sums, lane k taking the elements j = k mod 8, combined in a fixed
 * order, then the tail in order), so vectors only hold independent lanes.
 * Letters: n the elements of one row. */
#ifndef ATTN_KERNELS_ROW_KERNELS_H
#define ATTN_KERNELS_ROW_KERNELS_H

#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 88 (larger x are clamped: callers pass x - max <= 0), 0 below -87.3 (and
 * for -inf); a NaN gives an unspecified finite value (callers check their rows for NaN).
 * Relative error under 1e-7 (Cephes' expf: Cody-Waite reduction, degree-5 polynomial).
 * Written without calls and with integer-only conditions, so that the vector kernels compute
 * the same operations in every lane and give the same bits. */
#define ATTN__EXP_KLO 0x3d516665u /* order key of -87.3f */
#define ATTN__EXP_KHI 0xc2b00000u /* order key of 88.0f */
static inline float attn__expf(float x) {
    uint32_t b, key, kc, cb, sb;
    float c, sc, res;
    memcpy(&b, &x, 4);
    key = (b & 0x80000000u) ? ~b : (b | 0x80000000u); /* monotonic in x */
    kc = key < ATTN__EXP_KLO ? ATTN__EXP_KLO : (key > ATTN__EXP_KHI ? ATTN__EXP_KHI : key);
    cb = (kc & 0x80000000u) ? (kc & 0x7fffffffu) : ~kc;
    memcpy(&c, &cb, 4);
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    sb = (uint32_t)((int32_t)n + 127) << 23;
    sb &= (uint32_t)0 - (uint32_t)(key >= ATTN__EXP_KLO); /* a scale of 0 below -87.3 */
    memcpy(&sc, &sb, 4);
    res = y * sc;
    return res;
}

/* The entries, per path (see kernels.h for what each computes). */
#define ATTN__ROW_DECLS(isa)                                                                               \
    float attn__row_max_##isa(const float *x, int64_t n);                                                  \
    double attn__sum_f64_##isa(const float *x, int64_t n);                                                 \
    double attn__dot_f64_##isa(const float *x, const float *y, int64_t n);                                 \
    double attn__exp_sum_##isa(float *y, const float *x, float mx, int64_t n);                             \
    void attn__logsm_bwd_row_##isa(float *dx, const float *y, const float *dy, float sd, int64_t n, int acc); \
    void attn__ce_bwd_row_##isa(float *dx, const float *x, float lse, float sc, float b, int64_t n, int acc); \
    void attn__relu_fwd_##isa(float *out, const float *inp, int64_t n);                                    \
    void attn__relu_bwd_##isa(float *dinp, const float *inp, const float *dout, int64_t n);              \
    void attn__bf16_widen_##isa(const uint16_t *x, float *y, int64_t n);
/* The table entries of one path (in an initialiser of attn__kernels). */
#define ATTN__ROW_ENTRIES(isa)                                                                             \
    .row_max = attn__row_max_##isa, .sum_f64 = attn__sum_f64_##isa, .dot_f64 = attn__dot_f64_##isa,       \
    .exp_sum = attn__exp_sum_##isa, .logsm_bwd_row = attn__logsm_bwd_row_##isa,                           \
    .ce_bwd_row = attn__ce_bwd_row_##isa, .relu_fwd = attn__relu_fwd_##isa, .relu_bwd = attn__relu_bwd_##isa, \
    .bf16_widen = attn__bf16_widen_##isa
ATTN__ROW_DECLS(ref)
ATTN__ROW_DECLS(avx2)
ATTN__ROW_DECLS(avx512)
#undef ATTN__ROW_DECLS

/* The activations that only the reference has: they call libm (tanhf, expf, erf), whose
 * results a vector version could not reproduce bit for bit. */
void attn__tanh_fwd_ref(float *out, const float *inp, int64_t n);
void attn__tanh_bwd_ref(float *dinp, const float *out, const float *dout, int64_t n);
void attn__sigmoid_fwd_ref(float *out, const float *inp, int64_t n);
void attn__sigmoid_bwd_ref(float *dinp, const float *out, const float *dout, int64_t n);
void attn__gelu_fwd_ref(float *out, const float *inp, int64_t n);
void attn__gelu_bwd_ref(float *dinp, const float *inp, const float *dout, int64_t n);

#endif
