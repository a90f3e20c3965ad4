/* attn/layers.h: the neural-network layers that models are built from, each a forward and a
 * backward on plain float arrays (llm.c style): recurrent cells (GRU, LSTM) and whole
 * sequences through them, the linear layer, layer normalisation, embedding lookup, softmax and
 * log-softmax, cross-entropy, dropout, and the elementwise activations. (The attention
 * function is in attn/attention.h.)
 *
 * Conventions for every layer here:
 *  - Arrays are C order and contiguous; each argument documents its shape. Letters:
 *      N rows (any flattening of the leading dimensions), C the last (normalised or class)
 *      axis, V vocabulary size, E embedding size, T time steps, B batch, I input size,
 *      Hd hidden size, G gates per cell (GRU 3, LSTM 4); for linear, M rows, K input and
 *      N output features.
 *  - Forward writes (=) its outputs. Backward ACCUMULATES (+=) into every gradient it is given,
 *    so gradients of a parameter shared by several uses add up; zero them before a step.
 *    A gradient pointer may be NULL when that gradient is not wanted.
 *  - What a backward needs from its forward is either an output of the forward (softmax's
 *    probabilities, layernorm's mean and rstd) or, for the recurrent layers, a cache in caller
 *    memory whose size in floats a *_cache_size() function tells.
 *  - Calls that can fail return ATTN_OK or a negative ATTN_E* status and leave a message
 *    (attn_last_error()): NULL required pointers, sizes < 1, ids or lengths out of range.
 *  - Numerics: reductions (means, variances, softmax sums, losses) accumulate in double;
 *    softmax, log-softmax and cross-entropy use the library's own expf (relative error under
 *    1e-7, the same bits however a loop is vectorised).
 *  - These are the implementations training runs: the autograd tape (attn/autograd.h) calls
 *    the same code over blocks of rows in parallel, so the results here are its results.
 *  - Single-threaded apart from the matrix products, which go through the library's sgemm
 *    (deterministic: the same bits for any thread count).
 */
#ifndef ATTN_LAYERS_H
#define ATTN_LAYERS_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* ---- Linear ------------------------------------------------------------------------------ */

/* y (M, N) = x (M, K) W^T + b, as torch.nn.Linear: W (N, K), b (N) or NULL (no bias).
 * M may be 0 (nothing to do); K, N >= 1. */
int attn_linear_forward(float *y, const float *x, const float *W, const float *b, int M, int K, int N);
/* For dy (M, N): dx (M, K) += dy W, dW (N, K) += dy^T x, db (N) += sum of dy's rows; each
 * gradient may be NULL. x and W as given to the forward (x may be NULL when dW is, W when dx
 * is). */
int attn_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W, int M,
                         int K, int N);

/* ---- Activations (elementwise over n floats; out may be the same array as inp) ----------- */

/* out = tanh(inp).            backward: dinp += dout * (1 - out^2)   (from the OUTPUT) */
void attn_tanh_forward(float *out, const float *inp, size_t n);
void attn_tanh_backward(float *dinp, const float *out, const float *dout, size_t n);

/* out = 1 / (1 + exp(-inp)).  backward: dinp += dout * out * (1 - out) (from the OUTPUT) */
void attn_sigmoid_forward(float *out, const float *inp, size_t n);
void attn_sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n);

