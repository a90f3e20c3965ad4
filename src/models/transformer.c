/* The Transformer encoder-decoder (attn/transformer.h): its config and JSON form, its
 * parameters under nn.Transformer's names, and the teacher-forced forward and loss on the
 * autograd tape. Decoding with the key/value cache is in transformer_decode.c, the attention
 * op in transformer_ops.c.
 * Letters: B batch, S source length, T target length, N either, E d_model, H heads, Hkv
 * key/value heads, dh = E / H, KV = Hkv dh, F d_ff, V a vocabulary size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/posenc.h"
#include "attn/text.h"
#include "autograd/ag.h"
#include "core/internal.h"
#include "io/common.h"
#include "io/json.h"
#include "models/transformer_internal.h"

/* ---- Names ------------------------------------------------------------------------------ */

static const char *const POS_NAMES[] = {"none", "sinusoidal", "learned", "rope", "alibi"};
static const char *const SHARE_NAMES[] = {"none", "tgt", "all"};
static const char *const ACT_NAMES[] = {"relu", "gelu"};
static const char *const TOK_NAMES[] = {"space", "en", "en-tutorial", "zh"}; /* attn_tok_kind order */

static int parse_name(const char *const *names, int n, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

const char *attn_pos_name(attn_pos_kind k) { return (unsigned)k < 5 ? POS_NAMES[k] : "?"; }
int attn_pos_parse(const char *name) { return parse_name(POS_NAMES, 5, name); }
const char *attn_share_name(attn_share_kind k) { return (unsigned)k < 3 ? SHARE_NAMES[k] : "?"; }
int attn_share_parse(const char *name) { return parse_name(SHARE_NAMES, 3, name); }

/* ---- Config ----------------------------------------------------------------------------- */

attn_transformer_config attn_transformer_config_default(void) {
    attn_transformer_config c;
    memset(&c, 0, sizeof c);
    c.d_model = 256;
    c.heads = 4;
    c.d_ff = 1024;
    c.enc_layers = 3;
    c.dec_layers = 3;
    c.max_len = 256;
    c.pos = ATTN_POS_SINUSOIDAL;
    c.rope_base = 10000.0f;
    c.norm_first = 0;
    c.activation = ATTN_ACT_RELU;
    c.share = ATTN_SHARE_TGT;
    c.scale_embed = 1;
    c.dropout = 0.1f;
    c.ln_eps = 1e-5f;
    c.src_tok = ATTN_TOK_ZH;
    c.tgt_tok = ATTN_TOK_EN;
    return c;
}

int attn_transformer_config_check(attn_transformer_config *c) {
    if (!c) return attn__error(ATTN_EINVAL, "transformer config: NULL");
    if (c->src_vocab < ATTN_NSPECIAL || c->tgt_vocab < ATTN_NSPECIAL)
        return attn__error(ATTN_EINVAL, "transformer config: vocabulary sizes must be >= %d (src_vocab %d, tgt_vocab %d)",
                           ATTN_NSPECIAL, c->src_vocab, c->tgt_vocab);
    if (c->d_model < 1 || c->heads < 1 || c->d_ff < 1 || c->enc_layers < 1 || c->dec_layers < 1 || c->max_len < 2)
        return attn__error(ATTN_EINVAL,
                           "transformer config: d_model %d, heads %d, d_ff %d, enc_layers %d, dec_layers %d must be >= 1 "
                           "and max_len %d >= 2",
                           c->d_model, c->heads, c->d_ff, c->enc_layers, c->dec_layers, c->max_len);
    if (c->d_model % c->heads)
        return attn__error(ATTN_EINVAL, "transformer config: d_model %d is not a multiple of heads %d", c->d_model, c->heads);
    if (c->kv_heads == 0) c->kv_heads = c->heads;
    if (c->kv_heads < 1 || c->heads % c->kv_heads)
        return attn__error(ATTN_EINVAL, "transformer config: heads %d is not a multiple of kv_heads %d", c->heads, c->kv_heads);
    if ((unsigned)c->pos > ATTN_POS_ALIBI) return attn__error(ATTN_EINVAL, "transformer config: unknown position kind %d", (int)c->pos);
    if (c->pos == ATTN_POS_ROPE && (c->d_model / c->heads) % 2)
        return attn__error(ATTN_EINVAL, "transformer config: rope needs an even head size (d_model / heads = %d)",
                           c->d_model / c->heads);
    if (c->rope_base == 0.0f) c->rope_base = 10000.0f;
    if (!(c->rope_base > 0.0f) || !isfinite(c->rope_base)) return attn__error(ATTN_EINVAL, "transformer config: rope_base must be > 0");
    if ((unsigned)c->activation > ATTN_ACT_GELU) return attn__error(ATTN_EINVAL, "transformer config: unknown activation");
    if ((unsigned)c->share > ATTN_SHARE_ALL) return attn__error(ATTN_EINVAL, "transformer config: unknown sharing kind");
    if (c->share == ATTN_SHARE_ALL && c->src_vocab != c->tgt_vocab)
        return attn__error(ATTN_EINVAL, "transformer config: share 'all' needs one vocabulary (src_vocab %d != tgt_vocab %d)",
                           c->src_vocab, c->tgt_vocab);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f)) return attn__error(ATTN_EINVAL, "transformer config: dropout must be in [0, 1)");
    if (!(c->attn_dropout >= 0.0f && c->attn_dropout < 1.0f))
        return attn__error(ATTN_EINVAL, "transformer config: attn_dropout must be in [0, 1)");
    if (c->alibi_learn && c->pos != ATTN_POS_ALIBI)
        return attn__error(ATTN_EINVAL, "transformer config: alibi_learn needs pos alibi (pos is %s)", attn_pos_name(c->pos));
    c->alibi_learn = c->alibi_learn != 0;
    if ((unsigned)c->src_tok > ATTN_TOK_ZH || (unsigned)c->tgt_tok > ATTN_TOK_ZH)
        return attn__error(ATTN_EINVAL, "transformer config: unknown tokeniser");
    if (c->ln_eps == 0.0f) c->ln_eps = 1e-5f;
    if (!(c->ln_eps > 0.0f)) return attn__error(ATTN_EINVAL, "transformer config: ln_eps must be > 0");
    return ATTN_OK;
}

