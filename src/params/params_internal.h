/* Internals of the parameter store shared with the layers above it (not API). */
#ifndef ATTN_PARAMS_INTERNAL_H
#define ATTN_PARAMS_INTERNAL_H

#include "attn/params.h"

/* Floats spanned by the store's allocations (parameters plus alignment gaps, which stay 0). */
int64_t attn__params_span(const attn_params *ps);

#endif
