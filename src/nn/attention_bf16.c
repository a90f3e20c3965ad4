/* Attention in bf16 (attn_desc.dtype = ATTN_BF16, or fp32 arrays with attn_desc.compute =
 * ATTN_BF16): the operands are converted (round to nearest even) and packed once per call
 * into the layouts of kernels/attn_bf16.h, the kernels multiply in bf16 and accumulate, take
 * the softmax and the log-sum-exp in fp32, and the outputs are fp32 (rounded to bf16 at the
 * end for bf16 storage). Tasks as the fp32 path's: (b, h, query block) for the forward and
 * dQ, (b, kv head, key block) for dK and dV, the G query heads of a group added in order,
 * so results do not depend on the thread count.
 * Few query rows on bf16 arrays (decoding) read K and V in place instead: on the f32 route,
 * unmasked, widened a chunk at a time for the fp32 row path; otherwise the decode kernel. Not here: cosine, general and additive scores, attn_mods, the weights P, the
 * three steps one at a time and attn_weights (all refused with ATTN_EINVAL); a packed copy of
 * the operands lives in the plan's workspace (about the size of Q, K, V and dO in fp32).
 * Letters as in attn/attention.h; d2, dv2 feature pairs; Nqp, Nkp padded row counts. */
#include <math.h>
#include <string.h>

#include "attn/attention.h"
#include "attn/io.h"
#include "core/internal.h"
#include "kernels/attn_bf16.h"
#include "nn/attention_bf16.h"

void attn_f32_to_bf16(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = attn__bf16(x[i]);
}

void attn_bf16_to_f32(const uint16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = attn__bf16_f32(x[i]);
}

const char *attn_bf16_isa(void) { return attn__bf16_kern()->name; }

int attn__bf16_on(const attn_desc *a) { return a->dtype == ATTN_BF16 || a->compute == ATTN_BF16; }

int attn__bf16_check(const attn_desc *a) {
    if (a->score != ATTN_SCORE_DOT && a->score != ATTN_SCORE_SCALED)
        return attn__error(ATTN_EINVAL, "bf16 attention supports the dot and scaled scores only, not %s",
                           attn_score_name(a->score));
    if (a->mods)
        return attn__error(ATTN_EINVAL, "bf16 attention does not take attn_mods (programmable masks and scores): "
                                        "use fp32, or the masks of attn_mask");
    return ATTN_OK;
}

typedef struct {
    const attn_desc *a;
    const attn__bf16_kernels *kern;
    int bf16_io;              /* arrays are uint16_t bf16 (else fp32) */
    int d2, dv2, Nqp, Nkp;
    uint32_t *q, *k, *v, *vp, *kp, *kt, *dout, *qp, *dop; /* packed, see kernels/attn_bf16.h */
    const void *src;          /* packing: the array, its strides, its row size */
    const int64_t *ss;
    float *scratch;
    size_t per_thread;
    float *o; int64_t os[3];  /* fp32 forward output */
    float *lse;
    const float *delta;
    float *dq, *dk, *dv;      /* fp32 gradients, strides below */
    int64_t dqs[3], dks[3], dvs[3];
    int nqb, nkb;
    int ns, chunk;            /* fused backward: ns key ranges of chunk keys per (b, kv head) */
    float *dqa;               /* its dQ sums without the scale, (ns, B, H, Nq, DPAD(d)) */
} job;

/* ---- packing -------------------------------------------------------------------------------- */

static uint16_t src_at(const job *j, const void *base, int64_t off) {
    return j->bf16_io ? ((const uint16_t *)base)[off] : attn__bf16(((const float *)base)[off]);
}

/* Rows [0, N) of (b, h) of src (strides ss, n features) into dst (Np, ceil(n / 2)) words, pads 0. */
static void pack_rows(const job *j, const void *src, const int64_t *ss, int b, int h, int N, int Np, int n,
                      uint32_t *dst) {
    int n2 = (n + 1) / 2;
    for (int r = 0; r < Np; r++)
        for (int c = 0; c < n2; c++) {
            uint32_t w = 0;
            if (r < N) {
                int64_t off = b * ss[0] + h * ss[1] + r * ss[2] + 2 * c;
                w = src_at(j, src, off);
                if (2 * c + 1 < n) w |= (uint32_t)src_at(j, src, off + 1) << 16;
            }
            dst[(int64_t)r * n2 + c] = w;
        }
}

/* Rows packed as (Np, n2) words -> pairs of rows per feature, (Np / 2, ds) words (ds >= n,
 * the pad 0). */
static void pair_rows(const uint32_t *rows, int Np, int n, int ds, uint32_t *dst) {
    int n2 = (n + 1) / 2;
    for (int r = 0; r < Np / 2; r++)
        for (int c = 0; c < ds; c++) {
            uint32_t e = c < n ? rows[(int64_t)2 * r * n2 + c / 2] : 0, o = c < n ? rows[(int64_t)(2 * r + 1) * n2 + c / 2] : 0;
            int sh = c & 1 ? 16 : 0;
            dst[(int64_t)r * ds + c] = ((e >> sh) & 0xffffu) | (((o >> sh) & 0xffffu) << 16);
        }
}

typedef struct {
    job *j;
    const void *K, *V, *Q, *dO;
    int bwd;
} pack_job;

