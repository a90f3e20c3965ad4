/* Decoding with the Transformer: the encoder runs once on the tape (no gradients, evaluation
 * mode), then the decoder runs one position at a time for every hypothesis at once, keeping
 * each layer's keys and values of the positions already decoded (the key/value cache), so a
 * step costs O(t) attention instead of recomputing the whole prefix. Greedy search is beam
 * search with K = 1. Beam search follows fairseq's: each step keeps the 2K best extensions
 * of the K hypotheses of a sentence; an extension ending in <eos> among the K best finishes a
 * hypothesis, scored log p / n^alpha with n its length counting <eos> (the length
 * normalisation of attn/seq2seq.h, so both families rank alike); a sentence is done when K
 * hypotheses finished.
 * Letters: B sentences, K beams, R = B K decoder rows, S source length, t the step (the
 * position of the newest input token), Tc the cache capacity, E d_model, H heads, Hkv key/
 * value heads, dh = E / H, KV = Hkv dh, F3 = E + 2 KV, F d_ff, V target vocabulary. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "attn/kvcache.h"
#include "attn/layers.h"
#include "attn/posenc.h"
#include "attn/text.h"
#include "core/internal.h"
#include "models/transformer_internal.h"
#include "nn/nn_internal.h"

_Atomic int tr_paged_kv = 1;
_Atomic int64_t tr_kv_bytes_copied = 0;
_Atomic int64_t tr_decode_steps = 0;

typedef struct {
    const attn_transformer *m;
    int B, K, R, S, Tc;
    const int32_t *src_len; /* (B) */
    float *mem;             /* (B, S, E) */
    float **ckv;            /* per decoder layer: (B, S, 2 KV) cross keys then values */
    float **kc, **vc;       /* dense cache, per decoder layer: (R, Tc, KV) */
    float *spare;           /* (R, Tc, KV): gather target when beams are reordered */
    attn_kvcache **kv;      /* paged cache, per decoder layer: row r is sequence slot[r] */
    int *slot;              /* (R) slots: rows alternate between slots [0, R) and [R, 2R) */
    float *x, *h, *qkv, *o, *f, *ff, *logits, *lse, *bias, *pe; /* step scratch */
    float *block;           /* the one allocation holding all of the above */
    attn_plan *sa, *ca;     /* self- and cross-attention plans, reused by every step and layer */
} dec_state;

static void dec_free(dec_state *d) {
    for (int l = 0; d->kv && l < d->m->cfg.dec_layers; l++) {
        attn_kvcache_stats s;
        if (d->kv[l] && attn_kvcache_get_stats(d->kv[l], &s) == ATTN_OK) tr_kv_bytes_copied += s.bytes_copied;
        attn_kvcache_free(d->kv[l]);
    }
    attn_free(d->kv);
    attn_free(d->slot);
    attn_plan_free(d->sa);
    attn_plan_free(d->ca);
    attn_free(d->block);
    attn_free(d->ckv);
    memset(d, 0, sizeof *d);
}

/* Causal self-attention of step t over the cache: the R rows' queries (in the packed qkv
 * rows, (R, F3)) over keys and values of positions [0, t] in kc, vc (R, Tc, KV); ALiBi's
 * bias (H, t + 1) when the model uses it. */
static void self_desc(const dec_state *d, int t, attn_desc *a) {
    const attn_transformer *m = d->m;
    int E = m->cfg.d_model, dh = m->dh, KV = m->KV, F3 = E + 2 * KV;
    *a = (attn_desc){.B = d->R, .H = m->cfg.heads, .Hkv = m->cfg.kv_heads, .Nq = 1, .Nk = t + 1, .dq = dh,
                     .score = ATTN_SCORE_SCALED};
    int64_t qs[3] = {F3, dh, F3}, ks[3] = {(int64_t)d->Tc * KV, dh, KV}, os[3] = {E, dh, E};
    memcpy(a->q_strides, qs, sizeof qs), memcpy(a->k_strides, ks, sizeof ks), memcpy(a->v_strides, ks, sizeof ks);
    memcpy(a->o_strides, os, sizeof os);
    if (m->cfg.pos == ATTN_POS_ALIBI) {
        a->mask.bias = d->bias;
        a->mask.bias_strides[0] = 0, a->mask.bias_strides[1] = t + 1, a->mask.bias_strides[2] = t + 1, a->mask.bias_strides[3] = 1;
    }
}

