/* The text classifiers' attn_train_model (attn/classifier_train.h): batches padded from
 * example indices in the graph's arena, validation accuracy, checkpoints through the model's
 * export. Letters: n examples in a batch, T the longest of them. */
#include <stdio.h>
#include <string.h>

#include "attn/classifier_train.h"
#include "core/internal.h"

typedef struct {
    attn_classifier *m;
    attn_cls_examples d[2]; /* training, validation */
    char *command;
    int *lens;              /* (d[0].n) */
} task;

static attn_var *task_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float ls, int64_t *weight,
                           int64_t *tokens) {
    task *k = self;
    const attn_cls_examples *d = &k->d[valid];
    int T = 1;
    int64_t ntok = 0;
    for (int i = 0; i < n; i++) T = d->len[idx[i]] > T ? d->len[idx[i]] : T, ntok += d->len[idx[i]];
    int32_t *ids = attn_graph_alloc(g, (size_t)n * T * sizeof(int32_t));
    int32_t *len = attn_graph_alloc(g, (size_t)n * sizeof(int32_t)), *labels = attn_graph_alloc(g, (size_t)n * sizeof(int32_t));
    if (!ids || !len || !labels) return NULL;
    memset(ids, 0, (size_t)n * T * sizeof(int32_t)); /* <pad> */
    for (int i = 0; i < n; i++) {
        int e = idx[i];
        len[i] = d->len[e], labels[i] = d->labels[e];
        if (len[i] > 0) memcpy(ids + (size_t)i * T, d->ids[e], (size_t)len[i] * sizeof(int32_t));
    }
    *weight = n, *tokens = ntok;
    attn_cls_batch b = {n, T, ids, len};
    return attn_classifier_loss(k->m, g, &b, labels, ls);
}

static int task_metric(void *self, double *value, char *text, size_t cap) {
    task *k = self;
    int st = attn_classifier_accuracy(k->m, &k->d[1], value);
    if (!st) snprintf(text, cap, "accuracy %.2f%% on %d valid sentences", 100.0 * *value, k->d[1].n);
    return st;
}

static int task_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *state) {
    task *k = self;
    attn_model_export e;
    int st = attn_classifier_export(k->m, k->command, &e);
    if (!st) st = attn_checkpoint_save(dir, attn_classifier_params(k->m), opt, e.model_json, state, 2, e.files);
    attn_model_export_free(&e);
    return st;
}

void attn_classifier_train_model_free(attn_train_model *tm) {
    if (!tm) return;
    task *k = tm->self;
    if (k) attn_free(k->command), attn_free(k->lens), attn_free(k);
    memset(tm, 0, sizeof *tm);
}

int attn_classifier_train_model(attn_classifier *m, const attn_cls_examples *train, const attn_cls_examples *valid,
                                const char *command, attn_train_model *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!m || !train || !out || train->n < 0 || (train->n && (!train->ids || !train->len || !train->labels)) ||
        (valid && (valid->n < 0 || (valid->n && (!valid->ids || !valid->len || !valid->labels)))))
        return attn__error(ATTN_EINVAL, "attn_classifier_train_model: NULL or inconsistent argument");
    task *k = attn_calloc(1, sizeof *k);
    if (!k) return attn__error(ATTN_ENOMEM, "attn_classifier_train_model: out of memory");
    k->m = m, k->d[0] = *train;
    if (valid) k->d[1] = *valid;
    k->lens = attn_malloc((size_t)(train->n ? train->n : 1) * sizeof(int));
    if (command && (k->command = attn_malloc(strlen(command) + 1))) memcpy(k->command, command, strlen(command) + 1);
    if (!k->lens || (command && !k->command)) {
        attn_free(k->lens), attn_free(k->command), attn_free(k);
        return attn__error(ATTN_ENOMEM, "attn_classifier_train_model: out of memory");
    }
    for (int i = 0; i < train->n; i++) k->lens[i] = train->len[i];
    out->self = k, out->params = attn_classifier_params(m);
    out->n_train = train->n, out->n_valid = k->d[1].n, out->train_lens = k->lens;
    out->loss = task_loss, out->save = task_save;
    if (k->d[1].n > 0) out->metric = task_metric;
    out->metric_name = "valid_accuracy", out->metric_higher_is_better = 1;
    return ATTN_OK;
}
