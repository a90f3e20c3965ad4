/* The translation training commands' shared part (cli_train.h): options, data, and the
 * adapter that lets the library's trainer train any translator. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_train.h"

static const char HELP_DATA[] =
    "data (UTF-8 TSV, one pair per line: side0<TAB>side1[<TAB>anything]; Tatoeba's cmn.txt is\n"
    "English<TAB>Chinese<TAB>attribution):\n"
    "  --data FILE         all pairs: split into train/valid/test by a seeded shuffle, the split\n"
    "                      written to --split-dir (so that every model meets the same test set)\n"
    "  --split-dir DIR     where the split goes (default: DIR/split)\n"
    "  --split-seed N      the shuffle's seed (default 1; the same seed gives the same split for\n"
    "                      every model family)\n"
    "  --valid-frac F, --test-frac F   shares of the split (default 0.1 and 0.1)\n"
    "  --split-only        write the split and stop\n"
    "  --train FILE, --valid FILE      an existing split instead of --data\n"
    "  --direction zh-en|en-zh|plain   zh-en (default) reads column 1 (Chinese, one token per\n"
    "                      character) and writes column 0 (English words); plain: column 0 to\n"
    "                      column 1, split on spaces\n"
    "  --max-len N         training pairs with more than N tokens on a side are left out (default 30)\n"
    "  --min-count N       tokens seen fewer than N times in training become <unk> (default 2)\n"
    "  --max-vocab N       at most N ids per vocabulary (default: no limit)\n"
    "\n";

static const char HELP_TRAINING[] =
    "  --epochs N          passes over the training pairs\n"
    "  --batch N           sentences per batch (default 64); batches hold pairs of similar lengths\n"
    "  --optim adam|adamw|sgd   (default adam)      --weight-decay F (default 0)\n"
    "  --lr F              peak learning rate (default 1e-3)\n"
    "  --schedule constant|inv_sqrt|cosine|linear   the learning rate after the warm-up (cosine and\n"
    "                      linear decay to --min-lr, default lr/10)\n"
    "  --warmup N          steps of linear warm-up\n"
    "  --clip F            gradient clipping by global norm (default 1; 0: none)\n"
    "  --on-divergence stop|skip-batch   a batch whose loss or gradient norm is NaN or infinite,\n"
    "                      or whose loss is over 1000 times the run's first: stop with an error\n"
    "                      (default; its update is not made and the checkpoint on disk is the\n"
    "                      last one written before it), or skip its update and go on\n"
    "  --label-smoothing F (default 0.1)\n"
    "  --seed N            initialisation, dropout and data order (default 1)\n"
    "  --max-steps N       stop after N updates in all (a checkpoint is written)\n"
    "  --time-budget S     stop after S seconds of training (a checkpoint is written)\n"
    "  --patience N        early stopping: stop when the validation BLEU (or, with --valid-bleu 0,\n"
    "                      the validation loss) has not improved for N epochs (default 0: off);\n"
    "                      DIR is the last epoch's model, DIR/best the best epoch's (weights only)\n"
    "  --resume            continue the run checkpointed in --out (same data and options)\n"
    "  --save-every N      also checkpoint every N updates (default: after each epoch)\n"
    "  --weights-only      checkpoints without the optimiser state (a third of the size, to\n"
    "                      ship; such a run cannot be resumed)\n"
    "  --valid-bleu N      greedy BLEU on N evenly spaced validation pairs after each epoch\n"
    "                      (default 500; 0: none)\n"
    "  --log FILE          one CSV line per epoch: epoch,step,train_s,wall_s,train_loss,valid_loss,\n"
    "                      valid_bleu,tokens_per_s\n"
    "  --log-every N       a progress line every N updates (default 100)\n"
    "  --timing-skip N     leave the first N updates out of the final tokens/s (default 0)\n"
    "  --threads N         threads (default: all cores; results do not depend on it)\n"
    "  --quiet             only errors and the final line\n"
    "  --export-batches F  write the first epoch's batches (ids, in training order) to F, for\n"
    "                      bench/torch_*.py to train PyTorch on exactly the same data\n"
    "\n";

static const char HELP_OUTPUT[] =
    "output: DIR is a checkpoint (config.json, model.safetensors, optim.safetensors, the\n"
    "vocabularies) for 'attn translate --model DIR' and 'attn eval --model DIR'; its config.json\n"
    "records the command that made it. A run stopped by Ctrl-C (SIGINT) or SIGTERM writes a\n"
    "checkpoint first; --resume continues it with the same result as an uninterrupted run.\n"
    "\n";

/* ---- Options ------------------------------------------------------------------------------ */

