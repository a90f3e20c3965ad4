/* The encoder-decoder models (attn/seq2seq.h): configuration, parameters under PyTorch's
 * names, the encoder, the teacher-forced forward and loss, and checkpoints. Decoding (greedy,
 * beam search) and the text-level calls are in s2s_decode.c; the fused additive-attention
 * step in s2s_additive.c.
 *
 * Letters: B batch, S source positions, T target positions, E embedding size, H hidden size
 * (He per encoder direction), A additive-score size, Vs and Vt vocabulary sizes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/seq2seq.h"
#include "core/internal.h"
#include "io/common.h"
#include "io/json.h"
#include "models/s2s_internal.h"

/* ---- Names ------------------------------------------------------------------------------- */

static const char *const ATT_NAMES[] = {"none", "bahdanau", "luong-dot", "luong-general"};
static const char *const RNN_NAMES[] = {"gru", "lstm"};
static const char *const TOK_NAMES[] = {"space", "en", "en-tutorial", "zh"};

const char *attn_s2s_attention_name(attn_s2s_attention a) {
    return (unsigned)a < 4 ? ATT_NAMES[a] : "unknown";
}
int attn_s2s_attention_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, ATT_NAMES[i])) return i;
    return -1;
}
const char *attn_s2s_rnn_name(attn_s2s_rnn r) { return (unsigned)r < 2 ? RNN_NAMES[r] : "unknown"; }
int attn_s2s_rnn_parse(const char *name) {
    for (int i = 0; name && i < 2; i++)
        if (!strcmp(name, RNN_NAMES[i])) return i;
    return -1;
}
static int tok_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, TOK_NAMES[i])) return i;
    return -1;
}

attn_s2s_config attn_s2s_defaults(void) {
    attn_s2s_config c;
    memset(&c, 0, sizeof c);
    c.attention = ATTN_S2S_BAHDANAU;
    c.rnn = ATTN_S2S_GRU;
    c.emb = 256;
    c.hidden = 256;
    c.dropout = 0.2f;
    c.src_tok = ATTN_TOK_ZH;
    c.tgt_tok = ATTN_TOK_EN;
    return c;
}

static int config_check(const attn_s2s_config *c) {
    if (!c) return attn__error(ATTN_EINVAL, "seq2seq: NULL configuration");
    if ((unsigned)c->attention > ATTN_S2S_LUONG_GENERAL) return attn__error(ATTN_EINVAL, "seq2seq: unknown attention %d", (int)c->attention);
    if ((unsigned)c->rnn > ATTN_S2S_LSTM) return attn__error(ATTN_EINVAL, "seq2seq: unknown recurrent cell %d", (int)c->rnn);
    if (c->src_vocab < ATTN_NSPECIAL + 1 || c->tgt_vocab < ATTN_NSPECIAL + 1)
        return attn__error(ATTN_EINVAL, "seq2seq: vocabulary sizes %d and %d (each needs the 4 special tokens and at least one more)",
                           c->src_vocab, c->tgt_vocab);
    if (c->emb < 1 || c->hidden < 1 || c->attn_size < 0 || c->emb > 65536 || c->hidden > 65536 || c->attn_size > 65536)
        return attn__error(ATTN_EINVAL, "seq2seq: sizes emb %d, hidden %d, attn_size %d", c->emb, c->hidden, c->attn_size);
    if (c->bidirectional && c->hidden % 2)
        return attn__error(ATTN_EINVAL, "seq2seq: a bidirectional encoder needs an even hidden size (H/2 per direction), not %d", c->hidden);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f)) return attn__error(ATTN_EINVAL, "seq2seq: dropout %g is not in [0, 1)", (double)c->dropout);
    if ((unsigned)c->src_tok > ATTN_TOK_ZH || (unsigned)c->tgt_tok > ATTN_TOK_ZH)
        return attn__error(ATTN_EINVAL, "seq2seq: unknown tokeniser");
    return ATTN_OK;
}

/* ---- Configuration as JSON ---------------------------------------------------------------- */

