/* attn/train.h: what training needs around the autograd tape: a parameter store with
 * PyTorch-style names and initialisers, optimisers (SGD with momentum, Adam, AdamW: PyTorch's
 * update formulas), gradient clipping by global norm, learning-rate schedules, checkpoints
 * that resume exactly, batching of variable-length sequences, and a progress line.
 *
 * A training step:
 *   attn_params_zero_grad(ps);
 *   attn_graph_reset(g);
 *   loss = model_forward(g, ...);                          // attn_param_var(g, p) per parameter
 *   attn_graph_backward(g, loss);
 *   attn_clip_grad_norm(ps, 1.0f, &norm);
 *   attn_optim_step(opt, attn_sched_lr(&sched, attn_optim_steps(opt)));
 *
 * Reproducibility: initialisation, dropout (attn_graph_rng) and data order (attn_batches_make
 * with a seed per epoch) are seeded; every kernel gives the same bits for any thread count; so
 * two runs with the same seeds give bitwise-identical weights, and a run stopped after a
 * checkpoint and resumed from it gives bitwise what the uninterrupted run gives.
 */
#ifndef ATTN_TRAIN_H
#define ATTN_TRAIN_H

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/io.h"
#include "attn/params.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* ---- Optimisers -------------------------------------------------------------------------- */

typedef enum { ATTN_OPTIM_SGD = 0, ATTN_OPTIM_ADAM = 1, ATTN_OPTIM_ADAMW = 2 } attn_optim_kind;

/* The update of each parameter p with gradient g at step t (1-based), exactly PyTorch 1.13's
 * torch.optim (single-tensor path, maximize=False, amsgrad=False), in float32 with the
 * hyper-parameters (doubles, as Python's floats) rounded to float where PyTorch rounds them
 * and the bias corrections computed in double as PyTorch does:
 * SGD:   g += wd p;  if momentum: b = (t == 1) ? g : momentum b + (1 - dampening) g,
 *        g = nesterov ? g + momentum b : b;  p -= lr g
 * Adam:  g += wd p;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * AdamW: p *= 1 - lr wd, then Adam without the "g += wd p".
 * Every parameter steps each time (a parameter that received no gradient has a zero one,
 * where PyTorch would skip a parameter whose .grad is None). Frozen parameters are skipped;
 * no_decay ones get wd = 0. */
typedef struct {
    attn_optim_kind kind;
    double lr;            /* the default learning rate (attn_optim_step takes one per step) */
    double momentum, dampening;
    int nesterov;
    double beta1, beta2, eps;
    double weight_decay;
} attn_optim_config;

/* PyTorch's defaults: SGD lr 0.1 (PyTorch has none), momentum 0; Adam lr 1e-3, betas (0.9,
 * 0.999), eps 1e-8, wd 0; AdamW the same with wd 1e-2. */
attn_optim_config attn_optim_defaults(attn_optim_kind kind);
const char *attn_optim_name(attn_optim_kind kind); /* "sgd", "adam", "adamw" */
int attn_optim_parse(const char *name);            /* -1 if unknown */

typedef struct attn_optim attn_optim;

/* An optimiser in *out over every parameter of ps (allocated if it was not). Its state
 * (moments, momentum buffers: one allocation) starts at zero. ATTN_EINVAL for a bad config,
 * with a message naming the bad field; ATTN_ENOMEM. */
int attn_optim_new(const attn_optim_config *cfg, attn_params *ps, attn_optim **out);
void attn_optim_free(attn_optim *o); /* accepts NULL */
/* One update with learning rate lr (e.g. from a schedule). Parallel over fixed blocks. */
int attn_optim_step(attn_optim *o, double lr);
int64_t attn_optim_steps(const attn_optim *o);   /* updates done */
const attn_optim_config *attn_optim_get_config(const attn_optim *o);

/* The state as safetensors: "<name>.exp_avg", "<name>.exp_avg_sq" (Adam/AdamW) or
 * "<name>.momentum_buffer" (SGD with momentum) per parameter, and metadata "optimizer" (the
 * kind) and "step". Load checks the kind and every shape. Atomic save. */