int attn_transformer_config_to_json(const attn_transformer_config *cfg, char **json) {
    if (!cfg || !json) return attn__error(ATTN_EINVAL, "transformer config json: NULL argument");
    char buf[1152];
    int n = snprintf(buf, sizeof buf,
                     "{\"kind\": \"transformer\", \"src_vocab\": %d, \"tgt_vocab\": %d, \"d_model\": %d, \"heads\": %d, "
                     "\"kv_heads\": %d, \"d_ff\": %d, \"enc_layers\": %d, \"dec_layers\": %d, \"max_len\": %d, "
                     "\"pos\": \"%s\", \"rope_base\": %.9g, \"norm\": \"%s\", \"activation\": \"%s\", \"share\": \"%s\", "
                     "\"scale_embed\": %s, \"dropout\": %.9g, \"ln_eps\": %.9g, \"src_tok\": \"%s\", \"tgt_tok\": \"%s\", "
                     "\"attn_dropout\": %.9g, \"alibi_learn\": %s}",
                     cfg->src_vocab, cfg->tgt_vocab, cfg->d_model, cfg->heads, cfg->kv_heads, cfg->d_ff, cfg->enc_layers,
                     cfg->dec_layers, cfg->max_len, attn_pos_name(cfg->pos), (double)cfg->rope_base,
                     cfg->norm_first ? "pre" : "post", (unsigned)cfg->activation <= 1 ? ACT_NAMES[cfg->activation] : "?",
                     attn_share_name(cfg->share), cfg->scale_embed ? "true" : "false", (double)cfg->dropout,
                     (double)cfg->ln_eps, (unsigned)cfg->src_tok <= ATTN_TOK_ZH ? TOK_NAMES[cfg->src_tok] : "?",
                     (unsigned)cfg->tgt_tok <= ATTN_TOK_ZH ? TOK_NAMES[cfg->tgt_tok] : "?", (double)cfg->attn_dropout,
                     cfg->alibi_learn ? "true" : "false");
    if (n < 0 || (size_t)n >= sizeof buf) return attn__error(ATTN_EINVAL, "transformer config json: too long");
    char *s = attn_malloc((size_t)n + 1);
    if (!s) return ATTN_ENOMEM;
    memcpy(s, buf, (size_t)n + 1);
    *json = s;
    return ATTN_OK;
}

static const attn__json *jmember(const attn__json *obj, const char *key) {
    if (!obj || obj->type != ATTN__JSON_OBJECT) return NULL;
    for (const attn__json *c = obj->child; c; c = c->next)
        if (!strcmp(c->key, key)) return c;
    return NULL;
}

typedef struct {
    const char *text;
    const attn__json *root;
    int st;
} jreader;

