/* Position encodings: sinusoidal, learned, rotary (RoPE, rotate_half pairing) and ALiBi,
 * forward and backward. See attn/posenc.h for the formulas and conventions.
 * Letters: B batch, N rows, d features, H heads, dh features per head, r rotated features.
 * Angles are computed in double and rounded once, so that long positions keep their accuracy.
 * These are memory-bound loops over small arrays; they run on the calling thread.
 */
#include "attn/posenc.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"

static int64_t position(const int32_t *pos, int offset, int N, int b, int n) {
    return pos ? (int64_t)pos[(size_t)b * N + n] : (int64_t)offset + n;
}

/* ---- Sinusoidal ------------------------------------------------------------------------- */

/* One row of the table (d) for position p. */
static void sinusoidal_row(double p, int d, float *row) {
    for (int c = 0; c < d; c += 2) {
        double angle = p * pow(10000.0, -(double)c / d);
        row[c] = (float)sin(angle);
        if (c + 1 < d) row[c + 1] = (float)cos(angle);
    }
}

int attn_sinusoidal_table(int N, int d, int offset, float *pe) {
    if (N <= 0 || d <= 0 || !pe) return attn__error(ATTN_EINVAL, "sinusoidal table: need N > 0, d > 0 and PE (N=%d d=%d)", N, d);
    for (int n = 0; n < N; n++) sinusoidal_row((double)offset + n, d, pe + (size_t)n * d);
    return ATTN_OK;
}

int attn_sinusoidal_forward(int B, int N, int d, const float *x, const int32_t *pos, int offset, float *y) {
    if (B <= 0 || N <= 0 || d <= 0 || !x || !y)
        return attn__error(ATTN_EINVAL, "sinusoidal encoding: need B, N, d > 0 and x, y (B=%d N=%d d=%d)", B, N, d);
    /* Without explicit positions every batch shares one table: compute it once. */
    float *row = attn_malloc((size_t)(pos ? 1 : N) * d * sizeof(float));
    if (!row) return ATTN_ENOMEM;
    if (!pos)
        for (int n = 0; n < N; n++) sinusoidal_row((double)offset + n, d, row + (size_t)n * d);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            const float *pe = row + (pos ? 0 : (size_t)n * d);
            if (pos) sinusoidal_row((double)position(pos, offset, N, b, n), d, row);
            size_t o = ((size_t)b * N + n) * d;
            for (int c = 0; c < d; c++) y[o + c] = x[o + c] + pe[c];
        }
    attn_free(row);
    return ATTN_OK;
}

int attn_sinusoidal_backward(int B, int N, int d, const float *dy, float *dx) {
    if (B <= 0 || N <= 0 || d <= 0 || !dy || !dx)
        return attn__error(ATTN_EINVAL, "sinusoidal backward: need B, N, d > 0 and dy, dx (B=%d N=%d d=%d)", B, N, d);
    /* y = x + PE  =>  dx = dy. */
    if (dx != dy) memmove(dx, dy, (size_t)B * N * d * sizeof(float));
    return ATTN_OK;
}

/* ---- Learned ---------------------------------------------------------------------------- */

static int check_positions(int B, int N, int max_len, const int32_t *pos, int offset) {
    if (!pos) {
        int64_t first = offset, last = (int64_t)offset + N - 1;
        if (first < 0 || last >= max_len)
            return attn__error(ATTN_EINVAL, "learned position embedding: positions %lld..%lld are outside [0, %d)",
                               (long long)first, (long long)last, max_len);
        return ATTN_OK;
    }
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            int32_t p = pos[(size_t)b * N + n];
            if (p < 0 || p >= max_len)
                return attn__error(ATTN_EINVAL, "learned position embedding: position %d of row (%d, %d) is outside [0, %d)",
                                   (int)p, b, n, max_len);
        }
    return ATTN_OK;
}

int attn_learned_pos_forward(int B, int N, int d, int max_len, const float *table, const float *x,
                             const int32_t *pos, int offset, float *y) {
    if (B <= 0 || N <= 0 || d <= 0 || max_len <= 0 || !table || !x || !y)
        return attn__error(ATTN_EINVAL, "learned position embedding: need B, N, d, max_len > 0 and table, x, y");
    int st = check_positions(B, N, max_len, pos, offset);
    if (st) return st;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            /* y = x + table[p] */
            const float *t = table + (size_t)position(pos, offset, N, b, n) * d;
            size_t o = ((size_t)b * N + n) * d;
            for (int c = 0; c < d; c++) y[o + c] = x[o + c] + t[c];
        }
    return ATTN_OK;
}

int attn_learned_pos_backward(int B, int N, int d, int max_len, const float *dy, const int32_t *pos,
                              int offset, float *dx, float *dtable) {
    if (B <= 0 || N <= 0 || d <= 0 || max_len <= 0 || !dy)
        return attn__error(ATTN_EINVAL, "learned position backward: need B, N, d, max_len > 0 and dy");
    int st = check_positions(B, N, max_len, pos, offset);
    if (st) return st;
    if (dtable)
        for (int b = 0; b < B; b++)
            for (int n = 0; n < N; n++) {
                /* y = x + table[p]  =>  dtable[p] += dy */
                float *t = dtable + (size_t)position(pos, offset, N, b, n) * d;
                const float *g = dy + ((size_t)b * N + n) * d;
                for (int c = 0; c < d; c++) t[c] += g[c];
            }
    /* dx = dy */
    if (dx && dx != dy) memmove(dx, dy, (size_t)B * N * d * sizeof(float));
    return ATTN_OK;
}

/* ---- Rotary ----------------------------------------------------------------------------- */