int attn_optim_save(const attn_optim *o, const char *path);
int attn_optim_load(attn_optim *o, const char *path);

/* ---- Gradient clipping --------------------------------------------------------------------- */

/* torch.nn.utils.clip_grad_norm_(params, max_norm) (2-norm): total = sqrt(sum of squares of
 * every gradient), coef = max_norm / (total + 1e-6); if coef < 1 every gradient is scaled by
 * coef. *total_norm (may be NULL) gets the norm before clipping (inf or NaN if a gradient is
 * not finite: the gradients are then left as they are, and the caller may skip the step). */
int attn_clip_grad_norm(attn_params *ps, float max_norm, float *total_norm);

/* ---- Learning-rate schedules ----------------------------------------------------------- */

typedef enum {
    ATTN_SCHED_CONSTANT = 0, /* lr (after the warm-up) */
    ATTN_SCHED_INV_SQRT,     /* lr * sqrt(warmup / t) after the warm-up ("Attention is all you
                                need"; lr / sqrt(t) without warm-up) */
    ATTN_SCHED_COSINE,       /* min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2 after it */
    ATTN_SCHED_LINEAR        /* min_lr + (lr - min_lr) * (1 - p) after it */
} attn_sched_kind;

/* `step` is the number of updates already made (0 for the first update), t = step + 1.
 * Warm-up (every kind): for t <= warmup the rate is lr * t / warmup, reaching lr at the
 * warmup-th update. Decay: progress p = (step - warmup) / (total - warmup), clamped to [0, 1],
 * which is torch.optim.lr_scheduler's CosineAnnealingLR(T_max = total) / LinearLR when warmup
 * is 0, and their SequentialLR after LinearLR(1/warmup, 1, warmup - 1) otherwise (Hugging
 * Face's get_{cosine,linear}_schedule_with_warmup, whose warm-up is one step later). */
typedef struct {
    attn_sched_kind kind;
    double lr;       /* peak rate */
    int64_t warmup;  /* steps of linear warm-up (0 = none) */
    int64_t total;   /* cosine and linear: the step where the decay ends */
    double min_lr;   /* cosine and linear: the final rate */
} attn_sched;

/* The rate for the update after `step` updates (step = attn_optim_steps before the update). */
double attn_sched_lr(const attn_sched *s, int64_t step);
/* The Transformer paper's schedule, lr = factor * d_model^-0.5 * min(t^-0.5, t * warmup^-1.5),
 * as an ATTN_SCHED_INV_SQRT schedule. */
attn_sched attn_sched_noam(int d_model, int64_t warmup, double factor);
const char *attn_sched_name(attn_sched_kind kind);  /* "constant", "inv_sqrt", "cosine", "linear" */
int attn_sched_parse(const char *name);             /* -1 if unknown */

/* ---- Batching variable-length sequences -------------------------------------------------- */

/* Batches of example indices for one epoch. Examples are shuffled with `seed`; then, if
 * bucket > 1, cut into windows of bucket * batch_size examples, each sorted by length (so a
 * batch holds similar lengths and little padding); then cut into batches of at most
 * batch_size examples and, if max_tokens > 0, of at most max_tokens = examples * longest
 * length; finally the batch order is shuffled. Deterministic for a given seed; seed each epoch
 * with attn_seed_mix(data_seed, epoch). */
typedef struct {
    int n_batches;
    int *offsets; /* (n_batches + 1): batch b is index[offsets[b] .. offsets[b+1]) */
    int *index;   /* (n) example indices */
} attn_batches;

int attn_batches_make(const int *lens, int n, int batch_size, int max_tokens, int bucket, uint64_t seed, attn_batches *out);
void attn_batches_free(attn_batches *b); /* accepts a zeroed struct */

/* ---- Checkpoints ------------------------------------------------------------------------- */