static void jint(jreader *r, const char *key, int *out) {
    const attn__json *v = jmember(r->root, key);
    if (!v || r->st) return;
    if (v->type != ATTN__JSON_NUMBER || !v->is_uint || v->u > 1000000000u) {
        r->st = attn__error(ATTN_EFORMAT, "transformer config: \"%s\" must be a non-negative integer", key);
        return;
    }
    *out = (int)v->u;
}

static void jfloat(jreader *r, const char *key, float *out) {
    const attn__json *v = jmember(r->root, key);
    if (!v || r->st) return;
    if (v->type != ATTN__JSON_NUMBER) {
        r->st = attn__error(ATTN_EFORMAT, "transformer config: \"%s\" must be a number", key);
        return;
    }
    *out = (float)strtod(r->text + v->offset, NULL);
}

static void jbool(jreader *r, const char *key, int *out) {
    const attn__json *v = jmember(r->root, key);
    if (!v || r->st) return;
    if (v->type != ATTN__JSON_TRUE && v->type != ATTN__JSON_FALSE) {
        r->st = attn__error(ATTN_EFORMAT, "transformer config: \"%s\" must be true or false", key);
        return;
    }
    *out = v->type == ATTN__JSON_TRUE;
}

static void jenum(jreader *r, const char *key, const char *const *names, int n, int *out) {
    const attn__json *v = jmember(r->root, key);
    if (!v || r->st) return;
    int k = v->type == ATTN__JSON_STRING ? parse_name(names, n, v->str) : -1;
    if (k < 0) {
        r->st = attn__error(ATTN_EFORMAT, "transformer config: \"%s\" has an unknown value", key);
        return;
    }
    *out = k;
}

int attn_transformer_config_from_json(const char *json, attn_transformer_config *cfg) {
    if (!json || !cfg) return attn__error(ATTN_EINVAL, "transformer config json: NULL argument");
    attn__json *root = NULL;
    char err[128];
    int st = attn__json_parse(json, strlen(json), &root, err, sizeof err);
    if (st) return attn__error(st, "transformer config: %s", err);
    attn_transformer_config c = attn_transformer_config_default();
    jreader r = {json, root, ATTN_OK};
    const attn__json *kind = jmember(root, "kind");
    if (root->type != ATTN__JSON_OBJECT || !kind || kind->type != ATTN__JSON_STRING || strcmp(kind->str, "transformer")) {
        attn__json_free(root);
        return attn__error(ATTN_EFORMAT, "transformer config: not a transformer (\"kind\" must be \"transformer\")");
    }
    jint(&r, "src_vocab", &c.src_vocab);
    jint(&r, "tgt_vocab", &c.tgt_vocab);
    jint(&r, "d_model", &c.d_model);
    jint(&r, "heads", &c.heads);
    jint(&r, "kv_heads", &c.kv_heads);
    jint(&r, "d_ff", &c.d_ff);
    jint(&r, "enc_layers", &c.enc_layers);
    jint(&r, "dec_layers", &c.dec_layers);
    jint(&r, "max_len", &c.max_len);
    int pos = (int)c.pos, share = (int)c.share, act = (int)c.activation, norm = c.norm_first;
    static const char *const NORMS[] = {"post", "pre"};
    jenum(&r, "pos", POS_NAMES, 5, &pos);
    jenum(&r, "share", SHARE_NAMES, 3, &share);
    jenum(&r, "activation", ACT_NAMES, 2, &act);
    jenum(&r, "norm", NORMS, 2, &norm);
    int stok = (int)c.src_tok, ttok = (int)c.tgt_tok;
    jenum(&r, "src_tok", TOK_NAMES, 4, &stok);
    jenum(&r, "tgt_tok", TOK_NAMES, 4, &ttok);
    c.src_tok = (attn_tok_kind)stok, c.tgt_tok = (attn_tok_kind)ttok;
    c.pos = (attn_pos_kind)pos, c.share = (attn_share_kind)share, c.activation = (attn_act_kind)act, c.norm_first = norm;
    jfloat(&r, "rope_base", &c.rope_base);
    jfloat(&r, "dropout", &c.dropout);
    jfloat(&r, "ln_eps", &c.ln_eps);
    jbool(&r, "scale_embed", &c.scale_embed);
    jfloat(&r, "attn_dropout", &c.attn_dropout); /* absent in older models: 0 */
    jbool(&r, "alibi_learn", &c.alibi_learn);
    attn__json_free(root);
    if (r.st) return r.st;
    if ((st = attn_transformer_config_check(&c)) != ATTN_OK) return st;
    *cfg = c;
    return ATTN_OK;
}

/* ---- Parameters ------------------------------------------------------------------------ */