int attn_s2s_config_to_json(const attn_s2s_config *c, char **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_s2s_config_to_json: NULL output");
    *out = NULL;
    int st = config_check(c);
    if (st) return st;
    char buf[1024], drop[32];
    snprintf(drop, sizeof drop, "%.6g", (double)c->dropout); /* the shortest that reads back the same */
    if ((float)strtod(drop, NULL) != c->dropout) snprintf(drop, sizeof drop, "%.9g", (double)c->dropout);
    int k = snprintf(buf, sizeof buf,
                     "{\"kind\": \"seq2seq\", \"attention\": \"%s\", \"rnn\": \"%s\", \"bidirectional\": %s, "
                     "\"src_vocab\": %d, \"tgt_vocab\": %d, \"emb\": %d, \"hidden\": %d, \"attn_size\": %d, "
                     "\"dropout\": %s, \"src_tok\": \"%s\", \"tgt_tok\": \"%s\"}",
                     ATT_NAMES[c->attention], RNN_NAMES[c->rnn], c->bidirectional ? "true" : "false", c->src_vocab,
                     c->tgt_vocab, c->emb, c->hidden, c->attn_size, drop, TOK_NAMES[c->src_tok],
                     TOK_NAMES[c->tgt_tok]);
    if (k < 0 || (size_t)k >= sizeof buf) return attn__error(ATTN_EINVAL, "attn_s2s_config_to_json: too long");
    if (!(*out = attn_malloc((size_t)k + 1))) return ATTN_ENOMEM;
    memcpy(*out, buf, (size_t)k + 1);
    return ATTN_OK;
}

static const attn__json *member(const attn__json *o, const char *key) {
    for (const attn__json *c = o->child; c; c = c->next)
        if (c->key && !strcmp(c->key, key)) return c;
    return NULL;
}

static int json_int(const attn__json *o, const char *key, int *v) {
    const attn__json *m = member(o, key);
    if (!m) return 1;
    if (m->type != ATTN__JSON_NUMBER || !m->is_uint || m->u > 1000000000u) return 0;
    *v = (int)m->u;
    return 1;
}

static int json_str(const attn__json *o, const char *key, int (*parse)(const char *), int *v) {
    const attn__json *m = member(o, key);
    if (!m) return 1;
    if (m->type != ATTN__JSON_STRING || parse(m->str) < 0) return 0;
    *v = parse(m->str);
    return 1;
}

int attn_s2s_config_from_json(const char *json, attn_s2s_config *cfg) {
    if (!json || !cfg) return attn__error(ATTN_EINVAL, "attn_s2s_config_from_json: NULL argument");
    attn__json *root = NULL;
    char err[128];
    size_t n = strlen(json);
    int st = attn__json_parse(json, n, &root, err, sizeof err);
    if (st) return st == ATTN_ENOMEM ? st : attn__error(ATTN_EFORMAT, "seq2seq configuration: %s", err);
    attn_s2s_config c = attn_s2s_defaults();
    const char *what = NULL;
    int att = (int)c.attention, rnn = (int)c.rnn, st_ = (int)c.src_tok, tt = (int)c.tgt_tok;
    const attn__json *kind = root->type == ATTN__JSON_OBJECT ? member(root, "kind") : NULL;
    if (root->type != ATTN__JSON_OBJECT) what = "not an object";
    else if (!kind || kind->type != ATTN__JSON_STRING || strcmp(kind->str, "seq2seq")) what = "\"kind\" is not \"seq2seq\"";
    else if (!json_str(root, "attention", attn_s2s_attention_parse, &att)) what = "bad \"attention\"";
    else if (!json_str(root, "rnn", attn_s2s_rnn_parse, &rnn)) what = "bad \"rnn\"";
    else if (!json_str(root, "src_tok", tok_parse, &st_) || !json_str(root, "tgt_tok", tok_parse, &tt)) what = "bad tokeniser";
    else if (!json_int(root, "src_vocab", &c.src_vocab) || !json_int(root, "tgt_vocab", &c.tgt_vocab) ||
             !json_int(root, "emb", &c.emb) || !json_int(root, "hidden", &c.hidden) ||
             !json_int(root, "attn_size", &c.attn_size))
        what = "a size is not a non-negative integer";
    if (!what) {
        const attn__json *b = member(root, "bidirectional");
        if (b && b->type != ATTN__JSON_TRUE && b->type != ATTN__JSON_FALSE) what = "\"bidirectional\" is not a boolean";
        else if (b) c.bidirectional = b->type == ATTN__JSON_TRUE;
        const attn__json *d = member(root, "dropout");
        if (d && d->type != ATTN__JSON_NUMBER) what = "\"dropout\" is not a number";
        else if (d) c.dropout = (float)strtod(json + d->offset, NULL);
    }
    attn__json_free(root);
    if (what) return attn__error(ATTN_EFORMAT, "seq2seq configuration: %s", what);
    c.attention = (attn_s2s_attention)att, c.rnn = (attn_s2s_rnn)rnn;
    c.src_tok = (attn_tok_kind)st_, c.tgt_tok = (attn_tok_kind)tt;
    if ((st = config_check(&c))) return attn__error(ATTN_EFORMAT, "%s", attn_last_error());
    *cfg = c;
    return ATTN_OK;
}

