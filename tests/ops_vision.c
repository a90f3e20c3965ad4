/* The operation test registry's vision operations (the table and the harness are in
 * tests/test_ops.c; see its opening comment): the 2-D convolution and max pooling over
 * images, NCHW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_ops.h"

/* ---- conv2d (nn/conv2d.c): s = B, Cin, H, W, Cout, K (square filter); v = the stride (1..3),
 * plus 4 for no bias; m = the padding. Inputs x, W, [b]. ------------------------------------ */

static int c2_stride(const prob *p) { return p->r->v & 3; }
static int c2_bias(const prob *p) { return !(p->r->v & 4); }
static int c2_out(const prob *p, int n) { return attn_conv2d_out_size(n, p->r->s[5], c2_stride(p), p->r->m); }

static void c2_init(prob *p) {
    const int *s = p->r->s;
    add_in(p, "x", (size_t)s[0] * s[1] * s[2] * s[3], 1.0f, 2);
    add_in(p, "W", (size_t)s[4] * s[1] * s[5] * s[5], 0.5f, 2);
    if (c2_bias(p)) add_in(p, "b", s[4], 1.0f, 2);
    add_out(p, (size_t)s[0] * s[4] * c2_out(p, s[2]) * c2_out(p, s[3]));
    p->nloss = 1;
}

static int c2_fwd(prob *p) {
    const int *s = p->r->s;
    return attn_conv2d_forward(p->out[0], p->in[0], p->in[1], c2_bias(p) ? p->in[2] : NULL, s[0], s[1], s[2], s[3], s[4],
                               s[5], s[5], c2_stride(p), p->r->m);
}

static int c2_bwd(prob *p, float *const *dout) {
    const int *s = p->r->s;
    return attn_conv2d_backward(p->g[0], p->g[1], c2_bias(p) ? p->g[2] : NULL, dout[0], p->in[0], p->in[1], s[0], s[1],
                                s[2], s[3], s[4], s[5], s[5], c2_stride(p), p->r->m);
}

static void c2_ref(const prob *p, double *const *out) {
    const int *s = p->r->s;
    int B = s[0], Cin = s[1], H = s[2], W = s[3], Cout = s[4], K = s[5], S = c2_stride(p), P = p->r->m;
    int Ho = c2_out(p, H), Wo = c2_out(p, W);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < Cout; o++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    double y = c2_bias(p) ? p->in[2][o] : 0;
                    for (int c = 0; c < Cin; c++)
                        for (int u = 0; u < K; u++)
                            for (int v = 0; v < K; v++) {
                                int h = i * S + u - P, w = j * S + v - P;
                                if (h >= 0 && h < H && w >= 0 && w < W)
                                    y += (double)p->in[0][(((size_t)b * Cin + c) * H + h) * W + w] *
                                         p->in[1][(((size_t)o * Cin + c) * K + u) * K + v];
                            }
                    out[0][(((size_t)b * Cout + o) * Ho + i) * Wo + j] = y;
                }
}

static double c2_flops(const prob *p) { return 2.0 * p->n_out[0] * p->r->s[1] * p->r->s[5] * p->r->s[5]; }

const opdef OP_CONV2D = {"conv2d", c2_init, c2_fwd, c2_bwd, c2_ref, c2_flops};

/* ---- max_pool2d (nn/pool.c): s = B, C, H, W, k, stride. The inputs are spaced 0.1 apart,
 * beyond the differences' steps, so no perturbation moves an argmax. ----------------------- */

static int p2_out(const prob *p, int n) { return attn_conv2d_out_size(n, p->r->s[4], p->r->s[5], 0); }

static void p2_init(prob *p) {
    const int *s = p->r->s;
    size_t n = (size_t)s[0] * s[1] * s[2] * s[3], no = (size_t)s[0] * s[1] * p2_out(p, s[2]) * p2_out(p, s[3]);
    float *x = add_in(p, "x", n, 1.0f, 2);
    for (size_t i = 0; i < n; i++) x[i] = 0.1f * (float)((i * 7919) % n) - 0.05f * (float)n;
    p->aux = malloc(no * sizeof(int32_t)); /* argmax */
    add_out(p, no);
    p->nloss = 1;
}

static int p2_fwd(prob *p) {
    const int *s = p->r->s;
    return attn_max_pool2d_forward(p->out[0], (int32_t *)(void *)p->aux, p->in[0], s[0], s[1], s[2], s[3], s[4], s[5]);
}

static int p2_bwd(prob *p, float *const *dout) {
    const int *s = p->r->s;
    return attn_max_pool2d_backward(p->g[0], dout[0], (int32_t *)(void *)p->aux, s[0], s[1], s[2], s[3], s[4], s[5]);
}

static void p2_ref(const prob *p, double *const *out) {
    const int *s = p->r->s;
    int H = s[2], W = s[3], k = s[4], S = s[5], Ho = p2_out(p, H), Wo = p2_out(p, W);
    for (int q = 0; q < s[0] * s[1]; q++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                double m = -INFINITY;
                for (int u = 0; u < k; u++)
                    for (int v = 0; v < k; v++) m = fmax(m, p->in[0][((size_t)q * H + i * S + u) * W + j * S + v]);
                out[0][((size_t)q * Ho + i) * Wo + j] = m;
            }
}

const opdef OP_POOL2D = {"max_pool2d", p2_init, p2_fwd, p2_bwd, p2_ref, NULL};
