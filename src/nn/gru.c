/* GRU (Cho et al. 2014), forward and backward through time, over a batch of sequences with
 * per-sequence lengths, in either direction; a single step ("cell") is the T = 1 case.
 * Weights in PyTorch's nn.GRU layout, gate blocks [r; z; n]; both the PyTorch form
 * (linear_before_reset = 1) and ONNX's default (0) of the candidate n. The equations are in
 * attn/layers.h. Matrix products go through the library's sgemm: the input projection of
 * all T steps is one product before the recurrence, the weight gradients one product after
 * it; only the (B, Hd) x (Hd, 3*Hd) recurrent products are per step.
 *
 * Letters: T steps, B batch, I input size, Hd hidden size, G3 = 3*Hd.
 * Cache layout (floats), written by the forward, read by the backward:
 *   S (T+1, B, Hd)  hidden states indexed by time: step t reads h_prev = S[t + rev] and
 *                   writes S[t + 1 - rev] (rev = 1 for the reverse direction), so S[0] = h0
 *                   forward and S[T] = h0 reverse, and the T previous states of the steps
 *                   are the contiguous rows S[rev .. rev+T-1], in time order.
 *   Gt (T, B, G3)   the gates after their activations: [r, z, n]
 *   A (T, B, Hd)    linear_before_reset = 1: h_prev W_hn^T + b_hn (what r multiplies);
 *                   linear_before_reset = 0: r * h_prev (what W_hn multiplies).
 * Not here: ONNX's clip and custom activations, stacking, dropout between layers.
 */
#include "attn/layers.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/nn_internal.h"

static inline float sigm(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static int check(const attn_gru *m, int T, int B, const int32_t *lengths, const float *x,
                 const float *cache, const char *what) {
    if (!m || !m->weight_ih || !m->weight_hh) return attn__error(ATTN_EINVAL, "%s: NULL GRU or weights", what);
    if (m->input_size < 1 || m->hidden_size < 1)
        return attn__error(ATTN_EINVAL, "%s: bad sizes input %d hidden %d", what, m->input_size, m->hidden_size);
    if (T < 1 || B < 1) return attn__error(ATTN_EINVAL, "%s: bad T=%d B=%d", what, T, B);
    if ((int64_t)T * B > INT32_MAX / 4 || (int64_t)3 * m->hidden_size > INT32_MAX / 4)
        return attn__error(ATTN_EINVAL, "%s: T * B = %lld rows or hidden size %d too large", what,
                           (long long)T * B, m->hidden_size);
    if (!x || !cache) return attn__error(ATTN_EINVAL, "%s: NULL x or cache", what);
    if (m->linear_before_reset != 0 && m->linear_before_reset != 1)
        return attn__error(ATTN_EINVAL, "%s: linear_before_reset must be 0 or 1", what);
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T)
            return attn__error(ATTN_EINVAL, "%s: lengths[%d] = %d is not in [0, %d]", what, b, (int)lengths[b], T);
    return ATTN_OK;
}

size_t attn_gru_cache_size(const attn_gru *m, int T, int B) {
    if (!m || m->hidden_size < 1 || T < 1 || B < 1) return 0;
    size_t Hd = (size_t)m->hidden_size;
    return ((size_t)T + 1) * B * Hd + (size_t)T * B * 4 * Hd;
}

