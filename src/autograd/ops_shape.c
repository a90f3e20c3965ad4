/* Shape ops on the tape (concat, stack, slice, select, transpose), the embedding lookup, and
 * reductions (sum and mean, whole or along one axis). reshape, a view, is in graph.c. The
 * embedding is a tape adapter over nn/embedding.c.
 * An axis splits a shape into (outer, n, inner): the elements before, along and after it. */
#include <string.h>

#include "autograd/ag.h"
#include "nn/nn_internal.h"

static void split_axis(const attn_var *x, int axis, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) *inner *= x->shape[i];
}

/* ---- concat ---------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    int n;
    attn_var **xs;
    int64_t outer, inner, total; /* total: output length along the axis */
} concat_entry;

static void concat_backward(attn_graph *g, ag_entry *base) {
    concat_entry *e = (concat_entry *)base;
    const float *dy = ag_dy(e->e.out);
    int64_t off = 0;
    for (int k = 0; k < e->n; k++) {
        attn_var *x = e->xs[k];
        int64_t w = x->numel / e->outer; /* n_k * inner */
        if (x->requires_grad) {
            int fresh;
            float *dx = ag_grad(g, x, &fresh);
            if (!dx) return;
            for (int64_t o = 0; o < e->outer; o++) {
                const float *s = dy + o * e->total * e->inner + off;
                float *d = dx + o * w;
                if (fresh) memcpy(d, s, (size_t)w * sizeof(float));
                else
                    for (int64_t i = 0; i < w; i++) d[i] += s[i];
            }
        }
        off += w;
    }
}

attn_var *attn_ag_concat(attn_graph *g, int n, attn_var *const *xs, int axis) {
    if (!ag_ok(g, "attn_ag_concat", 0, NULL)) return NULL;
    if (n < 1 || !xs) return ag_fail(g, ATTN_EINVAL, "attn_ag_concat: no inputs");
    if (!ag_ok(g, "attn_ag_concat", n, xs)) return NULL;
    attn_var *x0 = xs[0];
    int ax = ag_axis(axis, x0->ndim);
    if (ax < 0) return ag_fail(g, ATTN_EINVAL, "attn_ag_concat: axis %d out of range for %d dimensions", axis, x0->ndim);
    int64_t total = 0;
    int rg = 0;
    for (int k = 0; k < n; k++) {
        attn_var *x = xs[k];
        int same = x->ndim == x0->ndim;
        for (int i = 0; same && i < x0->ndim; i++)
            if (i != ax && x->shape[i] != x0->shape[i]) same = 0;
        if (!same) {
            char s1[64], s2[64];
            return ag_fail(g, ATTN_ESHAPE, "attn_ag_concat: input %d %s does not fit input 0 %s along axis %d", k,
                           ag_shape_str(x, s1, sizeof s1), ag_shape_str(x0, s2, sizeof s2), ax);
        }
        total += x->shape[ax];
        rg |= x->requires_grad;
    }
    int64_t shape[ATTN_AG_MAX_DIMS], outer, inner;
    memcpy(shape, x0->shape, sizeof shape);
    shape[ax] = total;
    split_axis(x0, ax, &outer, &inner);
    attn_var *y = ag_new(g, x0->ndim, shape, rg);
    if (!y) return NULL;
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        int64_t w = xs[k]->numel / outer;
        for (int64_t o = 0; o < outer; o++) memcpy(y->data + o * total * inner + off, xs[k]->data + o * w, (size_t)w * sizeof(float));
        off += w;
    }
    if (y->requires_grad) {
        concat_entry *e = ag_record(g, sizeof *e, concat_backward, y, NULL);
        if (!e) return NULL;
        e->xs = ag_alloc(g, (size_t)n * sizeof *e->xs);
        if (!e->xs) return NULL;
        memcpy(e->xs, xs, (size_t)n * sizeof *e->xs);
        e->n = n, e->outer = outer, e->inner = inner, e->total = total;
    }
    return y;
}

