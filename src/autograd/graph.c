/* The graph: its arena (chunks that are merged into one at reset, so a training loop stops
 * allocating after its first steps), nodes, the tape, the sticky error, and the backward
 * walk. The ops live in the other files of this directory. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "autograd/ag.h"
#include "kernels/kernels.h"

#define AG_ALIGN 64
#define AG_DEFAULT_ARENA (1u << 20)

/* ---- Arena ----------------------------------------------------------------------------- */

static ag_chunk *chunk_new(size_t cap) {
    ag_chunk *c = attn_malloc(sizeof *c);
    if (!c) return NULL;
    c->raw = attn_malloc(cap + AG_ALIGN);
    if (!c->raw) {
        attn_free(c);
        return NULL;
    }
    uintptr_t p = ((uintptr_t)c->raw + AG_ALIGN - 1) & ~(uintptr_t)(AG_ALIGN - 1);
    c->mem = (unsigned char *)p;
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

static void chunks_free(ag_chunk *c) {
    while (c) {
        ag_chunk *n = c->next;
        attn_free(c->raw);
        attn_free(c);
        c = n;
    }
}

void *ag_alloc(attn_graph *g, size_t bytes) {
    size_t need = (bytes + AG_ALIGN - 1) & ~(size_t)(AG_ALIGN - 1);
    if (need < bytes) return ag_fail(g, ATTN_ENOMEM, "autograd arena: request of %zu bytes overflows", bytes);
    if (need == 0) need = AG_ALIGN;
    ag_chunk *c = g->chunks;
    if (!c || c->cap - c->used < need) {
        size_t cap = c ? c->cap * 2 : AG_DEFAULT_ARENA;
        if (cap < need) cap = need;
        ag_chunk *n = chunk_new(cap);
        if (!n) return ag_fail(g, ATTN_ENOMEM, "autograd arena: out of memory (%zu bytes)", cap);
        n->next = c;
        g->chunks = c = n;
    }
    void *p = c->mem + c->used;
    c->used += need;
    g->used_total += need;
    if (g->used_total > g->peak) g->peak = g->used_total;
    return p;
}

void *ag_calloc(attn_graph *g, size_t bytes) {
    void *p = ag_alloc(g, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

float *ag_floats(attn_graph *g, int64_t n) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float)) return ag_fail(g, ATTN_ENOMEM, "autograd: %lld floats", (long long)n);
    return ag_alloc(g, (size_t)n * sizeof(float));
}

/* ---- Graph ----------------------------------------------------------------------------- */

int attn_graph_new(size_t arena_bytes, attn_graph **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_graph_new: NULL argument");
    attn_graph *g = *out = attn_calloc(1, sizeof *g);
    if (!g) return attn__error(ATTN_ENOMEM, "attn_graph_new: out of memory");
    g->chunks = chunk_new(arena_bytes ? arena_bytes : AG_DEFAULT_ARENA);
    if (!g->chunks) {
        attn_free(g);
        *out = NULL;
        return attn__error(ATTN_ENOMEM, "attn_graph_new: out of memory (arena of %zu bytes)", arena_bytes);
    }
    g->training = 1;
    g->grad_enabled = 1;
    attn_rng_seed(&g->rng, 0);
    return ATTN_OK;
}

void attn_graph_free(attn_graph *g) {
    if (!g) return;
    attn_plan_free(g->plan);
    chunks_free(g->chunks);
    attn_free(g);
}

void attn_graph_reset(attn_graph *g) {
    if (!g) return;
    if (g->chunks && g->chunks->next) {
        /* Several chunks were needed: replace them by one that holds the peak. */
        size_t cap = g->peak + g->peak / 8;
        ag_chunk *n = chunk_new(cap);
        if (n) {
            chunks_free(g->chunks);
            g->chunks = n;
        }
    }
    for (ag_chunk *c = g->chunks; c; c = c->next) c->used = 0;
    g->used_total = 0;
    g->tape = NULL;
    g->views = NULL;
    g->status = ATTN_OK;
    g->msg[0] = 0;
    g->in_backward = 0;
}

