/* attn/autograd.h: a small reverse-mode automatic differentiation tape over the library's
 * layers, so that model code reads like the equations in the papers and trains.
 *
 *   attn_graph *g; attn_graph_new(0, &g);
 *   for each step:
 *       attn_graph_reset(g);                              // drop last step's activations
 *       attn_params_zero_grad(ps);                        // (attn/train.h)
 *       attn_var *x = attn_ag_embedding(g, E, ids, 2, (int64_t[]){B, T}, -1);
 *       attn_var *h = attn_ag_tanh(g, attn_ag_linear(g, x, W, b));
 *       attn_var *loss = attn_ag_cross_entropy(g, attn_ag_linear(g, h, Wo, bo), targets, 0, 0.1f);
 *       if (attn_graph_backward(g, loss) != ATTN_OK) ...;  // parameter gradients +=
 *       attn_optim_step(opt, lr);
 *
 * How it works:
 *  - A graph owns an arena: every node, every activation, everything an op keeps for its
 *    backward, and the gradients of intermediate nodes come from it. The arena grows by
 *    chunks while a step runs and keeps its memory across attn_graph_reset (after the first
 *    steps the graph allocates nothing; the attention and recurrent kernels it calls still
 *    take their own scratch), so nodes and every pointer the graph hands out are valid until
 *    the next reset.
 *  - Each op computes its output on the whole batch at once and records one tape entry
 *    holding what its backward needs. attn_graph_backward walks the tape in reverse order.
 *    Fused ops (attention, a GRU/LSTM over a whole sequence) are one entry each.
 *  - Leaves: parameters (attn_param_var in attn/train.h, or attn_graph_leaf for any caller
 *    buffers) whose data and gradient live outside the graph and whose gradient is
 *    ACCUMULATED (+=) by the backward, so zero it before each step; and inputs
 *    (attn_graph_input), which need no gradient. An op whose inputs need no gradient records
 *    nothing.
 *  - Errors are sticky: an op that fails (shapes that do not fit, an id out of range, out of
 *    memory) returns NULL and leaves its message; every later op on the graph, and every op
 *    given a NULL input, returns NULL; attn_graph_backward (or attn_graph_status) then
 *    returns the first failure's status and restores its message. Model code can therefore
 *    chain ops and check once.
 *  - Determinism: every op gives the same bits for any thread count (fixed work split, fixed
 *    summation orders); dropout draws from the graph's seeded generator in a fixed order.
 *
 * Shapes: C order, contiguous, 0 to 4 dimensions (0 = a scalar), every dimension >= 1.
 * "(..., C)" means any leading dimensions; "rows" are the leading dimensions flattened.
 *
 * Not here: higher-order gradients, in-place ops, general permutes (attention reads
 * (B, N, H*d) projections through strides instead), broadcasting of the FIRST operand.
 */
#ifndef ATTN_AUTOGRAD_H
#define ATTN_AUTOGRAD_H

#include "attn/attention.h"
#include "attn/core.h"
#include "attn/params.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

#define ATTN_AG_MAX_DIMS ATTN_PARAM_MAX_DIMS

/* A node of the graph: a value and, after the backward, its gradient. Fields are read-only
 * for callers except the data of inputs created by attn_graph_input (which they may fill). */
typedef struct attn_var {
    float *data;                     /* (shape) */
    float *grad;                     /* (shape); NULL where no gradient arrived (yet) */
    int ndim;                        /* 0..4 */
    int64_t shape[ATTN_AG_MAX_DIMS];
    int64_t numel;                   /* product of the shape (1 for a scalar) */
    int requires_grad;               /* a gradient flows to it (a parameter is upstream) */
    struct attn_var *base_;          /* private: the node whose storage a view shares */
} attn_var;

typedef struct attn_graph attn_graph;

/* A graph in *out with an arena whose first chunk holds `arena_bytes` (0: 1 MiB); ATTN_ENOMEM
 * if out of memory. Starts in training mode (dropout active) with gradients recorded, seed 0. */
