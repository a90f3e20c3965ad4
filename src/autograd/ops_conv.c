/* The convolutional classifier's ops on the tape (Kim 2014): the 1-D convolution over token
 * sequences and max- and mean-pooling over time, each with per-sequence lengths; and the
 * vision ops of the Recurrent Attention Model (Mnih et al. 2014): the 2-D convolution and max
 * pooling over images (its baselines) and the glimpse sensor. The math is nn/conv1d.c's,
 * nn/conv2d.c's, nn/pool.c's and nn/glimpse.c's; the tape only checks, records and adapts
 * (their work memory, argmax and locations live in the arena, so a step allocates nothing
 * once the arena has grown).
 * Letters: B sequences, T positions, Cin/Cout/C channels, K the filter width; for images
 * (B, C, H, W) and filters (Cout, Cin, KH, KW). */
#include <string.h>

#include "autograd/ag.h"
#include "nn/nn_internal.h"

/* The lengths (B) checked to lie in [0, T] and copied into the arena (NULL stays NULL); *bad
 * is set on failure. */
static int32_t *keep_lengths(attn_graph *g, const char *op, const int32_t *lengths, int64_t B, int64_t T, int *bad) {
    *bad = 0;
    if (!lengths) return NULL;
    for (int64_t b = 0; b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T) {
            *bad = 1;
            return ag_fail(g, ATTN_EINVAL, "%s: lengths[%lld] = %d is outside [0, %lld]", op, (long long)b,
                           (int)lengths[b], (long long)T);
        }
    int32_t *len = ag_alloc(g, (size_t)B * sizeof(int32_t));
    if (!len) *bad = 1;
    else memcpy(len, lengths, (size_t)B * sizeof(int32_t));
    return len;
}

/* ---- conv1d ---------------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x, *W, *b;
    int32_t *lengths;
    int B, T, Cin, Cout, K, pad;
} conv_entry;

static void conv_backward(attn_graph *g, ag_entry *base) {
    conv_entry *e = (conv_entry *)base;
    const float *dy = ag_dy(e->e.out); /* (B, To, Cout) */
    int fresh_x = 1, fresh_W = 1, fresh_b = 1;
    float *dx = NULL, *dW = NULL, *db = NULL;
    if (e->x->requires_grad && !(dx = ag_grad(g, e->x, &fresh_x))) return;                  /* (B, T, Cin) */
    if (e->W->requires_grad && !(dW = ag_grad(g, e->W, &fresh_W))) return;                  /* (Cout, Cin, K) */
    if (e->b && e->b->requires_grad && !(db = ag_grad(g, e->b, &fresh_b))) return;         /* (Cout) */
    float *work = ag_floats(g, (int64_t)attn__conv1d_work_floats(e->Cin, e->Cout, e->K));
    if (!work) return;
    attn__conv1d_backward(dx, !fresh_x, dW, !fresh_W, db, !fresh_b, dy, e->x->data, e->lengths, e->W->data, e->B, e->T,
                          e->Cin, e->Cout, e->K, e->pad, work);
}

