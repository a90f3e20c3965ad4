/* The trainer (attn/trainer.h) on a small model of its own: logistic regression with dropout on
 * seeded, linearly separable data. Checks that training learns; that a run stopped at a
 * checkpoint and resumed ends with bitwise the weights of the uninterrupted run; early
 * stopping; the CSV log; weights-only checkpoints cannot be resumed; bad configurations and a
 * failing loss are errors with messages, not crashes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attn.h"
#include "testutil.h"

enum { F = 4, C = 2, NTRAIN = 96, NVALID = 32 };

typedef struct {
    attn_params *ps;
    attn_param *W, *b;
    float x[NTRAIN + NVALID][F];
    int32_t y[NTRAIN + NVALID];
    int fail_at;       /* loss fails at this call (0: never) */
    int calls;
    int flat_metric;   /* the metric never improves */
} logreg;

static void logreg_init(logreg *m, uint64_t seed) {
    memset(m, 0, sizeof *m);
    CHECK(attn_params_new(&m->ps) == ATTN_OK, "params");
    int64_t ws[2] = {C, F}, bs[1] = {C};
    m->W = attn_params_add(m->ps, "linear.weight", 2, ws, attn_init_fan(F));
    m->b = attn_params_add(m->ps, "linear.bias", 1, bs, attn_init_fan(F));
    CHECK(m->W && m->b && attn_params_init(m->ps, seed) == ATTN_OK, "parameters: %s", attn_last_error());
    tu_randn(&m->x[0][0], (size_t)(NTRAIN + NVALID) * F, 99);
    for (int i = 0; i < NTRAIN + NVALID; i++) m->y[i] = m->x[i][0] - 0.5f * m->x[i][2] > 0;
}

static attn_var *logreg_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float ls, int64_t *weight,
                             int64_t *tokens) {
    logreg *m = self;
    if (m->fail_at && ++m->calls == m->fail_at) return NULL;
    float x[64 * F];
    int32_t y[64];
    for (int i = 0; i < n; i++) {
        int e = idx[i] + (valid ? NTRAIN : 0);
        memcpy(x + i * F, m->x[e], sizeof m->x[e]);
        y[i] = m->y[e];
    }
    int64_t shape[2] = {n, F};
    attn_var *h = attn_ag_dropout(g, attn_graph_input(g, 2, shape, x), 0.1f);
    attn_var *logits = attn_ag_linear(g, h, attn_param_var(g, m->W), attn_param_var(g, m->b));
    *weight = n, *tokens = n;
    return attn_ag_cross_entropy(g, logits, y, -1, ls);
}

/* Validation accuracy. */
static int logreg_metric(void *self, double *value, char *text, size_t cap) {
    logreg *m = self;
    int right = 0;
    for (int i = NTRAIN; i < NTRAIN + NVALID; i++) {
        float z[C];
        for (int c = 0; c < C; c++) {
            z[c] = m->b->data[c];
            for (int f = 0; f < F; f++) z[c] += m->W->data[c * F + f] * m->x[i][f];
        }
        right += (z[1] > z[0]) == (m->y[i] == 1);
    }
    *value = m->flat_metric ? 0.5 : (double)right / NVALID;
    snprintf(text, cap, "accuracy %.3f", *value);
    return ATTN_OK;
}

static int logreg_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *st) {
    logreg *m = self;
    return attn_checkpoint_save(dir, m->ps, opt, "{\"kind\": \"logreg\"}", st, 0, NULL);
}

static attn_train_model model_of(logreg *m) {
    attn_train_model tm = {m, m->ps, NTRAIN, NVALID, NULL, logreg_loss, logreg_metric, "valid_accuracy", 1, 0, logreg_save, NULL};
    return tm;
}

