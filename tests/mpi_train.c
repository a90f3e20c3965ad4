/* Data-parallel training (attn_dist_trainer) under mpirun (tests/mpirun.sh NP): logistic
 * regression (as test_trainer.c's, without dropout) trained by all ranks together, each with
 * a shard of every batch, against the same training by one process, which every rank also
 * runs alone: the weights after the last step must agree within float rounding (the P-process
 * gradient is summed in another order: 1e-5 relative), and the validation losses of the logs
 * too. With a batch of 3 examples over 4 ranks one rank's shard is empty (its gradient is 0,
 * its weight in the mean 0). Only rank 0 writes the checkpoint and the log. Then the sum over
 * the ranks itself: exact on integers, in rank order. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/attn.h"
#include "testutil.h"

/* 3 classes of 4 features; the data is shared by the two models of a comparison */
enum { F = 4, C = 3, NTRAIN = 90, NVALID = 21, NALL = NTRAIN + NVALID };
static float g_x[NALL][F];
static int32_t g_y[NALL];

typedef struct {
    attn_params *ps;
    attn_param *W, *b;
} logreg;

static void logreg_init(logreg *m) {
    tu_randn(&g_x[0][0], (size_t)NALL * F, 99);
    for (int i = 0; i < NALL; i++) g_y[i] = (g_x[i][0] - 0.5f * g_x[i][2] > 0) + (g_x[i][1] > 1.0f);
    int64_t ws[2] = {C, F}, bs[1] = {C};
    CHECK(attn_params_new(&m->ps) == ATTN_OK, "params");
    m->W = attn_params_add(m->ps, "linear.weight", 2, ws, attn_init_fan(F));
    m->b = attn_params_add(m->ps, "linear.bias", 1, bs, attn_init_fan(F));
    CHECK(m->W && m->b && attn_params_init(m->ps, 7) == ATTN_OK, "parameters: %s", attn_last_error());
}

static attn_var *logreg_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float ls, int64_t *weight,
                             int64_t *tokens) {
    logreg *m = self;
    float x[64 * F];
    int32_t y[64];
    for (int i = 0; i < n; i++) {
        int e = idx[i] + (valid ? NTRAIN : 0);
        memcpy(x + i * F, g_x[e], sizeof g_x[e]);
        y[i] = g_y[e];
    }
    int64_t shape[2] = {n, F};
    attn_var *logits = attn_ag_linear(g, attn_graph_input(g, 2, shape, x), attn_param_var(g, m->W), attn_param_var(g, m->b));
    *weight = n, *tokens = n;
    return attn_ag_cross_entropy(g, logits, y, -1, ls);
}

static int logreg_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *st) {
    logreg *m = self;
    return attn_checkpoint_save(dir, m->ps, opt, "{\"kind\": \"logreg\"}", st, 0, NULL);
}