/* ---- Model and parameters ------------------------------------------------------------------ */

static attn_param *add(attn_params *ps, int *st, const char *name, int64_t d0, int64_t d1, attn_init init, int no_decay) {
    if (*st) return NULL;
    int64_t shape[2] = {d0, d1};
    attn_param *p = attn_params_add(ps, name, d1 ? 2 : 1, shape, init);
    if (!p) *st = ATTN_EINVAL;
    else p->no_decay = no_decay;
    return p;
}

/* Declares one recurrent layer's four tensors under prefix ("encoder.gru") and suffix. */
static void add_rnn(attn_params *ps, int *st, attn_param **w, const char *prefix, const char *suffix, int G, int in, int hid) {
    char name[128];
    attn_init init = attn_init_fan(hid);
    snprintf(name, sizeof name, "%s.weight_ih_l0%s", prefix, suffix);
    w[0] = add(ps, st, name, (int64_t)G * hid, in, init, 0);
    snprintf(name, sizeof name, "%s.weight_hh_l0%s", prefix, suffix);
    w[1] = add(ps, st, name, (int64_t)G * hid, hid, init, 0);
    snprintf(name, sizeof name, "%s.bias_ih_l0%s", prefix, suffix);
    w[2] = add(ps, st, name, (int64_t)G * hid, 0, init, 1);
    snprintf(name, sizeof name, "%s.bias_hh_l0%s", prefix, suffix);
    w[3] = add(ps, st, name, (int64_t)G * hid, 0, init, 1);
}

