/* The fast fused attention kernels, written once over a small set of vector macros and
 * compiled per instruction set: avx512/attn_avx512.c and avx2/attn_avx2.c define the macros
 * (vector type, width, loads, FMA, a fast exp2, the tile sizes) and include this file. Not a
 * public header; include it nowhere else.
 *
 * The algorithm is FlashAttention-2 (Dao 2023) on a CPU, with the online softmax of Milakov &
 * Gimelshein (2018) and Rabe & Staats (2021): query tiles outer, key blocks inner, a running
 * maximum and sum per query row, the output normalised once at the end, the log-sum-exp kept
 * for the backward, never an (Nq, Nk) matrix in memory.
 *
 * The layout is transposed so that every softmax reduction is vertical: a query tile of BR
 * rows is packed once as Q^T (d, BR) and every tile of scores is held as S^T (BC keys, BR
 * queries), so the row maximum and sum of the softmax are element-wise vector operations
 * across the rows of S^T, never horizontal reductions. Keys and values are read in place,
 * one element broadcast at a time (grouped heads and strided views need no copy):
 *
 *   S^T (BC, BR)  = K_blk (BC, d) . Q^T (d, BR)            kernel "ka": broadcast K, rows of Q^T
 *   O^T (dv, BR) += V_blk^T (dv, BC) . P^T (BC, BR)        kernel "kc": broadcast V, rows of P^T
 *
 * Every score is one sequential FMA chain over the feature index, s = (((q_0 k_0) + q_1 k_1)
 * + ...) with q pre-multiplied by the scale, in every path (tiles, rows, the weights pass, the
 * backward), so the backward recomputes bitwise the scores whose log-sum-exp the forward
 * stored, and lse = m + log l round-trips: with huge logits the dominant weight is exactly 1.
 * Scores stay in natural units; exponentials are exp2((s - m) log2 e). (rowdot sums the
 * backward's delta = dO . O in the same order, so that dO . V_j - delta is exactly 0 where key
 * j takes all the weight.) The backward, one pass per key block with every query tile inner
 * (FlashAttention-2's Algorithm 2), adds
 *
 *   dP^T (BC, BR) = V_blk (BC, dv) . dO^T (dv, BR)         kernel "ka"
 *   dS^T          = P^T * (dP^T - delta)                     element-wise
 *   dV_blk (BC, dv) += P^T (BC, BR) . dO (BR, dv)           kernel "kb": broadcast P^T, rows of dO
 *   dK_blk (BC, d)  += dS^T (BC, BR) . Q (BR, d)            kernel "kb"
 *   dQ^T (d, BR)    += K_blk^T (d, BC) . dS^T (BC, BR)      kernel "kc"
 *
 * Few query rows (decoding: Nq = 1 against a long key sequence) take a row kernel instead:
 * one query against 4 VL keys at a time, the keys transposed in registers (VL x VL blocks) so
 * that the FMA chain runs over the features as in the tiles; it is bound by the memory
 * bandwidth for long key sequences. The orchestrator splits such calls over key ranges
 * (fwd_part) and merges them.
 *
 * And sgemm for the linear layers, on "kb"'s tile shape (measured against OpenBLAS in
 * attn_avx512.c).
 *
 * Everything here is deterministic: the order of every sum depends only on the shapes.
 *
 * Macros the includer defines:
 *   VL                       lanes per vector; vf the vector type
 *   vload(p) vstore(p, x)    unaligned load/store of VL floats
 *   vloadn(p, n) vstoren(p, x, n)  first n lanes (the rest read as 0 / left alone)
 *   vbcast(p) vset1(x) vzero()
 *   vfma(a, b, c) = a*b + c;  vadd vsub vmul vdiv vmax
 *   vexp2(x)                 2^x, 0 for x <= -150 or -inf, NaN propagates
 *   vsafe(m)                 m, or 0 where m == -inf
 *   vkeep(x, base, lo, hi)   x where base + lane is in [lo, hi), -inf elsewhere
 *   vhmax(x) vhsum(x)        horizontal max / sum as float
 *   vtranspose(r)            transpose the VL x VL block held in r[VL] in place
 *   NV (vectors per query tile, BR = NV * VL), MJ (rows per "ka" tile), MC (rows per "kc"
 *   tile), MB x NB (rows x vectors per "kb" tile), BC (keys per block), ROWS_MAX (tiles with
 *   at most this many rows take the row kernel)
 *   FN(name)                 the ISA suffix for function names
 *
 * The tails of the tiled loops (the rows or vectors left after whole tiles) are switches over
 * tiles of a compile-time size, so that each size gets registers of its own; their cases are
 * generated from the tile sizes (TAIL_CASES), and their default, unreachable by construction,
 * runs tiles of one row (or vector) at a time, the same sums, so no size can skip a row.
 */
#ifndef ATTN_FAST_ISA
#error "attn_fast.h is included by the per-ISA kernel files only"
#endif

#include <math.h>
#include <pthread.h>
#include <string.h>

#define BR (NV * VL)
#define LOG2E 1.4426950408889634f
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int rup(int x, int m) { return (x + m - 1) / m * m; }

/* TAIL_CASES(T, C) expands to C(1) C(2) ... C(T - 1): the cases of a tail of fewer than T rows
 * (or vectors), for T a literal from 1 to 8. */
#define TAIL_CASES(T, C) TAIL_CAT(TAIL_UPTO_, T)(C)
#define TAIL_CAT(a, b) TAIL_CAT2(a, b)
#define TAIL_CAT2(a, b) a##b
#define TAIL_UPTO_1(C)
#define TAIL_UPTO_2(C) C(1)
#define TAIL_UPTO_3(C) TAIL_UPTO_2(C) C(2)
#define TAIL_UPTO_4(C) TAIL_UPTO_3(C) C(3)
#define TAIL_UPTO_5(C) TAIL_UPTO_4(C) C(4)
#define TAIL_UPTO_6(C) TAIL_UPTO_5(C) C(5)
#define TAIL_UPTO_7(C) TAIL_UPTO_6(C) C(6)
#define TAIL_UPTO_8(C) TAIL_UPTO_7(C) C(7)
_Static_assert(MJ >= 1 && MJ <= 8 && MC >= 1 && MC <= 8 && MB >= 1 && MB <= 8 && NB >= 1 && NB <= 8,
               "tile sizes beyond TAIL_CASES' range: extend TAIL_UPTO_*");

