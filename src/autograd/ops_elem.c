/* Elementwise ops on the tape: add, sub, mul with broadcasting of the second operand, scale,
 * and the activations (tanh, sigmoid, relu, gelu: the kernels of attn/layers.h run over fixed
 * blocks in parallel).
 *
 * Broadcasting: b (right-aligned to a) has each dimension equal to a's or 1. Three cases:
 * SAME (b has a's numel), SUFFIX (b's numel divides a's and b equals a's trailing dims once
 * its leading 1s are dropped: a bias row, a position table), and GENERAL (anything else:
 * 4-D index loops, serial). Gradients of b sum over the broadcast dimensions in a fixed order.
 */
#include <string.h>

#include "attn/layers.h"
#include "autograd/ag.h"

typedef enum { BC_SAME, BC_SUFFIX, BC_GENERAL } bc_kind;

typedef struct {
    bc_kind kind;
    int64_t nb;                     /* numel of b */
    int64_t ash[4], bst[4];         /* a's shape padded to 4 dims; b's strides (0 = broadcast) */
} bcast;

static int bcast_plan(attn_graph *g, const char *op, const attn_var *a, const attn_var *b, bcast *p) {
    char s1[64], s2[64];
    if (b->ndim > a->ndim) goto bad;
    int64_t bsh[4];
    for (int i = 0; i < 4; i++) {
        int ia = i - (4 - a->ndim), ib = i - (4 - b->ndim);
        p->ash[i] = ia >= 0 ? a->shape[ia] : 1;
        bsh[i] = ib >= 0 ? b->shape[ib] : 1;
        if (bsh[i] != 1 && bsh[i] != p->ash[i]) goto bad;
    }
    int64_t st = 1;
    for (int i = 3; i >= 0; i--) {
        p->bst[i] = bsh[i] == 1 ? 0 : st;
        st *= bsh[i];
    }
    p->nb = b->numel;
    if (b->numel == a->numel) p->kind = BC_SAME;
    else {
        /* SUFFIX: from some dim k on b equals a, before it b is all 1s. */
        int k = 0;
        while (k < 4 && bsh[k] == 1) k++;
        int ok = 1;
        for (int i = k; i < 4; i++)
            if (bsh[i] != p->ash[i]) ok = 0;
        p->kind = ok ? BC_SUFFIX : BC_GENERAL;
    }
    return 1;
bad:
    ag_fail(g, ATTN_ESHAPE, "%s: %s does not broadcast to %s", op, ag_shape_str(b, s2, sizeof s2), ag_shape_str(a, s1, sizeof s1));
    return 0;
}

/* Offset into b of element (i0, i1, i2, i3) of a. */
static inline int64_t boff(const bcast *p, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return i0 * p->bst[0] + i1 * p->bst[1] + i2 * p->bst[2] + i3 * p->bst[3];
}

typedef enum { OP_ADD, OP_SUB, OP_MUL } bin_op;

typedef struct {
    ag_entry e;
    attn_var *a, *b;
    bin_op op;
    bcast p;
} bin_entry;

typedef struct {
    float *y;
    const float *a, *b;
    int64_t nb;
    bin_op op;
} bin_fwd_ctx;

static void bin_fwd_range(void *c, int64_t i0, int64_t i1) {
    bin_fwd_ctx *s = c;
    float *y = s->y;
    const float *a = s->a, *b = s->b;
    int64_t nb = s->nb, j = i0 % nb;
    for (int64_t i = i0; i < i1; i++) {
        float bv = b[j];
        y[i] = s->op == OP_ADD ? a[i] + bv : s->op == OP_SUB ? a[i] - bv : a[i] * bv;
        if (++j == nb) j = 0;
    }
}

static void bin_general_fwd(const bcast *p, bin_op op, float *y, const float *a, const float *b) {
    int64_t i = 0;
    for (int64_t i0 = 0; i0 < p->ash[0]; i0++)
        for (int64_t i1 = 0; i1 < p->ash[1]; i1++)
            for (int64_t i2 = 0; i2 < p->ash[2]; i2++)
                for (int64_t i3 = 0; i3 < p->ash[3]; i3++, i++) {
                    float bv = b[boff(p, i0, i1, i2, i3)];
                    y[i] = op == OP_ADD ? a[i] + bv : op == OP_SUB ? a[i] - bv : a[i] * bv;
                }
}

/* da (=/+=) dy (add, sub) or dy * b (mul). */
typedef struct {
    float *da;
    const float *dy, *b;
    int64_t nb;
    int fresh;
    bin_op op;
} bin_da_ctx;