void cli_train_defaults(cli_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->split_seed = 1, o->valid_frac = 0.1f, o->test_frac = 0.1f;
    o->max_len = 30, o->min_count = 2;
    o->epochs = 10, o->batch = 64, o->warmup = 200, o->seed = 1, o->valid_bleu = 500, o->log_every = 100;
    o->optim = ATTN_OPTIM_ADAM, o->lr = 1e-3f, o->clip = 1.0f, o->label_smoothing = 0.1f, o->min_lr = -1.0f;
    o->schedule = ATTN_SCHED_COSINE, o->noam_factor = 1.0f;
}

static int shared_option(cli_args *p, cli_train_opts *o) {
    if (cli_str(p, "--data", &o->data) || cli_str(p, "--train", &o->train) || cli_str(p, "--valid", &o->valid) ||
        cli_str(p, "--out", &o->out) || cli_str(p, "-o", &o->out) || cli_str(p, "--split-dir", &o->split_dir) ||
        cli_str(p, "--export-batches", &o->export_batches) || cli_str(p, "--log", &o->log) ||
        cli_str(p, "--direction", &o->dir_) || cli_str(p, "--optim", &o->optim_) || cli_str(p, "--schedule", &o->sched_) ||
        cli_str(p, "--on-divergence", &o->div_))
        return 1;
    if (cli_int(p, "--split-seed", 0, INT32_MAX, &o->split_seed) || cli_int(p, "--max-len", 0, 100000, &o->max_len) ||
        cli_int(p, "--min-count", 0, INT32_MAX, &o->min_count) || cli_int(p, "--max-vocab", 0, INT32_MAX, &o->max_vocab) ||
        cli_int(p, "--epochs", 0, 100000, &o->epochs) || cli_int(p, "--batch", 1, 1 << 16, &o->batch) ||
        cli_int(p, "--warmup", 0, INT32_MAX, &o->warmup) || cli_int(p, "--seed", 0, INT32_MAX, &o->seed) ||
        cli_int(p, "--max-steps", 0, INT32_MAX, &o->max_steps) || cli_int(p, "--save-every", 0, INT32_MAX, &o->save_every) ||
        cli_int(p, "--valid-bleu", 0, INT32_MAX, &o->valid_bleu) || cli_int(p, "--log-every", 0, INT32_MAX, &o->log_every) ||
        cli_int(p, "--threads", 1, 1024, &o->threads) || cli_int(p, "--timing-skip", 0, INT32_MAX, &o->timing_skip) ||
        cli_int(p, "--patience", 0, INT32_MAX, &o->patience))
        return 1;
    if (cli_float(p, "--valid-frac", &o->valid_frac) || cli_float(p, "--test-frac", &o->test_frac) ||
        cli_float(p, "--lr", &o->lr) || cli_float(p, "--weight-decay", &o->weight_decay) || cli_float(p, "--clip", &o->clip) ||
        cli_float(p, "--label-smoothing", &o->label_smoothing) || cli_float(p, "--min-lr", &o->min_lr) ||
        cli_float(p, "--time-budget", &o->time_budget) || cli_float(p, "--noam-factor", &o->noam_factor))
        return 1;
    if (cli_flag(p, "--resume")) return o->resume = 1;
    if (cli_flag(p, "--quiet")) return o->quiet = 1;
    if (cli_flag(p, "--weights-only")) return o->weights_only = 1;
    if (cli_flag(p, "--split-only")) return o->split_only = 1;
    return 0;
}