/* ------------------------------------------------------------------------------------------
 * Kernel "ka": C (nj, BR) = X (nj, d) . Y (d, BR). X rows at x + r*xs; Y and C packed with
 * row stride BR. mx (NV vectors), if not NULL, gets the maximum of each column of C folded in
 * (the forward's block maximum, from the registers instead of a pass over C). */
ALWAYS_INLINE void ka_tile(int mj, const float *x, int64_t xs, const float *y, int d, float *c, vf *mx) {
    vf acc[MJ][NV];
    UNROLL for (int r = 0; r < mj; r++) UNROLL for (int v = 0; v < NV; v++) acc[r][v] = vzero();
    for (int k = 0; k < d; k++) {
        vf yv[NV];
        UNROLL for (int v = 0; v < NV; v++) yv[v] = vload(y + (size_t)k * BR + v * VL);
        UNROLL for (int r = 0; r < mj; r++) {
            vf xb = vbcast(x + r * xs + k);
            UNROLL for (int v = 0; v < NV; v++) acc[r][v] = vfma(xb, yv[v], acc[r][v]);
        }
    }
    UNROLL for (int r = 0; r < mj; r++) UNROLL for (int v = 0; v < NV; v++) vstore(c + r * BR + v * VL, acc[r][v]);
    if (mx)
        UNROLL for (int v = 0; v < NV; v++) {
            vf t = acc[0][v];
            UNROLL for (int r = 1; r < mj; r++) t = vmax(t, acc[r][v]);
            mx[v] = vmax(mx[v], t);
        }
}

static void ka(int nj, const float *x, int64_t xs, const float *y, int d, float *c, vf *mx) {
    int r = 0;
    for (; r + MJ <= nj; r += MJ) ka_tile(MJ, x + r * xs, xs, y, d, c + r * BR, mx);
    x += r * xs, c += r * BR;
    switch (nj - r) {
    case 0: break;
#define KA_CASE(n) case n: ka_tile(n, x, xs, y, d, c, mx); break;
        TAIL_CASES(MJ, KA_CASE)
#undef KA_CASE
    default: for (int i = 0; i < nj - r; i++) ka_tile(1, x + i * xs, xs, y, d, c + i * BR, mx); break;
    }
}

/* ------------------------------------------------------------------------------------------
 * Kernel "kc": O (no, BR) = O * alpha + X^T (no, nj) . P (nj, BR), with X (nj, >= no) rows at
 * x + k*xs (its columns are O's rows), P packed with row stride BR, O rows at stride BR.
 * alpha (NV vectors) may be NULL for 1. */
ALWAYS_INLINE void kc_tile(int mc, const float *x, int64_t xs, const float *p, int nj, float *o, const vf *alpha) {
    vf acc[MC][NV];
    UNROLL for (int r = 0; r < mc; r++) UNROLL for (int v = 0; v < NV; v++) {
        acc[r][v] = vload(o + r * BR + v * VL);
        if (alpha) acc[r][v] = vmul(acc[r][v], alpha[v]);
    }
    for (int k = 0; k < nj; k++) {
        vf pv[NV];
        UNROLL for (int v = 0; v < NV; v++) pv[v] = vload(p + (size_t)k * BR + v * VL);
        UNROLL for (int r = 0; r < mc; r++) {
            vf xb = vbcast(x + k * xs + r);
            UNROLL for (int v = 0; v < NV; v++) acc[r][v] = vfma(xb, pv[v], acc[r][v]);
        }
    }
    UNROLL for (int r = 0; r < mc; r++) UNROLL for (int v = 0; v < NV; v++) vstore(o + r * BR + v * VL, acc[r][v]);
}

static void kc(int no, const float *x, int64_t xs, const float *p, int nj, float *o, const vf *alpha) {
    int r = 0;
    for (; r + MC <= no; r += MC) kc_tile(MC, x + r, xs, p, nj, o + r * BR, alpha);
    x += r, o += r * BR;
    switch (no - r) {
    case 0: break;
#define KC_CASE(n) case n: kc_tile(n, x, xs, p, nj, o, alpha); break;
        TAIL_CASES(MC, KC_CASE)
#undef KC_CASE
    default: for (int i = 0; i < no - r; i++) kc_tile(1, x + i, xs, p, nj, o + i * BR, alpha); break;
    }
}

/* ------------------------------------------------------------------------------------------
 * Kernel "kb": A (nj, ncol) += P (nj, ni) . Y (ni, ncol), P packed with row stride BR (only
 * its first ni columns used), Y rows at y + i*ys, A rows at stride as. ncol is a multiple of
 * VL (callers pad). */
ALWAYS_INLINE void kb_tile(int mb, int nb, const float *p, int ni, const float *y, int64_t ys, float *a, int64_t as) {
    vf acc[MB][NB];
    UNROLL for (int r = 0; r < mb; r++) UNROLL for (int v = 0; v < nb; v++) acc[r][v] = vload(a + r * as + v * VL);
    for (int i = 0; i < ni; i++) {
        vf yv[NB];
        UNROLL for (int v = 0; v < nb; v++) yv[v] = vload(y + i * ys + v * VL);
        UNROLL for (int r = 0; r < mb; r++) {
            vf pb = vbcast(p + r * BR + i);
            UNROLL for (int v = 0; v < nb; v++) acc[r][v] = vfma(pb, yv[v], acc[r][v]);
        }
    }
    UNROLL for (int r = 0; r < mb; r++) UNROLL for (int v = 0; v < nb; v++) vstore(a + r * as + v * VL, acc[r][v]);
}

ALWAYS_INLINE void kb_rows(int mb, const float *p, int ni, const float *y, int64_t ys, int ncol, float *a, int64_t as) {
    int c = 0;
    for (; c + NB * VL <= ncol; c += NB * VL) kb_tile(mb, NB, p, ni, y + c, ys, a + c, as);
    switch ((ncol - c) / VL) {
    case 0: break;
#define KB_CASE(n) case n: kb_tile(mb, n, p, ni, y + c, ys, a + c, as); break;
        TAIL_CASES(NB, KB_CASE)
#undef KB_CASE
    default: for (; c < ncol; c += VL) kb_tile(mb, 1, p, ni, y + c, ys, a + c, as); break;
    }
}