static void pack_kv_task(void *ctx, int t, int thread) {
    (void)thread;
    pack_job *pj = ctx;
    job *j = pj->j;
    const attn_desc *a = j->a;
    int b = t / a->Hkv, h = t % a->Hkv, Np = j->Nkp;
    uint32_t *k = j->k + (int64_t)t * Np * j->d2, *v = j->v + (int64_t)t * Np * j->dv2;
    pack_rows(j, pj->K, a->k_strides, b, h, a->Nk, Np, a->dk, k);
    pack_rows(j, pj->V, a->v_strides, b, h, a->Nk, Np, a->dv, v);
    if (!pj->bwd) pair_rows(v, Np, a->dv, a->dv, j->vp + (int64_t)t * (Np / 2) * a->dv);
    if (pj->bwd) pair_rows(k, Np, a->dk, ATTN__BF16_DPAD(a->dk), j->kp + (int64_t)t * (Np / 2) * ATTN__BF16_DPAD(a->dk));
    if (j->kt)
        for (int c = 0; c < j->d2; c++)
            for (int r = 0; r < Np; r++) j->kt[((int64_t)t * j->d2 + c) * Np + r] = k[(int64_t)r * j->d2 + c];
}

static void pack_q_task(void *ctx, int t, int thread) {
    (void)thread;
    pack_job *pj = ctx;
    job *j = pj->j;
    const attn_desc *a = j->a;
    int b = t / a->H, h = t % a->H, Np = j->Nqp;
    uint32_t *q = j->q + (int64_t)t * Np * j->d2;
    pack_rows(j, pj->Q, a->q_strides, b, h, a->Nq, Np, a->dq, q);
    if (!pj->bwd) return;
    uint32_t *dout = j->dout + (int64_t)t * Np * j->dv2;
    pack_rows(j, pj->dO, a->o_strides, b, h, a->Nq, Np, a->dv, dout);
    pair_rows(q, Np, a->dq, a->dq, j->qp + (int64_t)t * (Np / 2) * a->dq);
    pair_rows(dout, Np, a->dv, a->dv, j->dop + (int64_t)t * (Np / 2) * a->dv);
}

/* Sizes, workspace and packed operands of a call (the backward's too when bwd). */
static int job_init(job *j, attn_plan *pl, const attn_desc *a, const void *Q, const void *K, const void *V,
                    const void *dO, int bwd) {
    memset(j, 0, sizeof *j);
    j->a = a;
    j->kern = attn__bf16_kern();
    if ((j->kern->fits && !j->kern->fits(a->dk, a->dv)) || (bwd && !j->kern->bwd_dq && !j->kern->bwd))
        j->kern = attn__bf16_kern_named("avx512bf16");
    if (!j->kern) j->kern = &attn__bf16_kernels_ref;
    j->bf16_io = a->dtype == ATTN_BF16;
    j->d2 = (a->dk + 1) / 2, j->dv2 = (a->dv + 1) / 2;
    j->Nqp = (a->Nq + ATTN__BF16_QPAD - 1) / ATTN__BF16_QPAD * ATTN__BF16_QPAD;
    j->Nkp = (a->Nk + ATTN__BF16_KPAD - 1) / ATTN__BF16_KPAD * ATTN__BF16_KPAD;
    size_t nq = (size_t)a->B * a->H * j->Nqp, nk = (size_t)a->B * a->Hkv * j->Nkp;
    int kt = !bwd && j->kern->needs_kt;
    size_t wq = nq * j->d2, wk = nk * j->d2, wv = nk * j->dv2, wvp = bwd ? 0 : nk / 2 * a->dv;
    size_t wkp = bwd ? nk / 2 * ATTN__BF16_DPAD(a->dk) : 0, wkt = kt ? wk : 0;
    size_t wdo = bwd ? nq * j->dv2 : 0, wqp = bwd ? nq / 2 * a->dq : 0, wdop = bwd ? nq / 2 * a->dv : 0;
    uint32_t *w = (uint32_t *)attn__plan_bf16_buf(pl, 0, wq + wk + wv + wvp + wkp + wkt + wdo + wqp + wdop);
    j->per_thread = (attn__bf16_scratch_floats(a->Nk, a->dk, a->dv) + 15) & ~(size_t)15;
    j->scratch = attn__plan_bf16_buf(pl, 1, j->per_thread * (size_t)attn__max_threads());
    if (!w || !j->scratch) return ATTN_ENOMEM;
    j->q = w, w += wq;
    j->k = w, w += wk;
    j->v = w, w += wv;
    if (wvp) j->vp = w, w += wvp;
    if (wkp) j->kp = w, w += wkp;
    if (wkt) j->kt = w, w += wkt;
    if (wdo) j->dout = w, w += wdo;
    if (wqp) j->qp = w, w += wqp;
    if (wdop) j->dop = w;
    pack_job pj = {.j = j, .K = K, .V = V, .Q = Q, .dO = dO, .bwd = bwd};
    attn__parallel(a->B * a->Hkv, pack_kv_task, &pj);
    attn__parallel(a->B * a->H, pack_q_task, &pj);
    j->nqb = (a->Nq + j->kern->q_block - 1) / j->kern->q_block;
    j->nkb = (a->Nk + j->kern->k_block - 1) / j->kern->k_block;
    return ATTN_OK;
}

