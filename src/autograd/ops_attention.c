/* Attention on the tape: the one entry around attn_plan_forward / attn_plan_backward
 * (attn/attention.h), run on the graph's plan (ag_plan: its workspace is kept across steps),
 * for every score kind and mask, grouped heads, q, k, v read through strides (no transposes),
 * heads packed side by side in the columns of one projection, and the rotary position
 * encoding folded in; the log-sum-exp is kept for the backward, the weights on request.
 * attn_ag_attention (three layouts) and the Transformer's tr_attention both end here.
 * Letters: B batch, H query heads, Hkv key/value heads, Nq queries, Nk keys, dq, dk, dv
 * feature sizes per head, A the additive score's hidden size. */
#include <string.h>

#include "attn/posenc.h"
#include "autograd/ops_attention.h"

typedef struct {
    ag_entry e;
    attn_var *x[3];     /* q, k, v */
    ag_attention_call c; /* c.a.params points at params */
    attn_score_params params;
    float *lse;         /* (B, H, Nq) */
} attn_entry;

/* Elements of block i (q, k or v) of the call. */
static int64_t block_numel(const attn_desc *a, int i) {
    int heads = i == 0 ? a->H : a->Hkv, N = i == 0 ? a->Nq : a->Nk, d = i == 0 ? a->dq : i == 1 ? a->dk : a->dv;
    return (int64_t)a->B * heads * N * d;
}

/* The gradient buffers of q, k and v: the node's own gradient when it is fresh (zeroed first
 * when the blocks written do not cover the node), else zeroed scratch that is added into the
 * gradient afterwards. Blocks of one node share its buffer when the call is packed; otherwise
 * a later block of a node already served gets scratch of its own. */
typedef struct {
    float *buf[3]; /* node-sized buffers, NULL where no gradient is wanted */
    int add[3];    /* buf[i] is scratch owned by block i: add it into the gradient */
} dests;

static int dests_get(attn_graph *g, const attn_entry *e, dests *d) {
    memset(d, 0, sizeof *d);
    for (int i = 0; i < 3; i++) {
        attn_var *x = e->x[i];
        if (!x->requires_grad) continue;
        int shared = -1;
        for (int j = 0; j < i; j++)
            if (d->buf[j] && ag_base(e->x[j]) == ag_base(x)) shared = j;
        if (shared >= 0 && e->c.packed) {
            d->buf[i] = d->buf[shared];
            continue;
        }
        if (shared < 0) {
            int fresh;
            float *gbuf = ag_grad(g, x, &fresh);
            if (!gbuf) return 0;
            if (fresh) {
                int64_t covered = 0;
                for (int j = 0; j < 3; j++)
                    if (e->x[j]->requires_grad && ag_base(e->x[j]) == ag_base(x) && (e->c.packed || j == i))
                        covered += block_numel(&e->c.a, j);
                if (covered != x->numel) memset(gbuf, 0, (size_t)x->numel * sizeof(float));
                d->buf[i] = gbuf;
                continue;
            }
        }
        if (!(d->buf[i] = ag_calloc(g, (size_t)x->numel * sizeof(float)))) return 0;
        d->add[i] = 1;
    }
    return 1;
}

static int dests_finish(attn_graph *g, const attn_entry *e, const dests *d) {
    for (int i = 0; i < 3; i++) {
        if (!d->add[i]) continue;
        int fresh;
        float *gbuf = ag_grad(g, e->x[i], &fresh);
        if (!gbuf) return 0;
        for (int64_t n = 0; n < e->x[i]->numel; n++) gbuf[n] = fresh ? d->buf[i][n] : gbuf[n] + d->buf[i][n];
    }
    return 1;
}

/* The rope description of the heads of block i of x (B, N, F), relative to their first column. */
static attn_rope_desc rope_desc(const attn_var *x, const attn_desc *a, int i, float base) {
    attn_rope_desc r;
    memset(&r, 0, sizeof r);
    int64_t N = x->shape[1], F = x->shape[2];
    r.B = (int)x->shape[0], r.H = i == 0 ? a->H : a->Hkv, r.N = (int)N, r.dh = a->dq, r.base = base;
    r.strides[0] = N * F, r.strides[1] = a->dq, r.strides[2] = F;
    return r;
}

