/* The bf16 attention kernels with AVX512-BF16 (VDPBF16PS): FlashAttention-2 with fp32
 * accumulation, on the packed layouts of kernels/attn_bf16.h. Built with -mavx512bf16 (this
 * folder alone, where the compiler has it); attn__bf16_kern() offers it only where the CPU has
 * AVX512-BF16 and AVX512-F/BW.
 *
 * As the fp32 kernels (x86/attn_fast.h), every tile is transposed so that the softmax is
 * vertical: a tile of 32 query lanes (two zmm) against rows of keys. One micro-kernel does
 * every product: C (M rows, 32 lanes) (+)= sum over pairs p of A[m][p] (a bf16 pair broadcast
 * as one 32-bit word) times B[p] (32 lanes of bf16 pairs), 6 rows x 2 vectors = 12
 * accumulators, two vector loads and six broadcasts per 12 VDPBF16PS:
 *
 *   forward   S^T (BC, 32)   = K_blk (BC, d2 pairs) . Q^T (d2, 32 lanes, 2)
 *             O^T (dv, 32)  += Vp (dv, BC/2 key pairs) . P^T (BC/2, 32 lanes, 2)
 *   backward  (fused, 32 key lanes) S, dP = dO V^T per query row, dS = P (dP - delta),
 *             dV^T += dOp . P, dK^T += Qp . dS, and dQ (query rows, feature lanes) += dS . Kp
 *   decoding  (a few rows, K and V read in place) dot products over the features, reduced
 *             across lanes; o += p v with v widened to fp32
 *
 * Measured on this project's Intel Xeon (Emerald Rapids class, model 207), one core: VDPBF16PS
 * zmm retires about 0.45 per cycle where VFMADD231PS retires 1.9, i.e. half the fp32 FMA's
 * multiply-adds per cycle, so these kernels run at about 0.55x the fp32 ones there (see
 * bench/README.md); on AMD Zen 4/5 the instruction has the FMA's rate, twice its products.
 *
 * P^T and dS^T are rounded to bf16 (VCVTNE2PS2BF16, round to nearest even; it flushes
 * denormals to zero, weights below 1e-38) and interleaved into pairs of rows with one
 * VPERMW. Deterministic: every sum's order depends on the shapes only. */
#include <immintrin.h>
#include <math.h>

#include "kernels/attn_bf16.h"
#include "kernels/x86/exp2_avx512.h"

#define L2E 1.4426950408889634f
#define BC 64 /* keys per forward / dQ block, queries per dK/dV block */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

static inline int imin(int a, int b) { return a < b ? a : b; }

static inline __m512 vsafe(__m512 m) {
    __mmask16 k = _mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(k, m, _mm512_setzero_ps());
}

/* C (MR, 32) (+)= sum_p A[r * ams + p * aps] . B[p]: MR <= 6 rows of two vectors; B's rows of
 * 32 lanes are bs words apart, C's rows ldc floats. */
ALWAYS_INLINE void mk_tile(const int MR, int P, const uint32_t *A, int64_t ams, int64_t aps, const uint32_t *B,
                           int64_t bs, float *C, int64_t ldc, int acc) {
    __m512 c0[6], c1[6];
    for (int r = 0; r < MR; r++) {
        c0[r] = acc ? _mm512_loadu_ps(C + r * ldc) : _mm512_setzero_ps();
        c1[r] = acc ? _mm512_loadu_ps(C + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int p = 0; p < P; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + p * bs), b1 = (__m512bh)_mm512_loadu_si512(B + p * bs + 16);
        const uint32_t *a = A + p * aps;
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * ams]);
            c0[r] = _mm512_dpbf16_ps(c0[r], b0, x);
            c1[r] = _mm512_dpbf16_ps(c1[r], b1, x);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(C + r * ldc, c0[r]);
        _mm512_storeu_ps(C + r * ldc + 16, c1[r]);
    }
}

static void mk_g(int M, int P, const uint32_t *A, int64_t ams, int64_t aps, const uint32_t *B, int64_t bs, float *C,
                 int64_t ldc, int acc) {
    int r = 0;
    for (; r + 6 <= M; r += 6) mk_tile(6, P, A + r * ams, ams, aps, B, bs, C + r * ldc, ldc, acc);
    switch (M - r) {
    case 5: mk_tile(5, P, A + r * ams, ams, aps, B, bs, C + r * ldc, ldc, acc); break;
    case 4: mk_tile(4, P, A + r * ams, ams, aps, B, bs, C + r * ldc, ldc, acc); break;
    case 3: mk_tile(3, P, A + r * ams, ams, aps, B, bs, C + r * ldc, ldc, acc); break;
    case 2: mk_tile(2, P, A + r * ams, ams, aps, B, bs, C + r * ldc, ldc, acc); break;
    case 1: mk_tile(1, P, A + r * ams, ams, aps, B, bs, C + r * ldc, ldc, acc); break;
    default: break;
    }
}

