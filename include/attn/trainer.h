/* attn/trainer.h: the training loop, once for every model family. A family describes itself
 * with a small interface (attn_train_model: the loss of a batch of examples, its parameters,
 * how it saves itself, an optional validation metric); the trainer owns everything around
 * that: batches of similar lengths in a seeded order per epoch, the optimiser and the
 * learning-rate schedule (warm-up included), gradient clipping, validation loss and metric
 * after each epoch, early stopping, checkpoints at a fixed cadence that resume exactly,
 * SIGINT/SIGTERM (stop cleanly with a checkpoint), progress lines and a CSV log.
 *
 *   attn_train_model m = {.self = my_model, .params = ps, .n_train = n, .train_lens = lens,
 *                         .loss = my_loss, .save = my_save};
 *   attn_trainer_config c = attn_trainer_defaults();
 *   c.epochs = 10, c.out = "runs/x", c.report = print_line;
 *   attn_train_result r;
 *   int st = attn_trainer_run(&m, &c, &r);
 *
 * The library never prints: progress goes to c.report as lines of text. A run is
 * reproducible: with the same model, data, configuration and seed, the weights are bitwise
 * the same for any thread count, and a run stopped at a checkpoint and resumed from it
 * (c.resume) ends with the weights of the uninterrupted run.
 */
#ifndef ATTN_TRAINER_H
#define ATTN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/train.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* A model family as the trainer sees it. Examples are numbered 0 .. n_train - 1 (training
 * set) and 0 .. n_valid - 1 (validation set); the family keeps the data. */
typedef struct {
    void *self;             /* passed back to every callback */
    attn_params *params;    /* what the optimiser updates */
    int n_train, n_valid;
    const int *train_lens;  /* (n_train) a length per example, for batches of similar lengths;
                               NULL: all the same */
    /* The mean loss of examples idx[0 .. n) of the training set (valid = 0, g in training
     * mode) or of the validation set (valid = 1, g in evaluation mode without gradients), as
     * a scalar node of g. *weight gets the number of units the mean is over (target tokens,
     * examples: validation losses are averaged with these weights), *tokens the tokens the
     * batch holds (for the speed in tokens/s). NULL on failure, with the error set. */
    attn_var *(*loss)(void *self, attn_graph *g, int valid, const int *idx, int n, float label_smoothing, int64_t *weight,
                      int64_t *tokens);
    /* Validation (loss, and metric if given) runs after each epoch when there is something to
     * use it: c->report, c->log_csv or c->patience. */
    /* Optional: a validation metric after each epoch, e.g. BLEU. Fills *value and a short
     * text for the progress line ("greedy BLEU 12.34 on 500 valid pairs"). */
    int (*metric)(void *self, double *value, char *text, size_t cap);
    const char *metric_name;     /* the CSV log's column, e.g. "valid_bleu" (default "valid_metric") */
    int metric_higher_is_better; /* for early stopping (the validation loss is lower-is-better) */
    int loss_per_token;          /* print the perplexity exp(loss) beside the validation loss */
    /* Writes the model into the checkpoint directory dir with the optimiser state (opt NULL:
     * weights only) and the training state. */
    int (*save)(void *self, const char *dir, const attn_optim *opt, const attn_train_state *state);
    /* Optional: called with each epoch's batches before it starts (e.g. to export them). */
    int (*epoch_start)(void *self, int64_t epoch, const attn_batches *batches);
} attn_train_model;

/* Data-parallel training (attn/dist.h's attn_dist_trainer fills it in): `size` processes run
 * the same loop; each computes the loss and gradient of its contiguous shard of every global
 * batch (the same batches, in the same order, as one process), weighted by its share of the
 * batch's loss units, and `sum` adds the gradients over the processes in a fixed order, so
 * that every process makes the same update as one process with the whole batch would (up to
 * the rounding of the sum). Rank 0 alone reports, logs and writes checkpoints. */
typedef struct {
    int rank, size;
    int (*sum)(float *x, int64_t n);   /* x := the sum over the processes; same on all */
    int (*sum_f64)(double *x, int n);
} attn_train_dist;

typedef struct {
    int epochs;               /* passes over the training set */
    int batch;                /* examples per batch */
    int bucket;               /* batches are cut from windows of bucket * batch examples sorted
                                 by length (attn_batches_make); default 50 */
    int max_tokens;           /* 0, or at most examples * longest length per batch */
    attn_optim_config optim;
    attn_sched sched;         /* sched.total is set by the trainer to epochs * batches per
                                 epoch; a warm-up of at least that many steps (but for
                                 inv_sqrt) is cut to a tenth of it */
    float clip;               /* gradient clipping by global norm; 0: none */
    float label_smoothing;
    uint64_t seed;            /* dropout and data order */
    int64_t max_steps;        /* stop (with a checkpoint) after this many updates in all; 0: none */
    double time_budget;       /* stop after this many seconds of training; 0: none */
    int64_t save_every;       /* also checkpoint every N updates; 0: at the end of each epoch only */
    int weights_only;         /* checkpoints without the optimiser state (cannot be resumed) */
    int patience;             /* early stopping: stop after this many epochs without a better
                                 validation metric (or loss, without a metric); 0: off */
    int log_every;            /* a progress line every N updates; 0: none */
    int64_t timing_skip;      /* leave the first N updates out of the final tokens/s */
    const char *out;          /* the checkpoint directory (must exist) */
    const char *log_csv;      /* one CSV line per epoch (appended to when resuming); NULL: none */
    const attn_checkpoint *resume; /* continue this checkpoint's run (its optimiser state and
                                      training state); NULL: a new run */
    int handle_signals;       /* SIGINT/SIGTERM stop the run after the current update, with a
                                 checkpoint (the previous handlers are restored afterwards) */
    int skip_divergent;       /* a batch whose loss or gradient norm is not finite, or whose loss
                                 is over 1000 times the run's first (at least 1): 0 (default)
                                 stops the run with an error (ATTN_EINVAL; the checkpoint on
                                 disk is the last one written before that batch, whose update
                                 is not made); 1 skips its update and goes on */
    void (*report)(void *ud, const char *line); /* progress lines (no newline); NULL: silent */
    void *report_ud;
    const attn_train_dist *dist; /* data-parallel over several processes; NULL: one process */
} attn_trainer_config;

/* epochs 10, batch 64, bucket 50, Adam (PyTorch's defaults), constant schedule, clip 1, seed 1. */
attn_trainer_config attn_trainer_defaults(void);

typedef struct {
    int64_t steps_run;        /* updates made by this call */
    int64_t step;             /* updates made in all (resumed ones included) */
    double wall_s, train_s;   /* time of the call, and of its updates alone */
    double tokens_per_s;      /* over the updates after timing_skip */
    double examples_per_s;    /* examples (sentences, sentence pairs) per second, likewise */
    int stopped;              /* 0: all epochs done; 1: max_steps, time budget or a signal
                                 (resume with c.resume); 2: early stopping */
    double best_metric;       /* the best validation metric (or loss, without a metric) seen by
                                 early stopping (NAN if none: patience 0) */
} attn_train_result;

/* Trains m as configured; checkpoints go to c->out. Errors: ATTN_EINVAL for a bad
 * configuration, a resume checkpoint without optimiser state, or an empty training set; the
 * status of a failed loss, backward, save or log write otherwise. */
int attn_trainer_run(const attn_train_model *m, const attn_trainer_config *c, attn_train_result *res);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