/* Cross-attention: the K beams of a sentence are K queries (in (R, E) rows) over its memory's
 * keys and values (ckv, (B, S, 2 KV)), S keys masked to the sentence's length. */
static void cross_desc(const dec_state *d, attn_desc *a) {
    const attn_transformer *m = d->m;
    int E = m->cfg.d_model, dh = m->dh, KV = m->KV;
    *a = (attn_desc){.B = d->B, .H = m->cfg.heads, .Hkv = m->cfg.kv_heads, .Nq = d->K, .Nk = d->S, .dq = dh,
                     .score = ATTN_SCORE_SCALED};
    int64_t cq[3] = {(int64_t)d->K * E, dh, E}, ck[3] = {(int64_t)d->S * 2 * KV, dh, 2 * KV}, co[3] = {(int64_t)d->K * E, dh, E};
    memcpy(a->q_strides, cq, sizeof cq), memcpy(a->k_strides, ck, sizeof ck), memcpy(a->v_strides, ck, sizeof ck);
    memcpy(a->o_strides, co, sizeof co);
    a->mask.key_lengths = d->src_len;
}

/* The paged caches: per layer a pool of R (ceil(Tc / 16) + 1) blocks of 16 tokens, enough for
 * R rows that share nothing, and 2R sequence slots so that a reorder can fork the new rows
 * from the old before letting the old go. */
static int dec_paged_init(dec_state *d) {
    const attn_transformer *m = d->m;
    int L = m->cfg.dec_layers, bs = 16, st = ATTN_OK;
    attn_kvcache_config kc = {.Hkv = m->cfg.kv_heads, .dk = m->dh, .dv = m->dh, .block_size = bs,
                              .num_blocks = d->R * ((d->Tc + bs - 1) / bs + 1), .max_seqs = 2 * d->R};
    d->kv = attn_calloc((size_t)L, sizeof *d->kv);
    d->slot = attn_malloc((size_t)d->R * sizeof *d->slot);
    if (!d->kv || !d->slot) return attn__error(ATTN_ENOMEM, "transformer decoding: out of memory");
    for (int r = 0; r < d->R; r++) d->slot[r] = r;
    for (int l = 0; l < L && !st; l++) st = attn_kvcache_new(&kc, &d->kv[l]);
    return st;
}

