/* Associative recall (attn/recall.h): the data generator, the five models (a GRU, an LSTM, a
 * GRU with a soft key-value memory over its own states, the same with a hard address trained
 * straight-through or by its own, zero, gradient) on the
 * autograd tape, and their checkpoint directories. Not here: the training loop (the trainer,
 * src/train/recall_train.c) and the command line.
 * Letters: N sequences, B a batch, K pairs, T = 2K + 3 tokens, V vocabulary, E embedding,
 * H hidden, G gates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/recall.h"
#include "autograd/ag.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/ckdir.h"
#include "io/json.h"
#include "params/params_internal.h"

/* ---- Data ------------------------------------------------------------------------------- */

int attn_recall_alphabet(int K) { return K <= 26 ? 26 : ATTN_RECALL_MAX_KEYS; }

uint64_t attn_recall_split_seed(uint64_t seed, int split) { return attn_seed_mix(seed, (uint64_t)split); }

void attn_recall_data_free(attn_recall_data *d) {
    if (!d) return;
    attn_free(d->ids), attn_free(d->answer);
    memset(d, 0, sizeof *d);
}

/* A uniform integer in [0, n) (n <= 52: the modulo bias is below 1e-8). */
static int below(attn_rng *r, int n) { return (int)(attn_rng_u32(r) % (uint32_t)n); }

int attn_recall_generate(int K, int n, uint64_t seed, attn_recall_data *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!out || K < 1 || K > ATTN_RECALL_MAX_PAIRS || n < 0)
        return attn__error(ATTN_EINVAL, "attn_recall_generate: %d pairs (must be in [1, %d]) or %d sequences", K,
                           ATTN_RECALL_MAX_PAIRS, n);
    int T = 2 * K + 3, A = attn_recall_alphabet(K);
    out->ids = attn_malloc((size_t)(n ? n : 1) * T * sizeof(int32_t));
    out->answer = attn_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!out->ids || !out->answer) {
        attn_recall_data_free(out);
        return attn__error(ATTN_ENOMEM, "attn_recall_generate: out of memory");
    }
    out->n = n, out->K = K, out->T = T;
    attn_rng r;
    attn_rng_seed(&r, seed);
    int keys[ATTN_RECALL_MAX_KEYS], digit[ATTN_RECALL_MAX_PAIRS];
    for (int i = 0; i < n; i++) {
        for (int a = 0; a < A; a++) keys[a] = a;
        for (int k = 0; k < K; k++) { /* a partial Fisher-Yates shuffle: K distinct keys */
            int j = k + below(&r, A - k), t = keys[k];
            keys[k] = keys[j], keys[j] = t;
            digit[k] = below(&r, ATTN_RECALL_DIGITS);
        }
        int q = below(&r, K);
        int32_t *row = out->ids + (size_t)i * T;
        for (int k = 0; k < K; k++) row[2 * k] = ATTN_RECALL_KEY0 + keys[k], row[2 * k + 1] = digit[k];
        row[2 * K] = row[2 * K + 1] = ATTN_RECALL_QMARK;
        row[2 * K + 2] = ATTN_RECALL_KEY0 + keys[q];
        out->answer[i] = digit[q];
    }
    return ATTN_OK;
}

static char token_char(int32_t id) {
    if (id >= 0 && id < ATTN_RECALL_DIGITS) return (char)('0' + id);
    if (id == ATTN_RECALL_QMARK) return '?';
    int k = id - ATTN_RECALL_KEY0;
    return k >= 0 && k < 26 ? (char)('a' + k) : k >= 26 && k < ATTN_RECALL_MAX_KEYS ? (char)('A' + k - 26) : '#';
}

void attn_recall_format(const attn_recall_data *d, int i, char *buf) {
    for (int t = 0; t < d->T; t++) buf[t] = token_char(d->ids[(size_t)i * d->T + t]);
    buf[d->T] = 0;
}

