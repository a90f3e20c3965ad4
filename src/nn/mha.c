/* The multi-head attention layer (PyTorch's nn.MultiheadAttention, batch_first=True): input
 * projections, the attention core of nn/attention.c over strided head views, the output
 * projection; forward and backward side by side. The weights' safetensors files are read and
 * written in models/mha_file.c (nn does not touch files). See attn/mha.h for the semantics.
 * Letters: B batch, Nq/Nk query/key lengths, E embed_dim, H heads, dh = E / H head size,
 * kdim/vdim key/value input features.
 */
#include "attn/mha.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "attn/posenc.h"
#include "core/internal.h"
#include "nn/mha_internal.h"
#include "nn/nn_internal.h"

int attn_mha_config_check(attn_mha_config *cfg) {
    if (!cfg) return attn__error(ATTN_EINVAL, "multi-head attention: config is NULL");
    if (cfg->embed_dim <= 0 || cfg->num_heads <= 0)
        return attn__error(ATTN_EINVAL, "multi-head attention: embed_dim (%d) and num_heads (%d) must be positive",
                           cfg->embed_dim, cfg->num_heads);
    if (cfg->embed_dim % cfg->num_heads != 0)
        return attn__error(ATTN_ESHAPE, "multi-head attention: embed_dim (%d) must be divisible by num_heads (%d)",
                           cfg->embed_dim, cfg->num_heads);
    if (cfg->kdim < 0 || cfg->vdim < 0)
        return attn__error(ATTN_EINVAL, "multi-head attention: kdim (%d) and vdim (%d) must be >= 0", cfg->kdim, cfg->vdim);
    if (cfg->kdim == 0) cfg->kdim = cfg->embed_dim;
    if (cfg->vdim == 0) cfg->vdim = cfg->embed_dim;
    if (cfg->rope && (cfg->embed_dim / cfg->num_heads) % 2 != 0)
        return attn__error(ATTN_ESHAPE, "multi-head attention: rope needs an even head size, not %d",
                           cfg->embed_dim / cfg->num_heads);
    if (cfg->rope && (!isfinite(cfg->rope_base) || cfg->rope_base < 0.0f))
        return attn__error(ATTN_EINVAL, "multi-head attention: rope_base must be positive (or 0 for 10000)");
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Weights. */

/* Floats of each part, in the order of the allocation. */
typedef struct {
    size_t q_w, k_w, v_w, b3, out_w, out_b, total;
} layout;

static layout layout_of(const attn_mha_config *c) {
    layout l;
    size_t E = (size_t)c->embed_dim;
    l.q_w = E * E;
    l.k_w = E * (size_t)c->kdim;
    l.v_w = E * (size_t)c->vdim;
    l.b3 = c->no_bias ? 0 : 3 * E;
    l.out_w = E * E;
    l.out_b = c->no_bias ? 0 : E;
    l.total = l.q_w + l.k_w + l.v_w + l.b3 + l.out_w + l.out_b;
    return l;
}

int attn_mha_weights_init(attn_mha_weights *w, const attn_mha_config *config) {
    if (!w) return attn__error(ATTN_EINVAL, "multi-head attention: weights struct is NULL");
    memset(w, 0, sizeof *w);
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int st = attn_mha_config_check(config ? &cfg : NULL);
    if (st) return st;
    layout l = layout_of(&cfg);
    float *p = attn_calloc(l.total, sizeof(float));
    if (!p) return ATTN_ENOMEM;
    size_t E = (size_t)cfg.embed_dim;
    w->data = p;
    w->size = l.total;
    w->q_w = p, p += l.q_w;
    w->k_w = p, p += l.k_w;
    w->v_w = p, p += l.v_w;
    if (!cfg.no_bias) {
        w->q_b = p, w->k_b = p + E, w->v_b = p + 2 * E;
        p += l.b3;
    }
    w->out_w = p, p += l.out_w;
    if (!cfg.no_bias) w->out_b = p;
    return ATTN_OK;
}

void attn_mha_weights_free(attn_mha_weights *w) {
    if (!w) return;
    attn_free(w->data);
    memset(w, 0, sizeof *w);
}

void attn_mha_weights_zero(attn_mha_weights *w) {
    if (w && w->data) memset(w->data, 0, w->size * sizeof(float));
}

static void fill_uniform(float *x, size_t n, float bound, attn_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * attn_rng_uniform(rng) - 1.0f) * bound;
}

