/* The row ops with AVX2, 8 floats at a time: the same operations per element as the portable
 * loops of ref/rows_ref.c, so the same bits (row_kernels.h). No fused multiply-add: a * b + c
 * is a multiply then an add (the file is built with -mfma, but -std=c11 implies
 * -ffp-contract=off, and tests/test_rowkern.c checks every entry bitwise against the
 * reference). Tails go through masked loads and stores (ld, st), computing the same lanes. */
#include <immintrin.h>
#include <math.h>

#include "kernels/kernels.h"

#define CHUNK 512 /* as ref/rows_ref.c */

/* Lanes [0, m) of a mask of 8 (m <= 8). */
static inline __m256i lanes(int64_t m) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Floats [0, min(m, 8)) at p (m >= 1); the other lanes 0 (never read from memory). */
static inline __m256 ld(const float *p, int64_t m) {
    return m >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes(m));
}
static inline void st(float *p, int64_t m, __m256 v) {
    if (m >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, lanes(m), v);
}

/* The order key of fkey (ref/rows_ref.c): b ^ (sign ? ~0 : 0x80000000). */
static inline __m256i key8(__m256 x) {
    __m256i b = _mm256_castps_si256(x);
    return _mm256_xor_si256(b, _mm256_or_si256(_mm256_srai_epi32(b, 31), _mm256_set1_epi32((int)0x80000000u)));
}

/* attn__expf in each lane, the same operations in the same order. */
static inline __m256 exp8(__m256 x) {
    const __m256i klo = _mm256_set1_epi32((int)ATTN__EXP_KLO), khi = _mm256_set1_epi32((int)ATTN__EXP_KHI);
    __m256i key = key8(x);
    __m256i kc = _mm256_min_epu32(_mm256_max_epu32(key, klo), khi);
    /* back from the key: kc ^ (sign of kc ? 0x80000000 : ~0) */
    __m256i inv = _mm256_xor_si256(_mm256_srai_epi32(kc, 31), _mm256_set1_epi32(-1));
    __m256 c = _mm256_castsi256_ps(_mm256_xor_si256(kc, _mm256_or_si256(inv, _mm256_set1_epi32((int)0x80000000u))));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 n = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(c, _mm256_set1_ps(1.44269504088896341f)), magic), magic);
    __m256 r = _mm256_sub_ps(c, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    __m256i sb = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256i above = _mm256_cmpeq_epi32(_mm256_max_epu32(key, klo), key); /* key >= KLO */
    return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_and_si256(sb, above)));
}

float attn__row_max_avx2(const float *x, int64_t n) {
    __m256i mx = _mm256_setzero_si256(), mn = _mm256_set1_epi32(-1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i k = key8(_mm256_loadu_ps(x + j));
        mx = _mm256_max_epu32(mx, k), mn = _mm256_min_epu32(mn, k);
    }
    if (j < n) { /* masked-off lanes hold 0 and ~0, which change neither */
        __m256i m = lanes(n - j), k = key8(_mm256_maskload_ps(x + j, m));
        mx = _mm256_max_epu32(mx, _mm256_and_si256(k, m));
        mn = _mm256_min_epu32(mn, _mm256_or_si256(k, _mm256_xor_si256(m, _mm256_set1_epi32(-1))));
    }
    uint32_t a8[8], b8[8], a = 0, b = ~0u;
    _mm256_storeu_si256((__m256i *)a8, mx);
    _mm256_storeu_si256((__m256i *)b8, mn);
    for (int k = 0; k < 8; k++) a = a8[k] > a ? a8[k] : a, b = b8[k] < b ? b8[k] : b;
    if (a > 0xff800000u || b < 0x007fffffu) return NAN; /* beyond +inf or -inf: a NaN */
    uint32_t bits = (a & 0x80000000u) ? (a & 0x7fffffffu) : ~a;
    float m;
    memcpy(&m, &bits, 4);
    return m;
}

