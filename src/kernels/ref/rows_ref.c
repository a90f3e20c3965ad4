/* The row ops in portable C, the reference table's entries (see kernels.h and row_kernels.h).
 * The reductions are written in forms GCC vectorises without -ffast-math (eight independent
 * lanes, elementwise updates of small arrays, combined in a fixed order at the end); the x86
 * versions compute the same lanes with intrinsics. Also relu, the one activation whose vector
 * form is exact (the others are in act_ref.c). */
#include "kernels/kernels.h"

#include <math.h>

#define CHUNK 512 /* elements per pass of exp_sum: exponentials to a buffer, then summed */

static inline uint32_t fkey(float x) { /* unsigned order key: monotonic in x, NaNs outside */
    uint32_t b;
    memcpy(&b, &x, 4);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

float attn__row_max_ref(const float *x, int64_t n) {
    uint32_t mx[8] = {0}, mn[8] = {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u}, a = 0, b = ~0u;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) {
            uint32_t key = fkey(x[j + k]);
            mx[k] = key > mx[k] ? key : mx[k];
            mn[k] = key < mn[k] ? key : mn[k];
        }
    for (int k = 0; k < 8; k++) a = mx[k] > a ? mx[k] : a, b = mn[k] < b ? mn[k] : b;
    for (; j < n; j++) {
        uint32_t key = fkey(x[j]);
        a = key > a ? key : a, b = key < b ? key : b;
    }
    if (a > 0xff800000u || b < 0x007fffffu) return NAN; /* beyond +inf or -inf: a NaN */
    uint32_t bits = (a & 0x80000000u) ? (a & 0x7fffffffu) : ~a;
    float m;
    memcpy(&m, &bits, 4);
    return m;
}

double attn__sum_f64_ref(const float *x, int64_t n) {
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[j + k];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++) s += x[j];
    return s;
}

double attn__dot_f64_ref(const float *x, const float *y, int64_t n) {
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)x[j + k] * y[j + k];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++) s += (double)x[j] * y[j];
    return s;
}

double attn__exp_sum_ref(float *y, const float *x, float mx, int64_t n) {
    float buf[CHUNK];
    double s = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += CHUNK) {
        int64_t m = n - j0 < CHUNK ? n - j0 : CHUNK;
        float *e = y ? y + j0 : buf;
        const float *xs = x + j0;
        for (int64_t j = 0; j < m; j++) e[j] = attn__expf(xs[j] - mx);
        s += attn__sum_f64_ref(e, m);
    }
    return s;
}

void attn__logsm_bwd_row_ref(float *dx, const float *y, const float *dy, float sd, int64_t n, int acc) {
    if (acc)
        for (int64_t j = 0; j < n; j++) dx[j] += dy[j] - attn__expf(y[j]) * sd;
    else
        for (int64_t j = 0; j < n; j++) dx[j] = dy[j] - attn__expf(y[j]) * sd;
}

void attn__ce_bwd_row_ref(float *dx, const float *x, float lse, float sc, float b, int64_t n, int acc) {
    if (acc)
        for (int64_t j = 0; j < n; j++) dx[j] += sc * (attn__expf(x[j] - lse) - b);
    else
        for (int64_t j = 0; j < n; j++) dx[j] = sc * (attn__expf(x[j] - lse) - b);
}

void attn__relu_fwd_ref(float *out, const float *inp, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void attn__relu_bwd_ref(float *dinp, const float *inp, const float *dout, int64_t n) {
    /* out = max(inp, 0) -> d/dinp = [inp > 0] (0 at inp == 0, as PyTorch) */
    for (int64_t i = 0; i < n; i++)
        if (inp[i] > 0.0f) dinp[i] += dout[i];
}

void attn__bf16_widen_ref(const uint16_t *x, float *y, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        uint32_t u = (uint32_t)x[j] << 16;
        memcpy(y + j, &u, 4);
    }
}
