/* The Transformer's attention: the library's one attention tape op (autograd/ops_attention.c)
 * reading the heads of packed projections through strides (one GEMM makes q, k and v of a
 * self-attention; the backward writes their gradients side by side into one buffer), with the
 * rotary position encoding folded in. Also small parameter views and fused dropout.
 * Letters: B batch, Nq queries, Nk keys, H heads, Hkv key/value heads, dh features per head,
 * Fq and Fkv the feature sizes of the packed query and key/value nodes. */
#include <string.h>

#include "autograd/ops_attention.h"
#include "models/transformer_internal.h"
#include "nn/nn_internal.h"

/* A 64-bit seed from the graph's generator: one per dropout op (or attention) and step. */
static uint64_t draw_seed(attn_graph *g) {
    attn_rng *r = attn_graph_rng(g);
    return (uint64_t)attn_rng_u32(r) << 32 | attn_rng_u32(r); /* as recorded in the golden runs */
}

attn_var *tr_attention(attn_graph *g, attn_var *q, attn_var *kv, const tr_attn_opts *o, attn_var **weights) {
    if (weights) *weights = NULL;
    if (!ag_ok2(g, "transformer attention", q, kv)) return NULL;
    char s1[64], s2[64];
    if (q->ndim != 3 || kv->ndim != 3 || q->shape[0] != kv->shape[0] || o->H < 1 || o->Hkv < 1 || o->dh < 1 ||
        o->H % o->Hkv)
        return ag_fail(g, ATTN_ESHAPE, "transformer attention: q %s and kv %s do not fit", ag_shape_str(q, s1, sizeof s1),
                       ag_shape_str(kv, s2, sizeof s2));
    int64_t B = q->shape[0], Nq = q->shape[1], Nk = kv->shape[1], Fq = q->shape[2], Fkv = kv->shape[2];
    int64_t qcols = (int64_t)o->H * o->dh, kvcols = (int64_t)o->Hkv * o->dh;
    int same = ag_base(q) == ag_base(kv);
    if (o->q_off < 0 || o->q_off + qcols > Fq || o->k_off < 0 || o->k_off + kvcols > Fkv || o->v_off < 0 ||
        o->v_off + kvcols > Fkv || (o->k_off < o->v_off + kvcols && o->v_off < o->k_off + kvcols) ||
        (same && ((o->q_off < o->k_off + kvcols && o->k_off < o->q_off + qcols) ||
                  (o->q_off < o->v_off + kvcols && o->v_off < o->q_off + qcols))))
        return ag_fail(g, ATTN_ESHAPE, "transformer attention: column blocks out of range or overlapping");
    /* Heads read in place from the packed columns: (B, N, F) rows, heads dh apart. */
    ag_attention_call c;
    memset(&c, 0, sizeof c);
    attn_desc *a = &c.a;
    a->B = (int)B, a->H = o->H, a->Hkv = o->Hkv, a->Nq = (int)Nq, a->Nk = (int)Nk;
    a->dq = a->dk = a->dv = o->dh;
    a->score = ATTN_SCORE_SCALED;
    a->mask = o->mask;
    a->q_strides[0] = Nq * Fq, a->q_strides[1] = o->dh, a->q_strides[2] = Fq;
    a->k_strides[0] = Nk * Fkv, a->k_strides[1] = o->dh, a->k_strides[2] = Fkv;
    memcpy(a->v_strides, a->k_strides, sizeof a->k_strides);
    a->o_strides[0] = Nq * qcols, a->o_strides[1] = o->dh, a->o_strides[2] = qcols;
    c.off[0] = o->q_off, c.off[1] = o->k_off, c.off[2] = o->v_off;
    c.packed = 1, c.rope = o->rope, c.rope_base = o->rope_base;
    c.ond = 3, c.oshape[0] = B, c.oshape[1] = Nq, c.oshape[2] = qcols;
    if (o->alibi) c.has_mods = 1, c.alibi = o->alibi, c.mods.alibi_bidirectional = o->alibi_bidirectional;
    if (o->dropout > 0.0f && attn_graph_training(g)) {
        c.has_mods = 1, c.mods.dropout = o->dropout;
        c.mods.seed = draw_seed(g);
    }
    return ag_attention(g, q, kv, kv, &c, weights);
}

int tr_check_ids(const int32_t *ids, int64_t n, int V, const char *what) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return attn__error(ATTN_EINVAL, "transformer: %s id %d at position %lld is outside [0, %d)", what, (int)ids[i],
                               (long long)i, V);
    return ATTN_OK;
}

attn_var *tr_param_rows(attn_graph *g, attn_param *p, int64_t r0, int64_t rows) {
    if (!ag_ok(g, "transformer parameter view", 0, NULL)) return NULL;
    int64_t cols = p->ndim == 2 ? p->shape[1] : 1;
    float *grad = p->frozen ? NULL : p->grad;
    return attn_graph_leaf(g, p->ndim == 2 ? 2 : 1, p->ndim == 2 ? (int64_t[]){rows, cols} : (int64_t[]){rows},
                           p->data + r0 * cols, grad ? grad + r0 * cols : NULL);
}

attn_var *tr_param_slice(attn_graph *g, attn_param *p, int64_t r0, int64_t n) { return tr_param_rows(g, p, r0, n); }

