/* The attention function: checking the problem description, the scores step alone, and the
 * fused forward and backward that drive the kernels over (batch, head, block) tasks.
 *
 * Cosine and general scores are reduced to a scaled dot product before the kernels run:
 *   cosine:  s = scale * qhat . khat,  qhat = q / max(|q|, eps)   (Q and K normalised first)
 *   general: s = scale * (W^T q) . k = scale * q^T W k            (Q' = Q W first)
 * and their backward applies the chain rule through that transformation afterwards.
 * Additive scores (Bahdanau) keep their own path below (tanh per pair, kernels/additive.c).
 * Every buffer a call needs lives in the plan's workspace (attn_plan): allocated on the first
 * call that needs it, kept and reused by the next, so repeated calls allocate nothing.
 * Letters as in attn/attention.h; G = H / Hkv query heads per key/value head.
 */
#include "attn/attention.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/ref/additive.h"
#include "kernels/kernels.h"
#include "attn/io.h"
#include "nn/attention_bf16.h"
#include "nn/attention_mods.h"
#include "nn/nn_internal.h"

static void contiguous(int64_t s[3], int H, int N, int d) {
    if (s[0] || s[1] || s[2]) return;
    s[2] = d;
    s[1] = (int64_t)N * d;
    s[0] = (int64_t)H * N * d;
}

int attn_desc_check(attn_desc *a) {
    if (!a) return attn__error(ATTN_EINVAL, "attention description is NULL");
    if (a->dtype != ATTN_F32 && a->dtype != ATTN_BF16)
        return attn__error(ATTN_EINVAL, "attention element type %d is not supported (ATTN_F32 or ATTN_BF16)", (int)a->dtype);
    if (a->compute != ATTN_F32 && a->compute != ATTN_BF16)
        return attn__error(ATTN_EINVAL, "attention compute type %d is not supported (ATTN_F32 or ATTN_BF16)", (int)a->compute);
    if (a->Hkv == 0) a->Hkv = a->H;
    if (a->dk == 0) a->dk = a->dq;
    if (a->dv == 0) a->dv = a->dk;
    if (a->B <= 0 || a->H <= 0 || a->Hkv <= 0 || a->Nq <= 0 || a->Nk <= 0 || a->dq <= 0 || a->dk <= 0 || a->dv <= 0)
        return attn__error(ATTN_EINVAL, "attention sizes must be positive (B=%d H=%d Hkv=%d Nq=%d Nk=%d dq=%d dk=%d dv=%d)",
                           a->B, a->H, a->Hkv, a->Nq, a->Nk, a->dq, a->dk, a->dv);
    if (a->H % a->Hkv != 0)
        return attn__error(ATTN_ESHAPE, "query heads (%d) must be a multiple of key/value heads (%d)", a->H, a->Hkv);
    if ((unsigned)a->score > ATTN_SCORE_ADDITIVE) return attn__error(ATTN_EINVAL, "unknown score kind %d", (int)a->score);
    if (a->score <= ATTN_SCORE_COSINE && a->dq != a->dk)
        return attn__error(ATTN_ESHAPE, "%s score needs queries and keys of one size (dq=%d, dk=%d)",
                           attn_score_name(a->score), a->dq, a->dk);
    if (a->score == ATTN_SCORE_GENERAL && (!a->params || !a->params->W))
        return attn__error(ATTN_EINVAL, "general score needs its matrix W (dq, dk)");
    if (a->score == ATTN_SCORE_ADDITIVE) {
        const attn_score_params *p = a->params;
        if (!p || p->A <= 0 || !p->va || !p->Wa != !p->Ua)
            return attn__error(ATTN_EINVAL, "additive score needs va (A) with A > 0 and both or neither of Wa (A, dq), Ua (A, dk)");
        if (!p->Wa && (a->dq != p->A || a->dk != p->A || p->ba || p->bu))
            return attn__error(ATTN_EINVAL, "additive score without Wa and Ua takes projected queries and keys: dq (%d) and "
                               "dk (%d) must be A (%d), and ba, bu NULL", a->dq, a->dk, p->A);
    }
    if (!isfinite(a->scale)) return attn__error(ATTN_EINVAL, "scale must be finite");
    if (a->scale == 0.0f) a->scale = a->score == ATTN_SCORE_SCALED ? 1.0f / sqrtf((float)a->dq) : 1.0f;
    if (a->mask.window < 0) return attn__error(ATTN_EINVAL, "window must be >= 0, not %d", a->mask.window);
    if (a->mask.key_lengths)
        for (int b = 0; b < a->B; b++)
            if (a->mask.key_lengths[b] < 0 || a->mask.key_lengths[b] > a->Nk)
                return attn__error(ATTN_EINVAL, "key length %d of batch %d is outside [0, %d]",
                                   (int)a->mask.key_lengths[b], b, a->Nk);
    contiguous(a->q_strides, a->H, a->Nq, a->dq);
    contiguous(a->k_strides, a->Hkv, a->Nk, a->dk);
    contiguous(a->v_strides, a->Hkv, a->Nk, a->dv);
    contiguous(a->o_strides, a->H, a->Nq, a->dv);
    if (attn__bf16_on(a)) return attn__bf16_check(a);
    return attn__mods_check(a);
}

/* ------------------------------------------------------------------------------------------
 * Plans: a checked description and its workspace, one buffer per purpose. */

enum {
    WS_QBUF, WS_KBUF, WS_QNORM, WS_KNORM, /* transformed queries/keys, cosine norms */
    WS_WQ, WS_UK,                         /* additive projections */
    WS_SCRATCH, WS_PO, WS_PL,             /* kernel scratch, split-forward partials */
    WS_LSE, WS_OTMP, WS_DELTA,            /* forward/backward row statistics */
    WS_DQ, WS_DK, WS_DQPART,              /* backward: effective dq, dk, per-range dq */
    WS_DWQ, WS_DUK, WS_DVAB,              /* additive backward (and attn_mods: nn/attention_mods.c) */
    WS_BF16, WS_BF16_END = WS_BF16 + 8,   /* the bf16 path's (nn/attention_bf16.c) */
    WS_COUNT
};

/* The workspace holds nothing from one call to the next: the backward recomputes what it
 * needs (transformed queries and keys, additive projections) from its arguments, and the
 * log-sum-exp it reads is the caller's. One plan may therefore serve several calls in turn,
 * as the autograd graph's plan serves every attention entry (autograd/ag.h, ag_plan). */
struct attn_plan {
    attn_desc a; /* checked */
    void *buf[WS_COUNT];
    size_t cap[WS_COUNT]; /* bytes */
    attn__mods_state *mods; /* the block mask of mask_mod (made once), gradients' sums */
};

/* The workspace buffer `slot` of at least n floats (zeroed if asked); grown only when a call
 * needs more than any call before (a plan whose shapes stay the same allocates once). */