int attn_mha_weights_reset(attn_mha_weights *w, const attn_mha_config *config, attn_rng *rng) {
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int st = attn_mha_config_check(config ? &cfg : NULL);
    if (st) return st;
    if (!w || !w->data || !rng) return attn__error(ATTN_EINVAL, "multi-head attention: reset needs initialised weights and an rng");
    layout l = layout_of(&cfg);
    if (w->size != l.total) return attn__error(ATTN_ESHAPE, "multi-head attention: weights were initialised for another config");
    double E = cfg.embed_dim;
    memset(w->data, 0, w->size * sizeof(float)); /* biases */
    if (cfg.kdim == cfg.embed_dim && cfg.vdim == cfg.embed_dim) {
        /* xavier_uniform_(in_proj_weight (3E, E)): bound sqrt(6 / (fan_in + fan_out)) */
        fill_uniform(w->q_w, l.q_w + l.k_w + l.v_w, (float)sqrt(6.0 / (E + 3.0 * E)), rng);
    } else {
        fill_uniform(w->q_w, l.q_w, (float)sqrt(6.0 / (E + E)), rng);
        fill_uniform(w->k_w, l.k_w, (float)sqrt(6.0 / (E + cfg.kdim)), rng);
        fill_uniform(w->v_w, l.v_w, (float)sqrt(6.0 / (E + cfg.vdim)), rng);
    }
    /* nn.Linear's kaiming_uniform_(a = sqrt(5)): bound 1 / sqrt(fan_in) */
    fill_uniform(w->out_w, l.out_w, (float)(1.0 / sqrt(E)), rng);
    return ATTN_OK;
}