static int shared_check(const char *cmd, cli_train_opts *o, int allow_noam) {
    if (o->split_only && !o->data) return cli_usage(cmd, "--split-only needs --data FILE");
    if (o->split_only && !o->out && !o->split_dir) return cli_usage(cmd, "--split-only needs --split-dir DIR (or --out DIR)");
    if (!o->out && !o->split_only) return cli_usage(cmd, "--out DIR is required");
    if (!o->data == !o->train) return cli_usage(cmd, "give either --data FILE (to be split) or --train FILE");
    if (o->data && o->valid) return cli_usage(cmd, "--valid goes with --train, not with --data");
    const char *dir = o->dir_;
    if (!dir || !strcmp(dir, "zh-en")) o->src_col = 1, o->src_tok = ATTN_TOK_ZH, o->tgt_tok = ATTN_TOK_EN;
    else if (!strcmp(dir, "en-zh")) o->src_col = 0, o->src_tok = ATTN_TOK_EN, o->tgt_tok = ATTN_TOK_ZH;
    else if (!strcmp(dir, "plain")) o->src_col = 0, o->src_tok = ATTN_TOK_SPACE, o->tgt_tok = ATTN_TOK_SPACE;
    else return cli_usage(cmd, "unknown --direction '%s' (zh-en, en-zh, plain)", dir);
    if (o->optim_ && (o->optim = attn_optim_parse(o->optim_)) < 0)
        return cli_usage(cmd, "unknown --optim '%s' (adam, adamw, sgd)", o->optim_);
    if (o->sched_ && allow_noam && !strcmp(o->sched_, "noam")) o->noam = 1, o->schedule = ATTN_SCHED_INV_SQRT;
    else if (o->sched_ && (o->schedule = attn_sched_parse(o->sched_)) < 0)
        return cli_usage(cmd, "unknown --schedule '%s' (constant, inv_sqrt, cosine, linear%s)", o->sched_, allow_noam ? ", noam" : "");
    if (!(o->valid_frac >= 0 && o->test_frac >= 0 && o->valid_frac + o->test_frac < 1))
        return cli_usage(cmd, "--valid-frac and --test-frac must be >= 0 with a sum below 1");
    if (!(o->lr > 0)) return cli_usage(cmd, "--lr must be positive");
    if (!(o->noam_factor > 0)) return cli_usage(cmd, "--noam-factor must be positive");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1)) return cli_usage(cmd, "--label-smoothing must be in [0, 1)");
    if (o->clip < 0 || o->time_budget < 0) return cli_usage(cmd, "--clip and --time-budget must be >= 0");
    if (o->div_ && strcmp(o->div_, "stop") && strcmp(o->div_, "skip-batch"))
        return cli_usage(cmd, "unknown --on-divergence '%s' (stop, skip-batch)", o->div_);
    o->skip_divergent = o->div_ && !strcmp(o->div_, "skip-batch");
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    return CLI_OK;
}

/* ---- Data --------------------------------------------------------------------------------- */

static int read_pairs(const char *cmd, const char *path, attn_pairs *p, int quiet) {
    int st = attn_pairs_read(path, p);
    if (st) return cli_fail_lib(cmd, st, path);
    if (p->malformed) {
        char rep[512];
        fprintf(stderr, "attn %s: %s: %s\n", cmd, path, attn_pairs_report(p, rep, sizeof rep));
    }
    if (!quiet && attn_dist_rank() == 0) fprintf(stderr, "%s: %d pairs\n", path, p->n);
    return CLI_OK;
}

static int write_split(const char *cmd, const char *dir, const attn_pairs *tr, const attn_pairs *va, const attn_pairs *te) {
    if (s2s_mkdirs(dir)) return cli_fail(cmd, "%s: cannot create the directory: %s", dir, strerror(errno));
    const attn_pairs *ps[3] = {tr, va, te};
    const char *names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    for (int i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int st = attn_pairs_write(ps[i], path);
        if (st) return cli_fail_lib(cmd, st, path);
    }
    return CLI_OK;
}