static float *ws_get(attn_plan *pl, int slot, size_t n, int zero) {
    size_t bytes = (n ? n : 1) * sizeof(float);
    if (pl->cap[slot] < bytes) {
        attn_free(pl->buf[slot]);
        pl->cap[slot] = 0;
        if (!(pl->buf[slot] = attn_malloc(bytes))) {
            attn__error(ATTN_ENOMEM, "attention: out of memory for a workspace of %zu bytes", bytes);
            return NULL;
        }
        pl->cap[slot] = bytes;
    }
    if (zero) memset(pl->buf[slot], 0, bytes);
    return pl->buf[slot];
}

float *attn__plan_bf16_buf(attn_plan *pl, int i, size_t n) { return ws_get(pl, WS_BF16 + i, n, 0); }
attn_desc *attn__plan_desc_rw(attn_plan *pl) { return &pl->a; }

int attn_plan_new(const attn_desc *d, attn_plan **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_plan_new: NULL output");
    *out = NULL;
    attn_plan *pl = attn_calloc(1, sizeof *pl);
    if (!pl) return attn__error(ATTN_ENOMEM, "attn_plan_new: out of memory");
    int st = attn_plan_reshape(pl, d);
    if (st) {
        attn_free(pl);
        return st;
    }
    *out = pl;
    return ATTN_OK;
}

int attn_plan_reshape(attn_plan *pl, const attn_desc *d) {
    if (!pl || !d) return attn__error(ATTN_EINVAL, "attn_plan_reshape: NULL plan or description");
    attn_desc a = *d;
    int st = attn_desc_check(&a);
    if (st) return st;
    pl->a = a, attn__mods_reset(pl->mods);
    return ATTN_OK;
}

const attn_desc *attn_plan_desc(const attn_plan *pl) { return pl ? &pl->a : NULL; }

void attn_plan_free(attn_plan *pl) {
    if (!pl) return;
    for (int i = 0; i < WS_COUNT; i++) attn_free(pl->buf[i]);
    attn__mods_free(pl->mods), attn_free(pl);
}

/* ------------------------------------------------------------------------------------------
 * Preparation: the effective queries and keys the kernels see. */

typedef struct {
    attn_desc a;                /* checked copy */
    attn_plan *ws;              /* the plan whose workspace the call uses */
    const float *Q, *K, *V;     /* the caller's arrays */
    const float *q, *k;         /* effective queries/keys: the caller's or qbuf/kbuf */
    int64_t qs[3], ks[3];       /* their strides */
    int d;                      /* their feature size (dk) */
    float *qbuf, *kbuf;         /* transformed copies (workspace), contiguous */
    float *qnorm, *knorm;       /* cosine: max(|q|, eps) per row (B*H*Nq), (B*Hkv*Nk) */
    const uint8_t *tiles;       /* the block mask of mask_mod, or NULL */
} prep;

static int prep_init(prep *p, attn_plan *pl, const float *Q, const float *K, const float *V) {
    memset(p, 0, sizeof *p);
    p->ws = pl;
    p->a = pl->a;
    int st = attn_desc_check(&p->a); /* again: key lengths may have changed since */
    if (st) return st;
    if (attn__bf16_on(&p->a))
        return attn__error(ATTN_EINVAL, "bf16 attention runs attn_forward and attn_backward only (use fp32 for the "
                                        "three steps, the weights and attn_weights)");
    if (!Q || !K || !V) return attn__error(ATTN_EINVAL, "Q, K and V must not be NULL");
    if ((st = attn__mods_tiles(&pl->mods, &p->a, &p->tiles))) return st;
    attn_desc *a = &p->a;
    p->Q = Q, p->K = K, p->V = V;
    p->q = Q, p->k = K;
    memcpy(p->qs, a->q_strides, sizeof p->qs);
    memcpy(p->ks, a->k_strides, sizeof p->ks);
    p->d = a->dk;
    size_t nq = (size_t)a->B * a->H * a->Nq, nk = (size_t)a->B * a->Hkv * a->Nk;
    if (a->score == ATTN_SCORE_COSINE) {
        p->qbuf = ws_get(pl, WS_QBUF, nq * a->dq, 0);
        p->kbuf = ws_get(pl, WS_KBUF, nk * a->dk, 0);
        p->qnorm = ws_get(pl, WS_QNORM, nq, 0);
        p->knorm = ws_get(pl, WS_KNORM, nk, 0);
        if (!p->qbuf || !p->kbuf || !p->qnorm || !p->knorm) return ATTN_ENOMEM;
        attn__cos_normalise_rows(Q, a->q_strides, a->B, a->H, a->Nq, a->dq, p->qbuf, p->qnorm);
        attn__cos_normalise_rows(K, a->k_strides, a->B, a->Hkv, a->Nk, a->dk, p->kbuf, p->knorm);
        p->q = p->qbuf, p->k = p->kbuf;
        contiguous(memset(p->qs, 0, sizeof p->qs), a->H, a->Nq, a->dq);
        contiguous(memset(p->ks, 0, sizeof p->ks), a->Hkv, a->Nk, a->dk);
    } else if (a->score == ATTN_SCORE_GENERAL) {
        /* Q' (Nq, dk) = Q (Nq, dq) W (dq, dk), per (b, h). */
        p->qbuf = ws_get(pl, WS_QBUF, nq * a->dk, 0);
        if (!p->qbuf) return ATTN_ENOMEM;
        for (int b = 0; b < a->B; b++)
            for (int h = 0; h < a->H; h++)
                attn__kern()->sgemm(0, 0, a->Nq, a->dk, a->dq, 1.0f, Q + b * a->q_strides[0] + h * a->q_strides[1],
                                    a->q_strides[2], a->params->W, a->dk, 0.0f,
                                    p->qbuf + ((size_t)b * a->H + h) * a->Nq * a->dk, a->dk);
        p->q = p->qbuf;
        memset(p->qs, 0, sizeof p->qs);
        contiguous(p->qs, a->H, a->Nq, a->dk);
    }
    return ATTN_OK;
}

attn__head attn__desc_head(const attn_desc *a, int b, int h) {
    attn__head hd = {0};
    hd.Nq = a->Nq, hd.Nk = a->Nk, hd.d = a->dk, hd.dv = a->dv;
    hd.scale = a->scale;
    hd.causal = a->mask.causal || a->mask.window > 0;
    hd.window = a->mask.window;
    hd.key_len = a->mask.key_lengths ? a->mask.key_lengths[b] : a->Nk;
    if (a->mask.bool_mask) {
        const int64_t *s = a->mask.bool_strides;
        hd.bmask = a->mask.bool_mask + b * s[0] + h * s[1];
        hd.bm_rs = s[2], hd.bm_cs = s[3];
    }
    if (a->mask.bias) {
        const int64_t *s = a->mask.bias_strides;
        hd.bias = a->mask.bias + b * s[0] + h * s[1];
        hd.bias_rs = s[2], hd.bias_cs = s[3];
    }
    return hd;
}