static attn_param *add2(attn_params *ps, int *st, const char *prefix, const char *name, int64_t r, int64_t c, attn_init init) {
    if (*st) return NULL;
    char full[160];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    attn_param *p = attn_params_add(ps, full, 2, (int64_t[]){r, c}, init);
    if (!p) *st = ATTN_ENOMEM;
    return p;
}

static attn_param *add1(attn_params *ps, int *st, const char *prefix, const char *name, int64_t n, attn_init init, int no_decay) {
    if (*st) return NULL;
    char full[160];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    attn_param *p = attn_params_add(ps, full, 1, (int64_t[]){n}, init);
    if (!p) *st = ATTN_ENOMEM;
    else p->no_decay = no_decay;
    return p;
}

static void add_mha(attn_transformer *m, int *st, const char *prefix, tr_mha *a) {
    int64_t E = m->cfg.d_model, R = E + 2 * (int64_t)m->KV;
    char pre[128];
    snprintf(pre, sizeof pre, "%s", prefix);
    a->in_w = add2(m->ps, st, pre, "in_proj_weight", R, E, attn_init_xavier_uniform(1.0f));
    a->in_b = add1(m->ps, st, pre, "in_proj_bias", R, attn_init_zeros(), 1);
    a->out_w = add2(m->ps, st, pre, "out_proj.weight", E, E, attn_init_xavier_uniform(1.0f));
    a->out_b = add1(m->ps, st, pre, "out_proj.bias", E, attn_init_zeros(), 1);
}

void tr_add_layer(attn_transformer *m, int *st, const char *stack, int i, int decoder, tr_layer *L) {
    int64_t E = m->cfg.d_model, F = m->cfg.d_ff;
    char pre[96], sub[128];
    snprintf(pre, sizeof pre, "%s.layers.%d.", stack, i);
    snprintf(sub, sizeof sub, "%sself_attn.", pre);
    add_mha(m, st, sub, &L->sa);
    if (decoder) {
        snprintf(sub, sizeof sub, "%smultihead_attn.", pre);
        add_mha(m, st, sub, &L->ca);
    }
    L->l1w = add2(m->ps, st, pre, "linear1.weight", F, E, attn_init_xavier_uniform(1.0f));
    L->l1b = add1(m->ps, st, pre, "linear1.bias", F, attn_init_fan(E), 1);
    L->l2w = add2(m->ps, st, pre, "linear2.weight", E, F, attn_init_xavier_uniform(1.0f));
    L->l2b = add1(m->ps, st, pre, "linear2.bias", E, attn_init_fan(F), 1);
    for (int k = 0; k < (decoder ? 3 : 2); k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "norm%d.weight", k + 1);
        L->nw[k] = add1(m->ps, st, pre, nm, E, attn_init_constant(1.0f), 1);
        snprintf(nm, sizeof nm, "norm%d.bias", k + 1);
        L->nb[k] = add1(m->ps, st, pre, nm, E, attn_init_zeros(), 1);
    }
}

void attn_transformer_free(attn_transformer *m) {
    if (!m) return;
    attn_params_free(m->ps);
    attn_free(m->enc);
    attn_free(m->dec);
    attn_free(m->sin_table);
    attn__vocab_pair_free(&m->voc);
    attn_free(m);
}

