/* The glimpse sensor of the Recurrent Attention Model (Mnih, Heess, Graves, Kavukcuoglu 2014,
 * section 3.1): around a location, `scales` square patches, each twice the side of the one
 * before, each averaged down to size x size; its one forward and one backward (llm.c style,
 * raw pointers). The public attn_glimpse_* (attn/layers.h) and the autograd tape
 * (autograd/ops_conv.c) run this code. The geometry (which pixels a patch covers) is in
 * attn/layers.h; attn_glimpse_box computes it, and everything here goes through it.
 *
 * Letters: B images, C channels, H x W pixels, g the output side (`size`), k the scales; scale
 * i has the factor f = 2^i and covers the side s = g f from (top, left) = attn_glimpse_box.
 *
 * The math: y[b, i C + c, r, q] = (1 / f^2) sum_{u, v < f} img[b, c, top + r f + u, left + q f + v]
 * (img = 0 outside the image), each block summed in double in row-major order; backward
 * dimg[b, c, top + r f + u, left + q f + v] += dy[b, i C + c, r, q] / f^2 for the pixels inside
 * the image. Images run in parallel, each in a fixed order: the same bits for any thread
 * count. */
#include <math.h>
#include <string.h>

#include "attn/layers.h"
#include "core/internal.h"
#include "nn/nn_internal.h"

/* The pixel index of coordinate l in [-1, 1] over n pixels: floor((l + 1) / 2 n), kept within
 * 2^30 (where every patch is outside any image anyway: sides are at most 2^16). */
static int centre(float l, int n) {
    double c = floor(((double)l + 1.0) * 0.5 * n);
    return c < -(double)(1 << 30) ? -(1 << 30) : c > (double)(1 << 30) ? (1 << 30) : (int)c;
}

void attn_glimpse_box(const float *loc, int H, int W, int size, int scale, int *top, int *left, int *side) {
    int s = size << scale;
    *side = s;
    *top = centre(loc[0], H) - s / 2;
    *left = centre(loc[1], W) - s / 2;
}

typedef struct {
    float *y, *dimg;
    const float *img, *dy, *loc;
    int C, H, W, g, k, acc;
} glimpse_job;

/* The input rows [*u0, *u1) of block row r (f rows from top + r f) that lie in [0, H). */
static void span(int top, int r, int f, int H, int *u0, int *u1) {
    int a = top + r * f, b = a + f;
    *u0 = a < 0 ? 0 : a > H ? H : a;
    *u1 = b < 0 ? 0 : b > H ? H : b;
}

/* Image b, forward (y = each block's mean) or backward (dimg += dy / f^2 over each block). */
static void glimpse_task(void *ctx, int b, int thread) {
    (void)thread;
    const glimpse_job *j = ctx;
    int C = j->C, H = j->H, W = j->W, g = j->g, bwd = j->dimg != NULL;
    if (bwd && !j->acc) memset(j->dimg + (size_t)b * C * H * W, 0, (size_t)C * H * W * sizeof(float));
    for (int i = 0; i < j->k; i++) {
        int top, left, side, f = 1 << i;
        attn_glimpse_box(j->loc + 2 * (size_t)b, H, W, g, i, &top, &left, &side);
        double inv = 1.0 / ((double)f * f);
        for (int c = 0; c < C; c++) {
            size_t xo = ((size_t)b * C + c) * H * W, yo = (((size_t)b * j->k + i) * C + c) * g * g; /* (H, W), (g, g) */
            for (int r = 0; r < g; r++) {
                int h0, h1;
                span(top, r, f, H, &h0, &h1);
                for (int q = 0; q < g; q++) {
                    int w0, w1;
                    span(left, q, f, W, &w0, &w1);
                    if (bwd) {
                        float d = j->dy[yo + r * g + q] * (float)inv;
                        for (int h = h0; h < h1; h++)
                            for (int w = w0; w < w1; w++) j->dimg[xo + (size_t)h * W + w] += d;
                    } else {
                        double s = 0;
                        for (int h = h0; h < h1; h++)
                            for (int w = w0; w < w1; w++) s += j->img[xo + (size_t)h * W + w];
                        j->y[yo + r * g + q] = (float)(s * inv);
                    }
                }
            }
        }
    }
}

void attn__glimpse_forward(float *y, const float *img, const float *loc, int B, int C, int H, int W, int size,
                           int scales) {
    glimpse_job j = {.y = y, .img = img, .loc = loc, .C = C, .H = H, .W = W, .g = size, .k = scales};
    attn__parallel(B, glimpse_task, &j);
}

void attn__glimpse_backward(float *dimg, int acc, const float *dy, const float *loc, int B, int C, int H, int W,
                            int size, int scales) {
    glimpse_job j = {.dimg = dimg, .dy = dy, .loc = loc, .C = C, .H = H, .W = W, .g = size, .k = scales, .acc = acc};
    attn__parallel(B, glimpse_task, &j);
}

/* ---- Public entry points (attn/layers.h) ----------------------------------------------------- */

int attn__glimpse_check(const char *what, const float *loc, int B, int C, int H, int W, int size, int scales) {
    if (B < 0 || C < 1 || H < 1 || W < 1 || size < 1 || scales < 1 || scales > 16 ||
        (int64_t)size << (scales - 1) > 65536)
        return attn__error(ATTN_EINVAL,
                           "%s: bad shape B %d, C %d, H %d, W %d, size %d, scales %d (size 2^(scales-1) <= 65536)",
                           what, B, C, H, W, size, scales);
    for (int i = 0; i < 2 * B; i++)
        if (!isfinite(loc[i]))
            return attn__error(ATTN_EINVAL, "%s: location %d of image %d is not finite", what, i % 2, i / 2);
    return ATTN_OK;
}

int attn_glimpse_forward(float *y, const float *img, const float *loc, int B, int C, int H, int W, int size,
                         int scales) {
    if (!y || !img || !loc) return attn__error(ATTN_EINVAL, "glimpse: NULL y, img or loc");
    int st = attn__glimpse_check("glimpse", loc, B, C, H, W, size, scales);
    if (!st) attn__glimpse_forward(y, img, loc, B, C, H, W, size, scales);
    return st;
}

int attn_glimpse_backward(float *dimg, const float *dy, const float *loc, int B, int C, int H, int W, int size,
                          int scales) {
    if (!dimg || !dy || !loc) return attn__error(ATTN_EINVAL, "glimpse backward: NULL dimg, dy or loc");
    int st = attn__glimpse_check("glimpse backward", loc, B, C, H, W, size, scales);
    if (!st) attn__glimpse_backward(dimg, 1, dy, loc, B, C, H, W, size, scales);
    return st;
}
