/* Vector helpers of the bf16 kernels (avx512bf16/ and amx/; both built with AVX-512F): the
 * fast exp2 of the fp32 AVX-512 kernels (x86/avx512/attn_avx512.c has the same; kept apart
 * so that the fp32 file's flags and tuning stay its own). Not a public header. */
#ifndef ATTN_BF16_VEC_H
#define ATTN_BF16_VEC_H

#include <immintrin.h>

/* 2^x: x = n + f, |f| <= 1/2, 2^f by Cephes' exp2f polynomial (relative error below 2e-7),
 * scaled by 2^n with vscalefps; x <= -150 and -inf give 0, NaN stays NaN. */
static inline __m512 attn__bf16_exp2(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-150.0f), x);
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

#endif
