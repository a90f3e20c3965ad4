/* The optimisers' updates in portable C: the element functions of optim_kernels.h, one
 * element at a time. The reference table's optimiser entries. */
#include "kernels/kernels.h"

void attn__sgd_ref(float *p, const float *g, float *buf, int64_t n, const attn__sgd_k *k) {
    for (int64_t i = 0; i < n; i++) attn__sgd_elem(p + i, g + i, buf ? buf + i : NULL, k);
}

void attn__adam_ref(float *p, const float *g, float *m, float *v, int64_t n, const attn__adam_k *k) {
    for (int64_t i = 0; i < n; i++) attn__adam_elem(p + i, g + i, m + i, v + i, k);
}