int attn_transformer_new(const attn_transformer_config *cfg_in, uint64_t seed, attn_transformer **out) {
    if (!cfg_in || !out) return attn__error(ATTN_EINVAL, "attn_transformer_new: NULL argument");
    *out = NULL;
    attn_transformer_config cfg = *cfg_in;
    int st = attn_transformer_config_check(&cfg);
    if (st) return st;
    attn_transformer *m = attn_calloc(1, sizeof *m);
    if (!m) return ATTN_ENOMEM;
    m->cfg = cfg;
    m->dh = cfg.d_model / cfg.heads;
    m->KV = cfg.kv_heads * m->dh;
    attn_params_new(&m->ps);
    m->enc = attn_calloc((size_t)cfg.enc_layers, sizeof *m->enc);
    m->dec = attn_calloc((size_t)cfg.dec_layers, sizeof *m->dec);
    if (!m->ps || !m->enc || !m->dec) {
        attn_transformer_free(m);
        return ATTN_ENOMEM;
    }
    int64_t E = cfg.d_model;
    attn_init emb = attn_init_normal(0.0f, (float)(1.0 / sqrt((double)E)));
    if (cfg.share == ATTN_SHARE_ALL) {
        m->src_emb = m->tgt_emb = add2(m->ps, &st, "", "embed.weight", cfg.src_vocab, E, emb);
    } else {
        m->src_emb = add2(m->ps, &st, "", "src_embed.weight", cfg.src_vocab, E, emb);
        m->tgt_emb = add2(m->ps, &st, "", "tgt_embed.weight", cfg.tgt_vocab, E, emb);
    }
    if (cfg.pos == ATTN_POS_LEARNED) {
        m->src_pos = add2(m->ps, &st, "", "src_pos.weight", cfg.max_len, E, attn_init_normal(0.0f, 0.1f));
        m->tgt_pos = add2(m->ps, &st, "", "tgt_pos.weight", cfg.max_len, E, attn_init_normal(0.0f, 0.1f));
    }
    for (int i = 0; i < cfg.enc_layers; i++) tr_add_layer(m, &st, "encoder", i, 0, &m->enc[i]);
    m->enc_nw = add1(m->ps, &st, "", "encoder.norm.weight", E, attn_init_constant(1.0f), 1);
    m->enc_nb = add1(m->ps, &st, "", "encoder.norm.bias", E, attn_init_zeros(), 1);
    for (int i = 0; i < cfg.dec_layers; i++) tr_add_layer(m, &st, "decoder", i, 1, &m->dec[i]);
    m->dec_nw = add1(m->ps, &st, "", "decoder.norm.weight", E, attn_init_constant(1.0f), 1);
    m->dec_nb = add1(m->ps, &st, "", "decoder.norm.bias", E, attn_init_zeros(), 1);
    m->gen_w = cfg.share == ATTN_SHARE_NONE ? add2(m->ps, &st, "", "generator.weight", cfg.tgt_vocab, E, attn_init_xavier_uniform(1.0f))
                                            : m->tgt_emb;
    m->gen_b = add1(m->ps, &st, "", "generator.bias", cfg.tgt_vocab, attn_init_zeros(), 1);
    /* Learned ALiBi slopes last, so that every other parameter starts as with fixed slopes:
     * every self-attention's (the decoder's, then the encoder's, bidirectional there), each
     * starting at the paper's. Cross-attention has no ALiBi (its queries and keys are
     * positions of two different sentences). The encoder's are optional in a file: a model
     * saved when only the decoder's slopes were learned loads with the encoder's fixed, as
     * it was trained. */
    for (int i = 0; cfg.alibi_learn && i < cfg.dec_layers + cfg.enc_layers; i++) {
        int enc = i >= cfg.dec_layers, l = enc ? i - cfg.dec_layers : i;
        tr_layer *L = enc ? &m->enc[l] : &m->dec[l];
        char pre[96];
        snprintf(pre, sizeof pre, "%s.layers.%d.self_attn.", enc ? "encoder" : "decoder", l);
        L->slopes = add1(m->ps, &st, pre, "alibi_slopes", cfg.heads, attn_init_zeros(), 1);
        if (L->slopes) L->slopes->optional = enc;
    }
    if (!st) st = attn_params_init(m->ps, seed);
    for (int i = 0; !st && cfg.alibi_learn && i < cfg.dec_layers + cfg.enc_layers; i++)
        st = attn_alibi_slopes(cfg.heads, (i < cfg.dec_layers ? m->dec[i] : m->enc[i - cfg.dec_layers]).slopes->data);
    if (!st && cfg.pos == ATTN_POS_SINUSOIDAL) {
        m->sin_table = attn_malloc((size_t)cfg.max_len * (size_t)E * sizeof(float));
        st = m->sin_table ? attn_sinusoidal_table(cfg.max_len, (int)E, 0, m->sin_table) : ATTN_ENOMEM;
    }
    if (st) {
        attn_transformer_free(m);
        return st == ATTN_ENOMEM ? attn__error(ATTN_ENOMEM, "attn_transformer_new: out of memory") : st;
    }
    *out = m;
    return ATTN_OK;
}

const attn_transformer_config *attn_transformer_get_config(const attn_transformer *m) { return m ? &m->cfg : NULL; }
attn_params *attn_transformer_params(attn_transformer *m) { return m ? m->ps : NULL; }
int64_t attn_transformer_num_params(const attn_transformer *m) { return m ? attn_params_numel(m->ps) : 0; }

void attn_transformer_maps_free(attn_transformer_maps *maps) {
    if (!maps) return;
    attn_free(maps->enc_self);
    attn_free(maps->dec_self);
    attn_free(maps->cross);
    memset(maps, 0, sizeof *maps);
}

/* ---- Forward on the tape ------------------------------------------------------------------ */

#define PV(p) attn_param_var(g, (p))

