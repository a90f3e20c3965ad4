/* The associative-recall models' attn_train_model (attn/recall_train.h): a batch gathered
 * from example indices in the graph's arena, validation accuracy, checkpoints. Every sequence
 * of a data set has the same length T = 2K + 3, so there are no lengths to bucket by. */
#include <stdio.h>
#include <string.h>

#include "attn/recall_train.h"
#include "core/internal.h"

typedef struct {
    attn_recall *m;
    attn_recall_data d[2]; /* training, validation (views: not owned) */
    char *command;
} task;

static attn_var *task_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float ls, int64_t *weight,
                           int64_t *tokens) {
    (void)ls; /* a digit is right or wrong: no label smoothing */
    task *k = self;
    const attn_recall_data *d = &k->d[valid];
    int32_t *ids = attn_graph_alloc(g, (size_t)n * d->T * sizeof(int32_t)), *ans = attn_graph_alloc(g, (size_t)n * sizeof(int32_t));
    if (!ids || !ans) return NULL;
    for (int i = 0; i < n; i++) {
        memcpy(ids + (size_t)i * d->T, d->ids + (size_t)idx[i] * d->T, (size_t)d->T * sizeof(int32_t));
        ans[i] = d->answer[idx[i]];
    }
    *weight = n, *tokens = (int64_t)n * d->T;
    return attn_recall_loss(k->m, g, n, ids, ans);
}

static int task_metric(void *self, double *value, char *text, size_t cap) {
    task *k = self;
    int st = attn_recall_accuracy(k->m, &k->d[1], value);
    if (!st) snprintf(text, cap, "accuracy %.2f%% on %d valid sequences", 100.0 * *value, k->d[1].n);
    return st;
}

static int task_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *state) {
    task *k = self;
    char *json = NULL;
    int st = attn_recall_model_json(k->m, k->command, &json);
    if (!st) st = attn_checkpoint_save(dir, attn_recall_params(k->m), opt, json, state, 0, NULL);
    attn_free(json);
    return st;
}

void attn_recall_train_model_free(attn_train_model *tm) {
    if (!tm) return;
    task *k = tm->self;
    if (k) attn_free(k->command), attn_free(k);
    memset(tm, 0, sizeof *tm);
}

int attn_recall_train_model(attn_recall *m, const attn_recall_data *train, const attn_recall_data *valid, const char *command,
                            attn_train_model *out) {
    if (out) memset(out, 0, sizeof *out);
    int K = m ? attn_recall_get_config(m)->pairs : 0;
    if (!m || !train || !out || train->n < 0 || (train->n && (!train->ids || !train->answer || train->K != K)) ||
        (valid && (valid->n < 0 || (valid->n && (!valid->ids || !valid->answer || valid->K != K)))))
        return attn__error(ATTN_EINVAL, "attn_recall_train_model: NULL argument, or data of another number of pairs");
    task *k = attn_calloc(1, sizeof *k);
    if (!k) return attn__error(ATTN_ENOMEM, "attn_recall_train_model: out of memory");
    k->m = m, k->d[0] = *train;
    if (valid) k->d[1] = *valid;
    if (command && (k->command = attn_malloc(strlen(command) + 1))) memcpy(k->command, command, strlen(command) + 1);
    if (command && !k->command) {
        attn_free(k);
        return attn__error(ATTN_ENOMEM, "attn_recall_train_model: out of memory");
    }
    out->self = k, out->params = attn_recall_params(m);
    out->n_train = train->n, out->n_valid = k->d[1].n;
    out->loss = task_loss, out->save = task_save;
    if (k->d[1].n > 0) out->metric = task_metric;
    out->metric_name = "valid_accuracy", out->metric_higher_is_better = 1;
    return ATTN_OK;
}