/* The kernel's view of one (batch, query head). */
static attn__head head_of(const prep *p, int b, int h) {
    const attn_desc *a = &p->a;
    int hk = h / (a->H / a->Hkv);
    attn__head hd = attn__desc_head(a, b, h);
    hd.d = p->d;
    /* Arrays a caller does not have (V for the scores, all three for the masks alone) stay
     * NULL: an offset from a stand-in pointer could point past its array (undefined). */
    if (p->q) hd.q = p->q + b * p->qs[0] + h * p->qs[1], hd.q_rs = p->qs[2];
    if (p->k) hd.k = p->k + b * p->ks[0] + hk * p->ks[1], hd.k_rs = p->ks[2];
    if (p->V) hd.v = p->V + b * a->v_strides[0] + hk * a->v_strides[1], hd.v_rs = a->v_strides[2];
    attn__mods_head(&hd, a, b, h, p->ws ? p->ws->mods : NULL, p->tiles);
    return hd;
}

/* Per-thread scratch for kernel calls. */
typedef struct {
    float *buf;
    size_t per_thread;
} scratch;

static int scratch_init(scratch *s, attn_plan *pl, size_t floats) {
    s->per_thread = (floats + 15) & ~(size_t)15;
    s->buf = ws_get(pl, WS_SCRATCH, s->per_thread * (size_t)attn__max_threads(), 0);
    return s->buf ? ATTN_OK : ATTN_ENOMEM;
}

static float *scratch_at(const scratch *s, int thread) { return s->buf + s->per_thread * (size_t)thread; }

/* ------------------------------------------------------------------------------------------
 * Additive (Bahdanau) scores: s_ij = va . tanh(Wq_i + Uk_j) + bv with Wq = Q Wa^T + ba,
 * Uk = K Ua^T + bu, computed once per call (or Q and K themselves when Wa and Ua are NULL).
 * Each score is kernels/additive.c's (a fast tanh, a fixed-order dot product). */

typedef struct {
    const float *Wq; int64_t qs[3]; /* projected queries (B, H, Nq, A) with strides qs */
    const float *Uk; int64_t ks[3]; /* projected keys (B, Hkv, Nk, A) with strides ks */
} additive;

static int additive_init(additive *ad, const prep *p) {
    attn_plan *pl = p->ws;
    const attn_desc *a = &p->a;
    const attn_score_params *w = a->params;
    int A = w->A;
    if (!w->Wa) {
        ad->Wq = p->Q, ad->Uk = p->K;
        memcpy(ad->qs, a->q_strides, sizeof ad->qs), memcpy(ad->ks, a->k_strides, sizeof ad->ks);
        return ATTN_OK;
    }
    float *Wq = ws_get(pl, WS_WQ, (size_t)a->B * a->H * a->Nq * A, 0);
    float *Uk = ws_get(pl, WS_UK, (size_t)a->B * a->Hkv * a->Nk * A, 0);
    if (!Wq || !Uk) return ATTN_ENOMEM;
    ad->Wq = Wq, ad->Uk = Uk;
    memset(ad->qs, 0, sizeof ad->qs), memset(ad->ks, 0, sizeof ad->ks);
    contiguous(ad->qs, a->H, a->Nq, A), contiguous(ad->ks, a->Hkv, a->Nk, A);
    for (int b = 0; b < a->B; b++) {
        for (int h = 0; h < a->H; h++) {
            float *dst = Wq + ((size_t)b * a->H + h) * a->Nq * A;
            attn__kern()->sgemm(0, 1, a->Nq, A, a->dq, 1.0f, p->Q + b * a->q_strides[0] + h * a->q_strides[1],
                                a->q_strides[2], w->Wa, a->dq, 0.0f, dst, A);
            if (w->ba)
                for (int i = 0; i < a->Nq; i++)
                    for (int c = 0; c < A; c++) dst[i * A + c] += w->ba[c];
        }
        for (int h = 0; h < a->Hkv; h++) {
            float *dst = Uk + ((size_t)b * a->Hkv + h) * a->Nk * A;
            attn__kern()->sgemm(0, 1, a->Nk, A, a->dk, 1.0f, p->K + b * a->k_strides[0] + h * a->k_strides[1],
                                a->k_strides[2], w->Ua, a->dk, 0.0f, dst, A);
            if (w->bu)
                for (int j = 0; j < a->Nk; j++)
                    for (int c = 0; c < A; c++) dst[j * A + c] += w->bu[c];
        }
    }
    return ATTN_OK;
}

static const float *additive_q(const additive *ad, int b, int h, int i) {
    return ad->Wq + b * ad->qs[0] + h * ad->qs[1] + i * ad->qs[2];
}

static const float *additive_k(const additive *ad, int b, int hk, int j) {
    return ad->Uk + b * ad->ks[0] + hk * ad->ks[1] + j * ad->ks[2];
}

/* Masked, biased additive scores of row i of head (b, h) into s (Nk); -inf where hidden. The
 * tanh values go to t: (Nk, A) when keep_t (for the backward), else one row of A reused. */
static void additive_row(const prep *p, const additive *ad, const attn__head *hd, int b, int h, int i, float *s,
                         float *t, int keep_t) {
    const attn_desc *a = &p->a;
    const attn_score_params *w = a->params;
    int A = w->A, hk = h / (a->H / a->Hkv);
    const float *wq = additive_q(ad, b, h, i);
    for (int j = 0; j < a->Nk; j++) {
        if (!attn__visible(hd, i, j)) {
            s[j] = -INFINITY;
            continue;
        }
        s[j] = attn__additive_score(wq, additive_k(ad, b, hk, j), w->va, A, keep_t ? t + (size_t)j * A : t);
        if (w->bv) s[j] += w->bv[0];
        if (hd->bias) s[j] += hd->bias[i * hd->bias_rs + j * hd->bias_cs];
    }
}

/* ------------------------------------------------------------------------------------------
 * Forward. */

typedef struct {
    const prep *p;
    const additive *ad;
    const attn__kernels *kern;
    scratch sc;
    float *O, *P, *lse;
    int nqb; /* query blocks per head */
    int ns, chunk;   /* split over keys: ns ranges of chunk keys (1: no split) */
    float *po, *pl;  /* per range: outputs (ns, B, H, Nq, dv) and log-sum-exps (ns, B, H, Nq) */
    int G, H, Nq;    /* heads folded per task (fold_heads), and the heads and rows as tasks see them */
} fwd_job;

/* Grouped heads with few query rows (decoding): the G query heads of a group read the same
 * keys and values, so they go through them as the G * Nq rows of one head, and K and V are
 * read once per group instead of G times, where the kernel's row path takes G * Nq rows. Only where every row sees the same keys and the
 * heads' rows lie one after another (head stride = Nq rows, in Q and O): no mask, bias or
 * attn_mods (they depend on the row or the head), no additive scores. Each row is still its
 * own FMA chains and online softmax; the split over key ranges may differ (fewer tasks), so
 * results equal the unfolded ones within rounding, and are the same for any thread count. */
static int fold_heads(const prep *p, const attn__kernels *kern) {
    const attn_desc *a = &p->a;
    const attn_mask *m = &a->mask;
    int G = a->H / a->Hkv;
    if (G == 1 || a->Nq * G > kern->rows_max || a->mods || m->causal || m->window > 0 || m->bool_mask || m->bias)
        return 1;
    if (p->qs[1] != a->Nq * p->qs[2] || a->o_strides[1] != a->Nq * a->o_strides[2]) return 1;
    return G;
}

