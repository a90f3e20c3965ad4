/* Internals of the Transformer (not API): the model struct with its parameter views, the
 * attention op on the tape that reads heads out of packed projections, and the helpers the
 * training forward (transformer.c) and the cached decoder (transformer_decode.c) share.
 * Letters as in attn/transformer.h: B batch, N a sequence length, E d_model, H heads, Hkv
 * key/value heads, dh = E / H, KV = Hkv * dh, F d_ff. */
#ifndef ATTN_MODELS_TRANSFORMER_INTERNAL_H
#define ATTN_MODELS_TRANSFORMER_INTERNAL_H

#include "attn/attention.h"
#include "attn/autograd.h"
#include "attn/params.h"
#include "attn/transformer.h"
#include "io/common.h"

/* One attention block's parameters: in_w (E + 2 KV, E) rows [q; k; v], in_b (E + 2 KV),
 * out_w (E, E), out_b (E). */
typedef struct {
    attn_param *in_w, *in_b, *out_w, *out_b;
} tr_mha;

/* One layer: self-attention, cross-attention (decoder only), feed-forward, norms 1..3. */
typedef struct {
    tr_mha sa, ca;
    attn_param *l1w, *l1b, *l2w, *l2b; /* linear1 (F, E), (F); linear2 (E, F), (E) */
    attn_param *nw[3], *nb[3];         /* norm1..3 (E) (norm3 in the decoder only) */
    attn_param *slopes;                /* self-attention's learned ALiBi slopes (H), or NULL
                                        * (bidirectional in the encoder) */
} tr_layer;

struct attn_transformer {
    attn_transformer_config cfg;
    int dh, KV;               /* features per head; key (and value) features = Hkv * dh */
    attn_params *ps;
    attn_param *src_emb, *tgt_emb; /* the same parameter with ATTN_SHARE_ALL */
    attn_param *gen_w;             /* tgt_emb when tied */
    attn_param *gen_b;
    attn_param *src_pos, *tgt_pos; /* learned positions, else NULL */
    attn_param *enc_nw, *enc_nb, *dec_nw, *dec_nb;
    tr_layer *enc, *dec;
    float *sin_table;              /* (max_len, E) for sinusoidal positions, else NULL */
    attn__vocab_pair voc;
};

/* ---- The attention op on the tape (transformer_ops.c) ------------------------------------
 * q (B, Nq, Fq) holds the queries of head h in columns [q_off + h dh, q_off + (h+1) dh);
 * kv (B, Nk, Fkv) the keys of key/value head h in [k_off + h dh, ...) and the values in
 * [v_off + h dh, ...). q and kv may be the same node (self-attention on one packed q/k/v
 * projection). Output (B, Nq, H dh). With rope, the query and key columns are rotated IN
 * PLACE (positions 0..N-1) before the attention, which is safe because the nodes come
 * straight from linear layers, whose backward does not read their output; the backward
 * rotates the gradients back. With dropout > 0 on a training graph, each call draws its own
 * mask seed from the graph's generator (so masks differ between layers, kinds and steps). */
typedef struct {
    int H, Hkv, dh;
    int q_off, k_off, v_off;
    int rope;
    float rope_base;
    attn_mask mask; /* key_lengths copied; bias must stay valid until the backward */
    attn_var *alibi; /* (H) ALiBi slopes as a node (learned), or NULL */
    int alibi_bidirectional; /* attn_mods.alibi_bidirectional: -slope_h |j - i| (encoders) */
    float dropout;   /* on the attention weights, when the graph is training */
} tr_attn_opts;

attn_var *tr_attention(attn_graph *g, attn_var *q, attn_var *kv, const tr_attn_opts *o, attn_var **weights);

/* y = x + dropout(f, p) and y = dropout(relu(h), p), each one pass with the mask recomputed
 * in the backward from a seed drawn from the graph's generator (transformer_ops.c). Plain
 * add and relu when the graph is not training or p is 0. */
attn_var *tr_add_dropout(attn_graph *g, attn_var *x, attn_var *f, float p);
attn_var *tr_relu_dropout(attn_graph *g, attn_var *h, float p);

/* attn_transformer_forward; with cross_last, maps gets the cross-attention weights of the last
 * decoder layer alone, cross (1, B, H, T, S), and no other (enc_self, dec_self NULL): the
 * alignment of a translation, without the weights of every other attention. */
attn_var *tr_forward(attn_transformer *m, attn_graph *g, const attn_transformer_batch *b, attn_transformer_maps *maps,
                     int cross_last);
/* The encoder on graph g: memory (B, S, E) after the final norm. src (B, S) and src_len (B)
 * must have been checked. maps_enc, if not NULL, gets the self-attention weights
 * (enc_layers, B, H, S, S). */
attn_var *tr_encode(attn_transformer *m, attn_graph *g, const int32_t *src, const int32_t *src_len, int B, int S,
                    float *maps_enc);

/* Declares layer i of `stack` ("encoder" or "decoder", with cross-attention when decoder) in
 * m->ps under nn.Transformer's names, sized by m->cfg and m->KV; *st becomes ATTN_ENOMEM on
 * failure (nothing is done once it is set). For encoders built outside attn_transformer_new
 * (the text classifier's). */
void tr_add_layer(attn_transformer *m, int *st, const char *stack, int i, int decoder, tr_layer *L);

/* Teacher forcing for the translation memory (attn/knnmt.h): the decoder's final states (the
 * generator's input, after the last layer norm) states (B, T, E) of B sentences, src (B, S)
 * padded with lengths src_len (B), decoder inputs tgt_in (B, T) (<bos> y_1 .., padded), each
 * position computed as a decoding step would (the key/value cache of attn_transformer_translate). */
int tr_forced_states(const attn_transformer *m, int B, int S, const int32_t *src, const int32_t *src_len, int T,
                     const int32_t *tgt_in, float *states);

/* Decoding's key/value cache (transformer_decode.c): the paged cache of attn/kvcache.h (1, the
 * default: beams share their prefix blocks, copy-on-write) or the dense one, a (rows, Tc)
 * array per layer whose rows are copied when beam search reorders them (0: kept to compare
 * the two in tests and benchmarks (bench/kv_decode.c); set it before decoding starts).
 * tr_kv_bytes_copied counts the keys and values either copied to keep the beams' caches,
 * since the process started. */
extern _Atomic int tr_paged_kv;
extern _Atomic int64_t tr_kv_bytes_copied;
extern _Atomic int64_t tr_decode_steps; /* decoder steps run (every row at once), likewise */

/* Sequence length limit checks and the sinusoidal table. */
int tr_check_ids(const int32_t *ids, int64_t n, int V, const char *what);

/* A node over caller memory that is a row block of a parameter: rows [r0, r0 + rows) of p
 * (2-D), with its gradient rows when p trains. */
attn_var *tr_param_rows(attn_graph *g, attn_param *p, int64_t r0, int64_t rows);
/* The first n_rows of a 1-D parameter's slice [r0, r0 + n). */
attn_var *tr_param_slice(attn_graph *g, attn_param *p, int64_t r0, int64_t n);

#endif
