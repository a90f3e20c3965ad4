/* cli_cls.h: what the text-classification commands share (attn train classifier, attn classify,
 * the classifier branch of attn eval): the options of training, the data (labelled texts read,
 * split, their labels mapped to a model's), the tokeniser rule of --tok auto, and the model
 * families behind one interface, so that a command never names a family.
 *
 * Adding a family (e.g. the neural classifiers of attn/classifier.h) is one entry in
 * CLS_FAMILIES (cli_cls.c) and one file like cli_cls_tfidf.c: the --model names it trains,
 * its help lines, its options, its training (given the data ready) and its loader (a
 * checkpoint as a cls_model). Bodies in cli_cls.c. Uses only the public headers. */
#ifndef ATTN_CLI_CLS_H
#define ATTN_CLI_CLS_H

#include <stdint.h>
#include <stdio.h>

#include "attn/clsdata.h"
#include "attn/trainer.h"
#include "cli.h"

/* The options every classifier family shares (the family's own go to its cfg). */
typedef struct {
    const char *model;                       /* --model NAME */
    const char *data, *train, *valid, *out, *split_dir, *log, *label_col;
    int split_seed;
    int tok;                                 /* attn_tok_kind, or -1 for auto */
    int epochs, batch, seed, patience, resume, quiet, threads, log_every, max_steps, save_every, timing_skip;
    int optim;
    float lr, weight_decay, clip, time_budget;
    const char *div_; /* --on-divergence */
    const char *tok_, *optim_;               /* parsing state */
} cls_opts;

/* Labelled texts ready for a model: y[i] is the id of text[i]'s label among the model's. */
typedef struct {
    int n;
    const char **text; /* (n) pointers into the attn_cls_data read */
    int32_t *y;        /* (n) */
} cls_set;

/* What a family's training gets: the two sets read, and the label names of the training
 * file (sorted, as attn_cls_read numbers them: a new model's classes). */
typedef struct {
    attn_cls_data train_data, valid_data;
    const char *const *labels;
    int n_labels;
    attn_tok_kind tok; /* the tokeniser, --tok auto resolved on the training texts */
} cls_data;

/* One text's explanation as a page draws it: its tokens with a weight each and, optionally,
 * the terms that weighed most with theirs; valid until the model's next call. */
typedef struct {
    int n;
    const char *const *tok; /* (n) */
    const float *w;         /* (n) */
    int n_terms;
    const char *const *term; /* (n_terms) */
    const float *term_w;     /* (n_terms) */
} cls_view;

/* A trained classifier as classify and eval see it. */
typedef struct {
    const char *kind;
    int n_classes;
    const char *const *labels; /* (n_classes) as written in the training data */
    const char *number;        /* what classify's number is, e.g. "probability" */
    void *self;
    /* The predicted class (pred, n) and its number (num, n) of n texts. */
    int (*predict)(void *self, const char *const *texts, int n, int32_t *pred, float *num);
    /* Optional: why one text gets its class, in at most `top` lines written to f. */
    int (*explain)(void *self, const char *text, int top, FILE *f);
    void (*free)(void *self);
    /* Optional: the tokens of one text as the model reads them, *n of them (tok), and the
     * weight of each in the pooling (w: the attention weights, 1 / n for a bag); both valid
     * until the next call. */
    int (*weights)(void *self, const char *text, int *n, const char *const **tok, const float **w);
    /* Optional (the TF-IDF models): each token's share of the decision between the predicted
     * class and the runner-up, and the `top` n-grams that weighed most (signed: > 0 for the
     * predicted class). */
    int (*contrib)(void *self, const char *text, int top, cls_view *v);
    /* What a page's token weights are, in words (for --attention-html's legend). */
    const char *legend;
} cls_model;

