/* The text-classification commands' shared part (cli_cls.h): the table of model families,
 * the checkpoint's kind, labelled data mapped to a model's labels, --tok auto, and the
 * trainer's configuration. */
#include <stdlib.h>
#include <string.h>

#include "cli_cls.h"

extern const cls_family cls_tfidf_family;  /* cli_cls_tfidf.c */
extern const cls_family cls_neural_family; /* cli_cls_neural.c */

/* Every classifier family: one line each. */
static const cls_family *const CLS_FAMILIES[] = {&cls_tfidf_family, &cls_neural_family};
#define N_FAMILIES ((int)(sizeof CLS_FAMILIES / sizeof CLS_FAMILIES[0]))

const cls_family *cls_family_at(int i) { return i >= 0 && i < N_FAMILIES ? CLS_FAMILIES[i] : NULL; }

const cls_family *cls_family_of(const char *kind) {
    for (int f = 0; kind && f < N_FAMILIES; f++)
        for (const char *const *k = CLS_FAMILIES[f]->kinds; *k; k++)
            if (!strcmp(*k, kind)) return CLS_FAMILIES[f];
    return NULL;
}

const char *cls_kind_list(void) {
    static char list[256];
    if (!list[0])
        for (int f = 0; f < N_FAMILIES; f++)
            for (const char *const *k = CLS_FAMILIES[f]->kinds; *k; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", *k);
    return list;
}

/* The string value of the first member `key` ("\"kind\"") in a JSON object's text (the
 * loaders check the whole object afterwards; this only picks one of them). */
static int json_str(const char *json, const char *key, char *buf, size_t cap) {
    const char *p = json ? strstr(json, key) : NULL;
    if (!p) return -1;
    p += strlen(key);
    while (*p == ' ' || *p == ':') p++;
    if (*p++ != '"') return -1;
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= cap) return -1;
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    return 0;
}

/* The model name of a checkpoint's model object into buf (its "kind", or for a family whose
 * checkpoints share one kind, e.g. "classifier", its "model"), and *f the family that loads it
 * (NULL if none: a translator's "transformer" is not the classifier's). */
static int json_kind(const char *json, char *buf, size_t cap, const cls_family **f) {
    *f = NULL;
    if (json_str(json, "\"kind\"", buf, cap)) return -1;
    for (int i = 0; i < N_FAMILIES; i++)
        if (CLS_FAMILIES[i]->ck_kind && !strcmp(buf, CLS_FAMILIES[i]->ck_kind)) {
            if (json_str(json, "\"model\"", buf, cap)) return -1;
            *f = cls_family_of(buf) == CLS_FAMILIES[i] ? CLS_FAMILIES[i] : NULL;
            return 0;
        }
    *f = cls_family_of(buf) && !cls_family_of(buf)->ck_kind ? cls_family_of(buf) : NULL;
    return 0;
}

int cls_checkpoint_kind(const char *cmd, const char *dir, char *buf, size_t cap, const cls_family **f) {
    attn_checkpoint ck = {0};
    int st = attn_checkpoint_open(dir, &ck);
    if (st) return cli_fail_lib(cmd, st, dir);
    int bad = json_kind(ck.model_json, buf, cap, f);
    attn_checkpoint_free(&ck);
    return bad ? cli_fail(cmd, "%s/config.json: the model has no \"kind\"", dir) : CLI_OK;
}

int cls_is_classifier(const char *dir) {
    attn_checkpoint ck = {0};
    char kind[64];
    const cls_family *f = NULL;
    int yes = !attn_checkpoint_open(dir, &ck) && !json_kind(ck.model_json, kind, sizeof kind, &f) && f;
    attn_checkpoint_free(&ck);
    return yes;
}

int cls_model_load(const char *cmd, const char *dir, cls_model *out) {
    char kind[64];
    const cls_family *f = NULL;
    int rc = cls_checkpoint_kind(cmd, dir, kind, sizeof kind, &f);
    if (rc) return rc;
    if (!f) return cli_fail(cmd, "%s: a %s checkpoint, not a text classifier (%s)", dir, kind, cls_kind_list());
    return f->load(cmd, dir, out);
}

