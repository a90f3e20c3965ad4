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

#include "cli_recall.h"
#include "cli_vision.h"
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

static int s2s_option(cli_args *p, void *cfg) {
    attn_s2s_config *m = cfg;
    const char *v = NULL;
    if (cli_str(p, "--attention", &v)) {
        if (v && (int)(m->attention = (attn_s2s_attention)attn_s2s_attention_parse(v)) < 0)
            p->status = cli_usage(p->cmd, "unknown --attention '%s' (none, bahdanau, luong-dot, luong-general)", v);
        return 1;
    }
    if (cli_str(p, "--rnn", &v)) {
        if (v && (int)(m->rnn = (attn_s2s_rnn)attn_s2s_rnn_parse(v)) < 0) p->status = cli_usage(p->cmd, "unknown --rnn '%s' (gru, lstm)", v);
        return 1;
    }
    if (cli_flag(p, "--bidirectional")) return m->bidirectional = 1;
    return cli_int(p, "--emb", 1, 65536, &m->emb) || cli_int(p, "--hidden", 1, 65536, &m->hidden) ||
           cli_int(p, "--attn-size", 0, 65536, &m->attn_size) || cli_float(p, "--dropout", &m->dropout);
}

static int s2s_check(const char *cmd, const cli_train_opts *o, void *cfg) {
    attn_s2s_config *m = cfg;
    m->src_tok = o->src_tok, m->tgt_tok = o->tgt_tok;
    if (!(m->dropout >= 0 && m->dropout < 1)) return cli_usage(cmd, "--dropout must be in [0, 1)");
    if (m->bidirectional && m->hidden % 2) return cli_usage(cmd, "--bidirectional needs an even --hidden");
    return CLI_OK;
}

static int s2s_max_positions(attn_translator *t) {
    (void)t;
    return 0;
}

static void s2s_describe(attn_translator *t, char *buf, size_t cap) {
    const attn_s2s_config *c = attn_s2s_get_config(attn_translator_seq2seq(t));
    snprintf(buf, cap, "%s, %s%s, emb %d, hidden %d", attn_s2s_attention_name(c->attention), attn_s2s_rnn_name(c->rnn),
             c->bidirectional ? " bidirectional" : "", c->emb, c->hidden);
}

static int train_seq2seq(int argc, char **argv) {
    cli_train_opts o;
    cli_train_defaults(&o);
    attn_s2s_config cfg = attn_s2s_defaults();
    cli_train_family f = {"seq2seq", "train seq2seq", HELP_HEAD, HELP_MODEL, HELP_TAIL, &cfg, s2s_option, s2s_check, NULL,
                          s2s_max_positions, NULL, s2s_describe};
    return cli_train_main(&f, &o, argc, argv);
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

static const char TOP_HELP[] =
    "usage: attn train MODEL [options]      (attn train MODEL --help for its options)\n"
    "\n"
    "models:\n"
    "  seq2seq    encoder-decoder translation, with or without attention (Bahdanau, Luong)\n"
    "  transformer  the Transformer: self-attention, multi-head, position encodings\n"
    "  classifier   text classification (TF-IDF + logistic regression, SVM, NB-SVM)\n"
    "  recall       associative recall (Ba et al. 2016): a GRU or LSTM, with or without a soft\n"
    "               or hard key-value memory of its own states\n";

int cli_train_transformer(int argc, char **argv); /* cli_train_transformer.c */
int cli_train_classifier(int argc, char **argv);  /* cli_train_classifier.c */

int cli_train(int argc, char **argv) {
    if (argc < 2) {
        fputs(TOP_HELP, stderr);
        return CLI_EUSAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return cli_help(TOP_HELP);
    if (!strcmp(argv[1], "seq2seq")) return train_seq2seq(argc - 1, argv + 1);
    if (!strcmp(argv[1], "transformer")) return cli_train_transformer(argc - 1, argv + 1);
    if (!strcmp(argv[1], "classifier")) return cli_train_classifier(argc - 1, argv + 1);
    if (!strcmp(argv[1], "recall")) return cli_train_recall(argc - 1, argv + 1);
    if (!strcmp(argv[1], "vision")) return cli_train_vision(argc - 1, argv + 1);
    return cli_usage("train", "unknown model '%s' (seq2seq, transformer, classifier, recall, vision)", argv[1]);
}