static void kb(int nj, const float *p, int ni, const float *y, int64_t ys, int ncol, float *a, int64_t as) {
    int r = 0;
    for (; r + MB <= nj; r += MB) kb_rows(MB, p + r * BR, ni, y, ys, ncol, a + r * as, as);
    p += r * BR, a += r * as;
    switch (nj - r) {
    case 0: break;
#define KBR_CASE(n) case n: kb_rows(n, p, ni, y, ys, ncol, a, as); break;
        TAIL_CASES(MB, KBR_CASE)
#undef KBR_CASE
    default: for (int i = 0; i < nj - r; i++) kb_rows(1, p + i * BR, ni, y, ys, ncol, a + i * as, as); break;
    }
}

/* ------------------------------------------------------------------------------------------
 * Masks on one block of S^T: keys [jb, jb + nj) (rows), queries [ib, ib + nr) (lanes; lanes
 * past nr are padding and left alone). Key ranges (key_len, causal and window bounds) are
 * applied by the callers' loop limits; here only what cuts through the block. */

/* The block mask's class of query tile ib / BR against keys [jb, jb + nj): the key blocks of
 * BC it overlaps, combined (empty if all are, full if all are, else partial). */
static inline int tile_class(const attn__head *h, int ib, int jb, int nj) {
    const uint8_t *row = h->tiles + (size_t)(ib / BR) * h->tiles_nk;
    int c0 = row[jb / BC], c1 = row[(jb + nj - 1) / BC];
    return c0 == c1 ? c0 : ATTN__TILE_PARTIAL;
}

/* Do query rows [ib, ib + nr) and keys [jb, jb + nj) all lie in one document? */
static inline int one_doc(const attn__head *h, int ib, int nr, int jb, int nj) {
    int lo, hi;
    attn__doc_range(h, ib, &lo, &hi);
    return ib + nr <= hi && jb >= lo && jb + nj <= hi;
}

/* The structural cuts through the block: causal (keys past the first row, beyond the prefix)
 * and window. */
static inline int block_cut(const attn__head *h, int ib, int nr, int jb, int nj) {
    if (h->causal && jb + nj - 1 > ib + h->coff && jb + nj > h->prefix) return 1;
    if (h->window > 0 && jb <= ib + nr - 1 + h->coff - h->window) return 1;
    return 0;
}

/* Does the block need element-wise work? */
static inline int block_masked(const attn__head *h, int ib, int nr, int jb, int nj) {
    if (h->bmask || h->bias || h->ew) return 1;
    if (block_cut(h, ib, nr, jb, nj)) return 1;
    if (h->doc && !one_doc(h, ib, nr, jb, nj)) return 1;
    if (h->tiles && tile_class(h, ib, jb, nj) != ATTN__TILE_FULL) return 1;
    return 0;
}

/* The user's score_mod_tile on the block st (nj, BR) of rows [ib, ib + nr) and keys
 * [jb, jb + nj), and its derivative into gt if not NULL. If the block may hold hidden scores
 * (guard), they are kept -inf (and their derivative 1) whatever the callback wrote there. */
static void user_tile(const attn__head *h, float *st, float *gt, int ib, int nr, int jb, int nj, int guard) {
    float keep[BC * BR];
    size_t n = (size_t)nj * BR;
    if (guard) memcpy(keep, st, n * sizeof *keep);
    if (gt) h->score_mod_tile_bwd(st, gt, BR, nr, nj, h->b, h->hh, ib, jb, h->ctx);
    h->score_mod_tile(st, BR, nr, nj, h->b, h->hh, ib, jb, h->ctx);
    if (!guard) return;
    for (size_t x = 0; x < n; x++) st[x] = keep[x] == -INFINITY ? -INFINITY : st[x];
    if (gt)
        for (size_t x = 0; x < n; x++) gt[x] = keep[x] == -INFINITY ? 1.0f : gt[x];
}

/* Masks and modifiers of one block; gt (nj, BR), if not NULL, gets each score's derivative
 * d s / d (scale q . k) for the backward (1 where nothing modifies the score). */
