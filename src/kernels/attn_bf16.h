/* The bf16 attention kernels: storage and products in bfloat16, accumulation, softmax and
 * log-sum-exp in fp32. Internal (not API); the attention layer (nn/attention_bf16.c) packs
 * the operands once per call into the layouts below and drives these kernels over
 * (batch, head, block) tasks, as it drives the fp32 ones.
 *
 * Data are bf16 pairs held as 32-bit words (low half the even element, high half the odd):
 * the operand shape of VDPBF16PS, acc[i] += a[2i] b[2i] + a[2i+1] b[2i+1], and of AMX's
 * TDPBF16PS. Letters: d2 = ceil(d / 2), dv2 = ceil(dv / 2) feature pairs; Nqp, Nkp the query
 * and key counts rounded up (to ATTN__BF16_QPAD, ATTN__BF16_KPAD); every pad is zero.
 *   q   (Nqp, d2)        queries, feature pairs ("rows")
 *   k   (Nkp, d2)        keys, feature pairs
 *   v   (Nkp, dv2)       values, feature pairs (backward: dP = dO V^T)
 *   vp  (Nkp / 2, dv)    values, key pairs per feature (forward: O += P V)
 *   kp  (Nkp / 2, DPAD(d)) keys, key pairs per feature (backward: dQ += dS K), rows padded
 *                        to a multiple of 32 words
 *   kt  (d2, Nkp)        keys transposed, feature pairs per key (AMX forward only)
 *   dout (Nqp, dv2)      dO, feature pairs (backward)
 *   qp  (Nqp / 2, d)     queries, query pairs per feature (backward: dK += dS^T Q)
 *   dop (Nqp / 2, dv)    dO, query pairs per feature (backward: dV += P^T dO)
 * The masks (causal, window, key lengths, boolean, bias; no attn_mods) are those of `m`, an
 * attn__head whose float pointers are unused.
 *
 * What is rounded to bf16: the inputs (once, when packed), the weights P before P V and
 * P^T dO, and dS before dS K and dS^T Q. Scores, dP, the running maximum and sum, the
 * log-sum-exp and every output are fp32. */
#ifndef ATTN_KERNELS_BF16_H
#define ATTN_KERNELS_BF16_H

#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

enum { ATTN__BF16_QPAD = 32, ATTN__BF16_KPAD = 64 };
#define ATTN__BF16_DPAD(d) (((d) + 31) / 32 * 32)

typedef struct {
    int Nq, Nk, d, dv, d2, dv2, Nqp, Nkp;
    float scale;
    const uint32_t *q, *k, *v, *vp, *kp, *kt, *dout, *qp, *dop;
    const attn__head *m; /* masks */
} attn__bf16_head;

/* Forward for query rows [i0, i1): o rows i at o + i * o_rs and lse[i] (written). */
typedef void (*attn__bf16_fwd_fn)(const attn__bf16_head *h, int i0, int i1, float *o, int64_t o_rs, float *lse,
                                  float *scratch);
/* dQ rows [i0, i1) (overwritten), from the forward's lse (Nq) and delta (Nq) = rowsum(dO O). */
typedef void (*attn__bf16_dq_fn)(const attn__bf16_head *h, const float *lse, const float *delta, int i0, int i1,
                                 float *dq, int64_t dq_rs, float *scratch);
/* dK, dV rows [j0, j1), accumulated (+=): query heads sharing a key head add in turn. */
typedef void (*attn__bf16_dkv_fn)(const attn__bf16_head *h, const float *lse, const float *delta, int j0, int j1,
                                  float *dk, int64_t dk_rs, float *dv, int64_t dv_rs, float *scratch);

/* The fused backward (FlashAttention-2's Algorithm 2) of key rows [j0, j1): dK, dV rows
 * accumulated (+=) as bwd_dkv's; dq (Nq rows of at least DPAD(d) floats, dq_rs apart)
 * accumulates (+=) sum_j dS_ij k_j WITHOUT the scale (the caller multiplies once). */
typedef void (*attn__bf16_bwd_fn)(const attn__bf16_head *h, const float *lse, const float *delta, int j0, int j1,
                                  float *dq, int64_t dq_rs, float *dk, int64_t dk_rs, float *dv, int64_t dv_rs,
                                  float *scratch);

/* Decoding (a few query rows, bf16 arrays read in place: no packing, so that the keys and
 * values are read once): the R = G Nq query rows of the G query heads that share one key/value
 * head, against keys [k0, k1). Needs d % 32 == 0 and dv % 16 == 0. */