static void fwd_task(void *ctx, int task, int thread) {
    fwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int qb = task % j->nqb, bh = task / j->nqb, h = bh % j->H * j->G, b = bh / j->H;
    if (a->mask.causal && !j->ad) qb = j->nqb - 1 - qb; /* the longest rows first: better balance */
    int i0 = qb * j->kern->q_block, i1 = i0 + j->kern->q_block;
    if (i1 > j->Nq) i1 = j->Nq;
    attn__head hd = head_of(j->p, b, h);
    hd.Nq = j->Nq;
    float *o = j->O + b * a->o_strides[0] + h * a->o_strides[1];
    float *lse = j->lse + (size_t)bh * j->Nq;
    float *P = j->P ? j->P + (size_t)bh * j->Nq * a->Nk : NULL;
    float *s = scratch_at(&j->sc, thread);
    if (!j->ad) {
        j->kern->fwd(&hd, i0, i1, o, a->o_strides[2], lse, P, a->Nk, s);
        return;
    }
    for (int i = i0; i < i1; i++) {
        additive_row(j->p, j->ad, &hd, b, h, i, s, s + a->Nk, 0);
        lse[i] = attn__softmax_row(s, NULL, a->Nk);
        float *oi = o + i * a->o_strides[2];
        memset(oi, 0, (size_t)a->dv * sizeof *oi);
        for (int k = 0; k < a->Nk; k++) {
            if (s[k] == 0.0f) continue;
            const float *v = hd.v + k * hd.v_rs;
            for (int c = 0; c < a->dv; c++) oi[c] += s[k] * v[c];
        }
        if (P) memcpy(P + (size_t)i * a->Nk, s, (size_t)a->Nk * sizeof *s);
    }
}

/* Runs tasks on the library's threads, or on this thread alone when the whole call is too
 * small to pay for waking them (waking and joining threads costs tens of microseconds, more in
 * a virtual machine). The tasks are the same either way, so are the results. */
static void run_tasks(int ntasks, attn__task_fn fn, void *ctx, double flops) {
    if (flops < 4e6) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    attn__parallel(ntasks, fn, ctx);
}

/* Split over keys (few query blocks against many keys, e.g. decoding one token): task
 * (b, h, query block, key range) writes its own partial output and log-sum-exp; the merge
 * combines the ranges in order: lse = log sum_r exp(lse_r), o = sum_r exp(lse_r - lse) o_r. */
static void fwd_split_task(void *ctx, int task, int thread) {
    fwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int r = task % j->ns, t = task / j->ns, qb = t % j->nqb, bh = t / j->nqb, h = bh % j->H * j->G, b = bh / j->H;
    int i0 = qb * j->kern->q_block, i1 = i0 + j->kern->q_block, k0 = r * j->chunk, k1 = k0 + j->chunk;
    if (i1 > j->Nq) i1 = j->Nq;
    if (k1 > a->Nk) k1 = a->Nk;
    attn__head hd = head_of(j->p, b, h);
    hd.Nq = j->Nq;
    size_t rows = ((size_t)r * a->B * j->H + bh) * j->Nq;
    j->kern->fwd_part(&hd, i0, i1, k0, k1, j->po + rows * a->dv, a->dv, j->pl + rows, NULL, 0, scratch_at(&j->sc, thread));
}

static void fwd_merge_task(void *ctx, int bh, int thread) {
    (void)thread;
    fwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int h = bh % j->H * j->G, b = bh / j->H;
    size_t stride = (size_t)a->B * j->H * j->Nq;
    for (int i = 0; i < j->Nq; i++) {
        size_t row = (size_t)bh * j->Nq + i;
        float m = -INFINITY, sum = 0.0f, *o = j->O + b * a->o_strides[0] + h * a->o_strides[1] + i * a->o_strides[2];
        for (int r = 0; r < j->ns; r++) {
            float x = j->pl[r * stride + row];
            if (x > m || isnan(x)) m = x; /* a NaN stays */
        }
        memset(o, 0, (size_t)a->dv * sizeof *o);
        if (isnan(m)) { /* a range with a NaN or +inf score: NaN, as PyTorch */
            for (int c = 0; c < a->dv; c++) o[c] = NAN;
            j->lse[row] = NAN;
            continue;
        }
        if (m == -INFINITY) {
            j->lse[row] = -INFINITY;
            continue;
        }
        for (int r = 0; r < j->ns; r++) {
            float w = expf(j->pl[r * stride + row] - m);
            const float *po = j->po + (r * stride + row) * a->dv;
            sum += w;
            for (int c = 0; c < a->dv; c++) o[c] += w * po[c];
        }
        for (int c = 0; c < a->dv; c++) o[c] /= sum;
        j->lse[row] = m + logf(sum);
    }
}

static int run_forward(const prep *p, const additive *ad, float *O, float *P, float *lse) {
    const attn_desc *a = &p->a;
    fwd_job j = {.p = p, .ad = ad, .O = O, .P = P, .lse = lse, .ns = 1};
    /* The fast kernels write the weights too; additive scores have only the reference path. */
    j.kern = ad ? &attn__kernels_ref : attn__kern();
    size_t floats = j.kern->scratch_floats(a->Nk, p->d, a->dv);
    if (ad && floats < (size_t)a->Nk + a->params->A) floats = (size_t)a->Nk + a->params->A;
    int st = scratch_init(&j.sc, p->ws, floats);
    if (st) return st;
    j.G = ad ? 1 : fold_heads(p, j.kern), j.H = a->H / j.G, j.Nq = a->Nq * j.G;
    j.nqb = (j.Nq + j.kern->q_block - 1) / j.kern->q_block;
    /* Too few (b, h, query block) tasks for the threads and many keys: split the keys into
     * ranges of at least 256. The split depends on the shapes only, never on the thread
     * count, so results stay bitwise identical for any thread count. */
    int tasks = a->B * j.H * j.nqb;
    double flops = 2.0 * a->B * a->H * (double)a->Nq * a->Nk * (p->d + a->dv);
    if (j.kern->fwd_part && !P && tasks < 16 && a->Nk >= 512) {
        int ns = (16 + tasks - 1) / tasks, kb = j.kern->k_block;
        if (ns > a->Nk / 256) ns = a->Nk / 256;
        j.chunk = ((a->Nk + ns - 1) / ns + kb - 1) / kb * kb;
        j.ns = (a->Nk + j.chunk - 1) / j.chunk;
    }
    if (j.ns > 1) {
        size_t rows = (size_t)j.ns * a->B * j.H * j.Nq;
        j.po = ws_get(p->ws, WS_PO, rows * a->dv, 0);
        j.pl = ws_get(p->ws, WS_PL, rows, 0);
        if (!j.po || !j.pl) st = ATTN_ENOMEM;
        if (!st) run_tasks(tasks * j.ns, fwd_split_task, &j, flops);
        for (int bh = 0; !st && bh < a->B * j.H; bh++) fwd_merge_task(&j, bh, 0); /* O(ns Nq dv) */
    } else {
        run_tasks(tasks, fwd_task, &j, flops);
    }
    if (!st) attn__mods_sinks(a, O, P, lse);
    return st;
}

