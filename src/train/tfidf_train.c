/* The TF-IDF classifiers as a model of the trainer (attn/tfidf_train.h): loss, validation
 * accuracy and checkpoints; batching, the optimiser, schedules and early stopping are the
 * trainer's. */
#include <stdio.h>

#include "attn/tfidf_train.h"
#include "core/internal.h"

typedef struct {
    attn_tfclf *m;
    const attn_csr *X[2]; /* training, validation rows */
    const int32_t *y[2];
} task;

static attn_var *task_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float label_smoothing,
                           int64_t *weight, int64_t *tokens) {
    (void)label_smoothing;
    task *t = self;
    const attn_csr *X = t->X[valid];
    *weight = n, *tokens = 0;
    for (int i = 0; i < n; i++) *tokens += X->rowptr[idx[i] + 1] - X->rowptr[idx[i]];
    return attn_tfclf_loss(t->m, g, X, t->y[valid], idx, n);
}

int attn_tfclf_accuracy(const attn_tfclf *m, const attn_csr *X, const int32_t *y, double *acc) {
    if (!X || !y || !acc) return attn__error(ATTN_EINVAL, "attn_tfclf_accuracy: NULL argument");
    int32_t *pred = attn_malloc((size_t)X->rows * sizeof(int32_t) + 1);
    if (!pred) return attn__error(ATTN_ENOMEM, "attn_tfclf_accuracy: out of memory");
    int st = attn_tfclf_predict(m, X, pred, NULL);
    int64_t right = 0;
    for (int64_t i = 0; !st && i < X->rows; i++) right += pred[i] == y[i];
    *acc = X->rows > 0 ? (double)right / (double)X->rows : 0.0;
    attn_free(pred);
    return st;
}

static int task_metric(void *self, double *value, char *text, size_t cap) {
    task *t = self;
    int st = attn_tfclf_accuracy(t->m, t->X[1], t->y[1], value);
    if (!st) snprintf(text, cap, "accuracy %.2f%% on %lld valid rows", 100 * *value, (long long)t->X[1]->rows);
    return st;
}

static int task_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *state) {
    task *t = self;
    attn_tfclf_export e;
    int st = attn_tfclf_export_make(t->m, &e);
    if (st) return st;
    st = attn_checkpoint_save(dir, attn_tfclf_params(t->m), opt, e.model_json, state, 1, &e.file);
    attn_tfclf_export_free(&e);
    return st;
}

/* Labels in [0, C) for every row. */
static int check_labels(const attn_tfclf *m, const attn_csr *X, const int32_t *y) {
    int C = attn_tfclf_config_of(m)->n_classes;
    if (!X->rowptr || X->cols != attn_tfidf_size(attn_tfclf_features(m)) || X->rows > INT32_MAX)
        return attn__error(ATTN_EINVAL, "attn_tfclf_train: rows of %lld features for a model of %d", (long long)X->cols,
                           attn_tfidf_size(attn_tfclf_features(m)));
    for (int64_t i = 0; i < X->rows; i++)
        if (y[i] < 0 || y[i] >= C) return attn__error(ATTN_EINVAL, "attn_tfclf_train: label %d of row %lld outside [0, %d)",
                                                      (int)y[i], (long long)i, C);
    return ATTN_OK;
}

int attn_tfclf_train(attn_tfclf *m, const attn_csr *Xtr, const int32_t *ytr, const attn_csr *Xva, const int32_t *yva,
                     const attn_trainer_config *c, attn_train_result *res) {
    if (!m || !Xtr || !ytr || !c || (Xva && !yva)) return attn__error(ATTN_EINVAL, "attn_tfclf_train: NULL argument");
    int st = check_labels(m, Xtr, ytr);
    if (!st && Xva) st = check_labels(m, Xva, yva);
    if (st) return st;
    task t = {m, {Xtr, Xva}, {ytr, yva}};
    attn_train_model tm = {.self = &t, .params = attn_tfclf_params(m), .n_train = (int)Xtr->rows,
                           .n_valid = Xva ? (int)Xva->rows : 0, .loss = task_loss, .metric = Xva ? task_metric : NULL,
                           .metric_name = "valid_acc", .metric_higher_is_better = 1, .save = task_save};
    return attn_trainer_run(&tm, c, res);
}