int cls_read(const char *cmd, const char *path, const char *label_col, int quiet, attn_cls_data *d) {
    int st = attn_cls_read(path, label_col, d);
    if (st) return cli_fail_lib(cmd, st, path);
    if (d->skipped) {
        char rep[512];
        fprintf(stderr, "attn %s: %s: %s\n", cmd, path, attn_cls_report(d, rep, sizeof rep));
    }
    if (!quiet) fprintf(stderr, "%s: %d texts, %d labels\n", path, d->n, d->n_labels);
    return CLI_OK;
}

int cls_set_make(const char *cmd, const attn_cls_data *d, const char *const *labels, int n_labels, cls_set *s, int *unknown) {
    memset(s, 0, sizeof *s);
    *unknown = 0;
    int *map = malloc(((size_t)d->n_labels + 1) * sizeof(int));
    s->text = malloc(((size_t)d->n + 1) * sizeof(char *)), s->y = malloc(((size_t)d->n + 1) * sizeof(int32_t));
    if (!map || !s->text || !s->y) {
        free(map), cls_set_free(s);
        return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    }
    for (int l = 0; l < d->n_labels; l++) {
        map[l] = -1;
        for (int c = 0; c < n_labels; c++)
            if (!strcmp(d->label_name[l], labels[c])) map[l] = c;
    }
    for (int i = 0; i < d->n; i++) {
        int c = map[d->ex[i].label];
        if (c < 0) ++*unknown;
        else s->text[s->n] = d->ex[i].text, s->y[s->n++] = c;
    }
    free(map);
    return CLI_OK;
}

void cls_set_free(cls_set *s) {
    free((void *)s->text), free(s->y);
    memset(s, 0, sizeof *s);
}

attn_tok_kind cls_auto_tok(const attn_cls_data *d) {
    int64_t han = 0, latin = 0;
    for (int i = 0; i < d->n; i++) {
        const char *t = d->ex[i].text;
        size_t pos = 0, n = strlen(t);
        uint32_t cp;
        while (attn_utf8_next(t, n, &pos, &cp)) {
            han += attn_is_cjk(cp) != 0;
            latin += (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
        }
    }
    return han > latin ? ATTN_TOK_ZH : ATTN_TOK_EN;
}

static void report_line(void *ud, const char *line) {
    (void)ud;
    fprintf(stderr, "%s\n", line);
}

attn_trainer_config cls_trainer_config(const cls_opts *o) {
    attn_trainer_config c = attn_trainer_defaults();
    c.epochs = o->epochs, c.batch = o->batch;
    c.optim = attn_optim_defaults((attn_optim_kind)o->optim);
    c.optim.lr = o->lr, c.optim.weight_decay = o->weight_decay;
    c.sched = (attn_sched){ATTN_SCHED_CONSTANT, o->lr, 0, 0, o->lr};
    c.clip = o->clip, c.seed = (uint64_t)o->seed;
    c.skip_divergent = o->div_ && !strcmp(o->div_, "skip-batch");
    c.max_steps = o->max_steps, c.time_budget = o->time_budget, c.save_every = o->save_every;
    c.patience = o->patience, c.log_every = o->quiet ? 0 : o->log_every, c.timing_skip = o->timing_skip;
    c.out = o->out, c.log_csv = o->log, c.handle_signals = 1;
    if (!o->quiet) c.report = report_line;
    return c;
}

void cls_say_resume(const cls_opts *o, const attn_checkpoint *ck) {
    if (!o->quiet)
        fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", o->out, (long long)ck->state.epoch + 1,
                (long long)ck->state.batch, (long long)ck->state.step);
}

void cls_say_result(const cls_opts *o, const attn_train_result *r, int n_valid, double accuracy) {
    char va_text[64] = "no validation set";
    if (n_valid) snprintf(va_text, sizeof va_text, "valid accuracy %.2f%%", 100 * accuracy);
    printf("%s: %lld updates in %.1f s (training %.1f s, %.1f sentences/s, %.0f tokens/s), %s, checkpoint %s%s\n",
           r->stopped == 1 ? "stopped" : r->stopped == 2 ? "early-stopped" : "trained", (long long)r->steps_run, r->wall_s, r->train_s,
           r->examples_per_s, r->tokens_per_s, va_text, o->out, r->stopped == 1 ? " (resume with --resume)" : "");
}