int attn_s2s_new(const attn_s2s_config *cfg, uint64_t seed, attn_s2s **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_s2s_new: NULL output");
    *out = NULL;
    int st = config_check(cfg);
    if (st) return st;
    attn_s2s *m = attn_calloc(1, sizeof *m);
    if (!m) return ATTN_ENOMEM;
    m->cfg = *cfg;
    if (!m->cfg.attn_size) m->cfg.attn_size = m->cfg.hidden;
    const attn_s2s_config *c = &m->cfg;
    const int E = c->emb, H = c->hidden, A = c->attn_size, G = c->rnn == ATTN_S2S_LSTM ? 4 : 3;
    m->He = c->bidirectional ? H / 2 : H;
    st = attn_params_new(&m->ps);
    if (!st) st = attn_graph_new(0, &m->g);
    if (st) {
        attn_s2s_free(m);
        return st;
    }
    attn_graph_set_grad(m->g, 0);
    attn_graph_set_training(m->g, 0);
    attn_params *ps = m->ps;
    char prefix[32];
    m->enc_emb = add(ps, &st, "encoder.embedding.weight", c->src_vocab, E, attn_init_normal(0.0f, 1.0f), 0);
    snprintf(prefix, sizeof prefix, "encoder.%s", RNN_NAMES[c->rnn]);
    for (int d = 0; d < (c->bidirectional ? 2 : 1); d++) add_rnn(ps, &st, m->enc_rnn[d], prefix, d ? "_reverse" : "", G, E, m->He);
    m->dec_emb = add(ps, &st, "decoder.embedding.weight", c->tgt_vocab, E, attn_init_normal(0.0f, 1.0f), 0);
    int dec_in = E + (c->attention == ATTN_S2S_NONE || c->attention == ATTN_S2S_BAHDANAU ? H : 0);
    snprintf(prefix, sizeof prefix, "decoder.%s", RNN_NAMES[c->rnn]);
    add_rnn(ps, &st, m->dec_rnn, prefix, "", G, dec_in, H);
    if (c->attention == ATTN_S2S_BAHDANAU) {
        m->Wa = add(ps, &st, "decoder.attention.Wa.weight", A, H, attn_init_fan(H), 0);
        m->ba = add(ps, &st, "decoder.attention.Wa.bias", A, 0, attn_init_fan(H), 1);
        m->Ua = add(ps, &st, "decoder.attention.Ua.weight", A, H, attn_init_fan(H), 0);
        m->bu = add(ps, &st, "decoder.attention.Ua.bias", A, 0, attn_init_fan(H), 1);
        m->va = add(ps, &st, "decoder.attention.Va.weight", 1, A, attn_init_fan(A), 0);
    } else if (c->attention == ATTN_S2S_LUONG_GENERAL) {
        m->Wg = add(ps, &st, "decoder.attention.Wa.weight", H, H, attn_init_fan(H), 0);
    }
    m->Wc = add(ps, &st, "decoder.concat.weight", H, 2 * (int64_t)H, attn_init_fan(2 * (int64_t)H), 0);
    m->bc = add(ps, &st, "decoder.concat.bias", H, 0, attn_init_fan(2 * (int64_t)H), 1);
    m->Ws = add(ps, &st, "decoder.out.weight", c->tgt_vocab, H, attn_init_fan(H), 0);
    m->bs = add(ps, &st, "decoder.out.bias", c->tgt_vocab, 0, attn_init_fan(H), 1);
    if (!st) st = attn_params_alloc(ps);
    if (!st) st = attn_params_init(ps, seed);
    if (st) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        attn_s2s_free(m);
        return attn__error(st, "seq2seq: %s", msg);
    }
    *out = m;
    return ATTN_OK;
}

void attn_s2s_free(attn_s2s *m) {
    if (!m) return;
    attn_params_free(m->ps);
    attn_graph_free(m->g);
    attn__vocab_pair_free(&m->voc);
    attn_tokens_free(&m->tok);
    attn_free(m);
}

const attn_s2s_config *attn_s2s_get_config(const attn_s2s *m) { return m ? &m->cfg : NULL; }
attn_params *attn_s2s_params(attn_s2s *m) { return m ? m->ps : NULL; }
const attn_vocab *attn_s2s_src_vocab(const attn_s2s *m) { return m ? m->voc.src : NULL; }
const attn_vocab *attn_s2s_tgt_vocab(const attn_s2s *m) { return m ? m->voc.tgt : NULL; }

int attn_s2s_set_vocabs(attn_s2s *m, attn_vocab *src, attn_vocab *tgt) {
    return attn__vocabs_replace("seq2seq", m ? &m->voc : NULL, src, tgt, m ? m->cfg.src_vocab : 0,
                                m ? m->cfg.tgt_vocab : 0);
}

/* ---- Encoder ------------------------------------------------------------------------------- */

static attn_var *pv(attn_graph *g, attn_param *p) { return p ? attn_param_var(g, p) : NULL; }