/* The kernels' view of (b, query head h); m receives the masks. */
static attn__bf16_head head_of(const job *j, int b, int h, attn__head *m) {
    const attn_desc *a = j->a;
    int hk = h / (a->H / a->Hkv);
    int64_t bh = (int64_t)b * a->H + h, bk = (int64_t)b * a->Hkv + hk;
    *m = attn__desc_head(a, b, h);
    attn__bf16_head hb = {.Nq = a->Nq, .Nk = a->Nk, .d = a->dk, .dv = a->dv, .d2 = j->d2, .dv2 = j->dv2,
                          .Nqp = j->Nqp, .Nkp = j->Nkp, .scale = a->scale, .m = m};
    hb.q = j->q + bh * j->Nqp * j->d2;
    hb.k = j->k + bk * j->Nkp * j->d2;
    hb.v = j->v + bk * j->Nkp * j->dv2;
    if (j->vp) hb.vp = j->vp + bk * (j->Nkp / 2) * a->dv;
    if (j->kp) hb.kp = j->kp + bk * (j->Nkp / 2) * ATTN__BF16_DPAD(a->dk);
    if (j->kt) hb.kt = j->kt + bk * j->d2 * j->Nkp;
    if (j->dout) hb.dout = j->dout + bh * j->Nqp * j->dv2;
    if (j->qp) hb.qp = j->qp + bh * (j->Nqp / 2) * a->dq;
    if (j->dop) hb.dop = j->dop + bh * (j->Nqp / 2) * a->dv;
    return hb;
}

static float *scratch_at(const job *j, int thread) { return j->scratch + j->per_thread * (size_t)thread; }

/* ---- forward -------------------------------------------------------------------------------- */

static void fwd_task(void *ctx, int t, int thread) {
    job *j = ctx;
    const attn_desc *a = j->a;
    int qb = t % j->nqb, bh = t / j->nqb, h = bh % a->H, b = bh / a->H;
    if (a->mask.causal || a->mask.window) qb = j->nqb - 1 - qb; /* the longest rows first */
    int i0 = qb * j->kern->q_block, i1 = i0 + j->kern->q_block < a->Nq ? i0 + j->kern->q_block : a->Nq;
    attn__head m;
    attn__bf16_head hb = head_of(j, b, h, &m);
    j->kern->fwd(&hb, i0, i1, j->o + b * j->os[0] + h * j->os[1], j->os[2], j->lse + (size_t)bh * a->Nq,
                 scratch_at(j, thread));
}

/* Rows (B, Hx, N, n) of x (strides xs; bf16 if xb, else fp32) into y (strides ys; bf16 if
 * yb): widened, copied, or rounded to bf16 (rnd: fp32 values rounded, for bf16 compute). */
typedef struct {
    const void *x; const int64_t *xs; int xb;
    void *y; const int64_t *ys; int yb;
    int rnd, Hx, N, n;
} conv_job;

static void conv_task(void *ctx, int t, int thread) {
    (void)thread;
    const conv_job *c = ctx;
    int b = t / c->Hx, h = t % c->Hx;
    for (int i = 0; i < c->N; i++) {
        int64_t xo = b * c->xs[0] + h * c->xs[1] + i * c->xs[2], yo = b * c->ys[0] + h * c->ys[1] + i * c->ys[2];
        const float *xf = (const float *)c->x + xo;
        const uint16_t *xh = (const uint16_t *)c->x + xo;
        float *yf = (float *)c->y + yo;
        uint16_t *yh = (uint16_t *)c->y + yo;
        if (c->xb && c->yb) memcpy(yh, xh, (size_t)c->n * 2); /* one loop per case, so that each vectorises */
        else if (c->xb) for (int e = 0; e < c->n; e++) yf[e] = attn__bf16_f32(xh[e]);
        else if (c->yb) for (int e = 0; e < c->n; e++) yh[e] = attn__bf16(xf[e]);
        else if (c->rnd) for (int e = 0; e < c->n; e++) yf[e] = attn__bf16_round(xf[e]);
        else memcpy(yf, xf, (size_t)c->n * 4);
    }
}

static void conv_rows(const void *x, const int64_t xs[3], int xb, void *y, const int64_t ys[3], int yb, int rnd, int B,
                      int Hx, int N, int n) {
    conv_job c = {x, xs, xb, y, ys, yb, rnd, Hx, N, n};
    attn__parallel(B * Hx, conv_task, &c);
}

static void round_out(const float *x, const int64_t xs[3], void *y, const int64_t ys[3], int B, int Hx, int N, int n) {
    conv_rows(x, xs, 0, y, ys, 1, 0, B, Hx, N, n);
}

static void contiguous3(int64_t s[3], int H, int N, int d) {
    s[2] = d, s[1] = (int64_t)N * d, s[0] = (int64_t)H * N * d;
}

/* ---- the fp32 kernels on widened values ("f32": where VDPBF16PS does not pay) ----------------- */

/* The call again on the plan with an fp32 description of contiguous arrays (the plan's own
 * description swapped in for it, its workspace shared: the fp32 path's buffers are others). */
static attn_desc f32_desc(const attn_desc *a) {
    attn_desc f = *a;
    f.dtype = ATTN_F32, f.compute = ATTN_F32;
    memset(f.q_strides, 0, sizeof f.q_strides), memset(f.k_strides, 0, sizeof f.k_strides);
    memset(f.v_strides, 0, sizeof f.v_strides), memset(f.o_strides, 0, sizeof f.o_strides);
    contiguous3(f.q_strides, a->H, a->Nq, a->dq), contiguous3(f.k_strides, a->Hkv, a->Nk, a->dk);
    contiguous3(f.v_strides, a->Hkv, a->Nk, a->dv), contiguous3(f.o_strides, a->H, a->Nq, a->dv);
    return f;
}