attn_var *attn_ag_conv1d(attn_graph *g, attn_var *x, attn_var *W, attn_var *b, int pad, const int32_t *lengths) {
    const char *op = "attn_ag_conv1d";
    if (!ag_ok2(g, op, x, W)) return NULL;
    char s1[64], s2[64], s3[64];
    if (x->ndim != 3 || W->ndim != 3 || W->shape[1] != x->shape[2])
        return ag_fail(g, ATTN_ESHAPE, "%s: x %s and W %s do not fit (x (B, T, Cin), W (Cout, Cin, K))", op,
                       ag_shape_str(x, s1, sizeof s1), ag_shape_str(W, s2, sizeof s2));
    int64_t B = x->shape[0], T = x->shape[1], Cin = x->shape[2], Cout = W->shape[0], K = W->shape[2];
    if (b && (b->ndim != 1 || b->numel != Cout))
        return ag_fail(g, ATTN_ESHAPE, "%s: bias %s, expected (%lld)", op, ag_shape_str(b, s3, sizeof s3), (long long)Cout);
    if (pad < 0 || pad >= K) return ag_fail(g, ATTN_EINVAL, "%s: pad %d is outside [0, K = %lld)", op, pad, (long long)K);
    int To = attn_conv1d_out_length((int)T, (int)K, pad);
    if (To < 1)
        return ag_fail(g, ATTN_ESHAPE, "%s: %lld positions give no output of a width-%lld filter with padding %d", op,
                       (long long)T, (long long)K, pad);
    int bad;
    int32_t *len = keep_lengths(g, op, lengths, B, T, &bad);
    if (bad) return NULL;
    attn_var *y = ag_new(g, 3, (int64_t[]){B, To, Cout}, x->requires_grad || W->requires_grad || (b && b->requires_grad));
    float *work = y ? ag_floats(g, (int64_t)attn__conv1d_work_floats((int)Cin, (int)Cout, (int)K)) : NULL;
    if (!work) return NULL;
    /* y (B, To, Cout) = conv1d(x (B, T, Cin), W (Cout, Cin, K)) + b: nn/conv1d.c's forward */
    attn__conv1d_forward(y->data, x->data, len, W->data, b ? b->data : NULL, (int)B, (int)T, (int)Cin, (int)Cout, (int)K,
                         pad, work);
    if (y->requires_grad) {
        conv_entry *e = ag_record(g, sizeof *e, conv_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->W = W, e->b = b, e->lengths = len;
        e->B = (int)B, e->T = (int)T, e->Cin = (int)Cin, e->Cout = (int)Cout, e->K = (int)K, e->pad = pad;
    }
    return y;
}

/* ---- Pooling over time ----------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x;
    int32_t *arg, *lengths; /* arg (B, C) for max, NULL for mean */
    int B, T, C;
} pool_entry;

static void pool_backward(attn_graph *g, ag_entry *base) {
    pool_entry *e = (pool_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh); /* (B, T, C) */
    if (!dx) return;
    if (e->arg) attn__max_pool_time_backward(dx, !fresh, ag_dy(e->e.out), e->arg, e->B, e->T, e->C);
    else attn__mean_pool_time_backward(dx, !fresh, ag_dy(e->e.out), e->lengths, e->B, e->T, e->C);
}

