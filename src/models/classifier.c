/* The text classifiers (attn/classifier.h): parameters, the forward of each kind on the
 * autograd tape, the loss, prediction and accuracy. The configuration's JSON form, the
 * vocabulary, the labels and the checkpoint files are in classifier_io.c. The Transformer kind
 * runs the Transformer's own encoder (tr_encode, transformer.c) over parameters declared here.
 * Letters: B sentences, T tokens, S = T (+1 with [CLS]), V vocabulary, E embedding, Hd GRU
 * size, A attention size, D pooled size, C classes, H heads, L layers, M the cnn's maps per
 * width, w a filter width. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/posenc.h"
#include "autograd/ag.h"
#include "core/internal.h"
#include "models/classifier_internal.h"

/* ---- Parameters ---------------------------------------------------------------------------- */

static attn_param *add3(attn_classifier *m, int *st, const char *name, int ndim, const int64_t *shape, attn_init init) {
    if (*st) return NULL;
    attn_param *p = attn_params_add(m->ps, name, ndim, shape, init);
    if (!p) *st = ATTN_ENOMEM;
    else p->no_decay = ndim == 1;
    return p;
}

static attn_param *add(attn_classifier *m, int *st, const char *name, int ndim, int64_t d0, int64_t d1, attn_init init) {
    return add3(m, st, name, ndim, (int64_t[]){d0, d1}, init);
}

/* The cnn's filters: convs.{i}.weight (M, E, w_i) and convs.{i}.bias (M), nn.Conv1d's default
 * uniform initialisation (fan-in E w_i). */
static void add_convs(attn_classifier *m, int *st, int64_t E) {
    const attn_classifier_config *c = &m->cfg;
    for (int i = 0; i < c->n_widths; i++) {
        char name[64];
        int64_t w = c->widths[i];
        snprintf(name, sizeof name, "convs.%d.weight", i);
        m->conv_w[i] = add3(m, st, name, 3, (int64_t[]){c->maps, E, w}, attn_init_fan(E * w));
        snprintf(name, sizeof name, "convs.%d.bias", i);
        m->conv_b[i] = add(m, st, name, 1, c->maps, 0, attn_init_fan(E * w));
    }
}

/* The attention pooling of attn-pool and bigru-attn over inputs of D features: additive (a
 * projection to A and a context vector) or scaled (a query). */
static void add_pool(attn_classifier *m, int *st, int64_t D, int64_t A, attn_score score) {
    if (score == ATTN_SCORE_ADDITIVE) {
        m->proj_w = add(m, st, "pool.proj.weight", 2, A, D, attn_init_fan(D));
        m->proj_b = add(m, st, "pool.proj.bias", 1, A, 0, attn_init_fan(D));
        m->query = add(m, st, "pool.context", 1, A, 0, attn_init_normal(0.0f, 0.1f));
    } else {
        m->query = add(m, st, "pool.query", 1, D, 0, attn_init_normal(0.0f, 0.1f));
    }
}

static void add_gru(attn_classifier *m, int *st, int64_t E, int64_t Hd) {
    static const char *const names[4] = {"gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0"};
    for (int dir = 0; dir < 2; dir++)
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", names[k], dir ? "_reverse" : "");
            m->gru[dir][k] = add(m, st, name, k < 2 ? 2 : 1, 3 * Hd, k == 0 ? E : Hd, attn_init_fan(Hd));
        }
}