/* The pairs: a fresh split of --data (written out), or --train and --valid. */
static int load_data(const cli_train_opts *o, const char *cmd, attn_pairs *all, attn_pairs *tr, attn_pairs *va, attn_pairs *te) {
    int rc, st;
    if (!o->data) {
        if ((rc = read_pairs(cmd, o->train, tr, o->quiet))) return rc;
        return o->valid ? read_pairs(cmd, o->valid, va, o->quiet) : CLI_OK;
    }
    if ((rc = read_pairs(cmd, o->data, all, o->quiet))) return rc;
    if ((st = attn_pairs_split(all, (uint64_t)o->split_seed, o->valid_frac, o->test_frac, tr, va, te)))
        return cli_fail_lib(cmd, st, o->data);
    char sd[4096];
    if (o->split_dir) snprintf(sd, sizeof sd, "%s", o->split_dir);
    else snprintf(sd, sizeof sd, "%s%s", o->out, o->split_only ? "" : "/split");
    if ((rc = write_split(cmd, sd, tr, va, te))) return rc;
    if (!o->quiet && attn_dist_rank() == 0)
        fprintf(stderr, "split (seed %d): %d train, %d valid, %d test pairs, written to %s/{train,valid,test}.tsv\n", o->split_seed,
                tr->n, va->n, te->n, sd);
    return CLI_OK;
}

/* ---- The trainer's view of a translator ---------------------------------------------------- */

typedef struct {
    attn_translator *t;
    const s2s_data *d[2]; /* training, validation */
    int valid_bleu;
    const char *export_batches, *cmdline;
    int exported, printed; /* printed: an error message is out already */
    const char *cmd;
    const int32_t **src, **tgt; /* (batch) scratch */
    int *src_len, *tgt_len;
} task;

static attn_var *task_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float ls, int64_t *weight, int64_t *tokens) {
    task *k = self;
    const s2s_data *d = k->d[valid];
    int64_t src_tok = 0;
    for (int i = 0; i < n; i++) {
        k->src[i] = d->src[idx[i]], k->src_len[i] = d->n_src[idx[i]];
        k->tgt[i] = d->tgt[idx[i]], k->tgt_len[i] = d->n_tgt[idx[i]];
        src_tok += d->n_src[idx[i]];
    }
    attn_var *l = attn_translator_loss(k->t, g, n, k->src, k->src_len, k->tgt, k->tgt_len, ls, weight);
    *tokens = src_tok + *weight;
    return l;
}

/* Greedy BLEU on valid_bleu evenly spaced validation pairs (files such as cmn.txt are sorted
 * by length, so the first ones would all be short). */
static int task_metric(void *self, double *value, char *text, size_t cap) {
    task *k = self;
    const s2s_data *dva = k->d[1];
    int n = dva->n < k->valid_bleu ? dva->n : k->valid_bleu;
    s2s_data sub = *dva;
    sub.src = malloc((size_t)n * sizeof *sub.src), sub.n_src = malloc((size_t)n * sizeof(int));
    sub.src_tokens = malloc((size_t)n * sizeof(int)), sub.ref = malloc((size_t)n * sizeof(char *));
    int st = ATTN_ENOMEM;
    if (sub.src && sub.n_src && sub.src_tokens && sub.ref) {
        for (int i = 0; i < n; i++) {
            int j = (int)((int64_t)i * dva->n / n);
            sub.src[i] = dva->src[j], sub.n_src[i] = dva->n_src[j], sub.src_tokens[i] = dva->src_tokens[j], sub.ref[i] = dva->ref[j];
        }
        sub.n = n;
        attn_s2s_decode_opts dopt = attn_s2s_decode_defaults();
        s2s_eval_result r;
        if (!(st = s2s_evaluate(k->t, &sub, &dopt, NULL, 0, NULL, NULL, &r))) {
            *value = r.total.bleu;
            snprintf(text, cap, "greedy BLEU %.2f on %d valid pairs", r.total.bleu, n);
        }
    }
    free(sub.src), free(sub.n_src), free(sub.src_tokens), free((void *)sub.ref);
    return st;
}

