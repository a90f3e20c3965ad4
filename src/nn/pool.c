/* Pooling over time with per-sequence lengths: max-over-time (Collobert et al. 2011, Kim 2014:
 * each feature map's largest value) and the masked mean (the bag of embeddings), their one
 * forward and one backward each (llm.c style, raw pointers). The public attn_*_pool_time_*
 * (attn/layers.h) and the autograd tape (autograd/ops_conv.c) run this code. Not here:
 * pooling windows, k-max pooling, attention pooling (an attention op).
 *
 * Letters: B sequences, T positions, C channels; L_b = lengths[b] (all T when lengths is NULL)
 * the real positions of sequence b: positions t >= L_b are never read, and an empty sequence
 * (L_b = 0) pools to 0 with no gradient.
 *
 * And max pooling over images (2-D windows of k x k every `stride` pixels, no padding, floor
 * mode, as torch.nn.functional.max_pool2d) for the convolutional baselines of the Recurrent
 * Attention Model: planes (B C of them, H x W) run in parallel, each in a fixed order. */
#include <math.h>
#include <string.h>

#include "attn/layers.h"
#include "core/internal.h"
#include "nn/nn_internal.h"

void attn__max_pool_time_forward(float *y, int32_t *arg, const float *x, const int32_t *lengths, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        int L = lengths ? lengths[b] : T;
        const float *xb = x + (size_t)b * T * C; /* (T, C) */
        for (int c = 0; c < C; c++) {
            /* y[b, c] = max over t < L of x[b, t, c]: the first of equal maxima, the first NaN */
            int best = L > 0 ? 0 : -1;
            for (int t = 1; t < L && !isnan(xb[(size_t)best * C + c]); t++) {
                float v = xb[(size_t)t * C + c];
                if (v > xb[(size_t)best * C + c] || isnan(v)) best = t;
            }
            y[(size_t)b * C + c] = best >= 0 ? xb[(size_t)best * C + c] : 0.0f;
            arg[(size_t)b * C + c] = best;
        }
    }
}

void attn__max_pool_time_backward(float *dx, int acc, const float *dy, const int32_t *arg, int B, int T, int C) {
    if (!acc) memset(dx, 0, (size_t)B * T * C * sizeof(float));
    /* forward: y[b, c] = x[b, arg[b, c], c]  =>  dx[b, arg[b, c], c] += dy[b, c] */
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            int t = arg[(size_t)b * C + c];
            if (t >= 0) dx[((size_t)b * T + t) * C + c] += dy[(size_t)b * C + c];
        }
}

void attn__mean_pool_time_forward(float *y, const float *x, const int32_t *lengths, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        int L = lengths ? lengths[b] : T;
        const float *xb = x + (size_t)b * T * C; /* (T, C) */
        for (int c = 0; c < C; c++) {
            /* y[b, c] = (1 / L) sum over t < L of x[b, t, c], summed in double in order */
            double s = 0;
            for (int t = 0; t < L; t++) s += xb[(size_t)t * C + c];
            y[(size_t)b * C + c] = L > 0 ? (float)(s / L) : 0.0f;
        }
    }
}

void attn__mean_pool_time_backward(float *dx, int acc, const float *dy, const int32_t *lengths, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        int L = lengths ? lengths[b] : T;
        for (int t = 0; t < T; t++) {
            /* forward: y[b, c] = (1 / L) sum_{t < L} x[b, t, c]  =>  dx[b, t, c] += dy[b, c] / L for t < L */
            float *d = dx + ((size_t)b * T + t) * C;
            const float *g = dy + (size_t)b * C;
            for (int c = 0; c < C; c++) {
                float v = t < L ? g[c] / (float)L : 0.0f;
                d[c] = acc ? d[c] + v : v;
            }
        }
    }
}

/* ---- Max pooling over images ---------------------------------------------------------------- */

typedef struct {
    float *y, *dx;
    int32_t *arg;
    const float *x, *dy;
    const int32_t *carg;
    int P, H, W, k, S, Ho, Wo, acc;
} pool2d_job;

enum { POOL2D_PLANES = 16 }; /* planes per task */

/* Whether t replaces the maximum so far m: larger, or the first NaN (t != t; nothing replaces
 * a NaN). */
static inline int wins(float t, float m) { return (t > m) | ((t != t) & (m == m)); }

/* *m, *a = t, at when t wins, as masks rather than branches (which element wins is data, so a
 * branch would be mispredicted half the time). */