static void mask_block(const attn__head *h, float *st, float *gt, int ib, int nr, int jb, int nj) {
    if (gt)
        for (size_t x = 0; x < (size_t)nj * BR; x++) gt[x] = 1.0f;
    if (block_cut(h, ib, nr, jb, nj)) {
        for (int jj = 0; jj < nj; jj++) {
            int j = jb + jj;
            /* visible lanes: i >= j - coff (causal, past the prefix) and i < j + window - coff */
            int lo = h->causal && j >= h->prefix ? j - h->coff - ib : 0;
            int hi = h->window > 0 ? j + h->window - h->coff - ib : BR;
            float *row = st + jj * BR;
            UNROLL for (int v = 0; v < NV; v++) vstore(row + v * VL, vkeep(vload(row + v * VL), v * VL, lo, hi));
        }
    }
    int check_mm = h->mask_mod && (!h->tiles || tile_class(h, ib, jb, nj) != ATTN__TILE_FULL);
    int docs = h->doc && !one_doc(h, ib, nr, jb, nj);
    /* The built-in modifiers vectorise (ALiBi, T5 from its table by i - j, soft-capping)
     * unless a boolean mask, mask_mod or score_mod needs each element in turn; then only
     * documents and the bias go element by element. score_mod_tile takes the whole block
     * between the built-ins' vector passes (element by element with the rest otherwise). */
    int vec = !h->bmask && !check_mm && !h->score_mod;
    if (!h->bmask && !h->bias && !h->ew && !check_mm && !docs) return;
    if (!vec || docs || h->bias) {
        int lo[BR], hi[BR]; /* each query's document */
        for (int l = 0; l < nr; l++) {
            lo[l] = 0, hi[l] = jb + nj;
            if (docs) attn__doc_range(h, ib + l, &lo[l], &hi[l]);
        }
        for (int jj = 0; jj < nj; jj++) { /* along the rows of S^T: contiguous */
            for (int l = 0; l < nr; l++) {
                int i = ib + l, j = jb + jj;
                float *x = st + jj * BR + l;
                if (*x == -INFINITY) continue;
                if (j < lo[l] || j >= hi[l]) *x = -INFINITY;
                else if (!vec) *x = attn__score_elem(h, i, j, *x, check_mm, gt ? gt + jj * BR + l : NULL);
                else if (h->bias) *x += h->bias[(int64_t)i * h->bias_rs + (int64_t)j * h->bias_cs];
            }
        }
    }
    const int user = h->score_mod_tile != NULL; /* with vec: applied to the whole block */
    if (!vec || (!h->alibi && !h->t5 && h->softcap <= 0.0f && !user)) return;
    static const float iota[BR] = {
#define IOTA4(k) k, k + 1, k + 2, k + 3
        IOTA4(0), IOTA4(4), IOTA4(8), IOTA4(12),
#if BR > 16
        IOTA4(16), IOTA4(20), IOTA4(24), IOTA4(28), IOTA4(32), IOTA4(36), IOTA4(40), IOTA4(44),
        IOTA4(48), IOTA4(52), IOTA4(56), IOTA4(60),
#endif
#undef IOTA4
    };
    const vf cap = vset1(h->softcap), inv = vset1(h->softcap > 0.0f ? 1.0f / h->softcap : 0.0f);
    const vf one = vset1(1.0f), two = vset1(2.0f), k2 = vset1(2.0f * LOG2E), slope = vset1(h->slope);
    /* Two passes with the user's tile between them (ALiBi and T5 come before score_mod,
     * soft-capping after it), one pass without. */
    for (int pass = 0; pass < 1 + user; pass++) {
        int add = pass == 0 && (h->alibi || h->t5), capped = (pass == user) && h->softcap > 0.0f;
        if (pass == 1) user_tile(h, st, gt, ib, nr, jb, nj, block_cut(h, ib, nr, jb, nj) || docs || h->bias);
        if (!add && !capped) continue;
        for (int jj = 0; jj < nj; jj++) {
            float *row = st + jj * BR;
            UNROLL for (int v = 0; v < NV; v++) {
                vf x = vload(row + v * VL);
                if (add && h->alibi) { /* slope (j - i), i = ib + lane: exact integers in float */
                    vf r = vsub(vset1((float)(jb + jj - ib)), vload(iota + v * VL));
                    if (h->alibi == 2) r = vsub(vzero(), vmax(r, vsub(vzero(), r))); /* -|j - i| */
                    x = vadd(x, vmul(slope, r));
                }
                if (add && h->t5) /* the bias of i - j for lanes i = ib + v VL + lane: consecutive entries */
                    x = vadd(x, vload(h->t5_rev + (ib + v * VL - (jb + jj))));
                if (capped) {
                    /* cap tanh(x / cap), tanh(y) = 1 - 2 / (exp(2y) + 1); -inf (hidden) stays -inf;
                     * the derivative multiplies score_mod's (1 without one) */
                    vf t = vsub(one, vdiv(two, vadd(vexp2(vmul(vmul(x, inv), k2)), one)));
                    if (gt) vstore(gt + jj * BR + v * VL, vmul(vload(gt + jj * BR + v * VL), vsub(one, vmul(t, t))));
                    x = vadd(vmul(cap, t), vsub(x, vsafe(x)));
                }
                vstore(row + v * VL, x);
            }
        }
    }
}

/* Dropout of one block of weights (nj, BR), in place; f (nj, BR) gets the factors if not NULL. */
static void drop_block(const attn__head *h, float *st, float *f, int ib, int nr, int jb, int nj) {
    for (int jj = 0; jj < nj; jj++)
        for (int l = 0; l < nr; l++) {
            float k = attn__drop_factor(h, ib + l, jb + jj);
            if (st) st[jj * BR + l] *= k;
            if (f) f[jj * BR + l] = k;
        }
}

/* The key range query rows [ib, ie) can see within [j0, j1): [*js, *je). */
static inline void key_range(const attn__head *h, int ib, int ie, int j0, int j1, int *js, int *je) {
    attn__key_range(h, ib, ie, j0, j1, js, je);
}

/* ------------------------------------------------------------------------------------------
 * Forward, tile path: query rows [ib, ie), ie - ib <= BR, keys [j0, j1). */

ALWAYS_INLINE size_t fwd_tile_floats(int d, int dv) { return (size_t)(d + BC + dv + 4) * BR; }

/* Pack rows [ib, ib + nr) of X (rows at x + i*xs, n columns) transposed and scaled into
 * xt (n, BR); lanes past nr are 0. */
static void pack_t(const float *x, int64_t xs, int ib, int nr, int n, float s, float *xt) {
    const vf sv = vset1(s);
    for (int lb = 0; lb < BR; lb += VL)
        for (int cb = 0; cb < n; cb += VL) {
            int nc = imin(VL, n - cb);
            vf t[VL];
            UNROLL for (int k = 0; k < VL; k++)
                t[k] = lb + k < nr ? vmul(vloadn(x + (int64_t)(ib + lb + k) * xs + cb, nc), sv) : vzero();
            vtranspose(t);
            for (int k = 0; k < nc; k++) vstore(xt + (size_t)(cb + k) * BR + lb, t[k]);
        }
}

/* The output rows [0, nr) from O^T (dv, BR): o_r[c] = ot[c][r] * inv[r], VL x VL blocks
 * transposed in registers. */
static void store_t(const float *ot, int dv, int nr, const float *inv, float *o, int64_t o_rs) {
    for (int lb = 0; lb < nr; lb += VL) {
        int nl = imin(VL, nr - lb);
        for (int cb = 0; cb < dv; cb += VL) {
            int nc = imin(VL, dv - cb);
            vf t[VL];
            UNROLL for (int k = 0; k < VL; k++) t[k] = k < nc ? vload(ot + (size_t)(cb + k) * BR + lb) : vzero();
            vtranspose(t);
            for (int l = 0; l < nl; l++) {
                vf x = vmul(t[l], vset1(inv[lb + l]));
                if (nc == VL) vstore(o + (int64_t)(lb + l) * o_rs + cb, x);
                else vstoren(o + (int64_t)(lb + l) * o_rs + cb, x, nc);
            }
        }
    }
}

/* Online softmax of one block: st (nj, BR) scores -> probabilities relative to the new
 * running maximum; m, l (BR) updated; alpha = exp(m_old - m_new) for the output. bmax, if
 * not NULL, is the block's maximum per lane already (from "ka"). Rows outer and the NV
 * vectors inner, so that the maximum and the sums run NV independent chains. */