int attn_recall_check(const attn_recall_data *d) {
    if (!d || d->K < 1 || d->K > ATTN_RECALL_MAX_PAIRS || d->T != 2 * d->K + 3 || d->n < 0 || (d->n && (!d->ids || !d->answer)))
        return attn__error(ATTN_EFORMAT, "recall data: bad sizes");
    int K = d->K, A = attn_recall_alphabet(K);
    for (int i = 0; i < d->n; i++) {
        const int32_t *row = d->ids + (size_t)i * d->T;
        unsigned char seen[ATTN_RECALL_MAX_KEYS] = {0};
        int found = -1;
        for (int k = 0; k < K; k++) {
            int key = row[2 * k] - ATTN_RECALL_KEY0;
            if (key < 0 || key >= A || seen[key] || row[2 * k + 1] < 0 || row[2 * k + 1] >= ATTN_RECALL_DIGITS)
                return attn__error(ATTN_EFORMAT, "recall data: row %d, pair %d is not a new key and a digit", i, k);
            seen[key] = 1;
            if (row[2 * K + 2] == row[2 * k]) found = k;
        }
        if (row[2 * K] != ATTN_RECALL_QMARK || row[2 * K + 1] != ATTN_RECALL_QMARK || found < 0)
            return attn__error(ATTN_EFORMAT, "recall data: row %d does not end in two '?' and one of its keys", i);
        if (d->answer[i] != row[2 * found + 1])
            return attn__error(ATTN_EFORMAT, "recall data: row %d answers %d, its query's digit is %d", i, (int)d->answer[i],
                               (int)row[2 * found + 1]);
    }
    return ATTN_OK;
}

/* ---- Configuration ---------------------------------------------------------------------- */

static const char *const KIND_NAMES[] = {"gru", "lstm", "gru-attn", "gru-hard", "gru-argmax"};

const char *attn_recall_kind_name(attn_recall_kind k) { return (unsigned)k < 5 ? KIND_NAMES[k] : "?"; }

int attn_recall_kind_parse(const char *name) {
    for (int i = 0; name && i < 5; i++)
        if (!strcmp(name, KIND_NAMES[i])) return i;
    return -1;
}

attn_recall_config attn_recall_config_default(void) {
    attn_recall_config c;
    memset(&c, 0, sizeof c);
    c.kind = ATTN_RECALL_GRU, c.pairs = 16, c.hidden = 32, c.embed = 32, c.data_seed = 1;
    c.n_train = 20000, c.n_valid = 2000, c.n_test = 5000;
    return c;
}

int attn_recall_config_check(const attn_recall_config *c) {
    if (!c) return attn__error(ATTN_EINVAL, "recall config: NULL");
    if ((unsigned)c->kind > ATTN_RECALL_GRU_ARGMAX) return attn__error(ATTN_EINVAL, "recall config: unknown model kind %d", (int)c->kind);
    if (c->pairs < 1 || c->pairs > ATTN_RECALL_MAX_PAIRS)
        return attn__error(ATTN_EINVAL, "recall config: pairs %d must be in [1, %d] (distinct keys from a-z A-Z)", c->pairs,
                           ATTN_RECALL_MAX_PAIRS);
    if (c->hidden < 1 || c->embed < 1 || c->hidden > 65536 || c->embed > 65536)
        return attn__error(ATTN_EINVAL, "recall config: hidden %d and embed %d must be in [1, 65536]", c->hidden, c->embed);
    if (c->n_train < 0 || c->n_valid < 0 || c->n_test < 0)
        return attn__error(ATTN_EINVAL, "recall config: the split sizes must be >= 0");
    return ATTN_OK;
}

