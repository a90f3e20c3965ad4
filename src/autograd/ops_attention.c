/* Attention on the tape: one entry around attn_forward / attn_backward (attn/attention.h), for
 * every score kind and mask, with q, k, v in one of three layouts read through strides (no
 * transposes), the log-sum-exp kept for the backward, and the weights kept on request.
 * Letters: B batch, H query heads, Hkv key/value heads, Nq queries, Nk keys, dq, dk, dv
 * feature sizes per head, A the additive score's hidden size. */
#include <string.h>

#include "autograd/ag.h"

typedef struct {
    ag_entry e;
    attn_var *q, *k, *v;
    attn_var *W, *Wa, *ba, *Ua, *bu, *va, *bv;
    attn_desc desc;
    attn_score_params params;
    float *lse; /* (B, H, Nq) */
} attn_entry;

/* The gradient buffer attn_backward may overwrite for x: x's own when it was not allocated
 * yet and no other argument of this call writes it, else a scratch buffer added afterwards. */
typedef struct {
    attn_var *x;
    float *buf;
    int add; /* buf is scratch: add it into x's gradient */
} dest;

static int dest_get(attn_graph *g, attn_var *x, const dest *others, int nothers, dest *d) {
    d->x = x;
    d->buf = NULL;
    d->add = 0;
    if (!x || !x->requires_grad) return 1;
    for (int i = 0; i < nothers; i++)
        if (others[i].x && others[i].buf && ag_base(others[i].x) == ag_base(x)) {
            d->add = 1;
            break;
        }
    if (!d->add) {
        int fresh;
        float *gbuf = ag_grad(g, x, &fresh);
        if (!gbuf) return 0;
        if (fresh) {
            d->buf = gbuf;
            return 1;
        }
        d->add = 1;
    }
    d->buf = ag_floats(g, x->numel);
    return d->buf != NULL;
}

static void dest_finish(attn_graph *g, dest *d) {
    if (!d->buf || !d->add) return;
    int fresh;
    float *gbuf = ag_grad(g, d->x, &fresh);
    if (!gbuf) return;
    for (int64_t i = 0; i < d->x->numel; i++) gbuf[i] = fresh ? d->buf[i] : gbuf[i] + d->buf[i];
}

static float *pgrad(attn_graph *g, attn_var *p, int *bad) {
    if (!p || !p->requires_grad) return NULL;
    float *d = ag_grad_zeroed(g, p);
    if (!d) *bad = 1;
    return d;
}

static void attn_backward_entry(attn_graph *g, ag_entry *base) {
    attn_entry *e = (attn_entry *)base;
    dest d[3] = {{0}};
    if (!dest_get(g, e->q, d, 0, &d[0]) || !dest_get(g, e->k, d, 1, &d[1]) || !dest_get(g, e->v, d, 2, &d[2])) return;
    int bad = 0;
    attn_score_params dp = {0};
    dp.A = e->params.A;
    dp.W = pgrad(g, e->W, &bad);
    dp.Wa = pgrad(g, e->Wa, &bad);
    dp.ba = pgrad(g, e->ba, &bad);
    dp.Ua = pgrad(g, e->Ua, &bad);
    dp.bu = pgrad(g, e->bu, &bad);
    dp.va = pgrad(g, e->va, &bad);
    dp.bv = pgrad(g, e->bv, &bad);
    if (bad) return;
    int st = attn_backward(&e->desc, e->q->data, e->k->data, e->v->data, e->e.out->data, e->lse, ag_dy(e->e.out), d[0].buf,
                           d[1].buf, d[2].buf, &dp);
    if (st != ATTN_OK) {
        ag_fail_last(g, st);
        return;
    }
    for (int i = 0; i < 3; i++) dest_finish(g, &d[i]);
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
    attn_entry tmp;
    memset(&tmp, 0, sizeof tmp);
    attn_score_params *pp = &tmp.params;
    if (a.score == ATTN_SCORE_GENERAL) {
        if (!param_check(g, "W", o->W, a.dq, a.dk)) return NULL;
        pp->W = o->W->data;
        a.params = pp;
    } else if (a.score == ATTN_SCORE_ADDITIVE) {
        int64_t A = o->Wa ? o->Wa->shape[0] : 0;
        if (!param_check(g, "Wa", o->Wa, A, a.dq) || !param_check(g, "Ua", o->Ua, A, a.dk) || !param_check(g, "va", o->va, A, 0) ||
            (o->ba && !param_check(g, "ba", o->ba, A, 0)) || (o->bu && !param_check(g, "bu", o->bu, A, 0)) ||
            (o->bv && !param_check(g, "bv", o->bv, 1, 0)))
            return NULL;
        pp->A = (int)A;
        pp->Wa = o->Wa->data, pp->Ua = o->Ua->data, pp->va = o->va->data;
        pp->ba = o->ba ? o->ba->data : NULL, pp->bu = o->bu ? o->bu->data : NULL, pp->bv = o->bv ? o->bv->data : NULL;
        a.params = pp;
    }
    if (a.mask.key_lengths) {
        int32_t *kl = ag_alloc(g, (size_t)a.B * sizeof(int32_t));
        if (!kl) return NULL;
        memcpy(kl, a.mask.key_lengths, (size_t)a.B * sizeof(int32_t));
        a.mask.key_lengths = kl;
    }
    int st = attn_desc_check(&a);
    if (st != ATTN_OK) return ag_fail_last(g, st);

    attn_var *const ps[7] = {o->W, o->Wa, o->ba, o->Ua, o->bu, o->va, o->bv};
    int rg = q->requires_grad || k->requires_grad || v->requires_grad;
    if (a.score == ATTN_SCORE_GENERAL) rg |= o->W->requires_grad;
    if (a.score == ATTN_SCORE_ADDITIVE)
        for (int i = 1; i < 7; i++) rg |= ps[i] && ps[i]->requires_grad;
    attn_var *y = ag_new(g, ond, oshape, rg);
    float *lse = ag_floats(g, (int64_t)a.B * a.H * a.Nq);
    attn_var *P = weights ? ag_new(g, 4, (int64_t[]){a.B, a.H, a.Nq, a.Nk}, 0) : NULL;
    if (!y || !lse || (weights && !P)) return NULL;
    st = attn_forward(&a, q->data, k->data, v->data, y->data, P ? P->data : NULL, lse);
    if (st != ATTN_OK) return ag_fail_last(g, st);
    if (y->requires_grad) {
        attn_entry *e = ag_record(g, sizeof *e, attn_backward_entry, y, NULL);
        if (!e) return NULL;
        e->q = q, e->k = k, e->v = v, e->lse = lse;
        e->params = tmp.params;
        e->desc = a;
        e->desc.params = a.params ? &e->params : NULL;
        if (a.score == ATTN_SCORE_GENERAL) e->W = o->W;
        if (a.score == ATTN_SCORE_ADDITIVE) e->Wa = o->Wa, e->ba = o->ba, e->Ua = o->Ua, e->bu = o->bu, e->va = o->va, e->bv = o->bv;
    }
    if (weights) *weights = P;
    return y;
bad:
    return ag_fail(g, ATTN_ESHAPE, "attn_ag_attention: q %s, k %s, v %s do not fit layout %d (heads %d, kv_heads %d)",
                   ag_shape_str(q, s1, sizeof s1), ag_shape_str(k, s2, sizeof s2), ag_shape_str(v, s3, sizeof s3), (int)o->layout,
                   o->heads, o->kv_heads);
}