/* Token embeddings times sqrt(E), plus the position table, then dropout: (B, N, E). */
static attn_var *embed(attn_transformer *m, attn_graph *g, attn_param *table, attn_param *pos, const int32_t *ids, int B, int N) {
    const attn_transformer_config *c = &m->cfg;
    attn_var *x = attn_ag_embedding(g, PV(table), ids, 2, (int64_t[]){B, N}, -1);
    if (c->scale_embed) x = attn_ag_scale(g, x, (float)sqrt((double)c->d_model));
    if (c->pos == ATTN_POS_SINUSOIDAL)
        x = attn_ag_add(g, x, attn_graph_leaf(g, 2, (int64_t[]){N, c->d_model}, m->sin_table, NULL));
    else if (c->pos == ATTN_POS_LEARNED)
        x = attn_ag_add(g, x, tr_param_rows(g, pos, 0, N));
    return attn_ag_dropout(g, x, c->dropout);
}

/* The ALiBi bias (H, Nq, Nk) in the graph's arena, or NULL (and a sticky error). */
static float *alibi(attn_graph *g, int H, int Nq, int Nk, int symmetric) {
    float *bias = attn_graph_alloc(g, (size_t)H * Nq * Nk * sizeof(float));
    if (!bias) return NULL;
    int st = attn_alibi_bias(H, Nq, Nk, 0, symmetric, bias);
    if (st != ATTN_OK) return ag_fail_last(g, st);
    return bias;
}

/* The mask's bias: (H, Nq, Nk) shared by every batch row. */
static void set_bias(attn_mask *mk, const float *bias, int Nq, int Nk) {
    mk->bias = bias;
    mk->bias_strides[0] = 0;
    mk->bias_strides[1] = (int64_t)Nq * Nk;
    mk->bias_strides[2] = Nk;
    mk->bias_strides[3] = 1;
}

/* Self-attention of x (B, N, E): one packed projection (B, N, E + 2 KV), the fused attention,
 * the output projection. */
static attn_var *self_attn(attn_transformer *m, attn_graph *g, attn_var *x, const tr_mha *p, int causal,
                           const int32_t *key_len, const float *bias, attn_param *slopes, attn_var **w) {
    const attn_transformer_config *c = &m->cfg;
    if (!x) return NULL;
    int N = (int)x->shape[1];
    attn_var *qkv = attn_ag_linear(g, x, PV(p->in_w), PV(p->in_b));
    tr_attn_opts o;
    memset(&o, 0, sizeof o);
    o.H = c->heads, o.Hkv = c->kv_heads, o.dh = m->dh;
    o.q_off = 0, o.k_off = c->d_model, o.v_off = c->d_model + m->KV;
    o.rope = c->pos == ATTN_POS_ROPE;
    o.rope_base = c->rope_base;
    o.mask.causal = causal;
    o.mask.key_lengths = key_len;
    if (bias) set_bias(&o.mask, bias, N, N);
    /* Learned slopes: slope_h (j - i), top-left, causal (the decoder's bias above); without
     * causal (the encoder) -slope_h |j - i|, attn_alibi_bias's symmetric form. */
    if (slopes) o.alibi = PV(slopes), o.alibi_bidirectional = !causal;
    o.dropout = c->attn_dropout;
    attn_var *a = tr_attention(g, qkv, qkv, &o, w);
    return attn_ag_linear(g, a, PV(p->out_w), PV(p->out_b));
}

/* Cross-attention of x (B, T, E) over mem (B, S, E): q from rows [0, E) of in_proj, keys and
 * values from rows [E, E + 2 KV). */
static attn_var *cross_attn(attn_transformer *m, attn_graph *g, attn_var *x, attn_var *mem, const tr_mha *p,
                            const int32_t *mem_len, attn_var **w) {
    const attn_transformer_config *c = &m->cfg;
    int64_t E = c->d_model;
    attn_var *q = attn_ag_linear(g, x, tr_param_rows(g, p->in_w, 0, E), tr_param_slice(g, p->in_b, 0, E));
    attn_var *kv = attn_ag_linear(g, mem, tr_param_rows(g, p->in_w, E, 2 * m->KV), tr_param_slice(g, p->in_b, E, 2 * m->KV));
    tr_attn_opts o;
    memset(&o, 0, sizeof o);
    o.H = c->heads, o.Hkv = c->kv_heads, o.dh = m->dh;
    o.q_off = 0, o.k_off = 0, o.v_off = m->KV;
    o.mask.key_lengths = mem_len;
    o.dropout = c->attn_dropout;
    attn_var *a = tr_attention(g, q, kv, &o, w);
    return attn_ag_linear(g, a, PV(p->out_w), PV(p->out_b));
}

