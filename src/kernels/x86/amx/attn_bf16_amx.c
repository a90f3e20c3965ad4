/* The bf16 attention forward on AMX tiles (TDPBF16PS), for CPUs with AMX-TILE and AMX-BF16
 * once Linux granted the tile data permission (kernels/dispatch_bf16.c asks for it). Built
 * with -mamx-tile -mamx-bf16 (this folder alone, where the compiler has them). The backward,
 * and the sizes this forward does not take (d not a multiple of 32 or dv of 16), run the
 * AVX512-BF16 kernels.
 *
 * NOT YET RUN ON A CPU WITH AMX: written against Intel's documentation and compiled, but the
 * machines it was written on expose no AMX. test_attention_bf16 amx checks it against float64
 * and the reference path wherever AMX exists (and is skipped elsewhere).
 *
 * Per query tile of 32 rows and key block of 32 keys (FlashAttention-2, online softmax in fp32,
 * this time in rows: AMX gives S in query rows):
 *   S (32 q, 32 keys) = Q (32, d) . K^T    2 x 2 C tiles; A = Q rows (16 x 32 bf16), B = kt
 *                                          (16 feature pairs x 16 keys, VNNI layout)
 *   P = exp(S - m) rounded to bf16, row-major (the A operand of the next product)
 *   O (32, dv) = alpha O + P . V           C tiles of 16 x 16 fp32 loaded from and stored to
 *                                          the fp32 accumulator; B = vp (16 key pairs x 16)
 * Tile configuration: palette 1, eight tiles of 16 rows x 64 bytes. */
#include <immintrin.h>
#include <math.h>

#include "kernels/attn_bf16.h"
#include "kernels/x86/exp2_avx512.h"

#define L2E 1.4426950408889634f
#define QB 32 /* queries per tile */
#define KB 32 /* keys per block */

typedef struct {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

static void tiles_on(void) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette_id = 1;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    _tile_loadconfig(&c);
}

static int fits_amx(int d, int dv) { return d % 32 == 0 && dv % 16 == 0; }

static void fwd_amx(const attn__bf16_head *h, int i0, int i1, float *o, int64_t o_rs, float *lse, float *scratch) {
    const int n = i1 - i0, d2 = h->d2, dv = h->dv, Nkp = h->Nkp;
    float *S = scratch, *Oa = S + QB * KB, *m = Oa + QB * dv, *l = m + QB, *al = l + QB;
    uint16_t *P = (uint16_t *)(al + QB); /* (QB, KB) bf16, 64-byte rows */
    memset(Oa, 0, (size_t)QB * dv * sizeof *Oa);
    for (int i = 0; i < QB; i++) m[i] = -INFINITY, l[i] = 0.0f;
    tiles_on();
    int js, je;
    attn__key_range(h->m, i0, i1, 0, h->Nk, &js, &je);
    for (int jb = js / KB * KB; jb < je; jb += KB) {
        /* S = Q K^T: C tiles 0..3 = (query half, key half), A = 4, 5, B = 6, 7. */
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int kc = 0; kc < d2 / 16; kc++) {
            const uint32_t *qa = h->q + (int64_t)i0 * d2 + kc * 16, *kb = h->kt + (int64_t)kc * 16 * Nkp + jb;
            _tile_loadd(4, qa, d2 * 4);
            _tile_loadd(5, qa + (int64_t)16 * d2, d2 * 4);
            _tile_loadd(6, kb, Nkp * 4);
            _tile_loadd(7, kb + 16, Nkp * 4);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, S, KB * 4);
        _tile_stored(1, S + 16, KB * 4);
        _tile_stored(2, S + 16 * KB, KB * 4);
        _tile_stored(3, S + 16 * KB + 16, KB * 4);
        float sc = h->scale;
        if (sc <= 0.0f || !attn__bf16_clean(h->m, i0, i1, jb, jb + KB)) {
            for (int i = 0; i < n; i++)
                for (int j = 0; j < KB; j++) S[i * KB + j] = attn__bf16_mask(h->m, sc, i0 + i, jb + j, S[i * KB + j]);
            sc = 1.0f;
        }
        /* Online softmax per query row; P rounded to bf16 in key order. */
        for (int i = 0; i < QB; i++) {
            __m512 s0 = _mm512_loadu_ps(S + i * KB), s1 = _mm512_loadu_ps(S + i * KB + 16);
            float mx = sc * _mm512_reduce_max_ps(_mm512_max_ps(s0, s1)), mn = mx > m[i] ? mx : m[i];
            float ms = mn == -INFINITY ? 0.0f : mn;
            al[i] = m[i] == -INFINITY ? 0.0f : exp2f((m[i] - ms) * L2E);
            m[i] = mn;
            __m512 c = _mm512_set1_ps(sc * L2E), off = _mm512_set1_ps(ms * L2E);
            __m512 p0 = attn__exp2_avx512(_mm512_fmsub_ps(s0, c, off)), p1 = attn__exp2_avx512(_mm512_fmsub_ps(s1, c, off));
            l[i] = l[i] * al[i] + _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
            _mm512_storeu_si512(P + i * KB, (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
        }
        for (int i = 0; i < QB; i++)
            if (al[i] != 1.0f)
                for (int c = 0; c < dv; c += 16)
                    _mm512_storeu_ps(Oa + i * dv + c, _mm512_mul_ps(_mm512_loadu_ps(Oa + i * dv + c), _mm512_set1_ps(al[i])));
        /* O += P V: A = P's query half (tile 4), B = 16 key pairs x 16 features (tile 6). */
        for (int qh = 0; qh < 2; qh++) {
            _tile_loadd(4, P + qh * 16 * KB, KB * 2);
            for (int c = 0; c < dv; c += 16) {
                float *oc = Oa + qh * 16 * dv + c;
                _tile_loadd(0, oc, dv * 4);
                _tile_loadd(6, h->vp + (int64_t)(jb / 2) * dv + c, dv * 4);
                _tile_dpbf16ps(0, 4, 6);
                _tile_stored(0, oc, dv * 4);
            }
        }
    }
    _tile_release();
    for (int i = 0; i < n; i++) {
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f, *oi = o + (int64_t)(i0 + i) * o_rs;
        lse[i0 + i] = l[i] > 0.0f ? (m[i] == -INFINITY ? 0.0f : m[i]) + logf(l[i]) : -INFINITY;
        for (int c = 0; c < dv; c++) oi[c] = Oa[i * dv + c] * inv;
    }
}

/* The backward is AVX512-BF16's (nn/attention_bf16.c takes it where bwd_dq is NULL). */
const attn__bf16_kernels attn__bf16_kernels_amx = {
    .name = "amx", .q_block = QB, .k_block = 32, .needs_kt = 1, .fits = fits_amx, .fwd = fwd_amx};