int attn__s2s_encode(attn_s2s *m, attn_graph *g, const int32_t *src, const int32_t *len, int S, int B, s2s_enc *enc) {
    const attn_s2s_config *c = &m->cfg;
    memset(enc, 0, sizeof *enc);
    enc->S = S, enc->B = B, enc->len = len;
    /* x (S, B, E) = E_src[src] */
    attn_var *x = attn_ag_embedding(g, pv(g, m->enc_emb), src, 2, (int64_t[]){S, B}, ATTN_PAD);
    x = attn_ag_dropout(g, x, c->dropout);
    attn_var *y[2] = {NULL, NULL}, *hn[2] = {NULL, NULL}, *cn[2] = {NULL, NULL};
    int nd = c->bidirectional ? 2 : 1;
    for (int d = 0; d < nd; d++) {
        attn_param *const *w = m->enc_rnn[d];
        if (c->rnn == ATTN_S2S_LSTM)
            y[d] = attn_ag_lstm(g, x, NULL, NULL, pv(g, w[0]), pv(g, w[1]), pv(g, w[2]), pv(g, w[3]), len, d, &hn[d], &cn[d]);
        else
            y[d] = attn_ag_gru(g, x, NULL, pv(g, w[0]), pv(g, w[1]), pv(g, w[2]), pv(g, w[3]), len, d, &hn[d]);
    }
    if (nd == 2) {
        /* h_j = [forward h_j; backward h_j] (S, B, H); s0 = [forward final; backward final] */
        enc->H = attn_ag_concat(g, 2, y, 2);
        enc->s0 = attn_ag_concat(g, 2, hn, 1);
        if (c->rnn == ATTN_S2S_LSTM) enc->c0 = attn_ag_concat(g, 2, cn, 1);
    } else {
        enc->H = y[0], enc->s0 = hn[0], enc->c0 = cn[0];
    }
    /* Uk (S, B, A) = H Ua^T + bu, once for every decoder step */
    if (c->attention == ATTN_S2S_BAHDANAU) enc->Uk = attn_ag_linear(g, enc->H, pv(g, m->Ua), pv(g, m->bu));
    return attn_graph_status(g) == ATTN_OK && enc->H && enc->s0;
}

/* ---- Decoder ------------------------------------------------------------------------------- */

/* The recurrent step without the output layer: e (B, E) embedded previous token, state s (c).
 * Returns the new state; *ctx (B, H) the context it used or made; *w the weights (B, S). */
static attn_var *dec_state(attn_s2s *m, attn_graph *g, const s2s_enc *enc, attn_var *e, attn_var *s, attn_var *c,
                           attn_var **c_out, attn_var **ctx, attn_var **w) {
    const attn_s2s_config *cf = &m->cfg;
    attn_var *x = e, *s1;
    *ctx = NULL;
    if (w) *w = NULL;
    if (cf->attention == ATTN_S2S_NONE) {
        *ctx = enc->s0; /* C, the same at every step */
        x = attn_ag_concat(g, 2, (attn_var *const[]){e, *ctx}, 1);
    } else if (cf->attention == ATTN_S2S_BAHDANAU) {
        /* the query is the previous state: q = Wa s + ba, then c = sum_j a_j h_j */
        attn_var *q = attn_ag_linear(g, s, pv(g, m->Wa), pv(g, m->ba));
        *ctx = attn__s2s_additive_step(g, q, enc->Uk, pv(g, m->va), enc->H, enc->len, w);
        x = attn_ag_concat(g, 2, (attn_var *const[]){e, *ctx}, 1);
    }
    attn_param *const *r = m->dec_rnn;
    if (cf->rnn == ATTN_S2S_LSTM) s1 = attn_ag_lstm_cell(g, x, s, c, pv(g, r[0]), pv(g, r[1]), pv(g, r[2]), pv(g, r[3]), c_out);
    else s1 = attn_ag_gru_cell(g, x, s, pv(g, r[0]), pv(g, r[1]), pv(g, r[2]), pv(g, r[3]));
    return s1;
}

/* Luong attention of queries Q (Nq, B, H) over the encoder states: (Nq, B, H) and the weights
 * as a (B, 1, Nq, S) node. */