/* Q, K, V (and O, dO) as contiguous fp32, in workspace buffer 0, x[0..4]: the inputs' bf16
 * values, O as given (the backward's delta = dO . O is taken from it, as on the other routes). */
static int widen_inputs(attn_plan *pl, const attn_desc *a, const attn_desc *f, const void *const in[5], float *x[5]) {
    int bf = a->dtype == ATTN_BF16, n = in[3] ? 5 : 3;
    size_t nq = (size_t)a->B * a->H * a->Nq, nk = (size_t)a->B * a->Hkv * a->Nk;
    size_t sz[5] = {nq * a->dq, nk * a->dk, nk * a->dv, nq * a->dv, nq * a->dv}, tot = 0;
    for (int t = 0; t < n; t++) tot += sz[t];
    float *w = attn__plan_bf16_buf(pl, 0, tot);
    if (!w) return ATTN_ENOMEM;
    const int64_t *as[5] = {a->q_strides, a->k_strides, a->v_strides, a->o_strides, a->o_strides};
    const int64_t *fs[5] = {f->q_strides, f->k_strides, f->v_strides, f->o_strides, f->o_strides};
    int hx[5] = {a->H, a->Hkv, a->Hkv, a->H, a->H}, N[5] = {a->Nq, a->Nk, a->Nk, a->Nq, a->Nq};
    int d[5] = {a->dq, a->dk, a->dv, a->dv, a->dv};
    for (int t = 0; t < n; t++) {
        x[t] = w;
        conv_rows(in[t], as[t], bf, w, fs[t], 0, t != 3, a->B, hx[t], N[t], d[t]); /* O is an output: not rounded */
        w += sz[t];
    }
    return ATTN_OK;
}

static int widen_forward(attn_plan *pl, const attn_desc *a, const void *Q, const void *K, const void *V, void *O,
                         float *lse) {
    attn_desc f = f32_desc(a), *pd = attn__plan_desc_rw(pl), saved = *pd;
    const void *in[5] = {Q, K, V, NULL, NULL};
    float *x[5], *o = O;
    int st = widen_inputs(pl, a, &f, in, x);
    if (st) return st;
    if (a->dtype == ATTN_BF16 && !(o = attn__plan_bf16_buf(pl, 3, (size_t)a->B * a->H * a->Nq * a->dv))) return ATTN_ENOMEM;
    if (a->dtype != ATTN_BF16) memcpy(f.o_strides, a->o_strides, sizeof f.o_strides); /* the caller's O */
    *pd = f;
    st = attn_plan_forward(pl, x[0], x[1], x[2], o, NULL, lse);
    *pd = saved;
    if (!st && a->dtype == ATTN_BF16) round_out(o, f.o_strides, O, a->o_strides, a->B, a->H, a->Nq, a->dv);
    return st;
}

static int widen_backward(attn_plan *pl, const attn_desc *a, const void *Q, const void *K, const void *V, const void *O,
                          const float *lse, const void *dO, void *dQ, void *dK, void *dV) {
    attn_desc f = f32_desc(a), *pd = attn__plan_desc_rw(pl), saved = *pd;
    const void *in[5] = {Q, K, V, O, dO};
    float *x[5], *g[3] = {NULL, NULL, NULL};
    int st = widen_inputs(pl, a, &f, in, x);
    if (st) return st;
    void *out[3] = {dQ, dK, dV};
    size_t n[3] = {(size_t)a->B * a->H * a->Nq * a->dq, (size_t)a->B * a->Hkv * a->Nk * a->dk,
                   (size_t)a->B * a->Hkv * a->Nk * a->dv};
    for (int t = 0; t < 3; t++)
        if (out[t] && !(g[t] = attn__plan_bf16_buf(pl, 4 + t, n[t]))) return ATTN_ENOMEM;
    *pd = f;
    st = attn_plan_backward(pl, x[0], x[1], x[2], x[3], lse, x[4], g[0], g[1], g[2], NULL);
    *pd = saved;
    const int64_t *fs[3] = {f.q_strides, f.k_strides, f.v_strides}, *as[3] = {a->q_strides, a->k_strides, a->v_strides};
    int hx[3] = {a->H, a->Hkv, a->Hkv}, N[3] = {a->Nq, a->Nk, a->Nk}, d[3] = {a->dq, a->dk, a->dv};
    for (int t = 0; !st && t < 3; t++)
        if (out[t]) conv_rows(g[t], fs[t], 0, out[t], as[t], a->dtype == ATTN_BF16, 0, a->B, hx[t], N[t], d[t]);
    return st;
}

/* ---- decoding -------------------------------------------------------------------------------- */

/* Few query rows on bf16 arrays: task (b, kv head, key range r) runs the decode kernel on the
 * G Nq rows of the group, reading K and V in place; the ranges' partial softmax states are
 * merged in range order (lse = log sum_r l_r e^{m_r}, o = sum_r o_r e^{m_r - lse}). The split
 * (enough tasks, 16, in ranges of at least 512 keys) depends on the shapes only. */
typedef struct {
    const attn_desc *a;
    attn__bf16_dec_fn fn;
    const uint16_t *Q, *K, *V;
    uint16_t *O;
    float *lse;
    int G, R, ns, chunk;
    float *po, *pm, *pl, *scratch; /* partial states (ns, B, Hkv, R, dv), (ns, B, Hkv, R) */
    size_t per_thread;
} dec_job;

enum { DEC_ROWS = 32 }; /* the most rows (G Nq) a decode task takes */

