/* The additive-attention step of the Bahdanau decoder (see s2s_internal.h): a call of the
 * library's one attention tape op (autograd/ops_attention.c) with the additive score on keys
 * projected once per batch (Wa and Ua absent: q and Uk are the projections), heads read in
 * place from the time-major encoder states. The score's arithmetic (a fast tanh, a fixed-order
 * dot product) is kernels/additive.c's.
 *
 * Letters: B batch, S source positions, A score hidden size, D encoder state size.
 * Tensors: q (B, A), Uk (S, B, A), va (A), H (S, B, D), ctx (B, D), P (B, S).
 */
#include <string.h>

#include "autograd/ops_attention.h"
#include "models/s2s_internal.h"

attn_var *attn__s2s_additive_step(attn_graph *g, attn_var *q, attn_var *Uk, attn_var *va, attn_var *H,
                                  const int32_t *len, attn_var **weights) {
    const char *op = "s2s additive attention";
    if (weights) *weights = NULL;
    if (!ag_ok(g, op, 4, (attn_var *const[]){q, Uk, va, H})) return NULL;
    if (!len) return ag_fail(g, ATTN_EINVAL, "%s: NULL lengths", op);
    char s1[64], s2[64], s3[64];
    if (q->ndim != 2 || Uk->ndim != 3 || H->ndim != 3 || Uk->shape[1] != q->shape[0] || Uk->shape[2] != q->shape[1] ||
        H->shape[0] != Uk->shape[0] || H->shape[1] != q->shape[0] || va->numel != q->shape[1])
        return ag_fail(g, ATTN_ESHAPE, "%s: q %s, Uk %s, H %s do not fit", op, ag_shape_str(q, s1, sizeof s1),
                       ag_shape_str(Uk, s2, sizeof s2), ag_shape_str(H, s3, sizeof s3));
    const int B = (int)q->shape[0], A = (int)q->shape[1], S = (int)H->shape[0], D = (int)H->shape[2];
    for (int b = 0; b < B; b++)
        if (len[b] < 1 || len[b] > S) return ag_fail(g, ATTN_EINVAL, "%s: len[%d] = %d is outside [1, %d]", op, b, (int)len[b], S);
    /* One head, one query per batch row; keys and values are time-major: row j of batch b at
     * (j B + b) features. */
    ag_attention_call c;
    memset(&c, 0, sizeof c);
    attn_desc *a = &c.a;
    a->B = B, a->H = a->Hkv = 1, a->Nq = 1, a->Nk = S, a->dq = a->dk = A, a->dv = D;
    a->score = ATTN_SCORE_ADDITIVE;
    a->mask.key_lengths = len;
    int64_t qs[3] = {A, A, A}, ks[3] = {A, A, (int64_t)B * A}, vs[3] = {D, D, (int64_t)B * D}, os[3] = {D, D, D};
    memcpy(a->q_strides, qs, sizeof qs), memcpy(a->k_strides, ks, sizeof ks);
    memcpy(a->v_strides, vs, sizeof vs), memcpy(a->o_strides, os, sizeof os);
    c.params[5] = va;
    c.ond = 2, c.oshape[0] = B, c.oshape[1] = D;
    attn_var *P = NULL;
    attn_var *ctx = ag_attention(g, q, Uk, H, &c, weights ? &P : NULL);
    if (ctx && weights) *weights = attn_graph_leaf(g, 2, (int64_t[]){B, S}, P->data, NULL);
    return ctx;
}
