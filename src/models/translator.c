/* The translator interface (attn/translator.h): a table of model families, each a loader,
 * accessors, a batch decoder into attn_s2s_hyp and its attention maps; the checkpoint's
 * "model.kind" picks the entry. The text pipeline (tokenise, encode, decode, detokenise) is
 * the family's own for seq2seq (attn_s2s_translate) and mirrors it for the Transformer.
 * Letters: n sentences, S source length (with <eos>), T decoder positions, L layers, H heads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/translator.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/ckdir.h"
#include "params/params_internal.h"
#include "io/json.h"
#include "models/s2s_internal.h"
#include "models/transformer_internal.h"

typedef struct {
    const char *kind;
    void (*free)(void *model);
    const char *(*label)(void *model);
    const attn_vocab *(*src_vocab)(void *model);
    const attn_vocab *(*tgt_vocab)(void *model);
    attn_tok_kind (*src_tok)(void *model);
    attn_tok_kind (*tgt_tok)(void *model);
    attn_params *(*params)(void *model);
    int (*decode)(void *model, int n, const int32_t *const *src, const int *src_len, const attn_s2s_decode_opts *o,
                  attn_s2s_hyp *hyps);
    int (*translate)(attn_translator *t, const char *sentence, const attn_s2s_decode_opts *o, attn_s2s_translation *out);
    int (*maps)(void *model, const int32_t *src, int S, const attn_s2s_hyp *hyp, attn_map_set *out);
    /* training and checkpoints */
    int batch_major; /* the loss takes (B, S) / (B, T) ids; else time-major (S, B) / (T, B) */
    attn_var *(*loss)(void *model, attn_graph *g, int B, int S, int T, const int32_t *src, const int32_t *src_len,
                      const int32_t *tin, const int32_t *tout, float label_smoothing);
    int (*config_json)(void *model, char **json);
    int (*from_json)(const char *json, void **model); /* a model of that configuration */
    /* a new model of configuration cfg (the family's config struct) with these vocabulary sizes */
    int (*create)(const void *cfg, uint64_t seed, int src_vocab, int tgt_vocab, void **model);
    int (*set_vocabs)(void *model, attn_vocab *src, attn_vocab *tgt);
} family;

struct attn_translator {
    const family *f;
    void *model;
    int owned;    /* free the model with the translator */
    int32_t *buf; /* a padded batch for attn_translator_loss */
    size_t cap;
};

/* ---- Map sets ------------------------------------------------------------------------------ */

const char *attn_map_kind_name(attn_map_kind k) {
    switch (k) {
    case ATTN_MAP_ENCODER_SELF: return "encoder self-attention";
    case ATTN_MAP_DECODER_SELF: return "decoder self-attention";
    case ATTN_MAP_CROSS: return "cross-attention";
    }
    return "?";
}

void attn_map_set_free(attn_map_set *s) {
    if (!s) return;
    attn_free(s->maps);
    attn_free(s->data_);
    memset(s, 0, sizeof *s);
}

static int map_set_alloc(attn_map_set *s, int n, size_t floats) {
    memset(s, 0, sizeof *s);
    s->maps = attn_calloc((size_t)(n ? n : 1), sizeof *s->maps);
    s->data_ = attn_malloc((floats ? floats : 1) * sizeof(float));
    if (!s->maps || !s->data_) {
        attn_map_set_free(s);
        return attn__error(ATTN_ENOMEM, "attention maps: out of memory");
    }
    s->n = n;
    return ATTN_OK;
}

/* ---- seq2seq ------------------------------------------------------------------------------- */

static void s2s_free_(void *m) { attn_s2s_free(m); }
static const char *s2s_label_(void *m) { return attn_s2s_attention_name(attn_s2s_get_config(m)->attention); }
static const attn_vocab *s2s_sv_(void *m) { return attn_s2s_src_vocab(m); }
static const attn_vocab *s2s_tv_(void *m) { return attn_s2s_tgt_vocab(m); }
static attn_tok_kind s2s_st_(void *m) { return attn_s2s_get_config(m)->src_tok; }
static attn_tok_kind s2s_tt_(void *m) { return attn_s2s_get_config(m)->tgt_tok; }
static attn_params *s2s_params_(void *m) { return attn_s2s_params(m); }
static int s2s_decode_(void *m, int n, const int32_t *const *src, const int *len, const attn_s2s_decode_opts *o, attn_s2s_hyp *h) {
    return attn_s2s_decode(m, n, src, len, o, h);
}
static int s2s_translate_(attn_translator *t, const char *s, const attn_s2s_decode_opts *o, attn_s2s_translation *out) {
    return attn_s2s_translate(t->model, s, o, out);
}
static int s2s_maps_(void *m, const int32_t *src, int S, const attn_s2s_hyp *h, attn_map_set *out) {
    (void)m, (void)src;
    memset(out, 0, sizeof *out);
    if (!h->align) return ATTN_OK; /* the distracted model: nothing to draw */
    int rows = h->n + h->eos;
    int st = map_set_alloc(out, 1, (size_t)rows * S);
    if (st) return st;
    memcpy(out->data_, h->align, (size_t)rows * S * sizeof(float));
    out->maps[0] = (attn_map){ATTN_MAP_CROSS, 0, 0, rows, S, out->data_};
    return ATTN_OK;
}