int attn_plan_forward(attn_plan *pl, const float *Q, const float *K, const float *V, float *O, float *P, float *lse) {
    if (!pl) return attn__error(ATTN_EINVAL, "attention plan is NULL");
    if (!O) return attn__error(ATTN_EINVAL, "output O must not be NULL");
    if (attn__bf16_on(&pl->a)) return attn__bf16_forward(pl, &pl->a, Q, K, V, O, P, lse);
    prep p;
    additive ad = {0};
    int st = prep_init(&p, pl, Q, K, V);
    if (!st && p.a.score == ATTN_SCORE_ADDITIVE) st = additive_init(&ad, &p);
    if (!st && !lse && !(lse = ws_get(pl, WS_LSE, (size_t)p.a.B * p.a.H * p.a.Nq, 0))) st = ATTN_ENOMEM;
    if (!st) st = run_forward(&p, ad.Wq ? &ad : NULL, O, P, lse);
    return st;
}

/* The one-shot calls: a plan for one call. */
int attn_forward(const attn_desc *desc, const float *Q, const float *K, const float *V, float *O, float *P, float *lse) {
    attn_plan *pl;
    int st = attn_plan_new(desc, &pl);
    if (!st) st = attn_plan_forward(pl, Q, K, V, O, P, lse);
    attn_plan_free(pl);
    return st;
}

int attn_backward(const attn_desc *desc, const float *Q, const float *K, const float *V, const float *O,
                  const float *lse, const float *dO, float *dQ, float *dK, float *dV, attn_score_params *dparams) {
    attn_plan *pl;
    int st = attn_plan_new(desc, &pl);
    if (!st) st = attn_plan_backward(pl, Q, K, V, O, lse, dO, dQ, dK, dV, dparams);
    attn_plan_free(pl);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * The three steps, one at a time, for learners who want to look at each (the second and third:
 * nn/attention_steps.c). */

typedef struct {
    const prep *p;
    const additive *ad;
    float *S;
    scratch sc; /* additive: tanh values (A) per thread */
} scores_job;

static void scores_task(void *ctx, int task, int thread) {
    scores_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int b = task / a->H, h = task % a->H;
    attn__head hd = head_of(j->p, b, h);
    float *S = j->S + (size_t)task * a->Nq * a->Nk;
    for (int i = 0; i < a->Nq; i++)
        for (int k = 0; k < a->Nk; k++) {
            float *s = S + (size_t)i * a->Nk + k;
            if (j->ad) {
                const attn_score_params *w = a->params;
                *s = attn__additive_score(additive_q(j->ad, b, h, i), additive_k(j->ad, b, h / (a->H / a->Hkv), k), w->va,
                                          w->A, scratch_at(&j->sc, thread));
                if (w->bv) *s += w->bv[0];
            } else {
                const float *q = hd.q + i * hd.q_rs, *kk = hd.k + k * hd.k_rs;
                float acc = 0.0f;
                for (int c = 0; c < hd.d; c++) acc += q[c] * kk[c];
                *s = acc * hd.scale;
            }
        }
}

int attn_scores(const attn_desc *desc, const float *Q, const float *K, float *S) {
    if (!S) return attn__error(ATTN_EINVAL, "scores S must not be NULL");
    prep p;
    additive ad = {0};
    attn_plan *pl;
    int st = attn_plan_new(desc, &pl);
    if (st) return st;
    /* V is not needed for scores; K stands in so that prep_init's NULL check passes, and is
     * then dropped (its strides are V's, not K's). */
    st = prep_init(&p, pl, Q, K, K);
    p.V = NULL;
    if (!st && p.a.score == ATTN_SCORE_ADDITIVE) st = additive_init(&ad, &p);
    scores_job j = {&p, ad.Wq ? &ad : NULL, S, {0}};
    if (!st && j.ad) st = scratch_init(&j.sc, pl, (size_t)p.a.params->A);
    if (!st) attn__parallel(p.a.B * p.a.H, scores_task, &j);
    attn_plan_free(pl);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * Backward. With p_ij = exp(s_ij - lse_i) and delta_i = dO_i . O_i:
 *   dV_j += sum_i p_ij dO_i;   ds_ij = p_ij (dO_i . V_j - delta_i);
 *   then through the score: dq_i += scale sum_j ds_ij k_j, dk_j += scale sum_i ds_ij q_i.
 * Tasks: dq over (b, h, query block) writing their own rows; dk/dv over (b, kv head, key
 * block), summing the G query heads of the group in order: no two tasks write one row. */

typedef struct {
    const prep *p;
    const attn__kernels *kern;
    scratch sc;
    const float *lse, *delta, *dO;
    float *dq;  int64_t dqs[3]; /* dq of the effective queries */
    float *dk;  int64_t dks[3]; /* dk of the effective keys, or NULL */
    float *dv;                  /* strides of V, or NULL */
    int nqb, nkb;
    int ns, chunk;              /* fused path: ns key ranges of chunk keys per (b, kv head) */
    float *dq_part;             /* ns > 1: per range dq (ns, B, H, Nq, d), summed in order */
} bwd_job;

static void bwd_dq_task(void *ctx, int task, int thread) {
    bwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int qb = task % j->nqb, bh = task / j->nqb, h = bh % a->H, b = bh / a->H;
    int i0 = qb * j->kern->q_block, i1 = i0 + j->kern->q_block;
    if (i1 > a->Nq) i1 = a->Nq;
    attn__head hd = head_of(j->p, b, h);
    j->kern->bwd_dq(&hd, j->lse + (size_t)bh * a->Nq, j->delta + (size_t)bh * a->Nq,
                    j->dO + b * a->o_strides[0] + h * a->o_strides[1], a->o_strides[2], i0, i1,
                    j->dq + b * j->dqs[0] + h * j->dqs[1], j->dqs[2], scratch_at(&j->sc, thread));
}

static void bwd_dkv_task(void *ctx, int task, int thread) {
    bwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int kb = task % j->nkb, bhk = task / j->nkb, hk = bhk % a->Hkv, b = bhk / a->Hkv, G = a->H / a->Hkv;
    int j0 = kb * j->kern->k_block, j1 = j0 + j->kern->k_block;
    if (j1 > a->Nk) j1 = a->Nk;
    float *dk = j->dk ? j->dk + b * j->dks[0] + hk * j->dks[1] : NULL;
    float *dv = j->dv ? j->dv + b * a->v_strides[0] + hk * a->v_strides[1] : NULL;
    for (int g = 0; g < G; g++) {
        int h = hk * G + g, bh = b * a->H + h;
        attn__head hd = head_of(j->p, b, h);
        j->kern->bwd_dkv(&hd, j->lse + (size_t)bh * a->Nq, j->delta + (size_t)bh * a->Nq,
                         j->dO + b * a->o_strides[0] + h * a->o_strides[1], a->o_strides[2], j0, j1,
                         dk, j->dks[2], dv, a->v_strides[2], scratch_at(&j->sc, thread));
    }
}

/* Zero rows of X (B, Hx, N, d) with strides s. */
static void zero_rows(float *X, const int64_t s[3], int B, int Hx, int N, int d) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hx; h++)
            for (int n = 0; n < N; n++) memset(X + b * s[0] + h * s[1] + n * s[2], 0, (size_t)d * sizeof(float));
}