int attn_recall_config_to_json(const attn_recall_config *c, char **json) {
    if (!c || !json) return attn__error(ATTN_EINVAL, "recall config json: NULL argument");
    attn__sb sb = {0};
    attn__jw w;
    attn__jw_init(&w, &sb, 1, 0);
    attn__jw_object(&w, 0);
    attn__jw_key(&w, "kind"), attn__jw_str(&w, "recall");
    attn__jw_key(&w, "model"), attn__jw_str(&w, attn_recall_kind_name(c->kind));
    const char *const keys[] = {"pairs", "hidden", "embed", "n_train", "n_valid", "n_test"};
    const int vals[] = {c->pairs, c->hidden, c->embed, c->n_train, c->n_valid, c->n_test};
    for (int i = 0; i < 6; i++) attn__jw_key(&w, keys[i]), attn__jw_i64(&w, vals[i]);
    attn__jw_key(&w, "data_seed"), attn__jw_u64(&w, c->data_seed);
    attn__jw_end(&w, '}');
    if (!(*json = attn__sb_take(&sb, NULL))) return attn__error(ATTN_ENOMEM, "recall config json: out of memory");
    return ATTN_OK;
}

static const attn__json *member(const attn__json *obj, const char *key) {
    for (const attn__json *v = obj->child; v; v = v->next)
        if (!strcmp(v->key, key)) return v;
    return NULL;
}

int attn_recall_config_from_json(const char *json, attn_recall_config *cfg) {
    if (!json || !cfg) return attn__error(ATTN_EINVAL, "recall config json: NULL argument");
    attn__json *root = NULL;
    char err[128];
    int st = attn__json_parse(json, strlen(json), &root, err, sizeof err);
    if (st) return st == ATTN_ENOMEM ? st : attn__error(ATTN_EFORMAT, "recall config: %s", err);
    attn_recall_config c = attn_recall_config_default();
    const char *bad = NULL;
    const attn__json *kind = root->type == ATTN__JSON_OBJECT ? member(root, "kind") : NULL, *model = kind ? member(root, "model") : NULL;
    if (!kind || kind->type != ATTN__JSON_STRING || strcmp(kind->str, "recall")) bad = "\"kind\" is not \"recall\"";
    else if (!model || model->type != ATTN__JSON_STRING || attn_recall_kind_parse(model->str) < 0) bad = "\"model\" is not a known kind";
    else c.kind = (attn_recall_kind)attn_recall_kind_parse(model->str);
    const char *const keys[] = {"pairs", "hidden", "embed", "n_train", "n_valid", "n_test"};
    int *const vals[] = {&c.pairs, &c.hidden, &c.embed, &c.n_train, &c.n_valid, &c.n_test};
    for (int i = 0; i < 6 && !bad; i++) {
        const attn__json *v = member(root, keys[i]);
        if (v && (v->type != ATTN__JSON_NUMBER || !v->is_uint || v->u > 1000000000u)) bad = "a size is not a non-negative integer";
        else if (v) *vals[i] = (int)v->u;
    }
    const attn__json *s = bad ? NULL : member(root, "data_seed");
    if (s && (s->type != ATTN__JSON_NUMBER || !s->is_uint)) bad = "\"data_seed\" is not a non-negative integer";
    else if (s) c.data_seed = s->u;
    attn__json_free(root);
    if (bad) return attn__error(ATTN_EFORMAT, "recall config: %s", bad);
    if ((st = attn_recall_config_check(&c))) return st;
    *cfg = c;
    return ATTN_OK;
}

/* ---- The model -------------------------------------------------------------------------- */

struct attn_recall {
    attn_recall_config cfg;
    attn_params *ps;
    attn_param *embed;          /* (V, E) */
    attn_param *rnn[4];         /* W_ih (G H, E), W_hh (G H, H), b_ih, b_hh (G H) */
    attn_param *wq, *wk, *wv;   /* the memory's projections (H, H); NULL for gru and lstm */
    attn_param *fc_w, *fc_b;    /* (10, D), (10) */
};

static attn_param *add(attn_recall *m, int *st, const char *name, int ndim, int64_t d0, int64_t d1, attn_init init) {
    if (*st) return NULL;
    attn_param *p = attn_params_add(m->ps, name, ndim, (int64_t[]){d0, d1}, init);
    if (!p) *st = ATTN_ENOMEM;
    else p->no_decay = ndim == 1;
    return p;
}