static attn_var *s2s_loss_(void *m, attn_graph *g, int B, int S, int T, const int32_t *src, const int32_t *src_len,
                           const int32_t *tin, const int32_t *tout, float ls) {
    attn_s2s_batch b = {B, S, T, src, src_len, tin, tout};
    return attn_s2s_loss(m, g, &b, ls);
}
static int s2s_json_(void *m, char **json) { return attn_s2s_config_to_json(attn_s2s_get_config(m), json); }
static int s2s_from_json_(const char *json, void **m) {
    attn_s2s_config c;
    int st = attn_s2s_config_from_json(json, &c);
    return st ? st : attn_s2s_new(&c, 0, (attn_s2s **)m);
}
static int s2s_create_(const void *cfg, uint64_t seed, int sv, int tv, void **m) {
    attn_s2s_config c = *(const attn_s2s_config *)cfg;
    c.src_vocab = sv, c.tgt_vocab = tv;
    return attn_s2s_new(&c, seed, (attn_s2s **)m);
}
static int s2s_set_vocabs_(void *m, attn_vocab *sv, attn_vocab *tv) { return attn_s2s_set_vocabs(m, sv, tv); }

/* ---- Transformer --------------------------------------------------------------------------- */

static void tr_free_(void *m) { attn_transformer_free(m); }
static const char *tr_label_(void *m) {
    (void)m;
    return "transformer";
}
static const attn_vocab *tr_sv_(void *m) { return attn_transformer_src_vocab(m); }
static const attn_vocab *tr_tv_(void *m) { return attn_transformer_tgt_vocab(m); }
static attn_tok_kind tr_st_(void *m) { return attn_transformer_get_config(m)->src_tok; }
static attn_tok_kind tr_tt_(void *m) { return attn_transformer_get_config(m)->tgt_tok; }
static attn_params *tr_params_(void *m) { return attn_transformer_params(m); }