int attn_gru_forward(const attn_gru *m, int T, int B, int reverse, const int32_t *lengths,
                     const float *x, const float *h0, float *y, float *h_n, float *cache) {
    int st = check(m, T, B, lengths, x, cache, "gru forward");
    if (st) return st;
    if (!y) return attn__error(ATTN_EINVAL, "gru forward: NULL y");
    const attn__sgemm_fn sgemm = attn__kern()->sgemm;
    const int I = m->input_size, Hd = m->hidden_size, G3 = 3 * Hd, rev = reverse ? 1 : 0;
    const int lbr = m->linear_before_reset;
    const size_t BH = (size_t)B * Hd;
    float *S = cache;                              // (T+1, B, Hd)
    float *Gt = S + ((size_t)T + 1) * BH;          // (T, B, G3)
    float *A = Gt + (size_t)T * B * G3;            // (T, B, Hd)
    const float *Whn = m->weight_hh + (size_t)2 * Hd * Hd; // (Hd, Hd) rows n of weight_hh

    float *S0 = S + (size_t)(rev ? T : 0) * BH;
    if (h0) memcpy(S0, h0, BH * sizeof(float));
    else memset(S0, 0, BH * sizeof(float));

    // pre-activations of all steps from the input: Gt = x W_ih^T + b_ih (+ b_hr, b_hz; and
    // b_hn too when linear_before_reset = 0, where it adds outside r)
    for (size_t row = 0; row < (size_t)T * B; row++) {
        float *g = Gt + row * G3;
        for (int j = 0; j < G3; j++)
            g[j] = (m->bias_ih ? m->bias_ih[j] : 0.0f) +
                   (m->bias_hh && (j < 2 * Hd || !lbr) ? m->bias_hh[j] : 0.0f);
    }
    sgemm(0, 1, T * B, G3, I, 1.0f, x, I, m->weight_ih, I, 1.0f, Gt, G3);

    for (int s = 0; s < T; s++) {
        const int t = rev ? T - 1 - s : s;
        const float *hp = S + (size_t)(t + rev) * BH;  // (B, Hd) h_prev
        float *hn = S + (size_t)(t + 1 - rev) * BH;    // (B, Hd) h
        float *g = Gt + (size_t)t * B * G3;            // (B, G3)
        float *a = A + (size_t)t * BH;                 // (B, Hd)
        float *yt = y + (size_t)t * BH;                // (B, Hd)
        // [r, z] pre-activations += h_prev W_h[rz]^T
        sgemm(0, 1, B, 2 * Hd, Hd, 1.0f, hp, Hd, m->weight_hh, Hd, 1.0f, g, G3);
        if (lbr) {
            // a = h_prev W_hn^T + b_hn;  n = tanh(gx_n + r * a)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < Hd; j++) a[(size_t)b * Hd + j] = m->bias_hh ? m->bias_hh[2 * Hd + j] : 0.0f;
            sgemm(0, 1, B, Hd, Hd, 1.0f, hp, Hd, Whn, Hd, 1.0f, a, Hd);
            for (int b = 0; b < B; b++) {
                float *gb = g + (size_t)b * G3, *ab = a + (size_t)b * Hd;
                for (int j = 0; j < Hd; j++) {
                    float r = sigm(gb[j]);
                    gb[j] = r;
                    gb[Hd + j] = sigm(gb[Hd + j]);
                    gb[2 * Hd + j] = tanhf(gb[2 * Hd + j] + r * ab[j]);
                }
            }
        } else {
            // a = r * h_prev;  n = tanh(gx_n + a W_hn^T + b_hn)
            for (int b = 0; b < B; b++) {
                float *gb = g + (size_t)b * G3, *ab = a + (size_t)b * Hd;
                const float *hb = hp + (size_t)b * Hd;
                for (int j = 0; j < Hd; j++) {
                    float r = sigm(gb[j]);
                    gb[j] = r;
                    gb[Hd + j] = sigm(gb[Hd + j]);
                    ab[j] = r * hb[j];
                }
            }
            sgemm(0, 1, B, Hd, Hd, 1.0f, a, Hd, Whn, Hd, 1.0f, g + 2 * Hd, G3);
            for (int b = 0; b < B; b++)
                for (int j = 0; j < Hd; j++) {
                    float *gn = g + (size_t)b * G3 + 2 * Hd + j;
                    *gn = tanhf(*gn);
                }
        }
        // h = (1 - z) * n + z * h_prev, for the sequences still running at step t
        for (int b = 0; b < B; b++) {
            const float *gb = g + (size_t)b * G3, *hb = hp + (size_t)b * Hd;
            float *ho = hn + (size_t)b * Hd, *yo = yt + (size_t)b * Hd;
            if (!lengths || t < lengths[b]) {
                for (int j = 0; j < Hd; j++) {
                    float z = gb[Hd + j], n = gb[2 * Hd + j];
                    ho[j] = (1.0f - z) * n + z * hb[j];
                    yo[j] = ho[j];
                }
            } else {
                memcpy(ho, hb, (size_t)Hd * sizeof(float));
                memset(yo, 0, (size_t)Hd * sizeof(float));
            }
        }
    }
    if (h_n) memcpy(h_n, S + (size_t)(rev ? 0 : T) * BH, BH * sizeof(float));
    return ATTN_OK;
}

static void add_colsum(float *db, const float *D, size_t rows, int cols, int ld) {
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) db[j] += D[r * ld + j];
}