/* The fused backward (kernel tables with bwd): task (b, kv head, key range) runs the G query
 * heads of the group in order over its keys, accumulating dK, dV rows it alone owns; dQ gets
 * every key range's contribution, so with one range per (b, kv head) the task owns the dQ of
 * its heads, and with more each range writes its own partial dQ, summed afterwards in range
 * order. The split depends on the shapes only: bitwise identical for any thread count. */
static void bwd_fused_task(void *ctx, int task, int thread) {
    bwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int r = task % j->ns, bhk = task / j->ns, hk = bhk % a->Hkv, b = bhk / a->Hkv, G = a->H / a->Hkv;
    int j0 = r * j->chunk, j1 = j0 + j->chunk;
    if (j1 > a->Nk) j1 = a->Nk;
    float *dk = j->dk ? j->dk + b * j->dks[0] + hk * j->dks[1] : NULL;
    float *dv = j->dv ? j->dv + b * a->v_strides[0] + hk * a->v_strides[1] : NULL;
    for (int g = 0; g < G; g++) {
        int h = hk * G + g, bh = b * a->H + h;
        attn__head hd = head_of(j->p, b, h);
        float *dq = NULL;
        int64_t dq_rs = 0;
        if (j->dq && j->ns == 1) dq = j->dq + b * j->dqs[0] + h * j->dqs[1], dq_rs = j->dqs[2];
        else if (j->dq) dq = j->dq_part + ((size_t)r * a->B * a->H + bh) * a->Nq * j->p->d, dq_rs = j->p->d;
        j->kern->bwd(&hd, j->lse + (size_t)bh * a->Nq, j->delta + (size_t)bh * a->Nq,
                     j->dO + b * a->o_strides[0] + h * a->o_strides[1], a->o_strides[2], j0, j1, dq, dq_rs,
                     dk, j->dks[2], dv, a->v_strides[2], scratch_at(&j->sc, thread));
    }
}

static void bwd_dq_sum_task(void *ctx, int bh, int thread) {
    (void)thread;
    bwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    int h = bh % a->H, b = bh / a->H, d = j->p->d;
    size_t stride = (size_t)a->B * a->H * a->Nq * d;
    for (int i = 0; i < a->Nq; i++) {
        float *dq = j->dq + b * j->dqs[0] + h * j->dqs[1] + i * j->dqs[2];
        for (int r = 0; r < j->ns; r++) {
            const float *part = j->dq_part + r * stride + ((size_t)bh * a->Nq + i) * d;
            for (int c = 0; c < d; c++) dq[c] += part[c];
        }
    }
}

/* dK and dV rows are zero on entry. */
static int run_backward_fused(bwd_job *j) {
    const attn_desc *a = &j->p->a;
    int groups = a->B * a->Hkv, kb = j->kern->k_block, d = j->p->d;
    /* Enough tasks for the threads (8 per call, a constant), in key ranges of at least 256. */
    int ns = (8 + groups - 1) / groups;
    if (ns > a->Nk / 256) ns = a->Nk / 256;
    if (ns < 1) ns = 1;
    j->chunk = ((a->Nk + ns - 1) / ns + kb - 1) / kb * kb;
    j->ns = (a->Nk + j->chunk - 1) / j->chunk;
    int st = scratch_init(&j->sc, j->p->ws, j->kern->bwd_scratch_floats(a->Nq, a->Nk, d, a->dv));
    if (st) return st;
    if (j->dq) zero_rows(j->dq, j->dqs, a->B, a->H, a->Nq, d);
    if (j->dq && j->ns > 1) {
        j->dq_part = ws_get(j->p->ws, WS_DQPART, (size_t)j->ns * a->B * a->H * a->Nq * d, 1);
        if (!j->dq_part) return ATTN_ENOMEM;
    }
    run_tasks(groups * j->ns, bwd_fused_task, j, 5.0 * a->B * a->H * (double)a->Nq * a->Nk * (d + a->dv));
    if (j->dq_part) attn__parallel(a->B * a->H, bwd_dq_sum_task, j);
    j->dq_part = NULL;
    return ATTN_OK;
}

/* Additive backward for one (b, kv head) group: all G query heads, every row. Per row the
 * scores and weights are recomputed as the forward computed them (same kernels, same bits),
 * then, with dp_j = dO_i . V_j and dot = sum_j p_j dp_j:
 *   dV_j += p_j dO_i;  ds_j = p_j (dp_j - dot);  then through the score (kernels/additive.c). */
typedef struct {
    const prep *p;
    const additive *ad;
    const float *dO;
    float *dWq;   /* (B, H, Nq, A) */
    float *dUk;   /* (B, Hkv, Nk, A) */
    float *dv;    /* strides of V or NULL */
    float *dvab;  /* per task (A + 1): partial dva, dbv */
    scratch sc;   /* per thread: s, pr, dp (Nk each), t (Nk, A) */
} add_bwd_job;

static void additive_bwd_task(void *ctx, int task, int thread) {
    add_bwd_job *j = ctx;
    const attn_desc *a = &j->p->a;
    const attn_score_params *w = a->params;
    int A = w->A, G = a->H / a->Hkv, b = task / a->Hkv, hk = task % a->Hkv, Nk = a->Nk;
    float *dva = j->dvab + (size_t)task * (A + 1), *dbv = dva + A;
    float *s = scratch_at(&j->sc, thread), *pr = s + Nk, *dp = pr + Nk, *t = dp + Nk;
    for (int g = 0; g < G; g++) {
        int h = hk * G + g, bh = b * a->H + h;
        attn__head hd = head_of(j->p, b, h);
        for (int i = 0; i < a->Nq; i++) {
            additive_row(j->p, j->ad, &hd, b, h, i, s, t, 1);
            memcpy(pr, s, (size_t)Nk * sizeof *pr);
            if (attn__softmax_row(pr, NULL, Nk) == -INFINITY) continue;
            const float *doi = j->dO + b * a->o_strides[0] + h * a->o_strides[1] + i * a->o_strides[2];
            float *dwq = j->dWq + ((size_t)bh * a->Nq + i) * A, dot = 0.0f;
            for (int k = 0; k < Nk; k++) {
                if (s[k] == -INFINITY) continue;
                dp[k] = attn__dot8(doi, hd.v + k * hd.v_rs, a->dv);
                dot += pr[k] * dp[k];
                if (j->dv) {
                    float *dvk = j->dv + b * a->v_strides[0] + hk * a->v_strides[1] + k * a->v_strides[2];
                    for (int c = 0; c < a->dv; c++) dvk[c] += pr[k] * doi[c];
                }
            }
            for (int k = 0; k < Nk; k++) {
                if (s[k] == -INFINITY) continue;
                float ds = pr[k] * (dp[k] - dot);
                *dbv += ds;
                attn__additive_score_grad(ds, t + (size_t)k * A, w->va, A, dva,
                                          dwq, j->dUk + (((size_t)b * a->Hkv + hk) * Nk + k) * A);
            }
        }
    }
}

