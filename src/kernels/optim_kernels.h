/* The optimisers' element updates (not API), shared by the portable loops (ref/optim_ref.c)
 * and the AVX2 ones (x86/avx2/optim_avx2.c), which compute exactly the same IEEE operations 8
 * lanes at a time: every a + s * b of PyTorch's kernels is one fused multiply-add (see
 * train/optim.c), divisions and square roots are correctly rounded, so every path gives the
 * same bits. The loops are entries of the dispatch table (kernels.h). */
#ifndef ATTN_KERNELS_OPTIM_KERNELS_H
#define ATTN_KERNELS_OPTIM_KERNELS_H

#include <math.h>
#include <stdint.h>

typedef struct {
    float wd;             /* weight decay (0: none) */
    float momentum;       /* 0: no momentum buffer */
    float one_minus_damp;
    float neg_lr;
    int first;            /* the first step: the buffer starts as the gradient */
    int nesterov;
} attn__sgd_k;

typedef struct {
    float decay;          /* AdamW: 1 - lr * wd (1: none) */
    float l2;             /* Adam: weight decay added to the gradient (0: none) */
    float beta1, omb1, beta2, omb2, bc2_sqrt, eps, neg_step;
} attn__adam_k;

static inline void attn__sgd_elem(float *p, const float *g, float *buf, const attn__sgd_k *k) {
    float d = *g;
    if (k->wd != 0.0f) d = fmaf(k->wd, *p, d);                          /* grad.add(param, alpha=wd) */
    if (buf) {
        *buf = k->first ? d : fmaf(k->one_minus_damp, d, *buf * k->momentum); /* buf.mul_(m).add_(d_p, alpha=1-damp) */
        d = k->nesterov ? fmaf(k->momentum, *buf, d) : *buf;          /* d_p.add(buf, alpha=m) */
    }
    *p = fmaf(k->neg_lr, d, *p);                                        /* param.add_(d_p, alpha=-lr) */
}

static inline void attn__adam_elem(float *p, const float *g, float *m, float *v, const attn__adam_k *k) {
    float pi = *p * k->decay, d = *g;                                   /* AdamW: param.mul_(1 - lr*wd) */
    if (k->l2 != 0.0f) d = fmaf(k->l2, pi, d);                          /* Adam: grad.add(param, alpha=wd) */
    float mi = fmaf(k->omb1, d, *m * k->beta1);                         /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
    float vi = fmaf(k->omb2 * d, d, *v * k->beta2);                     /* exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */
    float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;                     /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
    *p = pi + k->neg_step * mi / denom;                                 /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    *m = mi;
    *v = vi;
}

/* AVX2 + FMA versions over n elements (x86/avx2/optim_avx2.c; only in x86-64 builds), entries
 * of the avx2 override table. */
void attn__sgd_avx2(float *p, const float *g, float *buf, int64_t n, const attn__sgd_k *k);
void attn__adam_avx2(float *p, const float *g, float *m, float *v, int64_t n, const attn__adam_k *k);

#endif