/* Checks a config and that w was initialised for it (attn/mha.h's file functions use it). */
int attn__mha_check_weights(const attn_mha_weights *w, attn_mha_config *cfg) {
    int st = attn_mha_config_check(cfg);
    if (st) return st;
    if (!w || !w->data) return attn__error(ATTN_EINVAL, "multi-head attention: weights are not initialised");
    if (w->size != layout_of(cfg).total)
        return attn__error(ATTN_ESHAPE, "multi-head attention: weights were initialised for another config");
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Cache. */

int attn_mha_cache_init(attn_mha_cache *c, const attn_mha_config *config, int B, int Nq, int Nk) {
    if (!c) return attn__error(ATTN_EINVAL, "multi-head attention: cache struct is NULL");
    memset(c, 0, sizeof *c);
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int st = attn_mha_config_check(config ? &cfg : NULL);
    if (st) return st;
    if (B <= 0 || Nq <= 0 || Nk <= 0)
        return attn__error(ATTN_EINVAL, "multi-head attention: B (%d), Nq (%d) and Nk (%d) must be positive", B, Nq, Nk);
    if ((int64_t)B * Nq > INT_MAX || (int64_t)B * Nk > INT_MAX)
        return attn__error(ATTN_EINVAL, "multi-head attention: B*Nq or B*Nk is too large");
    size_t E = (size_t)cfg.embed_dim, nq, nk, nl;
    if (attn__mul_size((size_t)B * Nq, E, &nq) || attn__mul_size((size_t)B * Nk, E, &nk) ||
        attn__mul_size((size_t)B * Nq, (size_t)cfg.num_heads, &nl) || nq > SIZE_MAX / 8 || nk > SIZE_MAX / 8)
        return attn__error(ATTN_EINVAL, "multi-head attention: cache size overflows");
    float *p = attn_malloc((2 * nq + 2 * nk + nl) * sizeof(float));
    if (!p) return ATTN_ENOMEM;
    c->B = B, c->Nq = Nq, c->Nk = Nk;
    c->data = p;
    c->q = p, p += nq;
    c->k = p, p += nk;
    c->v = p, p += nk;
    c->o = p, p += nq;
    c->lse = p;
    return ATTN_OK;
}

void attn_mha_cache_free(attn_mha_cache *c) {
    if (!c) return;
    attn_free(c->data);
    attn_free(c->grad_data);
    memset(c, 0, sizeof *c);
}

int attn_mha_attn_desc(const attn_mha_config *config, const attn_mha_cache *c, attn_desc *a) {
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int st = attn_mha_config_check(config ? &cfg : NULL);
    if (st) return st;
    if (!c || !a || !c->data) return attn__error(ATTN_EINVAL, "multi-head attention: cache and desc must not be NULL");
    int E = cfg.embed_dim, H = cfg.num_heads, dh = E / H;
    memset(a, 0, sizeof *a);
    a->B = c->B, a->H = H, a->Hkv = H, a->Nq = c->Nq, a->Nk = c->Nk;
    a->dq = a->dk = a->dv = dh;
    a->score = ATTN_SCORE_SCALED;
    /* (B, N, E) read as (B, H, N, dh): head h starts at column h*dh, rows E apart. */
    int64_t q[3] = {(int64_t)c->Nq * E, dh, E}, k[3] = {(int64_t)c->Nk * E, dh, E};
    memcpy(a->q_strides, q, sizeof q);
    memcpy(a->o_strides, q, sizeof q);
    memcpy(a->k_strides, k, sizeof k);
    memcpy(a->v_strides, k, sizeof k);
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Masks: PyTorch's conventions mapped onto attn_mask. The bool masks of nn.MultiheadAttention
 * say "NOT allowed", attn_mask.bool_mask says "allowed": they are inverted (and the key
 * padding and bool attention masks combined) into one temporary uint8 array. */

static int mask_dims(const attn_mha_masks *m, int B, int H, int Nq, int Nk, int64_t dims[4]) {
    const int64_t *s = m->attn_mask_shape;
    if (m->attn_mask_ndim == 2 && s[0] == Nq && s[1] == Nk) {
        int64_t d[4] = {1, 1, Nq, Nk};
        memcpy(dims, d, sizeof d);
        return ATTN_OK;
    }
    if (m->attn_mask_ndim == 3 && s[1] == Nq && s[2] == Nk && (s[0] == (int64_t)B * H || s[0] == H)) {
        int64_t d[4] = {s[0] == (int64_t)B * H ? B : 1, H, Nq, Nk};
        memcpy(dims, d, sizeof d);
        return ATTN_OK;
    }
    if (m->attn_mask_ndim == 2)
        return attn__error(ATTN_ESHAPE, "multi-head attention: 2-D attn_mask has shape (%lld, %lld), expected (%d, %d)",
                           (long long)s[0], (long long)s[1], Nq, Nk);
    if (m->attn_mask_ndim == 3)
        return attn__error(ATTN_ESHAPE, "multi-head attention: 3-D attn_mask has shape (%lld, %lld, %lld), expected (%d, %d, %d) "
                           "or (%d, %d, %d)", (long long)s[0], (long long)s[1], (long long)s[2], B * H, Nq, Nk, H, Nq, Nk);
    return attn__error(ATTN_ESHAPE, "multi-head attention: attn_mask must have 2 or 3 dimensions, not %d", m->attn_mask_ndim);
}

/* Sets a->mask from m; *tmp receives an owned buffer to free after the call (or NULL). */
static int build_masks(const attn_mha_masks *m, attn_desc *a, uint8_t **tmp) {
    *tmp = NULL;
    if (!m) return ATTN_OK;
    int B = a->B, H = a->H, Nq = a->Nq, Nk = a->Nk;
    const int64_t target[4] = {B, H, Nq, Nk};
    if (m->attn_mask_bool && m->attn_mask_float)
        return attn__error(ATTN_EINVAL, "multi-head attention: give a bool or a float attn_mask, not both");
    int64_t dims[4] = {1, 1, 1, 1}, am_strides[4] = {0, 0, 0, 0};
    int st;
    if (m->attn_mask_bool || m->attn_mask_float) {
        if ((st = mask_dims(m, B, H, Nq, Nk, dims))) return st;
        if ((st = attn_broadcast_strides(dims, 4, target, am_strides))) return st;
    }
    a->mask.causal = m->is_causal != 0;
    if (m->attn_mask_float) {
        a->mask.bias = m->attn_mask_float;
        memcpy(a->mask.bias_strides, am_strides, sizeof am_strides);
    }
    const uint8_t *kpm = m->key_padding_mask, *am = m->attn_mask_bool;
    if (!kpm && !am) return ATTN_OK;
    /* The combined "allowed" mask: (B, 1, 1, Nk) for padding alone, else the attention
     * mask's shape, widened to B when padding is combined in. */
    int64_t od[4] = {kpm ? B : 1, 1, 1, Nk};
    if (am) od[0] = kpm ? B : dims[0], od[1] = dims[1], od[2] = Nq;
    int64_t os[4];
    if ((st = attn_broadcast_strides(od, 4, target, os))) return st;
    /* Strides of the attention mask within the combined shape. */
    int64_t as[4] = {0, 0, 0, 0};
    if (am && (st = attn_broadcast_strides(dims, 4, od, as))) return st;
    uint8_t *buf = attn_malloc((size_t)(od[0] * od[1] * od[2] * od[3]));
    if (!buf) return ATTN_ENOMEM;
    size_t idx = 0;
    for (int64_t b = 0; b < od[0]; b++)
        for (int64_t h = 0; h < od[1]; h++)
            for (int64_t i = 0; i < od[2]; i++)
                for (int64_t j = 0; j < od[3]; j++) {
                    int allowed = 1;
                    if (kpm && kpm[b * Nk + j]) allowed = 0;
                    if (am && am[b * as[0] + h * as[1] + i * as[2] + j * as[3]]) allowed = 0;
                    buf[idx++] = (uint8_t)allowed;
                }
    a->mask.bool_mask = buf;
    memcpy(a->mask.bool_strides, os, sizeof os);
    *tmp = buf;
    return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Forward and backward. */

static int check_call(attn_mha_config *cfg, const attn_mha_weights *w, const attn_mha_cache *c, const float *query,
                      const float *key, const float *value) {
    int st = attn__mha_check_weights(w, cfg);
    if (st) return st;
    if (!c || !c->data) return attn__error(ATTN_EINVAL, "multi-head attention: the cache is not initialised");
    if (!query || !key || !value) return attn__error(ATTN_EINVAL, "multi-head attention: query, key and value must not be NULL");
    return ATTN_OK;
}

static void rope_desc(const attn_mha_config *cfg, const attn_desc *a, int keys, attn_rope_desc *r) {
    memset(r, 0, sizeof *r);
    r->B = a->B, r->H = a->H, r->N = keys ? a->Nk : a->Nq, r->dh = a->dq;
    memcpy(r->strides, keys ? a->k_strides : a->q_strides, sizeof r->strides);
    r->base = cfg->rope_base;
}

int attn_mha_forward(const attn_mha_config *config, const attn_mha_weights *w, attn_mha_cache *c,
                     const float *query, const float *key, const float *value, const attn_mha_masks *masks,
                     float *out, float *weights, int average_weights) {
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int st = check_call(config ? &cfg : NULL, w, c, query, key, value);
    if (st) return st;
    if (!out) return attn__error(ATTN_EINVAL, "multi-head attention: out must not be NULL");
    int B = c->B, Nq = c->Nq, Nk = c->Nk, E = cfg.embed_dim, H = cfg.num_heads;
    attn_desc a;
    uint8_t *mask_buf = NULL;
    float *P = NULL;
    if ((st = attn_mha_attn_desc(&cfg, c, &a)) || (st = build_masks(masks, &a, &mask_buf))) goto done;

    /* q = query W_q^T + b_q, k = key W_k^T + b_k, v = value W_v^T + b_v */
    attn__linear_forward(c->q, query, 0, w->q_w, w->q_b, B * Nq, E, E);
    attn__linear_forward(c->k, key, 0, w->k_w, w->k_b, B * Nk, cfg.kdim, E);
    attn__linear_forward(c->v, value, 0, w->v_w, w->v_b, B * Nk, cfg.vdim, E);
    if (cfg.rope) {
        attn_rope_desc r;
        rope_desc(&cfg, &a, 0, &r);
        if ((st = attn_rope_forward(&r, c->q))) goto done;
        rope_desc(&cfg, &a, 1, &r);
        if ((st = attn_rope_forward(&r, c->k))) goto done;
    }

    /* o_h = softmax(q_h k_h^T / sqrt(dh) + masks) v_h, written straight into (B, Nq, E). */
    if (weights) {
        if (average_weights) {
            P = attn_malloc((size_t)B * H * Nq * Nk * sizeof(float));
            if (!P) {
                st = ATTN_ENOMEM;
                goto done;
            }
        }
        if ((st = attn_forward(&a, c->q, c->k, c->v, c->o, P ? P : weights, c->lse))) goto done;
        if (P) {
            /* weights (B, Nq, Nk) = sum_h P (B, H, Nq, Nk) / H, as PyTorch. */
            size_t plane = (size_t)Nq * Nk;
            for (int b = 0; b < B; b++) {
                float *wb = weights + (size_t)b * plane;
                memcpy(wb, P + (size_t)b * H * plane, plane * sizeof(float));
                for (int h = 1; h < H; h++) {
                    const float *ph = P + ((size_t)b * H + h) * plane;
                    for (size_t t = 0; t < plane; t++) wb[t] += ph[t];
                }
                for (size_t t = 0; t < plane; t++) wb[t] /= (float)H;
            }
        }
    } else if ((st = attn_forward(&a, c->q, c->k, c->v, c->o, NULL, c->lse))) {
        goto done;
    }

    /* out = o W_out^T + b_out */
    attn__linear_forward(out, c->o, 0, w->out_w, w->out_b, B * Nq, E, E);
done:
    attn_free(P);
    attn_free(mask_buf);
    return st;
}

int attn_mha_backward(const attn_mha_config *config, const attn_mha_weights *w, attn_mha_cache *c,
                      const float *query, const float *key, const float *value, const attn_mha_masks *masks,
                      const float *dout, float *dquery, float *dkey, float *dvalue, attn_mha_weights *g) {
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int st = check_call(config ? &cfg : NULL, w, c, query, key, value);
    if (st) return st;
    if (!dout) return attn__error(ATTN_EINVAL, "multi-head attention: dout must not be NULL");
    if (g && (!g->data || g->size != w->size))
        return attn__error(ATTN_ESHAPE, "multi-head attention: gradients are not initialised for this config");
    int B = c->B, Nq = c->Nq, Nk = c->Nk, E = cfg.embed_dim;
    size_t nq = (size_t)B * Nq * E, nk = (size_t)B * Nk * E;
    if (!c->grad_data && !(c->grad_data = attn_malloc((2 * nq + 2 * nk) * sizeof(float)))) return ATTN_ENOMEM;
    float *dq = c->grad_data, *dk = dq + nq, *dv = dk + nk, *dO = dv + nk; /* (B,Nq,E) (B,Nk,E) (B,Nk,E) (B,Nq,E) */
    attn_desc a;
    uint8_t *mask_buf = NULL;
    if ((st = attn_mha_attn_desc(&cfg, c, &a)) || (st = build_masks(masks, &a, &mask_buf))) goto done;

    /* out = o W_out^T + b_out  =>  dO = dout W_out, dW_out += dout^T o, db_out += sum dout */
    attn__linear_backward(dO, 0, g ? g->out_w : NULL, 1, g ? g->out_b : NULL, 1, dout, c->o, 0, w->out_w, B * Nq, E, E);
    /* The attention core, on the same strided views. */
    if ((st = attn_backward(&a, c->q, c->k, c->v, c->o, c->lse, dO, dq, dk, dv, NULL))) goto done;
    if (cfg.rope) {
        attn_rope_desc r;
        rope_desc(&cfg, &a, 0, &r);
        if ((st = attn_rope_backward(&r, dq))) goto done;
        rope_desc(&cfg, &a, 1, &r);
        if ((st = attn_rope_backward(&r, dk))) goto done;
    }
    /* q = query W_q^T + b_q  =>  dquery = dq W_q, dW_q += dq^T query, db_q += sum dq; same for k, v. */
    attn__linear_backward(dquery, 0, g ? g->q_w : NULL, 1, g ? g->q_b : NULL, 1, dq, query, 0, w->q_w, B * Nq, E, E);
    attn__linear_backward(dkey, 0, g ? g->k_w : NULL, 1, g ? g->k_b : NULL, 1, dk, key, 0, w->k_w, B * Nk, cfg.kdim, E);
    attn__linear_backward(dvalue, 0, g ? g->v_w : NULL, 1, g ? g->v_b : NULL, 1, dv, value, 0, w->v_w, B * Nk, cfg.vdim, E);
done:
    attn_free(mask_buf);
    return st;
}
