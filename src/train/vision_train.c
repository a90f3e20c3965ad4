/* The visual-attention models' attn_train_model (attn/vision_train.h): a batch rendered from
 * image indices into the graph's arena (a new placement and clutter per epoch), validation
 * accuracy, checkpoints. Every image of a task has the same size: no lengths to bucket by.
 * Letters: n images in a batch, S the side. */
#include <stdio.h>
#include <string.h>

#include "attn/vision_train.h"
#include "autograd/ag.h"
#include "core/internal.h"

typedef struct {
    attn_vision *m;
    const attn_images *d[2]; /* training, validation (views: not owned) */
    int n_valid;
    uint64_t seed[2];        /* this epoch's training seed, the validation seed */
    char *command;
} task;

static attn_var *task_loss(void *self, attn_graph *g, int valid, const int *idx, int n, float ls, int64_t *weight,
                           int64_t *tokens) {
    (void)ls; /* the class is right or wrong; RAM's reward reads the argmax */
    task *k = self;
    const attn_vision_config *c = attn_vision_get_config(k->m);
    int64_t S = attn_vision_task_size(c->task);
    attn_var *x = attn_graph_input(g, 4, (int64_t[]){n, 1, S, S}, NULL);
    int32_t *labels = attn_graph_alloc(g, (size_t)n * sizeof(int32_t));
    if (!x || !labels) return NULL;
    for (int i = 0; i < n; i++) {
        int st = attn_vision_render(k->d[valid], c->task, k->seed[valid], idx[i], x->data + (size_t)i * S * S, NULL);
        if (st) return ag_fail_last(g, st);
        labels[i] = k->d[valid]->labels[idx[i]];
    }
    *weight = n, *tokens = n;
    return attn_vision_loss(k->m, g, x, labels);
}

static int task_epoch(void *self, int64_t epoch, const attn_batches *batches) {
    (void)batches;
    task *k = self;
    k->seed[0] = attn_seed_mix(attn_vision_split_seed(attn_vision_get_config(k->m)->data_seed, 0), (uint64_t)epoch);
    return ATTN_OK;
}

static int task_metric(void *self, double *value, char *text, size_t cap) {
    task *k = self;
    int st = attn_vision_accuracy(k->m, k->d[1], k->seed[1], k->n_valid, value, NULL);
    if (!st) snprintf(text, cap, "accuracy %.2f%% on %d valid images", 100.0 * *value, k->n_valid);
    return st;
}

static int task_save(void *self, const char *dir, const attn_optim *opt, const attn_train_state *state) {
    task *k = self;
    char *json = NULL;
    int st = attn_vision_model_json(k->m, k->command, &json);
    if (!st) st = attn_checkpoint_save(dir, attn_vision_params(k->m), opt, json, state, 0, NULL);
    attn_free(json);
    return st;
}

void attn_vision_train_model_free(attn_train_model *tm) {
    if (!tm) return;
    task *k = tm->self;
    if (k) attn_free(k->command), attn_free(k);
    memset(tm, 0, sizeof *tm);
}

static int bad_images(const attn_images *d) { return d && d->n > 0 && (!d->pixels || !d->labels || d->h != 28 || d->w != 28); }

int attn_vision_train_model(attn_vision *m, const attn_images *train, const attn_images *valid, int n_valid,
                            const char *command, attn_train_model *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!m || !train || !out || train->n < 1 || bad_images(train) || bad_images(valid) || n_valid < 0)
        return attn__error(ATTN_EINVAL, "attn_vision_train_model: NULL argument, no training images, or images that are not 28x28");
    task *k = attn_calloc(1, sizeof *k);
    if (!k) return attn__error(ATTN_ENOMEM, "attn_vision_train_model: out of memory");
    k->m = m, k->d[0] = train, k->d[1] = valid;
    int nv = valid ? valid->n : 0;
    k->n_valid = n_valid > 0 && n_valid < nv ? n_valid : nv;
    uint64_t ds = attn_vision_get_config(m)->data_seed;
    k->seed[0] = attn_vision_split_seed(ds, 0), k->seed[1] = attn_vision_split_seed(ds, 1);
    if (command && (k->command = attn_malloc(strlen(command) + 1))) memcpy(k->command, command, strlen(command) + 1);
    if (command && !k->command) {
        attn_free(k);
        return attn__error(ATTN_ENOMEM, "attn_vision_train_model: out of memory");
    }
    out->self = k, out->params = attn_vision_params(m);
    out->n_train = train->n, out->n_valid = k->n_valid;
    out->loss = task_loss, out->save = task_save, out->epoch_start = task_epoch;
    if (k->n_valid > 0) out->metric = task_metric;
    out->metric_name = "valid_accuracy", out->metric_higher_is_better = 1;
    return ATTN_OK;
}