static attn_var *pool_op(attn_graph *g, const char *op, int max, attn_var *x, const int32_t *lengths) {
    if (!ag_ok1(g, op, x)) return NULL;
    char s1[64];
    if (x->ndim != 3) return ag_fail(g, ATTN_ESHAPE, "%s: x %s is not (B, T, C)", op, ag_shape_str(x, s1, sizeof s1));
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    int bad;
    int32_t *len = keep_lengths(g, op, lengths, B, T, &bad), *arg = NULL;
    if (bad) return NULL;
    attn_var *y = ag_new(g, 2, (int64_t[]){B, C}, x->requires_grad);
    if (!y || (max && !(arg = ag_alloc(g, (size_t)(B * C) * sizeof(int32_t))))) return NULL;
    /* y (B, C) = max or mean over t < lengths[b] of x (B, T, C): nn/pool.c's forward */
    if (max) attn__max_pool_time_forward(y->data, arg, x->data, len, (int)B, (int)T, (int)C);
    else attn__mean_pool_time_forward(y->data, x->data, len, (int)B, (int)T, (int)C);
    if (y->requires_grad) {
        pool_entry *e = ag_record(g, sizeof *e, pool_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->arg = arg, e->lengths = len, e->B = (int)B, e->T = (int)T, e->C = (int)C;
    }
    return y;
}

attn_var *attn_ag_max_pool_time(attn_graph *g, attn_var *x, const int32_t *lengths) {
    return pool_op(g, "attn_ag_max_pool_time", 1, x, lengths);
}

attn_var *attn_ag_mean_pool_time(attn_graph *g, attn_var *x, const int32_t *lengths) {
    return pool_op(g, "attn_ag_mean_pool_time", 0, x, lengths);
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x, *W, *b;
    attn__conv2d_shape s;
} conv2d_entry;

static void conv2d_backward(attn_graph *g, ag_entry *base) {
    conv2d_entry *e = (conv2d_entry *)base;
    int fresh_x = 1, fresh_W = 1, fresh_b = 1;
    float *dx = NULL, *dW = NULL, *db = NULL;
    if (e->x->requires_grad && !(dx = ag_grad(g, e->x, &fresh_x))) return;          /* (B, Cin, H, W) */
    if (e->W->requires_grad && !(dW = ag_grad(g, e->W, &fresh_W))) return;          /* (Cout, Cin, KH, KW) */
    if (e->b && e->b->requires_grad && !(db = ag_grad(g, e->b, &fresh_b))) return; /* (Cout) */
    float *work = ag_floats(g, (int64_t)attn__conv2d_work_floats(&e->s, 1));
    if (!work) return;
    attn__conv2d_backward(dx, !fresh_x, dW, !fresh_W, db, !fresh_b, ag_dy(e->e.out), e->x->data, e->W->data, &e->s,
                          work);
}

attn_var *attn_ag_conv2d(attn_graph *g, attn_var *x, attn_var *W, attn_var *b, int stride, int pad) {
    const char *op = "attn_ag_conv2d";
    if (!ag_ok2(g, op, x, W)) return NULL;
    char s1[64], s2[64], s3[64];
    if (x->ndim != 4 || W->ndim != 4 || W->shape[1] != x->shape[1])
        return ag_fail(g, ATTN_ESHAPE, "%s: x %s and W %s do not fit (x (B, Cin, H, W), W (Cout, Cin, KH, KW))", op,
                       ag_shape_str(x, s1, sizeof s1), ag_shape_str(W, s2, sizeof s2));
    if (b && (b->ndim != 1 || b->numel != W->shape[0]))
        return ag_fail(g, ATTN_ESHAPE, "%s: bias %s, expected (%lld)", op, ag_shape_str(b, s3, sizeof s3),
                       (long long)W->shape[0]);
    attn__conv2d_shape s = {(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)W->shape[0],
                            (int)W->shape[2], (int)W->shape[3], stride, pad, 0, 0};
    int st = attn__conv2d_check(op, &s);
    if (st) return ag_fail_last(g, st);
    attn_var *y = ag_new(g, 4, (int64_t[]){s.B, s.Cout, s.Ho, s.Wo},
                         x->requires_grad || W->requires_grad || (b && b->requires_grad));
    float *work = y ? ag_floats(g, (int64_t)attn__conv2d_work_floats(&s, 0)) : NULL;
    if (!work) return NULL;
    /* y (B, Cout, Ho, Wo) = conv2d(x, W) + b: nn/conv2d.c's forward */
    attn__conv2d_forward(y->data, x->data, W->data, b ? b->data : NULL, &s, work);
    if (y->requires_grad) {
        conv2d_entry *e = ag_record(g, sizeof *e, conv2d_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->W = W, e->b = b, e->s = s;
    }
    return y;
}

/* ---- max_pool2d ------------------------------------------------------------------------------ */

typedef struct {
    ag_entry e;
    attn_var *x;
    int32_t *arg; /* (B, C, Ho, Wo) */
    int P, H, W, k, stride;
} pool2d_entry;

static void pool2d_backward(attn_graph *g, ag_entry *base) {
    pool2d_entry *e = (pool2d_entry *)base;
    int fresh;
    float *dx = ag_grad(g, e->x, &fresh); /* (B, C, H, W) */
    if (dx) attn__max_pool2d_backward(dx, !fresh, ag_dy(e->e.out), e->arg, e->P, e->H, e->W, e->k, e->stride);
}

attn_var *attn_ag_max_pool2d(attn_graph *g, attn_var *x, int k, int stride) {
    const char *op = "attn_ag_max_pool2d";
    if (!ag_ok1(g, op, x)) return NULL;
    char s1[64];
    if (x->ndim != 4) return ag_fail(g, ATTN_ESHAPE, "%s: x %s is not (B, C, H, W)", op, ag_shape_str(x, s1, sizeof s1));
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (k < 1 || stride < 1 || k > H || k > W || B * C > INT32_MAX || H * W > INT32_MAX)
        return ag_fail(g, ATTN_EINVAL, "%s: kernel %d, stride %d on %s (1 <= kernel <= H, W; stride >= 1)", op, k, stride,
                       ag_shape_str(x, s1, sizeof s1));
    int Ho = attn_conv2d_out_size((int)H, k, stride, 0), Wo = attn_conv2d_out_size((int)W, k, stride, 0);
    attn_var *y = ag_new(g, 4, (int64_t[]){B, C, Ho, Wo}, x->requires_grad);
    int32_t *arg = y ? ag_alloc(g, (size_t)y->numel * sizeof(int32_t)) : NULL;
    if (!arg) return NULL;
    /* y (B, C, Ho, Wo) = the maxima of k x k windows every `stride` pixels: nn/pool.c's forward */
    attn__max_pool2d_forward(y->data, arg, x->data, (int)(B * C), (int)H, (int)W, k, stride);
    if (y->requires_grad) {
        pool2d_entry *e = ag_record(g, sizeof *e, pool2d_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->arg = arg, e->P = (int)(B * C), e->H = (int)H, e->W = (int)W, e->k = k, e->stride = stride;
    }
    return y;
}

/* ---- The glimpse sensor ---------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *img;
    float *loc; /* (B, 2), copied */
    int B, C, H, W, size, scales;
} glimpse_entry;

static void glimpse_backward(attn_graph *g, ag_entry *base) {
    glimpse_entry *e = (glimpse_entry *)base;
    int fresh;
    float *dimg = ag_grad(g, e->img, &fresh); /* (B, C, H, W); the location gets no gradient */
    if (dimg)
        attn__glimpse_backward(dimg, !fresh, ag_dy(e->e.out), e->loc, e->B, e->C, e->H, e->W, e->size, e->scales);
}

attn_var *attn_ag_glimpse(attn_graph *g, attn_var *img, const float *loc, int size, int scales) {
    const char *op = "attn_ag_glimpse";
    if (!ag_ok1(g, op, img)) return NULL;
    char s1[64];
    if (img->ndim != 4)
        return ag_fail(g, ATTN_ESHAPE, "%s: img %s is not (B, C, H, W)", op, ag_shape_str(img, s1, sizeof s1));
    if (!loc) return ag_fail(g, ATTN_EINVAL, "%s: NULL loc", op);
    int B = (int)img->shape[0], C = (int)img->shape[1], H = (int)img->shape[2], W = (int)img->shape[3];
    if (attn__glimpse_check(op, loc, B, C, H, W, size, scales)) return ag_fail_last(g, ATTN_EINVAL);
    attn_var *y = ag_new(g, 4, (int64_t[]){B, (int64_t)scales * C, size, size}, img->requires_grad);
    float *l = y ? ag_floats(g, 2 * (int64_t)B) : NULL;
    if (!l) return NULL;
    memcpy(l, loc, 2 * (size_t)B * sizeof(float));
    /* y (B, scales C, size, size) = the patches around loc, averaged down: nn/glimpse.c's forward */
    attn__glimpse_forward(y->data, img->data, l, B, C, H, W, size, scales);
    if (y->requires_grad) {
        glimpse_entry *e = ag_record(g, sizeof *e, glimpse_backward, y, NULL);
        if (!e) return NULL;
        e->img = img, e->loc = l, e->B = B, e->C = C, e->H = H, e->W = W, e->size = size, e->scales = scales;
    }
    return y;
}