typedef struct {
    int R, Nq, d, dv;
    float scale;
    const uint32_t *q;               /* (R, d / 2) words: row r = g Nq + i is query i of head g */
    const uint16_t *k; int64_t k_rs; /* keys (Nk, d), bf16 rows k_rs elements apart */
    const uint16_t *v; int64_t v_rs; /* values (Nk, dv) */
    const attn__head *m;             /* (G) the masks of each query head */
} attn__bf16_dec;
/* The partial softmax state of each row over keys [k0, k1) (written): m (R) the maximum score
 * (-inf: no visible key), l (R) = sum_j p_rj with p_rj = exp(s_rj - m_r), o (R, dv) =
 * sum_j bf16(p_rj) v_j (not normalised). scratch: R * 16 + 16 * dv floats. */
typedef void (*attn__bf16_dec_fn)(const attn__bf16_dec *dc, int k0, int k1, float *o, float *m, float *l,
                                  float *scratch);

typedef struct {
    const char *name;   /* "ref", "avx512bf16", "amx" */
    int q_block;        /* query rows per forward and dQ task */
    int k_block;        /* key rows per dK/dV task */
    int needs_kt;       /* the forward reads kt */
    int (*fits)(int d, int dv); /* can this table's forward run these sizes (NULL: any) */
    attn__bf16_fwd_fn fwd;
    attn__bf16_dq_fn bwd_dq;
    attn__bf16_dkv_fn bwd_dkv;
    attn__bf16_bwd_fn bwd;      /* if set, the backward runs this instead of bwd_dq and bwd_dkv */
    attn__bf16_dec_fn decode;   /* if set, few query rows on bf16 arrays run this forward */
    int widen;                  /* no kernels: the bf16 values widened to fp32 once per call run
                                 * the fp32 kernels (exact products, fp32 FMA; P not rounded) */
} attn__bf16_kernels;

/* Scratch floats per thread for any table's kernels. */
static inline size_t attn__bf16_scratch_floats(int Nk, int d, int dv) {
    size_t d2 = (size_t)(d + 1) / 2, dv2 = (size_t)(dv + 1) / 2;
    return 32 * (2 * (d2 + dv2) + 6 * 64 + 2 * ((size_t)d + dv) + 16) + 64 * 64 + (size_t)Nk;
}

/* fp32 -> bf16, round to nearest even; NaN stays NaN (quiet, sign kept); denormals rounded,
 * not flushed. */
static inline uint16_t attn__bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float attn__bf16_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float attn__bf16_round(float f) { return attn__bf16_f32(attn__bf16(f)); }

/* Element e of a row of pair words. */
static inline float attn__bf16_at(const uint32_t *row, int e) {
    uint32_t w = row[e >> 1];
    return attn__bf16_f32((uint16_t)(e & 1 ? w >> 16 : w & 0xffffu));
}

/* The block [j0, j1) x rows [i0, i1) needs no per-element mask (structural masks only). */
static inline int attn__bf16_clean(const attn__head *m, int i0, int i1, int j0, int j1) {
    if (m->bmask || m->bias || j1 > m->key_len) return 0;
    if (m->causal && j1 - 1 > i0 + m->coff) return 0;
    if (m->window > 0 && j0 <= i1 - 1 + m->coff - m->window) return 0;
    return 1;
}
/* The masked score scale * dot + bias of (i, j), -inf where hidden. */
static inline float attn__bf16_mask(const attn__head *m, float scale, int i, int j, float dot) {
    if (!attn__visible(m, i, j)) return -INFINITY;
    float s = scale * dot;
    if (m->bias) s += m->bias[(int64_t)i * m->bias_rs + (int64_t)j * m->bias_cs];
    return s;
}

extern const attn__bf16_kernels attn__bf16_kernels_ref, attn__bf16_kernels_widen;
extern const attn__bf16_kernels attn__bf16_kernels_avx512, attn__bf16_kernels_amx; /* ATTN_HAVE_AVX512BF16 / _AMX builds */

/* The table in use: ATTN_BF16_ISA (ref, f32, avx512bf16, amx) if set and runnable, else "ref"
 * if attn_get_isa() is "ref", else AMX (once the kernel granted the tile data permission),
 * else AVX512-BF16 on CPUs where VDPBF16PS has the FMA's throughput (not Intel's: measured
 * there at half, bench/dpbf16_rate.c), else "f32" (the fp32 kernels on widened values). */
const attn__bf16_kernels *attn__bf16_kern(void);
/* The table of that name, or NULL if not built or not runnable here (for tests). */
const attn__bf16_kernels *attn__bf16_kern_named(const char *name);

#endif