static int task_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *state) {
    task *k = self;
    attn_model_export e;
    int st = attn_translator_export(k->t, k->cmdline, &e);
    if (!st) st = attn_checkpoint_save(dir, attn_translator_params(k->t), opt, e.model_json, state, 2, e.files);
    attn_model_export_free(&e);
    return st;
}

/* The batches of the first epoch run, as text: a header line, then per batch one line per
 * pair ("source ids<TAB>target ids", the target with <bos> and <eos>) and an empty line. */
static int task_epoch_start(void *self, int64_t epoch, const attn_batches *bat) {
    task *k = self;
    (void)epoch;
    if (!k->export_batches || k->exported) return ATTN_OK;
    k->exported = 1;
    const s2s_data *d = k->d[0];
    FILE *f = fopen(k->export_batches, "w");
    if (!f) return k->printed = 1, cli_fail(k->cmd, "%s: cannot write: %s", k->export_batches, strerror(errno)), ATTN_EIO;
    fprintf(f, "# attn %s batches: src_vocab %d tgt_vocab %d batches %d\n", attn_translator_kind(k->t),
            attn_vocab_size(attn_translator_src_vocab(k->t)), attn_vocab_size(attn_translator_tgt_vocab(k->t)), bat->n_batches);
    for (int b = 0; b < bat->n_batches; b++) {
        for (int i = bat->offsets[b]; i < bat->offsets[b + 1]; i++) {
            int e = bat->index[i];
            for (int j = 0; j < d->n_src[e]; j++) fprintf(f, j ? " %d" : "%d", (int)d->src[e][j]);
            fputc('\t', f);
            for (int j = 0; j < d->n_tgt[e] + 2; j++) fprintf(f, j ? " %d" : "%d", (int)d->tgt[e][j]);
            fputc('\n', f);
        }
        fputc('\n', f);
    }
    if (fclose(f)) return k->printed = 1, cli_fail(k->cmd, "%s: cannot write", k->export_batches), ATTN_EIO;
    return ATTN_OK;
}

static void report_line(void *ud, const char *line) {
    (void)ud;
    fprintf(stderr, "%s\n", line);
}

/* ---- The run ------------------------------------------------------------------------------- */

/* The model: resumed from the checkpoint in --out, or new with vocabularies from training. */
static int get_model(const cli_train_family *f, cli_train_opts *o, const attn_pairs *tr, attn_translator **t, attn_checkpoint *ck) {
    const char *cmd = f->cmd;
    int st;
    if (o->resume) {
        if ((st = attn_translator_load(o->out, t)) || (st = attn_checkpoint_open(o->out, ck))) return cli_fail_lib(cmd, st, o->out);
        if (strcmp(attn_translator_kind(*t), f->kind))
            return cli_fail(cmd, "%s: a %s checkpoint; resume it with 'attn train %s'", o->out, attn_translator_kind(*t),
                            attn_translator_kind(*t));
        if (!o->quiet && attn_dist_rank() == 0)
            fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", o->out, (long long)ck->state.epoch + 1,
                    (long long)ck->state.batch, (long long)ck->state.step);
        return CLI_OK;
    }
    attn_vocab *sv = NULL, *tv = NULL;
    st = f->vocabs ? f->vocabs(f->cfg, o, tr, &sv, &tv)
                   : s2s_build_vocabs(tr, o->src_col, o->src_tok, o->tgt_tok, o->min_count, o->max_vocab, 0, &sv, &tv);
    if (st) return cli_fail_lib(cmd, st, o->train ? o->train : o->data);
    if ((st = attn_translator_new(f->kind, f->cfg, (uint64_t)o->seed, sv, tv, t))) return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}