int attn_graph_status(const attn_graph *g) {
    if (!g) return attn__error(ATTN_EINVAL, "autograd: NULL graph");
    if (g->status != ATTN_OK) return attn__error(g->status, "%s", g->msg);
    return ATTN_OK;
}

void attn_graph_set_training(attn_graph *g, int training) {
    if (g) g->training = training != 0;
}
int attn_graph_training(const attn_graph *g) { return g ? g->training : 0; }
void attn_graph_set_grad(attn_graph *g, int enabled) {
    if (g) g->grad_enabled = enabled != 0;
}
void attn_graph_seed(attn_graph *g, uint64_t seed) {
    if (g) attn_rng_seed(&g->rng, seed);
}
attn_rng *attn_graph_rng(attn_graph *g) { return g ? &g->rng : NULL; }

size_t attn_graph_arena_used(const attn_graph *g) { return g ? g->used_total : 0; }
size_t attn_graph_arena_reserved(const attn_graph *g) {
    size_t s = 0;
    if (g)
        for (ag_chunk *c = g->chunks; c; c = c->next) s += c->cap;
    return s;
}

void *attn_graph_alloc(attn_graph *g, size_t bytes) {
    if (!g) return NULL;
    return ag_alloc(g, bytes);
}

attn_plan *ag_plan(attn_graph *g, const attn_desc *a) {
    int st = g->plan ? attn_plan_reshape(g->plan, a) : attn_plan_new(a, &g->plan);
    return st == ATTN_OK ? g->plan : ag_fail_last(g, st);
}

/* ---- Errors ---------------------------------------------------------------------------- */

static void set_fail(attn_graph *g, int status, const char *msg) {
    if (g->status != ATTN_OK) return;
    g->status = status;
    snprintf(g->msg, sizeof g->msg, "%s", msg);
}

void *ag_fail(attn_graph *g, int status, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    set_fail(g, status, buf);
    attn__error(g->status, "%s", g->msg);
    return NULL;
}

void *ag_fail_last(attn_graph *g, int status) {
    set_fail(g, status, attn_last_error());
    attn__error(g->status, "%s", g->msg);
    return NULL;
}

int ag_ok(attn_graph *g, const char *op, int n, attn_var *const *xs) {
    if (!g) {
        attn__error(ATTN_EINVAL, "%s: NULL graph", op);
        return 0;
    }
    if (g->status != ATTN_OK) return 0;
    for (int i = 0; i < n; i++)
        if (!xs[i]) {
            ag_fail(g, ATTN_EINVAL, "%s: input %d is NULL", op, i);
            return 0;
        }
    return 1;
}

const char *ag_shape_str(const attn_var *v, char *buf, size_t cap) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "(");
    for (int i = 0; i < v->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)v->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, ")");
    return buf;
}

int ag_axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

/* ---- Nodes ----------------------------------------------------------------------------- */

int ag_check_shape(attn_graph *g, const char *op, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > ATTN_AG_MAX_DIMS || (ndim > 0 && !shape)) {
        ag_fail(g, ATTN_ESHAPE, "%s: %d dimensions (0 to %d allowed)", op, ndim, ATTN_AG_MAX_DIMS);
        return 0;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > INT32_MAX || n > INT64_MAX / 8 / shape[i]) {
            ag_fail(g, ATTN_ESHAPE, "%s: dimension %d is %lld", op, i, (long long)shape[i]);
            return 0;
        }
        n *= shape[i];
    }
    return 1;
}

static attn_var *node_new(attn_graph *g, int ndim, const int64_t *shape) {
    if (!ag_check_shape(g, "autograd", ndim, shape)) return NULL;
    attn_var *v = ag_calloc(g, sizeof *v);
    if (!v) return NULL;
    v->ndim = ndim;
    v->numel = 1;
    for (int i = 0; i < ndim; i++) v->shape[i] = shape[i], v->numel *= shape[i];
    return v;
}