/* The Transformer kind: an attn_transformer holding only its encoder half, over m's store. */
static int add_encoder(attn_classifier *m, int *st) {
    const attn_classifier_config *c = &m->cfg;
    attn_transformer *t = &m->enc;
    t->cfg = attn_transformer_config_default();
    t->cfg.src_vocab = t->cfg.tgt_vocab = c->vocab;
    t->cfg.d_model = c->embed, t->cfg.heads = c->heads, t->cfg.kv_heads = c->heads, t->cfg.d_ff = c->d_ff;
    t->cfg.enc_layers = c->layers, t->cfg.dec_layers = 1, t->cfg.max_len = c->max_len + 1;
    t->cfg.pos = c->pos, t->cfg.dropout = c->dropout, t->cfg.tgt_tok = t->cfg.src_tok = c->tok;
    t->dh = c->embed / c->heads, t->KV = c->embed;
    t->ps = m->ps;
    int64_t E = c->embed;
    if (!(t->enc = attn_calloc((size_t)c->layers, sizeof *t->enc))) return ATTN_ENOMEM;
    t->src_emb = m->embed;
    if (c->pos == ATTN_POS_LEARNED) t->src_pos = add(m, st, "pos_embed.weight", 2, t->cfg.max_len, E, attn_init_normal(0.0f, 0.1f));
    for (int i = 0; i < c->layers; i++) tr_add_layer(t, st, "encoder", i, 0, &t->enc[i]);
    t->enc_nw = add(m, st, "encoder.norm.weight", 1, E, 0, attn_init_constant(1.0f));
    t->enc_nb = add(m, st, "encoder.norm.bias", 1, E, 0, attn_init_zeros());
    if (c->pool == ATTN_CLS_POOL_ATTENTION) add_pool(m, st, E, E, ATTN_SCORE_SCALED);
    if (!*st && c->pos == ATTN_POS_SINUSOIDAL) {
        if (!(t->sin_table = attn_malloc((size_t)t->cfg.max_len * (size_t)E * sizeof(float)))) return ATTN_ENOMEM;
        return attn_sinusoidal_table(t->cfg.max_len, (int)E, 0, t->sin_table);
    }
    return *st;
}

void attn_classifier_free(attn_classifier *m) {
    if (!m) return;
    attn_params_free(m->ps);
    attn_free(m->enc.enc);
    attn_free(m->enc.sin_table);
    attn_vocab_free(m->vocab);
    cls_labels_free(m);
    attn_free(m);
}

int attn_classifier_new(const attn_classifier_config *cfg, uint64_t seed, attn_classifier **out) {
    if (!cfg || !out) return attn__error(ATTN_EINVAL, "attn_classifier_new: NULL argument");
    *out = NULL;
    int st = attn_classifier_config_check(cfg);
    if (st) return st;
    attn_classifier *m = attn_calloc(1, sizeof *m);
    if (!m || attn_params_new(&m->ps)) {
        attn_free(m);
        return attn__error(ATTN_ENOMEM, "attn_classifier_new: out of memory");
    }
    m->cfg = *cfg;
    const attn_classifier_config *c = &m->cfg;
    int64_t E = c->embed, Hd = c->hidden, D = E;
    int tr = c->kind == ATTN_CLS_TRANSFORMER;
    m->embed = add(m, &st, "embed.weight", 2, c->vocab, E, attn_init_normal(0.0f, tr ? (float)(1.0 / sqrt((double)E)) : 1.0f));
    if (c->kind == ATTN_CLS_ATTN_POOL) add_pool(m, &st, E, Hd, c->score);
    if (c->kind == ATTN_CLS_BIGRU_ATTN) {
        D = 2 * Hd;
        add_gru(m, &st, E, Hd);
        add_pool(m, &st, D, D, ATTN_SCORE_ADDITIVE);
    }
    if (c->kind == ATTN_CLS_CNN) {
        D = (int64_t)c->maps * c->n_widths;
        add_convs(m, &st, E);
    }
    if (tr && !st) st = add_encoder(m, &st);
    m->fc_w = add(m, &st, "fc.weight", 2, c->classes, D, attn_init_fan(D));
    m->fc_b = add(m, &st, "fc.bias", 1, c->classes, 0, attn_init_fan(D));
    if (!st) st = attn_params_init(m->ps, seed);
    if (st) {
        attn_classifier_free(m);
        return st == ATTN_ENOMEM ? attn__error(ATTN_ENOMEM, "attn_classifier_new: out of memory") : st;
    }
    *out = m;
    return ATTN_OK;
}

const attn_classifier_config *attn_classifier_get_config(const attn_classifier *m) { return m ? &m->cfg : NULL; }
attn_params *attn_classifier_params(attn_classifier *m) { return m ? m->ps : NULL; }
int64_t attn_classifier_num_params(const attn_classifier *m) { return m ? attn_params_numel(m->ps) : 0; }

/* ---- Forward -------------------------------------------------------------------------------- */

#define PV(p) attn_param_var(g, (p))

static int check_batch(const attn_classifier *m, const attn_cls_batch *b) {
    const attn_classifier_config *c = &m->cfg;
    if (b->T > c->max_len)
        return attn__error(ATTN_EINVAL, "classifier: a sentence of %d tokens is longer than max_len %d", b->T, c->max_len);
    for (int i = 0; i < b->B; i++) {
        if (b->len[i] < 1 || b->len[i] > b->T)
            return attn__error(ATTN_EINVAL, "classifier: sentence %d has length %d, outside [1, %d]", i, (int)b->len[i], b->T);
        for (int t = 0; t < b->len[i]; t++) {
            int32_t id = b->ids[(size_t)i * b->T + t];
            if (id < 0 || id >= c->vocab)
                return attn__error(ATTN_EINVAL, "classifier: token id %d (sentence %d, position %d) is outside [0, %d)", (int)id, i,
                                   t, c->vocab);
        }
    }
    return ATTN_OK;
}