int attn_graph_new(size_t arena_bytes, attn_graph **out);
void attn_graph_free(attn_graph *g); /* accepts NULL */

/* Forgets every node, the tape and the sticky error; keeps the arena's memory (merged into
 * one chunk as large as the peak use, so the next step allocates nothing). The training
 * flag, the gradient flag and the random generator are kept. */
void attn_graph_reset(attn_graph *g);

/* ATTN_OK, or the status of the first failed op since the last reset (and its message is
 * restored for attn_last_error()). */
int attn_graph_status(const attn_graph *g);

/* Training mode (default 1): dropout drops; 0 makes it the identity (evaluation). */
void attn_graph_set_training(attn_graph *g, int training);
int attn_graph_training(const attn_graph *g);
/* Gradient recording (default 1): 0 records no tape at all (inference; less memory). */
void attn_graph_set_grad(attn_graph *g, int enabled);

/* The generator dropout draws from. Save and restore its state (attn_rng is plain data) to
 * resume a run exactly. */
void attn_graph_seed(attn_graph *g, uint64_t seed);
attn_rng *attn_graph_rng(attn_graph *g);

/* Bytes of the arena in use now, and reserved in all. */
size_t attn_graph_arena_used(const attn_graph *g);
size_t attn_graph_arena_reserved(const attn_graph *g);

/* Scratch memory from the arena (64-byte aligned), valid until the next reset; e.g. for
 * masks that an attention op reads during the backward. NULL (and a sticky error) if out of
 * memory. */
void *attn_graph_alloc(attn_graph *g, size_t bytes);

/* An input: a node without gradient whose data (numel floats) is copied from `data`, or
 * zeroed when data is NULL (fill it through ->data). */
attn_var *attn_graph_input(attn_graph *g, int ndim, const int64_t *shape, const float *data);

/* A leaf over caller memory, not copied: data (shape), and grad (shape) into which the
 * backward ACCUMULATES, or NULL for a constant. Both must stay valid until the backward. */
attn_var *attn_graph_leaf(attn_graph *g, int ndim, const int64_t *shape, float *data, float *grad);

/* The parameter as a leaf of graph g: its data, and its gradient (accumulated into by the
 * backward) unless frozen. NULL on failure (sticky error in g). */
attn_var *attn_param_var(attn_graph *g, attn_param *p);

/* Backward from a scalar (numel 1) loss: d loss / d loss = 1, then every recorded entry in
 * reverse order. Parameter and leaf gradients are accumulated (+=); intermediate nodes get
 * their ->grad. Call once per forward. Returns the graph's status. */
int attn_graph_backward(attn_graph *g, attn_var *loss);
/* The same from any node y with a given gradient dy (y's shape), e.g. to check gradients. */
int attn_graph_backward_from(attn_graph *g, attn_var *y, const float *dy);

/* ---- Ops --------------------------------------------------------------------------------
 * Each returns a new node, or NULL on failure (see the top). */

/* y (..., O) = x (..., I) W^T + b; W (O, I) (PyTorch's nn.Linear layout), b (O) or NULL. */
attn_var *attn_ag_linear(attn_graph *g, attn_var *x, attn_var *W, attn_var *b);

/* The sparse linear layer: y (N, C) = X (N, F) W^T + b for X in compressed sparse rows:
 * rowptr (N + 1) int64 from 0, non-decreasing; col (rowptr[N]) int32 in [0, F) and val
 * (rowptr[N]) the non-zeros of each row (copied); W (C, F), b (C) or NULL. X gets no gradient.
 * An empty row gives b. */
attn_var *attn_ag_sparse_linear(attn_graph *g, int64_t N, const int64_t *rowptr, const int32_t *col, const float *val,
                                attn_var *W, attn_var *b);

