/* The operation test registry's recurrent, convolution and pooling operations (the table and
 * the harness are in tests/test_ops.c; see its opening comment). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_ops.h"

/* ---- GRU and LSTM: s = T, B, I, Hd; v = 0 GRU (PyTorch's linear_before_reset = 1), 1 GRU
 * (linear_before_reset = 0), 2 LSTM, 3 LSTM with peepholes; m: bit 0 reverse, bit 1 per-sequence
 * lengths (T, 1, 0, T - 1, ...). T = 1 runs the cell
 * calls (outputs h, and c for LSTM), T > 1 the sequence calls (outputs y, h_n, and c_n).
 * Inputs in order: x, h0, [c0], weight_ih, weight_hh, bias_ih, bias_hh, [peephole]. ------- */

static void rnn_init(prob *p) {
    const int *s = p->r->s, lstm = p->r->v >= 2, G = lstm ? 4 : 3;
    int T = s[0], B = s[1], I = s[2], Hd = s[3];
    add_in(p, "x", (size_t)T * B * I, 1.0f, 2);
    add_in(p, "h0", (size_t)B * Hd, 1.0f, 2);
    if (lstm) add_in(p, "c0", (size_t)B * Hd, 1.0f, 2);
    add_in(p, "weight_ih", (size_t)G * Hd * I, 0.5f, 2);
    add_in(p, "weight_hh", (size_t)G * Hd * Hd, 0.5f, 2);
    add_in(p, "bias_ih", (size_t)G * Hd, 0.3f, 2);
    add_in(p, "bias_hh", (size_t)G * Hd, 0.3f, 2);
    if (p->r->v == 3) add_in(p, "peephole", (size_t)3 * Hd, 0.5f, 2);
    if (T > 1) add_out(p, (size_t)T * B * Hd);
    add_out(p, (size_t)B * Hd);
    if (lstm) add_out(p, (size_t)B * Hd);
    p->nloss = p->nout;
    attn_gru gm = {I, Hd, 1, NULL, NULL, NULL, NULL};
    attn_lstm lm = {I, Hd, NULL, NULL, NULL, NULL, NULL};
    p->n_aux = lstm ? attn_lstm_cache_size(&lm, T, B) : attn_gru_cache_size(&gm, T, B);
    p->ids = malloc(B * sizeof(int32_t));
    for (int b = 0; b < B; b++) p->ids[b] = b % 4 == 0 ? T : b % 4 == 1 ? 1 : b % 4 == 2 ? 0 : T - 1;
    p->aux = malloc(p->n_aux * sizeof(float));
}

/* The layer descriptions and call arguments of a row, over the problem's arrays. */
typedef struct {
    attn_gru gm;
    attn_gru_grad gg;
    attn_lstm lm;
    attn_lstm_grad lg;
    int T, B, rev;
    const int32_t *len;
} rnn_args;

static rnn_args rnn_of(const prob *p) {
    int k = p->r->v >= 2 ? 3 : 2;
    rnn_args a;
    a.gm = (attn_gru){p->r->s[2], p->r->s[3], p->r->v == 0, p->in[k], p->in[k + 1], p->in[k + 2], p->in[k + 3]};
    a.gg = (attn_gru_grad){p->g[k], p->g[k + 1], p->g[k + 2], p->g[k + 3]};
    a.lm = (attn_lstm){p->r->s[2], p->r->s[3], p->in[k], p->in[k + 1], p->in[k + 2], p->in[k + 3], p->in[k + 4]};
    a.lg = (attn_lstm_grad){p->g[k], p->g[k + 1], p->g[k + 2], p->g[k + 3], p->g[k + 4]};
    if (p->r->v != 3) a.lm.peephole = NULL, a.lg.peephole = NULL;
    a.T = p->r->s[0], a.B = p->r->s[1], a.rev = p->r->m & 1;
    a.len = p->r->m & 2 ? p->ids : NULL;
    return a;
}

static int rnn_fwd(prob *p) {
    rnn_args a = rnn_of(p);
    float **o = p->out, *x = p->in[0], *h0 = p->in[1];
    if (p->r->v < 2)
        return a.T == 1 ? attn_gru_cell_forward(&a.gm, a.B, x, h0, o[0], p->aux)
                        : attn_gru_forward(&a.gm, a.T, a.B, a.rev, a.len, x, h0, o[0], o[1], p->aux);
    return a.T == 1 ? attn_lstm_cell_forward(&a.lm, a.B, x, h0, p->in[2], o[0], o[1], p->aux)
                    : attn_lstm_forward(&a.lm, a.T, a.B, a.rev, a.len, x, h0, p->in[2], o[0], o[1], o[2], p->aux);
}

