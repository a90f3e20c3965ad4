/* The fp32 FMA peak loop for AVX-512 (see kernels/peak.h): 12 independent chains of 512-bit
 * FMAs, acc = acc * x + y, enough to keep two FMA units busy through a latency of 4-6 cycles
 * (2 units x 4 cycles = 8 in flight). One FMA is 2 flops per lane: 12 x 16 x 2 per iteration. */
#include <immintrin.h>

#include "kernels/peak.h"

#define INIT(c) _mm512_set1_ps((float)(c))
#define STEP(a) _mm512_fmadd_ps(a, _mm512_set1_ps(0.999f), _mm512_set1_ps(0.001f))
ATTN__PEAK_LOOP(loop, __m512, INIT, STEP, _mm512_add_ps, _mm512_reduce_add_ps)

const attn__peak_loop attn__peak_f32_avx512 = {
    loop, ATTN__PEAK_CHAINS * 16 * 2.0, "avx512: 12 chains of 512-bit FMA (vfmadd), 2 flops per lane", NULL};
