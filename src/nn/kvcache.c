/* The paged key/value cache of attn/kvcache.h: a pool of blocks, a free list, a reference
 * count per block and a block table per sequence; attention over a sequence gathers its blocks
 * through the table into a per-thread buffer and runs the fused kernel of the dispatch table
 * (kernels/kernels.h) on it, as attn_forward would on the same keys held contiguously.
 * Letters: bs tokens per block, L a sequence's length, KW = Hkv * dk and VW = Hkv * dv the
 * floats of one token's keys and values. */
#include "attn/kvcache.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"

struct attn_kvcache {
    attn_kvcache_config cfg;
    int KW, VW;
    float *kpool, *vpool; /* (num_blocks, bs, Hkv, dk), (num_blocks, bs, Hkv, dv) */
    int *ref;             /* (num_blocks) sequences holding each block */
    int *free_blocks, nfree; /* a stack of the blocks nobody holds */
    int *table;           /* (max_seqs, num_blocks) block tables */
    int *len;             /* (max_seqs) tokens per sequence */
    attn_kvcache_stats stats;
    float *ws;            /* attend: per-thread buffers */
    size_t ws_per_thread, ws_cap;
};

static int bad_seq(const attn_kvcache *c, int seq, const char *what) {
    return attn__error(ATTN_EINVAL, "%s: sequence %d is outside [0, %d)", what, seq, c->cfg.max_seqs);
}

int attn_kvcache_new(const attn_kvcache_config *cfg, attn_kvcache **out) {
    if (!cfg || !out) return attn__error(ATTN_EINVAL, "attn_kvcache_new: NULL argument");
    *out = NULL;
    attn_kvcache_config k = *cfg;
    if (!k.dv) k.dv = k.dk;
    if (!k.block_size) k.block_size = 16;
    if (k.Hkv < 1 || k.dk < 1 || k.dv < 1 || k.block_size < 1 || k.num_blocks < 1 || k.max_seqs < 1)
        return attn__error(ATTN_EINVAL, "attn_kvcache_new: sizes must be positive (Hkv=%d dk=%d dv=%d block_size=%d "
                           "num_blocks=%d max_seqs=%d)", k.Hkv, k.dk, k.dv, k.block_size, k.num_blocks, k.max_seqs);
    attn_kvcache *c = attn_calloc(1, sizeof *c);
    if (!c) return attn__error(ATTN_ENOMEM, "attn_kvcache_new: out of memory");
    c->cfg = k, c->KW = k.Hkv * k.dk, c->VW = k.Hkv * k.dv;
    size_t tokens = (size_t)k.num_blocks * k.block_size;
    c->kpool = attn_malloc(tokens * c->KW * sizeof(float));
    c->vpool = attn_malloc(tokens * c->VW * sizeof(float));
    c->ref = attn_calloc((size_t)k.num_blocks, sizeof(int));
    c->free_blocks = attn_malloc((size_t)k.num_blocks * sizeof(int));
    c->table = attn_malloc((size_t)k.max_seqs * k.num_blocks * sizeof(int));
    c->len = attn_calloc((size_t)k.max_seqs, sizeof(int));
    if (!c->kpool || !c->vpool || !c->ref || !c->free_blocks || !c->table || !c->len) {
        attn_kvcache_free(c);
        return attn__error(ATTN_ENOMEM, "attn_kvcache_new: out of memory for a pool of %d blocks of %d tokens",
                           k.num_blocks, k.block_size);
    }
    for (int b = 0; b < k.num_blocks; b++) c->free_blocks[b] = k.num_blocks - 1 - b; /* block 0 first */
    c->nfree = k.num_blocks;
    c->stats.blocks_total = k.num_blocks;
    *out = c;
    return ATTN_OK;
}

void attn_kvcache_free(attn_kvcache *c) {
    if (!c) return;
    attn_free(c->kpool), attn_free(c->vpool), attn_free(c->ref), attn_free(c->free_blocks);
    attn_free(c->table), attn_free(c->len), attn_free(c->ws);
    attn_free(c);
}