/* Matrix product over the last two axes, batched over the leading ones:
 *   c (..., M, N) = op(a) (..., M, K) op(b) (..., K, N), op(X) = X or its transpose (trans).
 * b has a's leading dimensions, or none (a 2-D b is shared by every batch). */
attn_var *attn_ag_matmul(attn_graph *g, attn_var *a, attn_var *b, int trans_a, int trans_b);

/* Elementwise with broadcasting of b to a's shape (numpy rules, right-aligned: each of b's
 * dimensions equals a's or is 1; b may have fewer dimensions): y has a's shape.
 * E.g. x (B, T, E) + pos (T, E), x (B, T, E) * mask (B, T, 1). */
attn_var *attn_ag_add(attn_graph *g, attn_var *a, attn_var *b);
attn_var *attn_ag_sub(attn_graph *g, attn_var *a, attn_var *b);
attn_var *attn_ag_mul(attn_graph *g, attn_var *a, attn_var *b);
/* y = x * s (a constant). */
attn_var *attn_ag_scale(attn_graph *g, attn_var *x, float s);

/* Activations, elementwise (the formulas of attn/layers.h; GELU is the exact erf form). */
attn_var *attn_ag_tanh(attn_graph *g, attn_var *x);
attn_var *attn_ag_sigmoid(attn_graph *g, attn_var *x);
attn_var *attn_ag_relu(attn_graph *g, attn_var *x);
attn_var *attn_ag_gelu(attn_graph *g, attn_var *x);

/* Shapes. reshape is a view (no copy; one dimension may be -1); the others copy.
 *   concat: n nodes with equal shapes except along `axis` (negative counts from the end);
 *   stack: n nodes of equal shape joined along a NEW axis at position `axis` (0..ndim);
 *   slice: [start, end) along `axis`;  select: index i along `axis`, which is removed;
 *   transpose: swaps the last two axes. */
attn_var *attn_ag_reshape(attn_graph *g, attn_var *x, int ndim, const int64_t *shape);
attn_var *attn_ag_concat(attn_graph *g, int n, attn_var *const *xs, int axis);
attn_var *attn_ag_stack(attn_graph *g, int n, attn_var *const *xs, int axis);
attn_var *attn_ag_slice(attn_graph *g, attn_var *x, int axis, int64_t start, int64_t end);
attn_var *attn_ag_select(attn_graph *g, attn_var *x, int axis, int64_t index);
attn_var *attn_ag_transpose(attn_graph *g, attn_var *x);

/* Row lookup: y (shape..., E) row r = W (V, E) row ids[r]; ids (shape) int32 in [0, V),
 * copied. padding_idx in [0, V) gets no gradient (torch.nn.Embedding); -1 for none. */
attn_var *attn_ag_embedding(attn_graph *g, attn_var *W, const int32_t *ids, int ndim,
                            const int64_t *shape, int padding_idx);

/* Reductions: to a scalar (sum accumulates in double), or along one axis (removed). */
attn_var *attn_ag_sum(attn_graph *g, attn_var *x);
attn_var *attn_ag_mean(attn_graph *g, attn_var *x);
attn_var *attn_ag_sum_axis(attn_graph *g, attn_var *x, int axis);
attn_var *attn_ag_mean_axis(attn_graph *g, attn_var *x, int axis);

/* Over the last axis. */
attn_var *attn_ag_softmax(attn_graph *g, attn_var *x);
attn_var *attn_ag_log_softmax(attn_graph *g, attn_var *x);
/* Hard attention with a straight-through gradient (Bengio, Leonard and Courville 2013): the
 * forward is y = onehot(argmax x) over the last axis (the first of equal maxima), the
 * backward is the softmax's, dx = p * (dy - sum(p * dy)) with p = softmax(x), as if y had
 * been p. By design not the gradient of the forward (which is 0 almost everywhere). */
attn_var *attn_ag_hard_softmax(attn_graph *g, attn_var *x);