/* out = max(inp, 0).          backward: dinp += dout * (inp > 0)   (from the INPUT) */
void attn_relu_forward(float *out, const float *inp, size_t n);
void attn_relu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* GELU, exact erf form (PyTorch's default, approximate='none'):
 *   out = inp * Phi(inp) = 0.5 * inp * (1 + erf(inp / sqrt(2)))
 *   backward: dinp += dout * (Phi(inp) + inp * phi(inp)), phi the standard normal density
 *   (from the INPUT). */
void attn_gelu_forward(float *out, const float *inp, size_t n);
void attn_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* ---- Softmax and log-softmax over the last axis ----------------------------------------- */

/* inp, out (N, C); out may be the same array as inp. Each row: out = exp(x - max) / sum.
 * A row whose entries are all -inf gives all zeros (softmax) or all -inf (log-softmax).
 * Another axis: move it last (or view the array as (N, C) when it is already innermost). */
int attn_softmax_forward(float *out, const float *inp, int N, int C);
/* dinp (N, C) += out * (dout - sum_c dout * out); out = the forward's output (N, C). */
int attn_softmax_backward(float *dinp, const float *out, const float *dout, int N, int C);

/* out (N, C) = inp - max - log(sum exp(inp - max)). */
int attn_log_softmax_forward(float *out, const float *inp, int N, int C);
/* dinp (N, C) += dout - exp(out) * sum_c dout; out = the forward's output (N, C). */
int attn_log_softmax_backward(float *dinp, const float *out, const float *dout, int N, int C);

/* ---- Cross-entropy from logits ------------------------------------------------------------ */

typedef enum {
    ATTN_REDUCE_NONE = 0, /* one loss per row */
    ATTN_REDUCE_MEAN = 1, /* sum of row losses / sum of the weights of the counted rows */
    ATTN_REDUCE_SUM = 2   /* sum of row losses */
} attn_reduction;

/* torch.nn.functional.cross_entropy(logits, targets, weight, ignore_index=ignore_index,
 * reduction=..., label_smoothing=eps) with class indices, and ONNX's SoftmaxCrossEntropyLoss
 * (eps = 0), over rows of the last axis:
 *
 *   lse_i = log(sum_c exp(logits[i, c])), logp = logits - lse per row
 *   loss_i = (1 - eps) * w[y_i] * (-logp[i, y_i]) + (eps / C) * sum_c w[c] * (-logp[i, c])
 *   loss_i = 0 for rows with y_i == ignore_index (they are not counted)
 *   MEAN: sum_i loss_i / sum_{counted i} w[y_i];  SUM: sum_i loss_i;  NONE: loss_i per row
 *
 *   logits  (N, C)
 *   targets (N) int32 class ids in [0, C), or ignore_index: rows whose target equals it
 *           are skipped (pass a value no target uses, e.g. PyTorch's default -100, to skip
 *           none)
 *   weight  (C) class weights, or NULL for all ones
 *   eps     label smoothing in [0, 1]
 *   out     NONE: (N) per-row losses; MEAN and SUM: (1) the scalar loss
 *   lse     (N) written: each row's log-sum-exp, which the backward needs (ONNX's log_prob
 *           is logits - lse)
 *
 * Differs from PyTorch in one case: MEAN with no counted row (all targets ignored, or all
 * their weights 0) gives 0 here and zero gradients, where PyTorch gives NaN.
 * ATTN_EINVAL for a target outside [0, C) that is not ignore_index. */
int attn_cross_entropy_forward(float *out, float *lse, const float *logits, const int32_t *targets,
                               const float *weight, int N, int C, int ignore_index, float eps,
                               attn_reduction reduction);
/* dlogits (N, C) += d out / d logits * dout, with dout (N) for NONE, (1) for MEAN and SUM:
 *   d loss_i / d logits[i, j] = (1 - eps) w[y_i] (p_ij - [j == y_i]) + (eps / C) (W p_ij - w[j]),
 *   p = exp(logits - lse), W = sum_c w[c]; divided by the MEAN denominator for MEAN.
 * The other arguments as given to the forward. */
int attn_cross_entropy_backward(float *dlogits, const float *dout, const float *logits, const float *lse,
                                const int32_t *targets, const float *weight, int N, int C,
                                int ignore_index, float eps, attn_reduction reduction);

/* ---- Layer normalisation over the last axis ----------------------------------------------- */

/* out = (inp - mean) * rstd * weight + bias per row, rstd = 1 / sqrt(var + eps), var the
 * biased variance (as torch.nn.LayerNorm and ONNX LayerNormalization).
 *   inp, out (N, C); weight, bias (C) or NULL (NULL weight = ones, NULL bias = zeros; both
 *   NULL is elementwise_affine=False); mean, rstd (N) written, or NULL when no backward
 *   follows. ONNX's axis a over shape (d0, ..., dk) is this with N = d0*...*d(a-1),
 *   C = da*...*dk (its Mean and InvStdDev are mean and rstd). */
int attn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps);
/* dinp (N, C), dweight (C), dbias (C) += gradients (any may be NULL); inp, weight (NULL =
 * ones, as in the forward), mean and rstd as given to / returned by the forward. */
int attn_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int N, int C);

/* ---- Embedding lookup --------------------------------------------------------------------- */

