/* The 2-D convolution over a batch of images (LeCun's convolutional layer, the baselines of Mnih
 * et al. 2014): its one forward and one backward (llm.c style, raw pointers), as
 * torch.nn.functional.conv2d with one group, dilation 1, the same stride and zero padding on
 * both axes, in PyTorch's NCHW layout: x (B, Cin, H, W), weights (Cout, Cin, KH, KW), y (B,
 * Cout, Ho, Wo). The public attn_conv2d_* (attn/layers.h) and the autograd tape
 * (autograd/ops_conv.c) run this code. Not here: dilation, groups, asymmetric padding.
 *
 * Letters: B images, Cin/Cout channels, H x W the image, KH x KW the filter, S the stride, P
 * the padding, Ho = (H + 2P - KH) / S + 1 and Wo likewise (floor), N = Ho Wo the outputs of
 * one channel, R = Cin KH KW the rows of the unfolded image.
 *
 * The math: y[b, o, i, j] = bias[o] + sum_{c, u, v} W[o, c, u, v] x[b, c, i S + u - P, j S + v - P]
 * (x = 0 outside the image), computed per image as one matrix product on the unfolded image
 * ("im2col"): col (R, N), col[(c KH + u) KW + v, i Wo + j] = x[b, c, i S + u - P, j S + v - P],
 *   y_b (Cout, N) = W (Cout, R) col + bias
 * and backward
 *   dcol (R, N) = W^T dy_b, folded back into dx_b (col2im: each entry added where it came from)
 *   dW (Cout, R) += dy_b col^T,  db[o] += sum of dy_b's row o
 * on the kernel table's sgemm. Images run in parallel, one task each (the products serially
 * on that thread, each thread with its own col in the work memory); the backward's tasks are
 * fixed groups of CONV2D_GROUP images whose weight and bias gradients go to a partial sum per
 * group, added in group order at the end. So the bits do not depend on the thread count. */
#include <string.h>

#include "attn/layers.h"
#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/nn_internal.h"

enum { CONV2D_GROUP = 4 }; /* images per backward task */

int attn_conv2d_out_size(int H, int K, int stride, int pad) {
    if (stride < 1 || H + 2 * pad < K) return 0;
    return (H + 2 * pad - K) / stride + 1;
}

size_t attn__conv2d_work_floats(const attn__conv2d_shape *s, int backward) {
    size_t R = (size_t)s->Cin * s->KH * s->KW, N = (size_t)s->Ho * s->Wo, threads = (size_t)attn__max_threads();
    if (!backward) return threads * R * N;
    size_t groups = ((size_t)s->B + CONV2D_GROUP - 1) / CONV2D_GROUP;
    return threads * 2 * R * N + groups * ((size_t)s->Cout * R + s->Cout);
}

/* col (R, N) of image x (Cin, H, W): the unfolded image, zeros where a filter tap falls in the
 * padding. */
