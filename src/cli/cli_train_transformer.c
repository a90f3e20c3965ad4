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
    "  --norm post|pre     layer norm after the residual (the paper, default) or before\n"
    "  --share none|tgt|all   tie the generator to the target embedding (tgt, default), or all\n"
    "                      three tables (one vocabulary for both sides)\n"
    "  --activation relu|gelu (default relu)   --dropout F (default 0.1)\n"
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

static int help(void) {
    fputs(HELP_HEAD, stdout), fputs(CLI_TRAIN_HELP_DATA, stdout), fputs(HELP_MODEL, stdout);
    fputs(CLI_TRAIN_HELP_TRAINING, stdout), fputs(CLI_TRAIN_HELP_OUTPUT, stdout), fputs(HELP_TAIL, stdout);
    return CLI_OK;
}

typedef struct {
    attn_transformer_config cfg;
    attn_transformer *m; /* the model made by create, freed by the command */
} tr_family;

static int parse_enum(const char *cmd, const char *opt, const char *v, int (*fn)(const char *), int *out, const char *list) {
    int k = fn(v);
    if (k < 0) return cli_usage(cmd, "unknown %s '%s' (%s)", opt, v, list);
    *out = k;
    return CLI_OK;
}
static int act_parse(const char *s) { return !strcmp(s, "relu") ? 0 : !strcmp(s, "gelu") ? 1 : -1; }
static int norm_parse(const char *s) { return !strcmp(s, "post") ? 0 : !strcmp(s, "pre") ? 1 : -1; }

/* The model's enumerated options, once parsing is over. */
static int model_enums(const char *cmd, attn_transformer_config *m, const char *pos, const char *share, const char *act, const char *norm) {
    int rc, k = 0;
    if (pos && (rc = parse_enum(cmd, "--pos", pos, attn_pos_parse, &k, "none, sinusoidal, learned, rope, alibi"))) return rc;
    if (pos) m->pos = (attn_pos_kind)k;
    if (share && (rc = parse_enum(cmd, "--share", share, attn_share_parse, &k, "none, tgt, all"))) return rc;
    if (share) m->share = (attn_share_kind)k;
    if (act && (rc = parse_enum(cmd, "--activation", act, act_parse, &k, "relu, gelu"))) return rc;
    if (act) m->activation = (attn_act_kind)k;
    if (norm && (rc = parse_enum(cmd, "--norm", norm, norm_parse, &k, "post, pre"))) return rc;
    if (norm) m->norm_first = k;
    return CLI_OK;
}

static int parse(int argc, char **argv, cli_train_opts *o, attn_transformer_config *m) {
    const char *cmd = "train transformer";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    cli_train_defaults(o);
    o->epochs = 20, o->warmup = 400, o->schedule = ATTN_SCHED_INV_SQRT;
    o->beta2 = 0.98, o->eps = 1e-9; /* the paper's */
    *m = attn_transformer_config_default();
    const char *pos = NULL, *norm = NULL, *share = NULL, *act = NULL;
    int layers = 0, enc = 0, dec = 0;
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) help();
            return p.status ? p.status : -1;
        } else if (cli_train_option(&p, o)) {
        } else if (cli_str(&p, "--pos", &pos) || cli_str(&p, "--norm", &norm) || cli_str(&p, "--share", &share) ||
                   cli_str(&p, "--activation", &act)) {
        } else if (cli_int(&p, "--d-model", 1, 65536, &m->d_model) || cli_int(&p, "--heads", 1, 4096, &m->heads) ||
                   cli_int(&p, "--kv-heads", 0, 4096, &m->kv_heads) || cli_int(&p, "--ff", 1, 1 << 20, &m->d_ff) ||
                   cli_int(&p, "--layers", 1, 1000, &layers) || cli_int(&p, "--enc-layers", 1, 1000, &enc) ||
                   cli_int(&p, "--dec-layers", 1, 1000, &dec) || cli_int(&p, "--max-pos", 2, 1 << 20, &m->max_len)) {
        } else if (cli_float(&p, "--dropout", &m->dropout)) {
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    int rc = cli_train_check(cmd, o, 1);
    if (rc || (rc = model_enums(cmd, m, pos, share, act, norm))) return rc;
    m->src_tok = o->src_tok, m->tgt_tok = o->tgt_tok;
    if (layers) m->enc_layers = m->dec_layers = layers;
    if (enc) m->enc_layers = enc;
    if (dec) m->dec_layers = dec;
    if (!(m->dropout >= 0 && m->dropout < 1)) return cli_usage(cmd, "--dropout must be in [0, 1)");
    if (m->d_model % m->heads) return cli_usage(cmd, "--d-model %d is not a multiple of --heads %d", m->d_model, m->heads);
    if (m->kv_heads && m->heads % m->kv_heads)
        return cli_usage(cmd, "--heads %d is not a multiple of --kv-heads %d", m->heads, m->kv_heads);
    if (o->max_len > 0 && o->max_len + 2 > m->max_len)
        return cli_usage(cmd, "--max-pos %d must exceed --max-len %d by 2 (<bos>/<eos>)", m->max_len, o->max_len);
    return CLI_OK;
}