static int dec_init(dec_state *d, const attn_transformer *m, int B, int K, int S, int Tc, const int32_t *src_len) {
    const attn_transformer_config *c = &m->cfg;
    memset(d, 0, sizeof *d);
    d->m = m, d->B = B, d->K = K, d->R = B * K, d->S = S, d->Tc = Tc, d->src_len = src_len;
    int paged = tr_paged_kv;
    size_t R = (size_t)d->R, E = (size_t)c->d_model, KV = (size_t)m->KV, L = (size_t)c->dec_layers;
    size_t dense = paged ? 0 : R * (size_t)Tc * KV; /* floats per dense cache */
    size_t F3 = E + 2 * KV, V = (size_t)c->tgt_vocab, F = (size_t)c->d_ff, H = (size_t)c->heads;
    size_t sizes[] = {
        (size_t)B * S * E,             /* mem */
        L * (size_t)B * S * 2 * KV,    /* ckv */
        2 * L * dense,                 /* kc, vc */
        dense,                         /* spare */
        R * E, R * E, R * F3, R * E, R * E, R * F, R * V, R * H, H * (size_t)Tc, E,
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += (sizes[i] + 15) & ~(size_t)15;
    d->block = attn_malloc(total * sizeof(float));
    d->ckv = attn_calloc(3 * L, sizeof(float *));
    if (!d->block || !d->ckv) {
        dec_free(d);
        return attn__error(ATTN_ENOMEM, "transformer decoding: out of memory (%zu floats)", total);
    }
    d->kc = d->ckv + L, d->vc = d->ckv + 2 * L;
    float *p = d->block;
#define TAKE(n) (p += ((n) + 15) & ~(size_t)15, p - (((n) + 15) & ~(size_t)15))
    d->mem = TAKE(sizes[0]);
    for (size_t l = 0; l < L; l++) d->ckv[l] = TAKE((size_t)B * S * 2 * KV);
    for (size_t l = 0; l < L; l++) d->kc[l] = TAKE(dense);
    for (size_t l = 0; l < L; l++) d->vc[l] = TAKE(dense);
    d->spare = TAKE(sizes[3]);
    d->x = TAKE(R * E), d->h = TAKE(R * E), d->qkv = TAKE(R * F3), d->o = TAKE(R * E), d->f = TAKE(R * E);
    d->ff = TAKE(R * F), d->logits = TAKE(R * V), d->lse = TAKE(R * H), d->bias = TAKE(H * (size_t)Tc), d->pe = TAKE(E);
#undef TAKE
    /* The self-attention plan is made for the longest step (Nk = Tc): later steps reshape it
     * to fewer keys and allocate nothing. */
    attn_desc sa, ca;
    self_desc(d, Tc - 1, &sa);
    cross_desc(d, &ca);
    int st = paged ? dec_paged_init(d) : ATTN_OK;
    if (!st) st = attn_plan_new(&sa, &d->sa);
    if (!st) st = attn_plan_new(&ca, &d->ca);
    if (st) dec_free(d);
    return st;
}

static int check_src(const attn_transformer *m, int B, int S, const int32_t *src, const int32_t *src_len) {
    const attn_transformer_config *c = &m->cfg;
    if (B < 1 || S < 1 || !src || !src_len) return attn__error(ATTN_EINVAL, "transformer decoding: empty or NULL source");
    if (S > c->max_len) return attn__error(ATTN_EINVAL, "transformer: source of %d tokens is longer than max_len %d", S, c->max_len);
    for (int i = 0; i < B; i++)
        if (src_len[i] < 1 || src_len[i] > S)
            return attn__error(ATTN_EINVAL, "transformer: source length %d of row %d is outside [1, %d]", src_len[i], i, S);
    return tr_check_ids(src, (int64_t)B * S, c->src_vocab, "source");
}

/* Runs the encoder and the cross-attention key/value projections of every decoder layer. */
static int dec_encode(dec_state *d, const int32_t *src) {
    const attn_transformer *m = d->m;
    const attn_transformer_config *c = &m->cfg;
    attn_graph *g;
    int st = attn_graph_new(0, &g);
    if (st) return st;
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    attn_var *mem = tr_encode((attn_transformer *)m, g, src, d->src_len, d->B, d->S, NULL);
    st = attn_graph_status(g);
    if (!st && !mem) st = attn__error(ATTN_EINVAL, "transformer decoding: the encoder failed");
    if (!st) memcpy(d->mem, mem->data, (size_t)mem->numel * sizeof(float));
    attn_graph_free(g);
    if (st) return st;
    int E = c->d_model, KV = m->KV, M = d->B * d->S;
    for (int l = 0; l < c->dec_layers; l++) {
        const tr_mha *a = &m->dec[l].ca;
        /* ckv (B S, 2 KV) = mem (B S, E) W_in[E : E + 2 KV]^T + b_in[E : E + 2 KV] */
        attn__linear_forward(d->ckv[l], d->mem, 0, a->in_w->data + (size_t)E * E, a->in_b->data + E, M, E, 2 * KV);
    }
    return ATTN_OK;
}

static void layer_norm(float *out, const float *in, const attn_param *w, const attn_param *b, int R, int E, float eps) {
    attn_layernorm_forward(out, NULL, NULL, in, w->data, b->data, R, E, eps);
}

/* x (R, E) += f (R, E), then the norm for post-LN. */
static void add_norm(const attn_transformer *m, float *x, const float *f, const tr_layer *L, int k, int R) {
    const attn_transformer_config *c = &m->cfg;
    size_t n = (size_t)R * c->d_model;
    for (size_t i = 0; i < n; i++) x[i] += f[i];
    if (!c->norm_first) layer_norm(x, x, L->nw[k], L->nb[k], R, c->d_model, c->ln_eps);
}

/* The sublayer input: the norm of x for pre-LN (into h), x itself for post-LN. */
static const float *sub_in(const attn_transformer *m, dec_state *d, const tr_layer *L, int k) {
    const attn_transformer_config *c = &m->cfg;
    if (!c->norm_first) return d->x;
    layer_norm(d->h, d->x, L->nw[k], L->nb[k], d->R, c->d_model, c->ln_eps);
    return d->h;
}

/* The bias (H, t + 1) of the query at position t over keys 0..t with this layer's learned
 * ALiBi slopes: slope_h (j - t), the bottom-right-aligned form of training's slope_h (j - i). */
static void learned_bias(float *bias, const float *slopes, int H, int t) {
    for (int h = 0; h < H; h++)
        for (int j = 0; j <= t; j++) bias[(size_t)h * (t + 1) + j] = slopes[h] * (float)(j - t);
}

/* Self-attention of layer l at step t: the rows' new keys and values (in qkv) into the cache,
 * then their queries over it; the paged cache gives the dense one's bits (the same kernel). */
static int self_attend(dec_state *d, int l, int t, const attn_desc *sa) {
    int R = d->R, E = d->m->cfg.d_model, KV = d->m->KV, F3 = E + 2 * KV, st = ATTN_OK;
    for (int r = 0; r < R; r++) {
        const float *row = d->qkv + (size_t)r * F3;
        if (d->kv) {
            if ((st = attn_kvcache_append(d->kv[l], d->slot[r], 1, row + E, 0, row + E + KV, 0)) != ATTN_OK) return st;
            continue;
        }
        memcpy(d->kc[l] + ((size_t)r * d->Tc + t) * KV, row + E, (size_t)KV * sizeof(float));
        memcpy(d->vc[l] + ((size_t)r * d->Tc + t) * KV, row + E + KV, (size_t)KV * sizeof(float));
    }
    if (!d->kv) return attn_plan_forward(d->sa, d->qkv, d->kc[l], d->vc[l], d->o, NULL, d->lse);
    attn_kvcache_query q = {.nseq = R, .seqs = d->slot, .H = sa->H, .nq = 1, .scale = sa->scale,
                            .bias = sa->mask.bias, .q_strides = {F3, sa->dq, F3}, .o_strides = {E, sa->dq, E}};
    memcpy(q.bias_strides, sa->mask.bias_strides, sizeof q.bias_strides);
    q.bias_strides[2] = 0; /* one query row */
    return attn_kvcache_attend(d->kv[l], &q, d->qkv, d->o, d->lse);
}

/* One decoder step at position t for every row: tok (R) the newest input tokens; leaves the
 * log-probabilities of the next token in d->logits (R, V). */
static int dec_step(dec_state *d, const int32_t *tok, int t) {
    const attn_transformer *m = d->m;
    const attn_transformer_config *c = &m->cfg;
    int R = d->R, E = c->d_model, H = c->heads, Hkv = c->kv_heads, dh = m->dh, KV = m->KV, F3 = E + 2 * KV;
    int V = c->tgt_vocab, st;
    /* Embedding, scale, position. */
    float scale = c->scale_embed ? (float)sqrt((double)E) : 1.0f;
    const float *pe = NULL;
    if (c->pos == ATTN_POS_SINUSOIDAL) pe = m->sin_table + (size_t)t * E;
    else if (c->pos == ATTN_POS_LEARNED) pe = m->tgt_pos->data + (size_t)t * E;
    for (int r = 0; r < R; r++) {
        const float *e = m->tgt_emb->data + (size_t)tok[r] * E;
        float *x = d->x + (size_t)r * E;
        for (int i = 0; i < E; i++) x[i] = e[i] * scale + (pe ? pe[i] : 0.0f);
    }
    if (c->pos == ATTN_POS_ALIBI && !c->alibi_learn && (st = attn_alibi_bias(H, 1, t + 1, t, 0, d->bias)) != ATTN_OK)
        return st;
    tr_decode_steps++;
    attn_desc sa;
    self_desc(d, t, &sa);
    if ((st = attn_plan_reshape(d->sa, &sa)) != ATTN_OK) return st;
    for (int l = 0; l < c->dec_layers; l++) {
        const tr_layer *L = &m->dec[l];
        /* Causal self-attention over the cache. */
        const float *in = sub_in(m, d, L, 0);
        attn__linear_forward(d->qkv, in, 0, L->sa.in_w->data, L->sa.in_b->data, R, E, F3);
        if (c->pos == ATTN_POS_ROPE) {
            attn_rope_desc rq = {.B = R, .H = H, .N = 1, .dh = dh, .strides = {F3, dh, F3}, .base = c->rope_base, .offset = t};
            attn_rope_desc rk = rq;
            rk.H = Hkv;
            if ((st = attn_rope_forward(&rq, d->qkv)) || (st = attn_rope_forward(&rk, d->qkv + E))) return st;
        }
        if (L->slopes) learned_bias(d->bias, L->slopes->data, H, t);
        if ((st = self_attend(d, l, t, &sa)) != ATTN_OK) return st;
        attn__linear_forward(d->f, d->o, 0, L->sa.out_w->data, L->sa.out_b->data, R, E, E);
        add_norm(m, d->x, d->f, L, 0, R);
        /* Cross-attention: the K beams of a sentence are K queries over its memory. */
        in = sub_in(m, d, L, 1);
        attn__linear_forward(d->qkv, in, 0, L->ca.in_w->data, L->ca.in_b->data, R, E, E);
        if ((st = attn_plan_forward(d->ca, d->qkv, d->ckv[l], d->ckv[l] + KV, d->o, NULL, d->lse)) != ATTN_OK) return st;
        attn__linear_forward(d->f, d->o, 0, L->ca.out_w->data, L->ca.out_b->data, R, E, E);
        add_norm(m, d->x, d->f, L, 1, R);
        /* Feed-forward. */
        in = sub_in(m, d, L, 2);
        attn__linear_forward(d->ff, in, 0, L->l1w->data, L->l1b->data, R, E, c->d_ff);
        size_t nff = (size_t)R * c->d_ff;
        if (c->activation == ATTN_ACT_GELU) attn_gelu_forward(d->ff, d->ff, nff);
        else attn_relu_forward(d->ff, d->ff, nff);
        attn__linear_forward(d->f, d->ff, 0, L->l2w->data, L->l2b->data, R, c->d_ff, E);
        add_norm(m, d->x, d->f, L, 2, R);
    }
    layer_norm(d->h, d->x, m->dec_nw, m->dec_nb, R, E, c->ln_eps);
    attn__linear_forward(d->logits, d->h, 0, m->gen_w->data, m->gen_b->data, R, E, V);
    return attn_log_softmax_forward(d->logits, d->logits, R, V);
}

/* Reorders the cache rows: row r gets the old row from[r], positions [0, n). */
static void dec_reorder(dec_state *d, const int *from, int n) {
    int identity = 1;
    for (int r = 0; r < d->R && identity; r++) identity = from[r] == r;
    if (identity) return;
    const attn_transformer *m = d->m;
    if (d->kv) { /* the new rows share the old rows' blocks: a fork per row, no copy */
        int other = d->slot[0] < d->R ? d->R : 0;
        for (int l = 0; l < m->cfg.dec_layers; l++) {
            for (int r = 0; r < d->R; r++) attn_kvcache_fork(d->kv[l], d->slot[from[r]], other + r);
            for (int r = 0; r < d->R; r++) attn_kvcache_reset(d->kv[l], d->slot[r]);
        }
        for (int r = 0; r < d->R; r++) d->slot[r] = other + r;
        return;
    }
    tr_kv_bytes_copied += (int64_t)2 * m->cfg.dec_layers * d->R * n * m->KV * (int64_t)sizeof(float);
    size_t KV = (size_t)m->KV, row = (size_t)d->Tc * KV;
    for (int l = 0; l < m->cfg.dec_layers; l++)
        for (int which = 0; which < 2; which++) {
            float **c = which ? &d->vc[l] : &d->kc[l];
            for (int r = 0; r < d->R; r++) memcpy(d->spare + r * row, *c + (size_t)from[r] * row, (size_t)n * KV * sizeof(float));
            float *tmp = *c;
            *c = d->spare;
            d->spare = tmp;
        }
}

static double length_penalty(float alpha, int n) { return alpha == 0.0f ? 1.0 : pow((double)n, (double)alpha); }

typedef struct {
    float score; /* cumulative log p */
    int k, tok;  /* parent beam and token */
} cand;

/* Inserts c into the sorted (descending) list best[0..*n) of capacity cap. */
static void cand_push(cand *best, int *n, int cap, cand c) {
    if (*n == cap && !(c.score > best[cap - 1].score)) return;
    int i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && best[i - 1].score < c.score) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = c;
}