attn_var *ag_new(attn_graph *g, int ndim, const int64_t *shape, int requires_grad) {
    attn_var *v = node_new(g, ndim, shape);
    if (!v) return NULL;
    v->data = ag_floats(g, v->numel);
    if (!v->data) return NULL;
    v->requires_grad = requires_grad && g->grad_enabled;
    return v;
}

attn_var *attn_graph_input(attn_graph *g, int ndim, const int64_t *shape, const float *data) {
    if (!ag_ok(g, "attn_graph_input", 0, NULL)) return NULL;
    attn_var *v = ag_new(g, ndim, shape, 0);
    if (!v) return NULL;
    if (data) memcpy(v->data, data, (size_t)v->numel * sizeof(float));
    else memset(v->data, 0, (size_t)v->numel * sizeof(float));
    return v;
}

attn_var *attn_graph_leaf(attn_graph *g, int ndim, const int64_t *shape, float *data, float *grad) {
    if (!ag_ok(g, "attn_graph_leaf", 0, NULL)) return NULL;
    if (!data) return ag_fail(g, ATTN_EINVAL, "attn_graph_leaf: NULL data");
    attn_var *v = node_new(g, ndim, shape);
    if (!v) return NULL;
    v->data = data;
    v->grad = grad;
    v->requires_grad = grad != NULL;
    return v;
}

/* Views (reshape) share the storage of their base; their gradient is the base's. */
attn_var *attn_ag_reshape(attn_graph *g, attn_var *x, int ndim, const int64_t *shape) {
    if (!ag_ok1(g, "attn_ag_reshape", x)) return NULL;
    if (ndim < 0 || ndim > ATTN_AG_MAX_DIMS || (ndim > 0 && !shape))
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_reshape: %d dimensions", ndim);
    int64_t s[ATTN_AG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) infer = i;
        else if (s[i] < 1) return ag_fail(g, ATTN_ESHAPE, "attn_ag_reshape: dimension %d is %lld", i, (long long)s[i]);
        else known *= s[i];
    }
    if (infer >= 0) {
        if (x->numel % known) return ag_fail(g, ATTN_ESHAPE, "attn_ag_reshape: %lld elements do not split by %lld", (long long)x->numel, (long long)known);
        s[infer] = x->numel / known;
        known = x->numel;
    }
    if (known != x->numel) {
        char b[64];
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_reshape: %s has %lld elements, the new shape %lld",
                       ag_shape_str(x, b, sizeof b), (long long)x->numel, (long long)known);
    }
    attn_var *v = node_new(g, ndim, s);
    if (!v) return NULL;
    attn_var *base = ag_base(x);
    v->data = x->data;
    v->requires_grad = x->requires_grad;
    v->base_ = base;
    v->grad = base->grad;
    ag_view *lv = ag_alloc(g, sizeof *lv);
    if (!lv) return NULL;
    lv->v = v;
    lv->next = g->views;
    g->views = lv;
    return v;
}

/* ---- Tape and gradients ---------------------------------------------------------------- */

void *ag_record(attn_graph *g, size_t size, ag_backward_fn fn, attn_var *out, attn_var *out2) {
    ag_entry *e = ag_calloc(g, size);
    if (!e) return NULL;
    e->backward = fn;
    e->out = out;
    e->out2 = out2;
    e->prev = g->tape;
    g->tape = e;
    return e;
}

float *ag_grad(attn_graph *g, attn_var *v, int *fresh) {
    attn_var *b = ag_base(v);
    *fresh = 0;
    if (b->grad) return b->grad;
    b->grad = ag_floats(g, b->numel);
    if (b->grad) *fresh = 1;
    return b->grad;
}

