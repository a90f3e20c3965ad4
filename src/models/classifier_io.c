/* The text classifiers' configuration (defaults, checks, JSON), vocabulary and label names,
 * and checkpoint directories (io/ckdir.h): config.json's model object, model.safetensors,
 * vocab.txt and labels.txt. The model itself is in classifier.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/ckdir.h"
#include "params/params_internal.h"
#include "io/json.h"
#include "models/classifier_internal.h"

/* ---- Names ---------------------------------------------------------------------------------- */

static const char *const KIND_NAMES[] = {"bow", "attn-pool", "bigru-attn", "transformer", "cnn"};
static const char *const POOL_NAMES[] = {"cls", "attention"};
static const char *const TOK_NAMES[] = {"space", "en", "en-tutorial", "zh"}; /* attn_tok_kind order */

static int find_name(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

const char *attn_cls_kind_name(attn_cls_kind k) { return (unsigned)k < 5 ? KIND_NAMES[k] : "?"; }
int attn_cls_kind_parse(const char *name) { return find_name(KIND_NAMES, 5, name); }
const char *attn_cls_pool_name(attn_cls_pool p) { return (unsigned)p < 2 ? POOL_NAMES[p] : "?"; }
int attn_cls_pool_parse(const char *name) { return find_name(POOL_NAMES, 2, name); }

/* ---- Configuration -------------------------------------------------------------------------- */

attn_classifier_config attn_classifier_config_default(void) {
    attn_classifier_config c;
    memset(&c, 0, sizeof c);
    c.kind = ATTN_CLS_BOW;
    c.embed = 128, c.hidden = 128;
    c.score = ATTN_SCORE_ADDITIVE;
    c.heads = 4, c.layers = 2, c.d_ff = 256;
    c.pos = ATTN_POS_SINUSOIDAL;
    c.pool = ATTN_CLS_POOL_CLS;
    c.max_len = 512;
    c.dropout = 0.1f;
    c.tok = ATTN_TOK_EN;
    c.maps = 100, c.n_widths = 3, c.widths[0] = 3, c.widths[1] = 4, c.widths[2] = 5;
    return c;
}

int attn_classifier_config_check(const attn_classifier_config *c) {
#define BAD(...) attn__error(ATTN_EINVAL, "classifier config: " __VA_ARGS__)
    if (!c) return BAD("NULL");
    if ((unsigned)c->kind > ATTN_CLS_CNN) return BAD("unknown model kind %d", (int)c->kind);
    if (c->vocab < ATTN_NSPECIAL) return BAD("vocab %d must be >= %d (the special tokens)", c->vocab, ATTN_NSPECIAL);
    if (c->classes < 2) return BAD("classes %d must be >= 2", c->classes);
    if (c->embed < 1 || c->hidden < 1 || c->max_len < 1) return BAD("embed %d, hidden %d and max_len %d must be >= 1", c->embed, c->hidden, c->max_len);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f)) return BAD("dropout %g must be in [0, 1)", (double)c->dropout);
    if ((unsigned)c->tok > ATTN_TOK_ZH) return BAD("unknown tokeniser %d", (int)c->tok);
    if (c->kind == ATTN_CLS_ATTN_POOL && c->score != ATTN_SCORE_ADDITIVE && c->score != ATTN_SCORE_SCALED)
        return BAD("attn-pool takes the additive or the scaled score, not %s", attn_score_name(c->score));
    if (c->kind == ATTN_CLS_CNN) {
        if (c->maps < 1) return BAD("maps %d must be >= 1", c->maps);
        if (c->n_widths < 1 || c->n_widths > ATTN_CLS_MAX_WIDTHS)
            return BAD("n_widths %d: the cnn takes 1 to %d filter widths", c->n_widths, ATTN_CLS_MAX_WIDTHS);
        for (int i = 0; i < c->n_widths; i++)
            if (c->widths[i] < 1 || c->widths[i] > 64) return BAD("widths: filter width %d is outside [1, 64]", c->widths[i]);
    }
    if (c->kind != ATTN_CLS_TRANSFORMER) return ATTN_OK;
    if (c->heads < 1 || c->layers < 1 || c->d_ff < 1) return BAD("heads %d, layers %d and d_ff %d must be >= 1", c->heads, c->layers, c->d_ff);
    if (c->embed % c->heads) return BAD("embed %d is not a multiple of heads %d", c->embed, c->heads);
    if ((unsigned)c->pos > ATTN_POS_ALIBI) return BAD("unknown position kind %d", (int)c->pos);
    if (c->pos == ATTN_POS_ROPE && (c->embed / c->heads) % 2) return BAD("rope needs an even head size (embed / heads = %d)", c->embed / c->heads);
    if ((unsigned)c->pool > ATTN_CLS_POOL_ATTENTION) return BAD("unknown pooling %d", (int)c->pool);
    return ATTN_OK;