static int rope_check(const attn_rope_desc *r, const float *x, int64_t s[3], int *rot, double *base) {
    if (!r || !x) return attn__error(ATTN_EINVAL, "rope: the description and x must not be NULL");
    if (r->B <= 0 || r->H <= 0 || r->N <= 0 || r->dh <= 0)
        return attn__error(ATTN_EINVAL, "rope: sizes must be positive (B=%d H=%d N=%d dh=%d)", r->B, r->H, r->N, r->dh);
    *rot = r->rot_dim ? r->rot_dim : r->dh;
    if (*rot < 0 || *rot > r->dh || *rot % 2)
        return attn__error(ATTN_EINVAL, "rope: rot_dim %d must be even and in [2, dh=%d]", *rot, r->dh);
    if (*rot == 0) return attn__error(ATTN_EINVAL, "rope: dh=%d must be even (or set an even rot_dim)", r->dh);
    *base = r->base != 0.0f ? (double)r->base : 10000.0;
    if (!(*base > 0.0) || !isfinite(*base)) return attn__error(ATTN_EINVAL, "rope: base must be positive and finite");
    memcpy(s, r->strides, 3 * sizeof *s);
    if (!s[0] && !s[1] && !s[2]) {
        s[2] = r->dh;
        s[1] = (int64_t)r->N * r->dh;
        s[0] = (int64_t)r->H * r->N * r->dh;
    }
    return ATTN_OK;
}

/* Rotates every head's row at (b, n) by +theta (sign = 1) or -theta (sign = -1). */
static int rope_apply(const attn_rope_desc *r, float *x, double sign) {
    int64_t s[3] = {0, 0, 0};
    int rot = 0;
    double base = 0.0;
    int st = rope_check(r, x, s, &rot, &base);
    if (st) return st;
    int half = rot / 2;
    /* on the stack for the usual head sizes (training calls this every step) */
    double inv_small[128];
    float cs_small[256];
    int small = half <= 128;
    double *inv_freq = small ? inv_small : attn_malloc((size_t)half * sizeof(double));
    float *cs = small ? cs_small : attn_malloc((size_t)rot * sizeof(float)); /* cos (half), then sin (half) */
    if (!inv_freq || !cs) {
        if (!small) attn_free(inv_freq), attn_free(cs);
        return ATTN_ENOMEM;
    }
    for (int c = 0; c < half; c++) inv_freq[c] = pow(base, -2.0 * c / rot);
    for (int b = 0; b < r->B; b++)
        for (int n = 0; n < r->N; n++) {
            double p = (double)position(r->pos, r->offset, r->N, b, n);
            for (int c = 0; c < half; c++) {
                double theta = p * inv_freq[c];
                cs[c] = (float)cos(theta);
                cs[half + c] = (float)(sign * sin(theta));
            }
            for (int h = 0; h < r->H; h++) {
                float *v = x + b * s[0] + h * s[1] + n * s[2];
                for (int c = 0; c < half; c++) {
                    /* x' = x cos + rotate_half(x) sin, rotate_half(x) = (-x2, x1) */
                    float x1 = v[c], x2 = v[c + half], co = cs[c], si = cs[half + c];
                    v[c] = x1 * co - x2 * si;
                    v[c + half] = x2 * co + x1 * si;
                }
            }
        }
    if (!small) attn_free(inv_freq), attn_free(cs);
    return ATTN_OK;
}

int attn_rope_forward(const attn_rope_desc *r, float *x) { return rope_apply(r, x, 1.0); }

/* x' = R(theta) x with R orthogonal  =>  dx = R(theta)^T dx' = R(-theta) dx'. */
int attn_rope_backward(const attn_rope_desc *r, float *dx) { return rope_apply(r, dx, -1.0); }

/* ---- ALiBi ------------------------------------------------------------------------------ */

/* The reference implementation's get_slopes, in double. */
static void alibi_slopes_d(int H, double *out) {
    int P = 1;
    while (P * 2 <= H) P *= 2;
    for (int h = 0; h < P; h++) out[h] = pow(2.0, -8.0 * (h + 1) / P);
    /* get_slopes(2P)[0::2][:H-P]: the even-indexed slopes for 2P heads. */
    for (int k = 0; k < H - P; k++) out[P + k] = pow(2.0, -8.0 * (2 * k + 1) / (2.0 * P));
}

int attn_alibi_slopes(int H, float *slopes) {
    if (H <= 0 || !slopes) return attn__error(ATTN_EINVAL, "alibi: need H > 0 and slopes (H=%d)", H);
    double *s = attn_malloc((size_t)H * sizeof(double));
    if (!s) return ATTN_ENOMEM;
    alibi_slopes_d(H, s);
    for (int h = 0; h < H; h++) slopes[h] = (float)s[h];
    attn_free(s);
    return ATTN_OK;
}

int attn_alibi_bias(int H, int Nq, int Nk, int q_offset, int symmetric, float *bias) {
    if (H <= 0 || Nq <= 0 || Nk <= 0 || !bias)
        return attn__error(ATTN_EINVAL, "alibi bias: need H, Nq, Nk > 0 and bias (H=%d Nq=%d Nk=%d)", H, Nq, Nk);
    double *s = attn_malloc((size_t)H * sizeof(double));
    if (!s) return ATTN_ENOMEM;
    alibi_slopes_d(H, s);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Nq; i++) {
            float *row = bias + ((size_t)h * Nq + i) * Nk;
            for (int j = 0; j < Nk; j++) {
                double dist = (double)i + q_offset - j;
                if (symmetric) dist = fabs(dist);
                row[j] = (float)(-s[h] * dist);
            }
        }
    attn_free(s);
    return ATTN_OK;
}