static float *pgrad(attn_graph *g, attn_var *p, int *bad) {
    if (!p || !p->requires_grad) return NULL;
    float *d = ag_grad_zeroed(g, p);
    if (!d) *bad = 1;
    return d;
}

static void attn_backward_entry(attn_graph *g, ag_entry *base) {
    attn_entry *e = (attn_entry *)base;
    const ag_attention_call *c = &e->c;
    dests d;
    if (!dests_get(g, e, &d)) return;
    int bad = 0;
    attn_score_params dp = {0};
    dp.A = e->params.A;
    float **dpf[7] = {&dp.W, &dp.Wa, &dp.ba, &dp.Ua, &dp.bu, &dp.va, &dp.bv};
    for (int i = 0; i < 7; i++) *dpf[i] = pgrad(g, c->params[i], &bad);
    if (bad) return;
    attn_mods_grad dm = {0};
    dm.alibi_slopes = pgrad(g, c->alibi, &bad), dm.sinks = pgrad(g, c->sinks, &bad);
    if (bad) return;
    float *dx[3];
    for (int i = 0; i < 3; i++) dx[i] = d.buf[i] ? d.buf[i] + c->off[i] : NULL;
    attn_plan *pl = ag_plan(g, &c->a);
    if (!pl) return;
    int st = attn_plan_backward_mods(pl, e->x[0]->data + c->off[0], e->x[1]->data + c->off[1],
                                     e->x[2]->data + c->off[2], e->e.out->data, e->lse, ag_dy(e->e.out), dx[0], dx[1],
                                     dx[2], &dp, &dm);
    /* q' = R q, k' = R k  =>  dq = R^T dq', dk = R^T dk'. */
    for (int i = 0; !st && c->rope && i < 2; i++) {
        attn_rope_desc r = rope_desc(e->x[i], &c->a, i, c->rope_base);
        if (dx[i]) st = attn_rope_backward(&r, dx[i]);
    }
    if (st != ATTN_OK) {
        ag_fail_last(g, st);
        return;
    }
    dests_finish(g, e, &d);
}

attn_var *ag_attention(attn_graph *g, attn_var *q, attn_var *k, attn_var *v, const ag_attention_call *c,
                       attn_var **weights) {
    if (weights) *weights = NULL;
    attn_entry tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.c = *c;
    attn_desc *a = &tmp.c.a;
    attn_score_params *pp = &tmp.params;
    attn_var *const *pv = c->params;
    if (a->score == ATTN_SCORE_GENERAL) {
        pp->W = pv[0]->data;
        a->params = pp;
    } else if (a->score == ATTN_SCORE_ADDITIVE) {
        pp->A = (int)pv[5]->numel;
        pp->Wa = pv[1] ? pv[1]->data : NULL, pp->Ua = pv[3] ? pv[3]->data : NULL, pp->va = pv[5]->data;
        pp->ba = pv[2] ? pv[2]->data : NULL, pp->bu = pv[4] ? pv[4]->data : NULL, pp->bv = pv[6] ? pv[6]->data : NULL;
        a->params = pp;
    } else {
        a->params = NULL;
    }
    if (tmp.c.has_mods) {
        if (c->alibi) tmp.c.mods.alibi_slopes = c->alibi->data;
        if (c->sinks) tmp.c.mods.sinks = c->sinks->data;
        a->mods = &tmp.c.mods;
    }
    if (a->mask.key_lengths) {
        int32_t *kl = ag_alloc(g, (size_t)a->B * sizeof(int32_t));
        if (!kl) return NULL;
        memcpy(kl, a->mask.key_lengths, (size_t)a->B * sizeof(int32_t));
        a->mask.key_lengths = kl;
    }
    int st = attn_desc_check(a);
    if (st != ATTN_OK) return ag_fail_last(g, st);
    if (c->rope) {
        for (int i = 0; i < 2; i++) {
            attn_rope_desc r = rope_desc(i ? k : q, a, i, c->rope_base);
            if ((st = attn_rope_forward(&r, (i ? k : q)->data + c->off[i])) != ATTN_OK) return ag_fail_last(g, st);
        }
    }
    int rg = q->requires_grad || k->requires_grad || v->requires_grad;
    for (int i = 0; a->params && i < 7; i++) rg |= pv[i] && pv[i]->requires_grad;
    rg |= (c->alibi && c->alibi->requires_grad) || (c->sinks && c->sinks->requires_grad);
    attn_var *y = ag_new(g, c->ond, c->oshape, rg);
    float *lse = ag_floats(g, (int64_t)a->B * a->H * a->Nq);
    attn_var *P = weights ? ag_new(g, 4, (int64_t[]){a->B, a->H, a->Nq, a->Nk}, 0) : NULL;
    if (!y || !lse || (weights && !P)) return NULL;
    attn_plan *pl = ag_plan(g, a);
    if (!pl) return NULL;
    /* The fused forward keeps no weights; when asked for, they are recomputed from its lse
     * (attn_weights: the bits the forward would have written). */
    st = attn_plan_forward(pl, q->data + c->off[0], k->data + c->off[1], v->data + c->off[2], y->data, NULL, lse);
    if (!st && P) st = attn_plan_weights(pl, q->data + c->off[0], k->data + c->off[1], lse, NULL, a->B * a->H, 0, a->Nq, P->data);
    if (st != ATTN_OK) return ag_fail_last(g, st);
    if (y->requires_grad) {
        attn_entry *e = ag_record(g, sizeof *e, attn_backward_entry, y, NULL);
        if (!e) return NULL;
        e->x[0] = q, e->x[1] = k, e->x[2] = v, e->lse = lse;
        e->c = tmp.c;
        e->params = tmp.params;
        e->c.a.params = a->params ? &e->params : NULL;
        e->c.a.mods = e->c.has_mods ? &e->c.mods : NULL;
    }
    if (weights) *weights = P;
    return y;
}

