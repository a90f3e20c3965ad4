/* Internals of the autograd tape (not API): the graph, its arena, tape entries, and the
 * helpers every op uses (input checks, output nodes, gradient buffers, parallel loops).
 *
 * An op's pattern:
 *   if (!ag_ok2(g, a, b)) return NULL;                 // sticky error, NULL inputs
 *   attn_var *y = ag_new(g, ndim, shape, a->requires_grad || b->requires_grad);
 *   ... compute y->data ...
 *   if (y->requires_grad) { my_entry *e = ag_record(g, sizeof *e, my_backward, y, NULL); ... }
 * and its backward reads ag_dy(e->out) and adds into ag_grad(g, x, &fresh) for each input x
 * that requires a gradient: `fresh` says the buffer was just allocated and holds garbage, so
 * the op writes (=) instead of adding (+=); ag_grad_zeroed gives a zeroed buffer instead.
 */
#ifndef ATTN_AUTOGRAD_AG_H
#define ATTN_AUTOGRAD_AG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attn/autograd.h"
#include "core/internal.h"

typedef struct ag_chunk {
    struct ag_chunk *next;
    size_t cap, used;
    unsigned char *mem; /* 64-byte aligned start */
    void *raw;
} ag_chunk;

typedef struct ag_entry ag_entry;
typedef void (*ag_backward_fn)(attn_graph *g, ag_entry *e);
struct ag_entry {
    ag_entry *prev;
    ag_backward_fn backward;
    attn_var *out, *out2, *out3; /* the entry runs only if a gradient reached one of them */
};

typedef struct ag_view {
    struct ag_view *next;
    attn_var *v;
} ag_view;

struct attn_graph {
    ag_chunk *chunks;   /* the current chunk first */
    size_t used_total;  /* bytes handed out since reset, all chunks */
    size_t peak;        /* largest used_total seen */
    ag_entry *tape;     /* last entry */
    ag_view *views;     /* reshape views, whose ->grad is set after the backward */
    int status;
    char msg[256];
    int training, grad_enabled, in_backward;
    attn_rng rng;
    attn_plan *plan;    /* the attention plan every attention entry runs on (see ag_plan) */
};

/* Arena allocation, 64-byte aligned; NULL and a sticky error on failure. */
void *ag_alloc(attn_graph *g, size_t bytes);
void *ag_calloc(attn_graph *g, size_t bytes);
float *ag_floats(attn_graph *g, int64_t n);

/* The graph's attention plan, reshaped to the description a (checked, as attn_plan_reshape);
 * NULL and a sticky error on failure. Made by the first call and kept across
 * attn_graph_reset until attn_graph_free, so its workspace grows to the largest call recorded
 * and later steps allocate nothing for attention. One plan serves every entry, forward and
 * backward: a plan's workspace holds nothing from one call to the next (each call recomputes
 * what it needs from its arguments; the log-sum-exp the backward reads lives in the arena). */
attn_plan *ag_plan(attn_graph *g, const attn_desc *a);

/* Records a failure (first one wins) and returns NULL, for `return ag_fail(...)`. */
void *ag_fail(attn_graph *g, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Marks the graph failed with the message already left by a library call. */
void *ag_fail_last(attn_graph *g, int status);

/* 1 if the graph has no error and every given node is non-NULL (NULL inputs after an error
 * are expected; a NULL input without one is recorded as ATTN_EINVAL). */
int ag_ok(attn_graph *g, const char *op, int n, attn_var *const *xs);
#define ag_ok1(g, op, a) ag_ok(g, op, 1, (attn_var *const[]){a})
#define ag_ok2(g, op, a, b) ag_ok(g, op, 2, (attn_var *const[]){a, b})

/* A new node with its data allocated (not zeroed). requires_grad is masked by the graph's
 * gradient flag. Checks the shape (0..4 dims, each >= 1). */
attn_var *ag_new(attn_graph *g, int ndim, const int64_t *shape, int requires_grad);
int ag_check_shape(attn_graph *g, const char *op, int ndim, const int64_t *shape);

/* Pushes a tape entry of `size` bytes (a struct that starts with ag_entry); out3, if any, is
 * set by the caller. */
void *ag_record(attn_graph *g, size_t size, ag_backward_fn fn, attn_var *out, attn_var *out2);

/* The storage owner of a node (itself unless a view). */
static inline attn_var *ag_base(attn_var *v) { return v->base_ ? v->base_ : v; }
/* The gradient that reached v, or NULL. */
static inline float *ag_dy(attn_var *v) { return ag_base(v)->grad; }
/* The gradient buffer of v for adding into: *fresh = 1 if just allocated (uninitialised:
 * write it whole). NULL on failure (sticky error). */
float *ag_grad(attn_graph *g, attn_var *v, int *fresh);
/* The same, zeroed when fresh. */
float *ag_grad_zeroed(attn_graph *g, attn_var *v);

/* Human-readable shape for messages, "(2, 3, 4)". */
const char *ag_shape_str(const attn_var *v, char *buf, size_t cap);

/* Runs fn(ctx, i0, i1) over [0, n) split into fixed blocks of `block` items (so the split,
 * and therefore any result, does not depend on the thread count). Serial when small. */
typedef void (*ag_range_fn)(void *ctx, int64_t i0, int64_t i1);
void ag_parallel_for(int64_t n, int64_t block, ag_range_fn fn, void *ctx);
/* A block size giving about `work` flops per block for items of `cost` flops each. */
int64_t ag_block(int64_t cost);

/* sgemm wrapper with int checks: C (M, N) = alpha op(A) op(B) + beta C. */
void ag_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Normalises an axis argument (negative counts from the end) or returns -1. */
int ag_axis(int axis, int ndim);

#endif