/* Cross-entropy of logits (..., C) against targets (...) int32 (copied): the mean over the
 * targets that are not ignore_index of
 *   (1 - eps) * (-log p[y]) + eps * mean_c(-log p[c])
 * exactly torch.nn.functional.cross_entropy(logits, targets, ignore_index=..,
 * label_smoothing=eps). A scalar; 0 (and no gradient) when every target is ignored, where
 * PyTorch gives NaN. */
attn_var *attn_ag_cross_entropy(attn_graph *g, attn_var *logits, const int32_t *targets,
                                int ignore_index, float label_smoothing);

/* Layer normalisation over the last axis: x (..., C), gamma and beta (C) or NULL. */
attn_var *attn_ag_layernorm(attn_graph *g, attn_var *x, attn_var *gamma, attn_var *beta, float eps);

/* Inverted dropout with probability p from the graph's generator (the identity when the
 * graph is not training, or p == 0). */
attn_var *attn_ag_dropout(attn_graph *g, attn_var *x, float p);

/* Kim 2014's convolution and pooling over token sequences (see attn/layers.h), lengths (B)
 * int32 in [0, T] (copied) or NULL for all T:
 *   conv1d: x (B, T, Cin), W (Cout, Cin, K) (PyTorch's Conv1d layout), b (Cout) or NULL,
 *     zero padding 0 <= pad < K -> y (B, attn_conv1d_out_length(T, K, pad), Cout), 0 past
 *     each sequence's outputs; ATTN_ESHAPE when T + 2 pad < K (no output at all).
 *   max_pool_time, mean_pool_time: x (B, T, C) -> y (B, C) over t < lengths[b]; an empty
 *     sequence gives 0. Max's gradient goes to the first of equal maxima. */
attn_var *attn_ag_conv1d(attn_graph *g, attn_var *x, attn_var *W, attn_var *b, int pad, const int32_t *lengths);
attn_var *attn_ag_max_pool_time(attn_graph *g, attn_var *x, const int32_t *lengths);
attn_var *attn_ag_mean_pool_time(attn_graph *g, attn_var *x, const int32_t *lengths);

/* The vision ops (see attn/layers.h), NCHW as PyTorch:
 *   conv2d: x (B, Cin, H, W), W (Cout, Cin, KH, KW) (Conv2d's layout), b (Cout) or NULL, the
 *     same stride >= 1 and zero padding pad >= 0 on both axes -> y (B, Cout, Ho, Wo),
 *     Ho = attn_conv2d_out_size(H, KH, stride, pad); ATTN_ESHAPE when there is no output.
 *   max_pool2d: x (B, C, H, W), k x k windows every `stride` pixels, no padding, floor mode
 *     (as F.max_pool2d(x, k, stride)), 1 <= k <= H, W -> y (B, C, Ho, Wo); the gradient goes
 *     to the first of equal maxima. */
attn_var *attn_ag_conv2d(attn_graph *g, attn_var *x, attn_var *W, attn_var *b, int stride, int pad);
attn_var *attn_ag_max_pool2d(attn_graph *g, attn_var *x, int k, int stride);
/* The glimpse sensor of the Recurrent Attention Model (see attn/layers.h for the geometry):
 * img (B, C, H, W), loc (B, 2) (row, col) in [-1, 1] (copied; constants: the gradient goes to
 * img only, the location being trained by REINFORCE) -> y (B, scales C, size, size), channel
 * i C + c the patch of side size 2^i around the location averaged down to size x size. */
attn_var *attn_ag_glimpse(attn_graph *g, attn_var *img, const float *loc, int size, int scales);

/* ---- Recurrent cells and sequences (PyTorch's nn.GRU / nn.LSTM weights; see attn/layers.h)
 * GRU: W_ih (3*Hd, I), W_hh (3*Hd, Hd), b_ih, b_hh (3*Hd) or NULL, gates [r; z; n].
 * LSTM: W_ih (4*Hd, I), W_hh (4*Hd, Hd), b_ih, b_hh (4*Hd) or NULL, gates [i; f; g; o]. */