static void softmax_block(float *st, int nj, float *m, float *l, vf *alpha, const vf *bmax) {
    const vf l2e = vset1(LOG2E);
    vf mn[NV], ms[NV], s0[NV], s1[NV];
    UNROLL for (int v = 0; v < NV; v++) mn[v] = bmax ? bmax[v] : vset1(-INFINITY);
    if (!bmax)
        for (int jj = 0; jj < nj; jj++) UNROLL for (int v = 0; v < NV; v++) mn[v] = vmax(mn[v], vload(st + jj * BR + v * VL));
    UNROLL for (int v = 0; v < NV; v++) {
        vf mo = vload(m + v * VL);
        mn[v] = vmax(mo, mn[v]), ms[v] = vsafe(mn[v]);
        alpha[v] = vexp2(vmul(vsub(mo, ms[v]), l2e));
        s0[v] = vzero(), s1[v] = vzero();
    }
    int jj = 0;
    for (; jj + 2 <= nj; jj += 2)
        UNROLL for (int v = 0; v < NV; v++) {
            float *r0 = st + jj * BR + v * VL, *r1 = r0 + BR;
            vf p0 = vexp2(vmul(vsub(vload(r0), ms[v]), l2e)), p1 = vexp2(vmul(vsub(vload(r1), ms[v]), l2e));
            vstore(r0, p0), vstore(r1, p1);
            s0[v] = vadd(s0[v], p0), s1[v] = vadd(s1[v], p1);
        }
    if (jj < nj)
        UNROLL for (int v = 0; v < NV; v++) {
            float *r0 = st + jj * BR + v * VL;
            vf p0 = vexp2(vmul(vsub(vload(r0), ms[v]), l2e));
            vstore(r0, p0);
            s0[v] = vadd(s0[v], p0);
        }
    UNROLL for (int v = 0; v < NV; v++) {
        vstore(l + v * VL, vfma(vload(l + v * VL), alpha[v], vadd(s0[v], s1[v])));
        vstore(m + v * VL, mn[v]);
    }
}

/* Probabilities of one block from a known log-sum-exp (+inf for an empty row). */
static void prob_block(float *st, int nj, const float *lse) {
    const vf l2e = vset1(LOG2E);
    UNROLL for (int v = 0; v < NV; v++) {
        vf ls = vload(lse + v * VL);
        for (int jj = 0; jj < nj; jj++) {
            float *r = st + jj * BR + v * VL;
            vstore(r, vexp2(vmul(vsub(vload(r), ls), l2e)));
        }
    }
}

/* The weights of query rows [ib, ib + nr) over the visible key blocks [js, je): each block's
 * scores again (qt: the packed queries; st: (BC, BR) scratch), masked and modified as the
 * forward's, then p = exp(s - lse2) (+inf: a row of zeros); row r at prow + r * p_rs (+ j).
 * The forward's second pass and attn_weights' probs (attn_probs.h) both run this. */
static void probs_blocks(const attn__head *h, const float *qt, float *st, const float *lse2, int ib, int nr, int js,
                         int je, float *prow, int64_t p_rs) {
    for (int jb = js; jb < je; jb += BC) {
        int nj = imin(BC, je - jb);
        if (h->tiles && tile_class(h, ib, jb, nj) == ATTN__TILE_EMPTY) continue;
        ka(nj, h->k + (int64_t)jb * h->k_rs, h->k_rs, qt, h->d, st, NULL);
        if (block_masked(h, ib, nr, jb, nj)) mask_block(h, st, NULL, ib, nr, jb, nj);
        prob_block(st, nj, lse2);
        for (int r = 0; r < nr; r++) {
            float *pr = prow + (int64_t)r * p_rs + jb;
            for (int jj = 0; jj < nj; jj++) pr[jj] = st[jj * BR + r];
        }
    }
}

static void fwd_tile(const attn__head *h, int ib, int ie, int j0, int j1, float *o, int64_t o_rs, float *lse,
                     float *p, int64_t p_rs, float *ws) {
    const int d = h->d, dv = h->dv, nr = ie - ib;
    float *qt = ws, *st = qt + (size_t)d * BR, *ot = st + (size_t)BC * BR, *m = ot + (size_t)dv * BR, *l = m + BR,
          *lse2 = l + BR;
    pack_t(h->q, h->q_rs, ib, nr, d, h->scale, qt);
    memset(ot, 0, (size_t)dv * BR * sizeof *ot);
    for (int v = 0; v < NV; v++) vstore(m + v * VL, vset1(-INFINITY)), vstore(l + v * VL, vzero());
    int js, je;
    key_range(h, ib, ie, j0, j1, &js, &je);
    vf alpha[NV];
    for (int jb = js; jb < je; jb += BC) {
        int nj = imin(BC, je - jb);
        if (h->tiles && tile_class(h, ib, jb, nj) == ATTN__TILE_EMPTY) continue;
        /* the block maximum from the registers of "ka" unless masks change the scores after it */
        int masked = block_masked(h, ib, nr, jb, nj);
        vf bmax[NV];
        UNROLL for (int v = 0; v < NV; v++) bmax[v] = vset1(-INFINITY);
        ka(nj, h->k + (int64_t)jb * h->k_rs, h->k_rs, qt, d, st, masked ? NULL : bmax);
        if (masked) mask_block(h, st, NULL, ib, nr, jb, nj);
        softmax_block(st, nj, m, l, alpha, masked ? NULL : bmax);
        if (h->drop > 0.0f) drop_block(h, st, NULL, ib, nr, jb, nj);
        kc(dv, h->v + (int64_t)jb * h->v_rs, h->v_rs, st, nj, ot, alpha);
    }
    float *inv = st; /* free now */
    for (int r = 0; r < nr; r++) {
        int i = ib + r;
        if (l[r] > 0.0f || isnan(l[r])) { /* a NaN or +inf score makes l NaN: NaN out */
            inv[r] = 1.0f / l[r];
            lse[i] = lse2[r] = m[r] + logf(l[r]);
        } else { /* no visible key: the output is 0 */
            inv[r] = 0.0f;
            lse[i] = -INFINITY;
            lse2[r] = INFINITY;
        }
    }
    store_t(ot, dv, nr, inv, o + (int64_t)ib * o_rs, o_rs);
    for (int r = 0; r < nr; r++)
        if (inv[r] == 0.0f) memset(o + (int64_t)(ib + r) * o_rs, 0, (size_t)dv * sizeof *o);
    if (!p) return;
    /* The weights, when asked for: a second pass recomputing the scores of every visible
     * block, normalised with the final log-sum-exp; hidden entries are 0. */
    for (int r = 0; r < nr; r++) memset(p + (int64_t)(ib + r) * p_rs + j0, 0, (size_t)(j1 - j0) * sizeof *p);
    for (int r = nr; r < BR; r++) lse2[r] = INFINITY;
    probs_blocks(h, qt, st, lse2, ib, nr, js, je, p + (int64_t)ib * p_rs, p_rs);
}