typedef struct {
    int32_t id, pos;
} id_pos;

static int by_id(const void *a, const void *b) {
    const id_pos *x = a, *y = b;
    return x->id != y->id ? (x->id < y->id ? -1 : 1) : (x->pos > y->pos) - (x->pos < y->pos);
}

/* The ids the forward reads, (B, S) in g's arena, or NULL: the real tokens of each row, sorted
 * by id when `sort` (perm (B, T) then gets the position in the sentence of each sorted slot),
 * after ATTN_BOS when `cls`, then <pad>; time-major (S, B) when `tm`. */
static int32_t *arrange(attn_graph *g, const attn_cls_batch *b, int sort, int cls, int tm, int32_t **perm) {
    int B = b->B, T = b->T, S = T + cls;
    int32_t *ids = attn_graph_alloc(g, (size_t)B * S * sizeof(int32_t));
    id_pos *row = attn_graph_alloc(g, (size_t)T * sizeof *row);
    int32_t *pm = sort ? attn_graph_alloc(g, (size_t)B * T * sizeof(int32_t)) : NULL;
    if (!ids || !row || (sort && !pm)) return NULL;
    for (int i = 0; i < B; i++) {
        int n = b->len[i];
        for (int t = 0; t < T; t++) row[t] = (id_pos){t < n ? b->ids[(size_t)i * T + t] : ATTN_PAD, t};
        if (sort) qsort(row, (size_t)n, sizeof *row, by_id);
        for (int s = 0; s < S; s++) {
            int32_t id = cls && s == 0 ? ATTN_BOS : row[s - cls].id;
            ids[tm ? (size_t)s * B + i : (size_t)i * S + s] = id;
        }
        if (pm)
            for (int t = 0; t < T; t++) pm[(size_t)i * T + t] = row[t].pos;
    }
    if (perm) *perm = pm;
    return ids;
}

/* q (Nq = 1) from the learned query or context vector, broadcast to the batch: (B, 1, A), or
 * (1, B, A) time-major. */
static attn_var *batch_query(attn_classifier *m, attn_graph *g, int B, int tm) {
    int64_t A = m->query->shape[0];
    attn_var *zero = attn_graph_input(g, 3, tm ? (int64_t[]){1, B, A} : (int64_t[]){B, 1, A}, NULL);
    return attn_ag_add(g, zero, PV(m->query));
}

/* Attention pooling of x (B, N, D) (time-major (N, B, D) when tm) with key lengths len (B):
 * keys tanh(proj(x)) and the context vector's dot score (additive), or x itself and the query's
 * scaled score. Returns (B, D); *P gets the weights (B, 1, 1, N). */
static attn_var *pool(attn_classifier *m, attn_graph *g, attn_var *x, const int32_t *len, int tm, attn_var **P) {
    if (!x) return NULL;
    int B = (int)x->shape[tm];
    int64_t D = x->shape[2];
    attn_ag_attention_opts o;
    memset(&o, 0, sizeof o);
    o.layout = tm ? ATTN_AG_NBHD : ATTN_AG_BNHD;
    o.mask.key_lengths = len;
    attn_var *k = x;
    if (m->proj_w) {
        o.score = ATTN_SCORE_DOT;
        k = attn_ag_tanh(g, attn_ag_linear(g, x, PV(m->proj_w), PV(m->proj_b)));
    } else {
        o.score = ATTN_SCORE_SCALED;
    }
    attn_var *h = attn_ag_attention(g, batch_query(m, g, B, tm), k, x, &o, P);
    return attn_ag_reshape(g, h, 2, (int64_t[]){B, D});
}

/* weights (B, T) from P (B, 1, 1, N) (N = T), or its sorted slots through perm. */
static void pool_weights(const attn_var *P, const int32_t *perm, const attn_cls_batch *b, float *w) {
    memset(w, 0, (size_t)b->B * b->T * sizeof(float));
    for (int i = 0; i < b->B; i++)
        for (int s = 0; s < b->len[i]; s++) {
            size_t at = (size_t)i * b->T + s;
            w[perm ? (size_t)i * b->T + perm[at] : at] = P->data[at];
        }
}