typedef struct {
    int len, i;
} len_idx;
static int by_len(const void *a, const void *b) {
    const len_idx *x = a, *y = b;
    return x->len != y->len ? (x->len < y->len ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

/* The cross-attention of the last layer averaged over the heads, for rows [0, rows) of
 * sentence b of maps holding that layer alone (tr_forward's cross_last: (1, B, H, T, S)):
 * align (rows, Sb). */
static void mean_heads(const attn_transformer_maps *mp, int b, int rows, int Sb, float *align) {
    int H = mp->heads, T = mp->T, S = mp->S;
    const float *base = mp->cross + (size_t)b * H * T * S;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < Sb; j++) {
            double s = 0;
            for (int h = 0; h < H; h++) s += base[((size_t)h * T + i) * S + j];
            align[(size_t)i * Sb + j] = (float)(s / H);
        }
}

/* Decodes sentences idx[0..k) (non-empty) together, then computes their alignments with one
 * teacher-forced forward. */
static int tr_decode_group(attn_transformer *m, const int *idx, int k, const int32_t *const *src, const int *len_in,
                           const attn_s2s_decode_opts *o, attn_s2s_hyp *hyps) {
    const attn_transformer_config *c = attn_transformer_get_config(m);
    int S = 1;
    for (int i = 0; i < k; i++) S = len_in[idx[i]] > S ? len_in[idx[i]] : S;
    if (S > c->max_len) S = c->max_len; /* longer sources are cut, keeping their <eos> */
    int Lmax = o && o->max_len > 0 ? o->max_len : 2 * S + 10;
    if (Lmax > c->max_len - 1) Lmax = c->max_len - 1;
    int cap = Lmax;
    int32_t *sb = attn_calloc((size_t)k * S, sizeof(int32_t)), *sl = attn_malloc((size_t)k * sizeof(int32_t));
    int32_t *out = attn_malloc((size_t)k * cap * sizeof(int32_t)), *ol = attn_malloc((size_t)k * sizeof(int32_t));
    int32_t *tin = NULL;
    attn_transformer_result *res = attn_malloc((size_t)k * sizeof *res);
    attn_transformer_maps mp = {0};
    attn_graph *g = NULL;
    int st = ATTN_OK;
    if (!sb || !sl || !out || !ol || !res) {
        st = attn__error(ATTN_ENOMEM, "transformer decoding: out of memory");
        goto done;
    }
    for (int i = 0; i < k; i++) {
        int n = len_in[idx[i]] < S ? len_in[idx[i]] : S;
        memcpy(sb + (size_t)i * S, src[idx[i]], (size_t)n * sizeof(int32_t));
        if (n < len_in[idx[i]]) sb[(size_t)i * S + n - 1] = src[idx[i]][len_in[idx[i]] - 1];
        sl[i] = n;
    }
    attn_decode_opts d = {o ? o->beam : 1, o ? o->len_alpha : 1.0f, Lmax, o ? o->hook : NULL};
    if ((st = attn_transformer_translate(m, k, S, sb, sl, &d, cap, out, ol, res))) goto done;
    int T = 1;
    for (int i = 0; i < k; i++) T = ol[i] + 1 > T ? ol[i] + 1 : T;
    if (!(tin = attn_calloc((size_t)k * T, sizeof(int32_t)))) {
        st = attn__error(ATTN_ENOMEM, "transformer decoding: out of memory");
        goto done;
    }
    for (int i = 0; i < k; i++) {
        tin[(size_t)i * T] = ATTN_BOS;
        memcpy(tin + (size_t)i * T + 1, out + (size_t)i * cap, (size_t)ol[i] * sizeof(int32_t));
    }
    if ((st = attn_graph_new(0, &g))) goto done;
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    attn_transformer_batch bt = {.B = k, .S = S, .T = T, .src = sb, .src_len = sl, .tgt_in = tin};
    if (!tr_forward(m, g, &bt, &mp, 1)) {
        st = attn_graph_status(g);
        goto done;
    }
    for (int i = 0; i < k && !st; i++) {
        attn_s2s_hyp *h = &hyps[idx[i]];
        h->n = ol[i], h->eos = res[i].eos, h->S = sl[i], h->logp = res[i].logp, h->score = res[i].score;
        int rows = h->n + h->eos;
        h->ids = attn_malloc((size_t)(h->n ? h->n : 1) * sizeof(int32_t));
        h->align = attn_malloc((size_t)(rows ? rows : 1) * sl[i] * sizeof(float));
        if (!h->ids || !h->align) {
            st = attn__error(ATTN_ENOMEM, "transformer decoding: out of memory");
            break;
        }
        memcpy(h->ids, out + (size_t)i * cap, (size_t)h->n * sizeof(int32_t));
        mean_heads(&mp, i, rows, sl[i], h->align);
    }
done:
    attn_graph_free(g);
    attn_transformer_maps_free(&mp);
    attn_free(sb), attn_free(sl), attn_free(out), attn_free(ol), attn_free(res), attn_free(tin);
    return st;
}

static int tr_decode_(void *model, int n, const int32_t *const *src, const int *len, const attn_s2s_decode_opts *o,
                      attn_s2s_hyp *hyps) {
    attn_transformer *m = model;
    for (int i = 0; i < n; i++) memset(&hyps[i], 0, sizeof hyps[i]);
    int *idx = attn_malloc((size_t)(n ? n : 1) * sizeof(int));
    len_idx *li = attn_malloc((size_t)(n ? n : 1) * sizeof *li);
    if (!idx || !li) {
        attn_free(idx), attn_free(li);
        return attn__error(ATTN_ENOMEM, "transformer decoding: out of memory");
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (len[i] > 0) li[k].len = len[i], li[k].i = i, k++;
    /* Similar lengths together (less padding); the order does not change any result. */
    qsort(li, (size_t)k, sizeof *li, by_len);
    for (int i = 0; i < k; i++) idx[i] = li[i].i;
    attn_free(li);
    int group = o && o->beam > 1 ? 16 : 64, st = ATTN_OK;
    for (int i0 = 0; i0 < k && !st; i0 += group)
        st = tr_decode_group(m, idx + i0, k - i0 < group ? k - i0 : group, src, len, o, hyps);
    attn_free(idx);
    if (st)
        for (int i = 0; i < n; i++) attn_s2s_hyp_free(&hyps[i]);
    return st;
}

/* The text pipeline of attn_s2s_translate, for the Transformer. */
static int tr_translate_(attn_translator *t, const char *sentence, const attn_s2s_decode_opts *o, attn_s2s_translation *out) {
    memset(out, 0, sizeof *out);
    if (!sentence) return attn__error(ATTN_EINVAL, "attn_translator_translate: NULL sentence");
    const attn_vocab *sv = attn_translator_src_vocab(t), *tv = attn_translator_tgt_vocab(t);
    attn_tokens tok = {0};
    int32_t *ids = NULL;
    const char **toks = NULL;
    int st = attn_tokenize(attn_translator_src_tok(t), sentence, &tok);
    int n = 0;
    if (!st && tok.n > ATTN_S2S_MAX_SRC) st = attn__error(ATTN_EINVAL, "the sentence has %d tokens (at most %d)", tok.n, ATTN_S2S_MAX_SRC);
    if (!st && tok.n > 0) {
        ids = attn_malloc(((size_t)tok.n + 1) * sizeof(int32_t));
        toks = attn_malloc(((size_t)tok.n + 1) * sizeof(char *));
        if (!ids || !toks) st = ATTN_ENOMEM;
        if (!st) st = attn_vocab_encode(sv, &tok, ATTN_ENC_EOS, ids, tok.n + 1, &n, &out->n_unk);
        if (!st) {
            for (int i = 0; i < tok.n; i++) toks[i] = tok.tok[i];
            toks[tok.n] = ATTN_EOS_TOKEN;
            st = attn_tokens_set(&out->src, toks, tok.n + 1);
        }
    }
    if (!st) {
        const int32_t *src[1] = {ids};
        int len[1] = {n};
        st = attn_translator_decode(t, 1, src, len, o, &out->hyp);
    }
    if (!st) st = attn_vocab_decode(tv, out->hyp.ids, out->hyp.n, 0, &out->out);
    if (!st) st = attn_detokenize(attn_translator_tgt_tok(t), out->out.tok, out->out.n, ATTN_DETOK_CAPITALIZE, &out->text);
    attn_tokens_free(&tok);
    attn_free(ids);
    attn_free((void *)toks);
    if (st) attn_s2s_translation_free(out);
    return st;
}

static int tr_maps_(void *model, const int32_t *src, int S, const attn_s2s_hyp *h, attn_map_set *out) {
    attn_transformer *m = model;
    memset(out, 0, sizeof *out);
    int T = h->n + 1;
    int32_t *tin = attn_malloc((size_t)T * sizeof(int32_t));
    if (!tin) return attn__error(ATTN_ENOMEM, "attention maps: out of memory");
    tin[0] = ATTN_BOS;
    if (h->n) memcpy(tin + 1, h->ids, (size_t)h->n * sizeof(int32_t));
    attn_transformer_maps mp = {0};
    int st = attn_transformer_attention_maps(m, src, S, tin, T, &mp);
    attn_free(tin);
    if (st) return st;
    int L1 = mp.enc_layers, L2 = mp.dec_layers, H = mp.heads, rows = h->n + h->eos;
    size_t floats = (size_t)L1 * H * S * S + (size_t)L2 * H * T * T + (size_t)L2 * H * rows * S;
    if ((st = map_set_alloc(out, (L1 + 2 * L2) * H, floats))) {
        attn_transformer_maps_free(&mp);
        return st;
    }
    float *p = out->data_;
    int k = 0;
    for (int l = 0; l < L1; l++)
        for (int hd = 0; hd < H; hd++) {
            memcpy(p, mp.enc_self + ((size_t)l * H + hd) * S * S, (size_t)S * S * sizeof(float));
            out->maps[k++] = (attn_map){ATTN_MAP_ENCODER_SELF, l, hd, S, S, p};
            p += (size_t)S * S;
        }
    for (int l = 0; l < L2; l++)
        for (int hd = 0; hd < H; hd++) {
            memcpy(p, mp.dec_self + ((size_t)l * H + hd) * T * T, (size_t)T * T * sizeof(float));
            out->maps[k++] = (attn_map){ATTN_MAP_DECODER_SELF, l, hd, T, T, p};
            p += (size_t)T * T;
        }
    for (int l = 0; l < L2; l++)
        for (int hd = 0; hd < H; hd++) {
            memcpy(p, mp.cross + ((size_t)l * H + hd) * T * S, (size_t)rows * S * sizeof(float));
            out->maps[k++] = (attn_map){ATTN_MAP_CROSS, l, hd, rows, S, p};
            p += (size_t)rows * S;
        }
    attn_transformer_maps_free(&mp);
    return ATTN_OK;
}

static attn_var *tr_loss_(void *m, attn_graph *g, int B, int S, int T, const int32_t *src, const int32_t *src_len,
                          const int32_t *tin, const int32_t *tout, float ls) {
    attn_transformer_batch b = {B, S, T, src, src_len, tin, tout};
    return attn_transformer_loss(m, g, &b, ls, NULL);
}
static int tr_json_(void *m, char **json) { return attn_transformer_config_to_json(attn_transformer_get_config(m), json); }
static int tr_from_json_(const char *json, void **m) {
    attn_transformer_config c;
    int st = attn_transformer_config_from_json(json, &c);
    return st ? st : attn_transformer_new(&c, 0, (attn_transformer **)m);
}
static int tr_create_(const void *cfg, uint64_t seed, int sv, int tv, void **m) {
    attn_transformer_config c = *(const attn_transformer_config *)cfg;
    c.src_vocab = sv, c.tgt_vocab = tv;
    return attn_transformer_new(&c, seed, (attn_transformer **)m);
}
static int tr_set_vocabs_(void *m, attn_vocab *sv, attn_vocab *tv) { return attn_transformer_set_vocabs(m, sv, tv); }

/* ---- The table ---------------------------------------------------------------------------- */

static const family FAMILIES[] = {
    {"seq2seq", s2s_free_, s2s_label_, s2s_sv_, s2s_tv_, s2s_st_, s2s_tt_, s2s_params_, s2s_decode_, s2s_translate_, s2s_maps_,
     0, s2s_loss_, s2s_json_, s2s_from_json_, s2s_create_, s2s_set_vocabs_},
    {"transformer", tr_free_, tr_label_, tr_sv_, tr_tv_, tr_st_, tr_tt_, tr_params_, tr_decode_, tr_translate_, tr_maps_,
     1, tr_loss_, tr_json_, tr_from_json_, tr_create_, tr_set_vocabs_},
};
#define NFAMILIES ((int)(sizeof FAMILIES / sizeof FAMILIES[0]))

/* The family of a checkpoint's model object (its "kind"). */
static int family_of(const char *dir, const char *model_json, const family **out) {
    attn__json *root = NULL;
    char err[128], kind[64] = "";
    int st = attn__json_parse(model_json, strlen(model_json), &root, err, sizeof err);
    if (!st && root->type == ATTN__JSON_OBJECT)
        for (const attn__json *m = root->child; m; m = m->next)
            if (!strcmp(m->key, "kind") && m->type == ATTN__JSON_STRING) snprintf(kind, sizeof kind, "%s", m->str);
    attn__json_free(root);
    if (st) return attn__error(ATTN_EFORMAT, "%s: config.json's model object: %s", dir, err);
    for (int i = 0; i < NFAMILIES; i++)
        if (!strcmp(FAMILIES[i].kind, kind)) return *out = &FAMILIES[i], ATTN_OK;
    return attn__error(ATTN_EFORMAT, "%s: a model of kind \"%s\" cannot translate (known: seq2seq, transformer)", dir,
                       kind[0] ? kind : "(none)");
}

int attn_translator_load(const char *dir, attn_translator **out) {
    if (!dir || !out) return attn__error(ATTN_EINVAL, "attn_translator_load: NULL argument");
    *out = NULL;
    attn__ck ck;
    int st = attn__ck_open(dir, &ck);
    if (st) return st;
    const family *f = NULL;
    attn_translator *t = NULL;
    attn_vocab *sv = NULL, *tv = NULL;
    char *model_json = attn__ck_text(&ck, attn__ck_member(&ck, "model")), *weights = attn__ck_file_path(dir, ATTN__CK_MODEL);
    const char *sp = attn__ck_extra(&ck, "src_vocab.txt"), *tp = attn__ck_extra(&ck, "tgt_vocab.txt");
    if (!model_json || !weights) {
        st = attn__error(ATTN_ENOMEM, "attn_translator_load: out of memory");
        goto done;
    }
    if ((st = family_of(dir, model_json, &f))) goto done;
    if (!(t = attn_calloc(1, sizeof *t))) {
        st = attn__error(ATTN_ENOMEM, "attn_translator_load: out of memory");
        goto done;
    }
    t->f = f, t->owned = 1;
    if (!(st = attn__params_limit_file(weights))) st = f->from_json(model_json, &t->model);
    attn__params_limit(-1);
    if (st) st = attn__error(st, "%s: %s", dir, attn_last_error());
    else if (!sp || !tp) st = attn__error(ATTN_EFORMAT, "%s: not a %s checkpoint (no src_vocab.txt / tgt_vocab.txt)", dir, f->kind);
    else if (!(st = attn_params_load(f->params(t->model), weights, 0)) && !(st = attn_vocab_load(sp, &sv)) &&
             !(st = attn_vocab_load(tp, &tv))) {
        st = f->set_vocabs(t->model, sv, tv); /* takes the vocabularies, even on failure */
        sv = tv = NULL;
        if (st) st = attn__error(ATTN_EFORMAT, "%s: %s", dir, attn_last_error());
    }
done:
    attn_vocab_free(sv), attn_vocab_free(tv);
    attn_free(model_json), attn_free(weights);
    attn__ck_close(&ck);
    if (st) {
        attn_translator_free(t);
        return st;
    }
    *out = t;
    return ATTN_OK;
}

/* The vocabulary as a file (one token per line) into sb. */
static void vocab_text(attn__sb *sb, const attn_vocab *v) {
    for (int i = 0, V = attn_vocab_size(v); i < V; i++) attn__sb_str(sb, attn_vocab_token(v, i)), attn__sb_put(sb, "\n", 1);
}

void attn_model_export_free(attn_model_export *e) {
    if (!e) return;
    attn_free(e->model_json), attn_free(e->data_[0]), attn_free(e->data_[1]);
    memset(e, 0, sizeof *e);
}

int attn_translator_export(const attn_translator *t, const char *command, attn_model_export *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_translator_export: NULL argument");
    memset(out, 0, sizeof *out);
    if (!t) return attn__error(ATTN_EINVAL, "attn_translator_export: NULL argument");
    const attn_vocab *svoc = t->f->src_vocab(t->model), *tvoc = t->f->tgt_vocab(t->model);
    if (!svoc || !tvoc) return attn__error(ATTN_EINVAL, "attn_translator_export: the model has no vocabularies");
    char *cfg = NULL;
    int st = t->f->config_json(t->model, &cfg);
    if (st) return st;
    /* the configuration's object, with "command" added before its closing brace */
    attn__sb json = {0}, voc[2] = {{0}, {0}};
    attn__sb_put(&json, cfg, strlen(cfg) - 1);
    if (command) attn__sb_str(&json, ", \"command\": "), attn__json_escape(&json, command, 0);
    attn__sb_str(&json, "}");
    attn_free(cfg);
    vocab_text(&voc[0], svoc), vocab_text(&voc[1], tvoc);
    static const char *const names[2] = {"src_vocab.txt", "tgt_vocab.txt"};
    out->model_json = attn__sb_take(&json, NULL);
    for (int i = 0; i < 2; i++) {
        out->files[i] = (attn_ckpt_file){names[i], NULL, voc[i].buf, voc[i].len};
        out->data_[i] = attn__sb_take(&voc[i], NULL);
        out->files[i].data = out->data_[i];
    }
    if (!out->model_json || !out->data_[0] || !out->data_[1]) {
        attn_model_export_free(out);
        return attn__error(ATTN_ENOMEM, "attn_translator_export: out of memory");
    }
    return ATTN_OK;
}

int attn_translator_save(const attn_translator *t, const char *dir, const char *command) {
    if (!t || !dir) return attn__error(ATTN_EINVAL, "attn_translator_save: NULL argument");
    attn_model_export e;
    int st = attn_translator_export(t, command, &e);
    if (st) return st;
    st = attn__model_save(dir, t->f->params(t->model), e.model_json, 2, e.files);
    attn_model_export_free(&e);
    return st;
}

attn_var *attn_translator_loss(attn_translator *t, attn_graph *g, int n, const int32_t *const *src, const int *src_len,
                               const int32_t *const *tgt, const int *tgt_len, float label_smoothing, int64_t *n_tokens) {
    if (!t || !g || n < 1 || !src || !src_len || !tgt || !tgt_len) {
        attn__error(ATTN_EINVAL, "attn_translator_loss: NULL argument or empty batch");
        return NULL;
    }
    int S = 1, T = 1;
    for (int i = 0; i < n; i++) {
        if (src_len[i] > S) S = src_len[i];
        if (tgt_len[i] + 1 > T) T = tgt_len[i] + 1;
    }
    size_t need = (size_t)n * (S + 2 * T + 1);
    if (need > t->cap) {
        attn_free(t->buf);
        t->cap = 0;
        if (!(t->buf = attn_malloc(need * sizeof(int32_t)))) {
            attn__error(ATTN_ENOMEM, "attn_translator_loss: out of memory");
            return NULL;
        }
        t->cap = need;
    }
    int32_t *sb = t->buf, *tin = sb + (size_t)n * S, *tout = tin + (size_t)n * T, *len = tout + (size_t)n * T;
    int bm = t->f->batch_major;
    int64_t ntok = 0;
    /* element (i, j) of a (n, L) batch: batch-major i * L + j, time-major j * n + i */
#define AT(L, i, j) (bm ? (size_t)(i) * (L) + (j) : (size_t)(j) * n + (i))
    for (int i = 0; i < n; i++) {
        int ls = src_len[i], lt = tgt_len[i] + 1;
        len[i] = ls;
        for (int j = 0; j < S; j++) sb[AT(S, i, j)] = j < ls ? src[i][j] : ATTN_PAD;
        for (int j = 0; j < T; j++) {
            tin[AT(T, i, j)] = j < lt ? tgt[i][j] : ATTN_PAD;
            tout[AT(T, i, j)] = j < lt ? tgt[i][j + 1] : ATTN_PAD;
        }
        ntok += lt;
    }
#undef AT
    if (n_tokens) *n_tokens = ntok;
    return t->f->loss(t->model, g, n, S, T, sb, len, tin, tout, label_smoothing);
}

void attn_translator_free(attn_translator *t) {
    if (!t) return;
    if (t->owned && t->model) t->f->free(t->model);
    attn_free(t->buf);
    attn_free(t);
}

int attn_translator_new(const char *kind, const void *cfg, uint64_t seed, attn_vocab *src, attn_vocab *tgt, attn_translator **out) {
    const family *f = NULL;
    for (int i = 0; kind && i < NFAMILIES; i++)
        if (!strcmp(FAMILIES[i].kind, kind)) f = &FAMILIES[i];
    int st = ATTN_OK;
    attn_translator *t = NULL;
    if (!cfg || !src || !tgt || !out) st = attn__error(ATTN_EINVAL, "attn_translator_new: NULL argument");
    else if (!f) st = attn__error(ATTN_EINVAL, "attn_translator_new: no model family \"%s\" (seq2seq, transformer)", kind ? kind : "");
    else if (!(t = attn_calloc(1, sizeof *t))) st = attn__error(ATTN_ENOMEM, "attn_translator_new: out of memory");
    if (st) {
        attn_vocab_free(src), attn_vocab_free(tgt);
        return st;
    }
    t->f = f, t->owned = 1;
    if ((st = f->create(cfg, seed, attn_vocab_size(src), attn_vocab_size(tgt), &t->model))) attn_vocab_free(src), attn_vocab_free(tgt);
    else st = f->set_vocabs(t->model, src, tgt);
    if (st) {
        attn_translator_free(t);
        return st;
    }
    *out = t;
    return ATTN_OK;
}

static int wrap(const family *f, void *m, attn_translator **out) {
    if (!m || !out) return attn__error(ATTN_EINVAL, "attn_translator_wrap: NULL argument");
    attn_translator *t = attn_calloc(1, sizeof *t);
    if (!t) return attn__error(ATTN_ENOMEM, "attn_translator_wrap: out of memory");
    t->f = f, t->model = m, t->owned = 0;
    *out = t;
    return ATTN_OK;
}

int attn_translator_wrap_seq2seq(attn_s2s *m, attn_translator **out) { return wrap(&FAMILIES[0], m, out); }
int attn_translator_wrap_transformer(attn_transformer *m, attn_translator **out) { return wrap(&FAMILIES[1], m, out); }

const char *attn_translator_kind(const attn_translator *t) { return t ? t->f->kind : "?"; }
const char *attn_translator_label(const attn_translator *t) { return t ? t->f->label(t->model) : "?"; }
attn_s2s *attn_translator_seq2seq(attn_translator *t) { return t && t->f == &FAMILIES[0] ? t->model : NULL; }
attn_transformer *attn_translator_transformer(attn_translator *t) { return t && t->f == &FAMILIES[1] ? t->model : NULL; }
attn_tok_kind attn_translator_src_tok(const attn_translator *t) { return t->f->src_tok(t->model); }
attn_tok_kind attn_translator_tgt_tok(const attn_translator *t) { return t->f->tgt_tok(t->model); }
const attn_vocab *attn_translator_src_vocab(const attn_translator *t) { return t->f->src_vocab(t->model); }
const attn_vocab *attn_translator_tgt_vocab(const attn_translator *t) { return t->f->tgt_vocab(t->model); }
attn_params *attn_translator_params(attn_translator *t) { return t ? t->f->params(t->model) : NULL; }
int64_t attn_translator_num_params(const attn_translator *t) { return t ? attn_params_numel(t->f->params(t->model)) : 0; }

int attn_translator_decode(attn_translator *t, int n, const int32_t *const *src, const int *src_len,
                           const attn_s2s_decode_opts *opts, attn_s2s_hyp *hyps) {
    if (!t || n < 0 || (n && (!src || !src_len || !hyps))) return attn__error(ATTN_EINVAL, "attn_translator_decode: NULL argument");
    return t->f->decode(t->model, n, src, src_len, opts, hyps);
}

int attn_translator_translate(attn_translator *t, const char *sentence, const attn_s2s_decode_opts *opts,
                              attn_s2s_translation *out) {
    if (!t || !out) return attn__error(ATTN_EINVAL, "attn_translator_translate: NULL argument");
    return t->f->translate(t, sentence, opts, out);
}

int attn_translator_maps(attn_translator *t, const int32_t *src, int S, const attn_s2s_hyp *hyp, attn_map_set *out) {
    if (!t || !hyp || !out || (S > 0 && !src)) return attn__error(ATTN_EINVAL, "attn_translator_maps: NULL argument");
    memset(out, 0, sizeof *out);
    if (S <= 0) return ATTN_OK;
    return t->f->maps(t->model, src, S, hyp, out);
}

/* ---- The decoder's states ------------------------------------------------------------------ */

int attn_translator_state_dim(const attn_translator *t) {
    if (!t) return 0;
    if (t->f == &FAMILIES[0]) return ((const attn_s2s *)t->model)->cfg.hidden;
    return attn_transformer_get_config(t->model)->d_model;
}

/* Transformer pairs [i0, i0 + k) as (k, S) and (k, T) blocks, states into out. */
static int tr_states_group(attn_transformer *m, int k, const int32_t *const *src, const int *len, const int32_t *const *tgt,
                           const int *tgt_len, float *out) {
    const attn_transformer_config *c = attn_transformer_get_config(m);
    int S = 1, T = 1, E = c->d_model;
    for (int i = 0; i < k; i++) {
        if (len[i] > c->max_len || tgt_len[i] + 1 > c->max_len)
            return attn__error(ATTN_EINVAL, "transformer teacher forcing: pair of %d and %d tokens (at most max_len %d)", len[i],
                               tgt_len[i], c->max_len);
        S = len[i] > S ? len[i] : S, T = tgt_len[i] + 1 > T ? tgt_len[i] + 1 : T;
    }
    int32_t *sb = attn_calloc((size_t)k * S + (size_t)k * T + k, sizeof(int32_t));
    float *st_ = attn_malloc((size_t)k * T * E * sizeof(float));
    int st = ATTN_OK;
    if (!sb || !st_) st = attn__error(ATTN_ENOMEM, "transformer teacher forcing: out of memory");
    else {
        int32_t *tin = sb + (size_t)k * S, *sl = tin + (size_t)k * T;
        for (int i = 0; i < k; i++) {
            memcpy(sb + (size_t)i * S, src[i], (size_t)len[i] * sizeof(int32_t));
            sl[i] = len[i];
            tin[(size_t)i * T] = ATTN_BOS;
            if (tgt_len[i]) memcpy(tin + (size_t)i * T + 1, tgt[i], (size_t)tgt_len[i] * sizeof(int32_t));
        }
        st = tr_forced_states(m, k, S, sb, sl, T, tin, st_);
        for (int i = 0; i < k && !st; i++) {
            size_t rows = (size_t)tgt_len[i] + 1;
            memcpy(out, st_ + (size_t)i * T * E, rows * E * sizeof(float));
            out += rows * E;
        }
    }
    attn_free(sb), attn_free(st_);
    return st;
}

int attn_translator_states(attn_translator *t, int n, const int32_t *const *src, const int *src_len,
                           const int32_t *const *tgt, const int *tgt_len, float *out) {
    if (!t || n < 0 || (n && (!src || !src_len || !tgt || !tgt_len || !out)))
        return attn__error(ATTN_EINVAL, "attn_translator_states: NULL argument");
    for (int i = 0; i < n; i++)
        if (src_len[i] < 1 || !src[i] || tgt_len[i] < 0 || (tgt_len[i] && !tgt[i]))
            return attn__error(ATTN_EINVAL, "attn_translator_states: pair %d has an empty source or a bad target", i);
    if (t->f == &FAMILIES[0]) return attn__s2s_forced_states(t->model, n, src, src_len, tgt, tgt_len, out);
    const int E = attn_translator_state_dim(t);
    int st = ATTN_OK;
    for (int i0 = 0; i0 < n && !st; i0 += 32) {
        int k = n - i0 < 32 ? n - i0 : 32;
        st = tr_states_group(t->model, k, src + i0, src_len + i0, tgt + i0, tgt_len + i0, out);
        for (int i = i0; i < i0 + k; i++) out += (size_t)(tgt_len[i] + 1) * E;
    }
    return st;
}

int attn_translator_identity(const attn_translator *t, uint64_t *out) {
    if (!t || !out) return attn__error(ATTN_EINVAL, "attn_translator_identity: NULL argument");
    attn_model_export e;
    int st = attn_translator_export(t, NULL, &e);
    if (st) return st;
    uint64_t h = attn__fnv1a(ATTN__FNV_INIT, e.model_json, strlen(e.model_json));
    for (int i = 0; i < 2; i++) h = attn__fnv1a(h, e.files[i].data, e.files[i].size);
    const attn_params *ps = t->f->params(t->model);
    h = attn__fnv1a(h, attn_params_data(ps), (size_t)attn_params_numel(ps) * sizeof(float));
    attn_model_export_free(&e);
    *out = h;
    return ATTN_OK;
}
