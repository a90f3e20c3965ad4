/* The fp32 FMA peak loop for AVX2 + FMA (see kernels/peak.h): 12 independent chains of 256-bit
 * FMAs, acc = acc * x + y (12 accumulators and 2 constants fit the 16 ymm registers). One FMA is
 * 2 flops per lane: 12 x 8 x 2 per iteration. */
#include <immintrin.h>

#include "kernels/peak.h"

#define CHAINS 12

static float loop(long iters) {
    __m256 a[CHAINS];
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
    for (int c = 0; c < CHAINS; c++) a[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        _Pragma("GCC unroll 12") for (int c = 0; c < CHAINS; c++) a[c] = _mm256_fmadd_ps(a[c], x, y);
    __m256 s = a[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, a[c]);
    float v[8], t = 0;
    _mm256_storeu_ps(v, s);
    for (int l = 0; l < 8; l++) t += v[l];
    return t;
}

const attn__peak_loop attn__peak_f32_avx2 = {
    loop, CHAINS * 8 * 2.0, "avx2: 12 chains of 256-bit FMA (vfmadd), 2 flops per lane", NULL};