static inline void take_max(float *m, int32_t *a, float t, int32_t at) {
    union { float f; uint32_t u; } mu = {*m}, tu = {t};
    uint32_t k = 0u - (uint32_t)wins(t, *m);
    mu.u = (mu.u & ~k) | (tu.u & k);
    *m = mu.f, *a = (int32_t)(((uint32_t)*a & ~k) | ((uint32_t)at & k));
}

/* One output row of 2 x 2 windows every 2 pixels: x0 the windows' first input row (at index
 * at0 in the plane), W the plane's width. */
static void pool_row_2x2(float *restrict y, int32_t *restrict arg, const float *restrict x0, int W, int Wo, int at0) {
    const float *x1 = x0 + W;
    for (int q = 0; q < Wo; q++) {
        float m = x0[2 * q];
        int32_t a = at0 + 2 * q;
        take_max(&m, &a, x0[2 * q + 1], a + 1);
        take_max(&m, &a, x1[2 * q], at0 + 2 * q + W);
        take_max(&m, &a, x1[2 * q + 1], at0 + 2 * q + W + 1);
        y[q] = m, arg[q] = a;
    }
}

static void pool2d_fwd_task(void *ctx, int task, int thread) {
    (void)thread;
    const pool2d_job *j = ctx;
    int W = j->W, S = j->S, k = j->k;
    size_t no = (size_t)j->Ho * j->Wo;
    for (int p = task * POOL2D_PLANES; p < (task + 1) * POOL2D_PLANES && p < j->P; p++) {
        const float *x = j->x + (size_t)p * j->H * W; /* (H, W) */
        float *y = j->y + (size_t)p * no;
        int32_t *arg = j->arg + (size_t)p * no;
        for (int i = 0; i < j->Ho; i++, y += j->Wo, arg += j->Wo) {
            /* the max over the k x k window at (i S, q S) for every q at once, the window's
             * elements in row-major order (u, v): the first of equal maxima, the first NaN
             * (t != t; nothing replaces a NaN); without branches, since which element wins is
             * data, and with the outputs of a row independent of each other */
            const float *xr = x + (size_t)i * S * W;
            if (k == 2 && S == 2) { /* the common case, the same comparisons unrolled */
                pool_row_2x2(y, arg, xr, W, j->Wo, 2 * i * W);
                continue;
            }
            for (int q = 0; q < j->Wo; q++) y[q] = xr[q * S], arg[q] = i * S * W + q * S;
            for (int u = 0; u < k; u++)
                for (int v = u ? 0 : 1; v < k; v++) {
                    const float *xu = xr + (size_t)u * W + v;
                    int at0 = (i * S + u) * W + v;
                    for (int q = 0; q < j->Wo; q++) take_max(y + q, arg + q, xu[q * S], at0 + q * S);
                }
        }
    }
}

static void pool2d_bwd_task(void *ctx, int task, int thread) {
    (void)thread;
    const pool2d_job *j = ctx;
    size_t n = (size_t)j->H * j->W, no = (size_t)j->Ho * j->Wo;
    for (int p = task * POOL2D_PLANES; p < (task + 1) * POOL2D_PLANES && p < j->P; p++) {
        float *dx = j->dx + (size_t)p * n;
        if (!j->acc) memset(dx, 0, n * sizeof(float));
        /* forward: y[o] = x[arg[o]]  =>  dx[arg[o]] += dy[o], o in order */
        for (size_t o = 0; o < no; o++) dx[j->carg[(size_t)p * no + o]] += j->dy[(size_t)p * no + o];
    }
}

void attn__max_pool2d_forward(float *y, int32_t *arg, const float *x, int P, int H, int W, int k, int stride) {
    pool2d_job j = {.y = y, .arg = arg, .x = x, .P = P, .H = H, .W = W, .k = k, .S = stride,
                    .Ho = attn_conv2d_out_size(H, k, stride, 0), .Wo = attn_conv2d_out_size(W, k, stride, 0)};
    attn__parallel((P + POOL2D_PLANES - 1) / POOL2D_PLANES, pool2d_fwd_task, &j);
}

void attn__max_pool2d_backward(float *dx, int acc, const float *dy, const int32_t *arg, int P, int H, int W, int k,
                               int stride) {
    pool2d_job j = {.dx = dx, .dy = dy, .carg = arg, .P = P, .H = H, .W = W, .k = k, .S = stride, .acc = acc,
                    .Ho = attn_conv2d_out_size(H, k, stride, 0), .Wo = attn_conv2d_out_size(W, k, stride, 0)};
    attn__parallel((P + POOL2D_PLANES - 1) / POOL2D_PLANES, pool2d_bwd_task, &j);
}

/* ---- Public entry points (attn/layers.h) ----------------------------------------------------- */