static attn_trainer_config config(const char *out) {
    attn_trainer_config c = attn_trainer_defaults();
    c.epochs = 6, c.batch = 16, c.out = out, c.seed = 5;
    c.optim.lr = 0.3;
    c.sched.kind = ATTN_SCHED_COSINE, c.sched.lr = 0.3, c.sched.warmup = 4, c.sched.min_lr = 0.03;
    return c;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static void test_learns_and_resumes(const char *dir) {
    char a[300], b[300], logp[300];
    snprintf(a, sizeof a, "%s/a", dir), snprintf(b, sizeof b, "%s/b", dir), snprintf(logp, sizeof logp, "%s/log.csv", dir);
    {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", a, b);
        CHECK(system(cmd) == 0, "mkdir");
    }
    /* the uninterrupted run */
    logreg m1;
    logreg_init(&m1, 3);
    double acc0, acc1;
    char text[64];
    logreg_metric(&m1, &acc0, text, sizeof text);
    attn_train_model tm = model_of(&m1);
    attn_trainer_config c = config(a);
    c.log_csv = logp;
    attn_train_result r;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_OK, "train: %s", attn_last_error());
    logreg_metric(&m1, &acc1, text, sizeof text);
    CHECK(r.stopped == 0 && r.step == 36 && r.steps_run == 36, "36 updates (6 epochs of 6 batches): %lld", (long long)r.step);
    CHECK(acc1 >= 0.9 && acc1 > acc0, "learns: accuracy %.3f -> %.3f", acc0, acc1);
    CHECK(count_lines(logp) == 7, "log: a header and 6 epochs, got %d lines", count_lines(logp));
    FILE *f = fopen(logp, "r");
    char head[200] = "";
    if (f) {
        if (!fgets(head, sizeof head, f)) head[0] = 0;
        fclose(f);
    }
    CHECK(!strcmp(head, "epoch,step,train_s,wall_s,train_loss,valid_loss,valid_accuracy,tokens_per_s\n"), "log header: %s", head);

    /* stopped after 10 updates (a checkpoint mid-epoch), then resumed from it */
    logreg m2;
    logreg_init(&m2, 3);
    tm = model_of(&m2);
    c = config(b);
    c.max_steps = 10;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_OK && r.stopped == 1 && r.step == 10, "stopped at 10: %s", attn_last_error());
    attn_params_free(m2.ps);
    logreg_init(&m2, 77); /* other initial weights: the checkpoint must replace them all */
    attn_checkpoint ck;
    CHECK(attn_checkpoint_open(b, &ck) == ATTN_OK && ck.state.step == 10 && ck.has_optim, "checkpoint: %s", attn_last_error());
    CHECK(attn_checkpoint_load_params(&ck, m2.ps) == ATTN_OK, "load params: %s", attn_last_error());
    tm = model_of(&m2);
    c = config(b);
    c.resume = &ck;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_OK && r.stopped == 0 && r.step == 36 && r.steps_run == 26,
          "resumed: %lld updates, %s", (long long)r.steps_run, attn_last_error());
    attn_checkpoint_free(&ck);
    CHECK(!memcmp(attn_params_data(m1.ps), attn_params_data(m2.ps), (size_t)attn_params_numel(m1.ps) * sizeof(float)),
          "stop + resume gives bitwise the uninterrupted run's weights");

    /* weights-only checkpoints cannot be resumed */
    c = config(b);
    c.weights_only = 1, c.epochs = 1;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_OK, "weights only: %s", attn_last_error());
    CHECK(attn_checkpoint_open(b, &ck) == ATTN_OK && !ck.has_optim, "no optimiser state");
    c.resume = &ck;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_EINVAL && strstr(attn_last_error(), "cannot be resumed"), "resume refused: %s",
          attn_last_error());
    attn_checkpoint_free(&ck);
    attn_params_free(m1.ps), attn_params_free(m2.ps);
}

static void test_early_stop(const char *dir) {
    logreg m;
    logreg_init(&m, 3);
    m.flat_metric = 1;
    attn_train_model tm = model_of(&m);
    attn_trainer_config c = config(dir);
    c.epochs = 20, c.patience = 2;
    c.sched.kind = ATTN_SCHED_CONSTANT, c.sched.warmup = 0; /* epoch 1 then does not depend on the epochs */
    attn_train_result r;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_OK, "train: %s", attn_last_error());
    /* epoch 1 improves on nothing; epochs 2 and 3 do not improve: stop after 3 */
    CHECK(r.stopped == 2 && r.step == 18, "early stop after 3 epochs: stopped %d, %lld updates", r.stopped, (long long)r.step);
    CHECK(r.best_metric == 0.5, "best metric (the accuracy) %g", r.best_metric);
    /* OUT/best holds the best epoch's model (epoch 1): the weights of a one-epoch run */
    char best[400];
    snprintf(best, sizeof best, "%s/best", dir);
    logreg one, kept;
    logreg_init(&one, 3), logreg_init(&kept, 99);
    attn_train_model t1 = model_of(&one);
    attn_trainer_config c1 = config(dir);
    c1.epochs = 1, c1.sched = c.sched;
    attn_checkpoint ck;
    CHECK(attn_trainer_run(&t1, &c1, &r) == ATTN_OK && r.step == 6, "one epoch: %s", attn_last_error());
    CHECK(attn_checkpoint_open(best, &ck) == ATTN_OK && !ck.has_optim && ck.state.epoch == 1, "best checkpoint: %s", attn_last_error());
    CHECK(attn_checkpoint_load_params(&ck, kept.ps) == ATTN_OK, "load best: %s", attn_last_error());
    attn_checkpoint_free(&ck);
    CHECK(!memcmp(attn_params_data(one.ps), attn_params_data(kept.ps), (size_t)attn_params_numel(one.ps) * sizeof(float)),
          "OUT/best holds the weights of the best epoch");
    attn_params_free(m.ps), attn_params_free(one.ps), attn_params_free(kept.ps);
}

static void test_errors(const char *dir) {
    logreg m;
    logreg_init(&m, 3);
    attn_train_model tm = model_of(&m);
    attn_trainer_config c = config(dir);
    attn_train_result r;
    c.batch = 0;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_EINVAL && strstr(attn_last_error(), "out-of-range"), "batch 0: %s", attn_last_error());
    c = config(NULL);
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_EINVAL && strstr(attn_last_error(), "output directory"), "no out");
    c = config(dir);
    tm.n_train = 0;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_EINVAL && strstr(attn_last_error(), "empty"), "no data");
    tm = model_of(&m);
    tm.save = NULL;
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_EINVAL, "no save");
    /* the loss fails at the 5th call (after the warm-up's two): the run stops with an error */
    tm = model_of(&m);
    m.fail_at = 5;
    CHECK(attn_trainer_run(&tm, &c, &r) != ATTN_OK && r.steps_run == 2, "failing loss: %lld updates", (long long)r.steps_run);
    /* a log that cannot be written */
    m.fail_at = 0;
    c.log_csv = "/nonexistent-dir/log.csv";
    CHECK(attn_trainer_run(&tm, &c, &r) == ATTN_EIO && strstr(attn_last_error(), "log.csv"), "log: %s", attn_last_error());
    attn_params_free(m.ps);
}

int main(void) {
    attn_set_threads(2);
    char dir[] = "/tmp/attn_trainer_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    test_learns_and_resumes(dir);
    test_early_stop(dir);
    test_errors(dir);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "clean up");
    return tu_summary("test_trainer");
}