static int run_trainer(const cli_train_family *f, cli_train_opts *o, attn_translator *t, const attn_checkpoint *ck,
                       const s2s_data *dtr, const s2s_data *dva, const char *cmdline) {
    const char *cmd = f->cmd;
    task k = {t, {dtr, dva}, o->valid_bleu, o->export_batches, cmdline, 0, 0, cmd, NULL, NULL, NULL, NULL};
    int *lens = malloc((size_t)dtr->n * sizeof(int));
    k.src = malloc((size_t)o->batch * sizeof *k.src), k.tgt = malloc((size_t)o->batch * sizeof *k.tgt);
    k.src_len = malloc((size_t)o->batch * sizeof(int)), k.tgt_len = malloc((size_t)o->batch * sizeof(int));
    int rc = CLI_EDATA;
    if (!lens || !k.src || !k.tgt || !k.src_len || !k.tgt_len) {
        cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
        goto done;
    }
    for (int i = 0; i < dtr->n; i++) lens[i] = dtr->n_src[i] + dtr->n_tgt[i];
    attn_train_model m = {&k, attn_translator_params(t), dtr->n, dva->n, lens, task_loss, NULL, "valid_bleu", 1, 1, task_save,
                          task_epoch_start};
    if (o->valid_bleu > 0 && dva->n > 0) m.metric = task_metric;
    attn_trainer_config c = attn_trainer_defaults();
    c.epochs = o->epochs, c.batch = o->batch;
    c.optim = attn_optim_defaults((attn_optim_kind)o->optim);
    c.optim.lr = o->lr;
    if (o->optim != ATTN_OPTIM_SGD && o->beta2 > 0) c.optim.beta2 = o->beta2;
    if (o->optim != ATTN_OPTIM_SGD && o->eps > 0) c.optim.eps = o->eps;
    if (o->weight_decay > 0 || o->optim != ATTN_OPTIM_ADAMW) c.optim.weight_decay = o->weight_decay;
    attn_sched sched = {(attn_sched_kind)o->schedule, o->lr, o->warmup, 0, o->min_lr};
    if (o->noam) sched = attn_sched_noam(f->d_model(t), o->warmup, o->noam_factor);
    c.sched = sched;
    c.clip = o->clip, c.label_smoothing = o->label_smoothing, c.seed = (uint64_t)o->seed;
    c.max_steps = o->max_steps, c.time_budget = o->time_budget, c.save_every = o->save_every, c.weights_only = o->weights_only;
    c.patience = o->patience, c.log_every = o->quiet ? 0 : o->log_every, c.timing_skip = o->timing_skip;
    c.out = o->out, c.log_csv = o->log, c.resume = o->resume ? ck : NULL, c.handle_signals = 1;
    c.skip_divergent = o->skip_divergent;
    if (!o->quiet) c.report = report_line; /* rank 0's alone are printed */
    int st = attn_dist_size() > 1 ? attn_dist_trainer(&c) : ATTN_OK; /* under mpirun: data-parallel */
    attn_train_result r;
    if (!st) st = attn_trainer_run(&m, &c, &r);
    if (st) {
        if (!k.printed) cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (attn_dist_rank() == 0)
        printf("%s: %lld updates in %.1f s (training %.1f s), %.0f tokens/s, checkpoint %s%s\n",
           r.stopped == 1 ? "stopped" : r.stopped == 2 ? "early-stopped" : "trained", (long long)r.steps_run, r.wall_s, r.train_s,
           r.tokens_per_s, o->out, r.stopped == 1 ? " (resume with --resume)" : "");
    rc = CLI_OK;
done:
    free(lens), free((void *)k.src), free((void *)k.tgt), free(k.src_len), free(k.tgt_len);
    return rc;
}

/* After a failed fresh run into a directory that did not exist: unless it wrote a checkpoint
 * before failing, removes what the run made there (the split, then the directories if left
 * empty). */
static void remove_fresh_out(const cli_train_opts *o) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", o->out);
    if (access(path, F_OK) == 0) return;
    const char *names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    for (int i = 0; o->data && !o->split_dir && i < 3; i++) {
        snprintf(path, sizeof path, "%s/split/%s", o->out, names[i]);
        remove(path);
    }
    snprintf(path, sizeof path, "%s/split", o->out);
    rmdir(path);
    rmdir(o->out);
}