attn_var *attn_ag_stack(attn_graph *g, int n, attn_var *const *xs, int axis) {
    if (!ag_ok(g, "attn_ag_stack", 0, NULL)) return NULL;
    if (n < 1 || !xs) return ag_fail(g, ATTN_EINVAL, "attn_ag_stack: no inputs");
    if (!ag_ok(g, "attn_ag_stack", n, xs)) return NULL;
    int nd = xs[0]->ndim;
    if (axis < 0) axis += nd + 1;
    if (axis < 0 || axis > nd || nd + 1 > ATTN_AG_MAX_DIMS)
        return ag_fail(g, ATTN_EINVAL, "attn_ag_stack: axis %d for %d dimensions", axis, nd);
    attn_var **vs = ag_alloc(g, (size_t)n * sizeof *vs);
    if (!vs) return NULL;
    for (int k = 0; k < n; k++) {
        attn_var *x = xs[k];
        if (x->ndim != nd || memcmp(x->shape, xs[0]->shape, (size_t)nd * sizeof(int64_t))) {
            char s1[64], s2[64];
            return ag_fail(g, ATTN_ESHAPE, "attn_ag_stack: input %d %s differs from input 0 %s", k, ag_shape_str(x, s1, sizeof s1),
                           ag_shape_str(xs[0], s2, sizeof s2));
        }
        int64_t s[ATTN_AG_MAX_DIMS];
        for (int i = 0, j = 0; i <= nd; i++) s[i] = i == axis ? 1 : x->shape[j++];
        vs[k] = attn_ag_reshape(g, x, nd + 1, s);
        if (!vs[k]) return NULL;
    }
    return attn_ag_concat(g, n, vs, axis);
}

/* ---- slice, select --------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    int64_t outer, inner, n, start, len;
} slice_entry;

static void slice_backward(attn_graph *g, ag_entry *base) {
    slice_entry *e = (slice_entry *)base;
    float *dx = ag_grad_zeroed(g, e->x);
    if (!dx) return;
    const float *dy = ag_dy(e->e.out);
    int64_t w = e->len * e->inner;
    for (int64_t o = 0; o < e->outer; o++) {
        float *d = dx + (o * e->n + e->start) * e->inner;
        const float *s = dy + o * w;
        for (int64_t i = 0; i < w; i++) d[i] += s[i];
    }
}

attn_var *attn_ag_slice(attn_graph *g, attn_var *x, int axis, int64_t start, int64_t end) {
    if (!ag_ok1(g, "attn_ag_slice", x)) return NULL;
    int ax = ag_axis(axis, x->ndim);
    if (ax < 0) return ag_fail(g, ATTN_EINVAL, "attn_ag_slice: axis %d out of range for %d dimensions", axis, x->ndim);
    if (start < 0 || end > x->shape[ax] || start >= end)
        return ag_fail(g, ATTN_EINVAL, "attn_ag_slice: [%lld, %lld) is not a non-empty range of [0, %lld)", (long long)start,
                       (long long)end, (long long)x->shape[ax]);
    int64_t shape[ATTN_AG_MAX_DIMS], outer, inner, len = end - start;
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = len;
    split_axis(x, ax, &outer, &inner);
    attn_var *y = ag_new(g, x->ndim, shape, x->requires_grad);
    if (!y) return NULL;
    for (int64_t o = 0; o < outer; o++)
        memcpy(y->data + o * len * inner, x->data + (o * x->shape[ax] + start) * inner, (size_t)(len * inner) * sizeof(float));
    if (y->requires_grad) {
        slice_entry *e = ag_record(g, sizeof *e, slice_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->outer = outer, e->inner = inner, e->n = x->shape[ax], e->start = start, e->len = len;
    }
    return y;
}

attn_var *attn_ag_select(attn_graph *g, attn_var *x, int axis, int64_t index) {
    if (!ag_ok1(g, "attn_ag_select", x)) return NULL;
    int ax = ag_axis(axis, x->ndim);
    if (ax < 0) return ag_fail(g, ATTN_EINVAL, "attn_ag_select: axis %d out of range for %d dimensions", axis, x->ndim);
    attn_var *s = attn_ag_slice(g, x, ax, index, index + 1);
    if (!s) return NULL;
    int64_t shape[ATTN_AG_MAX_DIMS];
    for (int i = 0, j = 0; i < x->ndim; i++)
        if (i != ax) shape[j++] = x->shape[i];
    return attn_ag_reshape(g, s, x->ndim - 1, shape);
}

/* ---- transpose of the last two axes ---------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    int64_t Bt, M, N;
} transpose_entry;

static void transpose_backward(attn_graph *g, ag_entry *base) {
    transpose_entry *e = (transpose_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    const float *dy = ag_dy(e->e.out); /* (Bt, N, M) */
    int64_t M = e->M, N = e->N;
    for (int64_t b = 0; b < e->Bt; b++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                float d = dy[b * M * N + j * M + i];
                float *t = dx + b * M * N + i * N + j;
                *t = fresh ? d : *t + d;
            }
}

