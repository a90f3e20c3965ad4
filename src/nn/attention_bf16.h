/* The bf16 attention path (nn/attention_bf16.c), called by nn/attention.c when a description
 * asks for bf16 storage or bf16 compute. Internal (not API). */
#ifndef ATTN_NN_ATTENTION_BF16_H
#define ATTN_NN_ATTENTION_BF16_H

#include "attn/attention.h"
#include "kernels/kernels.h"

/* Does the (checked) description take the bf16 path? */
int attn__bf16_on(const attn_desc *a);
/* ATTN_EINVAL with a message for what the bf16 path does not support. */
int attn__bf16_check(const attn_desc *a);
/* attn_plan_forward and attn_plan_backward on the bf16 path: arrays of the description's
 * dtype (uint16_t bf16 or float), lse fp32. */
int attn__bf16_forward(attn_plan *pl, const attn_desc *a, const void *Q, const void *K, const void *V, void *O,
                       float *P, float *lse);
int attn__bf16_backward(attn_plan *pl, const attn_desc *a, const void *Q, const void *K, const void *V, const void *O,
                        const float *lse, const void *dO, void *dQ, void *dK, void *dV);

/* From nn/attention.c: workspace buffer i (0 .. 7) of the plan, at least n floats. */
float *attn__plan_bf16_buf(attn_plan *pl, int i, size_t n);
/* The plan's own description, to run a call again as fp32 on the same plan (swapped back after). */
attn_desc *attn__plan_desc_rw(attn_plan *pl);
/* The masks and sizes of (batch b, query head h) as the kernels see them (no data pointers,
 * no attn_mods). */
attn__head attn__desc_head(const attn_desc *a, int b, int h);

#endif