static void im2col(float *col, const float *x, const attn__conv2d_shape *s) {
    int Ho = s->Ho, Wo = s->Wo, S = s->stride, P = s->pad, H = s->H, W = s->W;
    for (int c = 0; c < s->Cin; c++)
        for (int u = 0; u < s->KH; u++)
            for (int v = 0; v < s->KW; v++) {
                float *r = col + ((size_t)(c * s->KH + u) * s->KW + v) * Ho * Wo;
                /* output columns j whose input column j S + v - P lies in [0, W): [j0, j1) */
                int j0 = P - v > 0 ? (P - v + S - 1) / S : 0, j1 = W + P - v > 0 ? (W + P - v + S - 1) / S : 0;
                if (j1 > Wo) j1 = Wo;
                if (j0 > j1) j0 = j1;
                for (int i = 0; i < Ho; i++, r += Wo) {
                    int h = i * S + u - P;
                    if (h < 0 || h >= H) {
                        memset(r, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *xr = x + ((size_t)c * H + h) * W; /* row h of channel c */
                    for (int j = 0; j < j0; j++) r[j] = 0.0f;
                    if (S == 1) memcpy(r + j0, xr + j0 + v - P, (size_t)(j1 - j0) * sizeof(float));
                    else
                        for (int j = j0; j < j1; j++) r[j] = xr[j * S + v - P];
                    for (int j = j1; j < Wo; j++) r[j] = 0.0f;
                }
            }
}

/* d[j] += s[j] for j < n, over distinct arrays (vectorised). */
static void add_row(float *restrict d, const float *restrict s, int n) {
    for (int j = 0; j < n; j++) d[j] += s[j];
}

/* dx (Cin, H, W) += dcol (R, N) folded back (the adjoint of im2col), in a fixed order. */
static void col2im(float *dx, const float *dcol, const attn__conv2d_shape *s) {
    int Ho = s->Ho, Wo = s->Wo, S = s->stride, P = s->pad, H = s->H, W = s->W;
    for (int c = 0; c < s->Cin; c++)
        for (int u = 0; u < s->KH; u++)
            for (int v = 0; v < s->KW; v++) {
                const float *r = dcol + ((size_t)(c * s->KH + u) * s->KW + v) * Ho * Wo;
                int j0 = P - v > 0 ? (P - v + S - 1) / S : 0, j1 = W + P - v > 0 ? (W + P - v + S - 1) / S : 0;
                if (j1 > Wo) j1 = Wo;
                for (int i = 0; i < Ho; i++, r += Wo) {
                    int h = i * S + u - P;
                    if (h < 0 || h >= H) continue;
                    float *dr = dx + ((size_t)c * H + h) * W; /* row h of channel c */
                    if (S == 1) add_row(dr + j0 + v - P, r + j0, j1 - j0);
                    else
                        for (int j = j0; j < j1; j++) dr[j * S + v - P] += r[j];
                }
            }
}

typedef struct {
    const attn__conv2d_shape *s;
    float *y, *dx, *dW, *db, *work;
    const float *x, *W, *b, *dy;
    int dx_acc;
    size_t slots; /* the threads' cols: attn__max_threads() when the work was sized */
} conv2d_job;

static size_t in_floats(const attn__conv2d_shape *s) { return (size_t)s->Cin * s->H * s->W; }
static size_t out_floats(const attn__conv2d_shape *s) { return (size_t)s->Cout * s->Ho * s->Wo; }
static int rows(const attn__conv2d_shape *s) { return s->Cin * s->KH * s->KW; }

/* Forward of image b on this thread's col. */
static void fwd_task(void *ctx, int b, int thread) {
    const conv2d_job *j = ctx;
    const attn__conv2d_shape *s = j->s;
    int R = rows(s), N = s->Ho * s->Wo;
    float *col = j->work + (size_t)thread * R * N, *y = j->y + (size_t)b * out_floats(s); /* (Cout, N) */
    im2col(col, j->x + (size_t)b * in_floats(s), s);
    for (int o = 0; j->b && o < s->Cout; o++)
        for (int n = 0; n < N; n++) y[(size_t)o * N + n] = j->b[o];
    /* y_b (Cout, N) (+)= W (Cout, R) col (R, N) */
    attn__kern()->sgemm(0, 0, s->Cout, N, R, 1.0f, j->W, R, col, N, j->b ? 1.0f : 0.0f, y, N);
}

void attn__conv2d_forward(float *y, const float *x, const float *W, const float *b, const attn__conv2d_shape *s,
                          float *work) {
    if (s->B < 1) return;
    conv2d_job j = {.s = s, .y = y, .x = x, .W = W, .b = b, .work = work};
    attn__parallel(s->B, fwd_task, &j);
}

/* Backward of the images of group g: dx of each, and the group's partial dW and db. */
static void bwd_task(void *ctx, int g, int thread) {
    const conv2d_job *j = ctx;
    const attn__conv2d_shape *s = j->s;
    int R = rows(s), N = s->Ho * s->Wo, Cout = s->Cout;
    size_t groups = ((size_t)s->B + CONV2D_GROUP - 1) / CONV2D_GROUP;
    float *col = j->work + (size_t)thread * 2 * R * N, *dcol = col + (size_t)R * N;
    float *pW = j->work + j->slots * 2 * R * N + (size_t)g * Cout * R; /* (Cout, R) */
    float *pb = j->work + j->slots * 2 * R * N + groups * Cout * R + (size_t)g * Cout;
    int b0 = g * CONV2D_GROUP, b1 = b0 + CONV2D_GROUP < s->B ? b0 + CONV2D_GROUP : s->B;
    for (int b = b0; b < b1; b++) {
        const float *dy = j->dy + (size_t)b * out_floats(s); /* (Cout, N) */
        if (j->dW) { /* dW (Cout, R) += dy_b (Cout, N) col^T (N, R) */
            im2col(col, j->x + (size_t)b * in_floats(s), s);
            attn__kern()->sgemm(0, 1, Cout, R, N, 1.0f, dy, N, col, N, b > b0 ? 1.0f : 0.0f, pW, R);
        }
        for (int o = 0; j->db && o < Cout; o++) /* db[o] += the sum of dy_b's row o (in double) */
            pb[o] = (b > b0 ? pb[o] : 0.0f) + (float)attn__kern()->sum_f64(dy + (size_t)o * N, N);
        if (j->dx) { /* dcol (R, N) = W^T (R, Cout) dy_b (Cout, N), folded into dx_b */
            float *dx = j->dx + (size_t)b * in_floats(s);
            attn__kern()->sgemm(1, 0, R, N, Cout, 1.0f, j->W, R, dy, N, 0.0f, dcol, N);
            if (!j->dx_acc) memset(dx, 0, in_floats(s) * sizeof(float));
            col2im(dx, dcol, s);
        }
    }
}

/* out (n) (+)= the sum of the groups' partials part (groups, n), in group order. */
static void add_partials(float *out, int acc, const float *part, size_t groups, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float t = acc ? out[i] : 0.0f;
        for (size_t g = 0; g < groups; g++) t += part[g * n + i];
        out[i] = t;
    }
}

void attn__conv2d_backward(float *dx, int dx_acc, float *dW, int dW_acc, float *db, int db_acc, const float *dy,
                           const float *x, const float *W, const attn__conv2d_shape *s, float *work) {
    size_t R = (size_t)rows(s), groups = ((size_t)s->B + CONV2D_GROUP - 1) / CONV2D_GROUP;
    if (s->B < 1) { /* no images: the gradients of W and b are zero */
        if (dW && !dW_acc) memset(dW, 0, (size_t)s->Cout * R * sizeof(float));
        if (db && !db_acc) memset(db, 0, (size_t)s->Cout * sizeof(float));
        return;
    }
    conv2d_job j = {.s = s, .dx = dx, .dW = dW, .db = db, .work = work, .x = x, .W = W, .dy = dy, .dx_acc = dx_acc,
                    .slots = (size_t)attn__max_threads()};
    attn__parallel((int)groups, bwd_task, &j);
    float *part = work + j.slots * 2 * R * s->Ho * s->Wo;
    if (dW) add_partials(dW, dW_acc, part, groups, (size_t)s->Cout * R);
    if (db) add_partials(db, db_acc, part + groups * s->Cout * R, groups, (size_t)s->Cout);
}

/* ---- Public entry points (attn/layers.h) ----------------------------------------------------- */

int attn__conv2d_check(const char *what, attn__conv2d_shape *s) {
    if (s->B < 0 || s->Cin < 1 || s->H < 1 || s->W < 1 || s->Cout < 1 || s->KH < 1 || s->KW < 1 || s->stride < 1 ||
        s->pad < 0)
        return attn__error(ATTN_EINVAL,
                           "%s: bad shape B %d, Cin %d, H %d, W %d, Cout %d, KH %d, KW %d, stride %d, pad %d", what,
                           s->B, s->Cin, s->H, s->W, s->Cout, s->KH, s->KW, s->stride, s->pad);
    if ((int64_t)s->H * s->W > INT32_MAX || (int64_t)s->Cin * s->KH * s->KW > INT32_MAX ||
        s->H + 2 * (int64_t)s->pad > INT32_MAX || s->W + 2 * (int64_t)s->pad > INT32_MAX)
        return attn__error(ATTN_EINVAL, "%s: a %dx%d image with %d channels, %dx%d filters and padding %d is too large",
                           what, s->H, s->W, s->Cin, s->KH, s->KW, s->pad);
    s->Ho = attn_conv2d_out_size(s->H, s->KH, s->stride, s->pad);
    s->Wo = attn_conv2d_out_size(s->W, s->KW, s->stride, s->pad);
    if (s->Ho < 1 || s->Wo < 1)
        return attn__error(ATTN_ESHAPE, "%s: a %dx%d filter with padding %d gives no output on a %dx%d image", what,
                           s->KH, s->KW, s->pad, s->H, s->W);
    return ATTN_OK;
}

int attn_conv2d_forward(float *y, const float *x, const float *W, const float *b, int B, int Cin, int H, int Wd,
                        int Cout, int KH, int KW, int stride, int pad) {
    if (!y || !x || !W) return attn__error(ATTN_EINVAL, "conv2d: NULL y, x or W");
    attn__conv2d_shape s = {B, Cin, H, Wd, Cout, KH, KW, stride, pad, 0, 0};
    int st = attn__conv2d_check("conv2d", &s);
    if (st) return st;
    float *work = attn_malloc(attn__conv2d_work_floats(&s, 0) * sizeof(float));
    if (!work) return attn__error(ATTN_ENOMEM, "conv2d: out of memory");
    attn__conv2d_forward(y, x, W, b, &s, work);
    attn_free(work);
    return ATTN_OK;
}

int attn_conv2d_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W, int B,
                         int Cin, int H, int Wd, int Cout, int KH, int KW, int stride, int pad) {
    if (!dy || (dx && !W) || (dW && !x)) return attn__error(ATTN_EINVAL, "conv2d backward: NULL dy, x or W");
    attn__conv2d_shape s = {B, Cin, H, Wd, Cout, KH, KW, stride, pad, 0, 0};
    int st = attn__conv2d_check("conv2d backward", &s);
    if (st) return st;
    float *work = attn_malloc(attn__conv2d_work_floats(&s, 1) * sizeof(float));
    if (!work) return attn__error(ATTN_ENOMEM, "conv2d backward: out of memory");
    attn__conv2d_backward(dx, 1, dW, 1, db, 1, dy, x, W, &s, work);
    attn_free(work);
    return ATTN_OK;
}
