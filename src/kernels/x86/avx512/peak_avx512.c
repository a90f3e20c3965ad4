/* The fp32 FMA peak loop for AVX-512 (see kernels/peak.h): 12 independent chains of 512-bit
 * FMAs, acc = acc * x + y, enough to keep two FMA units busy through a latency of 4-6 cycles
 * (2 units x 4 cycles = 8 in flight). One FMA is 2 flops per lane: 12 x 16 x 2 per iteration. */
#include <immintrin.h>

#include "kernels/peak.h"

#define CHAINS 12

static float loop(long iters) {
    __m512 a[CHAINS];
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
    for (int c = 0; c < CHAINS; c++) a[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        _Pragma("GCC unroll 12") for (int c = 0; c < CHAINS; c++) a[c] = _mm512_fmadd_ps(a[c], x, y);
    __m512 s = a[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, a[c]);
    return _mm512_reduce_add_ps(s);
}

const attn__peak_loop attn__peak_f32_avx512 = {
    loop, CHAINS * 16 * 2.0, "avx512: 12 chains of 512-bit FMA (vfmadd), 2 flops per lane", NULL};