static void dec_task(void *ctx, int t, int thread) {
    dec_job *j = ctx;
    const attn_desc *a = j->a;
    int r = t % j->ns, bk = t / j->ns, hk = bk % a->Hkv, b = bk / a->Hkv;
    attn__head mh[DEC_ROWS];
    uint32_t *q = (uint32_t *)(j->scratch + j->per_thread * (size_t)thread);
    for (int g = 0; g < j->G; g++) {
        int h = hk * j->G + g;
        mh[g] = attn__desc_head(a, b, h);
        for (int i = 0; i < a->Nq; i++)
            memcpy(q + (size_t)(g * a->Nq + i) * (a->dk / 2), j->Q + b * a->q_strides[0] + h * a->q_strides[1] + i * a->q_strides[2],
                   (size_t)a->dk * 2);
    }
    int k0 = r * j->chunk, k1 = k0 + j->chunk < a->Nk ? k0 + j->chunk : a->Nk, js, je;
    attn__key_range(&mh[0], 0, a->Nq, k0, k1, &js, &je);
    attn__bf16_dec dc = {.R = j->R, .Nq = a->Nq, .d = a->dk, .dv = a->dv, .scale = a->scale, .q = q,
                         .k = j->K + b * a->k_strides[0] + hk * a->k_strides[1], .k_rs = a->k_strides[2],
                         .v = j->V + b * a->v_strides[0] + hk * a->v_strides[1], .v_rs = a->v_strides[2], .m = mh};
    size_t row = ((size_t)r * a->B * a->Hkv + bk) * j->R;
    j->fn(&dc, js, je > js ? je : js, j->po + row * a->dv, j->pm + row, j->pl + row, (float *)(q + (size_t)j->R * (a->dk / 2)));
}

static void dec_merge_task(void *ctx, int bk, int thread) {
    (void)thread;
    dec_job *j = ctx;
    const attn_desc *a = j->a;
    int hk = bk % a->Hkv, b = bk / a->Hkv;
    size_t stride = (size_t)a->B * a->Hkv * j->R;
    float *o = j->scratch + j->per_thread * (size_t)thread; /* dv floats */
    for (int rr = 0; rr < j->R; rr++) {
        int h = hk * j->G + rr / a->Nq, i = rr % a->Nq;
        size_t row = (size_t)bk * j->R + rr;
        float mx = -INFINITY, l = 0.0f;
        for (int r = 0; r < j->ns; r++)
            if (j->pm[r * stride + row] > mx) mx = j->pm[r * stride + row];
        memset(o, 0, (size_t)a->dv * sizeof *o);
        for (int r = 0; mx != -INFINITY && r < j->ns; r++) {
            float w = expf(j->pm[r * stride + row] - mx);
            const float *po = j->po + (r * stride + row) * a->dv;
            l += w * j->pl[r * stride + row];
            for (int c = 0; c < a->dv; c++) o[c] += w * po[c];
        }
        for (int c = 0; c < a->dv; c++) o[c] = l > 0.0f ? o[c] / l : 0.0f;
        attn_f32_to_bf16(o, j->O + b * a->o_strides[0] + h * a->o_strides[1] + i * a->o_strides[2], (size_t)a->dv);
        j->lse[((size_t)b * a->H + h) * a->Nq + i] = l > 0.0f ? mx + logf(l) : -INFINITY;
    }
}

/* The "f32" route's decoding, unmasked calls (every row sees the same keys): K and V widened to
 * fp32 DEC_CHUNK keys at a time into a per-thread buffer that stays in L2, and the fp32
 * kernels' row path (fwd_part) on the group's G Nq rows over each chunk, whose normalised
 * output and log-sum-exp are merged into the decode kernel's partial state (m, l, o): memory
 * reads are the bf16 bytes, the arithmetic the fp32 path's. */
enum { DEC_CHUNK = 256 };

static size_t dec_widen_floats(const attn_desc *a, int R) {
    size_t f = 0, parts[5] = {(size_t)R * a->dk, (size_t)DEC_CHUNK * a->dk, (size_t)DEC_CHUNK * a->dv, (size_t)R * a->dv, (size_t)R};
    for (int i = 0; i < 5; i++) f += (parts[i] + 15) & ~(size_t)15;
    return f + attn__kern()->scratch_floats(DEC_CHUNK, a->dk, a->dv) + 16;
}

static void widen_rows(const uint16_t *x, int64_t rs, int n, int d, float *y) {
    void (*widen)(const uint16_t *, float *, int64_t) = attn__kern()->bf16_widen;
    if (rs == d) widen(x, y, (int64_t)n * d);
    else
        for (int r = 0; r < n; r++) widen(x + r * rs, y + (size_t)r * d, d);
}