/* The tiles' usual shape: B rows of 32 lanes packed (bs = 32), C rows of 32 (ldc = 32). */
static void mk(int M, int P, const uint32_t *A, int64_t ams, int64_t aps, const uint32_t *B, float *C, int acc) {
    mk_g(M, P, A, ams, aps, B, 32, C, 32, acc);
}

/* Xt (n2, 32) = the 32 rows of X (rows of n2 pair words from x, row stride n2) transposed. */
static void pack_t(const uint32_t *x, int n2, uint32_t *xt) {
    for (int i = 0; i < 32; i++)
        for (int c = 0; c < n2; c++) xt[c * 32 + i] = x[(int64_t)i * n2 + c];
}

/* Rows 2r, 2r+1 of F (n rows of 32 fp32 lanes) as bf16 pairs into W (ceil(n / 2), 32). */
static void pack_pairs(const float *F, int n, uint32_t *W) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int r = 0; 2 * r < n; r++)
        for (int v = 0; v < 2; v++) {
            __m512 e = _mm512_loadu_ps(F + 2 * r * 32 + v * 16);
            __m512 o = 2 * r + 1 < n ? _mm512_loadu_ps(F + (2 * r + 1) * 32 + v * 16) : _mm512_setzero_ps();
            __m512i w = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(o, e));
            _mm512_storeu_si512(W + r * 32 + v * 16, w);
        }
}

/* Masks of rows [r0, r0 + nr) x lanes [l0, l0 + nl) of T (rows of 32): T = scale T + bias, or
 * -inf where hidden; tq says whether rows are keys (forward, dQ) or queries (dK, dV). */
static void mask_tile(const attn__bf16_head *h, float *T, int rows_are_keys, int r0, int nr, int l0, int nl) {
    for (int r = 0; r < nr; r++)
        for (int l = 0; l < nl; l++) {
            int i = rows_are_keys ? l0 + l : r0 + r, j = rows_are_keys ? r0 + r : l0 + l;
            T[r * 32 + l] = attn__bf16_mask(h->m, h->scale, i, j, T[r * 32 + l]);
        }
}

static void fwd_avx512(const attn__bf16_head *h, int i0, int i1, float *o, int64_t o_rs, float *lse, float *scratch) {
    const int n = i1 - i0, d2 = h->d2, dv = h->dv;
    uint32_t *Qt = (uint32_t *)scratch;
    float *St = scratch + d2 * 32;
    uint32_t *Pp = (uint32_t *)(St + BC * 32);
    float *Ot = (float *)(Pp + BC / 2 * 32), *ml = Ot + dv * 32;
    pack_t(h->q + (int64_t)i0 * d2, d2, Qt);
    memset(Ot, 0, (size_t)dv * 32 * sizeof *Ot);
    __m512 m[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)}, l[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    int js, je;
    attn__key_range(h->m, i0, i1, 0, h->Nk, &js, &je);
    for (int jb = js & ~1; jb < je; jb += BC) {
        int nb = imin(BC, je - jb), nb2 = (nb + 1) / 2;
        float sc = h->scale;
        mk(nb, d2, h->k + (int64_t)jb * d2, d2, 1, Qt, St, 0);
        if (sc <= 0.0f || !attn__bf16_clean(h->m, i0, i1, jb, jb + nb)) mask_tile(h, St, 1, jb, nb, i0, n), sc = 1.0f;
        __m512 alpha[2];
        for (int v = 0; v < 2; v++) {
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int r = 0; r < nb; r++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(St + r * 32 + v * 16));
            __m512 mn = _mm512_max_ps(m[v], _mm512_mul_ps(mx, _mm512_set1_ps(sc))), ms = vsafe(mn);
            alpha[v] = attn__exp2_avx512(_mm512_mul_ps(_mm512_sub_ps(m[v], ms), _mm512_set1_ps(L2E)));
            m[v] = mn;
            __m512 c = _mm512_set1_ps(sc * L2E), off = _mm512_mul_ps(ms, _mm512_set1_ps(L2E)), sum = _mm512_setzero_ps();
            for (int r = 0; r < nb; r++) {
                __m512 p = attn__exp2_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(St + r * 32 + v * 16), c, off));
                _mm512_storeu_ps(St + r * 32 + v * 16, p);
                sum = _mm512_add_ps(sum, p);
            }
            l[v] = _mm512_fmadd_ps(l[v], alpha[v], sum);
        }
        pack_pairs(St, nb, Pp);
        if (_mm512_cmp_ps_mask(alpha[0], _mm512_set1_ps(1.0f), _CMP_NEQ_UQ) ||
            _mm512_cmp_ps_mask(alpha[1], _mm512_set1_ps(1.0f), _CMP_NEQ_UQ))
            for (int c = 0; c < dv; c++)
                for (int v = 0; v < 2; v++)
                    _mm512_storeu_ps(Ot + c * 32 + v * 16, _mm512_mul_ps(_mm512_loadu_ps(Ot + c * 32 + v * 16), alpha[v]));
        mk(dv, nb2, h->vp + (int64_t)(jb / 2) * dv, 1, dv, Pp, Ot, 1);
    }
    for (int v = 0; v < 2; v++) _mm512_storeu_ps(ml + v * 16, m[v]), _mm512_storeu_ps(ml + 32 + v * 16, l[v]);
    for (int i = 0; i < n; i++) {
        float li = ml[32 + i], inv = li > 0.0f ? 1.0f / li : 0.0f, *oi = o + (int64_t)(i0 + i) * o_rs;
        lse[i0 + i] = li > 0.0f ? ml[i] + logf(li) : -INFINITY;
        for (int c = 0; c < dv; c++) oi[c] = Ot[c * 32 + i] * inv;
    }
}

