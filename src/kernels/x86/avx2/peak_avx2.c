/* The fp32 FMA peak loop for AVX2 + FMA (see kernels/peak.h): 12 independent chains of 256-bit
 * FMAs, acc = acc * x + y (12 accumulators and 2 constants fit the 16 ymm registers). One FMA is
 * 2 flops per lane: 12 x 8 x 2 per iteration. */
#include <immintrin.h>

#include "kernels/peak.h"

#define INIT(c) _mm256_set1_ps((float)(c))
#define STEP(a) _mm256_fmadd_ps(a, _mm256_set1_ps(0.999f), _mm256_set1_ps(0.001f))
static float hsum(__m256 s) {
    float v[8], t = 0;
    _mm256_storeu_ps(v, s);
    for (int l = 0; l < 8; l++) t += v[l];
    return t;
}
ATTN__PEAK_LOOP(loop, __m256, INIT, STEP, _mm256_add_ps, hsum)

const attn__peak_loop attn__peak_f32_avx2 = {
    loop, ATTN__PEAK_CHAINS * 8 * 2.0, "avx2: 12 chains of 256-bit FMA (vfmadd), 2 flops per lane", NULL};
