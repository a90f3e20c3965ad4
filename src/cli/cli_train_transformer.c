/* attn train transformer: trains the Transformer of attn/transformer.h on sentence pairs, with
 * the data pipeline and trainer of `attn train seq2seq` (cli_train_common.c: the same seeded
 * split, tokenisers, vocabularies, length filter, batches of similar lengths, checkpoint
 * layout), so the two families meet the same test sentences and `attn translate` / `attn
 * eval` take either checkpoint. This file holds only the Transformer's model options, its
 * defaults (the paper's warm-up then inverse square root, Adam with betas 0.9/0.98 and eps
 * 1e-9, or the paper's "noam" formula) and its joint vocabulary for --share all.
 *
 * Not here: attention dropout, sub-word vocabularies, gradient accumulation.
 */
#include <stdio.h>
#include <string.h>

#include "attn/transformer.h"
#include "cli_train.h"

int cli_train_transformer(int argc, char **argv);

static const char HELP_HEAD[] =
    "usage: attn train transformer --data PAIRS.tsv --out DIR [options]\n"
    "       attn train transformer --train TRAIN.tsv --valid VALID.tsv --out DIR [options]\n"
    "\n"
    "Trains a Transformer encoder-decoder (Vaswani et al. 2017, \"Attention is all you need\"):\n"
    "self-attention instead of recurrence, every position meeting every other at distance one,\n"
    "a whole sentence computed in parallel; position encodings tell it the order.\n"
    "\n";
static const char HELP_MODEL[] =
    "model:\n"
    "  --d-model N         E (default 256)          --heads N       H (default 4)\n"
    "  --kv-heads N        grouped key/value heads (default H)\n"
    "  --ff N              feed-forward size (default 1024)\n"
    "  --layers N          encoder and decoder layers (default 3); --enc-layers N, --dec-layers N\n"
    "  --pos KIND          none, sinusoidal (default), learned, rope, alibi\n"
    "  --alibi-learn       with --pos alibi: every self-attention's slopes are parameters (one\n"
    "                      vector per layer, encoder and decoder, from the paper's), trained\n"
    "                      through the kernels' dSlopes (the encoder's ALiBi is -slope |j - i|)\n"
    "  --norm post|pre     layer norm after the residual (the paper, default) or before\n"
    "  --share none|tgt|all   tie the generator to the target embedding (tgt, default), or all\n"
    "                      three tables (one vocabulary for both sides)\n"
    "  --activation relu|gelu (default relu)   --dropout F (default 0.1)\n"
    "  --attn-dropout F    dropout on the attention weights of every attention, inside the\n"
    "                      fused kernels (default 0); off at evaluation and decoding\n"
    "  --max-pos N         longest sequence the model takes (default 256)\n"
    "\n"
    "training (defaults for the Transformer: --epochs 20, --warmup 400, --schedule inv_sqrt: the\n"
    "paper's linear warm-up then lr * sqrt(warmup / step); Adam with betas 0.9, 0.98, eps 1e-9):\n"
    "  --schedule noam     the paper's formula d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)\n"
    "                      times --noam-factor F (default 1); --lr is then unused\n";
static const char HELP_TAIL[] =
    "example:\n"
    "  attn train transformer --data ../shared/data/cmn-eng/cmn.txt --out runs/transformer\n"
    "  attn translate --model runs/transformer --attention-html heads.html \"我爱你。\"\n";

/* The options of the model: enumerations are parsed when they come, the layer counts kept
 * aside (--layers sets both; --enc-layers / --dec-layers override it) until the check. */
typedef struct {
    attn_transformer_config m; /* first: a tr_cfg * is also an attn_transformer_config * */
    int layers, enc, dec;
} tr_cfg;

static int enum_option(cli_args *p, const char *name, int (*parse)(const char *), const char *list, int *out) {
    const char *v = NULL;
    if (!cli_str(p, name, &v)) return 0;
    int k = v ? parse(v) : 0;
    if (v && k < 0) p->status = cli_usage(p->cmd, "unknown %s '%s' (%s)", name, v, list);
    else if (v) *out = k;
    return 1;
}
static int act_parse(const char *s) { return !strcmp(s, "relu") ? 0 : !strcmp(s, "gelu") ? 1 : -1; }
static int norm_parse(const char *s) { return !strcmp(s, "post") ? 0 : !strcmp(s, "pre") ? 1 : -1; }