#undef BAD
}

int attn_classifier_config_to_json(const attn_classifier_config *c, char **json) {
    if (!c || !json) return attn__error(ATTN_EINVAL, "classifier config json: NULL argument");
    attn__sb sb = {0};
    attn__jw w;
    attn__jw_init(&w, &sb, 1, 0);
    attn__jw_object(&w, 0);
    attn__jw_key(&w, "kind"), attn__jw_str(&w, "classifier");
    attn__jw_key(&w, "model"), attn__jw_str(&w, attn_cls_kind_name(c->kind));
    const char *const keys[] = {"vocab", "classes", "embed", "hidden", "heads", "layers", "d_ff", "max_len"};
    const int vals[] = {c->vocab, c->classes, c->embed, c->hidden, c->heads, c->layers, c->d_ff, c->max_len};
    for (int i = 0; i < 8; i++) attn__jw_key(&w, keys[i]), attn__jw_i64(&w, vals[i]);
    attn__jw_key(&w, "score"), attn__jw_str(&w, attn_score_name(c->score));
    attn__jw_key(&w, "pos"), attn__jw_str(&w, attn_pos_name(c->pos));
    attn__jw_key(&w, "pool"), attn__jw_str(&w, attn_cls_pool_name(c->pool));
    attn__jw_key(&w, "dropout"), attn__jw_f32(&w, c->dropout);
    attn__jw_key(&w, "tok"), attn__jw_str(&w, (unsigned)c->tok <= ATTN_TOK_ZH ? TOK_NAMES[c->tok] : "?");
    attn__jw_key(&w, "maps"), attn__jw_i64(&w, c->maps);
    attn__jw_key(&w, "widths"), attn__jw_array(&w, 0);
    for (int i = 0; i < c->n_widths && i < ATTN_CLS_MAX_WIDTHS; i++) attn__jw_i64(&w, c->widths[i]);
    attn__jw_end(&w, ']');
    attn__jw_end(&w, '}');
    if (!(*json = attn__sb_take(&sb, NULL))) return attn__error(ATTN_ENOMEM, "classifier config json: out of memory");
    return ATTN_OK;
}

static const attn__json *member(const attn__json *obj, const char *key) {
    for (const attn__json *v = obj->child; v; v = v->next)
        if (!strcmp(v->key, key)) return v;
    return NULL;
}

/* The member `key` of obj as a name from names[0..n) (or parse(), when names is NULL) into
 * *out; absent leaves *out. 0 if present but not a known name. */
static int read_name(const attn__json *obj, const char *key, const char *const *names, int n, int (*parse)(const char *), int *out) {
    const attn__json *v = member(obj, key);
    if (!v) return 1;
    int k = v->type != ATTN__JSON_STRING ? -1 : names ? find_name(names, n, v->str) : parse(v->str);
    if (k >= 0) *out = k;
    return k >= 0;
}

/* The cnn's "widths", an array of at most ATTN_CLS_MAX_WIDTHS sizes, into c (absent: c's stay;
 * the check says whether the cnn can use them); NULL, or what is wrong. */
static const char *read_widths(const attn__json *v, attn_classifier_config *c) {
    if (!v) return NULL;
    if (v->type != ATTN__JSON_ARRAY || v->len > ATTN_CLS_MAX_WIDTHS) return "\"widths\" is not an array of at most 8 sizes";
    memset(c->widths, 0, sizeof c->widths);
    c->n_widths = 0;
    for (const attn__json *e = v->child; e; e = e->next) {
        if (e->type != ATTN__JSON_NUMBER || !e->is_uint || e->u > 1000000000u) return "a width is not a non-negative integer";
        c->widths[c->n_widths++] = (int)e->u;
    }
    return NULL;
}