int attn_transformer_translate(const attn_transformer *m, int B, int S, const int32_t *src, const int32_t *src_len,
                               const attn_decode_opts *opts, int cap, int32_t *out, int32_t *out_len,
                               attn_transformer_result *res) {
    if (!m || !out || !out_len || cap < 0) return attn__error(ATTN_EINVAL, "attn_transformer_translate: NULL argument");
    int st = check_src(m, B, S, src, src_len);
    if (st) return st;
    const attn_transformer_config *c = &m->cfg;
    int K = opts && opts->beam > 0 ? opts->beam : 1;
    float alpha = opts ? opts->length_penalty : 0.0f;
    int V = c->tgt_vocab;
    if (K > V) K = V;
    int maxS = 0;
    for (int b = 0; b < B; b++) maxS = src_len[b] > maxS ? src_len[b] : maxS;
    int Lmax = opts && opts->max_len > 0 ? opts->max_len : 2 * maxS + 10;
    if (Lmax > c->max_len - 1) Lmax = c->max_len - 1;
    dec_state d;
    if ((st = dec_init(&d, m, B, K, S, Lmax + 1, src_len)) != ATTN_OK) return st;
    int R = B * K;
    /* Per row: cumulative log p, tokens so far; per sentence: done flag, best finished. */
    float *cum = attn_malloc((size_t)R * sizeof(float));
    int32_t *hist = attn_malloc((size_t)R * (Lmax + 1) * sizeof(int32_t));
    int32_t *hist2 = attn_malloc((size_t)R * (Lmax + 1) * sizeof(int32_t));
    int32_t *tok = attn_malloc((size_t)R * sizeof(int32_t));
    int *from = attn_malloc((size_t)R * sizeof(int));
    int *nfin = attn_calloc((size_t)B, sizeof(int));
    double *best = attn_malloc((size_t)B * sizeof(double));
    cand *cands = attn_malloc((size_t)2 * K * sizeof(cand));
    int *live = attn_malloc((size_t)R * sizeof(int));
    const attn_decode_hook *hook = opts ? opts->hook : NULL;
    if (!cum || !hist || !hist2 || !tok || !from || !nfin || !best || !cands || !live) {
        st = attn__error(ATTN_ENOMEM, "transformer decoding: out of memory");
        goto done;
    }
    if ((st = dec_encode(&d, src)) != ATTN_OK) goto done;
    for (int b = 0; b < B; b++) {
        best[b] = -INFINITY;
        out_len[b] = 0;
        if (res) res[b].logp = res[b].score = -INFINITY, res[b].eos = 0;
        for (int k = 0; k < K; k++) cum[b * K + k] = k == 0 ? 0.0f : -INFINITY; /* one live beam at first */
    }
    for (int r = 0; r < R; r++) tok[r] = ATTN_BOS;
    int remaining = B;
    for (int t = 0; t <= Lmax && remaining > 0; t++) {
        if ((st = dec_step(&d, tok, t)) != ATTN_OK) goto done;
        int last = t == Lmax; /* only <eos> may follow: the length limit is reached */
        if (hook && !last) { /* the rows still searching: live beams of unfinished sentences */
            int nl = 0;
            for (int r = 0; r < R; r++)
                if (nfin[r / K] < K && cum[r] != -INFINITY) live[nl++] = r;
            if ((st = hook->fn(hook->ctx, nl, live, d.h, c->d_model, d.logits, V)) != ATTN_OK) goto done;
        }
        for (int b = 0; b < B; b++) {
            for (int k = 0; k < K; k++) from[b * K + k] = b * K + k;
            if (nfin[b] >= K) continue;
            /* The 2K best extensions of the live beams. */
            int nc = 0;
            for (int k = 0; k < K; k++) {
                float base = cum[b * K + k];
                if (base == -INFINITY) continue;
                const float *lp = d.logits + (size_t)(b * K + k) * V;
                if (last) { /* the length limit: the hypothesis ends here, without <eos> */
                    cand_push(cands, &nc, 2 * K, (cand){base, k, ATTN_EOS});
                    continue;
                }
                for (int v = 0; v < V; v++) {
                    float s = base + lp[v];
                    if (nc == 2 * K && !(s > cands[nc - 1].score)) continue;
                    cand_push(cands, &nc, 2 * K, (cand){s, k, v});
                }
            }
            int alive = 0;
            for (int i = 0; i < nc && alive < K; i++) {
                cand cd = cands[i];
                int prow = b * K + cd.k;
                if (cd.tok == ATTN_EOS) {
                    if (i >= K && !last) continue; /* only <eos> among the K best finishes a beam */
                    double sc = cd.score / length_penalty(alpha, t + !last);
                    if (sc > best[b]) {
                        best[b] = sc;
                        int n = t < cap ? t : cap;
                        for (int j = 0; j < n; j++) out[(size_t)b * cap + j] = hist[(size_t)prow * (Lmax + 1) + j];
                        out_len[b] = n;
                        if (res) res[b].logp = cd.score, res[b].score = sc, res[b].eos = !last;
                    }
                    if (++nfin[b] >= K) break;
                    continue;
                }
                int r = b * K + alive++;
                from[r] = prow;
                cum[r] = cd.score;
                tok[r] = cd.tok;
                memcpy(hist2 + (size_t)r * (Lmax + 1), hist + (size_t)prow * (Lmax + 1), (size_t)t * sizeof(int32_t));
                hist2[(size_t)r * (Lmax + 1) + t] = cd.tok;
            }
            if (last || nc == 0) nfin[b] = K;
            if (nfin[b] >= K) {
                remaining--;
                alive = 0;
            }
            for (int k = alive; k < K; k++) { /* dead rows: keep decoding something harmless */
                int r = b * K + k;
                cum[r] = -INFINITY;
                tok[r] = ATTN_EOS;
                from[r] = r;
            }
        }
        /* Rows that were not refilled keep their own history. */
        for (int b = 0; b < B; b++)
            for (int k = 0; k < K; k++) {
                int r = b * K + k;
                if (cum[r] == -INFINITY) memcpy(hist2 + (size_t)r * (Lmax + 1), hist + (size_t)r * (Lmax + 1), (size_t)(t + 1) * sizeof(int32_t));
            }
        int32_t *tmp = hist;
        hist = hist2;
        hist2 = tmp;
        dec_reorder(&d, from, t + 1);
    }
done:
    attn_free(cum);
    attn_free(hist);
    attn_free(hist2);
    attn_free(tok);
    attn_free(from);
    attn_free(nfin);
    attn_free(best);
    attn_free(cands);
    attn_free(live);
    dec_free(&d);
    return st;
}

