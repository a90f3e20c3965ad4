/* Internal forward/backward pairs of the neural-network layers (not API): each layer's math
 * lives here once, on raw pointers over a range of rows or elements, so that the public
 * functions of attn/layers.h (all rows at once) and the autograd tape (fixed blocks of rows in
 * parallel, src/autograd/) run the same arithmetic. Backwards that take `accumulate` add (+=)
 * into the input gradient when it is 1 and write it (=) when it is 0 (a fresh tape buffer).
 * Matrix products go through the kernel table's sgemm (attn__kern()->sgemm), so they get faster
 * when it does and stay deterministic for any thread count.
 * Letters: M rows (batch times sequence), K input features, N output features (linear);
 * R rows, C the last axis (row ops); n elements (dropout).
 */
#ifndef ATTN_NN_INTERNAL_H
#define ATTN_NN_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "attn/core.h"
#include "attn/attention.h"
#include "attn/layers.h"

/* ---- cosine score (nn/attention_cosine.c) ------------------------------------------------------ */

/* Rows of X (B, Hx, N, d) with strides xs divided by max(|x|, 1e-12) into contiguous out;
 * the norms (B*Hx*N) kept for the backward. */
void attn__cos_normalise_rows(const float *X, const int64_t xs[3], int B, int Hx, int N, int d, float *out, float *norms);
/* dX (strides s) from dX̂ (contiguous rows of d), through x̂ = x / max(|x|, eps). */
void attn__cos_backward(const float *xhat, const float *norms, const float *dxhat, size_t rows, int d,
                        float *dx, const int64_t s[3], int Hx, int N);

/* ---- linear (nn/linear.c) ------------------------------------------------------------------ */

/* y (M, N) = x (M, K) W^T + b, with W (N, K) (PyTorch's nn.Linear layout), b (N) or NULL.
 * x rows are ldx floats apart (ldx >= K; 0 = K); y is contiguous. */
void attn__linear_forward(float *y, const float *x, int64_t ldx, const float *W, const float *b, int M, int K, int N);

/* Backward of attn__linear_forward, for dy (M, N). Each gradient may be NULL (skipped); its
 * flag says whether it is added to (1: +=) or written (0: =):
 *   dx (M, K) (+)= dy W         dW (N, K) (+)= dy^T x         db (N) (+)= sum of dy's rows
 * db sums each column in row order (parallel over columns), so any thread count gives the
 * same bits. */
void attn__linear_backward(float *dx, int dx_acc, float *dW, int dW_acc, float *db, int db_acc, const float *dy,
                           const float *x, int64_t ldx, const float *W, int M, int K, int N);

/* ---- sparse linear (nn/sparse_linear.c) ------------------------------------------------------ */

/* y (N, C) = X (N, F) W^T + b with X in CSR: rowptr (N + 1), col and val (rowptr[N]), the
 * columns in [0, F) (checked by the caller); W (C, F), b (C) or NULL. An empty row gives b. */
void attn__sparse_linear_forward(float *y, const int64_t *rowptr, const int32_t *col, const float *val, const float *W,
                                 const float *b, int N, int F, int C);
/* Backward for dy (N, C); dW (C, F) (+)= dy^T X and db (C) (+)= the sum of dy's rows, each
 * skipped when NULL, added to (flag 1) or written (0); rows in order, so the bits are fixed. */
void attn__sparse_linear_backward(float *dW, int dW_acc, float *db, int db_acc, const float *dy, const int64_t *rowptr,
                                  const int32_t *col, const float *val, int N, int F, int C);

/* ---- embedding (nn/embedding.c) ----------------------------------------------------------- */

/* out (N, E) row i = table[ids[i]], table (V, E), ids (N) already checked to be in [0, V). */
void attn__embedding_forward(float *out, const int32_t *ids, const float *table, int64_t N, int64_t E);
/* dtable (V, E) row ids[i] += dout (N, E) row i, in order i = 0..N-1, except rows whose id is
 * padding_idx. */
void attn__embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t E,
                              int padding_idx);

/* ---- row ops (nn/loss.c, nn/layernorm.c) ------------------------------------------------ */

/* Softmax (logsm = 0) or log-softmax (logsm = 1) of each row: inp, out (R, C); out may be inp.
 * A row holding a NaN gives NaNs; a row of -inf gives 0 (softmax) or -inf (log-softmax). */
void attn__softmax_forward(float *out, const float *inp, int64_t R, int64_t C, int logsm);
/* dinp (R, C) (+)= the gradient, from the forward's out (R, C) and dout (R, C). */
void attn__softmax_backward(float *dinp, const float *out, const float *dout, int64_t R, int64_t C, int logsm,
                            int accumulate);