static void dec_widen_task(void *ctx, int t, int thread) {
    dec_job *j = ctx;
    const attn_desc *a = j->a;
    const attn__kernels *kern = attn__kern();
    int r = t % j->ns, bk = t / j->ns, hk = bk % a->Hkv, b = bk / a->Hkv, R = j->R, d = a->dk, dv = a->dv;
    float *buf[6], *w = j->scratch + j->per_thread * (size_t)thread;
    size_t parts[5] = {(size_t)R * d, (size_t)DEC_CHUNK * d, (size_t)DEC_CHUNK * dv, (size_t)R * dv, (size_t)R};
    for (int i = 0; i < 6; i++) buf[i] = w, w += i < 5 ? (parts[i] + 15) & ~(size_t)15 : 0;
    float *q = buf[0], *kf = buf[1], *vf = buf[2], *oc = buf[3], *lc = buf[4], *ks = buf[5];
    for (int g = 0; g < j->G; g++) {
        int h = hk * j->G + g;
        widen_rows(j->Q + b * a->q_strides[0] + h * a->q_strides[1], a->q_strides[2], a->Nq, d, q + (size_t)g * a->Nq * d);
    }
    size_t row = ((size_t)r * a->B * a->Hkv + bk) * R;
    float *po = j->po + row * dv, *pm = j->pm + row, *pl = j->pl + row;
    for (int i = 0; i < R; i++) pm[i] = -INFINITY, pl[i] = 0.0f;
    memset(po, 0, (size_t)R * dv * sizeof *po);
    int k0 = r * j->chunk, k1 = k0 + j->chunk < a->Nk ? k0 + j->chunk : a->Nk;
    if (a->mask.key_lengths && a->mask.key_lengths[b] < k1) k1 = a->mask.key_lengths[b];
    const uint16_t *K = j->K + b * a->k_strides[0] + hk * a->k_strides[1], *V = j->V + b * a->v_strides[0] + hk * a->v_strides[1];
    for (int c0 = k0; c0 < k1; c0 += DEC_CHUNK) {
        int n = k1 - c0 < DEC_CHUNK ? k1 - c0 : DEC_CHUNK;
        widen_rows(K + (int64_t)c0 * a->k_strides[2], a->k_strides[2], n, d, kf);
        widen_rows(V + (int64_t)c0 * a->v_strides[2], a->v_strides[2], n, dv, vf);
        attn__head hd = {0};
        hd.Nq = R, hd.Nk = n, hd.d = d, hd.dv = dv, hd.scale = a->scale, hd.key_len = n;
        hd.q = q, hd.q_rs = d, hd.k = kf, hd.k_rs = d, hd.v = vf, hd.v_rs = dv;
        kern->fwd_part(&hd, 0, R, 0, n, oc, dv, lc, NULL, 0, ks);
        for (int i = 0; i < R; i++) {
            if (lc[i] == -INFINITY) continue; /* no weight in this chunk */
            float m = lc[i] > pm[i] ? lc[i] : pm[i], a0 = pm[i] == -INFINITY ? 0.0f : expf(pm[i] - m), a1 = expf(lc[i] - m);
            pl[i] = pl[i] * a0 + a1;
            for (int c = 0; c < dv; c++) po[(size_t)i * dv + c] = po[(size_t)i * dv + c] * a0 + a1 * oc[(size_t)i * dv + c];
            pm[i] = m;
        }
    }
}

/* The decode path, if it takes this call (ATTN_OK, or an error); 1 if it does not. */
static int try_decode(attn_plan *pl, const attn_desc *a, const void *Q, const void *K, const void *V, void *O, float *lse) {
    const attn__bf16_kernels *k = attn__bf16_kern();
    const attn_mask *mk = &a->mask;
    int G = a->H / a->Hkv;
    if (a->dtype != ATTN_BF16 || G * a->Nq > DEC_ROWS) return 1;
    int widen = k->widen && attn__kern()->fwd_part && !mk->causal && mk->window <= 0 && !mk->bool_mask && !mk->bias;
    if (!k->decode) k = strcmp(k->name, "ref") ? attn__bf16_kern_named("avx512bf16") : NULL; /* AMX: AVX512-BF16's */
    if (!widen && (!k || !k->decode || a->dk % 32 || a->dv % 16)) return 1;
    dec_job j = {.a = a, .fn = k ? k->decode : NULL, .Q = Q, .K = K, .V = V, .O = O, .lse = lse, .G = G, .R = G * a->Nq};
    int groups = a->B * a->Hkv, ns = (16 + groups - 1) / groups;
    if (ns > a->Nk / 512) ns = a->Nk / 512;
    if (ns < 1) ns = 1;
    j.chunk = ((a->Nk + ns - 1) / ns + 15) / 16 * 16;
    j.ns = (a->Nk + j.chunk - 1) / j.chunk;
    size_t rows = (size_t)j.ns * groups * j.R;
    j.per_thread = ((size_t)j.R * (a->dk / 2 + 16) + 16 * (size_t)a->dv + 15) & ~(size_t)15; /* q, kernel, merge */
    if (widen) j.per_thread = (dec_widen_floats(a, j.R) + 15) & ~(size_t)15;
    j.scratch = attn__plan_bf16_buf(pl, 1, j.per_thread * (size_t)attn__max_threads());
    j.po = attn__plan_bf16_buf(pl, 3, rows * a->dv);
    j.pm = attn__plan_bf16_buf(pl, 4, 2 * rows);
    if (!j.scratch || !j.po || !j.pm) return ATTN_ENOMEM;
    j.pl = j.pm + rows;
    attn__parallel(groups * j.ns, widen ? dec_widen_task : dec_task, &j);
    attn__parallel(groups, dec_merge_task, &j);
    return ATTN_OK;
}