static void bin_da_range(void *c, int64_t i0, int64_t i1) {
    bin_da_ctx *s = c;
    int64_t j = i0 % s->nb;
    for (int64_t i = i0; i < i1; i++) {
        float d = s->op == OP_MUL ? s->dy[i] * s->b[j] : s->dy[i];
        s->da[i] = s->fresh ? d : s->da[i] + d;
        if (++j == s->nb) j = 0;
    }
}

static void bin_backward(attn_graph *g, ag_entry *base) {
    bin_entry *e = (bin_entry *)base;
    const bcast *p = &e->p;
    attn_var *a = e->a, *b = e->b;
    const float *dy = ag_dy(e->e.out);
    int64_t n = a->numel;
    int fresh;
    if (a->requires_grad) {
        float *da = ag_grad(g, a, &fresh);
        if (!da) return;
        if (p->kind != BC_GENERAL || e->op != OP_MUL) {
            bin_da_ctx c = {da, dy, b->data, p->kind == BC_GENERAL ? n : p->nb, fresh, e->op};
            ag_parallel_for(n, ag_block(2), bin_da_range, &c);
        } else {
            int64_t i = 0;
            for (int64_t i0 = 0; i0 < p->ash[0]; i0++)
                for (int64_t i1 = 0; i1 < p->ash[1]; i1++)
                    for (int64_t i2 = 0; i2 < p->ash[2]; i2++)
                        for (int64_t i3 = 0; i3 < p->ash[3]; i3++, i++) {
                            float d = dy[i] * b->data[boff(p, i0, i1, i2, i3)];
                            da[i] = fresh ? d : da[i] + d;
                        }
        }
    }
    if (b->requires_grad) {
        float sign = e->op == OP_SUB ? -1.0f : 1.0f;
        const float *av = a->data;
        if (p->kind == BC_SAME) {
            float *db = ag_grad(g, b, &fresh);
            if (!db) return;
            for (int64_t i = 0; i < n; i++) {
                float d = e->op == OP_MUL ? dy[i] * av[i] : sign * dy[i];
                db[i] = fresh ? d : db[i] + d;
            }
        } else {
            float *db = ag_grad_zeroed(g, b);
            if (!db) return;
            if (p->kind == BC_SUFFIX) {
                int64_t nb = p->nb, rows = n / nb;
                for (int64_t r = 0; r < rows; r++) {
                    const float *d = dy + r * nb, *x = av + r * nb;
                    if (e->op == OP_MUL)
                        for (int64_t j = 0; j < nb; j++) db[j] += d[j] * x[j];
                    else
                        for (int64_t j = 0; j < nb; j++) db[j] += sign * d[j];
                }
            } else {
                int64_t i = 0;
                for (int64_t i0 = 0; i0 < p->ash[0]; i0++)
                    for (int64_t i1 = 0; i1 < p->ash[1]; i1++)
                        for (int64_t i2 = 0; i2 < p->ash[2]; i2++)
                            for (int64_t i3 = 0; i3 < p->ash[3]; i3++, i++)
                                db[boff(p, i0, i1, i2, i3)] += e->op == OP_MUL ? dy[i] * av[i] : sign * dy[i];
            }
        }
    }
}

static attn_var *binary(attn_graph *g, const char *name, attn_var *a, attn_var *b, bin_op op) {
    if (!ag_ok2(g, name, a, b)) return NULL;
    bcast p;
    if (!bcast_plan(g, name, a, b, &p)) return NULL;
    attn_var *y = ag_new(g, a->ndim, a->shape, a->requires_grad || b->requires_grad);
    if (!y) return NULL;
    if (p.kind == BC_GENERAL) bin_general_fwd(&p, op, y->data, a->data, b->data);
    else {
        bin_fwd_ctx c = {y->data, a->data, b->data, p.nb, op};
        ag_parallel_for(a->numel, ag_block(2), bin_fwd_range, &c);
    }
    if (y->requires_grad) {
        bin_entry *e = ag_record(g, sizeof *e, bin_backward, y, NULL);
        if (!e) return NULL;
        e->a = a;
        e->b = b;
        e->op = op;
        e->p = p;
    }
    return y;
}

attn_var *attn_ag_add(attn_graph *g, attn_var *a, attn_var *b) { return binary(g, "attn_ag_add", a, b, OP_ADD); }
attn_var *attn_ag_sub(attn_graph *g, attn_var *a, attn_var *b) { return binary(g, "attn_ag_sub", a, b, OP_SUB); }
attn_var *attn_ag_mul(attn_graph *g, attn_var *a, attn_var *b) { return binary(g, "attn_ag_mul", a, b, OP_MUL); }