static attn_var *feed_forward(attn_transformer *m, attn_graph *g, attn_var *x, const tr_layer *L) {
    const attn_transformer_config *c = &m->cfg;
    attn_var *h = attn_ag_linear(g, x, PV(L->l1w), PV(L->l1b));
    h = c->activation == ATTN_ACT_GELU ? attn_ag_dropout(g, attn_ag_gelu(g, h), c->dropout) : tr_relu_dropout(g, h, c->dropout);
    return attn_ag_linear(g, h, PV(L->l2w), PV(L->l2b));
}

/* x + dropout(f) with the k-th norm before (pre-LN) or after (post-LN): `sub` computes f from
 * its input. Split in two calls: norm_in gives the sublayer's input, residual finishes. */
static attn_var *norm_in(attn_transformer *m, attn_graph *g, attn_var *x, const tr_layer *L, int k) {
    return m->cfg.norm_first ? attn_ag_layernorm(g, x, PV(L->nw[k]), PV(L->nb[k]), m->cfg.ln_eps) : x;
}
static attn_var *residual(attn_transformer *m, attn_graph *g, attn_var *x, attn_var *f, const tr_layer *L, int k) {
    attn_var *y = tr_add_dropout(g, x, f, m->cfg.dropout);
    return m->cfg.norm_first ? y : attn_ag_layernorm(g, y, PV(L->nw[k]), PV(L->nb[k]), m->cfg.ln_eps);
}

/* Copies P (B, H, Nq, Nk) into dst. */
static void keep_map(float *dst, attn_var *P) {
    if (dst && P) memcpy(dst, P->data, (size_t)P->numel * sizeof(float));
}

attn_var *tr_encode(attn_transformer *m, attn_graph *g, const int32_t *src, const int32_t *src_len, int B, int S,
                    float *maps_enc) {
    const attn_transformer_config *c = &m->cfg;
    int H = c->heads;
    const float *enc_bias = NULL; /* the fixed ALiBi bias, for the layers without learned slopes */
    int fixed = 0;
    for (int l = 0; l < c->enc_layers; l++) fixed |= !m->enc[l].slopes;
    if (c->pos == ATTN_POS_ALIBI && fixed && !(enc_bias = alibi(g, H, S, S, 1))) return NULL;
    attn_var *x = embed(m, g, m->src_emb, m->src_pos, src, B, S);
    for (int l = 0; l < c->enc_layers; l++) {
        const tr_layer *L = &m->enc[l];
        attn_var *w = NULL;
        attn_var *f = self_attn(m, g, norm_in(m, g, x, L, 0), &L->sa, 0, src_len, L->slopes ? NULL : enc_bias, L->slopes,
                                maps_enc ? &w : NULL);
        if (maps_enc) keep_map(maps_enc + (size_t)l * B * H * S * S, w);
        x = residual(m, g, x, f, L, 0);
        x = residual(m, g, x, feed_forward(m, g, norm_in(m, g, x, L, 1), L), L, 1);
    }
    return attn_ag_layernorm(g, x, PV(m->enc_nw), PV(m->enc_nb), c->ln_eps);
}

attn_var *attn_transformer_forward(attn_transformer *m, attn_graph *g, const attn_transformer_batch *b,
                                   attn_transformer_maps *maps) {
    return tr_forward(m, g, b, maps, 0);
}