/* One step: x (B, I), h (B, Hd) or NULL (zeros) -> h' (B, Hd). */
attn_var *attn_ag_gru_cell(attn_graph *g, attn_var *x, attn_var *h, attn_var *W_ih,
                           attn_var *W_hh, attn_var *b_ih, attn_var *b_hh);
/* One step: x (B, I), h, c (B, Hd) or NULL -> returns h' (B, Hd), *c_out = c' (B, Hd). */
attn_var *attn_ag_lstm_cell(attn_graph *g, attn_var *x, attn_var *h, attn_var *c,
                            attn_var *W_ih, attn_var *W_hh, attn_var *b_ih, attn_var *b_hh,
                            attn_var **c_out);

/* A whole sequence, one tape entry. x is time-major (T, B, I); returns y (T, B, Hd) with
 * zeros at padded steps. lengths (B) int32 in [0, T] (copied) or NULL for all T; reverse
 * runs each sequence from its last real step back to 0 (the second direction of a
 * bidirectional layer). h0 (and c0) (B, Hd) or NULL for zeros; *h_n (and *c_n), if not
 * NULL, get the state after each sequence's last real step. */
attn_var *attn_ag_gru(attn_graph *g, attn_var *x, attn_var *h0, attn_var *W_ih, attn_var *W_hh,
                      attn_var *b_ih, attn_var *b_hh, const int32_t *lengths, int reverse,
                      attn_var **h_n);
attn_var *attn_ag_lstm(attn_graph *g, attn_var *x, attn_var *h0, attn_var *c0, attn_var *W_ih,
                       attn_var *W_hh, attn_var *b_ih, attn_var *b_hh, const int32_t *lengths,
                       int reverse, attn_var **h_n, attn_var **c_n);

/* ---- Attention: one tape entry around attn_forward / attn_backward (attn/attention.h) ---- */

typedef enum {
    ATTN_AG_BHND = 0, /* q (B, H, Nq, d), k and v (B, Hkv, Nk, d), output (B, H, Nq, dv) */
    ATTN_AG_BNHD = 1, /* q (B, Nq, H*d), k and v (B, Nk, Hkv*d), output (B, Nq, H*dv):
                         heads side by side in the features, as linear projections give them */
    ATTN_AG_NBHD = 2  /* time-major: q (Nq, B, H*d), k and v (Nk, B, Hkv*d), output
                         (Nq, B, H*dv), as attn_ag_gru gives them */
} attn_ag_layout;

typedef struct {
    attn_ag_layout layout;
    int heads, kv_heads;   /* H and Hkv for the BNHD and NBHD layouts (0: 1 and H) */
    attn_score score;      /* ATTN_SCORE_* (0 = dot) */
    float scale;           /* 0 = the score's default */
    attn_mask mask;        /* as in attn/attention.h over (B, H, Nq, Nk); key_lengths is
                              copied; bool_mask and bias must stay valid until the backward
                              (attn_graph_alloc is a good home) */
    attn_var *W;           /* general score: W (dq, dk) */
    attn_var *Wa, *ba, *Ua, *bu, *va, *bv; /* additive score: (A, dq), (A), (A, dk), (A), (A), (1) */
    const attn_mods *mods; /* programmable masks and scores (attn/attention.h), or NULL; copied,
                              but what it points to must stay valid until the backward. Its
                              alibi_slopes and sinks are replaced by the nodes below if given */
    attn_var *alibi_slopes; /* (H): ALiBi's slopes as a node, learned through their gradient */
    attn_var *sinks;        /* (H): attention sinks as a node */
} attn_ag_attention_opts;

/* O = attention(q, k, v) (k and v may be the same node). *weights, if not NULL, gets the
 * attention distribution P (B, H, Nq, Nk) as a node without gradient (for pictures). */
attn_var *attn_ag_attention(attn_graph *g, attn_var *q, attn_var *k, attn_var *v,
                            const attn_ag_attention_opts *opts, attn_var **weights);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
