/* Softmax and log-softmax over the last axis, and cross-entropy from logits (with class
 * weights, ignore_index and label smoothing, as torch.nn.functional.cross_entropy), forward
 * and backward. Sums accumulate in double. Letters: N rows, C the last axis (classes).
 * Not here: probabilities as targets (soft labels), the multi-head attention softmax (that
 * one is fused into the attention kernels). */
#include "attn/layers.h"

#include <math.h>

#include "core/internal.h"

static int check_nc(const void *a, const void *b, const void *c, int N, int C, const char *what) {
    if (!a || !b || !c) return attn__error(ATTN_EINVAL, "%s: NULL array", what);
    if (N < 0 || C < 1) return attn__error(ATTN_EINVAL, "%s: bad shape (%d, %d)", what, N, C);
    return ATTN_OK;
}

/* Row max; -inf when every entry is -inf. */
static float row_max(const float *x, int C) {
    float m = -INFINITY;
    for (int c = 0; c < C; c++)
        if (x[c] > m) m = x[c];
    return m;
}

int attn_softmax_forward(float *out, const float *inp, int N, int C) {
    int st = check_nc(out, inp, inp, N, C, "softmax");
    if (st) return st;
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C; // (C)
        float *y = out + (size_t)i * C;       // (C)
        float m = row_max(x, C);
        if (m == -INFINITY) {
            for (int c = 0; c < C; c++) y[c] = 0.0f;
            continue;
        }
        double sum = 0.0;
        for (int c = 0; c < C; c++) {
            float e = expf(x[c] - m);
            y[c] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int c = 0; c < C; c++) y[c] *= inv;
    }
    return ATTN_OK;
}

int attn_softmax_backward(float *dinp, const float *out, const float *dout, int N, int C) {
    int st = check_nc(dinp, out, dout, N, C, "softmax backward");
    if (st) return st;
    for (int i = 0; i < N; i++) {
        const float *y = out + (size_t)i * C, *dy = dout + (size_t)i * C; // (C)
        float *dx = dinp + (size_t)i * C;                                 // (C)
        // forward: y[c] = exp(x[c] - m) / sum  ->  dx[c] = y[c] * (dy[c] - sum_k dy[k] y[k])
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += (double)dy[c] * y[c];
        float d = (float)dot;
        for (int c = 0; c < C; c++) dx[c] += y[c] * (dy[c] - d);
    }
    return ATTN_OK;
}

/* log(sum exp(x - m)) + m for one row; -inf for an all -inf row. */
static double row_logsumexp(const float *x, int C) {
    float m = row_max(x, C);
    if (m == -INFINITY) return -INFINITY;
    double sum = 0.0;
    for (int c = 0; c < C; c++) sum += exp((double)x[c] - m);
    return (double)m + log(sum);
}

int attn_log_softmax_forward(float *out, const float *inp, int N, int C) {
    int st = check_nc(out, inp, inp, N, C, "log_softmax");
    if (st) return st;
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C; // (C)
        float *y = out + (size_t)i * C;       // (C)
        double lse = row_logsumexp(x, C);
        if (lse == -INFINITY) {
            for (int c = 0; c < C; c++) y[c] = -INFINITY;
            continue;
        }
        for (int c = 0; c < C; c++) y[c] = (float)((double)x[c] - lse);
    }
    return ATTN_OK;
}

int attn_log_softmax_backward(float *dinp, const float *out, const float *dout, int N, int C) {
    int st = check_nc(dinp, out, dout, N, C, "log_softmax backward");
    if (st) return st;
    for (int i = 0; i < N; i++) {
        const float *y = out + (size_t)i * C, *dy = dout + (size_t)i * C; // (C)
        float *dx = dinp + (size_t)i * C;                                 // (C)
        // forward: y[c] = x[c] - lse  ->  dx[c] = dy[c] - exp(y[c]) * sum_k dy[k]
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += dy[c];
        float s = (float)sum;
        for (int c = 0; c < C; c++) dx[c] += dy[c] - expf(y[c]) * s;
    }
    return ATTN_OK;
}