int attn_kvcache_len(const attn_kvcache *c, int seq) {
    return c && seq >= 0 && seq < c->cfg.max_seqs ? c->len[seq] : -1;
}

static int nblocks(const attn_kvcache *c, int len) { return (len + c->cfg.block_size - 1) / c->cfg.block_size; }
static int *table_of(const attn_kvcache *c, int seq) { return c->table + (size_t)seq * c->cfg.num_blocks; }

static void release(attn_kvcache *c, int b) {
    if (--c->ref[b] == 0) c->free_blocks[c->nfree++] = b;
}

int attn_kvcache_reset(attn_kvcache *c, int seq) {
    if (!c) return attn__error(ATTN_EINVAL, "attn_kvcache_reset: NULL cache");
    if (seq < 0 || seq >= c->cfg.max_seqs) return bad_seq(c, seq, "attn_kvcache_reset");
    const int *t = table_of(c, seq);
    for (int i = 0; i < nblocks(c, c->len[seq]); i++) release(c, t[i]);
    c->len[seq] = 0;
    return ATTN_OK;
}

int attn_kvcache_fork(attn_kvcache *c, int src, int dst) {
    if (!c) return attn__error(ATTN_EINVAL, "attn_kvcache_fork: NULL cache");
    if (src < 0 || src >= c->cfg.max_seqs) return bad_seq(c, src, "attn_kvcache_fork");
    if (dst < 0 || dst >= c->cfg.max_seqs) return bad_seq(c, dst, "attn_kvcache_fork");
    if (src == dst) return ATTN_OK;
    const int *ts = table_of(c, src);
    int n = nblocks(c, c->len[src]);
    for (int i = 0; i < n; i++) c->ref[ts[i]]++; /* before dst lets go: dst may share them */
    attn_kvcache_reset(c, dst);
    memcpy(table_of(c, dst), ts, (size_t)n * sizeof(int));
    c->len[dst] = c->len[src];
    return ATTN_OK;
}

int attn_kvcache_append(attn_kvcache *c, int seq, int n, const float *k, int64_t k_rs, const float *v, int64_t v_rs) {
    if (!c) return attn__error(ATTN_EINVAL, "attn_kvcache_append: NULL cache");
    if (seq < 0 || seq >= c->cfg.max_seqs) return bad_seq(c, seq, "attn_kvcache_append");
    if (n < 0 || (n > 0 && (!k || !v))) return attn__error(ATTN_EINVAL, "attn_kvcache_append: n < 0 or NULL keys or values");
    int bs = c->cfg.block_size, L = c->len[seq], *t = table_of(c, seq);
    if ((int64_t)L + n > (int64_t)c->cfg.num_blocks * bs)
        return attn__error(ATTN_ENOMEM, "attn_kvcache_append: sequence %d of %d tokens cannot grow by %d (the pool holds %d)",
                           seq, L, n, c->cfg.num_blocks * bs);
    /* Blocks needed: the new ones, and a copy of a shared, partly filled last block. */
    int cow = n > 0 && L % bs && c->ref[t[L / bs]] > 1, need = nblocks(c, L + n) - nblocks(c, L) + cow;
    if (need > c->nfree)
        return attn__error(ATTN_ENOMEM, "attn_kvcache_append: the pool is exhausted (%d of %d blocks free, %d needed for "
                           "%d tokens of sequence %d)", c->nfree, c->cfg.num_blocks, need, n, seq);
    if (!k_rs) k_rs = c->KW;
    if (!v_rs) v_rs = c->VW;
    if (cow) { /* copy-on-write: the tokens written so far of the shared block */
        int old = t[L / bs], nb = c->free_blocks[--c->nfree], m = L % bs;
        c->ref[nb] = 1;
        memcpy(c->kpool + (size_t)nb * bs * c->KW, c->kpool + (size_t)old * bs * c->KW, (size_t)m * c->KW * sizeof(float));
        memcpy(c->vpool + (size_t)nb * bs * c->VW, c->vpool + (size_t)old * bs * c->VW, (size_t)m * c->VW * sizeof(float));
        c->stats.bytes_copied += (int64_t)m * (c->KW + c->VW) * (int64_t)sizeof(float);
        release(c, old);
        t[L / bs] = nb;
    }
    for (int i = 0; i < n; i++, L++) {
        if (L % bs == 0) {
            t[L / bs] = c->free_blocks[--c->nfree];
            c->ref[t[L / bs]] = 1;
        }
        size_t row = (size_t)t[L / bs] * bs + L % bs;
        memcpy(c->kpool + row * c->KW, k + i * k_rs, (size_t)c->KW * sizeof(float));
        memcpy(c->vpool + row * c->VW, v + i * v_rs, (size_t)c->VW * sizeof(float));
    }
    c->len[seq] = L;
    return ATTN_OK;
}