/* Cross-entropy of rows of logits (R, C) against targets (R) (see attn_cross_entropy_forward):
 * writes lse (R), each row's log-sum-exp, and, when losses is not NULL, each row's loss (R)
 * (0 for an ignored row); returns the sum of the row losses, added in row order. weight (C)
 * or NULL for ones. Targets must have been checked. */
double attn__cross_entropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets,
                                   const float *weight, int64_t R, int64_t C, int ignore_index, float eps);
/* dlogits (R, C) (+)= scale_r * d loss_r / d logits, scale_r = row_scale[r] if row_scale (R) is
 * not NULL, else scale; ignored rows get 0. logits and lse as given to / by the forward. */
void attn__cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                  const float *weight, const float *row_scale, float scale, int64_t R, int64_t C,
                                  int ignore_index, float eps, int accumulate);

/* Layer normalisation of each row: inp, out (R, C); weight, bias (C) or NULL; mean, rstd (R)
 * written (NULL when no backward follows). */
void attn__layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int64_t R, int64_t C, float eps);
/* dinp (R, C) (+)= the input gradient (skipped when NULL); dweight, dbias (C) += the sums over
 * these rows (always added: the tape gives each block of rows its own zeroed partial sums). */
void attn__layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const float *mean, const float *rstd, int64_t R, int64_t C,
                              int accumulate);

/* ---- dropout (nn/dropout.c) ------------------------------------------------------------- */

/* Inverted dropout of rate p in [0, 1] with one attn_rng_uniform draw per element, in order:
 * mask[i] = (u_i >= p), out[i] = mask[i] ? inp[i] / (1 - p) : 0 (0 when p == 1). out, mask,
 * inp (n). */
void attn__dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n, float p, attn_rng *rng);
/* dinp (n) (+)= mask ? dout * scale : 0, with the forward's mask and scale = 1 / (1 - p) (0
 * when p == 1). */
void attn__dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p, int accumulate);

/* ---- fused dropout (nn/dropout.c) ----------------------------------------------------------
 * The counter-based dropout the Transformer fuses into its residual adds and its feed-forward
 * relu (see nn/dropout.c for the mask): d describes one op's mask, over elements [i0, i1). */
typedef struct {
    uint64_t seed;   /* one 64-bit draw per op */
    uint32_t thresh; /* round(p * 2^16): element i is kept iff its 16-bit field >= thresh */
    float scale;     /* 1 / (1 - thresh / 2^16) */
} attn__dropmask;

/* The mask of rate p (0 < p < 1) with the given seed. */
attn__dropmask attn__dropmask_make(uint64_t seed, float p);
/* y = a + dropout(b) over [i0, i1): a, b, y (n). */
void attn__add_dropout_forward(float *y, const float *a, const float *b, attn__dropmask d, int64_t i0, int64_t i1);
/* da (+)= dy and db (+)= dy * mask over [i0, i1); either may be NULL. */
void attn__add_dropout_backward(float *da, float *db, const float *dy, attn__dropmask d, int64_t i0, int64_t i1,
                                int accumulate_a, int accumulate_b);
/* y = dropout(relu(a)) over [i0, i1): a, y (n). */
void attn__relu_dropout_forward(float *y, const float *a, attn__dropmask d, int64_t i0, int64_t i1);
/* da (+)= dy * [a > 0] * mask over [i0, i1). */
void attn__relu_dropout_backward(float *da, const float *a, const float *dy, attn__dropmask d, int64_t i0, int64_t i1,
                                 int accumulate);

/* ---- recurrent layers (nn/gru.c, nn/lstm.c) ------------------------------------------------ */

/* attn_gru_backward and attn_lstm_backward (attn/layers.h) with their scratch given: `work`
 * holds attn__gru_backward_floats (attn__lstm_backward_floats) zeroed floats, or is NULL to
 * allocate it for the call. The tape passes arena memory, so training steps allocate nothing. */
size_t attn__gru_backward_floats(const attn_gru *m, int T, int B);
int attn__gru_backward_ws(const attn_gru *m, int T, int B, int reverse, const int32_t *lengths,
                          const float *x, const float *cache, const float *dy, const float *dh_n,
                          float *dx, float *dh0, const attn_gru_grad *g, float *work);
size_t attn__lstm_backward_floats(const attn_lstm *m, int T, int B);
int attn__lstm_backward_ws(const attn_lstm *m, int T, int B, int reverse, const int32_t *lengths,
                           const float *x, const float *cache, const float *dy, const float *dh_n,
                           const float *dc_n, float *dx, float *dh0, float *dc0,
                           const attn_lstm_grad *g, float *work);

/* ---- 1-D convolution and pooling over time (nn/conv1d.c, nn/pool.c) --------------------------- */