/* The reference's combination of the eight partial sums lo (lanes 0-3) and hi (4-7). */
static inline double combine8(__m256d lo, __m256d hi) {
    double a[8];
    _mm256_storeu_pd(a, lo);
    _mm256_storeu_pd(a + 4, hi);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

double attn__sum_f64_avx2(const float *x, int64_t n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm_loadu_ps(x + j)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4)));
    }
    double s = combine8(lo, hi);
    for (; j < n; j++) s += x[j];
    return s;
}

double attn__dot_f64_avx2(const float *x, const float *y, int64_t n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256d xl = _mm256_cvtps_pd(_mm_loadu_ps(x + j)), xh = _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4));
        lo = _mm256_add_pd(lo, _mm256_mul_pd(xl, _mm256_cvtps_pd(_mm_loadu_ps(y + j))));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(xh, _mm256_cvtps_pd(_mm_loadu_ps(y + j + 4))));
    }
    double s = combine8(lo, hi);
    for (; j < n; j++) s += (double)x[j] * y[j];
    return s;
}

double attn__exp_sum_avx2(float *y, const float *x, float mx, int64_t n) {
    float buf[CHUNK];
    const __m256 vmx = _mm256_set1_ps(mx);
    double s = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += CHUNK) {
        int64_t m = n - j0 < CHUNK ? n - j0 : CHUNK;
        float *e = y ? y + j0 : buf;
        const float *xs = x + j0;
        for (int64_t j = 0; j < m; j += 8) st(e + j, m - j, exp8(_mm256_sub_ps(ld(xs + j, m - j), vmx)));
        s += attn__sum_f64_avx2(e, m);
    }
    return s;
}

void attn__logsm_bwd_row_avx2(float *dx, const float *y, const float *dy, float sd, int64_t n, int acc) {
    const __m256 vsd = _mm256_set1_ps(sd);
    for (int64_t j = 0; j < n; j += 8) {
        __m256 d = _mm256_sub_ps(ld(dy + j, n - j), _mm256_mul_ps(exp8(ld(y + j, n - j)), vsd));
        st(dx + j, n - j, acc ? _mm256_add_ps(ld(dx + j, n - j), d) : d);
    }
}

void attn__ce_bwd_row_avx2(float *dx, const float *x, float lse, float sc, float b, int64_t n, int acc) {
    const __m256 vl = _mm256_set1_ps(lse), vsc = _mm256_set1_ps(sc), vb = _mm256_set1_ps(b);
    for (int64_t j = 0; j < n; j += 8) {
        __m256 d = _mm256_mul_ps(vsc, _mm256_sub_ps(exp8(_mm256_sub_ps(ld(x + j, n - j), vl)), vb));
        st(dx + j, n - j, acc ? _mm256_add_ps(ld(dx + j, n - j), d) : d);
    }
}

void attn__relu_fwd_avx2(float *out, const float *inp, int64_t n) {
    for (int64_t j = 0; j < n; j += 8) {
        __m256 x = ld(inp + j, n - j);
        st(out + j, n - j, _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), x));
    }
}

void attn__relu_bwd_avx2(float *dinp, const float *inp, const float *dout, int64_t n) {
    for (int64_t j = 0; j < n; j += 8) {
        __m256 pos = _mm256_cmp_ps(ld(inp + j, n - j), _mm256_setzero_ps(), _CMP_GT_OQ);
        __m256 d = ld(dinp + j, n - j), s = _mm256_add_ps(d, ld(dout + j, n - j));
        /* only where inp > 0, as the reference (adding 0 would turn -0 into +0) */
        st(dinp + j, n - j, _mm256_blendv_ps(d, s, pos));
    }
}

void attn__bf16_widen_avx2(const uint16_t *x, float *y, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_si256((__m256i *)(y + j), _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + j))), 16));
    for (; j < n; j++) {
        uint32_t u = (uint32_t)x[j] << 16;
        memcpy(y + j, &u, 4);
    }
}