#include "kernels/x86/attn_rows.h" /* the row path: fwd_rows, row_scores, row_mask */

/* ------------------------------------------------------------------------------------------
 * The forward entry points. */

static size_t FN(scratch)(int Nk, int d, int dv) {
    (void)Nk;
    size_t a = fwd_tile_floats(d, dv), b = fwd_rows_floats(d, dv);
    return (a > b ? a : b) + 64;
}

static void FN(fwd_part)(const attn__head *h, int i0, int i1, int j0, int j1, float *o, int64_t o_rs, float *lse,
                         float *p, int64_t p_rs, float *scratch) {
    for (int ib = i0; ib < i1; ib += BR) {
        int ie = imin(i1, ib + BR);
        if (ie - ib <= ROWS_MAX) fwd_rows(h, ib, ie, j0, j1, o, o_rs, lse, p, p_rs, scratch);
        else fwd_tile(h, ib, ie, j0, j1, o, o_rs, lse, p, p_rs, scratch);
    }
}

static void FN(fwd)(const attn__head *h, int i0, int i1, float *o, int64_t o_rs, float *lse, float *p, int64_t p_rs,
                    float *scratch) {
    FN(fwd_part)(h, i0, i1, 0, h->Nk, o, o_rs, lse, p, p_rs, scratch);
}

/* ------------------------------------------------------------------------------------------
 * Backward: keys [j0, j1) against every query, one key block at a time. */

/* Row dot products as FMA chains over the columns, the order of "ka" (VL rows at a time,
 * transposed in registers). */
static void FN(rowdot)(int n, int len, const float *a, int64_t a_rs, const float *b, int64_t b_rs, float *out) {
    for (int i0 = 0; i0 < n; i0 += VL) {
        int nr = imin(VL, n - i0);
        vf acc = vzero();
        for (int cb = 0; cb < len; cb += VL) {
            int nc = imin(VL, len - cb);
            vf x[VL], y[VL];
            UNROLL for (int k = 0; k < VL; k++) {
                x[k] = k < nr ? vloadn(a + (int64_t)(i0 + k) * a_rs + cb, nc) : vzero();
                y[k] = k < nr ? vloadn(b + (int64_t)(i0 + k) * b_rs + cb, nc) : vzero();
            }
            vtranspose(x);
            vtranspose(y);
            for (int c = 0; c < nc; c++) acc = vfma(x[c], y[c], acc);
        }
        vstoren(out + i0, acc, nr);
    }
}

typedef struct {
    int nt, nqp, dp, dvp;
    int own_q, own_do; /* Q / dO rows copied (padded) rather than read in place */
    size_t qt, dot, dqt, lse2, dl, st, dpt, gt, ft, dka, dva, qr, dor, total;
} bwd_layout;

static bwd_layout bwd_plan(int Nq, int d, int dv) {
    bwd_layout L;
    L.nt = (Nq + BR - 1) / BR, L.nqp = L.nt * BR, L.dp = rup(d, VL), L.dvp = rup(dv, VL);
    L.own_q = d % VL != 0, L.own_do = dv % VL != 0;
    size_t at = 0;
    L.qt = at, at += (size_t)L.nqp * d;
    L.dot = at, at += (size_t)L.nqp * dv;
    L.dqt = at, at += (size_t)L.nqp * d;
    L.lse2 = at, at += (size_t)L.nqp;
    L.dl = at, at += (size_t)L.nqp;
    L.st = at, at += (size_t)BC * BR;
    L.dpt = at, at += (size_t)BC * BR;
    L.gt = at, at += (size_t)BC * BR; /* the modifiers' derivatives */
    L.ft = at, at += (size_t)BC * BR; /* dropout's factors, then the dropped weights */
    L.dka = at, at += (size_t)BC * L.dp;
    L.dva = at, at += (size_t)BC * L.dvp;
    L.qr = at, at += L.own_q ? (size_t)Nq * L.dp : 0;
    L.dor = at, at += L.own_do ? (size_t)Nq * L.dvp : 0;
    L.total = at + 64;
    return L;
}

static size_t FN(bwd_scratch)(int Nq, int Nk, int d, int dv) {
    (void)Nk;
    return bwd_plan(Nq, d, dv).total;
}

/* Copy rows of X (n columns, stride xs) into padded rows of np columns. */
static void pad_rows(const float *x, int64_t xs, int rows, int n, int np, float *out) {
    for (int r = 0; r < rows; r++) {
        memcpy(out + (size_t)r * np, x + (int64_t)r * xs, (size_t)n * sizeof *out);
        memset(out + (size_t)r * np + n, 0, (size_t)(np - n) * sizeof *out);
    }
}