static int tr_option(cli_args *p, void *cfg) {
    tr_cfg *t = cfg;
    attn_transformer_config *m = &t->m;
    int k = -1;
    if (enum_option(p, "--pos", attn_pos_parse, "none, sinusoidal, learned, rope, alibi", &k)) {
        if (k >= 0) m->pos = (attn_pos_kind)k;
    } else if (enum_option(p, "--share", attn_share_parse, "none, tgt, all", &k)) {
        if (k >= 0) m->share = (attn_share_kind)k;
    } else if (enum_option(p, "--activation", act_parse, "relu, gelu", &k)) {
        if (k >= 0) m->activation = (attn_act_kind)k;
    } else if (enum_option(p, "--norm", norm_parse, "post, pre", &k)) {
        if (k >= 0) m->norm_first = k;
    } else if (cli_flag(p, "--alibi-learn")) {
        m->alibi_learn = 1;
    } else {
        return cli_int(p, "--d-model", 1, 65536, &m->d_model) || cli_int(p, "--heads", 1, 4096, &m->heads) ||
               cli_int(p, "--kv-heads", 0, 4096, &m->kv_heads) || cli_int(p, "--ff", 1, 1 << 20, &m->d_ff) ||
               cli_int(p, "--layers", 1, 1000, &t->layers) || cli_int(p, "--enc-layers", 1, 1000, &t->enc) ||
               cli_int(p, "--dec-layers", 1, 1000, &t->dec) || cli_int(p, "--max-pos", 2, 1 << 20, &m->max_len) ||
               cli_float(p, "--dropout", &m->dropout) || cli_float(p, "--attn-dropout", &m->attn_dropout);
    }
    return 1;
}

static int tr_check(const char *cmd, const cli_train_opts *o, void *cfg) {
    tr_cfg *t = cfg;
    attn_transformer_config *m = &t->m;
    m->src_tok = o->src_tok, m->tgt_tok = o->tgt_tok;
    if (t->layers) m->enc_layers = m->dec_layers = t->layers;
    if (t->enc) m->enc_layers = t->enc;
    if (t->dec) m->dec_layers = t->dec;
    if (!(m->dropout >= 0 && m->dropout < 1)) return cli_usage(cmd, "--dropout must be in [0, 1)");
    if (!(m->attn_dropout >= 0 && m->attn_dropout < 1))
        return cli_usage(cmd, "--attn-dropout must be in [0, 1) (got %g)", (double)m->attn_dropout);
    if (m->alibi_learn && m->pos != ATTN_POS_ALIBI)
        return cli_usage(cmd, "--alibi-learn needs --pos alibi (got --pos %s)", attn_pos_name(m->pos));
    if (m->d_model % m->heads) return cli_usage(cmd, "--d-model %d is not a multiple of --heads %d", m->d_model, m->heads);
    if (m->kv_heads && m->heads % m->kv_heads)
        return cli_usage(cmd, "--heads %d is not a multiple of --kv-heads %d", m->heads, m->kv_heads);
    if (o->max_len > 0 && o->max_len + 2 > m->max_len)
        return cli_usage(cmd, "--max-pos %d must exceed --max-len %d by 2 (<bos>/<eos>)", m->max_len, o->max_len);
    return CLI_OK;
}

static int tr_vocabs(const void *cfg, const cli_train_opts *o, const attn_pairs *tr, attn_vocab **sv, attn_vocab **tv) {
    const tr_cfg *t = cfg;
    return s2s_build_vocabs(tr, o->src_col, o->src_tok, o->tgt_tok, o->min_count, o->max_vocab, t->m.share == ATTN_SHARE_ALL, sv, tv);
}

static const attn_transformer_config *config_of(attn_translator *t) { return attn_transformer_get_config(attn_translator_transformer(t)); }
static int tr_d_model(attn_translator *t) { return config_of(t)->d_model; }
static int tr_max_positions(attn_translator *t) { return config_of(t)->max_len - 2; }

static void tr_describe(attn_translator *t, char *buf, size_t cap) {
    const attn_transformer_config *c = config_of(t);
    int n = snprintf(buf, cap, "transformer, %d+%d layers, d_model %d, %d heads (%d key/value), d_ff %d, %s positions%s, %s-LN, %s, share %s",
                     c->enc_layers, c->dec_layers, c->d_model, c->heads, c->kv_heads, c->d_ff, attn_pos_name(c->pos),
                     c->alibi_learn ? " (learned slopes)" : "", c->norm_first ? "pre" : "post",
                     c->activation == ATTN_ACT_GELU ? "gelu" : "relu", attn_share_name(c->share));
    if (c->attn_dropout > 0 && n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, ", attention dropout %g", (double)c->attn_dropout);
}

int cli_train_transformer(int argc, char **argv) {
    cli_train_opts o;
    cli_train_defaults(&o);
    o.epochs = 20, o.warmup = 400, o.schedule = ATTN_SCHED_INV_SQRT;
    o.beta2 = 0.98, o.eps = 1e-9; /* the paper's */
    tr_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.m = attn_transformer_config_default();
    cli_train_family f = {"transformer", "train transformer", HELP_HEAD, HELP_MODEL, HELP_TAIL, &cfg, tr_option, tr_check,
                          tr_vocabs, tr_max_positions, tr_d_model, tr_describe};
    return cli_train_main(&f, &o, argc, argv);
}