/* ---- Fused dropout ops ----------------------------------------------------------------------
 * Dropout as the Transformer uses it, fused with what surrounds it: y = x + dropout(f) (the
 * residual branches) and y = dropout(relu(h)) (the feed-forward hidden layer). Tape adapters
 * over nn/dropout.c's counter-based mask (described there): the mask is not stored but
 * recomputed by the backward from one 64-bit seed per op drawn from the graph's generator, so
 * any thread count gives the same bits and a resumed run (which restores the generator) draws
 * the same masks. */

typedef struct {
    ag_entry e;
    attn_var *a, *b; /* add: x, f; relu: h (a), b NULL */
    attn__dropmask d;
} tr_drop_entry;

typedef struct {
    const float *a, *b, *dy;
    float *y, *da, *db;
    attn__dropmask d;
    int fresh_a, fresh_b;
} tr_drop_ctx;

static void add_drop_fwd(void *c, int64_t i0, int64_t i1) {
    tr_drop_ctx *s = c;
    attn__add_dropout_forward(s->y, s->a, s->b, s->d, i0, i1);
}

static void add_drop_bwd(void *c, int64_t i0, int64_t i1) {
    tr_drop_ctx *s = c;
    attn__add_dropout_backward(s->da, s->db, s->dy, s->d, i0, i1, !s->fresh_a, !s->fresh_b);
}

static void add_drop_backward(attn_graph *g, ag_entry *base) {
    tr_drop_entry *e = (tr_drop_entry *)base;
    tr_drop_ctx c = {0};
    c.dy = ag_dy(e->e.out), c.d = e->d;
    if (e->a->requires_grad && !(c.da = ag_grad(g, e->a, &c.fresh_a))) return;
    if (e->b->requires_grad && !(c.db = ag_grad(g, e->b, &c.fresh_b))) return;
    ag_parallel_for(e->e.out->numel, ag_block(4), add_drop_bwd, &c);
}

/* One op's mask: a 64-bit seed drawn from the graph's generator. */
static attn__dropmask draw_mask(attn_graph *g, float p) { return attn__dropmask_make(draw_seed(g), p); }

attn_var *tr_add_dropout(attn_graph *g, attn_var *x, attn_var *f, float p) {
    if (!attn_graph_training(g) || p <= 0.0f) return attn_ag_add(g, x, f);
    if (!ag_ok2(g, "transformer add_dropout", x, f)) return NULL;
    if (x->numel != f->numel || x->ndim != f->ndim || memcmp(x->shape, f->shape, (size_t)x->ndim * sizeof(int64_t)))
        return ag_fail(g, ATTN_ESHAPE, "transformer add_dropout: shapes differ");
    if (!(p < 1.0f)) return ag_fail(g, ATTN_EINVAL, "transformer add_dropout: p must be below 1");
    attn__dropmask d = draw_mask(g, p);
    attn_var *y = ag_new(g, x->ndim, x->shape, x->requires_grad || f->requires_grad);
    if (!y) return NULL;
    tr_drop_ctx c = {0};
    c.a = x->data, c.b = f->data, c.y = y->data, c.d = d;
    ag_parallel_for(y->numel, ag_block(4), add_drop_fwd, &c);
    if (y->requires_grad) {
        tr_drop_entry *e = ag_record(g, sizeof *e, add_drop_backward, y, NULL);
        if (!e) return NULL;
        e->a = x, e->b = f, e->d = d;
    }
    return y;
}

static void relu_drop_fwd(void *c, int64_t i0, int64_t i1) {
    tr_drop_ctx *s = c;
    attn__relu_dropout_forward(s->y, s->a, s->d, i0, i1);
}

static void relu_drop_bwd(void *c, int64_t i0, int64_t i1) {
    tr_drop_ctx *s = c;
    attn__relu_dropout_backward(s->da, s->a, s->dy, s->d, i0, i1, !s->fresh_a);
}

static void relu_drop_backward(attn_graph *g, ag_entry *base) {
    tr_drop_entry *e = (tr_drop_entry *)base;
    tr_drop_ctx c = {0};
    c.a = e->a->data, c.dy = ag_dy(e->e.out), c.d = e->d;
    if (!(c.da = ag_grad(g, e->a, &c.fresh_a))) return;
    ag_parallel_for(e->e.out->numel, ag_block(4), relu_drop_bwd, &c);
}

attn_var *tr_relu_dropout(attn_graph *g, attn_var *h, float p) {
    if (!attn_graph_training(g) || p <= 0.0f) return attn_ag_relu(g, h);
    if (!ag_ok1(g, "transformer relu_dropout", h)) return NULL;
    if (!(p < 1.0f)) return ag_fail(g, ATTN_EINVAL, "transformer relu_dropout: p must be below 1");
    attn__dropmask d = draw_mask(g, p);
    attn_var *y = ag_new(g, h->ndim, h->shape, h->requires_grad);
    if (!y) return NULL;
    tr_drop_ctx c = {0};
    c.a = h->data, c.y = y->data, c.d = d;
    ag_parallel_for(y->numel, ag_block(4), relu_drop_fwd, &c);
    if (y->requires_grad) {
        tr_drop_entry *e = ag_record(g, sizeof *e, relu_drop_backward, y, NULL);
        if (!e) return NULL;
        e->a = h, e->b = NULL, e->d = d;
    }
    return y;
}
