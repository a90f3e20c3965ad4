/* The row ops with AVX-512, 16 floats at a time (the double sums 8 at a time): the same
 * operations per element as the portable loops of ref/rows_ref.c, so the same bits
 * (row_kernels.h). No fused multiply-add (see x86/avx2/rows_avx2.c). Tails go through masked
 * loads and stores (ld, st), computing the same lanes. */
#include <immintrin.h>
#include <math.h>

#include "kernels/kernels.h"

#define CHUNK 512 /* as ref/rows_ref.c */

/* Lanes [0, min(m, 16)) (m >= 1). */
static inline __mmask16 lanes(int64_t m) { return m >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << m) - 1); }
static inline __m512 ld(const float *p, int64_t m) { return _mm512_maskz_loadu_ps(lanes(m), p); }
static inline void st(float *p, int64_t m, __m512 v) { _mm512_mask_storeu_ps(p, lanes(m), v); }

/* The order key of fkey (ref/rows_ref.c): b ^ (sign ? ~0 : 0x80000000). */
static inline __m512i key16(__m512 x) {
    __m512i b = _mm512_castps_si512(x);
    return _mm512_xor_si512(b, _mm512_or_si512(_mm512_srai_epi32(b, 31), _mm512_set1_epi32((int)0x80000000u)));
}

/* attn__expf in each lane, the same operations in the same order. */
static inline __m512 exp16(__m512 x) {
    const __m512i klo = _mm512_set1_epi32((int)ATTN__EXP_KLO), khi = _mm512_set1_epi32((int)ATTN__EXP_KHI);
    __m512i key = key16(x);
    __m512i kc = _mm512_min_epu32(_mm512_max_epu32(key, klo), khi);
    /* back from the key: kc ^ (sign of kc ? 0x80000000 : ~0) */
    __m512i inv = _mm512_xor_si512(_mm512_srai_epi32(kc, 31), _mm512_set1_epi32(-1));
    __m512 c = _mm512_castsi512_ps(_mm512_xor_si512(kc, _mm512_or_si512(inv, _mm512_set1_epi32((int)0x80000000u))));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.44269504088896341f)), magic), magic);
    __m512 r = _mm512_sub_ps(c, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    __m512i sb = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    sb = _mm512_maskz_mov_epi32(_mm512_cmpge_epu32_mask(key, klo), sb); /* a scale of 0 below -87.3 */
    return _mm512_mul_ps(y, _mm512_castsi512_ps(sb));
}

float attn__row_max_avx512(const float *x, int64_t n) {
    __m512i mx = _mm512_setzero_si512(), mn = _mm512_set1_epi32(-1);
    for (int64_t j = 0; j < n; j += 16) { /* masked-off lanes keep mx and mn as they are */
        __mmask16 m = lanes(n - j);
        __m512i k = key16(_mm512_maskz_loadu_ps(m, x + j));
        mx = _mm512_mask_max_epu32(mx, m, mx, k), mn = _mm512_mask_min_epu32(mn, m, mn, k);
    }
    uint32_t a = (uint32_t)_mm512_reduce_max_epu32(mx), b = (uint32_t)_mm512_reduce_min_epu32(mn);
    if (a > 0xff800000u || b < 0x007fffffu) return NAN; /* beyond +inf or -inf: a NaN */
    uint32_t bits = (a & 0x80000000u) ? (a & 0x7fffffffu) : ~a;
    float m;
    memcpy(&m, &bits, 4);
    return m;
}

/* The reference's combination of the eight partial sums. */
static inline double combine8(__m512d acc) {
    double a[8];
    _mm512_storeu_pd(a, acc);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

double attn__sum_f64_avx512(const float *x, int64_t n) {
    __m512d acc = _mm512_setzero_pd();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_loadu_ps(x + j)));
    double s = combine8(acc);
    for (; j < n; j++) s += x[j];
    return s;
}

double attn__dot_f64_avx512(const float *x, const float *y, int64_t n) {
    __m512d acc = _mm512_setzero_pd();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m512d xj = _mm512_cvtps_pd(_mm256_loadu_ps(x + j));
        acc = _mm512_add_pd(acc, _mm512_mul_pd(xj, _mm512_cvtps_pd(_mm256_loadu_ps(y + j))));
    }
    double s = combine8(acc);
    for (; j < n; j++) s += (double)x[j] * y[j];
    return s;
}

double attn__exp_sum_avx512(float *y, const float *x, float mx, int64_t n) {
    float buf[CHUNK];
    const __m512 vmx = _mm512_set1_ps(mx);
    double s = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += CHUNK) {
        int64_t m = n - j0 < CHUNK ? n - j0 : CHUNK;
        float *e = y ? y + j0 : buf;
        const float *xs = x + j0;
        for (int64_t j = 0; j < m; j += 16) st(e + j, m - j, exp16(_mm512_sub_ps(ld(xs + j, m - j), vmx)));
        s += attn__sum_f64_avx512(e, m);
    }
    return s;
}

void attn__logsm_bwd_row_avx512(float *dx, const float *y, const float *dy, float sd, int64_t n, int acc) {
    const __m512 vsd = _mm512_set1_ps(sd);
    for (int64_t j = 0; j < n; j += 16) {
        __m512 d = _mm512_sub_ps(ld(dy + j, n - j), _mm512_mul_ps(exp16(ld(y + j, n - j)), vsd));
        st(dx + j, n - j, acc ? _mm512_add_ps(ld(dx + j, n - j), d) : d);
    }
}

void attn__ce_bwd_row_avx512(float *dx, const float *x, float lse, float sc, float b, int64_t n, int acc) {
    const __m512 vl = _mm512_set1_ps(lse), vsc = _mm512_set1_ps(sc), vb = _mm512_set1_ps(b);
    for (int64_t j = 0; j < n; j += 16) {
        __m512 d = _mm512_mul_ps(vsc, _mm512_sub_ps(exp16(_mm512_sub_ps(ld(x + j, n - j), vl)), vb));
        st(dx + j, n - j, acc ? _mm512_add_ps(ld(dx + j, n - j), d) : d);
    }
}

void attn__relu_fwd_avx512(float *out, const float *inp, int64_t n) {
    for (int64_t j = 0; j < n; j += 16) {
        __m512 x = ld(inp + j, n - j);
        st(out + j, n - j, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), x));
    }
}

void attn__relu_bwd_avx512(float *dinp, const float *inp, const float *dout, int64_t n) {
    for (int64_t j = 0; j < n; j += 16) {
        /* only where inp > 0, as the reference (adding 0 would turn -0 into +0) */
        __mmask16 pos = _mm512_cmp_ps_mask(ld(inp + j, n - j), _mm512_setzero_ps(), _CMP_GT_OQ) & lanes(n - j);
        _mm512_mask_storeu_ps(dinp + j, pos, _mm512_add_ps(ld(dinp + j, n - j), ld(dout + j, n - j)));
    }
}

void attn__bf16_widen_avx512(const uint16_t *x, float *y, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_si512(y + j, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + j))), 16));
    if (j < n) {
        __mmask16 m = lanes(n - j);
        _mm512_mask_storeu_epi32(y + j, m, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + j)), 16));
    }
}