static int has_memory(const attn_recall_config *c) { return c->kind >= ATTN_RECALL_GRU_ATTN; }

int attn_recall_new(const attn_recall_config *cfg, uint64_t seed, attn_recall **out) {
    if (!cfg || !out) return attn__error(ATTN_EINVAL, "attn_recall_new: NULL argument");
    *out = NULL;
    int st = attn_recall_config_check(cfg);
    if (st) return st;
    attn_recall *m = attn_calloc(1, sizeof *m);
    if (!m || attn_params_new(&m->ps)) {
        attn_free(m);
        return attn__error(ATTN_ENOMEM, "attn_recall_new: out of memory");
    }
    m->cfg = *cfg;
    int64_t E = cfg->embed, H = cfg->hidden, G = cfg->kind == ATTN_RECALL_LSTM ? 4 : 3, D = has_memory(cfg) ? 2 * H : H;
    m->embed = add(m, &st, "embed.weight", 2, ATTN_RECALL_VOCAB, E, attn_init_normal(0.0f, 1.0f));
    m->rnn[0] = add(m, &st, "rnn.weight_ih_l0", 2, G * H, E, attn_init_fan(H));
    m->rnn[1] = add(m, &st, "rnn.weight_hh_l0", 2, G * H, H, attn_init_fan(H));
    m->rnn[2] = add(m, &st, "rnn.bias_ih_l0", 1, G * H, 0, attn_init_fan(H));
    m->rnn[3] = add(m, &st, "rnn.bias_hh_l0", 1, G * H, 0, attn_init_fan(H));
    if (has_memory(cfg)) {
        m->wq = add(m, &st, "mem.query.weight", 2, H, H, attn_init_fan(H));
        m->wk = add(m, &st, "mem.key.weight", 2, H, H, attn_init_fan(H));
        m->wv = add(m, &st, "mem.value.weight", 2, H, H, attn_init_fan(H));
    }
    m->fc_w = add(m, &st, "fc.weight", 2, ATTN_RECALL_DIGITS, D, attn_init_fan(D));
    m->fc_b = add(m, &st, "fc.bias", 1, ATTN_RECALL_DIGITS, 0, attn_init_fan(D));
    if (!st) st = attn_params_init(m->ps, seed);
    if (st) {
        attn_recall_free(m);
        return st == ATTN_ENOMEM ? attn__error(ATTN_ENOMEM, "attn_recall_new: out of memory") : st;
    }
    *out = m;
    return ATTN_OK;
}

void attn_recall_free(attn_recall *m) {
    if (!m) return;
    attn_params_free(m->ps);
    attn_free(m);
}

const attn_recall_config *attn_recall_get_config(const attn_recall *m) { return m ? &m->cfg : NULL; }
attn_params *attn_recall_params(attn_recall *m) { return m ? m->ps : NULL; }
int64_t attn_recall_num_params(const attn_recall *m) { return m ? attn_params_numel(m->ps) : 0; }

#define PV(p) attn_param_var(g, (p))

/* The hard read: scores s (T, B) = q (B, H) . k_t / sqrt(H), a (B, T) = the one-hot of
 * argmax_t s, r (B, H) = sum_t a_t v_t; a's gradient reaches the scores as the softmax's
 * (straight-through), or not at all (`st` 0: an input computed from the scores). The soft
 * read computes the same with the softmax, in one attention entry (attn_ag_attention, below). */
static attn_var *hard_read(attn_graph *g, attn_var *q, attn_var *k, attn_var *v, int st, attn_var **a) {
    int64_t T = k ? k->shape[0] : 0, B = k ? k->shape[1] : 0, H = k ? k->shape[2] : 1;
    attn_var *s = attn_ag_scale(g, attn_ag_sum_axis(g, attn_ag_mul(g, k, q), 2), (float)(1.0 / sqrt((double)H)));
    *a = attn_ag_hard_softmax(g, attn_ag_transpose(g, s));                          /* (B, T) */
    if (!st && *a) *a = attn_graph_input(g, 2, (*a)->shape, (*a)->data);          /* the same values, no gradient */
    attn_var *at = attn_ag_reshape(g, attn_ag_transpose(g, *a), 3, (int64_t[]){T, B, 1}); /* (T, B, 1) */
    return attn_ag_sum_axis(g, attn_ag_mul(g, v, at), 0);
}

