/* Programmable attention (attn_mods of attn/attention.h): checking the description, resolving
 * it per (batch, head) for the kernels, the block mask of mask_mod, the sinks, and the
 * gradients of the modifiers' parameters.
 *
 * The kernels (kernels/ref/attn_ref.c, kernels/x86/attn_fast.h) apply the masks and
 * modifiers inside their tiles and carry the modifiers' derivative into dQ and dK. What the
 * kernels do not compute is here:
 *   - the block mask: mask_mod evaluated once over every (b, h, i, j), each (query tile, key
 *     block) of the fast kernels' geometry classed empty, partial or full;
 *   - sinks: a logit z_h in the softmax's denominator changes only the normalisation, so the
 *     kernels' output is rescaled afterwards, o_i *= exp(lse_i - lse'_i) with
 *     lse'_i = log(exp(lse_i) + exp(z_h)); its gradient is dz_h = -sum_i exp(z_h - lse'_i) delta_i
 *     (delta_i = dO_i . O_i, as the backward's);
 *   - the gradients of the parameters (bias, ALiBi slopes, the T5 table, score_mod's own):
 *     one pass that recomputes ds_ij = p_ij (dO_i . v_j - delta_i) element by element and
 *     takes it back through softcap and score_mod. Tasks own disjoint slices of dBias and
 *     partial sums of the rest, added in task order: the same bits for any thread count.
 */
#include <math.h>
#include <string.h>

#include "attn/attention.h"
#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/attention_mods.h"

int attn_t5_bucket(int rel, int bidirectional, int num_buckets, int max_distance) {
    return attn__t5_bucket(rel, bidirectional, num_buckets, max_distance);
}

int attn_dropout_keep(uint64_t seed, int b, int h, int i, int j, float p) {
    attn__head hd = {0};
    hd.drop = p, hd.drop_scale = 1.0f, hd.drop_key = attn__drop_key(seed, b, h);
    return attn__drop_factor(&hd, i, j) != 0.0f;
}

int attn__mods_check(const attn_desc *a) {
    const attn_mods *m = a->mods;
    if (!m) return ATTN_OK;
    if (a->score == ATTN_SCORE_ADDITIVE) return attn__error(ATTN_EINVAL, "attn_mods need a dot-product score, not additive");
    if (m->causal_align != ATTN_ALIGN_TOP_LEFT && m->causal_align != ATTN_ALIGN_BOTTOM_RIGHT)
        return attn__error(ATTN_EINVAL, "causal alignment %d is neither top-left (0) nor bottom-right (1)", m->causal_align);
    if (m->prefix < 0 || m->prefix > a->Nk) return attn__error(ATTN_EINVAL, "prefix %d is outside [0, Nk=%d]", m->prefix, a->Nk);
    if (m->prefix > 0 && (!a->mask.causal || a->mask.window > 0))
        return attn__error(ATTN_EINVAL, "a prefix (prefix-LM) needs a causal mask without a window");
    if (m->doc_offsets) {
        if (a->Nq != a->Nk) return attn__error(ATTN_ESHAPE, "documents need Nq == Nk (%d, %d)", a->Nq, a->Nk);
        if (m->n_docs < 1) return attn__error(ATTN_EINVAL, "documents: n_docs must be >= 1, not %d", m->n_docs);
        for (int b = 0; b < a->B; b++) {
            const int32_t *o = m->doc_offsets + (size_t)b * (m->n_docs + 1);
            if (o[0] != 0 || o[m->n_docs] != a->Nk)
                return attn__error(ATTN_EINVAL, "document offsets of batch %d must run from 0 to N=%d (got %d .. %d)", b,
                                   a->Nk, (int)o[0], (int)o[m->n_docs]);
            for (int k = 0; k < m->n_docs; k++)
                if (o[k + 1] < o[k]) return attn__error(ATTN_EINVAL, "document offsets of batch %d decrease at %d", b, k + 1);
        }
    }
    if (m->score_mod && m->score_mod_tile)
        return attn__error(ATTN_EINVAL, "score_mod and score_mod_tile are both set: give one form of the modifier");
    if (m->score_mod && !m->score_mod_bwd) return attn__error(ATTN_EINVAL, "score_mod needs its backward score_mod_bwd");
    if (m->n_dparams < 0) return attn__error(ATTN_EINVAL, "n_dparams must be >= 0");
    if (!(m->softcap >= 0.0f) || isinf(m->softcap)) return attn__error(ATTN_EINVAL, "softcap must be finite and >= 0");
    if (m->t5_table) {
        int exact = (m->t5_bidirectional ? m->t5_buckets / 2 : m->t5_buckets) / 2;
        if (exact < 1 || m->t5_max_distance <= exact)
            return attn__error(ATTN_EINVAL, "T5 buckets: need %s buckets and max_distance > buckets / %d (got %d, %d)",
                               m->t5_bidirectional ? ">= 4" : ">= 2", m->t5_bidirectional ? 4 : 2, m->t5_buckets,
                               m->t5_max_distance);
    }
    if (!(m->dropout >= 0.0f && m->dropout < 1.0f)) return attn__error(ATTN_EINVAL, "dropout must be in [0, 1)");
    if (m->alibi_bidirectional != 0 && m->alibi_bidirectional != 1)
        return attn__error(ATTN_EINVAL, "alibi_bidirectional must be 0 or 1 (got %d)", m->alibi_bidirectional);
    return ATTN_OK;
}

