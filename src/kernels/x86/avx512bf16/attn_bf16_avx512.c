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
 *   dQ        S^T, dP^T = V_blk . dO^T, dS^T = P^T (dP^T - delta), dQ^T += Kp . dS^T
 *   dK, dV    (32 key lanes) S, dP per query row, dV^T += dOp . P, dK^T += Qp . dS
 *
 * P^T and dS^T are rounded to bf16 (VCVTNE2PS2BF16, round to nearest even; it flushes
 * denormals to zero, weights below 1e-38) and interleaved into pairs of rows with one
 * VPERMW. Deterministic: every sum's order depends on the shapes only. */
#include <immintrin.h>
#include <math.h>

#include "kernels/attn_bf16.h"

#define L2E 1.4426950408889634f
#define BC 64 /* keys per forward / dQ block, queries per dK/dV block */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

static inline int imin(int a, int b) { return a < b ? a : b; }

/* 2^x, as the fp32 kernels' (Cephes' polynomial, then vscalefps; -inf and x <= -150 give 0). */
static inline __m512 vexp2(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-150.0f), x);
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 vsafe(__m512 m) {
    __mmask16 k = _mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(k, m, _mm512_setzero_ps());
}

/* C (MR, 32) (+)= sum_p A[r * ams + p * aps] . B[p]: MR <= 6 rows of two vectors. */
ALWAYS_INLINE void mk_tile(const int MR, int P, const uint32_t *A, int64_t ams, int64_t aps, const uint32_t *B,
                           float *C, int acc) {
    __m512 c0[6], c1[6];
    for (int r = 0; r < MR; r++) {
        c0[r] = acc ? _mm512_loadu_ps(C + r * 32) : _mm512_setzero_ps();
        c1[r] = acc ? _mm512_loadu_ps(C + r * 32 + 16) : _mm512_setzero_ps();
    }
    for (int p = 0; p < P; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + p * 32), b1 = (__m512bh)_mm512_loadu_si512(B + p * 32 + 16);
        const uint32_t *a = A + p * aps;
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * ams]);
            c0[r] = _mm512_dpbf16_ps(c0[r], b0, x);
            c1[r] = _mm512_dpbf16_ps(c1[r], b1, x);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(C + r * 32, c0[r]);
        _mm512_storeu_ps(C + r * 32 + 16, c1[r]);
    }
}