/* attn_conv1d_forward / _backward (attn/layers.h) on checked arguments, with their work memory
 * given: work holds attn__conv1d_work_floats floats (contents ignored). The backward's flags
 * say whether each gradient is added to (1) or written (0); rows of dx past a sequence's
 * length are written 0 (flag 0) or left alone (flag 1). */
size_t attn__conv1d_work_floats(int Cin, int Cout, int K);
void attn__conv1d_forward(float *y, const float *x, const int32_t *lengths, const float *W, const float *b, int B,
                          int T, int Cin, int Cout, int K, int pad, float *work);
void attn__conv1d_backward(float *dx, int dx_acc, float *dW, int dW_acc, float *db, int db_acc, const float *dy,
                           const float *x, const int32_t *lengths, const float *W, int B, int T, int Cin, int Cout,
                           int K, int pad, float *work);

/* Max and mean over time (attn/layers.h), x (B, T, C), y (B, C), arg (B, C), lengths (B) or
 * NULL, checked; dx (B, T, C) added to (acc 1) or written whole (acc 0). */
void attn__max_pool_time_forward(float *y, int32_t *arg, const float *x, const int32_t *lengths, int B, int T, int C);
void attn__max_pool_time_backward(float *dx, int acc, const float *dy, const int32_t *arg, int B, int T, int C);
void attn__mean_pool_time_forward(float *y, const float *x, const int32_t *lengths, int B, int T, int C);
void attn__mean_pool_time_backward(float *dx, int acc, const float *dy, const int32_t *lengths, int B, int T, int C);

/* ---- 2-D convolution and pooling (nn/conv2d.c, nn/pool.c) ------------------------------------ */

/* A conv2d call's checked shape: x (B, Cin, H, W), weights (Cout, Cin, KH, KW), y (B, Cout, Ho,
 * Wo) with Ho = attn_conv2d_out_size(H, KH, stride, pad) >= 1 and Wo likewise. */
typedef struct {
    int B, Cin, H, W, Cout, KH, KW, stride, pad, Ho, Wo;
} attn__conv2d_shape;

/* attn_conv2d_forward / _backward (attn/layers.h) on a checked shape, with their work memory
 * given: work holds attn__conv2d_work_floats(s, backward) floats (contents ignored; sized for
 * the current thread count). The backward's flags say whether each gradient is added to (1)
 * or written (0); each may be NULL. */
/* Checks the shape given in B .. pad and fills in Ho and Wo: ATTN_OK, ATTN_ESHAPE when the
 * filter gives no output, ATTN_EINVAL for other bad sizes (< 1, int overflow); the message
 * names `what`. */
int attn__conv2d_check(const char *what, attn__conv2d_shape *s);
size_t attn__conv2d_work_floats(const attn__conv2d_shape *s, int backward);
void attn__conv2d_forward(float *y, const float *x, const float *W, const float *b, const attn__conv2d_shape *s,
                          float *work);
void attn__conv2d_backward(float *dx, int dx_acc, float *dW, int dW_acc, float *db, int db_acc, const float *dy,
                           const float *x, const float *W, const attn__conv2d_shape *s, float *work);

/* Max pooling of checked shapes (attn/layers.h): x (P, H, W) planes, y and arg (P, Ho, Wo);
 * dx (P, H, W) added to (acc 1) or written whole (acc 0). */
void attn__max_pool2d_forward(float *y, int32_t *arg, const float *x, int P, int H, int W, int k, int stride);
void attn__max_pool2d_backward(float *dx, int acc, const float *dy, const int32_t *arg, int P, int H, int W, int k,
                               int stride);

/* ---- The glimpse sensor (nn/glimpse.c) ------------------------------------------------------- */

/* attn_glimpse_forward / _backward (attn/layers.h) on checked arguments; dimg added to (acc 1)
 * or written whole (acc 0). attn__glimpse_check checks the shape and that loc (B, 2) is
 * finite (ATTN_OK or ATTN_EINVAL with a message naming `what`). */
int attn__glimpse_check(const char *what, const float *loc, int B, int C, int H, int W, int size, int scales);
void attn__glimpse_forward(float *y, const float *img, const float *loc, int B, int C, int H, int W, int size,
                           int scales);
void attn__glimpse_backward(float *dimg, int acc, const float *dy, const float *loc, int B, int C, int H, int W,
                            int size, int scales);

/* ---- Attention weights (nn/attention.c, for attn_plan_weights of nn/attention_weights.c) ----- */

/* Rows [r0, r1) of the heads hs[0 .. nh) (b * H + h; NULL: all B * H in order) into P
 * (nh, r1 - r0, Nk), on checked arguments. */
int attn__plan_weights(attn_plan *pl, const float *Q, const float *K, const float *lse, const int *hs, int nh, int r0,
                       int r1, float *P);

#endif