/* bow: the mean of the word vectors over the real tokens, as a sum of x (B, T, E) times the
 * weights 1/len (0 at padding). */
static attn_var *bow(attn_classifier *m, attn_graph *g, const int32_t *ids, const attn_cls_batch *b, float *weights) {
    int B = b->B, T = b->T;
    attn_var *x = attn_ag_dropout(g, attn_ag_embedding(g, PV(m->embed), ids, 2, (int64_t[]){B, T}, ATTN_PAD), m->cfg.dropout);
    attn_var *w = attn_graph_input(g, 3, (int64_t[]){B, T, 1}, NULL);
    if (!w) return NULL;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++) w->data[(size_t)i * T + t] = t < b->len[i] ? 1.0f / (float)b->len[i] : 0.0f;
    if (weights) memcpy(weights, w->data, (size_t)B * T * sizeof(float));
    return attn_ag_sum_axis(g, attn_ag_mul(g, x, w), 1);
}

/* bigru-attn: time-major ids (T, B) -> a GRU each way -> h (T, B, 2 Hd) -> pooled (B, 2 Hd). */
static attn_var *bigru(attn_classifier *m, attn_graph *g, const int32_t *ids, const attn_cls_batch *b, attn_var **P) {
    attn_var *x = attn_ag_embedding(g, PV(m->embed), ids, 2, (int64_t[]){b->T, b->B}, ATTN_PAD);
    x = attn_ag_dropout(g, x, m->cfg.dropout);
    attn_var *h[2];
    for (int dir = 0; dir < 2; dir++) {
        attn_param *const *p = m->gru[dir];
        h[dir] = attn_ag_gru(g, x, NULL, PV(p[0]), PV(p[1]), PV(p[2]), PV(p[3]), b->len, dir, NULL);
    }
    return pool(m, g, attn_ag_concat(g, 2, h, 2), b->len, 1, P);
}

/* transformer: the encoder over (B, S) ids (with [CLS] first for cls pooling), then the [CLS]
 * state or attention pooling. *maps, if not NULL, gets the self-attention weights
 * (L, B, H, S, S) for [CLS] pooling. */
static attn_var *encoder(attn_classifier *m, attn_graph *g, const int32_t *ids, const attn_cls_batch *b, attn_var **P,
                         float **maps) {
    const attn_classifier_config *c = &m->cfg;
    int cls = c->pool == ATTN_CLS_POOL_CLS, B = b->B, S = b->T + cls;
    int32_t *len = attn_graph_alloc(g, (size_t)B * sizeof(int32_t));
    float *mp = maps && cls ? attn_graph_alloc(g, (size_t)c->layers * B * c->heads * S * S * sizeof(float)) : NULL;
    if (!len || (maps && cls && !mp)) return NULL;
    for (int i = 0; i < B; i++) len[i] = b->len[i] + cls;
    attn_var *mem = tr_encode(&m->enc, g, ids, len, B, S, mp);
    if (maps) *maps = mp;
    return cls ? attn_ag_select(g, mem, 1, 0) : pool(m, g, mem, len, 0, P);
}

/* The cnn's votes of one width into weights (B, T) and active (B): y (B, T + w - 1, M) the
 * convolution's outputs with lo[b] = len[b] + w - 1 real ones. Each map whose maximum (the
 * first of equal maxima, as the pooling takes it) is positive votes 1, split evenly between
 * the real tokens of its window [t - w + 1, t] (never empty: every window of the wide
 * convolution holds a real token). */
static void cnn_votes(const attn_var *y, const int32_t *lo, int w, const attn_cls_batch *b, float *weights, int *active) {
    int M = (int)y->shape[2], To = (int)y->shape[1];
    for (int i = 0; i < b->B; i++) {
        const float *yi = y->data + (size_t)i * To * M; /* (To, M) */
        for (int o = 0; o < M; o++) {
            int best = 0;
            for (int t = 1; t < lo[i]; t++) best = yi[(size_t)t * M + o] > yi[(size_t)best * M + o] ? t : best;
            if (!(yi[(size_t)best * M + o] > 0.0f)) continue;
            int s0 = best - w + 1 > 0 ? best - w + 1 : 0, s1 = best < b->len[i] - 1 ? best : b->len[i] - 1;
            for (int s = s0; s <= s1; s++) weights[(size_t)i * b->T + s] += 1.0f / (float)(s1 - s0 + 1);
            active[i]++;
        }
    }
}

