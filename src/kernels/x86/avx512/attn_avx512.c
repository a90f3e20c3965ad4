/* The AVX-512 attention kernels: the vector macros for 16-lane zmm registers, a fast exp2,
 * the tile sizes, then the ISA-generic kernels of x86/attn_fast.h, and the avx512 level's
 * override table (the optimiser loops are inherited from the avx2 level). Built with -mavx512f
 * etc. (the files of this folder alone); dispatch.c offers the table only where the CPU has
 * AVX-512F/DQ/BW/VL, AVX2 and FMA.
 *
 * Tiles: 64 query rows (4 vectors) per tile; "ka", "kc" and "kb" tiles of 6 rows x 4 vectors
 * keep 24 accumulators in the 32 zmm registers; key blocks of 64. Calls of at most ROWS_MAX =
 * 24 rows take the row path (Intel Xeon, one thread, N = 4096, CPU time: 16 rows 2.8 ms against
 * the tile's 4.0-5.0, 24 rows 3.6-3.8 against 3.9, 32 rows 5.4 against 4.3-5.0). Measured on Zen 5 (one
 * core, N = 1024 and 4096, d = 64): 64-row tiles ~5% faster than 32-row ones (K and V are read
 * half as often); key blocks of 32, 96 or 128 within noise of 64.
 *
 * sgemm (the linear layers' products) is our own kernel rather than cblas_sgemm: measured on
 * one thread, (M, 512) x (512, 512) with M = 1024..4096, ours 170-200 GFLOP/s for every
 * transpose case; OpenBLAS 0.3.21 gives 83-100 under this environment's
 * OPENBLAS_CORETYPE=Haswell and about 190 with its own (Cooperlake) kernels. Ours is never
 * slower here, does not depend on how OpenBLAS was built or configured, and is deterministic
 * for any thread count by construction (each element is one FMA chain over k). */
#include <immintrin.h>
#include <math.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "kernels/x86/exp2_avx512.h"

#define ATTN_FAST_ISA 1
#define VL 16
typedef __m512 vf;
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, x) _mm512_storeu_ps(p, x)
#define vloadn(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define vstoren(p, x, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), x)
#define vbcast(p) _mm512_set1_ps(*(p))
#define vset1(x) _mm512_set1_ps(x)
#define vzero() _mm512_setzero_ps()
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vadd(a, b) _mm512_add_ps(a, b)
#define vsub(a, b) _mm512_sub_ps(a, b)
#define vmul(a, b) _mm512_mul_ps(a, b)
#define vmax(a, b) _mm512_max_ps(a, b)
#define vdiv(a, b) _mm512_div_ps(a, b)
#define vhmax(x) _mm512_reduce_max_ps(x)
#define vhsum(x) _mm512_reduce_add_ps(x)

#define vexp2 attn__exp2_avx512 /* x86/exp2_avx512.h */

static inline __m512 vsafe(__m512 m) {
    __mmask16 k = _mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(k, m, _mm512_setzero_ps());
}

static inline __m512 vkeep(__m512 x, int base, int lo, int hi) {
    __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(base),
                                   _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
    __mmask16 k = _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(lo)) & _mm512_cmplt_epi32_mask(idx, _mm512_set1_epi32(hi));
    return _mm512_mask_blend_ps(k, _mm512_set1_ps(-INFINITY), x);
}

/* Transpose the 16 x 16 block r[row][lane] in place: unpacks within 128-bit lanes give 4 x 4
 * transposed blocks, then two rounds of 128-bit shuffles transpose the 4 x 4 grid of blocks. */
static inline void vtranspose(__m512 *r) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]), c = _mm512_castps_pd(t[i + 2]), e = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
    }
    /* r[4b + e], 128-bit lane L, now holds rows 4b..4b+3 of column 4L + e. */
    for (int e = 0; e < 4; e++) {
        __m512 s0 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x44), s1 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xEE);
        __m512 s2 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x44), s3 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xEE);
        t[e] = _mm512_shuffle_f32x4(s0, s2, 0x88);
        t[4 + e] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
        t[8 + e] = _mm512_shuffle_f32x4(s1, s3, 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

#define NV 4
#define MJ 6
#define MC 6
#define MB 6
#define NB 4
#define BC 64
#define ROWS_MAX 24
#define FN(name) name##_avx512

#include "kernels/x86/attn_fast.h"
#include "kernels/x86/attn_probs.h"

/* The entries this level overrides; dispatch.c fills the rest from the levels below and
 * offers the table only where the CPU runs this instruction set. */
const attn__kernels attn__kernels_avx512 = {
    .name = "avx512",
    FAST_ENTRIES,
    .probs = FN(probs),
    ATTN__ROW_ENTRIES(avx512),
};