/* One vocabulary from both sides (for --share all), given to both. */
static int joint_vocab(const attn_pairs *train, int src_col, attn_tok_kind stok, attn_tok_kind ttok, int min_count, int max_size,
                       attn_vocab **src, attn_vocab **tgt) {
    *src = *tgt = NULL;
    attn_counter *c = NULL;
    attn_tokens t = {0};
    int st = attn_counter_new(&c);
    for (int i = 0; i < train->n && !st; i++) {
        st = attn_tokenize(stok, train->pair[i].side[src_col], &t);
        if (!st) st = attn_counter_add_tokens(c, &t);
        if (!st) st = attn_tokenize(ttok, train->pair[i].side[1 - src_col], &t);
        if (!st) st = attn_counter_add_tokens(c, &t);
    }
    if (!st) st = attn_vocab_build(c, min_count, max_size, src);
    if (!st) st = attn_vocab_build(c, min_count, max_size, tgt);
    attn_tokens_free(&t);
    attn_counter_free(c);
    if (st) attn_vocab_free(*src), attn_vocab_free(*tgt), *src = *tgt = NULL;
    return st;
}

static int tr_vocabs(void *ud, const cli_train_opts *o, const attn_pairs *tr, attn_vocab **sv, attn_vocab **tv) {
    const tr_family *f = ud;
    if (f->cfg.share == ATTN_SHARE_ALL) return joint_vocab(tr, o->src_col, o->src_tok, o->tgt_tok, o->min_count, o->max_vocab, sv, tv);
    return s2s_build_vocabs(tr, o->src_col, o->src_tok, o->tgt_tok, o->min_count, o->max_vocab, sv, tv);
}

static int tr_create(void *ud, const cli_train_opts *o, attn_vocab *sv, attn_vocab *tv, attn_translator **out) {
    tr_family *f = ud;
    f->cfg.src_vocab = attn_vocab_size(sv), f->cfg.tgt_vocab = attn_vocab_size(tv);
    int st = attn_transformer_new(&f->cfg, (uint64_t)o->seed, &f->m);
    if (st) {
        attn_vocab_free(sv), attn_vocab_free(tv);
        return st;
    }
    if ((st = attn_transformer_set_vocabs(f->m, sv, tv))) return st;
    return attn_translator_wrap_transformer(f->m, out);
}

static int tr_d_model(attn_translator *t) { return attn_transformer_get_config(attn_translator_transformer(t))->d_model; }

static int tr_max_positions(void *ud, attn_translator *t) {
    (void)ud;
    return attn_transformer_get_config(attn_translator_transformer(t))->max_len - 2;
}

static void tr_describe(void *ud, attn_translator *t, char *buf, size_t cap) {
    (void)ud;
    const attn_transformer_config *c = attn_transformer_get_config(attn_translator_transformer(t));
    snprintf(buf, cap, "transformer, %d+%d layers, d_model %d, %d heads (%d key/value), d_ff %d, %s positions, %s-LN, %s, share %s",
             c->enc_layers, c->dec_layers, c->d_model, c->heads, c->kv_heads, c->d_ff, attn_pos_name(c->pos),
             c->norm_first ? "pre" : "post", c->activation == ATTN_ACT_GELU ? "gelu" : "relu", attn_share_name(c->share));
}

int cli_train_transformer(int argc, char **argv) {
    cli_train_opts o;
    tr_family tf;
    memset(&tf, 0, sizeof tf);
    int rc = parse(argc, argv, &o, &tf.cfg);
    if (rc) return rc < 0 ? CLI_OK : rc;
    cli_train_family f = {"transformer", "train transformer", tr_d_model, tr_create, tr_vocabs, tr_max_positions, tr_describe, &tf};
    rc = cli_train_run(&f, &o, argc, argv);
    attn_transformer_free(tf.m);
    return rc;
}