int attn__mods_check_backward(const attn_desc *a, const attn_mods_grad *g) {
    const attn_mods *m = a->mods;
    if (!m || !m->score_mod_tile) return ATTN_OK;
    if (!m->score_mod_tile_bwd) return attn__error(ATTN_EINVAL, "score_mod_tile needs its backward score_mod_tile_bwd");
    if (g && g->dparams && m->n_dparams > 0 && !m->score_mod_bwd)
        return attn__error(ATTN_EINVAL, "the gradients of score_mod_tile's parameters need the scalar score_mod_bwd");
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * The block mask, kept by the plan (attn__mods_state) until its description changes. */

/* T5's per-head table of the bias by i - j, with room for a query tile's padding lanes. */
#define T5_PAD 64
static size_t t5rev_len(const attn_desc *a) { return (size_t)a->Nq + a->Nk + 2 * T5_PAD; }

struct attn__mods_state {
    uint8_t *tiles;
    size_t cap;
    const void *kern; /* the kernel table the tiles were made for, NULL: none made */
    int ntq, ntk;
    float *g;         /* the parameter gradients' per-task partial sums */
    size_t gcap;
    int *t5bk;        /* T5: the bucket of each relative position j - i, from -(Nq - 1) */
    size_t t5cap;
    float *t5rev;     /* T5: per head, the bias of i - j (attn__head.t5_rev), T5_PAD floats each side */
    size_t t5rcap;
};

void attn__mods_reset(attn__mods_state *s) {
    if (s) s->kern = NULL;
}

void attn__mods_free(attn__mods_state *s) {
    if (!s) return;
    attn_free(s->tiles), attn_free(s->g), attn_free(s->t5bk), attn_free(s->t5rev), attn_free(s);
}

typedef struct {
    const attn_desc *a;
    attn__mods_state *s;
    int br, bc;
} tiles_job;

static void tiles_task(void *ctx, int bh, int thread) {
    (void)thread;
    const tiles_job *t = ctx;
    const attn_desc *a = t->a;
    const attn_mods *m = a->mods;
    int b = bh / a->H, h = bh % a->H;
    uint8_t *out = t->s->tiles + (size_t)bh * t->s->ntq * t->s->ntk;
    for (int qt = 0; qt < t->s->ntq; qt++)
        for (int kt = 0; kt < t->s->ntk; kt++) {
            int i0 = qt * t->br, i1 = i0 + t->br < a->Nq ? i0 + t->br : a->Nq;
            int j0 = kt * t->bc, j1 = j0 + t->bc < a->Nk ? j0 + t->bc : a->Nk;
            long seen = 0;
            for (int i = i0; i < i1; i++)
                for (int j = j0; j < j1; j++) seen += m->mask_mod(b, h, i, j, m->ctx) != 0;
            out[(size_t)qt * t->s->ntk + kt] = seen == 0 ? ATTN__TILE_EMPTY
                                               : seen == (long)(i1 - i0) * (j1 - j0) ? ATTN__TILE_FULL : ATTN__TILE_PARTIAL;
        }
}

int attn__mods_tiles(attn__mods_state **sp, const attn_desc *a, const uint8_t **tiles) {
    *tiles = NULL;
    const attn__kernels *k = attn__kern();
    const attn_mods *m = a->mods;
    if (!m || (!m->t5_table && !m->mask_mod)) return ATTN_OK;
    if (!*sp && !(*sp = attn_calloc(1, sizeof **sp))) return attn__error(ATTN_ENOMEM, "attention: out of memory");
    attn__mods_state *s = *sp;
    if (m->t5_table) { /* the buckets of every relative position, once per call */
        size_t n = (size_t)a->Nq + a->Nk;
        if (s->t5cap < n) {
            attn_free(s->t5bk);
            s->t5cap = 0;
            if (!(s->t5bk = attn_malloc(n * sizeof *s->t5bk))) return attn__error(ATTN_ENOMEM, "attention: out of memory");
            s->t5cap = n;
        }
        for (int r = -(a->Nq - 1); r < a->Nk; r++)
            s->t5bk[r + a->Nq - 1] = attn__t5_bucket(r, m->t5_bidirectional, m->t5_buckets, m->t5_max_distance);
        size_t nr = t5rev_len(a) * a->H;
        if (s->t5rcap < nr) {
            attn_free(s->t5rev);
            s->t5rcap = 0;
            if (!(s->t5rev = attn_malloc(nr * sizeof(float)))) return attn__error(ATTN_ENOMEM, "attention: out of memory");
            s->t5rcap = nr;
        }
        memset(s->t5rev, 0, nr * sizeof(float));
        for (int h = 0; h < a->H; h++) {
            float *rev = s->t5rev + (size_t)h * t5rev_len(a) + T5_PAD + (a->Nk - 1); /* rev[i - j] */
            for (int r = -(a->Nk - 1); r < a->Nq; r++) rev[r] = m->t5_table[s->t5bk[-r + a->Nq - 1] * a->H + h];
        }
    }
    if (!m->mask_mod || !k->bwd) return ATTN_OK; /* the reference tests each element */
    if (s->kern != (const void *)k) {
        int ntq = (a->Nq + k->q_block - 1) / k->q_block, ntk = (a->Nk + k->k_block - 1) / k->k_block;
        size_t n = (size_t)a->B * a->H * ntq * ntk;
        if (s->cap < n) {
            attn_free(s->tiles);
            s->cap = 0;
            if (!(s->tiles = attn_malloc(n))) return attn__error(ATTN_ENOMEM, "attention: out of memory for a block mask");
            s->cap = n;
        }
        s->ntq = ntq, s->ntk = ntk;
        tiles_job t = {a, s, k->q_block, k->k_block};
        attn__parallel(a->B * a->H, tiles_task, &t);
        s->kern = k;
    }
    *tiles = s->tiles;
    return ATTN_OK;
}

void attn__mods_head(attn__head *hd, const attn_desc *a, int b, int h, const attn__mods_state *s, const uint8_t *tiles) {
    const attn_mods *m = a->mods;
    hd->b = b, hd->hh = h;
    if (!m) return;
    if (m->causal_align == ATTN_ALIGN_BOTTOM_RIGHT) hd->coff = a->Nk - a->Nq;
    hd->prefix = m->prefix;
    if (m->doc_offsets) hd->doc = m->doc_offsets + (size_t)b * (m->n_docs + 1), hd->ndoc = m->n_docs;
    hd->mask_mod = m->mask_mod, hd->score_mod = m->score_mod, hd->score_mod_bwd = m->score_mod_bwd, hd->ctx = m->ctx;
    hd->score_mod_tile = m->score_mod_tile, hd->score_mod_tile_bwd = m->score_mod_tile_bwd;
    if (m->alibi_slopes) hd->alibi = m->alibi_bidirectional ? 2 : 1, hd->slope = m->alibi_slopes[h];
    if (m->t5_table) {
        hd->t5 = m->t5_table + h, hd->t5_rs = a->H, hd->t5_bk = s ? s->t5bk + (a->Nq - 1) : NULL;
        hd->t5_rev = s ? s->t5rev + (size_t)h * t5rev_len(a) + T5_PAD + (a->Nk - 1) : NULL;
        hd->t5_nb = m->t5_buckets, hd->t5_maxd = m->t5_max_distance, hd->t5_bidir = m->t5_bidirectional;
    }
    hd->softcap = m->softcap;
    hd->ew = m->score_mod || m->score_mod_tile || m->alibi_slopes || m->t5_table || m->softcap > 0.0f;
    if (tiles) hd->tiles = tiles + ((size_t)b * a->H + h) * s->ntq * s->ntk, hd->tiles_nk = s->ntk;
    if (m->dropout > 0.0f)
        hd->drop = m->dropout, hd->drop_scale = 1.0f / (1.0f - m->dropout), hd->drop_key = attn__drop_key(m->seed, b, h);
}

/* ------------------------------------------------------------------------------------------
 * Sinks. */

void attn__mods_sinks(const attn_desc *a, float *O, float *P, float *lse) {
    if (!a->mods || !a->mods->sinks) return;
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->H; h++) {
            float z = a->mods->sinks[h];
            for (int i = 0; i < a->Nq; i++) {
                size_t row = ((size_t)b * a->H + h) * a->Nq + i;
                float l = lse[row];
                if (isnan(l)) continue;
                if (l == -INFINITY) { /* no key: only the sink, the output stays 0 */
                    lse[row] = z;
                    continue;
                }
                float mx = l > z ? l : z, l2 = mx + logf(expf(l - mx) + expf(z - mx)), f = expf(l - l2);
                lse[row] = l2;
                float *o = O + b * a->o_strides[0] + h * a->o_strides[1] + i * a->o_strides[2];
                for (int c = 0; c < a->dv; c++) o[c] *= f;
                if (P) attn__sinks_rescale(P + row * a->Nk, a->Nk, l, l2); /* as attn_weights does */
            }
        }
}

