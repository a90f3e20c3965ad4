/* The training loop (attn/trainer.h), once for every model family: batches, warm-up of the
 * graph's arena, the update (zero, forward, backward, clip, step), progress lines, checkpoints
 * at a cadence and at a stop, validation and early stopping after each epoch, a CSV log.
 * Not here: the model (the family's callbacks), printing (c->report), data files. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/trainer.h"
#include "core/internal.h"
#include "params/params_internal.h"

attn_trainer_config attn_trainer_defaults(void) {
    attn_trainer_config c;
    memset(&c, 0, sizeof c);
    c.epochs = 10, c.batch = 64, c.bucket = 50;
    c.optim = attn_optim_defaults(ATTN_OPTIM_ADAM);
    c.sched.kind = ATTN_SCHED_CONSTANT, c.sched.lr = c.optim.lr, c.sched.min_lr = c.optim.lr;
    c.clip = 1.0f, c.seed = 1;
    return c;
}

/* ---- Signals ----------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* ---- One run ----------------------------------------------------------------------------- */

typedef struct {
    const attn_train_model *m;
    const attn_trainer_config *c;
    attn_graph *g, *ge;   /* training graph; evaluation graph (no dropout, no gradients) */
    attn_optim *opt;
    attn_sched sched;
    attn_train_state state;
    FILE *log;
    int *idx;             /* (batch) scratch for validation batches */
} run;

/* ---- Data-parallel training (c->dist): see attn_train_dist in attn/trainer.h ------------------- */

static int is_dist(const run *r) { return r->c->dist && r->c->dist->size > 1; }
static int is_root(const run *r) { return !is_dist(r) || r->c->dist->rank == 0; }

/* This process's contiguous shard [*lo, *hi) of a batch of n examples. */
static void shard(const run *r, int n, int *lo, int *hi) {
    *lo = 0, *hi = n;
    if (!is_dist(r)) return;
    int64_t P = r->c->dist->size, k = r->c->dist->rank;
    *lo = (int)(n * k / P), *hi = (int)(n * (k + 1) / P);
}

/* The status of a step that every process takes together: a failure on any process fails
 * them all (else the others would wait for it until their timeout). */
static int agree(const run *r, int st) {
    if (!is_dist(r)) return st;
    double f = st != 0;
    int s2 = r->c->dist->sum_f64(&f, 1);
    if (s2) return s2;
    if (f > 0 && !st) st = attn__error(ATTN_EIO, "rank %d: another process failed (its message says why)", r->c->dist->rank);
    return st;
}