/* out (N, E) row i = table[ids[i]]; table (V, E); ids (N) int32 in [0, V), else ATTN_EINVAL
 * (naming the first bad position) and out is left unspecified. */
int attn_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int V, int E);
/* dtable (V, E) row ids[i] += dout row i (rows accumulate in order i = 0..N-1), except the
 * padding_idx row, which gets no gradient (torch.nn.Embedding(padding_idx=...)).
 * padding_idx: a row in [0, V), or negative for none (PyTorch's negative padding_idx counts
 * from the end: pass V + padding_idx). */
int attn_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int V,
                            int E, int padding_idx);

/* ---- Dropout (inverted) --------------------------------------------------------------------- */

/* Each element is kept with probability 1 - p, drawing one attn_rng_uniform(rng) per element
 * in order (kept iff u >= p): mask[i] = 1 if kept else 0; out = inp * mask / (1 - p).
 * p == 0 copies (and still sets the mask, drawing no numbers); p == 1 gives zeros (drawing
 * one number per element when rng is not NULL, as for any other p; none when NULL). out may
 * be the same array as inp. inp, out, mask (n). ATTN_EINVAL unless 0 <= p <= 1. */
int attn_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, attn_rng *rng);
/* dinp (n) += dout * mask / (1 - p), with the forward's mask and p (0 when p == 1). */
int attn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

/* ---- Recurrent layers: GRU and LSTM --------------------------------------------------------- */

/* Weights are stored as PyTorch's nn.GRU / nn.LSTM store one layer and direction
 * (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0; the reverse direction's are the
 * "_reverse" ones), so checkpoints keep PyTorch's names and shapes:
 *
 * GRU, gate blocks in PyTorch's order [r; z; n] (ONNX orders them [z; r; h]):
 *   weight_ih (3*Hd, I), weight_hh (3*Hd, Hd), bias_ih (3*Hd), bias_hh (3*Hd)
 *   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
 *   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
 *   linear_before_reset = 1 (PyTorch nn.GRU; ONNX linear_before_reset=1):
 *     n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
 *   linear_before_reset = 0 (ONNX's default; the original Cho et al. 2014 form):
 *     n = tanh(x W_in^T + b_in + (r * h) W_hn^T + b_hn)
 *   h' = (1 - z) * n + z * h
 *
 * LSTM, gate blocks in PyTorch's order [i; f; g; o] (ONNX orders them [i; o; f; c]):
 *   weight_ih (4*Hd, I), weight_hh (4*Hd, Hd), bias_ih (4*Hd), bias_hh (4*Hd),
 *   optional peepholes (3*Hd) [p_i; p_f; p_o] (ONNX's P, which orders them [i; o; f];
 *   PyTorch has none: pass NULL):
 *   i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi + p_i * c)
 *   f = sigmoid(x W_if^T + b_if + h W_hf^T + b_hf + p_f * c)
 *   g = tanh   (x W_ig^T + b_ig + h W_hg^T + b_hg)
 *   c' = f * c + i * g
 *   o = sigmoid(x W_io^T + b_io + h W_ho^T + b_ho + p_o * c')
 *   h' = o * tanh(c')
 *
 * Biases may be NULL (zeros). Not here: ONNX's clip, input_forget and non-default
 * activations, stacked layers (run one layer's y into the next), projections (proj_size).
 *
 * Sequences are time-major: x (T, B, I), y (T, B, Hd). A bidirectional layer is two calls,
 * reverse = 0 and reverse = 1 with their own weights, whose outputs the caller concatenates
 * (PyTorch's output[..., :Hd] is the forward direction, [..., Hd:] the reverse one).
 * lengths (B) int32 in [0, T], or NULL for all T: batch element b runs steps t < lengths[b]
 * only (forward: t = 0 .. len-1; reverse: t = len-1 .. 0); at steps t >= lengths[b] its
 * state is left unchanged and its output is 0, as with PyTorch's packed sequences (the
 * returned h_n, c_n are the state after the last real step: t = len-1 forward, t = 0 reverse).
 *
 * The backward needs the forward's cache (caller memory of *_cache_size() floats, written by
 * the forward, read-only to the backward, which may be called more than once) plus the same
 * arguments; it allocates its own scratch (ATTN_ENOMEM possible). The single-step "cell"
 * calls are the sequence calls with T = 1, for decoders whose next input depends on the
 * previous output; their cache is *_cache_size(m, 1, B) floats. */