/* Everything a resumed run needs besides weights and optimiser state. */
typedef struct {
    int64_t epoch;        /* the epoch in progress (0-based) */
    int64_t batch;        /* batches of it already done */
    int64_t step;         /* optimiser updates done */
    uint64_t data_seed;   /* the data-order seed (epoch e uses attn_seed_mix(data_seed, e)) */
    attn_rng rng;         /* the dropout generator (attn_graph_rng) */
    double best_metric;   /* early stopping: the best validation value so far */
    int64_t bad_epochs;   /* early stopping: epochs since it improved */
} attn_train_state;

/* Writes the checkpoint directory `dir` (created if missing):
 *   model.safetensors  the parameters (attn_params_save)
 *   optim.safetensors  the optimiser state (attn_optim_save), if opt is not NULL
 *   <files>            the extra files (attn_ckpt_file, attn/io.h)
 *   config.json        {"format": "attn-checkpoint", "version": 1, "model": <model_json>,
 *                       "optimizer": {...}, "train": {...state...},
 *                       "files": {name: {"bytes": n, "fnv1a64": "hex"}, ...}}
 * Each file is written atomically (temporary file, then rename), config.json last: it names
 * the size and checksum of every other file, so a checkpoint whose writing was interrupted
 * is detected on load instead of mixing old and new files. model_json must be a JSON object
 * (the model's kind and hyper-parameters; opaque here) or NULL for {}. */
int attn_checkpoint_save(const char *dir, const attn_params *ps, const attn_optim *opt, const char *model_json,
                         const attn_train_state *state, int n_files, const attn_ckpt_file *files);

/* A checkpoint read and verified (every listed file present with its size and checksum). */
typedef struct {
    char *dir;
    char *model_json;          /* the "model" object, as its JSON text was given to save */
    attn_train_state state;
    int has_optim;
    attn_optim_config optim;   /* valid when has_optim */
    int n_files;               /* the extra files */
    char **file_names;
    char **file_paths;         /* dir/name */
} attn_checkpoint;

/* Reads and verifies dir/config.json and the files it names. A missing directory or file is
 * ATTN_EIO; a malformed or inconsistent one ATTN_EFORMAT, with a message naming it. */
int attn_checkpoint_open(const char *dir, attn_checkpoint *ck);
void attn_checkpoint_free(attn_checkpoint *ck); /* accepts a zeroed struct */
/* Then, once the model's parameters (and optimiser) are built from ck->model_json: */
int attn_checkpoint_load_params(const attn_checkpoint *ck, attn_params *ps);
int attn_checkpoint_load_optim(const attn_checkpoint *ck, attn_optim *opt); /* ATTN_ENOTFOUND if none was saved */

/* Early stopping on a validation value where lower is better (a loss; pass -accuracy for an
 * accuracy): an improvement (metric < best_metric) records it and resets bad_epochs, else
 * bad_epochs grows. Returns 1 if it improved, 0 if not. Stop when bad_epochs >= patience.
 * Start with best_metric = INFINITY. */
int attn_train_observe(attn_train_state *st, double metric);

/* ---- Progress ---------------------------------------------------------------------------- */

/* A progress line (the library never prints; the caller does), e.g.
 *   "epoch 2/10 step 1200/5000 loss 2.3145 lr 4.2e-04 12345 tok/s eta 1h02m"
 * Fields with a value < 0 (epochs, total_steps, tokens_per_s, eta_s, lr) are left out; loss is
 * printed when finite. Returns the length (as snprintf). */
typedef struct {
    int64_t epoch, epochs;      /* 0-based epoch shown as epoch + 1 */
    int64_t step, total_steps;
    double loss;
    double lr;
    double tokens_per_s;
    double eta_s;
} attn_progress;

int attn_progress_format(char *buf, size_t cap, const attn_progress *p);
/* "45s", "12m05s", "3h07m", "2d04h". */
int attn_format_duration(char *buf, size_t cap, double seconds);
/* Seconds from a monotonic clock, for speeds and ETAs. */
double attn_time_now(void);
/* Estimated seconds left: elapsed * (total - done) / done (-1 when done <= 0). */
double attn_eta(double elapsed_s, int64_t done, int64_t total);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