static void say(const run *r, const char *fmt, ...) {
    if (!r->c->report || !is_root(r)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->c->report(r->c->report_ud, line);
}

/* The checkpoint, written by rank 0 alone. */
static int save(run *r) {
    r->state.rng = *attn_graph_rng(r->g);
    int st = is_root(r) ? r->m->save(r->m->self, r->c->out, r->c->weights_only ? NULL : r->opt, &r->state) : ATTN_OK;
    return agree(r, st);
}

/* The validation loss: the mean over every validation example, weighted as the family says. */
static int valid_loss(run *r, double *out) {
    double sum = 0.0;
    int64_t units = 0;
    int st = ATTN_OK;
    const attn_train_model *m = r->m;
    for (int i0 = 0; i0 < m->n_valid && !st; i0 += r->c->batch) {
        int n = m->n_valid - i0 < r->c->batch ? m->n_valid - i0 : r->c->batch, lo, hi;
        shard(r, n, &lo, &hi); /* data-parallel: each process a shard, summed below */
        if (hi == lo) continue;
        for (int i = lo; i < hi; i++) r->idx[i - lo] = i0 + i;
        attn_graph_reset(r->ge);
        int64_t w = 0, tok = 0;
        attn_var *l = m->loss(m->self, r->ge, 1, r->idx, hi - lo, 0.0f, &w, &tok);
        if (!l) st = attn_graph_status(r->ge) ? attn_graph_status(r->ge) : ATTN_EINVAL;
        else sum += (double)l->data[0] * (double)w, units += w;
    }
    if (is_dist(r)) {
        double s[3] = {sum, (double)units, st != 0};
        int s2 = r->c->dist->sum_f64(s, 3);
        if (s2) return s2;
        if (s[2] > 0 && !st) st = attn__error(ATTN_EIO, "rank %d: another process failed (its message says why)", r->c->dist->rank);
        sum = s[0], units = (int64_t)s[1];
    }
    *out = units ? sum / (double)units : NAN;
    return st;
}

/* Runs the forward and backward of the epoch's largest batch twice and throws the result
 * away (the dropout generator restored, the gradients zeroed), so that the graph's arena
 * reaches its largest size before the first timed update: the first pass grows it by chunks,
 * which the reset merges into one; the second touches that chunk's pages. No effect on the
 * run's numbers. */
static void warm_up(run *r, const attn_batches *b) {
    const attn_train_model *m = r->m;
    int big = -1;
    int64_t most = -1;
    for (int bi = 0; bi < b->n_batches; bi++) {
        int64_t longest = 0, n = b->offsets[bi + 1] - b->offsets[bi];
        for (int i = b->offsets[bi]; i < b->offsets[bi + 1]; i++) {
            int64_t len = m->train_lens ? m->train_lens[b->index[i]] : 1;
            if (len > longest) longest = len;
        }
        if (n * longest > most) most = n * longest, big = bi;
    }
    int lo, hi;
    if (big >= 0) shard(r, b->offsets[big + 1] - b->offsets[big], &lo, &hi);
    if (big < 0 || hi == lo) return;
    attn_rng keep = *attn_graph_rng(r->g);
    for (int k = 0; k < 2; k++) {
        int64_t w, tok;
        attn_graph_reset(r->g);
        attn_var *l = m->loss(m->self, r->g, 0, b->index + b->offsets[big] + lo, hi - lo, r->c->label_smoothing, &w, &tok);
        if (l) attn_graph_backward(r->g, l);
        attn_graph_reset(r->g);
    }
    attn_params_zero_grad(m->params);
    *attn_graph_rng(r->g) = keep;
}

static int check_config(const attn_train_model *m, const attn_trainer_config *c) {
    if (!m || !c || !m->params || !m->loss || !m->save) return attn__error(ATTN_EINVAL, "attn_trainer_run: a model needs params, loss and save");
    if (!c->out) return attn__error(ATTN_EINVAL, "attn_trainer_run: no output directory");
    if (m->n_train < 1) return attn__error(ATTN_EINVAL, "attn_trainer_run: the training set is empty");
    if (c->epochs < 0 || c->batch < 1 || c->bucket < 0 || c->max_tokens < 0 || c->max_steps < 0 || c->save_every < 0 ||
        c->patience < 0 || c->log_every < 0 || c->timing_skip < 0 || !(c->clip >= 0) || !(c->time_budget >= 0) ||
        !(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return attn__error(ATTN_EINVAL, "attn_trainer_run: a negative or out-of-range setting");
    if (c->dist && (c->dist->size < 1 || c->dist->rank < 0 || c->dist->rank >= c->dist->size || !c->dist->sum || !c->dist->sum_f64))
        return attn__error(ATTN_EINVAL, "attn_trainer_run: a bad data-parallel description (c->dist)");
    if (c->resume && !c->resume->has_optim)
        return attn__error(ATTN_EINVAL, "%s: the checkpoint has no optimiser state (written with --weights-only): it cannot be resumed",
                           c->resume->dir ? c->resume->dir : "checkpoint");
    return ATTN_OK;
}

/* The model of the best epoch so far, weights only, as a checkpoint in OUT/best. */
static int save_best(run *r, int64_t ep) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/best", r->c->out) >= (int)sizeof dir) return attn__error(ATTN_EINVAL, "%s: path too long", r->c->out);
    r->state.rng = *attn_graph_rng(r->g);
    int st = agree(r, is_root(r) ? r->m->save(r->m->self, dir, NULL, &r->state) : ATTN_OK);
    if (!st) say(r, "epoch %lld: best so far, saved to %s", (long long)ep + 1, dir);
    return st;
}

/* After an epoch (or at a stop, mid_epoch): validation loss and metric, the progress line, the
 * CSV log line and, after a whole epoch, the early-stopping bookkeeping (a better epoch's model
 * goes to OUT/best). Sets *early when patience ran out. */
static int end_of_epoch(run *r, int64_t ep, double t_start, double t_train, double ep_loss, int64_t ep_n, int64_t tok_total,
                        int mid_epoch, int *early) {
    const attn_train_model *m = r->m;
    const attn_trainer_config *c = r->c;
    double vl = NAN, vm = NAN;
    char mtext[256] = "";
    if (m->n_valid > 0 && (c->report || c->log_csv || c->patience)) { /* the same on every process */
        int st = valid_loss(r, &vl);
        if (st) return st;
        if (m->metric && (st = m->metric(m->self, &vm, mtext, sizeof mtext))) return st;
        char ppl[64] = "";
        if (m->loss_per_token) snprintf(ppl, sizeof ppl, " (ppl %.2f)", exp(vl));
        say(r, "epoch %lld/%d: valid loss %.4f%s%s%s, training %.0f s, %.0f s so far", (long long)ep + 1, c->epochs, vl, ppl,
            mtext[0] ? ", " : "", mtext, t_train, attn_time_now() - t_start);
        if (c->patience && !mid_epoch) {
            double key = m->metric ? (m->metric_higher_is_better ? -vm : vm) : vl;
            if (attn_train_observe(&r->state, key)) {
                if ((st = save_best(r, ep))) return st;
            } else if (r->state.bad_epochs >= c->patience) {
                say(r, "early stop: no better validation %s for %d epochs", m->metric ? "metric" : "loss", c->patience);
                *early = 1;
            }
        }
    }
    if (r->log) {
        fprintf(r->log, "%lld,%lld,%.2f,%.2f,%.4f,%.4f,%.2f,%.0f\n", (long long)ep + 1, (long long)r->state.step, t_train,
                attn_time_now() - t_start, ep_n ? ep_loss / (double)ep_n : NAN, vl, vm, t_train > 0 ? (double)tok_total / t_train : 0.0);
        if (fflush(r->log)) return attn__error(ATTN_EIO, "%s: cannot write: %s", c->log_csv, strerror(errno));
    }
    return ATTN_OK;
}

/* Data-parallel: after each process's backward of its shard (the mean loss lv over w units),
 * the step's loss, units and tokens summed over the processes, and the gradient: each
 * process's scaled by its share w / W of the batch's W units, then summed in a fixed order, so
 * that it is the gradient of the whole batch's mean loss, as one process computes it. A failure
 * (st) on any process fails all. */
static int reduce_step(run *r, double *lv, int64_t *w, int64_t *tok, int st) {
    const attn_train_dist *d = r->c->dist;
    double s[4] = {*lv * (double)*w, (double)*w, (double)*tok, st != 0};
    int s2 = d->sum_f64(s, 4);
    if (s2) return s2;
    if (s[3] > 0) return st ? st : attn__error(ATTN_EIO, "rank %d: another process failed (its message says why)", d->rank);
    float *gr = attn_params_grads(r->m->params);
    int64_t ng = attn__params_span(r->m->params); /* the whole allocation, padding included */
    float share = s[1] > 0 ? (float)((double)*w / s[1]) : 0.0f;
    for (int64_t i = 0; i < ng; i++) gr[i] *= share;
    if ((st = d->sum(gr, ng))) return st;
    *lv = s[1] > 0 ? s[0] / s[1] : 0.0, *w = (int64_t)s[1], *tok = (int64_t)s[2];
    return ATTN_OK;
}

static int train_epochs(run *r, attn_train_result *res, const int *lens) {
    const attn_train_model *m = r->m;
    const attn_trainer_config *c = r->c;
    attn_batches bat = {0};
    double t_start = attn_time_now(), t_train = 0.0, t_timed = 0.0, loss_sum = 0.0, t_window = 0.0;
    int64_t tok_total = 0, tok_timed = 0, ex_timed = 0, loss_n = 0, steps_run = 0, tok_window = 0;
    int64_t total = r->sched.total;
    int st = ATTN_OK, stopped = 0;
    double first_loss = INFINITY; /* the run's first loss (at least 1): the scale of an explosion */
    for (int64_t ep = r->state.epoch; ep < c->epochs && !stopped && !st; ep++) {
        if ((st = attn_batches_make(lens, m->n_train, c->batch, c->max_tokens, c->bucket, attn_seed_mix(r->state.data_seed, (uint64_t)ep),
                                    &bat)))
            break;
        if (m->epoch_start && (st = m->epoch_start(m->self, ep, &bat))) break;
        double ep_loss = 0.0;
        int64_t ep_n = 0;
        for (int64_t bi = (ep == r->state.epoch ? r->state.batch : 0); bi < bat.n_batches; bi++) {
            double t0 = attn_time_now();
            const int *idx = bat.index + bat.offsets[bi];
            int n = bat.offsets[bi + 1] - bat.offsets[bi], lo, hi;
            int64_t w = 0, tok = 0;
            double lv = 0.0;
            shard(r, n, &lo, &hi); /* one process: the whole batch */
            attn_params_zero_grad(m->params);
            attn_graph_reset(r->g);
            if (hi > lo) {
                attn_var *loss = m->loss(m->self, r->g, 0, idx + lo, hi - lo, c->label_smoothing, &w, &tok);
                if (!loss || (st = attn_graph_backward(r->g, loss)))
                    st = st ? st : attn_graph_status(r->g) ? attn_graph_status(r->g) : ATTN_EINVAL;
                else lv = loss->data[0];
            }
            if (is_dist(r) && (st = reduce_step(r, &lv, &w, &tok, st))) break;
            if (st) break;
            float norm = 0.0f;
            if (c->clip > 0) attn_clip_grad_norm(m->params, c->clip, &norm);
            if (steps_run == 0 && isfinite(lv)) first_loss = fabs(lv) > 1.0 ? fabs(lv) : 1.0;
            if (isfinite(lv) && isfinite(norm) && lv <= 1e3 * first_loss) {
                attn_optim_step(r->opt, attn_sched_lr(&r->sched, attn_optim_steps(r->opt)));
            } else if (c->skip_divergent) {
                say(r, "step %lld: loss %g, gradient norm %g: diverging, update skipped", (long long)r->state.step + 1, lv, (double)norm);
            } else {
                st = attn__error(ATTN_EINVAL, "step %lld: loss %g, gradient norm %g: training diverged (its update is not made; the "
                                              "checkpoint in %s is the last one written before it). Try a lower learning rate, "
                                              "or skip such batches (--on-divergence skip-batch)",
                                 (long long)r->state.step + 1, lv, (double)norm, c->out);
                break;
            }
            r->state.step++;
            r->state.batch = bi + 1;
            steps_run++;
            double dt = attn_time_now() - t0;
            t_train += dt, t_window += dt;
            if (steps_run > c->timing_skip) t_timed += dt, tok_timed += tok, ex_timed += n;
            tok_total += tok, tok_window += tok;
            loss_sum += lv, loss_n++;
            ep_loss += lv, ep_n++;
            if (c->log_every && r->state.step % c->log_every == 0) {
                attn_progress pr = {ep, c->epochs, r->state.step, total, loss_sum / (double)loss_n,
                                    attn_sched_lr(&r->sched, attn_optim_steps(r->opt)), (double)tok_window / t_window,
                                    attn_eta(attn_time_now() - t_start, steps_run, total - r->state.step + steps_run)};
                char line[256];
                attn_progress_format(line, sizeof line, &pr);
                say(r, "%s", line);
                loss_sum = 0.0, loss_n = 0, tok_window = 0, t_window = 0.0;
            }
            int save_now = c->save_every && r->state.step % c->save_every == 0;
            int stop = (c->time_budget > 0 && t_train >= c->time_budget) || g_stop;
            if (is_dist(r)) { /* rank 0's clock and any process's signal, so that all stop together */
                double f = g_stop || (is_root(r) && c->time_budget > 0 && t_train >= c->time_budget);
                if ((st = c->dist->sum_f64(&f, 1))) break;
                stop = f > 0;
            }
            if ((c->max_steps && r->state.step >= c->max_steps) || stop) stopped = 1, save_now = 1;
            if (save_now && (st = save(r))) break;
            if (stopped) break;
        }
        attn_batches_free(&bat);
        if (st) break;
        if (!stopped) r->state.epoch = ep + 1, r->state.batch = 0;
        /* validation before the epoch's checkpoint, so that it holds the early-stopping state */
        int early = 0;
        if ((st = end_of_epoch(r, ep, t_start, t_train, ep_loss, ep_n, tok_total, stopped, &early))) break;
        if (!stopped && (st = save(r))) break;
        if (early) stopped = 2;
    }
    attn_batches_free(&bat);
    res->steps_run = steps_run, res->step = r->state.step;
    res->wall_s = attn_time_now() - t_start, res->train_s = t_train;
    res->tokens_per_s = t_timed > 0 ? (double)tok_timed / t_timed : 0.0;
    res->examples_per_s = t_timed > 0 ? (double)ex_timed / t_timed : 0.0;
    res->stopped = stopped;
    /* the bookkeeping keeps -metric for a higher-is-better metric */
    double best = r->state.best_metric;
    res->best_metric = !isfinite(best) ? NAN : r->m->metric && r->m->metric_higher_is_better ? -best : best;
    return st;
}

int attn_trainer_run(const attn_train_model *m, const attn_trainer_config *c, attn_train_result *res) {
    attn_train_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    int st = check_config(m, c);
    if (st) return st;
    run r;
    memset(&r, 0, sizeof r);
    r.m = m, r.c = c;
    int *lens = NULL;
    attn_batches bat = {0};
    struct sigaction old_int, old_term;
    int signals = 0;

    memset(&r.state, 0, sizeof r.state);
    r.state.data_seed = attn_seed_mix(c->seed, 0x5eed);
    r.state.best_metric = INFINITY;
    if (c->resume) r.state = c->resume->state;
    if ((st = attn_optim_new(&c->optim, m->params, &r.opt))) goto done;
    if (c->resume && (st = attn_checkpoint_load_optim(c->resume, r.opt))) goto done;

    /* the lengths (all 1 when the family has none) and the number of batches per epoch */
    if (!(lens = attn_malloc((size_t)m->n_train * sizeof(int))) || !(r.idx = attn_malloc((size_t)c->batch * sizeof(int)))) {
        st = attn__error(ATTN_ENOMEM, "attn_trainer_run: out of memory");
        goto done;
    }
    for (int i = 0; i < m->n_train; i++) lens[i] = m->train_lens ? m->train_lens[i] : 1;
    if ((st = attn_batches_make(lens, m->n_train, c->batch, c->max_tokens, c->bucket, attn_seed_mix(r.state.data_seed, 0), &bat)))
        goto done;
    int64_t per_epoch = bat.n_batches, total = per_epoch * c->epochs;
    attn_batches_free(&bat);
    r.sched = c->sched;
    r.sched.total = total;
    if (r.sched.kind != ATTN_SCHED_INV_SQRT && r.sched.warmup >= total) r.sched.warmup = total / 10;

    if ((st = attn_graph_new(0, &r.g)) || (st = attn_graph_new(0, &r.ge))) goto done;
    attn_graph_set_training(r.ge, 0);
    attn_graph_set_grad(r.ge, 0);
    if (c->resume) *attn_graph_rng(r.g) = r.state.rng;
    else attn_graph_seed(r.g, attn_seed_mix(c->seed, 0xd0));
    /* data-parallel: rank 0 goes on with the one-process stream, the others draw their own
     * (dropout masks are per process, not per example: with dropout the run is not the
     * one-process run, only one like it) */
    if (is_dist(&r) && !is_root(&r))
        attn_graph_seed(r.g, attn_seed_mix(attn_seed_mix(c->seed, 0xd157), (uint64_t)r.state.step * 4096u + (uint64_t)c->dist->rank));
    if ((st = attn_batches_make(lens, m->n_train, c->batch, c->max_tokens, c->bucket,
                                attn_seed_mix(r.state.data_seed, (uint64_t)r.state.epoch), &bat)))
        goto done;
    warm_up(&r, &bat);
    attn_batches_free(&bat);

    if (c->log_csv && is_root(&r)) {
        if (!(r.log = fopen(c->log_csv, c->resume ? "a" : "w"))) {
            st = attn__error(ATTN_EIO, "%s: cannot write: %s", c->log_csv, strerror(errno));
            goto done;
        }
        if (!c->resume)
            fprintf(r.log, "epoch,step,train_s,wall_s,train_loss,valid_loss,%s,tokens_per_s\n",
                    m->metric_name ? m->metric_name : "valid_metric");
    }
    if (c->handle_signals) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        g_stop = 0;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        signals = 1;
    }
    say(&r, "%lld batches of up to %d examples per epoch, %d epochs (%lld updates), %d threads", (long long)per_epoch, c->batch,
        c->epochs, (long long)total, attn_get_threads());
    st = train_epochs(&r, res, lens);
    /* no epoch to run (--epochs 0): the checkpoint is the model as initialised */
    if (!st && !c->resume && c->epochs == 0) st = save(&r);
done:
    if (signals) sigaction(SIGINT, &old_int, NULL), sigaction(SIGTERM, &old_term, NULL);
    if (r.log && fclose(r.log) && !st) st = attn__error(ATTN_EIO, "%s: cannot write", c->log_csv);
    attn_batches_free(&bat);
    attn_free(lens), attn_free(r.idx);
    attn_graph_free(r.g), attn_graph_free(r.ge);
    attn_optim_free(r.opt);
    return st;
}
