/* The fast 2^x of the AVX-512 kernels, fp32 (x86/avx512/) and bf16 (x86/avx512bf16/, x86/amx/),
 * which accumulate and take the softmax in fp32 alike. Needs AVX-512F and DQ (vreduceps). Not
 * a public header. */
#ifndef ATTN_EXP2_AVX512_H
#define ATTN_EXP2_AVX512_H

#include <immintrin.h>

/* 2^x = 2^f 2^floor(x), f = x - floor(x) in [0, 1] from one vreduceps; 2^f by a degree-6
 * polynomial fitted here for relative error (6.5e-8 in float32 Horner form, below half an ulp
 * of float, over all of [0, 1]; its constant term is exactly 1, so 2^0 = 1 exactly), then
 * scaled by 2^floor(x) with vscalefps, which reads floor(x) itself. Special values need no
 * test: vreduceps gives 0 for +-inf, so 2^-inf = 1 * 2^-inf = 0 and 2^+inf = +inf; NaN stays
 * NaN; x below -150 underflows to 0, and (-150, -126) to the denormals, as exp2f. Eight
 * vector operations, against ten for round, subtract and clamp. */
static inline __m512 attn__exp2_avx512(__m512 x) {
    __m512 f = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_set1_ps(2.161291631637141e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.2467845808714628e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.675451554358006e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5485282093286514e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402293086051941e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931470632553101e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, x);
}

#endif
