/* The bf16 peak loop for AVX512-BF16 (see kernels/peak.h), built with -mavx512bf16 (this
 * folder alone); run only where the CPU has AVX512-BF16. 12 independent chains of VDPBF16PS:
 * acc (16 fp32 lanes) += a (32 bf16) . b (32 bf16) pairwise, lane i += a[2i] b[2i] +
 * a[2i+1] b[2i+1]: 2 multiplies and 2 adds per lane, counted as 4 flops per lane (the same
 * count as two FMAs), 64 per instruction, 12 x 64 per iteration. */
#include <immintrin.h>

#include "kernels/peak.h"

/* Products of 2^-5 by +-2^-5 added to chains that start at 1 or more: the sums stay finite and
 * normal for any run length (they stop growing once the increment rounds away). */
#define INIT(c) _mm512_set1_ps(1.0f + (float)(c))
#define STEP(a)                                                                                \
    _mm512_dpbf16_ps(a, _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.03125f), _mm512_set1_ps(0.03125f)), \
                     _mm512_cvtne2ps_pbh(_mm512_set1_ps(-0.03125f), _mm512_set1_ps(0.03125f)))
ATTN__PEAK_LOOP(loop, __m512, INIT, STEP, _mm512_add_ps, _mm512_reduce_add_ps)

const attn__peak_loop attn__peak_bf16_avx512 = {
    loop, ATTN__PEAK_CHAINS * 16 * 4.0,
    "avx512-bf16: 12 chains of 512-bit VDPBF16PS, 4 flops per fp32 lane (2 bf16 products + 2 adds)", NULL};
