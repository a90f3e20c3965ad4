/* LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000 and optional
 * peepholes of Gers & Schmidhuber 2000 as in ONNX), forward and backward through time, over a
 * batch of sequences with per-sequence lengths, in either direction; a single step ("cell")
 * is the T = 1 case. Weights in PyTorch's nn.LSTM layout, gate blocks [i; f; g; o]; the
 * equations are in attn/layers.h. Matrix products go through the library's sgemm: the input
 * projection of all T steps is one product before the recurrence, the weight gradients one
 * product after it; only the (B, Hd) x (Hd, 4*Hd) recurrent products are per step.
 *
 * Letters: T steps, B batch, I input size, Hd hidden size, G4 = 4*Hd.
 * Cache layout (floats), written by the forward, read by the backward:
 *   Sh (T+1, B, Hd), Sc (T+1, B, Hd)  hidden and cell states indexed by time: step t reads
 *                    S[t + rev] and writes S[t + 1 - rev] (rev = 1 for the reverse direction),
 *                    so the T previous states are the contiguous rows S[rev .. rev+T-1].
 *   Gt (T, B, G4)    the gates after their activations: [i, f, g, o]
 *   Tc (T, B, Hd)    tanh(c') of each step's new cell state
 * Not here: ONNX's clip, input_forget and custom activations; projections (proj_size).
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

static int check(const attn_lstm *m, int T, int B, const int32_t *lengths, const float *x,
                 const float *cache, const char *what) {
    if (!m || !m->weight_ih || !m->weight_hh) return attn__error(ATTN_EINVAL, "%s: NULL LSTM or weights", what);
    if (m->input_size < 1 || m->hidden_size < 1)
        return attn__error(ATTN_EINVAL, "%s: bad sizes input %d hidden %d", what, m->input_size, m->hidden_size);
    if (T < 1 || B < 1) return attn__error(ATTN_EINVAL, "%s: bad T=%d B=%d", what, T, B);
    if ((int64_t)T * B > INT32_MAX / 4 || (int64_t)4 * m->hidden_size > INT32_MAX / 4)
        return attn__error(ATTN_EINVAL, "%s: T * B = %lld rows or hidden size %d too large", what,
                           (long long)T * B, m->hidden_size);
    if (!x || !cache) return attn__error(ATTN_EINVAL, "%s: NULL x or cache", what);
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T)
            return attn__error(ATTN_EINVAL, "%s: lengths[%d] = %d is not in [0, %d]", what, b, (int)lengths[b], T);
    return ATTN_OK;
}

size_t attn_lstm_cache_size(const attn_lstm *m, int T, int B) {
    if (!m || m->hidden_size < 1 || T < 1 || B < 1) return 0;
    size_t Hd = (size_t)m->hidden_size;
    return 2 * ((size_t)T + 1) * B * Hd + (size_t)T * B * 5 * Hd;
}

int attn_lstm_forward(const attn_lstm *m, int T, int B, int reverse, const int32_t *lengths,
                      const float *x, const float *h0, const float *c0, float *y, float *h_n,
                      float *c_n, float *cache) {
    int st = check(m, T, B, lengths, x, cache, "lstm forward");
    if (st) return st;
    if (!y) return attn__error(ATTN_EINVAL, "lstm forward: NULL y");
    const attn__sgemm_fn sgemm = attn__kern()->sgemm;
    const int I = m->input_size, Hd = m->hidden_size, G4 = 4 * Hd, rev = reverse ? 1 : 0;
    const size_t BH = (size_t)B * Hd;
    float *Sh = cache;                        // (T+1, B, Hd)
    float *Sc = Sh + ((size_t)T + 1) * BH;    // (T+1, B, Hd)
    float *Gt = Sc + ((size_t)T + 1) * BH;    // (T, B, G4)
    float *Tc = Gt + (size_t)T * B * G4;      // (T, B, Hd)
    const float *P = m->peephole;             // (3*Hd) [p_i, p_f, p_o] or NULL

    size_t s0 = (size_t)(rev ? T : 0) * BH;
    if (h0) memcpy(Sh + s0, h0, BH * sizeof(float));
    else memset(Sh + s0, 0, BH * sizeof(float));
    if (c0) memcpy(Sc + s0, c0, BH * sizeof(float));
    else memset(Sc + s0, 0, BH * sizeof(float));

    // pre-activations of all steps from the input: Gt = x W_ih^T + b_ih + b_hh
    for (size_t row = 0; row < (size_t)T * B; row++) {
        float *g = Gt + row * G4;
        for (int j = 0; j < G4; j++)
            g[j] = (m->bias_ih ? m->bias_ih[j] : 0.0f) + (m->bias_hh ? m->bias_hh[j] : 0.0f);
    }
    sgemm(0, 1, T * B, G4, I, 1.0f, x, I, m->weight_ih, I, 1.0f, Gt, G4);

    for (int s = 0; s < T; s++) {
        const int t = rev ? T - 1 - s : s;
        const size_t ip = (size_t)(t + rev) * BH, in = (size_t)(t + 1 - rev) * BH;
        const float *hp = Sh + ip, *cp = Sc + ip; // (B, Hd) h_prev, c_prev
        float *hn = Sh + in, *cn = Sc + in;       // (B, Hd) h, c
        float *g = Gt + (size_t)t * B * G4;       // (B, G4)
        float *tc = Tc + (size_t)t * BH;          // (B, Hd)
        float *yt = y + (size_t)t * BH;           // (B, Hd)
        // [i, f, g, o] pre-activations += h_prev W_hh^T
        sgemm(0, 1, B, G4, Hd, 1.0f, hp, Hd, m->weight_hh, Hd, 1.0f, g, G4);
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * G4, *tcb = tc + (size_t)b * Hd;
            const float *hpb = hp + (size_t)b * Hd, *cpb = cp + (size_t)b * Hd;
            float *hb = hn + (size_t)b * Hd, *cb = cn + (size_t)b * Hd, *yb = yt + (size_t)b * Hd;
            const int active = !lengths || t < lengths[b];
            for (int j = 0; j < Hd; j++) {
                float c_prev = cpb[j];
                float i = sigm(gb[j] + (P ? P[j] * c_prev : 0.0f));
                float f = sigm(gb[Hd + j] + (P ? P[Hd + j] * c_prev : 0.0f));
                float gg = tanhf(gb[2 * Hd + j]);
                float c = f * c_prev + i * gg;
                float o = sigm(gb[3 * Hd + j] + (P ? P[2 * Hd + j] * c : 0.0f));
                float tch = tanhf(c);
                gb[j] = i, gb[Hd + j] = f, gb[2 * Hd + j] = gg, gb[3 * Hd + j] = o;
                tcb[j] = tch;
                if (active) {
                    cb[j] = c;
                    hb[j] = o * tch;
                    yb[j] = hb[j];
                } else { // past this sequence's end: the state is kept, the output is 0
                    cb[j] = c_prev;
                    hb[j] = hpb[j];
                    yb[j] = 0.0f;
                }
            }
        }
    }
    size_t sl = (size_t)(rev ? 0 : T) * BH;
    if (h_n) memcpy(h_n, Sh + sl, BH * sizeof(float));
    if (c_n) memcpy(c_n, Sc + sl, BH * sizeof(float));
    return ATTN_OK;
}

size_t attn__lstm_backward_floats(const attn_lstm *m, int T, int B) {
    return (size_t)T * B * 4 * m->hidden_size + (size_t)4 * B * m->hidden_size;
}

int attn_lstm_backward(const attn_lstm *m, int T, int B, int reverse, const int32_t *lengths,
                       const float *x, const float *cache, const float *dy, const float *dh_n,
                       const float *dc_n, float *dx, float *dh0, float *dc0,
                       const attn_lstm_grad *g) {
    return attn__lstm_backward_ws(m, T, B, reverse, lengths, x, cache, dy, dh_n, dc_n, dx, dh0, dc0, g, NULL);
}

int attn__lstm_backward_ws(const attn_lstm *m, int T, int B, int reverse, const int32_t *lengths,
                           const float *x, const float *cache, const float *dy, const float *dh_n,
                           const float *dc_n, float *dx, float *dh0, float *dc0,
                           const attn_lstm_grad *g, float *work) {
    int st = check(m, T, B, lengths, x, cache, "lstm backward");
    if (st) return st;
    const attn__sgemm_fn sgemm = attn__kern()->sgemm;
    const int I = m->input_size, Hd = m->hidden_size, G4 = 4 * Hd, rev = reverse ? 1 : 0;
    const size_t BH = (size_t)B * Hd, TB = (size_t)T * B;
    const float *Sh = cache;
    const float *Sc = Sh + ((size_t)T + 1) * BH;
    const float *Gt = Sc + ((size_t)T + 1) * BH;
    const float *Tc = Gt + TB * G4;
    const float *P = m->peephole;
    float *dP = g && P ? g->peephole : NULL; // (3*Hd) or NULL

    // scratch: dG (T, B, G4) gradients of the pre-activations; dh, dc, dhp, dcp (B, Hd)
    size_t nf = attn__lstm_backward_floats(m, T, B);
    float *own = work ? NULL : attn_calloc(nf, sizeof(float));
    if (!work && !(work = own)) return attn__error(ATTN_ENOMEM, "lstm backward: out of memory for %zu floats", nf);
    float *dG = work, *dh = dG + TB * G4, *dc = dh + BH, *dhp = dc + BH, *dcp = dhp + BH;
    if (dh_n) memcpy(dh, dh_n, BH * sizeof(float));
    if (dc_n) memcpy(dc, dc_n, BH * sizeof(float));

    for (int s = 0; s < T; s++) {
        const int t = rev ? s : T - 1 - s; // the forward's steps, last first
        const size_t ip = (size_t)(t + rev) * BH, in = (size_t)(t + 1 - rev) * BH;
        const float *cp = Sc + ip, *cn = Sc + in;   // (B, Hd)
        const float *gt = Gt + (size_t)t * B * G4;  // (B, G4) [i, f, g, o]
        const float *tc = Tc + (size_t)t * BH;      // (B, Hd)
        float *dg = dG + (size_t)t * B * G4;        // (B, G4)
        for (int b = 0; b < B; b++) {
            float *dhb = dh + (size_t)b * Hd, *dcb = dc + (size_t)b * Hd;
            float *dhpb = dhp + (size_t)b * Hd, *dcpb = dcp + (size_t)b * Hd;
            if (lengths && t >= lengths[b]) { // forward: h, c = h_prev, c_prev; y = 0
                memcpy(dhpb, dhb, (size_t)Hd * sizeof(float));
                memcpy(dcpb, dcb, (size_t)Hd * sizeof(float));
                continue; // dG rows stay 0
            }
            if (dy) {
                const float *dyb = dy + (size_t)t * BH + (size_t)b * Hd;
                for (int j = 0; j < Hd; j++) dhb[j] += dyb[j];
            }
            const float *gb = gt + (size_t)b * G4, *tcb = tc + (size_t)b * Hd;
            const float *cpb = cp + (size_t)b * Hd, *cnb = cn + (size_t)b * Hd;
            float *dgb = dg + (size_t)b * G4;
            for (int j = 0; j < Hd; j++) {
                float i = gb[j], f = gb[Hd + j], gg = gb[2 * Hd + j], o = gb[3 * Hd + j];
                float tch = tcb[j], dhv = dhb[j];
                // h = o * tanh(c)
                float d_o = dhv * tch;
                float dcv = dcb[j] + dhv * o * (1.0f - tch * tch);
                float do_pre = d_o * o * (1.0f - o);          // o = sigmoid(o_pre + p_o * c)
                if (P) {
                    dcv += do_pre * P[2 * Hd + j];
                    if (dP) dP[2 * Hd + j] += do_pre * cnb[j];
                }
                // c = f * c_prev + i * g
                float di_pre = dcv * gg * i * (1.0f - i);      // i = sigmoid(i_pre + p_i * c_prev)
                float df_pre = dcv * cpb[j] * f * (1.0f - f);  // f = sigmoid(f_pre + p_f * c_prev)
                float dg_pre = dcv * i * (1.0f - gg * gg);     // g = tanh(g_pre)
                float dcpv = dcv * f;
                if (P) {
                    dcpv += di_pre * P[j] + df_pre * P[Hd + j];
                    if (dP) dP[j] += di_pre * cpb[j], dP[Hd + j] += df_pre * cpb[j];
                }
                dgb[j] = di_pre, dgb[Hd + j] = df_pre, dgb[2 * Hd + j] = dg_pre, dgb[3 * Hd + j] = do_pre;
                dcpb[j] = dcpv;
                dhpb[j] = 0.0f;
            }
        }
        // [i, f, g, o]_pre = ... + h_prev W_hh^T  ->  dh_prev += dG_t W_hh
        sgemm(0, 0, B, Hd, G4, 1.0f, dg, G4, m->weight_hh, Hd, 1.0f, dhp, Hd);
        float *tmp = dh; dh = dhp; dhp = tmp;
        tmp = dc; dc = dcp; dcp = tmp;
    }
    if (dh0)
        for (size_t k = 0; k < BH; k++) dh0[k] += dh[k];
    if (dc0)
        for (size_t k = 0; k < BH; k++) dc0[k] += dc[k];

    // G = x W_ih^T + b_ih + h_prev W_hh^T + b_hh
    //   -> dx += dG W_ih;  dW_ih += dG^T x;  dW_hh += dG^T h_prev;  db_ih, db_hh += sum dG
    if (dx) sgemm(0, 0, T * B, I, G4, 1.0f, dG, G4, m->weight_ih, I, 1.0f, dx, I);
    if (g && g->weight_ih) sgemm(1, 0, G4, I, T * B, 1.0f, dG, G4, x, I, 1.0f, g->weight_ih, I);
    if (g && g->weight_hh)
        sgemm(1, 0, G4, Hd, T * B, 1.0f, dG, G4, Sh + (size_t)rev * BH, Hd, 1.0f, g->weight_hh, Hd);
    for (size_t r = 0; g && (g->bias_ih || g->bias_hh) && r < TB; r++) {
        const float *d = dG + r * G4;
        for (int j = 0; j < G4; j++) {
            if (g->bias_ih) g->bias_ih[j] += d[j];
            if (g->bias_hh) g->bias_hh[j] += d[j];
        }
    }
    attn_free(own);
    return ATTN_OK;
}

int attn_lstm_cell_forward(const attn_lstm *m, int B, const float *x, const float *h_prev,
                           const float *c_prev, float *h, float *c, float *cache) {
    return attn_lstm_forward(m, 1, B, 0, NULL, x, h_prev, c_prev, h, NULL, c, cache);
}

int attn_lstm_cell_backward(const attn_lstm *m, int B, const float *x, const float *cache,
                            const float *dh, const float *dc, float *dx, float *dh_prev,
                            float *dc_prev, const attn_lstm_grad *g) {
    return attn_lstm_backward(m, 1, B, 0, NULL, x, cache, NULL, dh, dc, dx, dh_prev, dc_prev, g);
}