static int check_args(const char *what, const int32_t *lengths, int B, int T, int C) {
    if (B < 0 || T < 1 || C < 1) return attn__error(ATTN_EINVAL, "%s: bad shape B %d, T %d, C %d", what, B, T, C);
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T)
            return attn__error(ATTN_EINVAL, "%s: lengths[%d] = %d is outside [0, %d]", what, b, (int)lengths[b], T);
    return ATTN_OK;
}

int attn_max_pool_time_forward(float *y, int32_t *argmax, const float *x, const int32_t *lengths, int B, int T, int C) {
    if (!y || !argmax || !x) return attn__error(ATTN_EINVAL, "max_pool_time: NULL y, argmax or x");
    int st = check_args("max_pool_time", lengths, B, T, C);
    if (!st) attn__max_pool_time_forward(y, argmax, x, lengths, B, T, C);
    return st;
}

int attn_max_pool_time_backward(float *dx, const float *dy, const int32_t *argmax, int B, int T, int C) {
    if (!dx || !dy || !argmax) return attn__error(ATTN_EINVAL, "max_pool_time backward: NULL dx, dy or argmax");
    int st = check_args("max_pool_time backward", NULL, B, T, C);
    for (size_t i = 0; !st && i < (size_t)B * C; i++)
        if (argmax[i] < -1 || argmax[i] >= T)
            st = attn__error(ATTN_EINVAL, "max_pool_time backward: argmax[%zu] = %d is outside [-1, %d)", i,
                             (int)argmax[i], T);
    if (!st) attn__max_pool_time_backward(dx, 1, dy, argmax, B, T, C);
    return st;
}

int attn_mean_pool_time_forward(float *y, const float *x, const int32_t *lengths, int B, int T, int C) {
    if (!y || !x) return attn__error(ATTN_EINVAL, "mean_pool_time: NULL y or x");
    int st = check_args("mean_pool_time", lengths, B, T, C);
    if (!st) attn__mean_pool_time_forward(y, x, lengths, B, T, C);
    return st;
}

int attn_mean_pool_time_backward(float *dx, const float *dy, const int32_t *lengths, int B, int T, int C) {
    if (!dx || !dy) return attn__error(ATTN_EINVAL, "mean_pool_time backward: NULL dx or dy");
    int st = check_args("mean_pool_time backward", lengths, B, T, C);
    if (!st) attn__mean_pool_time_backward(dx, 1, dy, lengths, B, T, C);
    return st;
}

static int check_pool2d(const char *what, int B, int C, int H, int W, int k, int stride) {
    if (B < 0 || C < 1 || H < 1 || W < 1 || k < 1 || stride < 1 || k > H || k > W)
        return attn__error(ATTN_EINVAL,
                           "%s: bad shape B %d, C %d, H %d, W %d, kernel %d, stride %d (1 <= kernel <= H, W)", what, B,
                           C, H, W, k, stride);
    if ((int64_t)B * C > INT32_MAX || (int64_t)H * W > INT32_MAX)
        return attn__error(ATTN_EINVAL, "%s: %d x %d planes of %d x %d are too many or too large", what, B, C, H, W);
    return ATTN_OK;
}

int attn_max_pool2d_forward(float *y, int32_t *argmax, const float *x, int B, int C, int H, int W, int k, int stride) {
    if (!y || !argmax || !x) return attn__error(ATTN_EINVAL, "max_pool2d: NULL y, argmax or x");
    int st = check_pool2d("max_pool2d", B, C, H, W, k, stride);
    if (!st) attn__max_pool2d_forward(y, argmax, x, B * C, H, W, k, stride);
    return st;
}

int attn_max_pool2d_backward(float *dx, const float *dy, const int32_t *argmax, int B, int C, int H, int W, int k,
                             int stride) {
    if (!dx || !dy || !argmax) return attn__error(ATTN_EINVAL, "max_pool2d backward: NULL dx, dy or argmax");
    int st = check_pool2d("max_pool2d backward", B, C, H, W, k, stride);
    int Ho = attn_conv2d_out_size(H, k, stride, 0), Wo = attn_conv2d_out_size(W, k, stride, 0);
    for (size_t i = 0; !st && i < (size_t)B * C * Ho * Wo; i++)
        if (argmax[i] < 0 || argmax[i] >= H * W)
            st = attn__error(ATTN_EINVAL, "max_pool2d backward: argmax[%zu] = %d is outside the %dx%d plane", i,
                             (int)argmax[i], H, W);
    if (!st) attn__max_pool2d_backward(dx, 1, dy, argmax, B * C, H, W, k, stride);
    return st;
}