static int rnn_bwd(prob *p, float *const *d) {
    rnn_args a = rnn_of(p);
    float *x = p->in[0], **g = p->g;
    if (p->r->v < 2)
        return a.T == 1 ? attn_gru_cell_backward(&a.gm, a.B, x, p->aux, d[0], g[0], g[1], &a.gg)
                        : attn_gru_backward(&a.gm, a.T, a.B, a.rev, a.len, x, p->aux, d[0], d[1], g[0], g[1], &a.gg);
    return a.T == 1 ? attn_lstm_cell_backward(&a.lm, a.B, x, p->aux, d[0], d[1], g[0], g[1], g[2], &a.lg)
                    : attn_lstm_backward(&a.lm, a.T, a.B, a.rev, a.len, x, p->aux, d[0], d[1], d[2], g[0], g[1], g[2],
                                         &a.lg);
}

/* Row j of a (G*Hd, n) weight block times v (n), in double. */
static double wrow(const float *W, int j, const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += W[(size_t)j * n + i] * v[i];
    return s;
}

static void rnn_ref(const prob *p, double *const *out) {
    const int *s = p->r->s, lstm = p->r->v >= 2, k = lstm ? 3 : 2;
    int T = s[0], B = s[1], I = s[2], Hd = s[3];
    const float *wih = p->in[k], *whh = p->in[k + 1], *bih = p->in[k + 2], *bhh = p->in[k + 3];
    const float *P = p->r->v == 3 ? p->in[k + 4] : NULL;
    double *h = malloc(sizeof(double) * B * Hd * 2), *c = h + B * Hd, *x = malloc(sizeof(double) * (I + 2 * Hd));
    double *hn = x + I, *rh = hn + Hd;
    for (int e = 0; e < B * Hd; e++) h[e] = p->in[1][e], c[e] = lstm ? p->in[2][e] : 0;
    if (T > 1) memset(out[0], 0, sizeof(double) * T * B * Hd); /* steps past a sequence's length */
    for (int b = 0; b < B; b++) {
        int len = p->r->m & 2 ? p->ids[b] : T;
        for (int step = 0; step < len; step++) {
            int t = p->r->m & 1 ? len - 1 - step : step;
            double *hb = h + (size_t)b * Hd, *cb = c + (size_t)b * Hd;
            for (int i = 0; i < I; i++) x[i] = p->in[0][((size_t)t * B + b) * I + i];
            for (int j = 0; j < Hd; j++) {
                double a[4];
                for (int q = 0; q < (lstm ? 4 : 2); q++)
                    a[q] = wrow(wih, q * Hd + j, x, I) + bih[q * Hd + j] + wrow(whh, q * Hd + j, hb, Hd) + bhh[q * Hd + j];
                if (lstm) {
                    double ig = dsig(a[0] + (P ? P[j] * cb[j] : 0)), fg = dsig(a[1] + (P ? P[Hd + j] * cb[j] : 0));
                    double cn = fg * cb[j] + ig * tanh(a[2]);
                    rh[j] = cn, hn[j] = dsig(a[3] + (P ? P[2 * Hd + j] * cn : 0)) * tanh(cn);
                } else {
                    double r = dsig(a[0]), z = dsig(a[1]), xn = wrow(wih, 2 * Hd + j, x, I) + bih[2 * Hd + j], hh;
                    if (p->r->v == 0) {
                        hh = r * (wrow(whh, 2 * Hd + j, hb, Hd) + bhh[2 * Hd + j]);
                    } else {
                        hh = bhh[2 * Hd + j];
                        for (int i = 0; i < Hd; i++) hh += whh[(size_t)(2 * Hd + j) * Hd + i] * dsig(
                            wrow(wih, i, x, I) + bih[i] + wrow(whh, i, hb, Hd) + bhh[i]) * hb[i];
                    }
                    hn[j] = (1 - z) * tanh(xn + hh) + z * hb[j];
                }
            }
            for (int j = 0; j < Hd; j++) {
                hb[j] = hn[j];
                if (lstm) cb[j] = rh[j];
                if (T > 1) out[0][((size_t)t * B + b) * Hd + j] = hn[j];
            }
        }
    }
    int o = T > 1;
    for (int e = 0; e < B * Hd; e++) {
        out[o][e] = h[e];
        if (lstm) out[o + 1][e] = c[e];
    }
    free(h), free(x);
}

static double rnn_flops(const prob *p) {
    const int *s = p->r->s;
    return 2.0 * s[0] * s[1] * (p->r->v >= 2 ? 4 : 3) * s[3] * (s[2] + s[3]);
}

const opdef OP_RNN = {"rnn", rnn_init, rnn_fwd, rnn_bwd, rnn_ref, rnn_flops};

/* ---- conv1d (nn/conv1d.c): s = B, T, Cin, Cout, K, pad; v = 1 with bias; m = 1 with lengths
 * (b % 3: T, K - 1 - 2 pad (no output when >= 0), 1); the bias and lengths in aux and ids. --- */

static int cv_len(const prob *p, int b) { return p->r->m ? p->ids[b] : p->r->s[1]; }