static int param_check(attn_graph *g, const char *name, attn_var *p, int64_t d0, int64_t d1) {
    int ok = p && (d1 ? (p->ndim == 2 && p->shape[0] == d0 && p->shape[1] == d1) : (p->ndim == 1 && p->shape[0] == d0));
    if (!ok) {
        char s[64];
        if (d1) ag_fail(g, ATTN_ESHAPE, "attn_ag_attention: %s is %s, expected (%lld, %lld)", name, p ? ag_shape_str(p, s, sizeof s) : "missing", (long long)d0, (long long)d1);
        else ag_fail(g, ATTN_ESHAPE, "attn_ag_attention: %s is %s, expected (%lld)", name, p ? ag_shape_str(p, s, sizeof s) : "missing", (long long)d0);
    }
    return ok;
}

attn_var *attn_ag_attention(attn_graph *g, attn_var *q, attn_var *k, attn_var *v, const attn_ag_attention_opts *o,
                            attn_var **weights) {
    if (weights) *weights = NULL;
    if (!ag_ok(g, "attn_ag_attention", 3, (attn_var *const[]){q, k, v})) return NULL;
    if (!o) return ag_fail(g, ATTN_EINVAL, "attn_ag_attention: NULL options");
    char s1[64], s2[64], s3[64];
    attn_desc a;
    memset(&a, 0, sizeof a);
    int64_t oshape[ATTN_AG_MAX_DIMS];
    int ond;
    if (o->layout == ATTN_AG_BHND) {
        if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0] ||
            v->shape[1] != k->shape[1] || v->shape[2] != k->shape[2])
            goto bad;
        a.B = (int)q->shape[0], a.H = (int)q->shape[1], a.Nq = (int)q->shape[2], a.dq = (int)q->shape[3];
        a.Hkv = (int)k->shape[1], a.Nk = (int)k->shape[2], a.dk = (int)k->shape[3], a.dv = (int)v->shape[3];
        ond = 4;
        oshape[0] = a.B, oshape[1] = a.H, oshape[2] = a.Nq, oshape[3] = a.dv;
    } else if (o->layout == ATTN_AG_BNHD || o->layout == ATTN_AG_NBHD) {
        int H = o->heads > 0 ? o->heads : 1, Hkv = o->kv_heads > 0 ? o->kv_heads : H;
        int tm = o->layout == ATTN_AG_NBHD; /* time-major: (N, B, features) */
        if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || q->shape[tm] != k->shape[tm] || v->shape[tm] != k->shape[tm] ||
            v->shape[!tm] != k->shape[!tm] || q->shape[2] % H || k->shape[2] % Hkv || v->shape[2] % Hkv)
            goto bad;
        a.B = (int)q->shape[tm], a.H = H, a.Hkv = Hkv, a.Nq = (int)q->shape[!tm], a.Nk = (int)k->shape[!tm];
        a.dq = (int)(q->shape[2] / H), a.dk = (int)(k->shape[2] / Hkv), a.dv = (int)(v->shape[2] / Hkv);
        int64_t Fq = q->shape[2], Fk = k->shape[2], Fv = v->shape[2], Fo = (int64_t)H * a.dv;
        if (!tm) {
            int64_t qs[3] = {a.Nq * Fq, a.dq, Fq}, ks[3] = {a.Nk * Fk, a.dk, Fk}, vs[3] = {a.Nk * Fv, a.dv, Fv}, os[3] = {a.Nq * Fo, a.dv, Fo};
            memcpy(a.q_strides, qs, sizeof qs), memcpy(a.k_strides, ks, sizeof ks), memcpy(a.v_strides, vs, sizeof vs), memcpy(a.o_strides, os, sizeof os);
            oshape[0] = a.B, oshape[1] = a.Nq;
        } else {
            int64_t qs[3] = {Fq, a.dq, a.B * Fq}, ks[3] = {Fk, a.dk, a.B * Fk}, vs[3] = {Fv, a.dv, a.B * Fv}, os[3] = {Fo, a.dv, a.B * Fo};
            memcpy(a.q_strides, qs, sizeof qs), memcpy(a.k_strides, ks, sizeof ks), memcpy(a.v_strides, vs, sizeof vs), memcpy(a.o_strides, os, sizeof os);
            oshape[0] = a.Nq, oshape[1] = a.B;
        }
        oshape[2] = Fo;
        ond = 3;
    } else {
        return ag_fail(g, ATTN_EINVAL, "attn_ag_attention: unknown layout %d", (int)o->layout);
    }
    a.score = o->score;
    a.scale = o->scale;
    a.mask = o->mask;
    ag_attention_call c;
    memset(&c, 0, sizeof c);
    if (a.score == ATTN_SCORE_GENERAL) {
        if (!param_check(g, "W", o->W, a.dq, a.dk)) return NULL;
        c.params[0] = o->W;
    } else if (a.score == ATTN_SCORE_ADDITIVE) {
        int64_t A = o->Wa ? o->Wa->shape[0] : 0;
        if (!param_check(g, "Wa", o->Wa, A, a.dq) || !param_check(g, "Ua", o->Ua, A, a.dk) || !param_check(g, "va", o->va, A, 0) ||
            (o->ba && !param_check(g, "ba", o->ba, A, 0)) || (o->bu && !param_check(g, "bu", o->bu, A, 0)) ||
            (o->bv && !param_check(g, "bv", o->bv, 1, 0)))
            return NULL;
        attn_var *const ps[7] = {NULL, o->Wa, o->ba, o->Ua, o->bu, o->va, o->bv};
        memcpy(c.params, ps, sizeof ps);
    }
    if (o->mods || o->alibi_slopes || o->sinks) {
        if ((o->alibi_slopes && !param_check(g, "alibi_slopes", o->alibi_slopes, a.H, 0)) ||
            (o->sinks && !param_check(g, "sinks", o->sinks, a.H, 0)))
            return NULL;
        c.has_mods = 1;
        if (o->mods) c.mods = *o->mods;
        c.alibi = o->alibi_slopes, c.sinks = o->sinks;
    }
    c.a = a;
    c.ond = ond;
    memcpy(c.oshape, oshape, sizeof c.oshape);
    return ag_attention(g, q, k, v, &c, weights);
bad:
    return ag_fail(g, ATTN_ESHAPE, "attn_ag_attention: q %s, k %s, v %s do not fit layout %d (heads %d, kv_heads %d)",
                   ag_shape_str(q, s1, sizeof s1), ag_shape_str(k, s2, sizeof s2), ag_shape_str(v, s3, sizeof s3), (int)o->layout,
                   o->heads, o->kv_heads);
}