/* Rows of G (B, Hx, N, A) into X (B, Hx, N, A) with strides xs (the identity projection's
 * gradient). */
static void copy_rows(const float *G, float *X, const int64_t xs[3], int B, int Hx, int N, int A) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hx; h++)
            for (int n = 0; n < N; n++)
                memcpy(X + b * xs[0] + h * xs[1] + n * xs[2], G + (((size_t)b * Hx + h) * N + n) * A, (size_t)A * sizeof(float));
}

static int additive_backward(const prep *p, const additive *ad, const float *dO, float *dQ, float *dK, float *dV,
                             attn_score_params *dp) {
    const attn_desc *a = &p->a;
    const attn_score_params *w = a->params;
    int A = w->A, ntask = a->B * a->Hkv;
    add_bwd_job j = {.p = p, .ad = ad, .dO = dO, .dv = dV};
    j.dWq = ws_get(p->ws, WS_DWQ, (size_t)a->B * a->H * a->Nq * A, 1);
    j.dUk = ws_get(p->ws, WS_DUK, (size_t)a->B * a->Hkv * a->Nk * A, 1);
    j.dvab = ws_get(p->ws, WS_DVAB, (size_t)ntask * (A + 1), 1);
    int st = (!j.dWq || !j.dUk || !j.dvab) ? ATTN_ENOMEM : scratch_init(&j.sc, p->ws, (size_t)a->Nk * (3 + A));
    if (st) return st;
    if (dV) zero_rows(dV, a->v_strides, a->B, a->Hkv, a->Nk, a->dv);
    attn__parallel(ntask, additive_bwd_task, &j);
    const attn__kernels *kern = attn__kern();
    if (!w->Wa) { /* Q and K were the projections. */
        if (dQ) copy_rows(j.dWq, dQ, a->q_strides, a->B, a->H, a->Nq, A);
        if (dK) copy_rows(j.dUk, dK, a->k_strides, a->B, a->Hkv, a->Nk, A);
    }
    /* dQ = dWq Wa, dK = dUk Ua; dWa += dWq^T Q, dUa += dUk^T K; biases sum the rows. */
    for (int b = 0; w->Wa && b < a->B; b++) {
        for (int h = 0; h < a->H; h++) {
            const float *g = j.dWq + ((size_t)b * a->H + h) * a->Nq * A;
            const float *q = p->Q + b * a->q_strides[0] + h * a->q_strides[1];
            if (dQ)
                kern->sgemm(0, 0, a->Nq, a->dq, A, 1.0f, g, A, w->Wa, a->dq, 0.0f,
                            dQ + b * a->q_strides[0] + h * a->q_strides[1], a->q_strides[2]);
            if (dp && dp->Wa) kern->sgemm(1, 0, A, a->dq, a->Nq, 1.0f, g, A, q, a->q_strides[2], 1.0f, dp->Wa, a->dq);
            if (dp && dp->ba)
                for (int i = 0; i < a->Nq; i++)
                    for (int c = 0; c < A; c++) dp->ba[c] += g[(size_t)i * A + c];
        }
        for (int h = 0; h < a->Hkv; h++) {
            const float *g = j.dUk + ((size_t)b * a->Hkv + h) * a->Nk * A;
            const float *k = p->K + b * a->k_strides[0] + h * a->k_strides[1];
            if (dK)
                kern->sgemm(0, 0, a->Nk, a->dk, A, 1.0f, g, A, w->Ua, a->dk, 0.0f,
                            dK + b * a->k_strides[0] + h * a->k_strides[1], a->k_strides[2]);
            if (dp && dp->Ua) kern->sgemm(1, 0, A, a->dk, a->Nk, 1.0f, g, A, k, a->k_strides[2], 1.0f, dp->Ua, a->dk);
            if (dp && dp->bu)
                for (int n = 0; n < a->Nk; n++)
                    for (int c = 0; c < A; c++) dp->bu[c] += g[(size_t)n * A + c];
        }
    }
    for (int t = 0; dp && t < ntask; t++) {
        const float *part = j.dvab + (size_t)t * (A + 1);
        if (dp->va)
            for (int c = 0; c < A; c++) dp->va[c] += part[c];
        if (dp->bv) dp->bv[0] += part[A];
    }
    return ATTN_OK;
}

static attn__head head_fn(const void *p, int b, int h) { return head_of(p, b, h); }