int attn_kvcache_get_stats(const attn_kvcache *c, attn_kvcache_stats *out) {
    if (!c || !out) return attn__error(ATTN_EINVAL, "attn_kvcache_get_stats: NULL argument");
    *out = c->stats;
    out->blocks_used = c->cfg.num_blocks - c->nfree;
    return ATTN_OK;
}

/* ---- Attention through the block tables ---------------------------------------------------- */

typedef struct {
    attn_kvcache *c;
    const attn_kvcache_query *q;
    const float *Q;
    float *O, *lse;
    int64_t qs[3], os[3];
    float scale;
    int Lmax;
} attend_job;

/* Per thread: keys (Hkv, L, dk), values (Hkv, L, dv), the causal mask (nq, L), lse (nq), the
 * kernel's scratch. */
static size_t ws_floats(const attn_kvcache *c, int Lmax, int nq) {
    const attn_kvcache_config *k = &c->cfg;
    size_t n = (size_t)Lmax * (c->KW + c->VW) + ((size_t)nq * Lmax + 3) / 4 + nq + attn__kern()->scratch_floats(Lmax, k->dk, k->dv);
    return (n + 15) & ~(size_t)15;
}

static void attend_task(void *ctx, int s, int thread) {
    attend_job *j = ctx;
    attn_kvcache *c = j->c;
    const attn_kvcache_config *k = &c->cfg;
    const attn_kvcache_query *q = j->q;
    int seq = q->seqs[s], L = c->len[seq], bs = k->block_size, nq = q->nq, G = q->H / k->Hkv;
    float *kg = c->ws + c->ws_per_thread * thread, *vg = kg + (size_t)L * c->KW, *lt = vg + (size_t)L * c->VW;
    uint8_t *mask = (uint8_t *)(lt + nq);
    float *scratch = (float *)mask + ((size_t)nq * L + 3) / 4;
    /* Gather: keys of head hk contiguous, (Hkv, L, dk), token by token through the table. */
    const int *t = table_of(c, seq);
    for (int p = 0; p < L; p++) {
        size_t row = (size_t)t[p / bs] * bs + p % bs;
        for (int hk = 0; hk < k->Hkv; hk++) {
            memcpy(kg + ((size_t)hk * L + p) * k->dk, c->kpool + row * c->KW + (size_t)hk * k->dk, (size_t)k->dk * sizeof(float));
            memcpy(vg + ((size_t)hk * L + p) * k->dv, c->vpool + row * c->VW + (size_t)hk * k->dv, (size_t)k->dv * sizeof(float));
        }
    }
    if (q->causal)
        for (int r = 0; r < nq; r++)
            for (int p = 0; p < L; p++) mask[(size_t)r * L + p] = (uint8_t)(p <= L - nq + r);
    for (int h = 0; h < q->H; h++) {
        int hk = h / G;
        attn__head hd = {0};
        hd.Nq = nq, hd.Nk = L, hd.d = k->dk, hd.dv = k->dv, hd.scale = j->scale, hd.key_len = L;
        hd.q = j->Q + s * j->qs[0] + h * j->qs[1], hd.q_rs = j->qs[2];
        hd.k = kg + (size_t)hk * L * k->dk, hd.k_rs = k->dk;
        hd.v = vg + (size_t)hk * L * k->dv, hd.v_rs = k->dv;
        if (q->causal) hd.bmask = mask, hd.bm_rs = L, hd.bm_cs = 1;
        if (q->bias) {
            hd.bias = q->bias + s * q->bias_strides[0] + h * q->bias_strides[1];
            hd.bias_rs = q->bias_strides[2], hd.bias_cs = q->bias_strides[3];
        }
        float *lse = j->lse ? j->lse + ((size_t)s * q->H + h) * nq : lt;
        attn__kern()->fwd(&hd, 0, nq, j->O + s * j->os[0] + h * j->os[1], j->os[2], lse, NULL, 0, scratch);
    }
}

