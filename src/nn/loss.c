/* Softmax and log-softmax over the last axis, and cross-entropy from logits (with class
 * weights, ignore_index and label smoothing, as torch.nn.functional.cross_entropy), forward
 * and backward. This is the one implementation: the public functions run it over all rows,
 * the autograd tape over fixed blocks of rows in parallel. Sums accumulate in double;
 * exponentials use attn__expf (kernels/row_kernels.h). The loops over a row's elements (its
 * maximum, sums, exponentials) are the kernel table's row ops, with the same bits on every
 * path. Cross-entropy keeps only each row's log-sum-exp for its backward, not the (R, C)
 * probabilities.
 * Letters: R (N in the API) rows, C the last axis (classes).
 * Not here: probabilities as targets (soft labels), the multi-head attention softmax (that
 * one is fused into the attention kernels). */
#include "attn/layers.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/nn_internal.h"

/* ---- softmax, log-softmax -------------------------------------------------------------- */

void attn__softmax_forward(float *out, const float *inp, int64_t R, int64_t C, int logsm) {
    const attn__kernels *k = attn__kern();
    for (int64_t r = 0; r < R; r++) {
        const float *x = inp + r * C; // (C)
        float *y = out + r * C;       // (C)
        float mx = k->row_max(x, C);
        if (mx != mx) { /* a NaN in the row */
            for (int64_t j = 0; j < C; j++) y[j] = NAN;
            continue;
        }
        if (mx == -INFINITY) { /* every entry -inf */
            for (int64_t j = 0; j < C; j++) y[j] = logsm ? -INFINITY : 0.0f;
            continue;
        }
        if (logsm) {
            double lse = mx + log(k->exp_sum(NULL, x, mx, C)); /* in double: exact for large |x| */
            for (int64_t j = 0; j < C; j++) y[j] = (float)(x[j] - lse);
        } else {
            float inv = (float)(1.0 / k->exp_sum(y, x, mx, C));
            for (int64_t j = 0; j < C; j++) y[j] *= inv;
        }
    }
}

void attn__softmax_backward(float *dinp, const float *out, const float *dout, int64_t R, int64_t C, int logsm,
                            int accumulate) {
    const attn__kernels *k = attn__kern();
    for (int64_t r = 0; r < R; r++) {
        const float *y = out + r * C, *dy = dout + r * C; // (C)
        float *dx = dinp + r * C;                         // (C)
        if (logsm) {
            /* forward: y = x - lse  ->  dx = dy - exp(y) * sum(dy) */
            k->logsm_bwd_row(dx, y, dy, (float)k->sum_f64(dy, C), C, accumulate);
        } else {
            /* forward: y = exp(x - max) / sum  ->  dx = y * (dy - sum(dy * y)) */
            float sd = (float)k->dot_f64(dy, y, C);
            if (accumulate)
                for (int64_t j = 0; j < C; j++) dx[j] += y[j] * (dy[j] - sd);
            else
                for (int64_t j = 0; j < C; j++) dx[j] = y[j] * (dy[j] - sd);
        }
    }
}

static int check_nc(const void *a, const void *b, const void *c, int N, int C, const char *what) {
    if (!a || !b || !c) return attn__error(ATTN_EINVAL, "%s: NULL array", what);
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "%s: bad shape (%d, %d)", what, N, C);
    return ATTN_OK;
}

static int softmax_api(float *out, const float *inp, int N, int C, int logsm) {
    int st = check_nc(out, inp, inp, N, C, logsm ? "log_softmax" : "softmax");
    if (!st) attn__softmax_forward(out, inp, N, C, logsm);
    return st;
}

static int softmax_backward_api(float *dinp, const float *out, const float *dout, int N, int C, int logsm) {
    int st = check_nc(dinp, out, dout, N, C, logsm ? "log_softmax backward" : "softmax backward");
    if (!st) attn__softmax_backward(dinp, out, dout, N, C, logsm, 1);
    return st;
}

int attn_softmax_forward(float *out, const float *inp, int N, int C) { return softmax_api(out, inp, N, C, 0); }
int attn_log_softmax_forward(float *out, const float *inp, int N, int C) { return softmax_api(out, inp, N, C, 1); }

int attn_softmax_backward(float *dinp, const float *out, const float *dout, int N, int C) {
    return softmax_backward_api(dinp, out, dout, N, C, 0);
}

int attn_log_softmax_backward(float *dinp, const float *out, const float *dout, int N, int C) {
    return softmax_backward_api(dinp, out, dout, N, C, 1);
}

/* ---- cross-entropy --------------------------------------------------------------------- */

double attn__cross_entropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets,
                                   const float *weight, int64_t R, int64_t C, int ignore_index, float eps) {
    const attn__kernels *k = attn__kern();
    double acc = 0.0;
    for (int64_t r = 0; r < R; r++) {
        const float *x = logits + r * C; // (C)
        float mx = k->row_max(x, C);
        double l = mx != mx ? (double)NAN : mx + log(k->exp_sum(NULL, x, mx, C)); // log-sum-exp
        lse[r] = (float)l;
        int32_t t = targets[r];
        double li = 0.0;
        if (t != ignore_index) {
            /* loss = (1 - eps) w[t] (lse - x[t]) + (eps / C) sum_c w[c] (lse - x[c]) */
            if (!weight) {
                double sx = eps != 0.0f ? k->sum_f64(x, C) : 0.0;
                li = (1.0 - eps) * (l - x[t]) + eps * (l - sx / (double)C);
            } else {
                li = (1.0 - eps) * weight[t] * (l - x[t]);
                if (eps != 0.0f) {
                    double s = 0.0;
                    for (int64_t c = 0; c < C; c++) s += weight[c] * (l - x[c]);
                    li += (double)eps / (double)C * s;
                }
            }
        }
        if (losses) losses[r] = (float)li;
        acc += li;
    }
    return acc;
}