static int train(const cli_train_family *f, cli_train_opts *o, int argc, char **argv) {
    const char *cmd = f->cmd;
    struct stat so;
    int fresh = o->out && !o->resume && !o->split_only && stat(o->out, &so) != 0;
    if (o->threads) attn_set_threads(o->threads);
    attn_pairs all = {0}, tr = {0}, va = {0}, te = {0};
    attn_translator *t = NULL;
    attn_checkpoint ck = {0};
    s2s_data dtr = {0}, dva = {0};
    char *cmdline = s2s_command_line(argc, argv);
    int rc, st;
    if ((rc = load_data(o, cmd, &all, &tr, &va, &te)) || o->split_only) goto done;
    rc = CLI_EDATA;
    if (!o->resume && s2s_mkdirs(o->out)) {
        cli_fail(cmd, "%s: cannot create the directory: %s", o->out, strerror(errno));
        goto done;
    }
    if ((rc = get_model(f, o, &tr, &t, &ck))) goto done;
    rc = CLI_EDATA;
    int cap = f->max_positions(t);
    int max_len = o->max_len > 0 ? o->max_len : cap;
    if (cap && max_len > cap) max_len = cap;
    if ((st = s2s_data_encode(t, &tr, o->src_col, max_len, &dtr)) || (st = s2s_data_encode(t, &va, o->src_col, cap, &dva))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (dtr.n == 0) {
        cli_fail(cmd, "no training pair is left (--max-len %d)", max_len);
        goto done;
    }
    if (!o->quiet && attn_dist_rank() == 0) {
        char desc[512];
        f->describe(t, desc, sizeof desc);
        fprintf(stderr, "model: %s, vocabularies %d (source) and %d (target), %lld parameters\n", desc,
                attn_vocab_size(attn_translator_src_vocab(t)), attn_vocab_size(attn_translator_tgt_vocab(t)),
                (long long)attn_translator_num_params(t));
        fprintf(stderr, "training on %d pairs (%d longer than %d tokens left out), %.2f%% / %.2f%% unknown tokens\n", dtr.n,
                dtr.dropped, max_len, 100.0 * dtr.unk_src / (dtr.tok_src ? dtr.tok_src : 1),
                100.0 * dtr.unk_tgt / (dtr.tok_tgt ? dtr.tok_tgt : 1));
    }
    rc = run_trainer(f, o, t, &ck, &dtr, &dva, cmdline);
done:
    if (rc && fresh) remove_fresh_out(o);
    s2s_data_free(&dtr), s2s_data_free(&dva);
    attn_checkpoint_free(&ck);
    attn_translator_free(t);
    attn_pairs_free(&all), attn_pairs_free(&tr), attn_pairs_free(&va), attn_pairs_free(&te);
    free(cmdline);
    return rc;
}

int cli_train_main(const cli_train_family *f, cli_train_opts *o, int argc, char **argv) {
    cli_args p;
    cli_args_init(&p, f->cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (p.status) break;
            fputs(f->help_head, stdout), fputs(HELP_DATA, stdout), fputs(f->help_model, stdout);
            fputs(HELP_TRAINING, stdout), fputs(HELP_OUTPUT, stdout), fputs(f->help_tail, stdout);
            return CLI_OK;
        } else if (!shared_option(&p, o) && !f->option(&p, f->cfg)) {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(f->cmd, "unexpected argument '%s'", p.pos[0]);
    int rc = shared_check(f->cmd, o, f->d_model != NULL);
    if (rc || (rc = f->check(f->cmd, o, f->cfg))) return rc;
    return train(f, o, argc, argv);
}