static void strides_or_contiguous(const int64_t in[3], int64_t out[3], int H, int n, int d) {
    if (in[0] || in[1] || in[2]) {
        memcpy(out, in, 3 * sizeof *out);
        return;
    }
    out[2] = d, out[1] = (int64_t)n * d, out[0] = (int64_t)H * n * d;
}

int attn_kvcache_attend(attn_kvcache *c, const attn_kvcache_query *q, const float *Q, float *O, float *lse) {
    if (!c || !q || !Q || !O) return attn__error(ATTN_EINVAL, "attn_kvcache_attend: NULL argument");
    const attn_kvcache_config *k = &c->cfg;
    if (q->nseq < 1 || !q->seqs) return attn__error(ATTN_EINVAL, "attn_kvcache_attend: no sequences (nseq %d)", q->nseq);
    if (q->H < 1 || q->H % k->Hkv)
        return attn__error(ATTN_ESHAPE, "attn_kvcache_attend: query heads (%d) must be a multiple of key/value heads (%d)",
                           q->H, k->Hkv);
    if (q->nq < 1) return attn__error(ATTN_EINVAL, "attn_kvcache_attend: nq must be >= 1, not %d", q->nq);
    if (!isfinite(q->scale)) return attn__error(ATTN_EINVAL, "attn_kvcache_attend: scale must be finite");
    attend_job j = {.c = c, .q = q, .Q = Q, .O = O, .lse = lse, .scale = q->scale ? q->scale : 1.0f / sqrtf((float)k->dk)};
    int64_t gathered = 0;
    for (int s = 0; s < q->nseq; s++) {
        int seq = q->seqs[s];
        if (seq < 0 || seq >= k->max_seqs) return bad_seq(c, seq, "attn_kvcache_attend");
        if (c->len[seq] < q->nq)
            return attn__error(ATTN_EINVAL, "attn_kvcache_attend: sequence %d holds %d tokens, fewer than the %d query rows",
                               seq, c->len[seq], q->nq);
        if (c->len[seq] > j.Lmax) j.Lmax = c->len[seq];
        gathered += (int64_t)c->len[seq] * (c->KW + c->VW) * (int64_t)sizeof(float);
    }
    strides_or_contiguous(q->q_strides, j.qs, q->H, q->nq, k->dk);
    strides_or_contiguous(q->o_strides, j.os, q->H, q->nq, k->dv);
    /* Per-thread buffers, kept for the next call and grown when a longer sequence needs more. */
    size_t per = ws_floats(c, j.Lmax, q->nq), need = per * (size_t)attn__max_threads();
    if (need > c->ws_cap) {
        attn_free(c->ws);
        c->ws_cap = 0;
        if (!(c->ws = attn_malloc(need * sizeof(float))))
            return attn__error(ATTN_ENOMEM, "attn_kvcache_attend: out of memory for %zu floats of buffers", need);
        c->ws_cap = need;
    }
    c->ws_per_thread = per;
    c->stats.bytes_gathered += gathered;
    attn__parallel(q->nseq, attend_task, &j);
    return ATTN_OK;
}