int tr_forced_states(const attn_transformer *m, int B, int S, const int32_t *src, const int32_t *src_len, int T,
                     const int32_t *tgt_in, float *states) {
    int st = check_src(m, B, S, src, src_len);
    if (st) return st;
    const attn_transformer_config *c = &m->cfg;
    if (T < 1 || T > c->max_len) return attn__error(ATTN_EINVAL, "transformer: target of %d tokens is outside [1, max_len %d]", T, c->max_len);
    if ((st = tr_check_ids(tgt_in, (int64_t)B * T, c->tgt_vocab, "target")) != ATTN_OK) return st;
    int32_t *tok = attn_malloc((size_t)B * sizeof(int32_t));
    if (!tok) return ATTN_ENOMEM;
    dec_state d;
    if ((st = dec_init(&d, m, B, 1, S, T, src_len)) != ATTN_OK) {
        attn_free(tok);
        return st;
    }
    size_t E = (size_t)c->d_model;
    if ((st = dec_encode(&d, src)) == ATTN_OK)
        for (int t = 0; t < T && !st; t++) {
            for (int b = 0; b < B; b++) tok[b] = tgt_in[(size_t)b * T + t];
            if ((st = dec_step(&d, tok, t)) == ATTN_OK)
                for (int b = 0; b < B; b++) memcpy(states + ((size_t)b * T + t) * E, d.h + (size_t)b * E, E * sizeof(float));
        }
    dec_free(&d);
    attn_free(tok);
    return st;
}

