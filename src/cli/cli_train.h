/* cli_train.h: what `attn train seq2seq` and `attn train transformer` share: the options of
 * the data and of training (parsed and checked once), the help text for them, and the whole
 * run: reading and splitting the pairs, vocabularies, encoding, the model built or resumed by
 * the family's callbacks, and the library's trainer (attn/trainer.h) driven through the
 * translator interface. A family adds only its model options and a `create` callback. Bodies
 * in cli_train_common.c. Uses only the public headers. */
#ifndef ATTN_CLI_TRAIN_H
#define ATTN_CLI_TRAIN_H

#include "attn/trainer.h"
#include "cli.h"
#include "cli_s2s.h"

typedef struct {
    const char *data, *train, *valid, *out, *split_dir, *log, *export_batches;
    int split_seed;
    float valid_frac, test_frac;
    int src_col;                    /* the source column of the pairs (1 for zh-en) */
    attn_tok_kind src_tok, tgt_tok; /* from --direction */
    int max_len, min_count, max_vocab;
    int epochs, batch, warmup, seed, max_steps, resume, save_every, valid_bleu, log_every, threads, quiet;
    int split_only, weights_only, timing_skip, patience;
    int optim, schedule;
    float lr, weight_decay, clip, label_smoothing, min_lr, time_budget, noam_factor;
    int noam;          /* --schedule noam (families that allow it) */
    double beta2, eps; /* the family's Adam settings (0: PyTorch's defaults) */
    /* parsing state */
    const char *dir_, *optim_, *sched_;
} cli_train_opts;

/* A model family that translates. */
typedef struct {
    const char *kind;      /* "seq2seq", "transformer": checked against a resumed checkpoint */
    const char *cmd;       /* "train seq2seq" */
    /* The model width for --schedule noam; NULL: the family has no noam schedule. */
    int (*d_model)(attn_translator *t);
    /* A new model for these vocabularies (taken, also on failure), seeded with o->seed,
     * wrapped in *out. */
    int (*create)(void *ud, const cli_train_opts *o, attn_vocab *src, attn_vocab *tgt, attn_translator **out);
    /* Optional: vocabularies other than one per side (e.g. one joint vocabulary). */
    int (*vocabs)(void *ud, const cli_train_opts *o, const attn_pairs *train, attn_vocab **src, attn_vocab **tgt);
    /* The longest sequence the model takes (0: no limit). */
    int (*max_positions)(void *ud, attn_translator *t);
    /* One line describing the model (after "model: "). */
    void (*describe)(void *ud, attn_translator *t, char *buf, size_t cap);
    void *ud;
} cli_train_family;

/* Defaults shared by every family (each then sets its own: epochs, warm-up, schedule). */
void cli_train_defaults(cli_train_opts *o);
/* If p's current argument is a shared option, takes it and returns 1. */
int cli_train_option(cli_args *p, cli_train_opts *o);
/* Checks the shared options after parsing (CLI_OK or a usage error printed). */
int cli_train_check(const char *cmd, cli_train_opts *o, int allow_noam);
/* The help for the shared options: data, then training (each ends with an empty line). */
extern const char CLI_TRAIN_HELP_DATA[], CLI_TRAIN_HELP_TRAINING[], CLI_TRAIN_HELP_OUTPUT[];
/* Trains (or resumes, or only splits) as o says; returns the exit code. */
int cli_train_run(const cli_train_family *f, cli_train_opts *o, int argc, char **argv);

#endif
