/* attn train: trains a model on a data set. `attn train seq2seq` trains the encoder-decoder
 * translation models of attn/seq2seq.h (the distracted model, Bahdanau and Luong attention);
 * `attn train transformer` (cli_train_transformer.c) the Transformer. Both read sentence pairs
 * such as Tatoeba's Chinese-English cmn.txt and share the data pipeline, the options of
 * training and the library's trainer (cli_train_common.c): this file holds only seq2seq's
 * model options.
 *
 * Not here: sub-word vocabularies, multi-machine training.
 */
#include <stdio.h>
#include <string.h>

#include "cli_train.h"

static const char HELP_HEAD[] =
    "usage: attn train seq2seq --data PAIRS.tsv --out DIR [options]\n"
    "       attn train seq2seq --train TRAIN.tsv --valid VALID.tsv --out DIR [options]\n"
    "\n"
    "Trains an encoder-decoder translation model, with or without attention:\n"
    "  --attention none      the \"distracted\" model: the source is squeezed into one vector C\n"
    "                        that the decoder sees at every step (Cho et al. 2014)\n"
    "  --attention bahdanau  additive attention: a new context C_i = sum_j a_ij h_j for every\n"
    "                        target word, queried by the previous decoder state (default)\n"
    "  --attention luong-dot, luong-general   multiplicative attention (Luong et al. 2015)\n"
    "\n";
static const char HELP_MODEL[] =
    "model:\n"
    "  --attention KIND    none, bahdanau, luong-dot, luong-general (default bahdanau)\n"
    "  --rnn gru|lstm      recurrent cell (default gru)\n"
    "  --bidirectional     encoder in both directions (H/2 each)\n"
    "  --emb N             embedding size (default 256)\n"
    "  --hidden N          hidden size H (default 256)\n"
    "  --attn-size N       hidden size of the additive score (default H)\n"
    "  --dropout F         (default 0.2)\n"
    "\n"
    "training (defaults for seq2seq: --epochs 10, --warmup 200, --schedule cosine):\n";
static const char HELP_TAIL[] =
    "example:\n"
    "  attn train seq2seq --data ../shared/data/cmn-eng/cmn.txt --attention bahdanau --out runs/bahdanau\n"
    "  attn translate --model runs/bahdanau --show-attention \"我爱你。\"\n";

static int help(void) {
    fputs(HELP_HEAD, stdout), fputs(CLI_TRAIN_HELP_DATA, stdout), fputs(HELP_MODEL, stdout);
    fputs(CLI_TRAIN_HELP_TRAINING, stdout), fputs(CLI_TRAIN_HELP_OUTPUT, stdout), fputs(HELP_TAIL, stdout);
    return CLI_OK;
}

typedef struct {
    attn_s2s_config cfg;
    attn_s2s *m; /* the model made by create, freed by the command */
} s2s_family;

static int parse(int argc, char **argv, cli_train_opts *o, attn_s2s_config *m) {
    const char *cmd = "train seq2seq";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    cli_train_defaults(o);
    *m = attn_s2s_defaults();
    const char *att = NULL, *rnn = NULL;
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) help();
            return p.status ? p.status : -1;
        } else if (cli_train_option(&p, o)) {
        } else if (cli_str(&p, "--attention", &att) || cli_str(&p, "--rnn", &rnn)) {
        } else if (cli_flag(&p, "--bidirectional")) {
            m->bidirectional = 1;
        } else if (cli_int(&p, "--emb", 1, 65536, &m->emb) || cli_int(&p, "--hidden", 1, 65536, &m->hidden) ||
                   cli_int(&p, "--attn-size", 0, 65536, &m->attn_size)) {
        } else if (cli_float(&p, "--dropout", &m->dropout)) {
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    int rc = cli_train_check(cmd, o, 0);
    if (rc) return rc;
    if (att && (int)(m->attention = (attn_s2s_attention)attn_s2s_attention_parse(att)) < 0)
        return cli_usage(cmd, "unknown --attention '%s' (none, bahdanau, luong-dot, luong-general)", att);
    if (rnn && (int)(m->rnn = (attn_s2s_rnn)attn_s2s_rnn_parse(rnn)) < 0) return cli_usage(cmd, "unknown --rnn '%s' (gru, lstm)", rnn);
    m->src_tok = o->src_tok, m->tgt_tok = o->tgt_tok;
    if (!(m->dropout >= 0 && m->dropout < 1)) return cli_usage(cmd, "--dropout must be in [0, 1)");
    if (m->bidirectional && m->hidden % 2) return cli_usage(cmd, "--bidirectional needs an even --hidden");
    return CLI_OK;
}

static int s2s_create(void *ud, const cli_train_opts *o, attn_vocab *sv, attn_vocab *tv, attn_translator **out) {
    s2s_family *f = ud;
    f->cfg.src_vocab = attn_vocab_size(sv), f->cfg.tgt_vocab = attn_vocab_size(tv);
    int st = attn_s2s_new(&f->cfg, (uint64_t)o->seed, &f->m);
    if (st) {
        attn_vocab_free(sv), attn_vocab_free(tv);
        return st;
    }
    if ((st = attn_s2s_set_vocabs(f->m, sv, tv))) return st;
    return attn_translator_wrap_seq2seq(f->m, out);
}

static int s2s_max_positions(void *ud, attn_translator *t) {
    (void)ud, (void)t;
    return 0;
}

static void s2s_describe(void *ud, attn_translator *t, char *buf, size_t cap) {
    (void)ud;
    const attn_s2s_config *c = attn_s2s_get_config(attn_translator_seq2seq(t));
    snprintf(buf, cap, "%s, %s%s, emb %d, hidden %d", attn_s2s_attention_name(c->attention), attn_s2s_rnn_name(c->rnn),
             c->bidirectional ? " bidirectional" : "", c->emb, c->hidden);
}

static int train_seq2seq(int argc, char **argv) {
    cli_train_opts o;
    s2s_family sf = {{0}, NULL};
    int rc = parse(argc, argv, &o, &sf.cfg);
    if (rc) return rc < 0 ? CLI_OK : rc;
    cli_train_family f = {"seq2seq", "train seq2seq", NULL, s2s_create, NULL, s2s_max_positions, s2s_describe, &sf};
    rc = cli_train_run(&f, &o, argc, argv);
    attn_s2s_free(sf.m);
    return rc;
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

static const char TOP_HELP[] =
    "usage: attn train MODEL [options]      (attn train MODEL --help for its options)\n"
    "\n"
    "models:\n"
    "  seq2seq    encoder-decoder translation, with or without attention (Bahdanau, Luong)\n"
    "  transformer  the Transformer: self-attention, multi-head, position encodings\n";

int cli_train_transformer(int argc, char **argv); /* cli_train_transformer.c */

int cli_train(int argc, char **argv) {
    if (argc < 2) {
        fputs(TOP_HELP, stderr);
        return CLI_EUSAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return cli_help(TOP_HELP);
    if (!strcmp(argv[1], "seq2seq")) return train_seq2seq(argc - 1, argv + 1);
    if (!strcmp(argv[1], "transformer")) return cli_train_transformer(argc - 1, argv + 1);
    return cli_usage("train", "unknown model '%s' (seq2seq, transformer)", argv[1]);
}
