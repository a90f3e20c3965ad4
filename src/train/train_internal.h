/* Internals shared by the training files (not API). */
#ifndef ATTN_TRAIN_INTERNAL_H
#define ATTN_TRAIN_INTERNAL_H

#include "attn/train.h"

/* Floats spanned by the store's allocations (parameters plus alignment gaps, which stay 0). */
int64_t attn__params_span(const attn_params *ps);

/* FNV-1a 64 over bytes, continuing from h (start with ATTN__FNV_INIT). */
#define ATTN__FNV_INIT 0xcbf29ce484222325ull
uint64_t attn__fnv1a(uint64_t h, const void *data, size_t n);

#endif