typedef struct {
    int input_size;           /* I */
    int hidden_size;          /* Hd */
    int linear_before_reset;  /* 1 = PyTorch nn.GRU; 0 = ONNX's default (see above) */
    const float *weight_ih;   /* (3*Hd, I)  rows [r; z; n] */
    const float *weight_hh;   /* (3*Hd, Hd) rows [r; z; n] */
    const float *bias_ih;     /* (3*Hd) or NULL */
    const float *bias_hh;     /* (3*Hd) or NULL */
} attn_gru;

/* Gradients of the parameters, accumulated (+=); any may be NULL. Same shapes. */
typedef struct {
    float *weight_ih, *weight_hh, *bias_ih, *bias_hh;
} attn_gru_grad;

/* Floats of cache for T steps over a batch of B: (T+1)*B*Hd + T*B*4*Hd. 0 if m is invalid. */
size_t attn_gru_cache_size(const attn_gru *m, int T, int B);

/* x (T, B, I); h0 (B, Hd) or NULL for zeros; y (T, B, Hd) written; h_n (B, Hd) written, or
 * NULL; cache written. */
int attn_gru_forward(const attn_gru *m, int T, int B, int reverse, const int32_t *lengths,
                     const float *x, const float *h0, float *y, float *h_n, float *cache);
/* dy (T, B, Hd) or NULL (no gradient through the outputs); dh_n (B, Hd) or NULL (none
 * through the final state). Accumulates dx (T, B, I), dh0 (B, Hd) and g (each may be NULL).
 * m, T, B, reverse, lengths, x and cache as given to the forward. */
int attn_gru_backward(const attn_gru *m, int T, int B, int reverse, const int32_t *lengths,
                      const float *x, const float *cache, const float *dy, const float *dh_n,
                      float *dx, float *dh0, const attn_gru_grad *g);

/* One step: x (B, I), h_prev (B, Hd) or NULL for zeros -> h (B, Hd); cache of
 * attn_gru_cache_size(m, 1, B) floats. Backward: dh (B, Hd) -> dx (B, I) +=, dh_prev
 * (B, Hd) +=, g +=. */
int attn_gru_cell_forward(const attn_gru *m, int B, const float *x, const float *h_prev,
                          float *h, float *cache);
int attn_gru_cell_backward(const attn_gru *m, int B, const float *x, const float *cache,
                           const float *dh, float *dx, float *dh_prev, const attn_gru_grad *g);

typedef struct {
    int input_size;          /* I */
    int hidden_size;         /* Hd */
    const float *weight_ih;  /* (4*Hd, I)  rows [i; f; g; o] */
    const float *weight_hh;  /* (4*Hd, Hd) rows [i; f; g; o] */
    const float *bias_ih;    /* (4*Hd) or NULL */
    const float *bias_hh;    /* (4*Hd) or NULL */
    const float *peephole;   /* (3*Hd) [p_i; p_f; p_o] or NULL (none, as PyTorch) */
} attn_lstm;

typedef struct {
    float *weight_ih, *weight_hh, *bias_ih, *bias_hh, *peephole;
} attn_lstm_grad;

/* Floats of cache: 2*(T+1)*B*Hd + T*B*5*Hd. 0 if m is invalid. */
size_t attn_lstm_cache_size(const attn_lstm *m, int T, int B);

/* x (T, B, I); h0, c0 (B, Hd) or NULL for zeros; y (T, B, Hd) written; h_n, c_n (B, Hd)
 * written or NULL; cache written. */
int attn_lstm_forward(const attn_lstm *m, int T, int B, int reverse, const int32_t *lengths,
                      const float *x, const float *h0, const float *c0, float *y, float *h_n,
                      float *c_n, float *cache);
/* dy (T, B, Hd), dh_n, dc_n (B, Hd): each may be NULL. Accumulates dx (T, B, I), dh0, dc0
 * (B, Hd) and g (each may be NULL). */
int attn_lstm_backward(const attn_lstm *m, int T, int B, int reverse, const int32_t *lengths,
                       const float *x, const float *cache, const float *dy, const float *dh_n,
                       const float *dc_n, float *dx, float *dh0, float *dc0,
                       const attn_lstm_grad *g);