int attn__bf16_forward(attn_plan *pl, const attn_desc *desc, const void *Q, const void *K, const void *V, void *O,
                       float *P, float *lse) {
    attn_desc ac = *desc, *a = &ac;
    int st = attn_desc_check(a); /* again: key lengths may have changed since the plan */
    if (st) return st;
    if (!Q || !K || !V || !O) return attn__error(ATTN_EINVAL, "Q, K, V and O must not be NULL");
    if (P) return attn__error(ATTN_EINVAL, "bf16 attention does not return the weights P (pass NULL; use fp32 for them)");
    size_t nq = (size_t)a->B * a->H * a->Nq;
    if (!lse && !(lse = attn__plan_bf16_buf(pl, 2, nq))) return ATTN_ENOMEM;
    if ((st = try_decode(pl, a, Q, K, V, O, lse)) <= 0) return st;
    if (attn__bf16_kern()->widen) return widen_forward(pl, a, Q, K, V, O, lse);
    job j;
    if ((st = job_init(&j, pl, a, Q, K, V, NULL, 0))) return st;
    j.lse = lse;
    if (j.bf16_io) {
        if (!(j.o = attn__plan_bf16_buf(pl, 3, nq * a->dv))) return ATTN_ENOMEM;
        contiguous3(j.os, a->H, a->Nq, a->dv);
    } else {
        j.o = O;
        memcpy(j.os, a->o_strides, sizeof j.os);
    }
    attn__parallel(a->B * a->H * j.nqb, fwd_task, &j);
    if (j.bf16_io) round_out(j.o, j.os, O, a->o_strides, a->B, a->H, a->Nq, a->dv);
    return ATTN_OK;
}

/* ---- backward ------------------------------------------------------------------------------- */

static void dq_task(void *ctx, int t, int thread) {
    job *j = ctx;
    const attn_desc *a = j->a;
    int qb = t % j->nqb, bh = t / j->nqb, h = bh % a->H, b = bh / a->H;
    int i0 = qb * j->kern->q_block, i1 = i0 + j->kern->q_block < a->Nq ? i0 + j->kern->q_block : a->Nq;
    attn__head m;
    attn__bf16_head hb = head_of(j, b, h, &m);
    j->kern->bwd_dq(&hb, j->lse + (size_t)bh * a->Nq, j->delta + (size_t)bh * a->Nq, i0, i1,
                    j->dq + b * j->dqs[0] + h * j->dqs[1], j->dqs[2], scratch_at(j, thread));
}

/* Task (b, kv head, key range r of ns ranges of chunk keys): the G query heads of the group in
 * order over its keys, owning its dK, dV rows. With the fused kernel it also sums the dQ of
 * its range apart (dqa), added in range order after (dq_sum_task); else bwd_dkv. */
static void kv_task(void *ctx, int t, int thread) {
    job *j = ctx;
    const attn_desc *a = j->a;
    int r = t % j->ns, bk = t / j->ns, hk = bk % a->Hkv, b = bk / a->Hkv, G = a->H / a->Hkv, dp = ATTN__BF16_DPAD(a->dk);
    int j0 = r * j->chunk, j1 = j0 + j->chunk < a->Nk ? j0 + j->chunk : a->Nk;
    float *dk = j->dk ? j->dk + b * j->dks[0] + hk * j->dks[1] : NULL;
    float *dv = j->dv ? j->dv + b * j->dvs[0] + hk * j->dvs[1] : NULL;
    for (int i = j0; i < j1; i++) {
        if (dk) memset(dk + i * j->dks[2], 0, (size_t)a->dk * sizeof *dk);
        if (dv) memset(dv + i * j->dvs[2], 0, (size_t)a->dv * sizeof *dv);
    }
    for (int g = 0; g < G; g++) {
        size_t bh = (size_t)b * a->H + hk * G + g;
        attn__head m;
        attn__bf16_head hb = head_of(j, b, hk * G + g, &m);
        const float *lse = j->lse + bh * a->Nq, *delta = j->delta + bh * a->Nq;
        float *sc = scratch_at(j, thread);
        if (!j->kern->bwd) {
            j->kern->bwd_dkv(&hb, lse, delta, j0, j1, dk, j->dks[2], dv, j->dvs[2], sc);
            continue;
        }
        float *dq = j->dq ? j->dqa + ((size_t)r * a->B * a->H + bh) * a->Nq * dp : NULL;
        j->kern->bwd(&hb, lse, delta, j0, j1, dq, dp, dk, j->dks[2], dv, j->dvs[2], sc);
    }
}

static void dq_sum_task(void *ctx, int bh, int thread) {
    (void)thread;
    const job *j = ctx;
    const attn_desc *a = j->a;
    int b = bh / a->H, h = bh % a->H, dp = ATTN__BF16_DPAD(a->dk);
    size_t stride = (size_t)a->B * a->H * a->Nq * dp;
    for (int i = 0; i < a->Nq; i++) {
        float *dq = j->dq + b * j->dqs[0] + h * j->dqs[1] + i * j->dqs[2];
        const float *part = j->dqa + ((size_t)bh * a->Nq + i) * dp;
        for (int c = 0; c < a->dk; c++) {
            float s = 0.0f;
            for (int r = 0; r < j->ns; r++) s += part[r * stride + c];
            dq[c] = a->scale * s;
        }
    }
}

static int run_fused(job *j, attn_plan *pl) {
    const attn_desc *a = j->a;
    int groups = a->B * a->Hkv, kb = j->kern->k_block;
    /* Enough tasks for the threads (8, a constant), in key ranges of at least 256: the split
     * depends on the shapes only, so results do not depend on the thread count. */
    int ns = (8 + groups - 1) / groups;
    if (ns > a->Nk / 256) ns = a->Nk / 256;
    if (ns < 1) ns = 1;
    j->chunk = ((a->Nk + ns - 1) / ns + kb - 1) / kb * kb;
    j->ns = (a->Nk + j->chunk - 1) / j->chunk;
    if (j->dq) {
        size_t n = (size_t)j->ns * a->B * a->H * a->Nq * ATTN__BF16_DPAD(a->dk);
        if (!(j->dqa = attn__plan_bf16_buf(pl, 7, n))) return ATTN_ENOMEM;
        memset(j->dqa, 0, n * sizeof *j->dqa);
    }
    attn__parallel(groups * j->ns, kv_task, j);
    if (j->dq) attn__parallel(a->B * a->H, dq_sum_task, j);
    return ATTN_OK;
}