attn_var *tr_forward(attn_transformer *m, attn_graph *g, const attn_transformer_batch *b, attn_transformer_maps *maps,
                     int cross_last) {
    if (!g) return NULL;
    if (attn_graph_status(g) != ATTN_OK) return NULL;
    if (!m || !b || !b->src || !b->src_len || !b->tgt_in || b->B < 1 || b->S < 1 || b->T < 1) {
        return ag_fail(g, ATTN_EINVAL, "attn_transformer_forward: NULL model or batch, or empty batch");
    }
    const attn_transformer_config *c = &m->cfg;
    int B = b->B, S = b->S, T = b->T, H = c->heads;
    int st = ATTN_OK;
    if (S > c->max_len || T > c->max_len)
        st = attn__error(ATTN_EINVAL, "transformer: sequence of %d tokens is longer than max_len %d", S > T ? S : T, c->max_len);
    if (!st) st = tr_check_ids(b->src, (int64_t)B * S, c->src_vocab, "source");
    if (!st) st = tr_check_ids(b->tgt_in, (int64_t)B * T, c->tgt_vocab, "target");
    for (int i = 0; i < B && !st; i++)
        if (b->src_len[i] < 1 || b->src_len[i] > S)
            st = attn__error(ATTN_EINVAL, "transformer: source length %d of row %d is outside [1, %d]", b->src_len[i], i, S);
    if (st) return ag_fail_last(g, st); /* sticky: the caller's single check catches it */
    if (maps) {
        attn_transformer_maps_free(maps);
        maps->enc_layers = c->enc_layers, maps->dec_layers = c->dec_layers, maps->heads = H;
        maps->S = S, maps->T = T, maps->B = B;
        if (!cross_last) {
            maps->enc_self = attn_malloc((size_t)c->enc_layers * B * H * S * S * sizeof(float));
            maps->dec_self = attn_malloc((size_t)c->dec_layers * B * H * T * T * sizeof(float));
        }
        maps->cross = attn_malloc((size_t)(cross_last ? 1 : c->dec_layers) * B * H * T * S * sizeof(float));
        if (((!maps->enc_self || !maps->dec_self) && !cross_last) || !maps->cross) {
            attn_transformer_maps_free(maps);
            return ag_fail(g, ATTN_ENOMEM, "attn_transformer_forward: out of memory for the attention maps");
        }
    }
    const float *dec_bias = NULL;
    if (c->pos == ATTN_POS_ALIBI && !c->alibi_learn && !(dec_bias = alibi(g, H, T, T, 0))) return NULL;
    attn_var *mem = tr_encode(m, g, b->src, b->src_len, B, S, maps ? maps->enc_self : NULL);
    /* The weights are recomputed from each kept attention's lse (attn_weights, in ag_attention),
     * only where wanted: every map, or the last layer's cross-attention alone. */
    float *dec_maps = maps ? maps->dec_self : NULL;
    /* Decoder. */
    attn_var *y = embed(m, g, m->tgt_emb, m->tgt_pos, b->tgt_in, B, T);
    for (int l = 0; l < c->dec_layers; l++) {
        const tr_layer *L = &m->dec[l];
        attn_var *w = NULL;
        int cross = maps && (!cross_last || l == c->dec_layers - 1);
        attn_var *f = self_attn(m, g, norm_in(m, g, y, L, 0), &L->sa, 1, NULL, dec_bias, L->slopes, dec_maps ? &w : NULL);
        if (dec_maps) keep_map(dec_maps + (size_t)l * B * H * T * T, w);
        y = residual(m, g, y, f, L, 0);
        f = cross_attn(m, g, norm_in(m, g, y, L, 1), mem, &L->ca, b->src_len, cross ? &w : NULL);
        if (cross) keep_map(maps->cross + (size_t)(cross_last ? 0 : l) * B * H * T * S, w);
        y = residual(m, g, y, f, L, 1);
        y = residual(m, g, y, feed_forward(m, g, norm_in(m, g, y, L, 2), L), L, 2);
    }
    y = attn_ag_layernorm(g, y, PV(m->dec_nw), PV(m->dec_nb), c->ln_eps);
    attn_var *logits = attn_ag_linear(g, y, PV(m->gen_w), PV(m->gen_b));
    if (!logits && maps) attn_transformer_maps_free(maps);
    return logits;
}

attn_var *attn_transformer_loss(attn_transformer *m, attn_graph *g, const attn_transformer_batch *b, float label_smoothing,
                                int64_t *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    attn_var *logits = attn_transformer_forward(m, g, b, NULL);
    if (!logits) return NULL;
    if (!b->tgt_out) return ag_fail(g, ATTN_EINVAL, "attn_transformer_loss: the batch has no tgt_out");
    if (n_tokens) {
        int64_t n = 0;
        for (int64_t i = 0; i < (int64_t)b->B * b->T; i++) n += b->tgt_out[i] != ATTN_PAD;
        *n_tokens = n;
    }
    return attn_ag_cross_entropy(g, logits, b->tgt_out, ATTN_PAD, label_smoothing);
}

/* ---- Vocabularies and checkpoints ------------------------------------------------------- */

int attn_transformer_set_vocabs(attn_transformer *m, attn_vocab *src, attn_vocab *tgt) {
    return attn__vocabs_replace("transformer", m ? &m->voc : NULL, src, tgt, m ? m->cfg.src_vocab : 0,
                                m ? m->cfg.tgt_vocab : 0);
}

const attn_vocab *attn_transformer_src_vocab(const attn_transformer *m) { return m ? m->voc.src : NULL; }
const attn_vocab *attn_transformer_tgt_vocab(const attn_transformer *m) { return m ? m->voc.tgt : NULL; }
