/* attn/posenc.h: position encodings, forward and backward. Attention by itself is a refined
 * bag of words: permute the keys and values together and the output does not change. These
 * functions give it the order of the sequence, in the four forms the field uses:
 *
 *   sinusoidal  a fixed table added to the input (Vaswani et al. 2017, "Attention is all you need")
 *   learned     a trained table (max_len, d) added to the input (BERT, GPT-2)
 *   rotary      RoPE: queries and keys rotated by an angle proportional to their position, so
 *               that q . k depends on the distance only (Su et al. 2021, "RoFormer")
 *   ALiBi       no embedding at all: a bias -slope * distance added to the scores
 *               (Press et al. 2022, "Train short, test long")
 *
 * Letters: B batch, N sequence length, d features, H heads, dh features per head, Nq/Nk query
 * and key lengths. Positions: wherever a function takes `pos` and `offset`, row n of batch b
 * is at position pos[b * N + n] when pos (B, N) is given, else at offset + n (offset lets a
 * decoder that keeps a key/value cache encode its new rows at their true positions).
 * Angles and tables are computed in double precision and rounded once to float.
 * Not here: relative position embeddings inside the score (Shaw et al. 2018, T5 buckets),
 * NTK/YaRN scaling of RoPE, ALiBi's fused kernel form (the bias is materialised here).
 */
#ifndef ATTN_POSENC_H
#define ATTN_POSENC_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* ---- Sinusoidal ------------------------------------------------------------------------- */

/* The table PE (N, d) for positions p = offset + n:
 *   PE[n, 2i]   = sin(p / 10000^(2i / d))
 *   PE[n, 2i+1] = cos(p / 10000^(2i / d))
 * For odd d the last column (index d - 1 = 2i) is a sine; it has no cosine partner. */
int attn_sinusoidal_table(int N, int d, int offset, float *pe);

/* y (B, N, d) = x (B, N, d) + PE at the rows' positions (see the top). y == x is allowed. */
int attn_sinusoidal_forward(int B, int N, int d, const float *x, const int32_t *pos, int offset, float *y);

/* The table is constant, so the backward is the identity: dx (B, N, d) = dy. dx == dy is
 * allowed (then nothing is done). */
int attn_sinusoidal_backward(int B, int N, int d, const float *dy, float *dx);

/* ---- Learned ---------------------------------------------------------------------------- */

/* y (B, N, d) = x (B, N, d) + table[p] with table (max_len, d); every position p must be in
 * [0, max_len) (ATTN_EINVAL naming the first one that is not). y == x is allowed. */
int attn_learned_pos_forward(int B, int N, int d, int max_len, const float *table, const float *x,
                             const int32_t *pos, int offset, float *y);

/* dtable (max_len, d) += dy rows scattered to their positions (rows at one position are
 * summed in (b, n) order); dx (B, N, d) = dy if dx is not NULL (dx == dy allowed).
 * dtable may be NULL when only dx is wanted. */
int attn_learned_pos_backward(int B, int N, int d, int max_len, const float *dy, const int32_t *pos,
                              int offset, float *dx, float *dtable);

/* ---- Rotary (RoPE) ---------------------------------------------------------------------- */

/* The pairing convention is "rotate_half" (GPT-NeoX, Hugging Face Llama), NOT the interleaved
 * pairs (2i, 2i+1) of the RoFormer paper and of Meta's original Llama code. With r = rot_dim
 * and h = r / 2, feature c < h is paired with feature c + h and, at position p, rotated by
 *   theta_c = p * base^(-2c / r):
 *   x'[c]     = x[c] cos(theta_c) - x[c + h] sin(theta_c)
 *   x'[c + h] = x[c + h] cos(theta_c) + x[c] sin(theta_c)
 * i.e. x' = x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x[h:r], x[:h]).
 * Features r..dh-1 pass unchanged (partial rotary, GPT-NeoX's rotary_pct). The two
 * conventions differ by a fixed permutation of the features inside each head, so weights
 * trained with one need their q/k projection rows permuted to be used with the other. */
typedef struct {
    int B, H, N, dh;     /* x is (B, H, N, dh) */
    int64_t strides[3];  /* in elements, over (B, H, N); all zero = contiguous (B, H, N, dh).
                          * E.g. the (B, N, H*dh) output of a projection: {N*H*dh, dh, H*dh}. */
    int rot_dim;         /* even, <= dh; 0 = dh */
    float base;          /* 0 = 10000 */
    int offset;          /* row n is at position offset + n ... */
    const int32_t *pos;  /* ... or at pos[b * N + n] when pos (B, N) is given */
} attn_rope_desc;

/* Rotates x in place. */
int attn_rope_forward(const attn_rope_desc *r, float *x);

/* The rotation is orthogonal, so the backward is the inverse rotation (by -theta), applied
 * in place to dx, which holds the gradient with respect to the rotated x on entry and the
 * gradient with respect to the input x on return. */
int attn_rope_backward(const attn_rope_desc *r, float *dx);

/* ---- ALiBi ------------------------------------------------------------------------------ */

/* The per-head slopes (H), as the paper's reference implementation (ofirpress/
 * attention_with_linear_biases, get_slopes): for H a power of two the geometric sequence
 * slope_h = 2^(-8 (h+1) / H), h = 0..H-1; otherwise, with P the largest power of two below H,
 * the P slopes for P heads followed by the first H - P of the even-indexed slopes for 2P
 * heads (2^(-8 (2k+1) / (2P)), k = 0..H-P-1). */
int attn_alibi_slopes(int H, float *slopes);

/* The bias (H, Nq, Nk), to add to the scores (as a float attention mask):
 *   causal form (symmetric = 0): bias[h, i, j] = -slope_h * (i + q_offset - j)
 *   symmetric form (symmetric = 1): bias[h, i, j] = -slope_h * |i + q_offset - j|
 * The causal form is the paper's and is meant to be combined with a causal mask: for keys in
 * the future (j > i + q_offset) it is positive, not hiding anything by itself. The paper's
 * code adds slope * j instead, which differs by a constant per row and so gives the same
 * softmax. q_offset is the position of query 0 relative to key 0 (e.g. Nk - Nq for the last
 * Nq queries of a decoder with a key/value cache); 0 for ordinary self-attention. */
int attn_alibi_bias(int H, int Nq, int Nk, int q_offset, int symmetric, float *bias);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
