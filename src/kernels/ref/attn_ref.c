/* Reference kernels in portable C: the source of truth that every faster kernel is tested
 * against. Plain loops, one query row at a time; scores are materialised for one row only
 * (Nk floats of scratch), never the whole (Nq, Nk) matrix. */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

static size_t scratch_ref(int Nk, int d, int dv) {
    (void)d;
    (void)dv;
    return 2 * (size_t)Nk + 16;
}

/* Scores of row i: s[j] = scale * q_i . k_j + bias_ij, modified (attn__score_elem), for
 * visible j; -inf otherwise. */
static void score_row(const attn__head *h, int i, float *s) {
    const float *q = h->q + i * h->q_rs;
    for (int j = 0; j < h->Nk; j++) {
        if (!attn__visible(h, i, j)) {
            s[j] = -INFINITY;
            continue;
        }
        const float *k = h->k + j * h->k_rs;
        float acc = 0.0f;
        for (int c = 0; c < h->d; c++) acc += q[c] * k[c];
        s[j] = attn__score_elem(h, i, j, acc * h->scale, 0, NULL);
    }
}

float attn__softmax_row(float *s, const uint8_t *vis, int n) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++)
        if ((!vis || vis[j]) && s[j] > m) m = s[j];
    if (m == -INFINITY) { /* no visible key (zeros), or only NaN scores (NaN, as PyTorch) */
        int nan = 0;
        for (int j = 0; j < n; j++) nan |= (!vis || vis[j]) && isnan(s[j]);
        for (int j = 0; j < n; j++) s[j] = nan ? NAN : 0.0f;
        return nan ? NAN : -INFINITY;
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        float e = (!vis || vis[j]) && s[j] != -INFINITY ? expf(s[j] - m) : 0.0f;
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < n; j++) s[j] *= inv;
    return m + logf(sum);
}

void attn__fwd_ref(const attn__head *h, int i0, int i1, float *o, int64_t o_rs, float *lse,
                   float *p, int64_t p_rs, float *scratch) {
    float *s = scratch;
    for (int i = i0; i < i1; i++) {
        score_row(h, i, s);
        lse[i] = attn__softmax_row(s, NULL, h->Nk);
        float *oi = o + i * o_rs;
        memset(oi, 0, (size_t)h->dv * sizeof *oi);
        for (int j = 0; j < h->Nk; j++) {
            if (s[j] == 0.0f) continue;
            const float *v = h->v + j * h->v_rs;
            float pj = h->drop > 0.0f ? s[j] * attn__drop_factor(h, i, j) : s[j];
            for (int c = 0; c < h->dv; c++) oi[c] += pj * v[c];
        }
        if (p) memcpy(p + i * p_rs, s, (size_t)h->Nk * sizeof *s);
    }
}

/* p_ij recomputed from the forward's lse; 0 for hidden keys and fully masked rows. *g gets
 * the modifiers' derivative d s_ij / d (scale q_i . k_j). */
static float prob(const attn__head *h, const float *lse, int i, int j, float *g) {
    *g = 1.0f;
    if (lse[i] == -INFINITY || !attn__visible(h, i, j)) return 0.0f;
    const float *q = h->q + i * h->q_rs, *k = h->k + j * h->k_rs;
    float acc = 0.0f;
    for (int c = 0; c < h->d; c++) acc += q[c] * k[c];
    acc = attn__score_elem(h, i, j, acc * h->scale, 0, g);
    return acc == -INFINITY ? 0.0f : expf(acc - lse[i]);
}

/* Dropout's factor of weight (i, j), 1 without dropout. */
static float keep(const attn__head *h, int i, int j) { return h->drop > 0.0f ? attn__drop_factor(h, i, j) : 1.0f; }

static float dot(const float *a, const float *b, int n) {
    float acc = 0.0f;
    for (int c = 0; c < n; c++) acc += a[c] * b[c];
    return acc;
}

void attn__bwd_dq_ref(const attn__head *h, const float *lse, const float *delta,
                      const float *dO, int64_t do_rs, int i0, int i1, float *dq, int64_t dq_rs,
                      float *scratch) {
    (void)scratch;
    for (int i = i0; i < i1; i++) {
        float *dqi = dq + i * dq_rs;
        memset(dqi, 0, (size_t)h->d * sizeof *dqi);
        const float *doi = dO + i * do_rs;
        for (int j = 0; j < h->Nk; j++) {
            float g, p = prob(h, lse, i, j, &g);
            if (p == 0.0f) continue;
            float ds = p * (keep(h, i, j) * dot(doi, h->v + j * h->v_rs, h->dv) - delta[i]) * g * h->scale;
            const float *k = h->k + j * h->k_rs;
            for (int c = 0; c < h->d; c++) dqi[c] += ds * k[c];
        }
    }
}

