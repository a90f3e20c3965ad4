/* The second and third steps of attention on their own, for learners who look at each one
 * (the first, attn_scores, is in nn/attention.c beside the kernels' preparation):
 *   attn_normalize     P = softmax(S + bias) over the keys each query may see (the masks);
 *   attn_weighted_sum  O = P V, per head (grouped heads read their key/value head's V).
 * The fused attn_forward does all three without holding S or P. */
#include "attn/attention.h"

#include <stdint.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/attention_bf16.h"
#include "nn/attention_mods.h"

typedef struct {
    const attn_desc *a;
    const float *S;
    float *P;
    uint8_t *vis; /* Nk per thread */
} norm_job;

static void norm_task(void *ctx, int task, int thread) {
    norm_job *j = ctx;
    const attn_desc *a = j->a;
    int b = task / a->H, h = task % a->H;
    attn__head hd = attn__desc_head(a, b, h); /* the masks alone */
    attn__mods_head(&hd, a, b, h, NULL, NULL);
    uint8_t *vis = j->vis + (size_t)thread * a->Nk;
    for (int i = 0; i < a->Nq; i++) {
        const float *s = j->S + ((size_t)task * a->Nq + i) * a->Nk;
        float *pr = j->P + ((size_t)task * a->Nq + i) * a->Nk;
        for (int k = 0; k < a->Nk; k++) {
            vis[k] = (uint8_t)attn__visible(&hd, i, k);
            pr[k] = s[k] + (hd.bias && vis[k] ? hd.bias[i * hd.bias_rs + k * hd.bias_cs] : 0.0f);
        }
        attn__softmax_row(pr, vis, a->Nk);
    }
}

int attn_normalize(const attn_desc *desc, const float *S, float *P) {
    attn_desc a = *desc;
    int st = attn_desc_check(&a);
    if (st) return st;
    if (!S || !P) return attn__error(ATTN_EINVAL, "S and P must not be NULL");
    norm_job j = {&a, S, P, attn_malloc((size_t)a.Nk * attn__max_threads())};
    if (!j.vis) return ATTN_ENOMEM;
    attn__parallel(a.B * a.H, norm_task, &j);
    attn_free(j.vis);
    return ATTN_OK;
}

int attn_weighted_sum(const attn_desc *desc, const float *P, const float *V, float *O) {
    attn_desc a = *desc;
    int st = attn_desc_check(&a);
    if (st) return st;
    if (!P || !V || !O) return attn__error(ATTN_EINVAL, "P, V and O must not be NULL");
    int G = a.H / a.Hkv;
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.H; h++)
            attn__kern()->sgemm(0, 0, a.Nq, a.dv, a.Nk, 1.0f, P + ((size_t)b * a.H + h) * a.Nq * a.Nk, a.Nk,
                                V + b * a.v_strides[0] + (h / G) * a.v_strides[1], a.v_strides[2], 0.0f,
                                O + b * a.o_strides[0] + h * a.o_strides[1], a.o_strides[2]);
    return ATTN_OK;
}