int attn_transformer_step_logprobs(const attn_transformer *m, const int32_t *src, int S, const int32_t *tgt_in, int T,
                                   float *logp) {
    if (!m || !tgt_in || !logp || T < 1) return attn__error(ATTN_EINVAL, "attn_transformer_step_logprobs: NULL argument or T < 1");
    int32_t len = S;
    int st = check_src(m, 1, S, src, &len);
    if (st) return st;
    const attn_transformer_config *c = &m->cfg;
    if (T > c->max_len) return attn__error(ATTN_EINVAL, "transformer: target of %d tokens is longer than max_len %d", T, c->max_len);
    if ((st = tr_check_ids(tgt_in, T, c->tgt_vocab, "target")) != ATTN_OK) return st;
    dec_state d;
    if ((st = dec_init(&d, m, 1, 1, S, T, &len)) != ATTN_OK) return st;
    if ((st = dec_encode(&d, src)) == ATTN_OK)
        for (int t = 0; t < T && !st; t++) {
            st = dec_step(&d, tgt_in + t, t);
            if (!st) memcpy(logp + (size_t)t * c->tgt_vocab, d.logits, (size_t)c->tgt_vocab * sizeof(float));
        }
    dec_free(&d);
    return st;
}

int attn_transformer_attention_maps(const attn_transformer *m, const int32_t *src, int S, const int32_t *tgt_in, int T,
                                    attn_transformer_maps *maps) {
    if (!m || !src || !tgt_in || !maps) return attn__error(ATTN_EINVAL, "attn_transformer_attention_maps: NULL argument");
    attn_graph *g;
    int st = attn_graph_new(0, &g);
    if (st) return st;
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    int32_t len = S;
    attn_transformer_batch b = {.B = 1, .S = S, .T = T, .src = src, .src_len = &len, .tgt_in = tgt_in};
    attn_var *logits = attn_transformer_forward((attn_transformer *)m, g, &b, maps);
    st = logits ? ATTN_OK : attn_graph_status(g);
    if (!logits && !st) st = ATTN_EINVAL;
    attn_graph_free(g);
    return st;
}