static void FN(bwd)(const attn__head *h, const float *lse, const float *delta, const float *dO, int64_t do_rs,
                    int j0, int j1, float *dq, int64_t dq_rs, float *dk, int64_t dk_rs, float *dv, int64_t dv_rs,
                    float *ws) {
    const int Nq = h->Nq, d = h->d, dvn = h->dv;
    bwd_layout L = bwd_plan(Nq, d, dvn);
    float *qt = ws + L.qt, *dot = ws + L.dot, *dqt = ws + L.dqt, *lse2 = ws + L.lse2, *dl = ws + L.dl;
    float *st = ws + L.st, *dpt = ws + L.dpt, *dka = ws + L.dka, *dva = ws + L.dva;
    float *gt = h->ew ? ws + L.gt : NULL, *ft = ws + L.ft;
    const float *qr = h->q, *dor = dO;
    int64_t qrs = h->q_rs, dors = do_rs;
    if (L.own_q && dk) pad_rows(h->q, h->q_rs, Nq, d, L.dp, ws + L.qr), qr = ws + L.qr, qrs = L.dp;
    if (L.own_do && dv) pad_rows(dO, do_rs, Nq, dvn, L.dvp, ws + L.dor), dor = ws + L.dor, dors = L.dvp;
    /* Which query tiles have any row that sees a key: the rest are skipped. */
    for (int t = 0; t < L.nt; t++) {
        int ib = t * BR, nr = imin(BR, Nq - ib);
        pack_t(h->q, h->q_rs, ib, nr, d, h->scale, qt + (size_t)t * d * BR);
        pack_t(dO, do_rs, ib, nr, dvn, 1.0f, dot + (size_t)t * dvn * BR);
    }
    for (int i = 0; i < L.nqp; i++) {
        int real = i < Nq && lse[i] != -INFINITY;
        lse2[i] = real ? lse[i] : INFINITY;
        dl[i] = real ? delta[i] : 0.0f;
    }
    if (dq) memset(dqt, 0, (size_t)L.nqp * d * sizeof *dqt);
    int je_all = imin(j1, h->key_len);
    for (int jb = j0; jb < je_all; jb += BC) {
        int nj = imin(BC, je_all - jb);
        if (dk) memset(dka, 0, (size_t)nj * L.dp * sizeof *dka);
        if (dv) memset(dva, 0, (size_t)nj * L.dvp * sizeof *dva);
        /* Query tiles that can see keys [jb, jb + nj). */
        int t0 = 0, t1 = L.nt;
        if (h->causal && jb >= h->prefix) t0 = imax(0, (jb - h->coff) / BR);
        if (h->window > 0) t1 = imin(t1, imax(0, (jb + nj - 1 + h->window - 1 - h->coff) / BR + 1));
        if (h->doc) { /* Nq == Nk: the queries of the documents of these keys */
            int lo, hi, lo2, hi2;
            attn__doc_range(h, jb, &lo, &hi);
            attn__doc_range(h, jb + nj - 1, &lo2, &hi2);
            t0 = imax(t0, lo / BR), t1 = imin(t1, (hi2 - 1) / BR + 1);
        }
        const float *kb_ = h->k + (int64_t)jb * h->k_rs, *vb_ = h->v + (int64_t)jb * h->v_rs;
        for (int t = t0; t < t1; t++) {
            int ib = t * BR, nr = imin(BR, Nq - ib);
            if (h->tiles && tile_class(h, ib, jb, nj) == ATTN__TILE_EMPTY) continue;
            ka(nj, kb_, h->k_rs, qt + (size_t)t * d * BR, d, st, NULL);
            if (block_masked(h, ib, nr, jb, nj)) mask_block(h, st, gt, ib, nr, jb, nj);
            prob_block(st, nj, lse2 + ib);
            const float *pd = st; /* the weights after dropout, for dV */
            if (h->drop > 0.0f) {
                memset(ft, 0, (size_t)nj * BR * sizeof *ft);
                drop_block(h, NULL, ft, ib, nr, jb, nj);
            }
            if (!dk && !dq) {
                if (h->drop > 0.0f) {
                    for (size_t x = 0; x < (size_t)nj * BR; x++) ft[x] *= st[x];
                    pd = ft;
                }
                if (dv) kb(nj, pd, nr, dor + (int64_t)ib * dors, dors, L.dvp, dva, L.dvp);
                continue;
            }
            /* dP^T = V_blk dO^T (times dropout's factors), then dS^T = P^T (dP^T - delta)
             * (times the modifiers' derivatives) */
            ka(nj, vb_, h->v_rs, dot + (size_t)t * dvn * BR, dvn, dpt, NULL);
            if (h->drop > 0.0f) {
                for (size_t x = 0; x < (size_t)nj * BR; x++) dpt[x] *= ft[x], ft[x] *= st[x];
                pd = ft;
            }
            if (dv) kb(nj, pd, nr, dor + (int64_t)ib * dors, dors, L.dvp, dva, L.dvp);
            UNROLL for (int v = 0; v < NV; v++) {
                vf dlv = vload(dl + ib + v * VL);
                for (int jj = 0; jj < nj; jj++) {
                    float *r = dpt + jj * BR + v * VL;
                    vstore(r, vmul(vload(st + jj * BR + v * VL), vsub(vload(r), dlv)));
                }
            }
            if (gt)
                for (size_t x = 0; x < (size_t)nj * BR; x++) dpt[x] *= gt[x];
            if (dk) kb(nj, dpt, nr, qr + (int64_t)ib * qrs, qrs, L.dp, dka, L.dp);
            if (dq) kc(d, kb_, h->k_rs, dpt, nj, dqt + (size_t)t * d * BR, NULL);
        }
        for (int jj = 0; jj < nj; jj++) {
            int j = jb + jj;
            if (dk) {
                float *dkj = dk + (int64_t)j * dk_rs;
                const float *a = dka + (size_t)jj * L.dp;
                for (int c = 0; c < d; c++) dkj[c] += a[c] * h->scale;
            }
            if (dv) {
                float *dvj = dv + (int64_t)j * dv_rs;
                const float *a = dva + (size_t)jj * L.dvp;
                for (int c = 0; c < dvn; c++) dvj[c] += a[c];
            }
        }
    }
    if (dq)
        for (int i = 0; i < Nq; i++) {
            const float *a = dqt + (size_t)(i / BR) * d * BR + i % BR;
            float *dqi = dq + (int64_t)i * dq_rs;
            for (int c = 0; c < d; c++) dqi[c] += a[c * BR] * h->scale;
        }
}

/* ------------------------------------------------------------------------------------------
 * sgemm: C (M, N) = alpha op(A) op(B) + beta C for the linear layers. Tiles of MB rows x NB
 * vectors ("kb"'s shape: broadcast A, rows of B), over column panels of NB * VL; op(B) is
 * packed per panel when transposed. Each element is one FMA chain over k in order, never
 * split, so the result does not depend on the tiling or on the thread count. */

typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int64_t lda, ldb, ldc;
    float *C;
    float *pack; /* transB: op(B) in column panels, K * SG_COLS floats each */
    int nrb, ncb; /* row blocks of SG_ROWS, column panels of NB * VL */
} sg_job;

#define SG_ROWS (MB * 16)
#define SG_COLS (NB * VL)

ALWAYS_INLINE void sg_tile(int mb, int nb, int ntail, const float *a, int64_t ars, int64_t acs, const float *b,
                           int64_t bs, int K, float *c, int64_t ldc, float alpha, float beta) {
    vf acc[MB][NB];
    UNROLL for (int r = 0; r < mb; r++) UNROLL for (int v = 0; v < nb; v++) acc[r][v] = vzero();
    for (int k = 0; k < K; k++) {
        vf bv[NB];
        UNROLL for (int v = 0; v < nb; v++) bv[v] = v == nb - 1 && ntail < VL ? vloadn(b + k * bs + v * VL, ntail) : vload(b + k * bs + v * VL);
        UNROLL for (int r = 0; r < mb; r++) {
            vf ab = vbcast(a + r * ars + k * acs);
            UNROLL for (int v = 0; v < nb; v++) acc[r][v] = vfma(ab, bv[v], acc[r][v]);
        }
    }
    vf va = vset1(alpha), vb = vset1(beta);
    UNROLL for (int r = 0; r < mb; r++) UNROLL for (int v = 0; v < nb; v++) {
        float *cp = c + r * ldc + v * VL;
        int n = v == nb - 1 ? ntail : VL;
        vf x = vmul(acc[r][v], va);
        if (beta != 0.0f) x = vfma(vloadn(cp, n), vb, x);
        if (n == VL) vstore(cp, x);
        else vstoren(cp, x, n);
    }
}