attn_var *attn_ag_transpose(attn_graph *g, attn_var *x) {
    if (!ag_ok1(g, "attn_ag_transpose", x)) return NULL;
    if (x->ndim < 2) return ag_fail(g, ATTN_ESHAPE, "attn_ag_transpose: needs 2 or more dimensions, not %d", x->ndim);
    int64_t shape[ATTN_AG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    int64_t M = x->shape[x->ndim - 2], N = x->shape[x->ndim - 1], Bt = x->numel / (M * N);
    shape[x->ndim - 2] = N;
    shape[x->ndim - 1] = M;
    attn_var *y = ag_new(g, x->ndim, shape, x->requires_grad);
    if (!y) return NULL;
    for (int64_t b = 0; b < Bt; b++)
        for (int64_t j = 0; j < N; j++)
            for (int64_t i = 0; i < M; i++) y->data[b * M * N + j * M + i] = x->data[b * M * N + i * N + j];
    if (y->requires_grad) {
        transpose_entry *e = ag_record(g, sizeof *e, transpose_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->Bt = Bt, e->M = M, e->N = N;
    }
    return y;
}

/* ---- embedding ------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *W;
    int32_t *ids;
    int64_t R;
    int padding_idx;
} embed_entry;

static void embed_backward(attn_graph *g, ag_entry *base) {
    embed_entry *e = (embed_entry *)base;
    float *dW = ag_grad_zeroed(g, e->W);
    if (!dW) return;
    attn__embedding_backward(dW, ag_dy(e->e.out), e->ids, e->R, e->W->shape[1], e->padding_idx);
}

typedef struct {
    float *y;
    const float *W;
    const int32_t *ids;
    int64_t E;
} embed_ctx;

static void embed_range(void *c, int64_t r0, int64_t r1) {
    embed_ctx *s = c;
    attn__embedding_forward(s->y + r0 * s->E, s->ids + r0, s->W, r1 - r0, s->E);
}

attn_var *attn_ag_embedding(attn_graph *g, attn_var *W, const int32_t *ids, int ndim, const int64_t *shape, int padding_idx) {
    if (!ag_ok1(g, "attn_ag_embedding", W)) return NULL;
    if (!ids) return ag_fail(g, ATTN_EINVAL, "attn_ag_embedding: NULL ids");
    if (W->ndim != 2) {
        char s1[64];
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_embedding: the table must be (V, E), not %s", ag_shape_str(W, s1, sizeof s1));
    }
    if (ndim < 0 || ndim >= ATTN_AG_MAX_DIMS) return ag_fail(g, ATTN_ESHAPE, "attn_ag_embedding: ids with %d dimensions (at most %d)", ndim, ATTN_AG_MAX_DIMS - 1);
    if (!ag_check_shape(g, "attn_ag_embedding", ndim, shape)) return NULL;
    int64_t V = W->shape[0], E = W->shape[1], R = 1, s[ATTN_AG_MAX_DIMS];
    for (int i = 0; i < ndim; i++) s[i] = shape[i], R *= shape[i];
    s[ndim] = E;
    for (int64_t r = 0; r < R; r++)
        if (ids[r] < 0 || ids[r] >= V)
            return ag_fail(g, ATTN_EINVAL, "attn_ag_embedding: id %d at position %lld is outside [0, %lld)", (int)ids[r], (long long)r, (long long)V);
    attn_var *y = ag_new(g, ndim + 1, s, W->requires_grad);
    if (!y) return NULL;
    embed_ctx c = {y->data, W->data, ids, E};
    ag_parallel_for(R, ag_block(E), embed_range, &c);
    if (y->requires_grad) {
        embed_entry *e = ag_record(g, sizeof *e, embed_backward, y, NULL);
        if (!e) return NULL;
        e->ids = ag_alloc(g, (size_t)R * sizeof(int32_t));
        if (!e->ids) return NULL;
        memcpy(e->ids, ids, (size_t)R * sizeof(int32_t));
        e->W = W, e->R = R, e->padding_idx = padding_idx;
    }
    return y;
}

/* ---- reductions ------------------------------------------------------------------------ */

typedef struct {
    ag_entry e;
    attn_var *x;
    float mult; /* 1 for sum, 1/n for mean */
    int64_t outer, n, inner;
} reduce_entry;

static void reduce_backward(attn_graph *g, ag_entry *base) {
    reduce_entry *e = (reduce_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    const float *dy = ag_dy(e->e.out); /* (outer, inner) */
    for (int64_t o = 0; o < e->outer; o++)
        for (int64_t k = 0; k < e->n; k++) {
            float *d = dx + (o * e->n + k) * e->inner;
            const float *s = dy + o * e->inner;
            for (int64_t i = 0; i < e->inner; i++) d[i] = fresh ? e->mult * s[i] : d[i] + e->mult * s[i];
        }
}

/* Sum over the middle axis of (outer, n, inner) in double, in index order. */
static attn_var *reduce(attn_graph *g, attn_var *x, int ndim, const int64_t *shape, int64_t outer, int64_t n, int64_t inner, int mean) {
    attn_var *y = ag_new(g, ndim, shape, x->requires_grad);
    if (!y) return NULL;
    double *acc = ag_alloc(g, (size_t)inner * sizeof(double));
    if (!acc) return NULL;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
        for (int64_t k = 0; k < n; k++) {
            const float *s = x->data + (o * n + k) * inner;
            for (int64_t i = 0; i < inner; i++) acc[i] += s[i];
        }
        for (int64_t i = 0; i < inner; i++) y->data[o * inner + i] = (float)(mean ? acc[i] / (double)n : acc[i]);
    }
    if (y->requires_grad) {
        reduce_entry *e = ag_record(g, sizeof *e, reduce_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->mult = mean ? (float)(1.0 / (double)n) : 1.0f;
        e->outer = outer, e->n = n, e->inner = inner;
    }
    return y;
}

attn_var *attn_ag_sum(attn_graph *g, attn_var *x) {
    if (!ag_ok1(g, "attn_ag_sum", x)) return NULL;
    return reduce(g, x, 0, NULL, 1, x->numel, 1, 0);
}

attn_var *attn_ag_mean(attn_graph *g, attn_var *x) {
    if (!ag_ok1(g, "attn_ag_mean", x)) return NULL;
    return reduce(g, x, 0, NULL, 1, x->numel, 1, 1);
}

static attn_var *reduce_axis(attn_graph *g, const char *name, attn_var *x, int axis, int mean) {
    if (!ag_ok1(g, name, x)) return NULL;
    int ax = ag_axis(axis, x->ndim);
    if (ax < 0) return ag_fail(g, ATTN_EINVAL, "%s: axis %d out of range for %d dimensions", name, axis, x->ndim);
    int64_t shape[ATTN_AG_MAX_DIMS], outer, inner;
    for (int i = 0, j = 0; i < x->ndim; i++)
        if (i != ax) shape[j++] = x->shape[i];
    split_axis(x, ax, &outer, &inner);
    return reduce(g, x, x->ndim - 1, shape, outer, x->shape[ax], inner, mean);
}

attn_var *attn_ag_sum_axis(attn_graph *g, attn_var *x, int axis) { return reduce_axis(g, "attn_ag_sum_axis", x, axis, 0); }
attn_var *attn_ag_mean_axis(attn_graph *g, attn_var *x, int axis) { return reduce_axis(g, "attn_ag_mean_axis", x, axis, 1); }