/* cnn: ids (B, T) -> x (B, T, E) -> per width w: the wide conv1d (w - 1 zeros at both ends of
 * each sentence) y (B, T + w - 1, M), the max over the len + w - 1 windows of each sentence,
 * ReLU (max then ReLU: the same values as ReLU then max, on M numbers instead of
 * (T + w - 1) M) -> h (B, M n_widths), the widths' maps side by side. */
static attn_var *cnn(attn_classifier *m, attn_graph *g, const int32_t *ids, const attn_cls_batch *b, float *weights) {
    const attn_classifier_config *c = &m->cfg;
    int B = b->B, T = b->T;
    attn_var *x = attn_ag_embedding(g, PV(m->embed), ids, 2, (int64_t[]){B, T}, ATTN_PAD);
    x = attn_ag_dropout(g, x, c->dropout);
    attn_var *h[ATTN_CLS_MAX_WIDTHS];
    int32_t *lo = attn_graph_alloc(g, (size_t)B * sizeof(int32_t));
    int *active = weights ? attn_graph_alloc(g, (size_t)B * sizeof(int)) : NULL;
    if (!lo || (weights && !active)) return NULL;
    if (weights) memset(weights, 0, (size_t)B * T * sizeof(float)), memset(active, 0, (size_t)B * sizeof(int));
    for (int k = 0; k < c->n_widths; k++) {
        int w = c->widths[k];
        for (int i = 0; i < B; i++) lo[i] = b->len[i] + w - 1; /* the pooling copies lo */
        attn_var *y = attn_ag_conv1d(g, x, PV(m->conv_w[k]), PV(m->conv_b[k]), w - 1, b->len);
        h[k] = attn_ag_relu(g, attn_ag_max_pool_time(g, y, lo));
        if (!h[k]) return NULL;
        if (weights) cnn_votes(y, lo, w, b, weights, active);
    }
    for (int i = 0; weights && i < B; i++)
        for (int t = 0; t < b->len[i] && active[i]; t++) weights[(size_t)i * T + t] /= (float)active[i];
    return attn_ag_concat(g, c->n_widths, h, 1);
}

/* weights (B, T) from the [CLS] row of the last layer, averaged over the heads: maps
 * (L, B, H, S, S), S = T + 1. */
static void cls_weights(const attn_classifier *m, const float *maps, const attn_cls_batch *b, float *w) {
    int L = m->cfg.layers, H = m->cfg.heads, B = b->B, T = b->T, S = T + 1;
    memset(w, 0, (size_t)B * T * sizeof(float));
    for (int i = 0; i < B; i++) {
        const float *row = maps + (((size_t)(L - 1) * B + i) * H) * S * S; /* head 0, query 0 */
        for (int t = 0; t < b->len[i]; t++) {
            double s = 0;
            for (int h = 0; h < H; h++) s += row[(size_t)h * S * S + t + 1];
            w[(size_t)i * T + t] = (float)(s / H);
        }
    }
}

attn_var *attn_classifier_forward(attn_classifier *m, attn_graph *g, const attn_cls_batch *b, float *weights) {
    if (!g || attn_graph_status(g) != ATTN_OK) return NULL;
    if (!m || !b || !b->ids || !b->len || b->B < 1 || b->T < 1)
        return ag_fail(g, ATTN_EINVAL, "attn_classifier_forward: NULL model or batch, or an empty batch");
    int st = check_batch(m, b);
    if (st) return ag_fail_last(g, st);
    const attn_classifier_config *c = &m->cfg;
    int bag = c->kind == ATTN_CLS_BOW || c->kind == ATTN_CLS_ATTN_POOL;
    int cls = c->kind == ATTN_CLS_TRANSFORMER && c->pool == ATTN_CLS_POOL_CLS;
    int32_t *perm = NULL;
    int32_t *ids = arrange(g, b, bag, cls, c->kind == ATTN_CLS_BIGRU_ATTN, &perm);
    if (!ids) return NULL;
    attn_var *h = NULL, *P = NULL;
    float *maps = NULL;
    switch (c->kind) {
    case ATTN_CLS_BOW: h = bow(m, g, ids, b, weights); break;
    case ATTN_CLS_ATTN_POOL: {
        attn_var *x = attn_ag_embedding(g, PV(m->embed), ids, 2, (int64_t[]){b->B, b->T}, ATTN_PAD);
        h = pool(m, g, attn_ag_dropout(g, x, c->dropout), b->len, 0, weights ? &P : NULL);
        break;
    }
    case ATTN_CLS_BIGRU_ATTN: h = bigru(m, g, ids, b, weights ? &P : NULL); break;
    case ATTN_CLS_TRANSFORMER: h = encoder(m, g, ids, b, weights ? &P : NULL, weights ? &maps : NULL); break;
    case ATTN_CLS_CNN: h = cnn(m, g, ids, b, weights); break;
    }
    attn_var *logits = attn_ag_linear(g, attn_ag_dropout(g, h, c->dropout), PV(m->fc_w), PV(m->fc_b));
    if (logits && weights && c->kind != ATTN_CLS_BOW && c->kind != ATTN_CLS_CNN) {
        if (P) pool_weights(P, perm, b, weights);
        else if (maps) cls_weights(m, maps, b, weights);
    }
    return logits;
}