/* ---- scale ----------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    float s;
} scale_entry;

static void scale_backward(attn_graph *g, ag_entry *base) {
    scale_entry *e = (scale_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    const float *dy = ag_dy(e->e.out);
    for (int64_t i = 0; i < e->x->numel; i++) dx[i] = fresh ? e->s * dy[i] : dx[i] + e->s * dy[i];
}

attn_var *attn_ag_scale(attn_graph *g, attn_var *x, float s) {
    if (!ag_ok1(g, "attn_ag_scale", x)) return NULL;
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = x->data[i] * s;
    if (y->requires_grad) {
        scale_entry *e = ag_record(g, sizeof *e, scale_backward, y, NULL);
        if (!e) return NULL;
        e->x = x;
        e->s = s;
    }
    return y;
}

/* ---- Activations ----------------------------------------------------------------------- */

typedef enum { ACT_TANH, ACT_SIGMOID, ACT_RELU, ACT_GELU } act_kind;

typedef struct {
    ag_entry e;
    attn_var *x;
    act_kind kind;
} act_entry;

typedef struct {
    act_kind kind;
    float *out;
    const float *x, *y, *dy;
    int fresh;
} act_ctx;

static void act_fwd_range(void *c, int64_t i0, int64_t i1) {
    act_ctx *s = c;
    size_t n = (size_t)(i1 - i0);
    switch (s->kind) {
    case ACT_TANH: attn_tanh_forward(s->out + i0, s->x + i0, n); break;
    case ACT_SIGMOID: attn_sigmoid_forward(s->out + i0, s->x + i0, n); break;
    case ACT_RELU: attn_relu_forward(s->out + i0, s->x + i0, n); break;
    case ACT_GELU: attn_gelu_forward(s->out + i0, s->x + i0, n); break;
    }
}

static void act_bwd_range(void *c, int64_t i0, int64_t i1) {
    act_ctx *s = c;
    size_t n = (size_t)(i1 - i0);
    float *dx = s->out + i0;
    if (s->fresh) memset(dx, 0, n * sizeof(float));
    switch (s->kind) {
    case ACT_TANH: attn_tanh_backward(dx, s->y + i0, s->dy + i0, n); break;
    case ACT_SIGMOID: attn_sigmoid_backward(dx, s->y + i0, s->dy + i0, n); break;
    case ACT_RELU: attn_relu_backward(dx, s->x + i0, s->dy + i0, n); break;
    case ACT_GELU: attn_gelu_backward(dx, s->x + i0, s->dy + i0, n); break;
    }
}

static int64_t act_cost(act_kind k) { return k == ACT_RELU ? 1 : k == ACT_GELU ? 40 : 20; }

static void act_backward(attn_graph *g, ag_entry *base) {
    act_entry *e = (act_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh);
    if (!dx) return;
    act_ctx c = {e->kind, dx, e->x->data, e->e.out->data, ag_dy(e->e.out), fresh};
    ag_parallel_for(e->x->numel, ag_block(act_cost(e->kind)), act_bwd_range, &c);
}

static attn_var *activation(attn_graph *g, const char *name, attn_var *x, act_kind kind) {
    if (!ag_ok1(g, name, x)) return NULL;
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad);
    if (!y) return NULL;
    act_ctx c = {kind, y->data, x->data, NULL, NULL, 0};
    ag_parallel_for(x->numel, ag_block(act_cost(kind)), act_fwd_range, &c);
    if (y->requires_grad) {
        act_entry *e = ag_record(g, sizeof *e, act_backward, y, NULL);
        if (!e) return NULL;
        e->x = x;
        e->kind = kind;
    }
    return y;
}

attn_var *attn_ag_tanh(attn_graph *g, attn_var *x) { return activation(g, "attn_ag_tanh", x, ACT_TANH); }
attn_var *attn_ag_sigmoid(attn_graph *g, attn_var *x) { return activation(g, "attn_ag_sigmoid", x, ACT_SIGMOID); }
attn_var *attn_ag_relu(attn_graph *g, attn_var *x) { return activation(g, "attn_ag_relu", x, ACT_RELU); }
attn_var *attn_ag_gelu(attn_graph *g, attn_var *x) { return activation(g, "attn_ag_gelu", x, ACT_GELU); }