/* The last line's validation loss (6th column) of a trainer CSV log, or NAN. */
static double last_valid_loss(const char *path) {
    FILE *f = fopen(path, "r");
    char line[512], last[512] = "";
    if (!f) return NAN;
    while (fgets(line, sizeof line, f)) strcpy(last, line);
    fclose(f);
    double v[6];
    return sscanf(last, "%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6 ? v[5] : NAN;
}

static void train_both(int batch, attn_optim_kind optim) {
    int rank = attn_dist_rank();
    logreg dist, one;
    logreg_init(&dist), logreg_init(&one);
    char out1[512], outp[512], log1[600], logp[600];
    snprintf(out1, sizeof out1, "%s/one%d", tu_scratch_dir(), batch), snprintf(outp, sizeof outp, "%s/dist%d", tu_scratch_dir(), batch);
    snprintf(log1, sizeof log1, "%s/one%d.csv", tu_scratch_dir(), batch), snprintf(logp, sizeof logp, "%s/dist%d.csv", tu_scratch_dir(), batch);
    CHECK(mkdir(out1, 0755) == 0 && mkdir(outp, 0755) == 0, "directories");
    attn_train_model tm[2] = {{&one, one.ps, NTRAIN, NVALID, NULL, logreg_loss, NULL, NULL, 0, 0, logreg_save, NULL},
                              {&dist, dist.ps, NTRAIN, NVALID, NULL, logreg_loss, NULL, NULL, 0, 0, logreg_save, NULL}};
    for (int k = 0; k < 2; k++) {
        attn_trainer_config c = attn_trainer_defaults();
        c.epochs = 3, c.batch = batch, c.seed = 5, c.out = k ? outp : out1, c.log_csv = k ? logp : log1;
        c.optim = attn_optim_defaults(optim), c.optim.lr = 0.1f;
        c.sched.kind = ATTN_SCHED_CONSTANT, c.sched.lr = c.sched.min_lr = 0.1f;
        if (k) CHECK(attn_dist_trainer(&c) == ATTN_OK && c.dist && c.dist->size == attn_dist_size(), "attn_dist_trainer");
        attn_train_result r;
        CHECK(attn_trainer_run(&tm[k], &c, &r) == ATTN_OK, "batch %d: %s run: %s", batch, k ? "data-parallel" : "one-process",
              attn_last_error());
        CHECK(r.steps_run == 3 * ((NTRAIN + batch - 1) / batch), "batch %d: %lld steps", batch, (long long)r.steps_run);
    }
    char what[64];
    snprintf(what, sizeof what, "batch %d, %s: weights", batch, optim == ATTN_OPTIM_SGD ? "sgd" : "adam");
    CHECK(tu_close(what, dist.W->data, one.W->data, C * F, 1e-5, 1e-6) && tu_close(what, dist.b->data, one.b->data, C, 1e-5, 1e-6),
          "%s", what);
    /* rank 0 alone writes the data-parallel run's checkpoint and log */
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", outp);
    CHECK((access(path, F_OK) == 0) == (rank == 0), "batch %d: rank %d: checkpoint written by rank 0 alone", batch, rank);
    CHECK((access(logp, F_OK) == 0) == (rank == 0), "batch %d: rank %d: log written by rank 0 alone", batch, rank);
    if (rank == 0) {
        double a = last_valid_loss(logp), b = last_valid_loss(log1);
        CHECK(fabs(a - b) <= 1e-4 * fabs(b), "batch %d: validation loss %g (data-parallel) vs %g (one process)", batch, a, b);
    }
    attn_params_free(one.ps), attn_params_free(dist.ps);
}

static void sums(void) {
    int P = attn_dist_size(), r = attn_dist_rank();
    /* integers: exact whatever the order; 3e6 values: several buckets of 1 Mi */
    enum { N = 3000000 };
    float *x = malloc(N * sizeof(float));
    CHECK(x != NULL, "memory");
    if (!x) return;
    for (int i = 0; i < N; i++) x[i] = (float)((i % 1000) * (r + 1));
    CHECK(attn_dist_sum(x, N) == ATTN_OK, "attn_dist_sum: %s", attn_last_error());
    int bad = 0;
    for (int i = 0; i < N; i++) bad += x[i] != (float)((i % 1000) * (P * (P + 1) / 2));
    CHECK(bad == 0, "attn_dist_sum: %d wrong values", bad);
    /* the order: 1 + 1e-16 + 1e-16 + 1e-16 is 1, the other way round (3 ranks or more) is not */
    double d[2] = {r == 0 ? 1.0 : 1e-16, (double)r};
    CHECK(attn_dist_sum_f64(d, 2) == ATTN_OK && d[1] == P * (P - 1) / 2.0, "attn_dist_sum_f64");
    double want = 1.0;
    for (int k = 1; k < P; k++) want += 1e-16;
    CHECK(d[0] == want, "attn_dist_sum_f64: rank order: %.17g, want %.17g", d[0], want);
    free(x);
}

int main(int argc, char **argv) {
    if (attn_dist_init(&argc, &argv)) {
        fprintf(stderr, "%s\n", attn_last_error());
        return 1;
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "mpi_train_r%d", attn_dist_rank());
    if (!tu_scratch_new(prefix)) return 1;
    attn_set_threads(1);
    train_both(16, ATTN_OPTIM_SGD);
    train_both(3, ATTN_OPTIM_SGD); /* with 4 ranks, one shard is empty */
    train_both(15, ATTN_OPTIM_ADAM);
    sums();
    tu_scratch_remove();
    double f = tu_failures;
    int st = attn_dist_sum_f64(&f, 1);
    if (attn_dist_rank() == 0) printf("mpi_train on %d ranks: %s (%g failures, %d checks on rank 0)\n", attn_dist_size(),
                                      st || f ? "FAILED" : "passed", f, tu_checks);
    attn_dist_finalize();
    return st || f ? 1 : 0;
}