float *ag_grad_zeroed(attn_graph *g, attn_var *v) {
    int fresh;
    float *d = ag_grad(g, v, &fresh);
    if (d && fresh) memset(d, 0, (size_t)ag_base(v)->numel * sizeof(float));
    return d;
}

static int run_backward(attn_graph *g) {
    g->in_backward = 1;
    for (ag_entry *e = g->tape; e && g->status == ATTN_OK; e = e->prev) {
        if (!ag_dy(e->out) && !(e->out2 && ag_dy(e->out2)) && !(e->out3 && ag_dy(e->out3))) continue;
        e->backward(g, e);
    }
    g->in_backward = 0;
    g->tape = NULL; /* once per forward */
    for (ag_view *lv = g->views; lv; lv = lv->next) lv->v->grad = ag_base(lv->v)->grad;
    return attn_graph_status(g);
}

int attn_graph_backward(attn_graph *g, attn_var *loss) {
    if (!g) return attn__error(ATTN_EINVAL, "attn_graph_backward: NULL graph");
    if (g->status != ATTN_OK) return attn_graph_status(g);
    if (!loss) return attn__error(ATTN_EINVAL, "attn_graph_backward: NULL loss");
    if (loss->numel != 1) {
        char b[64];
        return attn__error(ATTN_ESHAPE, "attn_graph_backward: the loss must be a scalar, not %s", ag_shape_str(loss, b, sizeof b));
    }
    float one = 1.0f;
    return attn_graph_backward_from(g, loss, &one);
}

int attn_graph_backward_from(attn_graph *g, attn_var *y, const float *dy) {
    if (!g) return attn__error(ATTN_EINVAL, "attn_graph_backward: NULL graph");
    if (g->status != ATTN_OK) return attn_graph_status(g);
    if (!y || !dy) return attn__error(ATTN_EINVAL, "attn_graph_backward: NULL node or gradient");
    if (!y->requires_grad) return ATTN_OK; /* nothing upstream needs a gradient */
    int fresh;
    float *d = ag_grad(g, y, &fresh);
    if (!d) return attn_graph_status(g);
    int64_t n = y->numel;
    if (fresh) memcpy(d, dy, (size_t)n * sizeof(float));
    else
        for (int64_t i = 0; i < n; i++) d[i] += dy[i];
    return run_backward(g);
}

/* ---- Parallel loops and matrix helpers ------------------------------------------------- */

typedef struct {
    int64_t n, block;
    ag_range_fn fn;
    void *ctx;
} par_ctx;

static void par_task(void *c, int task, int thread) {
    (void)thread;
    par_ctx *p = c;
    int64_t i0 = (int64_t)task * p->block, i1 = i0 + p->block;
    if (i1 > p->n) i1 = p->n;
    p->fn(p->ctx, i0, i1);
}

void ag_parallel_for(int64_t n, int64_t block, ag_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (block < 1) block = 1;
    int64_t ntask = (n + block - 1) / block;
    if (ntask <= 1 || ntask > INT32_MAX) {
        fn(ctx, 0, n);
        return;
    }
    par_ctx p = {n, block, fn, ctx};
    attn__parallel((int)ntask, par_task, &p);
}

int64_t ag_block(int64_t cost) {
    const int64_t work = 1 << 15;
    if (cost < 1) cost = 1;
    int64_t b = work / cost;
    return b < 1 ? 1 : b;
}

void ag_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) C[m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
        return;
    }
    attn__kern()->sgemm(ta, tb, (int)M, (int)N, (int)K, alpha, A, lda, B, ldb, beta, C, ldc);
}

attn_var *attn_param_var(attn_graph *g, attn_param *p) {
    if (!ag_ok(g, "attn_param_var", 0, NULL)) return NULL;
    if (!p || !p->data) return ag_fail(g, ATTN_EINVAL, "attn_param_var: %s", p ? "parameters not allocated" : "NULL parameter");
    return attn_graph_leaf(g, p->ndim, p->shape, p->data, p->frozen ? NULL : p->grad);
}