static void mk(int M, int P, const uint32_t *A, int64_t ams, int64_t aps, const uint32_t *B, float *C, int acc) {
    int r = 0;
    for (; r + 6 <= M; r += 6) mk_tile(6, P, A + r * ams, ams, aps, B, C + r * 32, acc);
    switch (M - r) {
    case 5: mk_tile(5, P, A + r * ams, ams, aps, B, C + r * 32, acc); break;
    case 4: mk_tile(4, P, A + r * ams, ams, aps, B, C + r * 32, acc); break;
    case 3: mk_tile(3, P, A + r * ams, ams, aps, B, C + r * 32, acc); break;
    case 2: mk_tile(2, P, A + r * ams, ams, aps, B, C + r * 32, acc); break;
    case 1: mk_tile(1, P, A + r * ams, ams, aps, B, C + r * 32, acc); break;
    default: break;
    }
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
            alpha[v] = vexp2(_mm512_mul_ps(_mm512_sub_ps(m[v], ms), _mm512_set1_ps(L2E)));
            m[v] = mn;
            __m512 c = _mm512_set1_ps(sc * L2E), off = _mm512_mul_ps(ms, _mm512_set1_ps(L2E)), sum = _mm512_setzero_ps();
            for (int r = 0; r < nb; r++) {
                __m512 p = vexp2(_mm512_fmsub_ps(_mm512_loadu_ps(St + r * 32 + v * 16), c, off));
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
    __m512 p = vexp2(_mm512_fmsub_ps(_mm512_loadu_ps(s), c, lse2));
    _mm512_storeu_ps(s, p);
    _mm512_storeu_ps(dp, _mm512_mul_ps(p, _mm512_sub_ps(_mm512_loadu_ps(dp), delta)));
}

/* lse (+inf for a row that sees no key, so that its weights are 0) times log2 e. */
static inline float lse2_of(float x) { return x == -INFINITY ? INFINITY : x * L2E; }

static void dq_avx512(const attn__bf16_head *h, const float *lse, const float *delta, int i0, int i1, float *dq,
                      int64_t dq_rs, float *scratch) {
    const int n = i1 - i0, d2 = h->d2, dv2 = h->dv2, d = h->d;
    uint32_t *Qt = (uint32_t *)scratch, *dOt = Qt + d2 * 32;
    float *St = (float *)(dOt + dv2 * 32), *dPt = St + BC * 32, *dQt = dPt + BC * 32, *ld = dQt + d * 32;
    uint32_t *Dp = (uint32_t *)(ld + 64);
    pack_t(h->q + (int64_t)i0 * d2, d2, Qt);
    pack_t(h->dout + (int64_t)i0 * dv2, dv2, dOt);
    memset(dQt, 0, (size_t)d * 32 * sizeof *dQt);
    for (int i = 0; i < 32; i++) ld[i] = i < n ? lse2_of(lse[i0 + i]) : INFINITY, ld[32 + i] = i < n ? delta[i0 + i] : 0.0f;
    int js, je;
    attn__key_range(h->m, i0, i1, 0, h->Nk, &js, &je);
    for (int jb = js & ~1; jb < je; jb += BC) {
        int nb = imin(BC, je - jb);
        float sc = h->scale;
        mk(nb, d2, h->k + (int64_t)jb * d2, d2, 1, Qt, St, 0);
        mk(nb, dv2, h->v + (int64_t)jb * dv2, dv2, 1, dOt, dPt, 0);
        if (sc <= 0.0f || !attn__bf16_clean(h->m, i0, i1, jb, jb + nb)) mask_tile(h, St, 1, jb, nb, i0, n), sc = 1.0f;
        __m512 c = _mm512_set1_ps(sc * L2E);
        for (int v = 0; v < 2; v++) {
            __m512 l2 = _mm512_loadu_ps(ld + v * 16), de = _mm512_loadu_ps(ld + 32 + v * 16);
            for (int r = 0; r < nb; r++) grad_vec(St + r * 32 + v * 16, dPt + r * 32 + v * 16, c, l2, de);
        }
        pack_pairs(dPt, nb, Dp);
        mk(d, (nb + 1) / 2, h->kp + (int64_t)(jb / 2) * d, 1, d, Dp, dQt, 1);
    }
    for (int i = 0; i < n; i++)
        for (int cc = 0; cc < d; cc++) dq[(int64_t)(i0 + i) * dq_rs + cc] = h->scale * dQt[cc * 32 + i];
}

static void dkv_avx512(const attn__bf16_head *h, const float *lse, const float *delta, int j0, int j1, float *dk,
                       int64_t dk_rs, float *dv, int64_t dv_rs, float *scratch) {
    const attn__head *m = h->m;
    const int n = j1 - j0, d2 = h->d2, dv2 = h->dv2, d = h->d, dvn = h->dv;
    uint32_t *Kt = (uint32_t *)scratch, *Vt = Kt + d2 * 32;
    float *S = (float *)(Vt + dv2 * 32), *dP = S + BC * 32, *dKt = dP + BC * 32, *dVt = dKt + d * 32;
    uint32_t *Pq = (uint32_t *)(dVt + dvn * 32), *Dq = Pq + BC / 2 * 32;
    if (j0 >= m->key_len) return; /* hidden keys get no gradient */
    pack_t(h->k + (int64_t)j0 * d2, d2, Kt);
    pack_t(h->v + (int64_t)j0 * dv2, dv2, Vt);
    memset(dKt, 0, (size_t)(d + dvn) * 32 * sizeof *dKt);
    int qs = 0, qe = h->Nq;
    if (m->causal && j0 >= m->prefix) qs = j0 - m->coff > 0 ? j0 - m->coff : 0;
    if (m->window > 0) qe = imin(qe, j1 - 1 + m->window - m->coff);
    for (int ib = qs & ~1; ib < qe; ib += BC) {
        int nb = imin(BC, qe - ib);
        float sc = h->scale;
        mk(nb, d2, h->q + (int64_t)ib * d2, d2, 1, Kt, S, 0);
        mk(nb, dv2, h->dout + (int64_t)ib * dv2, dv2, 1, Vt, dP, 0);
        if (sc <= 0.0f || !attn__bf16_clean(m, ib, ib + nb, j0, j1)) mask_tile(h, S, 0, ib, nb, j0, n), sc = 1.0f;
        __m512 c = _mm512_set1_ps(sc * L2E);
        for (int r = 0; r < nb; r++) {
            __m512 l2 = _mm512_set1_ps(lse2_of(lse[ib + r])), de = _mm512_set1_ps(delta[ib + r]);
            for (int v = 0; v < 2; v++) grad_vec(S + r * 32 + v * 16, dP + r * 32 + v * 16, c, l2, de);
        }
        pack_pairs(S, nb, Pq);
        pack_pairs(dP, nb, Dq);
        mk(dvn, (nb + 1) / 2, h->dop + (int64_t)(ib / 2) * dvn, 1, dvn, Pq, dVt, 1);
        mk(d, (nb + 1) / 2, h->qp + (int64_t)(ib / 2) * d, 1, d, Dq, dKt, 1);
    }
    for (int j = 0; j < n; j++) {
        for (int cc = 0; dk && cc < d; cc++) dk[(int64_t)(j0 + j) * dk_rs + cc] += h->scale * dKt[cc * 32 + j];
        for (int cc = 0; dv && cc < dvn; cc++) dv[(int64_t)(j0 + j) * dv_rs + cc] += dVt[cc * 32 + j];
    }
}

const attn__bf16_kernels attn__bf16_kernels_avx512 = {.name = "avx512bf16",
                                                      .q_block = 32,
                                                      .k_block = 32,
                                                      .fwd = fwd_avx512,
                                                      .bwd_dq = dq_avx512,
                                                      .bwd_dkv = dkv_avx512};