/* One step: x (B, I), h_prev, c_prev (B, Hd) or NULL for zeros -> h, c (B, Hd); cache of
 * attn_lstm_cache_size(m, 1, B) floats. Backward: dh, dc (B, Hd) (either may be NULL) ->
 * dx (B, I), dh_prev, dc_prev (B, Hd), g, all +=. */
int attn_lstm_cell_forward(const attn_lstm *m, int B, const float *x, const float *h_prev,
                           const float *c_prev, float *h, float *c, float *cache);
int attn_lstm_cell_backward(const attn_lstm *m, int B, const float *x, const float *cache,
                            const float *dh, const float *dc, float *dx, float *dh_prev,
                            float *dc_prev, const attn_lstm_grad *g);

/* ---- 1-D convolution over token sequences (Kim 2014) ---------------------------------------
 * As torch.nn.functional.conv1d with stride 1, dilation 1, one group and zero padding `pad`
 * (0 <= pad < K) on both ends, but channels last: x (B, T, Cin) (as the embedding gives it),
 * y (B, To, Cout) with To = attn_conv1d_out_length(T, K, pad). W (Cout, Cin, K) (PyTorch's
 * Conv1d layout, so state_dict names and shapes carry over), bias (Cout) or NULL.
 * lengths (B) int32 in [0, T], or NULL for all T: sequence b is x[b, :lengths[b]] with the
 * padding after its last real position, so positions past it never reach an output; it has
 * attn_conv1d_out_length(lengths[b], K, pad) outputs and the rest of its rows of y are 0.
 * A sequence shorter than K - 2 pad has no outputs (its rows are 0; To = 0 writes nothing).
 * Sequences run in parallel and the products on the library's sgemm: the same bits for any
 * thread count. Allocates a work buffer per call (the autograd op does not). */

/* max(0, T + 2 pad - K + 1): the outputs of a sequence of T positions. */
int attn_conv1d_out_length(int T, int K, int pad);
int attn_conv1d_forward(float *y, const float *x, const int32_t *lengths, const float *W, const float *b, int B, int T,
                        int Cin, int Cout, int K, int pad);
/* For dy (B, To, Cout) (rows past each sequence's outputs are ignored): dx (B, T, Cin) += (0 at
 * padded positions), dW (Cout, Cin, K) +=, db (Cout) +=; each may be NULL. */
int attn_conv1d_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const int32_t *lengths,
                         const float *W, int B, int T, int Cin, int Cout, int K, int pad);

/* ---- Pooling over time with lengths ----------------------------------------------------------
 * x (B, T, C) -> y (B, C) over the positions t < lengths[b] (lengths (B) int32 in [0, T], or
 * NULL for all T); an empty sequence gives 0 and no gradient. */

/* Max over time: y[b, c] = max_t x[b, t, c]; argmax (B, C) int32 gets the position (the first
 * of equal maxima; the first NaN, which propagates as in torch.max; -1 for an empty sequence).
 * Backward: dx (B, T, C) += dy (B, C) at each argmax position. */
int attn_max_pool_time_forward(float *y, int32_t *argmax, const float *x, const int32_t *lengths, int B, int T, int C);
int attn_max_pool_time_backward(float *dx, const float *dy, const int32_t *argmax, int B, int T, int C);

/* Masked mean: y[b, c] = (1 / L_b) sum_{t < L_b} x[b, t, c], summed in double.
 * Backward: dx[b, t, c] += dy[b, c] / L_b for t < L_b. */
int attn_mean_pool_time_forward(float *y, const float *x, const int32_t *lengths, int B, int T, int C);
int attn_mean_pool_time_backward(float *dx, const float *dy, const int32_t *lengths, int B, int T, int C);

/* ---- 2-D convolution and max pooling over images (LeCun et al. 1998) ---------------------------
 * As torch.nn.functional.conv2d with one group, dilation 1, and the same stride >= 1 and zero
 * padding pad >= 0 on both axes, in PyTorch's NCHW layout: x (B, Cin, H, W), W (Cout, Cin, KH,
 * KW) (Conv2d's weight layout, so state_dicts carry over), bias (Cout) or NULL, y (B, Cout, Ho,
 * Wo) with Ho = attn_conv2d_out_size(H, KH, stride, pad), Wo likewise; a shape with no output
 * (H + 2 pad < KH) is an error (ATTN_ESHAPE). B may be 0 (nothing to do). Images run in
 * parallel, the products on the library's sgemm (im2col): the same bits for any thread count.
 * Allocates a work buffer per call (the autograd op does not). */