int attn_classifier_config_from_json(const char *json, attn_classifier_config *cfg) {
    if (!json || !cfg) return attn__error(ATTN_EINVAL, "classifier config json: NULL argument");
    attn__json *root = NULL;
    char err[128];
    int st = attn__json_parse(json, strlen(json), &root, err, sizeof err);
    if (st) return st == ATTN_ENOMEM ? st : attn__error(ATTN_EFORMAT, "classifier config: %s", err);
    attn_classifier_config c = attn_classifier_config_default();
    const char *bad = NULL;
    const attn__json *kind = root->type == ATTN__JSON_OBJECT ? member(root, "kind") : NULL;
    int model = (int)c.kind, score = (int)c.score, pos = (int)c.pos, pl = (int)c.pool, tok = (int)c.tok;
    if (!kind || kind->type != ATTN__JSON_STRING || strcmp(kind->str, "classifier")) bad = "\"kind\" is not \"classifier\"";
    else if (!member(root, "model") || !read_name(root, "model", KIND_NAMES, 5, NULL, &model)) bad = "\"model\" is not a known kind";
    else if (!read_name(root, "score", NULL, 0, attn_score_parse, &score)) bad = "unknown \"score\"";
    else if (!read_name(root, "pos", NULL, 0, attn_pos_parse, &pos)) bad = "unknown \"pos\"";
    else if (!read_name(root, "pool", POOL_NAMES, 2, NULL, &pl)) bad = "unknown \"pool\"";
    else if (!read_name(root, "tok", TOK_NAMES, 4, NULL, &tok)) bad = "unknown \"tok\"";
    const char *const keys[] = {"vocab", "classes", "embed", "hidden", "heads", "layers", "d_ff", "max_len", "maps"};
    int *const vals[] = {&c.vocab, &c.classes, &c.embed, &c.hidden, &c.heads, &c.layers, &c.d_ff, &c.max_len, &c.maps};
    for (int i = 0; i < 9 && !bad; i++) {
        const attn__json *v = member(root, keys[i]);
        if (v && (v->type != ATTN__JSON_NUMBER || !v->is_uint || v->u > 1000000000u)) bad = "a size is not a non-negative integer";
        else if (v) *vals[i] = (int)v->u;
    }
    if (!bad) bad = read_widths(member(root, "widths"), &c);
    const attn__json *d = bad ? NULL : member(root, "dropout");
    if (d && d->type != ATTN__JSON_NUMBER) bad = "\"dropout\" is not a number";
    else if (d) c.dropout = (float)strtod(json + d->offset, NULL);
    attn__json_free(root);
    if (bad) return attn__error(ATTN_EFORMAT, "classifier config: %s", bad);
    c.kind = (attn_cls_kind)model, c.score = (attn_score)score, c.pos = (attn_pos_kind)pos, c.pool = (attn_cls_pool)pl;
    c.tok = (attn_tok_kind)tok;
    if ((st = attn_classifier_config_check(&c))) return st;
    *cfg = c;
    return ATTN_OK;
}

/* ---- Vocabulary and labels ------------------------------------------------------------------ */

int attn_classifier_set_vocab(attn_classifier *m, attn_vocab *v) {
    if (!m || !v) {
        attn_vocab_free(v);
        return attn__error(ATTN_EINVAL, "attn_classifier_set_vocab: NULL argument");
    }
    if (attn_vocab_size(v) != m->cfg.vocab) {
        int n = attn_vocab_size(v);
        attn_vocab_free(v);
        return attn__error(ATTN_EINVAL, "classifier: the vocabulary has %d tokens, the model %d", n, m->cfg.vocab);
    }
    attn_vocab_free(m->vocab);
    m->vocab = v;
    return ATTN_OK;
}

const attn_vocab *attn_classifier_vocab(const attn_classifier *m) { return m ? m->vocab : NULL; }

void cls_labels_free(attn_classifier *m) {
    for (int i = 0; m->labels && i < m->cfg.classes; i++) attn_free(m->labels[i]);
    attn_free(m->labels);
    m->labels = NULL;
}

int attn_classifier_set_labels(attn_classifier *m, int n, const char *const *names) {
    if (!m || !names) return attn__error(ATTN_EINVAL, "attn_classifier_set_labels: NULL argument");
    if (n != m->cfg.classes) return attn__error(ATTN_EINVAL, "classifier: %d label names for %d classes", n, m->cfg.classes);
    for (int i = 0; i < n; i++)
        if (!names[i] || !names[i][0] || strpbrk(names[i], "\n\r") || !attn__utf8_valid(names[i], strlen(names[i])))
            return attn__error(ATTN_EINVAL, "classifier: label %d is empty, not UTF-8, or holds a line break", i);
    char **l = attn_calloc((size_t)n, sizeof *l);
    for (int i = 0; l && i < n; i++)
        if (!(l[i] = attn_malloc(strlen(names[i]) + 1))) {
            for (int j = 0; j < i; j++) attn_free(l[j]);
            attn_free(l), l = NULL;
        } else {
            memcpy(l[i], names[i], strlen(names[i]) + 1);
        }
    if (!l) return attn__error(ATTN_ENOMEM, "attn_classifier_set_labels: out of memory");
    cls_labels_free(m);
    m->labels = l;
    return ATTN_OK;
}

const char *attn_classifier_label(const attn_classifier *m, int c) {
    return m && m->labels && c >= 0 && c < m->cfg.classes ? m->labels[c] : NULL;
}

/* ---- Checkpoints ---------------------------------------------------------------------------- */