attn_var *attn_recall_forward(attn_recall *m, attn_graph *g, int B, const int32_t *ids, float *weights) {
    if (!g || attn_graph_status(g) != ATTN_OK) return NULL;
    if (!m || !ids || B < 1) return ag_fail(g, ATTN_EINVAL, "attn_recall_forward: NULL model or ids, or an empty batch");
    const attn_recall_config *c = &m->cfg;
    int T = 2 * c->pairs + 3;
    int64_t H = c->hidden;
    int32_t *tm = attn_graph_alloc(g, (size_t)T * B * sizeof(int32_t)); /* (T, B): time-major for the RNN */
    if (!tm) return NULL;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t id = ids[(size_t)b * T + t];
            if (id < 0 || id >= ATTN_RECALL_VOCAB)
                return ag_fail(g, ATTN_EINVAL, "recall: token id %d (sequence %d, position %d) is outside [0, %d)", (int)id, b, t,
                               ATTN_RECALL_VOCAB);
            tm[(size_t)t * B + b] = id;
        }
    attn_var *x = attn_ag_embedding(g, PV(m->embed), tm, 2, (int64_t[]){T, B}, -1); /* (T, B, E) */
    attn_var *hn = NULL, *y;
    attn_param *const *p = m->rnn;
    if (c->kind == ATTN_RECALL_LSTM) y = attn_ag_lstm(g, x, NULL, NULL, PV(p[0]), PV(p[1]), PV(p[2]), PV(p[3]), NULL, 0, &hn, NULL);
    else y = attn_ag_gru(g, x, NULL, PV(p[0]), PV(p[1]), PV(p[2]), PV(p[3]), NULL, 0, &hn);
    attn_var *h = hn, *a = NULL;                                                    /* (B, H) */
    if (has_memory(c)) {
        attn_var *q = attn_ag_linear(g, hn, PV(m->wq), NULL);                       /* (B, H) */
        attn_var *k = attn_ag_linear(g, y, PV(m->wk), NULL), *v = attn_ag_linear(g, y, PV(m->wv), NULL); /* (T, B, H) */
        attn_var *r;
        if (c->kind == ATTN_RECALL_GRU_ATTN) {
            attn_ag_attention_opts o;
            memset(&o, 0, sizeof o);
            o.layout = ATTN_AG_NBHD, o.score = ATTN_SCORE_SCALED;
            r = attn_ag_attention(g, attn_ag_reshape(g, q, 3, (int64_t[]){1, B, H}), k, v, &o, weights ? &a : NULL);
            r = attn_ag_reshape(g, r, 2, (int64_t[]){B, H});
        } else {
            r = hard_read(g, q, k, v, c->kind == ATTN_RECALL_GRU_HARD, &a);
        }
        h = attn_ag_concat(g, 2, (attn_var *const[]){hn, r}, 1);                    /* (B, 2 H) */
    }
    attn_var *logits = attn_ag_linear(g, h, PV(m->fc_w), PV(m->fc_b));
    if (logits && weights) { /* a: (B, 1, 1, T) from the attention, (B, T) from the hard read */
        if (a) memcpy(weights, a->data, (size_t)B * T * sizeof(float));
        else memset(weights, 0, (size_t)B * T * sizeof(float));
    }
    return logits;
}