/* Validates targets; returns the MEAN denominator sum_{counted i} w[y_i] in *den. */
static int ce_check(const float *logits_or_logp, const int32_t *targets, const float *weight,
                    int N, int C, int ignore_index, float eps, attn_reduction reduction,
                    double *den, const char *what) {
    if (!logits_or_logp || !targets) return attn__error(ATTN_EINVAL, "%s: NULL array", what);
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

int attn_cross_entropy_forward(float *out, float *logp, const float *logits, const int32_t *targets,
                               const float *weight, int N, int C, int ignore_index, float eps,
                               attn_reduction reduction) {
    double den;
    int st = ce_check(logits, targets, weight, N, C, ignore_index, eps, reduction, &den, "cross_entropy");
    if (st) return st;
    if (!out || !logp) return attn__error(ATTN_EINVAL, "cross_entropy: NULL out or logp");
    st = attn_log_softmax_forward(logp, logits, N, C); // (N, C)
    if (st) return st;
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *lp = logp + (size_t)i * C; // (C)
        int32_t y = targets[i];
        double li = 0.0;
        if (y != ignore_index) {
            // loss_i = (1 - eps) w[y] (-lp[y]) + (eps / C) sum_c w[c] (-lp[c])
            double wy = weight ? weight[y] : 1.0;
            li = (1.0 - eps) * wy * -(double)lp[y];
            if (eps > 0.0f) {
                double s = 0.0;
                for (int c = 0; c < C; c++) s += (weight ? weight[c] : 1.0) * -(double)lp[c];
                li += (double)eps / C * s;
            }
        }
        if (reduction == ATTN_REDUCE_NONE) out[i] = (float)li;
        total += li;
    }
    if (reduction == ATTN_REDUCE_SUM) out[0] = (float)total;
    if (reduction == ATTN_REDUCE_MEAN) out[0] = den != 0.0 ? (float)(total / den) : 0.0f;
    return ATTN_OK;
}

int attn_cross_entropy_backward(float *dlogits, const float *dout, const float *logp,
                                const int32_t *targets, const float *weight, int N, int C,
                                int ignore_index, float eps, attn_reduction reduction) {
    double den;
    int st = ce_check(logp, targets, weight, N, C, ignore_index, eps, reduction, &den,
                      "cross_entropy backward");
    if (st) return st;
    if (!dlogits || !dout) return attn__error(ATTN_EINVAL, "cross_entropy backward: NULL dlogits or dout");
    if (reduction == ATTN_REDUCE_MEAN && den == 0.0) return ATTN_OK; // the loss is the constant 0
    double W = 0.0; // sum_c w[c]
    for (int c = 0; c < C; c++) W += weight ? weight[c] : 1.0;
    for (int i = 0; i < N; i++) {
        int32_t y = targets[i];
        if (y == ignore_index) continue;
        const float *lp = logp + (size_t)i * C; // (C)
        float *dx = dlogits + (size_t)i * C;    // (C)
        double g = reduction == ATTN_REDUCE_NONE ? dout[i] : dout[0];
        if (reduction == ATTN_REDUCE_MEAN) g /= den;
        // loss_i = (1 - eps) w[y] (-lp[y]) + (eps / C) sum_c w[c] (-lp[c]),  lp = x - lse(x)
        // -> d/dx[j] = (1 - eps) w[y] (p[j] - [j == y]) + (eps / C) (W p[j] - w[j])
        double a = (1.0 - eps) * (weight ? weight[y] : 1.0), b = (double)eps / C;
        for (int j = 0; j < C; j++) {
            double p = exp((double)lp[j]);
            double d = a * (p - (j == y)) + b * (W * p - (weight ? weight[j] : 1.0));
            dx[j] += (float)(g * d);
        }
    }
    return ATTN_OK;
}
