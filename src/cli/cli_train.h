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
    int skip_divergent; /* --on-divergence skip-batch */
    int optim, schedule;
    float lr, weight_decay, clip, label_smoothing, min_lr, time_budget, noam_factor;
    int noam;          /* --schedule noam (families that allow it) */
    double beta2, eps; /* the family's Adam settings (0: PyTorch's defaults) */
    /* parsing state */
    const char *dir_, *optim_, *sched_, *div_;
} cli_train_opts;

/* A model family that translates. */
typedef struct {
    const char *kind;      /* "seq2seq", "transformer" (attn_translator_new's kind) */
    const char *cmd;       /* "train seq2seq" */
    const char *help_head, *help_model, *help_tail; /* its help, around the shared parts */
    void *cfg;             /* the family's configuration struct, filled by its options */
    /* If p's current argument is a model option, takes it and returns 1. */
    int (*option)(cli_args *p, void *cfg);
    /* Checks the model options once all are parsed (the shared ones are checked already). */
    int (*check)(const char *cmd, const cli_train_opts *o, void *cfg);
    /* Optional: vocabularies other than one per side (e.g. one joint vocabulary). */
    int (*vocabs)(const void *cfg, const cli_train_opts *o, const attn_pairs *train, attn_vocab **src, attn_vocab **tgt);
    int (*max_positions)(attn_translator *t); /* the longest sequence the model takes (0: no limit) */
    int (*d_model)(attn_translator *t);       /* the width for --schedule noam; NULL: no noam */
    void (*describe)(attn_translator *t, char *buf, size_t cap); /* one line, after "model: " */
} cli_train_family;

/* Defaults shared by every family (each then sets its own: epochs, warm-up, schedule). */
void cli_train_defaults(cli_train_opts *o);
/* The whole command: parses argv (the shared options and the family's; --help), then trains
 * (or resumes, or only splits) as they say. Returns the exit code. */
int cli_train_main(const cli_train_family *f, cli_train_opts *o, int argc, char **argv);

#endif