/* P = exp(s sc - lse) and dS = P (dP - delta) in place of S and dP, for one vector. */
ALWAYS_INLINE void grad_vec(float *s, float *dp, __m512 c, __m512 lse2, __m512 delta) {
    __m512 p = attn__exp2_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(s), c, lse2));
    _mm512_storeu_ps(s, p);
    _mm512_storeu_ps(dp, _mm512_mul_ps(p, _mm512_sub_ps(_mm512_loadu_ps(dp), delta)));
}

/* lse (+inf for a row that sees no key, so that its weights are 0) times log2 e. */
static inline float lse2_of(float x) { return x == -INFINITY ? INFINITY : x * L2E; }

/* The backward of key rows [j0, j1) for one query head, FlashAttention-2's Algorithm 2: per
 * tile of 32 keys (the lanes), every query block that sees them recomputes S and dP, then
 *   dV^T += dOp . P,  dK^T += Qp . dS   (query pairs, accumulated in the tile; added to dk, dv)
 *   dQ   += dS . Kp                      (dS rows rounded to bf16 as key pairs; dq rows, lanes
 *                                        over the features, padded to a multiple of 32)
 * dq accumulates dS K without the scale; the caller multiplies. */
static void bwd_avx512(const attn__bf16_head *h, const float *lse, const float *delta, int j0, int j1, float *dq,
                       int64_t dq_rs, float *dk, int64_t dk_rs, float *dv, int64_t dv_rs, float *scratch) {
    const attn__head *m = h->m;
    const int d2 = h->d2, dv2 = h->dv2, d = h->d, dvn = h->dv, kps = ATTN__BF16_DPAD(d);
    uint32_t *Kt = (uint32_t *)scratch, *Vt = Kt + d2 * 32;
    float *S = (float *)(Vt + dv2 * 32), *dP = S + BC * 32, *dKt = dP + BC * 32, *dVt = dKt + d * 32;
    uint32_t *Pq = (uint32_t *)(dVt + dvn * 32), *Dq = Pq + BC / 2 * 32, *Dr = Dq + BC / 2 * 32;
    for (int t0 = j0; t0 < j1 && t0 < m->key_len; t0 += 32) {
        int n = imin(32, j1 - t0);
        __mmask16 k0 = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1);
        __mmask16 k1 = (__mmask16)(n >= 32 ? 0xffffu : n > 16 ? (1u << (n - 16)) - 1 : 0u);
        pack_t(h->k + (int64_t)t0 * d2, d2, Kt);
        pack_t(h->v + (int64_t)t0 * dv2, dv2, Vt);
        memset(dKt, 0, (size_t)(d + dvn) * 32 * sizeof *dKt);
        int qs = 0, qe = h->Nq;
        if (m->causal && t0 >= m->prefix) qs = t0 - m->coff > 0 ? t0 - m->coff : 0;
        if (m->window > 0) qe = imin(qe, t0 + n - 1 + m->window - m->coff);
        for (int ib = qs & ~1; ib < qe; ib += BC) {
            int nb = imin(BC, qe - ib), nb2 = (nb + 1) / 2;
            float sc = h->scale;
            mk(nb, d2, h->q + (int64_t)ib * d2, d2, 1, Kt, S, 0);
            mk(nb, dv2, h->dout + (int64_t)ib * dv2, dv2, 1, Vt, dP, 0);
            if (sc <= 0.0f || !attn__bf16_clean(m, ib, ib + nb, t0, t0 + n)) mask_tile(h, S, 0, ib, nb, t0, n), sc = 1.0f;
            __m512 c = _mm512_set1_ps(sc * L2E);
            for (int r = 0; r < nb; r++) {
                __m512 l2 = _mm512_set1_ps(lse2_of(lse[ib + r])), de = _mm512_set1_ps(delta[ib + r]);
                for (int v = 0; v < 2; v++) grad_vec(S + r * 32 + v * 16, dP + r * 32 + v * 16, c, l2, de);
                /* dS row r as 16 key pairs; lanes past the tile's keys are 0, never garbage */
                __m512 g0 = _mm512_maskz_mov_ps(k0, _mm512_loadu_ps(dP + r * 32));
                __m512 g1 = _mm512_maskz_mov_ps(k1, _mm512_loadu_ps(dP + r * 32 + 16));
                _mm512_storeu_si512(Dr + r * 16, (__m512i)_mm512_cvtne2ps_pbh(g1, g0));
            }
            pack_pairs(S, nb, Pq);
            pack_pairs(dP, nb, Dq);
            mk(dvn, nb2, h->dop + (int64_t)(ib / 2) * dvn, 1, dvn, Pq, dVt, 1);
            mk(d, nb2, h->qp + (int64_t)(ib / 2) * d, 1, d, Dq, dKt, 1);
            for (int c0 = 0; dq && c0 < d; c0 += 32)
                mk_g(nb, 16, Dr, 16, 1, h->kp + (int64_t)(t0 / 2) * kps + c0, kps, dq + (int64_t)ib * dq_rs + c0, dq_rs, 1);
        }
        for (int j = 0; j < n; j++) {
            for (int cc = 0; dk && cc < d; cc++) dk[(int64_t)(t0 + j) * dk_rs + cc] += h->scale * dKt[cc * 32 + j];
            for (int cc = 0; dv && cc < dvn; cc++) dv[(int64_t)(t0 + j) * dv_rs + cc] += dVt[cc * 32 + j];
        }
    }
}

