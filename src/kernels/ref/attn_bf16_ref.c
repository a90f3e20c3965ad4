/* The portable bf16 attention kernels (see kernels/attn_bf16.h): plain C, one query row (or
 * key row) at a time, the reference the vector and tile kernels are tested against. Every
 * product is of bf16 values (exact in fp32) summed in fp32 pair by pair, the odd element of a
 * pair first as VDPBF16PS does; the weights P and dS are rounded to bf16 where the fast
 * kernels round them. Not fast: O(Nk) scratch per row, no tiling. */
#include <math.h>

#include "kernels/attn_bf16.h"

/* sum over feature pairs of a . b, pair by pair (odd element first), fp32. */
static float dot_pairs(const uint32_t *a, const uint32_t *b, int n2) {
    float s = 0.0f;
    for (int c = 0; c < n2; c++) {
        s += attn__bf16_at(a + c, 1) * attn__bf16_at(b + c, 1);
        s += attn__bf16_at(a + c, 0) * attn__bf16_at(b + c, 0);
    }
    return s;
}

/* Element (pair row r, column c) of a pair-packed array with rows of n columns:
 * X[2r + t][c] for t = 0, 1. */
static float pair_at(const uint32_t *xp, int n, int row, int c) {
    return attn__bf16_at(xp + (int64_t)(row >> 1) * n + c, row & 1);
}

/* Masked scores of query i against every key into s (Nk); returns the maximum. */
static float scores_row(const attn__bf16_head *h, int i, float *s) {
    float mx = -INFINITY;
    for (int j = 0; j < h->Nk; j++) {
        s[j] = attn__bf16_mask(h->m, h->scale, i, j, dot_pairs(h->q + (int64_t)i * h->d2, h->k + (int64_t)j * h->d2, h->d2));
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

static void fwd_ref(const attn__bf16_head *h, int i0, int i1, float *o, int64_t o_rs, float *lse, float *s) {
    for (int i = i0; i < i1; i++) {
        float mx = scores_row(h, i, s), l = 0.0f, *oi = o + (int64_t)i * o_rs;
        float ms = mx == -INFINITY ? 0.0f : mx;
        for (int j = 0; j < h->Nk; j++) l += (s[j] = expf(s[j] - ms));
        for (int c = 0; c < h->dv; c++) {
            float acc = 0.0f;
            for (int j = 0; j < h->Nk; j++) acc += attn__bf16_round(s[j]) * pair_at(h->vp, h->dv, j, c);
            oi[c] = l > 0.0f ? acc / l : 0.0f;
        }
        lse[i] = l > 0.0f ? ms + logf(l) : -INFINITY;
    }
}

/* p_ij (rounded to bf16) and ds_ij = p_ij (dO_i . v_j - delta_i) (rounded) of one pair. */
static void grad_elem(const attn__bf16_head *h, const float *lse, const float *delta, int i, int j, float *p, float *ds) {
    float s = attn__bf16_mask(h->m, h->scale, i, j, dot_pairs(h->q + (int64_t)i * h->d2, h->k + (int64_t)j * h->d2, h->d2));
    float li = lse[i] == -INFINITY ? INFINITY : lse[i], pe = expf(s - li);
    float dp = dot_pairs(h->dout + (int64_t)i * h->dv2, h->v + (int64_t)j * h->dv2, h->dv2);
    *p = attn__bf16_round(pe), *ds = attn__bf16_round(pe * (dp - delta[i]));
}

static void dq_ref(const attn__bf16_head *h, const float *lse, const float *delta, int i0, int i1, float *dq,
                   int64_t dq_rs, float *acc) {
    for (int i = i0; i < i1; i++) {
        memset(acc, 0, (size_t)h->d * sizeof *acc);
        for (int j = 0; j < h->Nk; j++) {
            float p, ds;
            grad_elem(h, lse, delta, i, j, &p, &ds);
            for (int c = 0; c < h->d; c++) acc[c] += ds * pair_at(h->kp, ATTN__BF16_DPAD(h->d), j, c);
        }
        for (int c = 0; c < h->d; c++) dq[(int64_t)i * dq_rs + c] = h->scale * acc[c];
    }
}

static void dkv_ref(const attn__bf16_head *h, const float *lse, const float *delta, int j0, int j1, float *dk,
                    int64_t dk_rs, float *dv, int64_t dv_rs, float *scratch) {
    float *ak = scratch, *av = scratch + h->d;
    for (int j = j0; j < j1; j++) {
        memset(ak, 0, (size_t)(h->d + h->dv) * sizeof *ak);
        for (int i = 0; i < h->Nq; i++) {
            float p, ds;
            grad_elem(h, lse, delta, i, j, &p, &ds);
            for (int c = 0; c < h->d; c++) ak[c] += ds * pair_at(h->qp, h->d, i, c);
            for (int c = 0; c < h->dv; c++) av[c] += p * pair_at(h->dop, h->dv, i, c);
        }
        for (int c = 0; dk && c < h->d; c++) dk[(int64_t)j * dk_rs + c] += h->scale * ak[c];
        for (int c = 0; dv && c < h->dv; c++) dv[(int64_t)j * dv_rs + c] += av[c];
    }
}

const attn__bf16_kernels attn__bf16_kernels_ref = {
    .name = "ref", .q_block = 32, .k_block = 64, .fwd = fwd_ref, .bwd_dq = dq_ref, .bwd_dkv = dkv_ref};