typedef struct {
    const job *j;
    const void *O, *dO;
    float *delta;
} delta_job;

/* delta_i = dO_i . O_i in fp32, from the arrays as given. */
static void delta_task(void *ctx, int bh, int thread) {
    (void)thread;
    const delta_job *dj = ctx;
    const attn_desc *a = dj->j->a;
    int b = bh / a->H, h = bh % a->H;
    for (int i = 0; i < a->Nq; i++) {
        int64_t off = b * a->o_strides[0] + h * a->o_strides[1] + i * a->o_strides[2];
        float s = 0.0f;
        for (int c = 0; c < a->dv; c++) {
            float o = dj->j->bf16_io ? attn__bf16_f32(((const uint16_t *)dj->O)[off + c]) : ((const float *)dj->O)[off + c];
            float g = dj->j->bf16_io ? attn__bf16_f32(((const uint16_t *)dj->dO)[off + c]) : ((const float *)dj->dO)[off + c];
            s += o * g;
        }
        dj->delta[(size_t)bh * a->Nq + i] = s;
    }
}

/* Where a gradient goes: the caller's fp32 array, or (bf16 storage) workspace buffer `slot`. */
static int grad_target(const job *j, attn_plan *pl, int slot, void *user, const int64_t us[3], int Hx, int N, int n,
                       float **out, int64_t os[3]) {
    *out = NULL;
    if (!user) return ATTN_OK;
    if (!j->bf16_io) {
        *out = user;
        memcpy(os, us, 3 * sizeof *os);
        return ATTN_OK;
    }
    if (!(*out = attn__plan_bf16_buf(pl, slot, (size_t)j->a->B * Hx * N * n))) return ATTN_ENOMEM;
    contiguous3(os, Hx, N, n);
    return ATTN_OK;
}

int attn__bf16_backward(attn_plan *pl, const attn_desc *desc, const void *Q, const void *K, const void *V,
                        const void *O, const float *lse, const void *dO, void *dQ, void *dK, void *dV) {
    attn_desc ac = *desc, *a = &ac;
    int st = attn_desc_check(a);
    if (st) return st;
    if (!Q || !K || !V || !O || !dO) return attn__error(ATTN_EINVAL, "Q, K, V, O and dO must not be NULL");
    if (attn__bf16_kern()->widen) return widen_backward(pl, a, Q, K, V, O, lse, dO, dQ, dK, dV);
    size_t nq = (size_t)a->B * a->H * a->Nq;
    if (!lse) { /* recompute it: a forward into scratch outputs */
        float *l = attn__plan_bf16_buf(pl, 2, nq), *o = attn__plan_bf16_buf(pl, 4, nq * a->dv);
        if (!l || !o) return ATTN_ENOMEM;
        attn_desc af = *a;
        af.dtype = ATTN_F32, af.compute = ATTN_BF16; /* fp32 output, same inputs */
        contiguous3(af.o_strides, a->H, a->Nq, a->dv);
        job jf;
        if ((st = job_init(&jf, pl, a, Q, K, V, NULL, 0))) return st;
        jf.a = &af, jf.lse = l, jf.o = o;
        memcpy(jf.os, af.o_strides, sizeof jf.os);
        attn__parallel(a->B * a->H * jf.nqb, fwd_task, &jf);
        lse = l;
    }
    job j;
    if ((st = job_init(&j, pl, a, Q, K, V, dO, 1))) return st;
    float *delta = attn__plan_bf16_buf(pl, 3, nq);
    if (!delta) return ATTN_ENOMEM;
    delta_job dj = {&j, O, dO, delta};
    attn__parallel(a->B * a->H, delta_task, &dj);
    j.lse = (float *)lse, j.delta = delta;
    if ((st = grad_target(&j, pl, 4, dQ, a->q_strides, a->H, a->Nq, a->dq, &j.dq, j.dqs)) ||
        (st = grad_target(&j, pl, 5, dK, a->k_strides, a->Hkv, a->Nk, a->dk, &j.dk, j.dks)) ||
        (st = grad_target(&j, pl, 6, dV, a->v_strides, a->Hkv, a->Nk, a->dv, &j.dv, j.dvs)))
        return st;
    if (j.kern->bwd) {
        if ((st = run_fused(&j, pl))) return st;
    } else {
        j.ns = j.nkb, j.chunk = j.kern->k_block;
        if (j.dq) attn__parallel(a->B * a->H * j.nqb, dq_task, &j);
        if (j.dk || j.dv) attn__parallel(a->B * a->Hkv * j.ns, kv_task, &j);
    }
    if (j.bf16_io) {
        if (dQ) round_out(j.dq, j.dqs, dQ, a->q_strides, a->B, a->H, a->Nq, a->dq);
        if (dK) round_out(j.dk, j.dks, dK, a->k_strides, a->B, a->Hkv, a->Nk, a->dk);
        if (dV) round_out(j.dv, j.dvs, dV, a->v_strides, a->B, a->Hkv, a->Nk, a->dv);
    }
    return ATTN_OK;
}