size_t attn__gru_backward_floats(const attn_gru *m, int T, int B) {
    return (size_t)T * B * 3 * m->hidden_size * (m->linear_before_reset ? 2 : 1) + (size_t)3 * B * m->hidden_size;
}

int attn_gru_backward(const attn_gru *m, int T, int B, int reverse, const int32_t *lengths,
                      const float *x, const float *cache, const float *dy, const float *dh_n,
                      float *dx, float *dh0, const attn_gru_grad *g) {
    return attn__gru_backward_ws(m, T, B, reverse, lengths, x, cache, dy, dh_n, dx, dh0, g, NULL);
}

int attn__gru_backward_ws(const attn_gru *m, int T, int B, int reverse, const int32_t *lengths,
                          const float *x, const float *cache, const float *dy, const float *dh_n,
                          float *dx, float *dh0, const attn_gru_grad *g, float *work) {
    int st = check(m, T, B, lengths, x, cache, "gru backward");
    if (st) return st;
    const attn__sgemm_fn sgemm = attn__kern()->sgemm;
    const int I = m->input_size, Hd = m->hidden_size, G3 = 3 * Hd, rev = reverse ? 1 : 0;
    const int lbr = m->linear_before_reset;
    const size_t BH = (size_t)B * Hd, TB = (size_t)T * B;
    const float *S = cache;                       // (T+1, B, Hd)
    const float *Gt = S + ((size_t)T + 1) * BH;   // (T, B, G3)
    const float *A = Gt + TB * G3;                // (T, B, Hd)
    const float *Whn = m->weight_hh + (size_t)2 * Hd * Hd;

    // scratch: dGx (T, B, G3) gradients of the input-side pre-activations; dGh (T, B, G3)
    // of the recurrent-side ones (the same array when linear_before_reset = 0);
    // dh, dhp, du (B, Hd)
    size_t nf = attn__gru_backward_floats(m, T, B);
    float *own = work ? NULL : attn_calloc(nf, sizeof(float));
    if (!work && !(work = own)) return attn__error(ATTN_ENOMEM, "gru backward: out of memory for %zu floats", nf);
    float *dGx = work, *dGh = lbr ? dGx + TB * G3 : dGx;
    float *dh = dGh + TB * G3, *dhp = dh + BH, *du = dhp + BH;
    if (dh_n) memcpy(dh, dh_n, BH * sizeof(float));

    for (int s = 0; s < T; s++) {
        const int t = rev ? s : T - 1 - s; // the forward's steps, last first
        const float *hp = S + (size_t)(t + rev) * BH; // (B, Hd)
        const float *gt = Gt + (size_t)t * B * G3;    // (B, G3) [r, z, n]
        const float *a = A + (size_t)t * BH;          // (B, Hd)
        float *dgx = dGx + (size_t)t * B * G3, *dgh = dGh + (size_t)t * B * G3;
        for (int b = 0; b < B; b++) {
            const int active = !lengths || t < lengths[b];
            const float *gb = gt + (size_t)b * G3, *hb = hp + (size_t)b * Hd, *ab = a + (size_t)b * Hd;
            float *dhb = dh + (size_t)b * Hd, *dhpb = dhp + (size_t)b * Hd;
            float *dxb = dgx + (size_t)b * G3, *dhhb = dgh + (size_t)b * G3;
            if (!active) { // forward: h = h_prev, y = 0
                memcpy(dhpb, dhb, (size_t)Hd * sizeof(float));
                continue; // dgx, dgh rows stay 0
            }
            if (dy) {
                const float *dyb = dy + (size_t)t * BH + (size_t)b * Hd;
                for (int j = 0; j < Hd; j++) dhb[j] += dyb[j];
            }
            for (int j = 0; j < Hd; j++) {
                float r = gb[j], z = gb[Hd + j], n = gb[2 * Hd + j], d = dhb[j];
                // h = (1 - z) * n + z * h_prev
                float dn = d * (1.0f - z), dz = d * (hb[j] - n);
                dhpb[j] = d * z;
                float dn_pre = dn * (1.0f - n * n);   // n = tanh(n_pre)
                float dz_pre = dz * z * (1.0f - z);   // z = sigmoid(z_pre)
                dxb[Hd + j] = dz_pre;
                dxb[2 * Hd + j] = dn_pre;
                if (lbr) {
                    // n_pre = gx_n + r * a, a = h_prev W_hn^T + b_hn
                    float dr_pre = dn_pre * ab[j] * r * (1.0f - r);
                    dxb[j] = dr_pre;
                    dhhb[j] = dr_pre;
                    dhhb[Hd + j] = dz_pre;
                    dhhb[2 * Hd + j] = dn_pre * r;
                }
            }
        }
        if (lbr) {
            // [r, z, a]_pre = h_prev W_hh^T + ...  ->  dh_prev += dgh W_hh
            sgemm(0, 0, B, Hd, G3, 1.0f, dgh, G3, m->weight_hh, Hd, 1.0f, dhp, Hd);
        } else {
            // n_pre = gx_n + u W_hn^T + b_hn, u = r * h_prev  ->  du = dn_pre W_hn
            sgemm(0, 0, B, Hd, Hd, 1.0f, dgx + 2 * Hd, G3, Whn, Hd, 0.0f, du, Hd);
            for (int b = 0; b < B; b++) {
                if (lengths && t >= lengths[b]) continue;
                const float *gb = gt + (size_t)b * G3, *hb = hp + (size_t)b * Hd;
                const float *dub = du + (size_t)b * Hd;
                float *dxb = dgx + (size_t)b * G3, *dhpb = dhp + (size_t)b * Hd;
                for (int j = 0; j < Hd; j++) {
                    float r = gb[j];
                    dxb[j] = dub[j] * hb[j] * r * (1.0f - r); // dr_pre, r = sigmoid(r_pre)
                    dhpb[j] += dub[j] * r;
                }
            }
            // [r, z]_pre = ... + h_prev W_h[rz]^T  ->  dh_prev += d[r, z]_pre W_h[rz]
            sgemm(0, 0, B, Hd, 2 * Hd, 1.0f, dgx, G3, m->weight_hh, Hd, 1.0f, dhp, Hd);
        }
        float *tmp = dh; dh = dhp; dhp = tmp;
    }
    if (dh0)
        for (size_t k = 0; k < BH; k++) dh0[k] += dh[k];

    // Gx = x W_ih^T + b_ih  ->  dx += dGx W_ih;  dW_ih += dGx^T x;  db_ih += sum dGx
    if (dx) sgemm(0, 0, T * B, I, G3, 1.0f, dGx, G3, m->weight_ih, I, 1.0f, dx, I);
    if (g && g->weight_ih) sgemm(1, 0, G3, I, T * B, 1.0f, dGx, G3, x, I, 1.0f, g->weight_ih, I);
    if (g && g->bias_ih) add_colsum(g->bias_ih, dGx, TB, G3, G3);
    const float *Hprev = S + (size_t)rev * BH; // (T, B, Hd) the previous state of each step
    if (g && g->weight_hh) {
        if (lbr) {
            // Gh = h_prev W_hh^T + b_hh  ->  dW_hh += dGh^T h_prev
            sgemm(1, 0, G3, Hd, T * B, 1.0f, dGh, G3, Hprev, Hd, 1.0f, g->weight_hh, Hd);
        } else {
            // rows [r, z]: dW += d[r, z]_pre^T h_prev;  rows n: dW_hn += dn_pre^T (r * h_prev)
            sgemm(1, 0, 2 * Hd, Hd, T * B, 1.0f, dGx, G3, Hprev, Hd, 1.0f, g->weight_hh, Hd);
            sgemm(1, 0, Hd, Hd, T * B, 1.0f, dGx + 2 * Hd, G3, A, Hd, 1.0f,
                  g->weight_hh + (size_t)2 * Hd * Hd, Hd);
        }
    }
    if (g && g->bias_hh) add_colsum(g->bias_hh, dGh, TB, G3, G3);
    attn_free(own);
    return ATTN_OK;
}

int attn_gru_cell_forward(const attn_gru *m, int B, const float *x, const float *h_prev,
                          float *h, float *cache) {
    return attn_gru_forward(m, 1, B, 0, NULL, x, h_prev, h, NULL, cache);
}

int attn_gru_cell_backward(const attn_gru *m, int B, const float *x, const float *cache,
                           const float *dh, float *dx, float *dh_prev, const attn_gru_grad *g) {
    return attn_gru_backward(m, 1, B, 0, NULL, x, cache, NULL, dh, dx, dh_prev, g);
}