int attn_plan_backward_mods(attn_plan *pl, const float *Q, const float *K, const float *V, const float *O,
                            const float *lse_in, const float *dO, float *dQ, float *dK, float *dV,
                            attn_score_params *dparams, attn_mods_grad *dmods) {
    if (!pl) return attn__error(ATTN_EINVAL, "attention plan is NULL");
    if (!O || !dO) return attn__error(ATTN_EINVAL, "O and dO must not be NULL");
    if (attn__bf16_on(&pl->a)) {
        if (dparams || dmods) return attn__error(ATTN_EINVAL, "bf16 attention has no score parameters or attn_mods to differentiate");
        return attn__bf16_backward(pl, &pl->a, Q, K, V, O, lse_in, dO, dQ, dK, dV);
    }
    prep p;
    additive ad = {0};
    bwd_job j = {0};
    float *delta = NULL, *dq_tmp = NULL, *dk_tmp = NULL;
    int st = prep_init(&p, pl, Q, K, V);
    if (!st) st = attn__mods_check_backward(&p.a, dmods);
    if (st) return st;
    const attn_desc *a = &p.a;
    size_t nq = (size_t)a->B * a->H * a->Nq, nk = (size_t)a->B * a->Hkv * a->Nk;
    if (a->score == ATTN_SCORE_ADDITIVE) { /* recomputes its weights: needs no lse */
        if ((st = additive_init(&ad, &p))) return st;
        return additive_backward(&p, &ad, dO, dQ, dK, dV, dparams);
    }
    if (!lse_in) {
        /* Recompute the log-sum-exp with a forward pass into scratch outputs. */
        float *o_tmp = ws_get(pl, WS_OTMP, nq * a->dv, 0), *lse_tmp = ws_get(pl, WS_LSE, nq, 0);
        if (!o_tmp || !lse_tmp) return ATTN_ENOMEM;
        attn_desc ac = *a;
        memset(ac.o_strides, 0, sizeof ac.o_strides);
        contiguous(ac.o_strides, a->H, a->Nq, a->dv);
        prep pc = p;
        pc.a = ac;
        if ((st = run_forward(&pc, NULL, o_tmp, NULL, lse_tmp))) return st;
        lse_in = lse_tmp;
    }
    /* delta_i = dO_i . O_i */
    if (!(delta = ws_get(pl, WS_DELTA, nq, 0))) return ATTN_ENOMEM;
    /* (Summed as the kernels sum dO . V, so that the two cancel exactly where one key takes
     * all the weight.) */
    const attn__kernels *kd = attn__kern();
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->H; h++) {
            int64_t off0 = b * a->o_strides[0] + h * a->o_strides[1];
            if (kd && kd->bwd && kd->rowdot) {
                kd->rowdot(a->Nq, a->dv, dO + off0, a->o_strides[2], O + off0, a->o_strides[2],
                           delta + ((size_t)b * a->H + h) * a->Nq);
                continue;
            }
            for (int i = 0; i < a->Nq; i++) {
                int64_t off = off0 + i * a->o_strides[2];
                float acc = 0.0f;
                for (int c = 0; c < a->dv; c++) acc += dO[off + c] * O[off + c];
                delta[((size_t)b * a->H + h) * a->Nq + i] = acc;
            }
        }
    if (dV) zero_rows(dV, a->v_strides, a->B, a->Hkv, a->Nk, a->dv);

    j.p = &p, j.kern = attn__kern(), j.lse = lse_in, j.delta = delta, j.dO = dO, j.dv = dV;
    int need_dW = a->score == ATTN_SCORE_GENERAL && dparams && dparams->W;
    /* Where the kernels write dq and dk: straight into dQ/dK, or into contiguous buffers
     * for the chain rule of cosine and general scores. */
    if (a->score == ATTN_SCORE_COSINE || a->score == ATTN_SCORE_GENERAL) {
        if (dQ || need_dW) {
            if (!(dq_tmp = ws_get(pl, WS_DQ, nq * p.d, 0))) return ATTN_ENOMEM;
            j.dq = dq_tmp;
            contiguous(j.dqs, a->H, a->Nq, p.d);
        }
    } else if (dQ) {
        j.dq = dQ;
        memcpy(j.dqs, a->q_strides, sizeof j.dqs);
    }
    if (dK) {
        if (a->score == ATTN_SCORE_COSINE) {
            if (!(dk_tmp = ws_get(pl, WS_DK, nk * p.d, 0))) return ATTN_ENOMEM;
            j.dk = dk_tmp;
            contiguous(j.dks, a->Hkv, a->Nk, p.d);
        } else {
            j.dk = dK;
            memcpy(j.dks, a->k_strides, sizeof j.dks);
        }
        zero_rows(j.dk, j.dks, a->B, a->Hkv, a->Nk, p.d);
    }
    if (j.kern->bwd) {
        if ((st = run_backward_fused(&j))) return st;
    } else {
        if ((st = scratch_init(&j.sc, pl, j.kern->scratch_floats(a->Nk, p.d, a->dv)))) return st;
        j.nqb = (a->Nq + j.kern->q_block - 1) / j.kern->q_block;
        j.nkb = (a->Nk + j.kern->k_block - 1) / j.kern->k_block;
        if (j.dq) attn__parallel(a->B * a->H * j.nqb, bwd_dq_task, &j);
        if (j.dk || j.dv) attn__parallel(a->B * a->Hkv * j.nkb, bwd_dkv_task, &j);
    }
    if ((st = attn__mods_backward(&pl->mods, a, head_fn, &p, lse_in, delta, dO, dmods))) return st;

    if (a->score == ATTN_SCORE_COSINE) {
        if (dQ) attn__cos_backward(p.qbuf, p.qnorm, dq_tmp, nq, p.d, dQ, a->q_strides, a->H, a->Nq);
        if (dK) attn__cos_backward(p.kbuf, p.knorm, dk_tmp, nk, p.d, dK, a->k_strides, a->Hkv, a->Nk);
    } else if (a->score == ATTN_SCORE_GENERAL) {
        /* Q' = Q W: dQ = dQ' W^T, dW += Q^T dQ'. */
        for (int b = 0; b < a->B; b++)
            for (int h = 0; h < a->H; h++) {
                const float *g = dq_tmp + ((size_t)b * a->H + h) * a->Nq * a->dk;
                const float *q = Q + b * a->q_strides[0] + h * a->q_strides[1];
                if (dQ)
                    j.kern->sgemm(0, 1, a->Nq, a->dq, a->dk, 1.0f, g, a->dk, a->params->W, a->dk, 0.0f,
                                  dQ + b * a->q_strides[0] + h * a->q_strides[1], a->q_strides[2]);
                if (need_dW)
                    j.kern->sgemm(1, 0, a->dq, a->dk, a->Nq, 1.0f, q, a->q_strides[2], g, a->dk, 1.0f, dparams->W, a->dk);
            }
    }
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * For attn_plan_weights (nn/attention_weights.c, which checks the arguments): rows [r0, r1) of
 * heads hs[0 .. nh) (b * H + h; hs NULL: every head in order) into P (nh, r1 - r0, Nk), a block of query rows of one head per
 * task, each row as the forward computes its weights: the kernels' probs, or the additive
 * forward's softmax. */
typedef struct {
    prep p;
    additive ad;
    scratch sc;
    const float *lse;
    const int *hs;
    int r0, r1;
    float *P;
} weights_job;

static void weights_task(void *ctx, int task, int thread) {
    weights_job *j = ctx;
    int qb = attn__kern()->q_block, nb = (j->r1 - j->r0 + qb - 1) / qb, t = task / nb, i0 = j->r0 + task % nb * qb;
    int bh = j->hs ? j->hs[t] : t, i1 = i0 + qb < j->r1 ? i0 + qb : j->r1, b = bh / j->p.a.H, h = bh % j->p.a.H;
    int Nk = j->p.a.Nk;
    attn__head hd = head_of(&j->p, b, h);
    float *pt = j->P + ((size_t)t * (j->r1 - j->r0) + (i0 - j->r0)) * Nk, *s = scratch_at(&j->sc, thread);
    if (!j->ad.Wq) attn__kern()->probs(&hd, j->lse + (size_t)bh * j->p.a.Nq, i0, i1, pt, Nk, s);
    for (int i = i0; j->ad.Wq && i < i1; i++) {
        float *pr = pt + (size_t)(i - i0) * Nk;
        additive_row(&j->p, &j->ad, &hd, b, h, i, pr, s, 0);
        attn__sinks_rescale(pr, Nk, attn__softmax_row(pr, NULL, Nk), j->lse[(size_t)bh * j->p.a.Nq + i]);
    }
}

int attn__plan_weights(attn_plan *pl, const float *Q, const float *K, const float *lse, const int *hs, int nh, int r0,
                       int r1, float *P) {
    weights_job j = {.lse = lse, .hs = hs, .r0 = r0, .r1 = r1, .P = P};
    int st = prep_init(&j.p, pl, Q, K, K), qb = attn__kern()->q_block; /* K stands in for V, then is dropped */
    j.p.V = NULL;
    if (!st && j.p.a.score == ATTN_SCORE_ADDITIVE) st = additive_init(&j.ad, &j.p);
    size_t floats = attn__kern()->scratch_floats(j.p.a.Nk, j.p.d, j.p.a.dv);
    if (!st) st = scratch_init(&j.sc, pl, j.ad.Wq ? (size_t)j.p.a.params->A : floats);
    int tasks = nh * ((r1 - r0 + qb - 1) / qb); /* (head, block of query rows) */
    if (!st) run_tasks(tasks, weights_task, &j, 2.0 * nh * (double)(r1 - r0) * j.p.a.Nk * j.p.d);
    return st;
}