attn_var *attn_classifier_loss(attn_classifier *m, attn_graph *g, const attn_cls_batch *b, const int32_t *labels,
                               float label_smoothing) {
    attn_var *logits = attn_classifier_forward(m, g, b, NULL);
    if (!logits) return NULL;
    if (!labels) return ag_fail(g, ATTN_EINVAL, "attn_classifier_loss: NULL labels");
    for (int i = 0; i < b->B; i++)
        if (labels[i] < 0 || labels[i] >= m->cfg.classes)
            return ag_fail(g, ATTN_EINVAL, "classifier: label %d of sentence %d is outside [0, %d)", (int)labels[i], i,
                           m->cfg.classes);
    return attn_ag_cross_entropy(g, logits, labels, -1, label_smoothing);
}

int attn_classifier_predict(attn_classifier *m, const attn_cls_batch *b, float *probs, float *logits, float *weights) {
    if (!m || !b) return attn__error(ATTN_EINVAL, "attn_classifier_predict: NULL argument");
    attn_graph *g = NULL;
    int st = attn_graph_new(0, &g);
    if (st) return st;
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    attn_var *y = attn_classifier_forward(m, g, b, weights);
    attn_var *p = probs ? attn_ag_softmax(g, y) : NULL;
    st = attn_graph_status(g);
    if (!st) {
        size_t n = (size_t)b->B * m->cfg.classes * sizeof(float);
        if (logits) memcpy(logits, y->data, n);
        if (probs) memcpy(probs, p->data, n);
    }
    attn_graph_free(g);
    return st;
}

int attn_classifier_accuracy(attn_classifier *m, const attn_cls_examples *d, double *accuracy) {
    if (!m || !d || !accuracy || d->n < 0 || (d->n && (!d->ids || !d->len || !d->labels)))
        return attn__error(ATTN_EINVAL, "attn_classifier_accuracy: NULL argument");
    *accuracy = 0;
    enum { CHUNK = 64 };
    int C = m->cfg.classes, right = 0, st = ATTN_OK;
    int32_t len[CHUNK];
    float *logits = attn_malloc((size_t)CHUNK * C * sizeof(float));
    int32_t *ids = NULL;
    if (!logits) return attn__error(ATTN_ENOMEM, "attn_classifier_accuracy: out of memory");
    for (int i0 = 0; i0 < d->n && !st; i0 += CHUNK) {
        int B = d->n - i0 < CHUNK ? d->n - i0 : CHUNK, T = 1;
        for (int i = 0; i < B; i++) T = d->len[i0 + i] > T ? d->len[i0 + i] : T;
        attn_free(ids);
        if (!(ids = attn_calloc((size_t)B * T, sizeof(int32_t)))) {
            st = attn__error(ATTN_ENOMEM, "attn_classifier_accuracy: out of memory");
            break;
        }
        for (int i = 0; i < B; i++) {
            len[i] = d->len[i0 + i];
            if (len[i] > 0) memcpy(ids + (size_t)i * T, d->ids[i0 + i], (size_t)len[i] * sizeof(int32_t));
        }
        attn_cls_batch b = {B, T, ids, len};
        if ((st = attn_classifier_predict(m, &b, NULL, logits, NULL))) break;
        for (int i = 0; i < B; i++) {
            int best = 0;
            for (int k = 1; k < C; k++) best = logits[(size_t)i * C + k] > logits[(size_t)i * C + best] ? k : best;
            right += best == d->labels[i0 + i];
        }
    }
    attn_free(ids), attn_free(logits);
    if (!st && d->n) *accuracy = (double)right / d->n;
    return st;
}