void attn__cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                  const float *weight, const float *row_scale, float scale, int64_t R, int64_t C,
                                  int ignore_index, float eps, int accumulate) {
    /* d loss / d x[j] = a (p[j] - [j == t]) + b (W p[j] - w[j]),  p = exp(x - lse),
     * a = (1 - eps) w[t], b = eps / C, W = sum_c w[c]; without weights p[j] - b - a [j == t]. */
    const attn__kernels *k = attn__kern();
    float b = eps / (float)C, W = 0.0f;
    if (weight)
        for (int64_t c = 0; c < C; c++) W += weight[c];
    for (int64_t r = 0; r < R; r++) {
        const float *x = logits + r * C; // (C)
        float *dx = dlogits + r * C;     // (C)
        int32_t t = targets[r];
        if (t == ignore_index) {
            if (!accumulate) memset(dx, 0, (size_t)C * sizeof(float));
            continue;
        }
        float l = lse[r], sc = row_scale ? row_scale[r] : scale, a = (1.0f - eps) * (weight ? weight[t] : 1.0f);
        if (!weight) {
            k->ce_bwd_row(dx, x, l, sc, b, C, accumulate);
        } else {
            float pa = a + b * W;
            for (int64_t j = 0; j < C; j++) {
                float d = sc * (attn__expf(x[j] - l) * pa - b * weight[j]);
                dx[j] = accumulate ? dx[j] + d : d;
            }
        }
        dx[t] -= sc * a;
    }
}

/* Validates targets; returns the MEAN denominator sum_{counted i} w[y_i] in *den. */
static int ce_check(const float *logits, const float *lse, const int32_t *targets, const float *weight, int N,
                    int C, int ignore_index, float eps, attn_reduction reduction, double *den, const char *what) {
    if (!logits || !lse || !targets) return attn__error(ATTN_EINVAL, "%s: NULL array", what);
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "%s: bad shape (%d, %d)", what, N, C);
    if (!(eps >= 0.0f && eps <= 1.0f))
        return attn__error(ATTN_EINVAL, "%s: label smoothing %g is not in [0, 1]", what, (double)eps);
    if (reduction != ATTN_REDUCE_NONE && reduction != ATTN_REDUCE_MEAN && reduction != ATTN_REDUCE_SUM)
        return attn__error(ATTN_EINVAL, "%s: unknown reduction %d", what, (int)reduction);
    double d = 0.0;
    for (int i = 0; i < N; i++) {
        int32_t y = targets[i];
        if (y == ignore_index) continue;
        if (y < 0 || y >= C)
            return attn__error(ATTN_EINVAL, "%s: target %d at row %d is not in [0, %d) nor ignore_index %d",
                               what, (int)y, i, C, ignore_index);
        d += weight ? (double)weight[y] : 1.0;
    }
    *den = d;
    return ATTN_OK;
}

int attn_cross_entropy_forward(float *out, float *lse, const float *logits, const int32_t *targets,
                               const float *weight, int N, int C, int ignore_index, float eps,
                               attn_reduction reduction) {
    double den = 0.0;
    int st = ce_check(logits, lse, targets, weight, N, C, ignore_index, eps, reduction, &den, "cross_entropy");
    if (st) return st;
    if (!out) return attn__error(ATTN_EINVAL, "cross_entropy: NULL out");
    double total = attn__cross_entropy_forward(reduction == ATTN_REDUCE_NONE ? out : NULL, lse, logits, targets,
                                               weight, N, C, ignore_index, eps);
    if (reduction == ATTN_REDUCE_SUM) out[0] = (float)total;
    if (reduction == ATTN_REDUCE_MEAN) out[0] = den != 0.0 ? (float)(total / den) : 0.0f;
    return ATTN_OK;
}

int attn_cross_entropy_backward(float *dlogits, const float *dout, const float *logits, const float *lse,
                                const int32_t *targets, const float *weight, int N, int C,
                                int ignore_index, float eps, attn_reduction reduction) {
    double den = 0.0;
    int st = ce_check(logits, lse, targets, weight, N, C, ignore_index, eps, reduction, &den,
                      "cross_entropy backward");
    if (st) return st;
    if (!dlogits || !dout) return attn__error(ATTN_EINVAL, "cross_entropy backward: NULL dlogits or dout");
    if (reduction == ATTN_REDUCE_MEAN && den == 0.0) return ATTN_OK; // the loss is the constant 0
    float scale = reduction == ATTN_REDUCE_MEAN ? (float)(dout[0] / den) : dout[0];
    attn__cross_entropy_backward(dlogits, logits, lse, targets, weight, reduction == ATTN_REDUCE_NONE ? dout : NULL,
                                 scale, N, C, ignore_index, eps, 1);
    return ATTN_OK;
}
