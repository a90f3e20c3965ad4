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

/* ---- The glimpse sensor (nn/glimpse.c): s = B, C, H, W, size, scales. Locations cycle through
 * the centre, a corner, inside, a patch partly and one entirely outside the image. -------- */

static const float GL_LOC[6][2] = {{0, 0}, {-1, -1}, {0.37f, -0.58f}, {0.95f, 0.2f}, {-1.4f, 1.2f}, {3, -3}};

static void gl_init(prob *p) {
    const int *s = p->r->s;
    add_in(p, "img", (size_t)s[0] * s[1] * s[2] * s[3], 1.0f, 2);
    p->aux = malloc(2 * (size_t)s[0] * sizeof(float));
    for (int b = 0; b < s[0]; b++) p->aux[2 * b] = GL_LOC[b % 6][0], p->aux[2 * b + 1] = GL_LOC[b % 6][1];
    add_out(p, (size_t)s[0] * s[5] * s[1] * s[4] * s[4]);
    p->nloss = 1;
}

static int gl_fwd(prob *p) {
    const int *s = p->r->s;
    return attn_glimpse_forward(p->out[0], p->in[0], p->aux, s[0], s[1], s[2], s[3], s[4], s[5]);
}

static int gl_bwd(prob *p, float *const *dout) {
    const int *s = p->r->s;
    return attn_glimpse_backward(p->g[0], dout[0], p->aux, s[0], s[1], s[2], s[3], s[4], s[5]);
}

/* The header's definition, pixel by pixel: centre floor((l + 1) / 2 n), scale i the side
 * g 2^i from centre - side / 2, each output the mean of its 2^i x 2^i block (0 outside). */
static void gl_ref(const prob *p, double *const *out) {
    const int *s = p->r->s;
    int B = s[0], C = s[1], H = s[2], W = s[3], g = s[4], k = s[5];
    for (int b = 0; b < B; b++) {
        int cr = (int)floor((p->aux[2 * b] + 1.0) / 2 * H), cc = (int)floor((p->aux[2 * b + 1] + 1.0) / 2 * W);
        for (int i = 0; i < k; i++)
            for (int c = 0; c < C; c++)
                for (int r = 0; r < g; r++)
                    for (int q = 0; q < g; q++) {
                        int f = 1 << i, side = g * f;
                        double sum = 0;
                        for (int u = 0; u < f; u++)
                            for (int v = 0; v < f; v++) {
                                int h = cr - side / 2 + r * f + u, w = cc - side / 2 + q * f + v;
                                if (h >= 0 && h < H && w >= 0 && w < W) sum += p->in[0][(((size_t)b * C + c) * H + h) * W + w];
                            }
                        out[0][((((size_t)b * k + i) * C + c) * g + r) * g + q] = sum / (f * f);
                    }
    }
}

const opdef OP_GLIMPSE = {"glimpse", gl_init, gl_fwd, gl_bwd, gl_ref, NULL};