static attn_var *luong(attn_s2s *m, attn_graph *g, const s2s_enc *enc, attn_var *Q, attn_var **P) {
    attn_ag_attention_opts o;
    memset(&o, 0, sizeof o);
    o.layout = ATTN_AG_NBHD;
    o.heads = 1;
    o.score = m->cfg.attention == ATTN_S2S_LUONG_GENERAL ? ATTN_SCORE_GENERAL : ATTN_SCORE_DOT;
    o.scale = 1.0f;
    o.mask.key_lengths = enc->len;
    if (o.score == ATTN_SCORE_GENERAL) o.W = pv(g, m->Wg);
    return attn_ag_attention(g, Q, enc->H, enc->H, &o, P);
}

/* The output layer: logits (..., Vt) = Ws tanh(Wc [ctx; s] + bc) + bs, dropout on the middle;
 * *hidden (optional) the middle, tanh(Wc [ctx; s] + bc) (..., H), before dropout. */
static attn_var *dec_output(attn_s2s *m, attn_graph *g, attn_var *ctx, attn_var *s, int axis, attn_var **hidden) {
    attn_var *cat = attn_ag_concat(g, 2, (attn_var *const[]){ctx, s}, axis);
    attn_var *h = attn_ag_tanh(g, attn_ag_linear(g, cat, pv(g, m->Wc), pv(g, m->bc)));
    if (hidden) *hidden = h;
    h = attn_ag_dropout(g, h, m->cfg.dropout);
    return attn_ag_linear(g, h, pv(g, m->Ws), pv(g, m->bs));
}

attn_var *attn__s2s_step(attn_s2s *m, attn_graph *g, const s2s_enc *enc, const int32_t *y, attn_var *s, attn_var *c,
                         attn_var **s_out, attn_var **c_out, attn_var **weights, attn_var **hidden) {
    int B = enc->B;
    if (weights) *weights = NULL;
    attn_var *e = attn_ag_embedding(g, pv(g, m->dec_emb), y, 1, (int64_t[]){B}, ATTN_PAD);
    e = attn_ag_dropout(g, e, m->cfg.dropout);
    attn_var *ctx, *w = NULL;
    attn_var *s1 = dec_state(m, g, enc, e, s, c, c_out, &ctx, &w);
    if (m->cfg.attention == ATTN_S2S_LUONG_DOT || m->cfg.attention == ATTN_S2S_LUONG_GENERAL) {
        attn_var *P = NULL;
        attn_var *o = luong(m, g, enc, attn_ag_reshape(g, s1, 3, (int64_t[]){1, B, m->cfg.hidden}), &P);
        ctx = attn_ag_reshape(g, o, 2, (int64_t[]){B, m->cfg.hidden});
        w = P ? attn_ag_reshape(g, P, 2, (int64_t[]){B, enc->S}) : NULL;
    }
    *s_out = s1;
    if (weights) *weights = w;
    return dec_output(m, g, ctx, s1, 1, hidden);
}

static int batch_check(attn_s2s *m, attn_graph *g, const attn_s2s_batch *b) {
    if (!m || !g || !b) {
        attn__error(ATTN_EINVAL, "seq2seq forward: NULL argument");
        return 0;
    }
    if (b->B < 1 || b->S < 1 || b->T < 1 || !b->src || !b->src_len || !b->tgt_in) {
        attn__error(ATTN_EINVAL, "seq2seq forward: empty batch (B %d, S %d, T %d) or NULL ids", b->B, b->S, b->T);
        return 0;
    }
    for (int i = 0; i < b->B; i++)
        if (b->src_len[i] < 1 || b->src_len[i] > b->S) {
            attn__error(ATTN_EINVAL, "seq2seq forward: src_len[%d] = %d is outside [1, %d]", i, (int)b->src_len[i], b->S);
            return 0;
        }
    return 1;
}