/* ------------------------------------------------------------------------------------------
 * The parameters' gradients. */

typedef struct {
    const attn_desc *a;
    attn__head_fn head;
    const void *hctx;
    const float *lse, *delta, *dO;
    attn_mods_grad *g;
    int nb, nh;     /* task grid: batch slices x head slices (1 where dBias broadcasts) */
    int off_alibi, off_t5, npar;
    float *part;    /* (tasks, npar) */
} grad_job;

static float dot(const float *x, const float *y, int n) {
    float acc = 0.0f;
    for (int c = 0; c < n; c++) acc += x[c] * y[c];
    return acc;
}

/* One head's contributions: every visible (i, j). */
static void grad_head(const grad_job *j, int b, int h, float *part) {
    const attn_desc *a = j->a;
    const attn_mods *m = a->mods;
    attn__head hd = j->head(j->hctx, b, h);
    size_t bh = (size_t)b * a->H + h;
    const int64_t *bs = a->mask.bias_strides;
    float *dbias = j->g->bias && a->mask.bias ? j->g->bias + b * bs[0] + h * bs[1] : NULL;
    for (int i = 0; i < a->Nq; i++) {
        float lse = j->lse[bh * a->Nq + i], delta = j->delta[bh * a->Nq + i];
        if (!isfinite(lse)) continue;
        const float *q = hd.q + i * hd.q_rs, *doi = j->dO + b * a->o_strides[0] + h * a->o_strides[1] + i * a->o_strides[2];
        int js, je;
        attn__key_range(&hd, i, i + 1, 0, a->Nk, &js, &je);
        for (int k = js; k < je; k++) {
            if (!attn__visible(&hd, i, k)) continue;
            float s0 = dot(q, hd.k + k * hd.k_rs, hd.d) * hd.scale;
            if (hd.bias) s0 += hd.bias[i * hd.bias_rs + k * hd.bias_cs];
            if (s0 == -INFINITY) continue;
            int bucket = 0;
            if (hd.alibi) s0 += hd.slope * attn__alibi_dist(&hd, i, k);
            if (hd.t5) bucket = attn__t5_bucket(k - i, hd.t5_bidir, hd.t5_nb, hd.t5_maxd), s0 += hd.t5[bucket * hd.t5_rs];
            float s = s0, t = 0.0f, gm = 1.0f; /* gm: d score_mod / d s0 of the tile form */
            if (hd.score_mod) s = hd.score_mod(s0, b, h, i, k, hd.ctx);
            else if (hd.score_mod_tile) {
                hd.score_mod_tile_bwd(&s0, &gm, 1, 1, 1, b, h, i, k, hd.ctx);
                hd.score_mod_tile(&s, 1, 1, 1, b, h, i, k, hd.ctx);
            }
            if (hd.softcap > 0.0f) t = tanhf(s / hd.softcap), s = hd.softcap * t;
            float f = hd.drop > 0.0f ? attn__drop_factor(&hd, i, k) : 1.0f;
            float p = expf(s - lse), ds = p * (f * dot(doi, hd.v + k * hd.v_rs, a->dv) - delta);
            if (hd.softcap > 0.0f) ds *= 1.0f - t * t;
            if (hd.score_mod) ds = hd.score_mod_bwd(s0, ds, b, h, i, k, hd.ctx, j->g->dparams ? part : NULL);
            if (hd.score_mod_tile) { /* d s / d s0 from the tile form, the parameters' from the scalar one */
                if (j->g->dparams && m->n_dparams > 0 && hd.score_mod_bwd)
                    (void)hd.score_mod_bwd(s0, ds, b, h, i, k, hd.ctx, part);
                ds *= gm;
            }
            if (dbias) dbias[i * bs[2] + k * bs[3]] += ds;
            if (j->off_alibi >= 0) part[j->off_alibi + h] += ds * attn__alibi_dist(&hd, i, k);
            if (j->off_t5 >= 0) part[j->off_t5 + bucket * a->H + h] += ds;
        }
    }
    (void)m;
}