typedef struct {
    const char *const *kinds; /* NULL-terminated: --model names and checkpoint kinds */
    const char *help;         /* its lines in 'attn train classifier --help' */
    void *(*cfg_new)(void);   /* its options' defaults (free()d by the caller) */
    /* If p's current argument is one of its options, takes it and returns 1. */
    int (*option)(cli_args *p, void *cfg);
    /* Trains (or resumes) o->model on d into o->out; prints; returns the exit code. */
    int (*train)(const char *cmd, const cls_opts *o, void *cfg, const cls_data *d);
    /* Loads a checkpoint of one of its kinds. */
    int (*load)(const char *cmd, const char *dir, cls_model *out);
    /* The "kind" of all its checkpoints' model objects when that is not the model's name (which
     * is then their "model"): "classifier" for the neural ones; NULL: the name itself. */
    const char *ck_kind;
} cls_family;

/* Family i of the table (NULL past the last). */
const cls_family *cls_family_at(int i);
/* The family that trains or loads `kind` (NULL if none). */
const cls_family *cls_family_of(const char *kind);
/* "tfidf-lr, tfidf-svm, nbsvm": every --model name, for messages. */
const char *cls_kind_list(void);
/* The model name of the checkpoint in dir ("kind" of its config.json's "model", or the
 * model's "model" for a family with a ck_kind) into buf, and into *f the family that loads it
 * (NULL if none); CLI_OK, or CLI_EDATA with the error printed (a missing or corrupt checkpoint). */
int cls_checkpoint_kind(const char *cmd, const char *dir, char *buf, size_t cap, const cls_family **f);
/* 1 if dir holds a checkpoint that opens and whose kind is a classifier's (prints nothing). */
int cls_is_classifier(const char *dir);
/* attn eval of a classifier checkpoint (cli_eval.c): argv as cli_eval's. */
int cli_eval_classifier(int argc, char **argv);
/* Loads any classifier checkpoint (CLI_EDATA, printed, if it is not one). */
int cls_model_load(const char *cmd, const char *dir, cls_model *out);

/* The page of attn classify --attention-html (cli_cls_html.c): each classified text added
 * with its verdict, then written once (atomically) to path. */
typedef struct cls_page cls_page;
cls_page *cls_page_new(void); /* NULL: out of memory */
/* Adds text with its predicted class and number; top: the n-grams listed for TF-IDF models. */
int cls_page_add(const char *cmd, cls_page *pg, cls_model *m, const char *text, int32_t pred, float num, int top);
/* Writes the page of every text added (CLI_OK, or the exit code with the error printed). */
int cls_page_write(const char *cmd, const cls_page *pg, const cls_model *m, const char *dir, const char *path);
void cls_page_free(cls_page *pg); /* accepts NULL */

/* Reads a labelled file, reporting skipped rows on stderr. CLI_OK or CLI_EDATA (printed). */
int cls_read(const char *cmd, const char *path, const char *label_col, int quiet, attn_cls_data *d);
/* The texts of d whose labels are among `labels` (by name), their ids in y; *unknown gets the
 * number left out. CLI_OK or CLI_EDATA (out of memory, printed). Free with cls_set_free. */
int cls_set_make(const char *cmd, const attn_cls_data *d, const char *const *labels, int n_labels, cls_set *s, int *unknown);
void cls_set_free(cls_set *s);
/* --tok auto: Chinese characters if the texts hold more Han ideographs than ASCII letters. */
attn_tok_kind cls_auto_tok(const attn_cls_data *d);
/* The trainer's configuration from the shared options (report lines to stderr unless quiet). */
attn_trainer_config cls_trainer_config(const cls_opts *o);
/* "resuming DIR at epoch E, batch B (step S)" on stderr, unless quiet. */
void cls_say_resume(const cls_opts *o, const attn_checkpoint *ck);
/* The last line of a training run on stdout: "trained: N updates in S s (training S s), valid
 * accuracy A%, checkpoint DIR" (stopped, early-stopped; n_valid 0: no validation set). */
void cls_say_result(const cls_opts *o, const attn_train_result *r, int n_valid, double accuracy);

#endif