/* (H + 2 pad - K) / stride + 1 (floor), or 0 when H + 2 pad < K or stride < 1. */
int attn_conv2d_out_size(int H, int K, int stride, int pad);
int attn_conv2d_forward(float *y, const float *x, const float *W, const float *b, int B, int Cin, int H, int Wd,
                        int Cout, int KH, int KW, int stride, int pad);
/* For dy (B, Cout, Ho, Wo): dx (B, Cin, H, W) +=, dW (Cout, Cin, KH, KW) +=, db (Cout) +=;
 * each may be NULL (x may be NULL when dW is, W when dx is). */
int attn_conv2d_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W, int B,
                         int Cin, int H, int Wd, int Cout, int KH, int KW, int stride, int pad);

/* Max pooling as torch.nn.functional.max_pool2d(x, k, stride) (no padding, floor mode):
 * x (B, C, H, W) -> y (B, C, Ho, Wo), Ho = (H - k) / stride + 1 (attn_conv2d_out_size(H, k,
 * stride, 0)), k <= H and W; argmax (B, C, Ho, Wo) int32 gets the position in the plane (h W
 * + w) of each maximum: the first of equal maxima in row-major order, the first NaN (which
 * propagates, as PyTorch's). Backward: dx (B, C, H, W) += dy at each argmax (overlapping
 * windows add up). */
int attn_max_pool2d_forward(float *y, int32_t *argmax, const float *x, int B, int C, int H, int W, int k, int stride);
int attn_max_pool2d_backward(float *dx, const float *dy, const int32_t *argmax, int B, int C, int H, int W, int k,
                             int stride);

/* ---- The glimpse sensor (Mnih et al. 2014, "Recurrent Models of Visual Attention") -----------
 * img (B, C, H, W); loc (B, 2) the location of each image's glimpse, (row, col) in [-1, 1]:
 * (-1, -1) the top-left corner, (0, 0) the centre, (1, 1) the bottom-right corner; y (B,
 * scales C, size, size), channel i C + c holding scale i of channel c. Scale i (0-based) is
 * the square patch of side s = size 2^i centred at the location, zero outside the image,
 * averaged down to size x size over blocks of 2^i x 2^i pixels (each block's mean, summed in
 * double): each patch twice the side of the one before, every one size x size.
 *
 * Which pixels, exactly (attn_glimpse_box): the centre pixel is
 *   row cr = floor((loc_row + 1) / 2 H),   column cc = floor((loc_col + 1) / 2 W)
 * and scale i covers rows [cr - s/2, cr - s/2 + s) and columns [cc - s/2, cc - s/2 + s)
 * (s/2 rounded down). So on a 28 x 28 image with size 8, (0, 0) gives centre pixel (14, 14)
 * and rows and columns 10..17 at scale 0, 6..21 at scale 1; an odd size puts the centre pixel
 * in the middle (size 5: rows 12..16). (-1, -1) centres the patches on the top-left corner
 * (pixel (0, 0), the patch 3/4 outside); (1, 1) on pixel (H, W), just past the bottom-right
 * corner. A location outside [-1, 1] is not an error: the patch is zero where it falls off
 * the image, entirely when it misses it (a model clamps its locations if it wants them
 * inside); a location that is not finite is an error. scales in [1, 16], size 2^(scales-1)
 * <= 65536.
 *
 * Backward: dimg (B, C, H, W) += each output's gradient spread over its block (/ 4^i), for
 * the pixels inside the image. There is no gradient with respect to the location: the
 * location is not differentiable here (the patch boundaries are integers), and RAM trains
 * its location network by REINFORCE, not by backpropagation through the sensor. Images run
 * in parallel: the same bits for any thread count. */
int attn_glimpse_forward(float *y, const float *img, const float *loc, int B, int C, int H, int W, int size,
                         int scales);
int attn_glimpse_backward(float *dimg, const float *dy, const float *loc, int B, int C, int H, int W, int size,
                          int scales);
/* The patch of scale `scale` (0-based) at loc (2) (row, col) on an H x W image: its top row,
 * left column (either may be negative or past the image) and side size 2^scale, as above. For
 * drawing the glimpses. */
void attn_glimpse_box(const float *loc, int H, int W, int size, int scale, int *top, int *left, int *side);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