int attn_classifier_export(const attn_classifier *m, const char *command, attn_model_export *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_classifier_export: NULL argument");
    memset(out, 0, sizeof *out);
    if (!m) return attn__error(ATTN_EINVAL, "attn_classifier_export: NULL argument");
    if (!m->vocab || !m->labels) return attn__error(ATTN_EINVAL, "attn_classifier_export: the model has no vocabulary or labels");
    char *cfg = NULL;
    int st = attn_classifier_config_to_json(&m->cfg, &cfg);
    if (st) return st;
    attn__sb json = {0}, f[2] = {{0}, {0}};
    attn__sb_put(&json, cfg, strlen(cfg) - 1); /* the object, "command" added before its '}' */
    if (command) attn__sb_str(&json, ", \"command\": "), attn__json_escape(&json, command, 0);
    attn__sb_str(&json, "}");
    attn_free(cfg);
    for (int i = 0; i < m->cfg.vocab; i++) attn__sb_str(&f[0], attn_vocab_token(m->vocab, i)), attn__sb_str(&f[0], "\n");
    for (int i = 0; i < m->cfg.classes; i++) attn__sb_str(&f[1], m->labels[i]), attn__sb_str(&f[1], "\n");
    static const char *const names[2] = {"vocab.txt", "labels.txt"};
    out->model_json = attn__sb_take(&json, NULL);
    for (int i = 0; i < 2; i++) {
        size_t n = f[i].len;
        out->data_[i] = attn__sb_take(&f[i], NULL);
        out->files[i] = (attn_ckpt_file){names[i], NULL, out->data_[i], n};
    }
    if (!out->model_json || !out->data_[0] || !out->data_[1]) {
        attn_model_export_free(out);
        return attn__error(ATTN_ENOMEM, "attn_classifier_export: out of memory");
    }
    return ATTN_OK;
}

int attn_classifier_save(const attn_classifier *m, const char *dir, const char *command) {
    if (!m || !dir) return attn__error(ATTN_EINVAL, "attn_classifier_save: NULL argument");
    attn_model_export e;
    int st = attn_classifier_export(m, command, &e);
    if (st) return st;
    st = attn__model_save(dir, m->ps, e.model_json, 2, e.files);
    attn_model_export_free(&e);
    return st;
}

/* labels.txt: one name per line, exactly C lines. */
static int load_labels(attn_classifier *m, const char *path) {
    size_t n = 0;
    char *text = NULL;
    int st = attn__read_file(path, (size_t)1 << 24, &text, &n);
    if (st) return st;
    int C = m->cfg.classes, k = 0;
    const char **names = attn_calloc((size_t)C, sizeof *names);
    if (!names) st = attn__error(ATTN_ENOMEM, "classifier: out of memory");
    for (char *p = text; !st && p < text + n; k++) {
        char *nl = memchr(p, '\n', (size_t)(text + n - p));
        if (!nl || k >= C) {
            st = attn__error(ATTN_EFORMAT, "%s: expected %d label lines, each ending in a newline", path, C);
            break;
        }
        *nl = 0;
        names[k] = p;
        p = nl + 1;
    }
    if (!st && k != C) st = attn__error(ATTN_EFORMAT, "%s: %d labels for %d classes", path, k, C);
    if (!st && (st = attn_classifier_set_labels(m, C, names))) st = attn__error(ATTN_EFORMAT, "%s: %s", path, attn_last_error());
    attn_free((void *)names), attn_free(text);
    return st;
}

int attn_classifier_load(const char *dir, attn_classifier **out) {
    if (!dir || !out) return attn__error(ATTN_EINVAL, "attn_classifier_load: NULL argument");
    *out = NULL;
    attn__ck ck;
    int st = attn__ck_open(dir, &ck);
    if (st) return st;
    attn_classifier *m = NULL;
    attn_vocab *v = NULL;
    attn_classifier_config c;
    char *json = attn__ck_text(&ck, attn__ck_member(&ck, "model")), *weights = attn__ck_file_path(dir, ATTN__CK_MODEL);
    const char *vp = attn__ck_extra(&ck, "vocab.txt"), *lp = attn__ck_extra(&ck, "labels.txt");
    if (!json || !weights) st = attn__error(ATTN_ENOMEM, "attn_classifier_load: out of memory");
    else if ((st = attn_classifier_config_from_json(json, &c)) || (st = attn_classifier_new(&c, 0, &m)))
        st = attn__error(st, "%s: %s", dir, attn_last_error());
    else if (!vp || !lp) st = attn__error(ATTN_EFORMAT, "%s: not a classifier checkpoint (no vocab.txt / labels.txt)", dir);
    else if ((st = attn_params_load(m->ps, weights, 0)) || (st = attn_vocab_load(vp, &v)) || (st = attn_classifier_set_vocab(m, v)) ||
             (st = load_labels(m, lp)))
        st = attn__error(st == ATTN_ENOMEM ? st : ATTN_EFORMAT, "%s: %s", dir, attn_last_error());
    attn_free(json), attn_free(weights);
    attn__ck_close(&ck);
    if (st) {
        attn_classifier_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}