void attn__bwd_dkv_ref(const attn__head *h, const float *lse, const float *delta,
                       const float *dO, int64_t do_rs, int j0, int j1, float *dk, int64_t dk_rs,
                       float *dv, int64_t dv_rs, float *scratch) {
    (void)scratch;
    for (int j = j0; j < j1; j++) {
        const float *vj = h->v + j * h->v_rs;
        for (int i = 0; i < h->Nq; i++) {
            float g, p = prob(h, lse, i, j, &g);
            if (p == 0.0f) continue;
            const float *doi = dO + i * do_rs;
            float f = keep(h, i, j);
            if (dv) {
                float *dvj = dv + j * dv_rs;
                for (int c = 0; c < h->dv; c++) dvj[c] += p * f * doi[c];
            }
            if (dk) {
                float ds = p * (f * dot(doi, vj, h->dv) - delta[i]) * g * h->scale;
                const float *q = h->q + i * h->q_rs;
                float *dkj = dk + j * dk_rs;
                for (int c = 0; c < h->d; c++) dkj[c] += ds * q[c];
            }
        }
    }
}

void attn__sgemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int m = 0; m < M; m++) {
        float *c = C + m * ldc;
        for (int n = 0; n < N; n++) c[n] = beta == 0.0f ? 0.0f : beta * c[n];
        for (int k = 0; k < K; k++) {
            float a = alpha * (transA ? A[k * lda + m] : A[m * lda + k]);
            if (a == 0.0f) continue;
            if (transB) {
                for (int n = 0; n < N; n++) c[n] += a * B[n * ldb + k];
            } else {
                const float *b = B + k * ldb;
                for (int n = 0; n < N; n++) c[n] += a * b[n];
            }
        }
    }
}

/* The reference level: every entry but the optional fast paths (fwd_part, bwd, rowdot). */
const attn__kernels attn__kernels_ref = {
    .name = "ref",
    .q_block = 32,
    .k_block = 32,
    .scratch_floats = scratch_ref,
    .fwd = attn__fwd_ref,
    .bwd_dq = attn__bwd_dq_ref,
    .bwd_dkv = attn__bwd_dkv_ref,
    .sgemm = attn__sgemm_ref,
    ATTN__ROW_ENTRIES(ref),
    .tanh_fwd = attn__tanh_fwd_ref,
    .tanh_bwd = attn__tanh_bwd_ref,
    .sigmoid_fwd = attn__sigmoid_fwd_ref,
    .sigmoid_bwd = attn__sigmoid_bwd_ref,
    .gelu_fwd = attn__gelu_fwd_ref,
    .gelu_bwd = attn__gelu_bwd_ref,
    .sgd = attn__sgd_ref,
    .adam = attn__adam_ref,
    .probs = attn__probs_ref,
};

/* T5's relative position bucket (HF transformers' _relative_position_bucket), in float as
 * there: exact buckets for small distances, logarithmic ones up to max_distance. */
int attn__t5_bucket(int rel, int bidirectional, int num_buckets, int max_distance) {
    int ret = 0, n;
    if (bidirectional) {
        num_buckets /= 2;
        if (rel > 0) ret += num_buckets;
        n = rel < 0 ? -rel : rel;
    } else {
        n = rel < 0 ? -rel : 0;
    }
    int max_exact = num_buckets / 2;
    if (n < max_exact) return ret + n;
    float x = logf((float)n / (float)max_exact) / (float)log((double)max_distance / max_exact) * (float)(num_buckets - max_exact);
    int large = max_exact + (int)x;
    return ret + (large < num_buckets - 1 ? large : num_buckets - 1);
}

/* The weights as attn__fwd_ref writes them: each row's softmax, divided by its sum (which
 * exp(s - lse) would round otherwise); the lse matters only where it is not the row's own
 * (attention sinks: attn__sinks_rescale). */
void attn__probs_ref(const attn__head *h, const float *lse, int i0, int i1, float *p, int64_t p_rs, float *scratch) {
    (void)scratch;
    for (int i = i0; i < i1; i++) {
        float *pr = p + (int64_t)(i - i0) * p_rs;
        score_row(h, i, pr);
        attn__sinks_rescale(pr, h->Nk, attn__softmax_row(pr, NULL, h->Nk), lse[i]);
    }
}