static void cv_init(prob *p) {
    const int *s = p->r->s;
    add_in(p, "x", (size_t)s[0] * s[1] * s[2], 1.0f, 2);
    add_in(p, "W", (size_t)s[3] * s[2] * s[4], 0.5f, 2);
    if (p->r->v) add_in(p, "b", s[3], 1.0f, 2);
    p->ids = malloc(s[0] * sizeof(int32_t));
    for (int b = 0; b < s[0]; b++) p->ids[b] = b % 3 == 0 ? s[1] : b % 3 == 1 ? (s[4] - 1 - 2 * s[5] > 0 ? s[4] - 1 - 2 * s[5] : 0) : 1;
    add_out(p, (size_t)s[0] * attn_conv1d_out_length(s[1], s[4], s[5]) * s[3]);
    p->nloss = 1;
}

static int cv_fwd(prob *p) {
    const int *s = p->r->s;
    return attn_conv1d_forward(p->out[0], p->in[0], p->r->m ? p->ids : NULL, p->in[1], p->r->v ? p->in[2] : NULL, s[0],
                               s[1], s[2], s[3], s[4], s[5]);
}

static int cv_bwd(prob *p, float *const *dout) {
    const int *s = p->r->s;
    return attn_conv1d_backward(p->g[0], p->g[1], p->r->v ? p->g[2] : NULL, dout[0], p->in[0], p->r->m ? p->ids : NULL,
                                p->in[1], s[0], s[1], s[2], s[3], s[4], s[5]);
}

static void cv_ref(const prob *p, double *const *out) {
    const int *s = p->r->s;
    int B = s[0], T = s[1], Cin = s[2], Cout = s[3], K = s[4], P = s[5], To = attn_conv1d_out_length(T, K, P);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < To; t++)
            for (int o = 0; o < Cout; o++) {
                int L = cv_len(p, b);
                double y = t < L + 2 * P - K + 1 && p->r->v ? p->in[2][o] : 0;
                for (int k = 0; k < K && t < L + 2 * P - K + 1; k++)
                    for (int c = 0, u = t + k - P; c < Cin && u >= 0 && u < L; c++)
                        y += (double)p->in[0][((size_t)b * T + u) * Cin + c] * p->in[1][((size_t)o * Cin + c) * K + k];
                out[0][((size_t)b * To + t) * Cout + o] = y;
            }
}

static double cv_flops(const prob *p) { return 2.0 * p->n_out[0] * p->r->s[2] * p->r->s[4]; }

const opdef OP_CONV = {"conv1d", cv_init, cv_fwd, cv_bwd, cv_ref, cv_flops};

/* ---- Pooling over time (nn/pool.c): s = B, T, C; v = 0 max, 1 mean; m = 1 with lengths
 * (b % 3: T, T - 2 or 0, 0). Max's inputs are spaced 0.1 apart, beyond the differences'
 * steps, so no perturbation moves its argmax. ------------------------------------------------ */

static void pl_init(prob *p) {
    int B = p->r->s[0], T = p->r->s[1], C = p->r->s[2];
    size_t n = (size_t)B * T * C;
    float *x = add_in(p, "x", n, 1.0f, 2);
    for (size_t i = 0; p->r->v == 0 && i < n; i++) x[i] = 0.1f * (float)((i * 7919) % n) - 0.05f * (float)n;
    p->ids = malloc(B * sizeof(int32_t));
    for (int b = 0; b < B; b++) p->ids[b] = b % 3 == 0 ? T : b % 3 == 1 && T > 2 ? T - 2 : 0;
    p->aux = malloc(2 * B * C * sizeof(float)); /* argmax (B, C) int32 */
    add_out(p, (size_t)B * C);
    p->nloss = 1;
}

static int pl_fwd(prob *p) {
    const int *s = p->r->s;
    const int32_t *len = p->r->m ? p->ids : NULL;
    return p->r->v ? attn_mean_pool_time_forward(p->out[0], p->in[0], len, s[0], s[1], s[2])
                   : attn_max_pool_time_forward(p->out[0], (int32_t *)(void *)p->aux, p->in[0], len, s[0], s[1], s[2]);
}

static int pl_bwd(prob *p, float *const *dout) {
    const int *s = p->r->s;
    return p->r->v ? attn_mean_pool_time_backward(p->g[0], dout[0], p->r->m ? p->ids : NULL, s[0], s[1], s[2])
                   : attn_max_pool_time_backward(p->g[0], dout[0], (int32_t *)(void *)p->aux, s[0], s[1], s[2]);
}

static void pl_ref(const prob *p, double *const *out) {
    int B = p->r->s[0], T = p->r->s[1], C = p->r->s[2];
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            int L = p->r->m ? p->ids[b] : T;
            double m = L ? -INFINITY : 0, sum = 0;
            for (int t = 0; t < L; t++) {
                double v = p->in[0][((size_t)b * T + t) * C + c];
                m = fmax(m, v), sum += v;
            }
            out[0][(size_t)b * C + c] = p->r->v ? (L ? sum / L : 0) : m;
        }
}

const opdef OP_POOL = {"pool_time", pl_init, pl_fwd, pl_bwd, pl_ref, NULL};