attn_var *attn_s2s_forward(attn_s2s *m, attn_graph *g, const attn_s2s_batch *b, attn_var **weights) {
    if (weights) *weights = NULL;
    if (!batch_check(m, g, b)) return NULL;
    const attn_s2s_config *cf = &m->cfg;
    const int B = b->B, S = b->S, T = b->T, H = cf->hidden;
    s2s_enc enc;
    if (!attn__s2s_encode(m, g, b->src, b->src_len, S, B, &enc)) return NULL;
    /* decoder inputs (T, B, E) */
    attn_var *emb = attn_ag_embedding(g, pv(g, m->dec_emb), b->tgt_in, 2, (int64_t[]){T, B}, ATTN_PAD);
    emb = attn_ag_dropout(g, emb, cf->dropout);
    attn_var *Sd = NULL, *ctx = NULL, *W = NULL;
    attn_param *const *r = m->dec_rnn;
    if (cf->attention == ATTN_S2S_BAHDANAU) {
        /* step by step: the query of step t is the state of step t-1 */
        attn_var **st = attn_graph_alloc(g, (size_t)T * 3 * sizeof(attn_var *));
        if (!st) return NULL;
        attn_var **cx = st + T, **ws = st + 2 * T;
        attn_var *s = enc.s0, *c = enc.c0;
        for (int t = 0; t < T; t++) {
            attn_var *c1 = NULL;
            attn_var *e = attn_ag_select(g, emb, 0, t);
            s = dec_state(m, g, &enc, e, s, c, &c1, &cx[t], &ws[t]);
            c = c1;
            st[t] = s;
            if (!s || !cx[t]) return NULL;
        }
        Sd = attn_ag_stack(g, T, st, 0);  /* (T, B, H) */
        ctx = attn_ag_stack(g, T, cx, 0); /* (T, B, H) */
        if (weights) W = attn_ag_stack(g, T, ws, 0); /* (T, B, S) */
    } else {
        attn_var *x = emb;
        if (cf->attention == ATTN_S2S_NONE) {
            /* every step sees C: ctx (T, B, H) = C broadcast over time */
            ctx = attn_ag_add(g, attn_graph_input(g, 3, (int64_t[]){T, B, H}, NULL), enc.s0);
            x = attn_ag_concat(g, 2, (attn_var *const[]){emb, ctx}, 2);
        }
        if (cf->rnn == ATTN_S2S_LSTM)
            Sd = attn_ag_lstm(g, x, enc.s0, enc.c0, pv(g, r[0]), pv(g, r[1]), pv(g, r[2]), pv(g, r[3]), NULL, 0, NULL, NULL);
        else
            Sd = attn_ag_gru(g, x, enc.s0, pv(g, r[0]), pv(g, r[1]), pv(g, r[2]), pv(g, r[3]), NULL, 0, NULL);
        if (cf->attention != ATTN_S2S_NONE) {
            attn_var *P = NULL;
            ctx = luong(m, g, &enc, Sd, weights ? &P : NULL);
            if (weights && P) {
                /* (B, 1, T, S) -> (T, B, S) */
                W = attn_graph_input(g, 3, (int64_t[]){T, B, S}, NULL);
                if (W)
                    for (int t = 0; t < T; t++)
                        for (int i = 0; i < B; i++)
                            memcpy(W->data + ((int64_t)t * B + i) * S, P->data + ((int64_t)i * T + t) * S, (size_t)S * sizeof(float));
            }
        }
    }
    attn_var *logits = dec_output(m, g, ctx, Sd, 2, NULL);
    if (weights) *weights = W;
    return logits;
}

attn_var *attn_s2s_loss(attn_s2s *m, attn_graph *g, const attn_s2s_batch *b, float label_smoothing) {
    if (!batch_check(m, g, b)) return NULL;
    if (!b->tgt_out) {
        attn__error(ATTN_EINVAL, "attn_s2s_loss: NULL targets");
        return NULL;
    }
    attn_var *logits = attn_s2s_forward(m, g, b, NULL);
    return attn_ag_cross_entropy(g, logits, b->tgt_out, ATTN_PAD, label_smoothing);
}