/* o (n vectors of 16) = al o + sum_jj p[jj] vw[jj] over nk rows of vw (ld floats apart), NV
 * accumulators in registers; p[jj] = 0 is skipped (a hidden key adds nothing, even an inf). */
ALWAYS_INLINE void dec_pv(const int NV, float *o, float al, const float *p, const float *vw, int64_t ld, int nk) {
    __m512 acc[8];
    for (int v = 0; v < NV; v++) acc[v] = _mm512_mul_ps(_mm512_loadu_ps(o + 16 * v), _mm512_set1_ps(al));
    for (int jj = 0; jj < nk; jj++) {
        if (p[jj] == 0.0f) continue;
        __m512 pv = _mm512_set1_ps(p[jj]);
        for (int v = 0; v < NV; v++) acc[v] = _mm512_fmadd_ps(pv, _mm512_loadu_ps(vw + jj * ld + 16 * v), acc[v]);
    }
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(o + 16 * v, acc[v]);
}

/* The 16 lane sums of a[0..15] as one vector (lane j: the sum of a[j]'s lanes): pairs, then
 * quads added within 128-bit lanes, then across them; 45 operations against 16 reductions. */
ALWAYS_INLINE __m512 hsum16(const __m512 *a) {
    __m512 b[8], c[4];
    for (int k = 0; k < 8; k++)
        b[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]), _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
    for (int k = 0; k < 4; k++) {
        __m512d x = _mm512_castps_pd(b[2 * k]), y = _mm512_castps_pd(b[2 * k + 1]);
        c[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    __m512 d0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x44), _mm512_shuffle_f32x4(c[0], c[1], 0xEE));
    __m512 d1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x44), _mm512_shuffle_f32x4(c[2], c[3], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d0, d1, 0x88), _mm512_shuffle_f32x4(d0, d1, 0xDD));
}

