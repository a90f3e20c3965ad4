/* The AVX2 + FMA attention kernels: the vector macros for 8-lane ymm registers, a fast exp2,
 * the tile sizes, then the ISA-generic kernels of x86/attn_fast.h, and the avx2 level's
 * override table. Built with -mavx2 -mfma (the files of this folder alone); dispatch.c offers
 * the table only where the CPU has AVX2 and FMA.
 *
 * Tiles: 16 query rows (2 vectors) per tile; "ka", "kc" and "kb" tiles of 6 rows x 2 vectors
 * keep 12 accumulators in the 16 ymm registers. Calls of at most ROWS_MAX = 12 rows take the
 * row path (measured with ATTN_ISA=avx2 on an Intel Xeon, one thread, N = 4096, CPU time: 8 rows
 * 1.67 ms against the tile's 2.12, 12 rows 2.14 both, 16 rows 2.96 against 2.16). */
#include <immintrin.h>
#include <math.h>

#include "core/internal.h"
#include "kernels/kernels.h"

#define ATTN_FAST_ISA 1
#define VL 8
typedef __m256 vf;

static inline __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define vload(p) _mm256_loadu_ps(p)
#define vstore(p, x) _mm256_storeu_ps(p, x)
#define vloadn(p, n) _mm256_maskload_ps(p, lane_mask(n))
#define vstoren(p, x, n) _mm256_maskstore_ps(p, lane_mask(n), x)
#define vbcast(p) _mm256_broadcast_ss(p)
#define vset1(x) _mm256_set1_ps(x)
#define vzero() _mm256_setzero_ps()
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vadd(a, b) _mm256_add_ps(a, b)
#define vsub(a, b) _mm256_sub_ps(a, b)
#define vmul(a, b) _mm256_mul_ps(a, b)
#define vmax(a, b) _mm256_max_ps(a, b)
#define vdiv(a, b) _mm256_div_ps(a, b)

/* 2^x: x = n + f with n an integer and |f| <= 1/2, 2^f by the degree-6 polynomial of Cephes'
 * exp2f (relative error below 2e-7), times 2^n built in the exponent field; n <= -127 gives 0
 * (so x <= -127 and -inf give 0) and NaN stays NaN. */
static inline __m256 vexp2(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-150.0f), x); /* NaN in x stays NaN (second operand) */
    x = _mm256_min_ps(_mm256_set1_ps(128.0f), x);
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_max_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), _mm256_setzero_si256());
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}

static inline __m256 vsafe(__m256 m) {
    return _mm256_blendv_ps(m, _mm256_setzero_ps(), _mm256_cmp_ps(m, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ));
}

static inline __m256 vkeep(__m256 x, int base, int lo, int hi) {
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i k = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), idx), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), x, _mm256_castsi256_ps(k));
}

static inline float vhmax(__m256 x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float vhsum(__m256 x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Transpose the 8 x 8 block r[row][lane] in place (unpacks, in-lane shuffles, then 128-bit
 * permutes). */
static inline void vtranspose(__m256 *r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

#define NV 2
#define MJ 6
#define MC 6
#define MB 6
#define NB 2
#define BC 64
#define ROWS_MAX 12
#define FN(name) name##_avx2

#include "kernels/x86/attn_fast.h"
#include "kernels/x86/attn_probs.h"

/* The entries this level overrides; dispatch.c fills the rest from the levels below and
 * offers the table only where the CPU runs this instruction set. */
const attn__kernels attn__kernels_avx2 = {
    .name = "avx2",
    FAST_ENTRIES,
    .probs = FN(probs),
    ATTN__ROW_ENTRIES(avx2),
    .sgd = attn__sgd_avx2,
    .adam = attn__adam_avx2,
};
