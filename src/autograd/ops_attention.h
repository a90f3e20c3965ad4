/* The one attention entry on the tape (autograd/ops_attention.c), as the library's ops and the
 * models call it: attn_ag_attention (attn/autograd.h) and the Transformer's packed-projection
 * attention (models/transformer_ops.c) both describe their call with this struct. Not API.
 * Letters: B batch, H query heads, Hkv key/value heads, Nq queries, Nk keys, dh features per
 * head, F the feature size of a node in the (B, N, F) layout. */
#ifndef ATTN_AUTOGRAD_OPS_ATTENTION_H
#define ATTN_AUTOGRAD_OPS_ATTENTION_H

#include "autograd/ag.h"

typedef struct {
    attn_desc a;        /* sizes, score, mask; strides relative to the heads' first elements */
    int64_t off[3];     /* element offsets of q's, k's and v's first head within their nodes */
    int packed;         /* q, k and v blocks never overlap, so blocks of one node share one
                           gradient buffer (columns of a packed projection); else blocks of one
                           node are taken to overlap and each gets its own buffer, summed */
    int rope;           /* rotate q and k IN PLACE first (layout (B, N, F), positions 0..N-1);
                           safe for nodes that come straight from linear layers, whose backward
                           does not read their output; the backward rotates the gradients back */
    float rope_base;
    attn_var *params[7]; /* the score's W, Wa, ba, Ua, bu, va, bv nodes or NULL (additive: A is va's
                            element count; Wa and Ua NULL for projected q and k) */
    int ond;
    int64_t oshape[4];   /* the output node's shape */
    int has_mods;        /* mods holds the call's attn_mods (a.mods is pointed at it) */
    attn_mods mods;
    attn_var *alibi, *sinks; /* nodes (H) for mods.alibi_slopes and mods.sinks, or NULL */
} ag_attention_call;

/* O = attention(q, k, v) as described by c (checked here; key lengths copied). *weights, if
 * not NULL, gets P (B, H, Nq, Nk) as a node without gradient. */
attn_var *ag_attention(attn_graph *g, attn_var *q, attn_var *k, attn_var *v, const ag_attention_call *c,
                       attn_var **weights);

#endif