/* Decoding: per block of 16 keys, the values widened to fp32 once (scratch), then per row the
 * scores as VDPBF16PS dot products over the features (K rows read in place: 16 independent
 * chains) summed across lanes into one vector of 16 scores (hsum16), the online softmax on
 * them at once, and o = alpha o + sum_j bf16(p_j) v_j with o in registers, 128 features at a
 * time. No call in the loop (a call would spill every vector register). */
static void dec_avx512(const attn__bf16_dec *dc, int k0, int k1, float *o, float *m, float *l, float *scratch) {
    const int R = dc->R, d = dc->d, dv = dc->dv, d2 = d / 2;
    float *s = scratch, *vw = scratch + R * 16; /* (R, 16) scores, (16, dv) values */
    for (int r = 0; r < R; r++) m[r] = -INFINITY, l[r] = 0.0f;
    memset(o, 0, (size_t)R * dv * sizeof *o);
    for (int jb = k0; jb < k1; jb += 16) {
        int nk = imin(16, k1 - jb);
        const __mmask16 live = (__mmask16)((1u << nk) - 1u);
        for (int jj = 0; jj < nk; jj++)
            for (int c = 0; c < dv; c += 16)
                _mm512_storeu_ps(vw + jj * dv + c, _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(dc->v + (int64_t)(jb + jj) * dc->v_rs + c))), 16)));
        for (int r = 0; r < R; r++) {
            const attn__head *mh = &dc->m[r / dc->Nq];
            int i = r % dc->Nq, clean = dc->scale > 0.0f && attn__bf16_clean(mh, i, i + 1, jb, jb + nk);
            const uint32_t *q = dc->q + (int64_t)r * d2;
            float *sr = s + r * 16;
            __m512 acc[16]; /* 16 independent chains in registers (keys past nk repeat the last) */
            const uint16_t *kr[16];
            _Pragma("GCC unroll 16") for (int jj = 0; jj < 16; jj++) {
                acc[jj] = _mm512_setzero_ps();
                kr[jj] = dc->k + (int64_t)(jb + imin(jj, nk - 1)) * dc->k_rs;
            }
            for (int c = 0; c < d2; c += 16) {
                __m512bh qc = (__m512bh)_mm512_loadu_si512(q + c);
                _Pragma("GCC unroll 16") for (int jj = 0; jj < 16; jj++)
                    acc[jj] = _mm512_dpbf16_ps(acc[jj], (__m512bh)_mm512_loadu_si512(kr[jj] + 2 * c), qc);
            }
            __m512 sv = hsum16(acc);
            if (clean) {
                sv = _mm512_mask_blend_ps(live, _mm512_set1_ps(-INFINITY), _mm512_mul_ps(sv, _mm512_set1_ps(dc->scale)));
            } else {
                _mm512_storeu_ps(sr, sv);
                for (int jj = 0; jj < 16; jj++) sr[jj] = jj >= nk ? -INFINITY : attn__bf16_mask(mh, dc->scale, i, jb + jj, sr[jj]);
                sv = _mm512_loadu_ps(sr);
            }
            float mx = _mm512_reduce_max_ps(sv), mn = mx > m[r] ? mx : m[r], ms = mn == -INFINITY ? 0.0f : mn;
            float al = m[r] == -INFINITY ? 0.0f : _mm512_cvtss_f32(attn__exp2_avx512(_mm512_set1_ps((m[r] - ms) * L2E)));
            m[r] = mn;
            __m512 p = attn__exp2_avx512(_mm512_mul_ps(_mm512_sub_ps(sv, _mm512_set1_ps(ms)), _mm512_set1_ps(L2E)));
            l[r] = l[r] * al + _mm512_reduce_add_ps(p);
            __m256i pb = (__m256i)_mm512_cvtneps_pbh(p); /* P rounded to bf16, back to fp32 */
            _mm512_storeu_ps(sr, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(pb), 16)));
            float *orow = o + (int64_t)r * dv;
            int c0 = 0;
            for (; c0 + 128 <= dv; c0 += 128) dec_pv(8, orow + c0, al, sr, vw + c0, dv, nk);
            for (; c0 < dv; c0 += 16) dec_pv(1, orow + c0, al, sr, vw + c0, dv, nk);
        }
    }
}

const attn__bf16_kernels attn__bf16_kernels_avx512 = {.name = "avx512bf16",
                                                      .q_block = 32,
                                                      .k_block = 32,
                                                      .fwd = fwd_avx512,
                                                      .bwd = bwd_avx512,
                                                      .decode = dec_avx512};