ALWAYS_INLINE void sg_rows(int mb, const sg_job *j, int m0, int n0, int ncol, const float *b, int64_t bs) {
    const float *a = j->ta ? j->A + m0 : j->A + (int64_t)m0 * j->lda;
    int64_t ars = j->ta ? 1 : j->lda, acs = j->ta ? j->lda : 1;
    float *c = j->C + (int64_t)m0 * j->ldc + n0;
    int nv = (ncol + VL - 1) / VL, ntail = ncol - (nv - 1) * VL;
    if (nv == NB && ntail == VL) {
        sg_tile(mb, NB, VL, a, ars, acs, b, bs, j->K, c, j->ldc, j->alpha, j->beta);
        return;
    }
    switch (nv) {
#define SG_CASE(n) case n: sg_tile(mb, n, ntail, a, ars, acs, b, bs, j->K, c, j->ldc, j->alpha, j->beta); break;
        TAIL_CASES(NB, SG_CASE)
        SG_CASE(NB)
#undef SG_CASE
    default:
        for (int v = 0; v < nv; v++)
            sg_tile(mb, 1, v == nv - 1 ? ntail : VL, a, ars, acs, b + v * VL, bs, j->K, c + v * VL, j->ldc, j->alpha, j->beta);
        break;
    }
}

/* op(B) transposed into panels: panel cb holds op(B)[k][n0 + n] at pack[(cb K + k) SG_COLS + n],
 * VL x VL blocks transposed in registers. */
static void sg_pack_task(void *ctx, int cb, int thread) {
    (void)thread;
    const sg_job *j = ctx;
    int n0 = cb * SG_COLS, ncol = imin(SG_COLS, j->N - n0);
    float *p = j->pack + (size_t)cb * j->K * SG_COLS;
    for (int k0 = 0; k0 < j->K; k0 += VL) {
        int nk = imin(VL, j->K - k0);
        for (int nb = 0; nb < SG_COLS; nb += VL) {
            vf t[VL];
            UNROLL for (int r = 0; r < VL; r++) t[r] = nb + r < ncol ? vloadn(j->B + (int64_t)(n0 + nb + r) * j->ldb + k0, nk) : vzero();
            vtranspose(t);
            for (int k = 0; k < nk; k++) vstore(p + (size_t)(k0 + k) * SG_COLS + nb, t[k]);
        }
    }
}

static void sg_task(void *ctx, int task, int thread) {
    (void)thread;
    const sg_job *j = ctx;
    int rb = task % j->nrb, cb = task / j->nrb;
    int m0 = rb * SG_ROWS, m1 = imin(j->M, m0 + SG_ROWS), n0 = cb * SG_COLS, ncol = imin(SG_COLS, j->N - n0);
    const float *b = j->B + n0;
    int64_t bs = j->ldb;
    if (j->tb) b = j->pack + (size_t)cb * j->K * SG_COLS, bs = SG_COLS;
    int m = m0;
    for (; m + MB <= m1; m += MB) sg_rows(MB, j, m, n0, ncol, b, bs);
    switch (m1 - m) {
    case 0: break;
#define SGR_CASE(n) case n: sg_rows(n, j, m, n0, ncol, b, bs); break;
        TAIL_CASES(MB, SGR_CASE)
#undef SGR_CASE
    default: for (; m < m1; m++) sg_rows(1, j, m, n0, ncol, b, bs); break;
    }
}

/* The packing buffer of the calling thread, kept across products and grown only when one
 * needs more than any before, so repeated products (a training step makes the same ones every
 * step) allocate nothing. One per thread, since products may run on several threads at once;
 * a thread finishes one product before it starts the next. Allocated through the hook and
 * freed when its thread ends (the buffer of a thread still running at exit is reclaimed with
 * the process). */
static _Thread_local struct {
    float *p;
    size_t cap; /* floats */
} t_pack;
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;

static void pack_release(void *p) { attn_free(p); }
static void pack_key_init(void) { (void)pthread_key_create(&pack_key, pack_release); }

/* The calling thread's buffer of at least n floats, or NULL when out of memory. */
static float *pack_get(size_t n) {
    if (t_pack.cap >= n) return t_pack.p;
    pthread_once(&pack_once, pack_key_init);
    attn_free(t_pack.p);
    t_pack.cap = 0;
    t_pack.p = attn_malloc(n * sizeof(float));
    (void)pthread_setspecific(pack_key, t_pack.p);
    if (t_pack.p) t_pack.cap = n;
    return t_pack.p;
}

static void FN(sgemm)(int transA, int transB, int M, int N, int K, float alpha, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || (int64_t)M * N * K < 4096) {
        attn__sgemm_ref(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    sg_job j = {transA, transB, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, NULL, 0, 0};
    j.nrb = (M + SG_ROWS - 1) / SG_ROWS, j.ncb = (N + SG_COLS - 1) / SG_COLS;
    if (transB) {
        j.pack = pack_get((size_t)j.ncb * K * SG_COLS);
        if (!j.pack) { /* out of memory: the reference needs none */
            attn__sgemm_ref(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
        attn__parallel(j.ncb, sg_pack_task, &j);
    }
    attn__parallel(j.nrb * j.ncb, sg_task, &j);
}

/* ------------------------------------------------------------------------------------------
 * The entries of this ISA's override table that come from this file (the attention family,
 * gemm and rowdot); bwd_dq and bwd_dkv are inherited from the reference. */
#define FAST_ENTRIES                                                                               \
    .q_block = BR, .k_block = BC, .rows_max = ROWS_MAX, .scratch_floats = FN(scratch), .fwd = FN(fwd), .fwd_part = FN(fwd_part), \
    .bwd = FN(bwd), .bwd_scratch_floats = FN(bwd_scratch), .sgemm = FN(sgemm), .rowdot = FN(rowdot)