attn_var *attn_recall_loss(attn_recall *m, attn_graph *g, int B, const int32_t *ids, const int32_t *answers) {
    attn_var *logits = attn_recall_forward(m, g, B, ids, NULL);
    if (!logits) return NULL;
    if (!answers) return ag_fail(g, ATTN_EINVAL, "attn_recall_loss: NULL answers");
    for (int b = 0; b < B; b++)
        if (answers[b] < 0 || answers[b] >= ATTN_RECALL_DIGITS)
            return ag_fail(g, ATTN_EINVAL, "recall: answer %d of sequence %d is not a digit", (int)answers[b], b);
    return attn_ag_cross_entropy(g, logits, answers, -1, 0.0f);
}

int attn_recall_predict(attn_recall *m, int B, const int32_t *ids, int32_t *pred, float *weights) {
    if (!m || !ids || B < 1) return attn__error(ATTN_EINVAL, "attn_recall_predict: NULL argument or an empty batch");
    attn_graph *g = NULL;
    int st = attn_graph_new(0, &g);
    if (st) return st;
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    attn_var *y = attn_recall_forward(m, g, B, ids, weights);
    if (!(st = attn_graph_status(g)) && pred)
        for (int b = 0; b < B; b++) {
            const float *l = y->data + (size_t)b * ATTN_RECALL_DIGITS;
            int best = 0;
            for (int k = 1; k < ATTN_RECALL_DIGITS; k++) best = l[k] > l[best] ? k : best;
            pred[b] = best;
        }
    attn_graph_free(g);
    return st;
}

int attn_recall_accuracy(attn_recall *m, const attn_recall_data *d, double *accuracy) {
    if (!m || !d || !accuracy || d->n < 0 || (d->n && (!d->ids || !d->answer)))
        return attn__error(ATTN_EINVAL, "attn_recall_accuracy: NULL argument");
    if (d->n && d->K != m->cfg.pairs)
        return attn__error(ATTN_EINVAL, "attn_recall_accuracy: the data has %d pairs, the model reads %d", d->K, m->cfg.pairs);
    *accuracy = 0;
    enum { CHUNK = 256 };
    int32_t pred[CHUNK];
    int64_t right = 0;
    for (int i0 = 0; i0 < d->n; i0 += CHUNK) {
        int B = d->n - i0 < CHUNK ? d->n - i0 : CHUNK;
        int st = attn_recall_predict(m, B, d->ids + (size_t)i0 * d->T, pred, NULL);
        if (st) return st;
        for (int b = 0; b < B; b++) right += pred[b] == d->answer[i0 + b];
    }
    if (d->n) *accuracy = (double)right / d->n;
    return ATTN_OK;
}

/* ---- Checkpoints ------------------------------------------------------------------------ */

int attn_recall_model_json(const attn_recall *m, const char *command, char **json) {
    if (!m || !json) return attn__error(ATTN_EINVAL, "attn_recall_model_json: NULL argument");
    char *cfg = NULL;
    int st = attn_recall_config_to_json(&m->cfg, &cfg);
    if (!st) st = attn__model_json_command(cfg, command, json);
    attn_free(cfg);
    return st;
}

int attn_recall_save(const attn_recall *m, const char *dir, const char *command) {
    if (!m || !dir) return attn__error(ATTN_EINVAL, "attn_recall_save: NULL argument");
    char *json = NULL;
    int st = attn_recall_model_json(m, command, &json);
    if (!st) st = attn__model_save(dir, m->ps, json, 0, NULL);
    attn_free(json);
    return st;
}

/* attn__model_load's builder: the model of the checkpoint's JSON, into *(attn_recall **)ud. */
static int make_loaded(const char *json, void *ud, attn_params **ps) {
    attn_recall_config c;
    attn_recall **m = ud;
    int st = attn_recall_config_from_json(json, &c);
    if (!st) st = attn_recall_new(&c, 0, m);
    if (!st) *ps = (*m)->ps;
    return st;
}

int attn_recall_load(const char *dir, attn_recall **out) {
    if (!dir || !out) return attn__error(ATTN_EINVAL, "attn_recall_load: NULL argument");
    *out = NULL;
    attn_recall *m = NULL;
    int st = attn__model_load(dir, make_loaded, &m);
    if (st) {
        attn_recall_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}