static void grad_task(void *ctx, int task, int thread) {
    (void)thread;
    const grad_job *j = ctx;
    const attn_desc *a = j->a;
    int tb = task / j->nh, th = task % j->nh;
    float *part = j->part + (size_t)task * j->npar;
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->H; h++)
            if ((j->nb == 1 || b == tb) && (j->nh == 1 || h == th)) grad_head(j, b, h, part);
}

int attn__mods_backward(attn__mods_state **sp, const attn_desc *a, attn__head_fn head, const void *hctx,
                        const float *lse, const float *delta, const float *dO, attn_mods_grad *g) {
    const attn_mods *m = a->mods;
    if (!g) return ATTN_OK;
    if (!m && !g->bias) return ATTN_OK;
    if (m && m->sinks && g->sinks) /* dz_h = -sum_i exp(z_h - lse_i) delta_i */
        for (int h = 0; h < a->H; h++)
            for (int b = 0; b < a->B; b++)
                for (int i = 0; i < a->Nq; i++) {
                    size_t row = ((size_t)b * a->H + h) * a->Nq + i;
                    if (isfinite(lse[row])) g->sinks[h] -= expf(m->sinks[h] - lse[row]) * delta[row];
                }
    grad_job j = {a, head, hctx, lse, delta, dO, g, a->B, a->H, -1, -1, 0, NULL};
    int want_bias = g->bias && a->mask.bias;
    int want_alibi = m && m->alibi_slopes && g->alibi_slopes, want_t5 = m && m->t5_table && g->t5_table;
    int want_user = m && (m->score_mod || m->score_mod_tile) && m->score_mod_bwd && g->dparams && m->n_dparams > 0;
    if (!want_bias && !want_alibi && !want_t5 && !want_user) return ATTN_OK;
    if (want_bias && a->mask.bias_strides[0] == 0) j.nb = 1;
    if (want_bias && a->mask.bias_strides[1] == 0) j.nh = 1;
    j.npar = want_user ? m->n_dparams : 0;
    if (want_alibi) j.off_alibi = j.npar, j.npar += a->H;
    if (want_t5) j.off_t5 = j.npar, j.npar += m->t5_buckets * a->H;
    int tasks = j.nb * j.nh;
    size_t n = (size_t)tasks * j.npar;
    if (!*sp && !(*sp = attn_calloc(1, sizeof **sp))) return attn__error(ATTN_ENOMEM, "attention: out of memory");
    attn__mods_state *s = *sp;
    if (s->gcap < n + 1) {
        attn_free(s->g);
        s->gcap = 0;
        if (!(s->g = attn_malloc((n + 1) * sizeof(float)))) return attn__error(ATTN_ENOMEM, "attention: out of memory");
        s->gcap = n + 1;
    }
    memset(s->g, 0, (n + 1) * sizeof(float));
    j.part = s->g;
    attn__parallel(tasks, grad_task, &j);
    for (int t = 0; t < tasks; t++) {
        const float *part = j.part + (size_t)t * j.npar;
        if (want_user)
            for (int c = 0; c < m->n_dparams; c++) g->dparams[c] += part[c];
        if (want_alibi)
            for (int h = 0; h < a->H; h++) g->alibi_slopes[h] += part[j.off_alibi + h];
        if (want_t5)
            for (int c = 0; c < m->t5_buckets * a->H; c++) g->t5_table[c] += part[j.off_t5 + c];
    }
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * The entry points without the modifiers' gradients, and the one-shot call with them. */

int attn_plan_backward(attn_plan *pl, const float *Q, const float *K, const float *V, const float *O, const float *lse,
                       const float *dO, float *dQ, float *dK, float *dV, attn_score_params *dparams) {
    return attn_plan_backward_mods(pl, Q, K, V, O, lse, dO, dQ, dK, dV, dparams, NULL);
}

int attn_backward_mods(const attn_desc *desc, const float *Q, const float *K, const float *V, const float *O,
                       const float *lse, const float *dO, float *dQ, float *dK, float *dV, attn_score_params *dparams,
                       attn_mods_grad *dmods) {
    attn_plan *pl;
    int st = attn_plan_new(desc, &pl);
    if (!st) st = attn_plan_backward_mods(pl, Q, K, V, O, lse, dO, dQ, dK, dV, dparams, dmods);
    attn_plan_free(pl);
    return st;
}
