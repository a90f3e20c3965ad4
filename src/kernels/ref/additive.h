/* The additive (Bahdanau) score's kernel: a fast tanh and a fixed-order dot product, per key.
 * One implementation, used by nn/attention.c's additive path (which the seq2seq models train
 * through): a key's score and its gradient through the score. Portable C (the reference);
 * a vectorised version must give the same bits (no fused multiply-add contraction).
 * Letters: A the score's hidden size. */
#ifndef ATTN_KERNELS_ADDITIVE_H
#define ATTN_KERNELS_ADDITIVE_H

#include <stdint.h>

/* a . b over n, in 8 interleaved partial sums (a fixed order, and vectorisable). */
float attn__dot8(const float *a, const float *b, int n);

/* The score of one key: t = tanh(wq + uk) (A) into t, returns va . t (dot8 order).
 * wq (A) the projected query, uk (A) the projected key, va (A). */
float attn__additive_score(const float *wq, const float *uk, const float *va, int A, float *t);

/* The gradient through one key's score, given ds = dL/ds and t (A) from attn__additive_score:
 *   dva += ds t (when dva is not NULL);  dz = ds va (1 - t^2);  dwq += dz;  duk += dz. */
void attn__additive_score_grad(float ds, const float *t, const float *va, int A, float *dva, float *dwq, float *duk);

#endif
