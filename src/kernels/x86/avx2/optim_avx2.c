/* The optimisers' updates with AVX2 + FMA, 8 floats at a time: the same IEEE operations as
 * the element functions of optim_kernels.h (fused multiply-adds, correctly rounded division
 * and square root), so the results are bitwise those of the portable loops. */
#include <immintrin.h>

#include "kernels/optim_kernels.h"

void attn__sgd_avx2(float *p, const float *g, float *buf, int64_t n, const attn__sgd_k *k) {
    const __m256 wd = _mm256_set1_ps(k->wd), mom = _mm256_set1_ps(k->momentum), omd = _mm256_set1_ps(k->one_minus_damp),
                 nlr = _mm256_set1_ps(k->neg_lr);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 pv = _mm256_loadu_ps(p + i), d = _mm256_loadu_ps(g + i);
        if (k->wd != 0.0f) d = _mm256_fmadd_ps(wd, pv, d);
        if (buf) {
            __m256 b = k->first ? d : _mm256_fmadd_ps(omd, d, _mm256_mul_ps(_mm256_loadu_ps(buf + i), mom));
            _mm256_storeu_ps(buf + i, b);
            d = k->nesterov ? _mm256_fmadd_ps(mom, b, d) : b;
        }
        _mm256_storeu_ps(p + i, _mm256_fmadd_ps(nlr, d, pv));
    }
    for (; i < n; i++) attn__sgd_elem(p + i, g + i, buf ? buf + i : NULL, k);
}

void attn__adam_avx2(float *p, const float *g, float *m, float *v, int64_t n, const attn__adam_k *k) {
    const __m256 decay = _mm256_set1_ps(k->decay), l2 = _mm256_set1_ps(k->l2), b1 = _mm256_set1_ps(k->beta1),
                 omb1 = _mm256_set1_ps(k->omb1), b2 = _mm256_set1_ps(k->beta2), omb2 = _mm256_set1_ps(k->omb2),
                 bc2 = _mm256_set1_ps(k->bc2_sqrt), eps = _mm256_set1_ps(k->eps), nst = _mm256_set1_ps(k->neg_step);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay), d = _mm256_loadu_ps(g + i);
        if (k->l2 != 0.0f) d = _mm256_fmadd_ps(l2, pi, d);
        __m256 mi = _mm256_fmadd_ps(omb1, d, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
        __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(omb2, d), d, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(nst, mi), denom)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
    }
    for (; i < n; i++) attn__adam_elem(p + i, g + i, m + i, v + i, k);
}
