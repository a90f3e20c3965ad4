/* Training checkpoints (attn/train.h): the checkpoint directory of io/ckdir.h with the
 * parameters (model.safetensors), the optimiser state (optim.safetensors), the model's own
 * files, and two sections of config.json besides the model's: "optimizer" (its kind and
 * hyper-parameters) and "train" (where the run is: epoch, batch, step, the data-order seed,
 * the dropout generator, early stopping). Everything needed to resume a run exactly. */
#include <stdio.h>
#include <string.h>

#include "attn/io.h"
#include "attn/train.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/ckdir.h"
#include "params/params_internal.h"
#include "io/json.h"

/* ---- Save -------------------------------------------------------------------------------- */

static int write_optim(const void *opt, const char *path) { return attn_optim_save(opt, path); }

static void optim_json(attn__sb *b, const attn_optim_config *c) {
    attn__jw w;
    attn__jw_init(&w, b, 1, 2);
    attn__jw_object(&w, 0);
    attn__jw_key(&w, "kind"), attn__jw_str(&w, attn_optim_name(c->kind));
    attn__jw_key(&w, "lr"), attn__jw_f64(&w, c->lr);
    attn__jw_key(&w, "momentum"), attn__jw_f64(&w, c->momentum);
    attn__jw_key(&w, "dampening"), attn__jw_f64(&w, c->dampening);
    attn__jw_key(&w, "nesterov"), attn__jw_bool(&w, c->nesterov);
    attn__jw_key(&w, "beta1"), attn__jw_f64(&w, c->beta1);
    attn__jw_key(&w, "beta2"), attn__jw_f64(&w, c->beta2);
    attn__jw_key(&w, "eps"), attn__jw_f64(&w, c->eps);
    attn__jw_key(&w, "weight_decay"), attn__jw_f64(&w, c->weight_decay);
    attn__jw_end(&w, '}');
}

static void state_json(attn__sb *b, const attn_train_state *s) {
    attn__jw w;
    char hex[2][20];
    attn__jw_init(&w, b, 1, 2);
    attn__jw_object(&w, 0);
    attn__jw_key(&w, "epoch"), attn__jw_i64(&w, s->epoch);
    attn__jw_key(&w, "batch"), attn__jw_i64(&w, s->batch);
    attn__jw_key(&w, "step"), attn__jw_i64(&w, s->step);
    snprintf(hex[0], sizeof hex[0], "%016llx", (unsigned long long)s->data_seed);
    attn__jw_key(&w, "data_seed"), attn__jw_str(&w, hex[0]);
    attn__jw_key(&w, "rng"), attn__jw_array(&w, 0);
    for (int i = 0; i < 2; i++) snprintf(hex[i], sizeof hex[i], "%016llx", (unsigned long long)s->rng.s[i]);
    attn__jw_str(&w, hex[0]), attn__jw_str(&w, hex[1]), attn__jw_end(&w, ']');
    attn__jw_key(&w, "best_metric"), attn__jw_f64(&w, s->best_metric);
    attn__jw_key(&w, "bad_epochs"), attn__jw_i64(&w, s->bad_epochs);
    attn__jw_end(&w, '}');
}

int attn_checkpoint_save(const char *dir, const attn_params *ps, const attn_optim *opt, const char *model_json,
                         const attn_train_state *state, int n_files, const attn_ckpt_file *files) {
    if (!dir || !*dir || !ps || !state || n_files < 0 || (n_files && !files))
        return attn__error(ATTN_EINVAL, "attn_checkpoint_save: NULL or empty argument");
    attn__ck_file *cf = attn_calloc((size_t)n_files + 2, sizeof *cf);
    attn__sb oj = {0}, sj = {0};
    if (!cf) return attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
    int nf = 0, ns = 0;
    cf[nf++] = (attn__ck_file){ATTN__CK_MODEL, attn__params_write, ps, NULL, NULL, 0, 0};
    if (opt) cf[nf++] = (attn__ck_file){ATTN__CK_OPTIM, write_optim, opt, NULL, NULL, 0, 0};
    for (int i = 0; i < n_files; i++) cf[nf++] = (attn__ck_file){files[i].name, NULL, NULL, files[i].path, files[i].data, files[i].size, 1};
    const char *keys[3], *values[3];
    keys[ns] = "model", values[ns++] = model_json ? model_json : "{}";
    if (opt) optim_json(&oj, attn_optim_get_config(opt)), keys[ns] = "optimizer", values[ns++] = oj.buf;
    state_json(&sj, state), keys[ns] = "train", values[ns++] = sj.buf;
    int st = oj.failed || sj.failed ? attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory")
                                    : attn__ck_write(dir, ns, keys, values, nf, cf);
    attn__sb_free(&oj), attn__sb_free(&sj);
    attn_free(cf);
    return st;
}

/* ---- Open -------------------------------------------------------------------------------- */

void attn_checkpoint_free(attn_checkpoint *ck) {
    if (!ck) return;
    attn_free(ck->dir);
    attn_free(ck->model_json);
    for (int i = 0; i < ck->n_files; i++) {
        if (ck->file_names) attn_free(ck->file_names[i]);
        if (ck->file_paths) attn_free(ck->file_paths[i]);
    }
    attn_free(ck->file_names);
    attn_free(ck->file_paths);
    memset(ck, 0, sizeof *ck);
}

static int read_state(const attn__ck *c, attn_train_state *s) {
    const attn__json *tr = attn__ck_member(c, "train");
    if (!tr || tr->type != ATTN__JSON_OBJECT) return attn__ck_bad(c, "\"train\" is missing or not an object");
    const attn__json *rng = NULL;
    for (const attn__json *m = tr->child; m; m = m->next)
        if (!strcmp(m->key, "rng")) rng = m;
    int st;
    if ((st = attn__ck_u64(c, tr, "epoch", &s->epoch)) || (st = attn__ck_u64(c, tr, "batch", &s->batch)) ||
        (st = attn__ck_u64(c, tr, "step", &s->step)) || (st = attn__ck_u64(c, tr, "bad_epochs", &s->bad_epochs)) ||
        (st = attn__ck_double(c, tr, "best_metric", &s->best_metric)))
        return st;
    const attn__json *seed = NULL;
    for (const attn__json *m = tr->child; m; m = m->next)
        if (!strcmp(m->key, "data_seed")) seed = m;
    if ((st = attn__ck_hex64(c, seed, "data_seed", &s->data_seed))) return st;
    if (!rng || rng->type != ATTN__JSON_ARRAY || rng->len != 2 || attn__ck_hex64(c, rng->child, "rng", &s->rng.s[0]) ||
        attn__ck_hex64(c, rng->child->next, "rng", &s->rng.s[1]))
        return attn__ck_bad(c, "\"rng\" must be two 16-digit hex strings");
    return ATTN_OK;
}

static int read_optim(const attn__ck *c, attn_checkpoint *ck) {
    const attn__json *op = attn__ck_member(c, "optimizer"), *files = attn__ck_member(c, "files"), *listed = NULL;
    for (const attn__json *f = files->child; f; f = f->next)
        if (!strcmp(f->key, ATTN__CK_OPTIM)) listed = f;
    if (!op) return listed ? attn__ck_bad(c, "lists optim.safetensors but no \"optimizer\"") : ATTN_OK;
    if (!listed) return attn__ck_bad(c, "\"files\" lists no \"" ATTN__CK_OPTIM "\"");
    const attn__json *kind = NULL, *nest = NULL;
    for (const attn__json *m = op->type == ATTN__JSON_OBJECT ? op->child : NULL; m; m = m->next) {
        if (!strcmp(m->key, "kind")) kind = m;
        if (!strcmp(m->key, "nesterov")) nest = m;
    }
    attn_optim_config *o = &ck->optim;
    int k = kind && kind->type == ATTN__JSON_STRING ? attn_optim_parse(kind->str) : -1, st;
    if (op->type != ATTN__JSON_OBJECT || k < 0 || !nest || (nest->type != ATTN__JSON_TRUE && nest->type != ATTN__JSON_FALSE))
        return attn__ck_bad(c, "\"optimizer\" must have a known \"kind\" and a boolean \"nesterov\"");
    o->kind = (attn_optim_kind)k;
    o->nesterov = nest->type == ATTN__JSON_TRUE;
    if ((st = attn__ck_double(c, op, "lr", &o->lr)) || (st = attn__ck_double(c, op, "momentum", &o->momentum)) ||
        (st = attn__ck_double(c, op, "dampening", &o->dampening)) || (st = attn__ck_double(c, op, "beta1", &o->beta1)) ||
        (st = attn__ck_double(c, op, "beta2", &o->beta2)) || (st = attn__ck_double(c, op, "eps", &o->eps)) ||
        (st = attn__ck_double(c, op, "weight_decay", &o->weight_decay)))
        return st;
    ck->has_optim = 1;
    return ATTN_OK;
}

static int read_all(const attn__ck *c, attn_checkpoint *ck) {
    int st;
    if ((st = read_state(c, &ck->state)) || (st = read_optim(c, ck))) return st;
    /* every listed file is the model's, the optimiser's or an extra one */
    for (const attn__json *f = attn__ck_member(c, "files")->child; f; f = f->next)
        if (strcmp(f->key, ATTN__CK_MODEL) && strcmp(f->key, ATTN__CK_OPTIM) && !attn__ck_extra(c, f->key))
            return attn__ck_bad(c, "\"files\" lists a file that is not part of the checkpoint");
    ck->dir = attn__strdup(c->dir);
    ck->model_json = attn__ck_text(c, attn__ck_member(c, "model"));
    ck->file_names = attn_calloc((size_t)c->n_extra + 1, sizeof(char *));
    ck->file_paths = attn_calloc((size_t)c->n_extra + 1, sizeof(char *));
    if (!ck->dir || !ck->model_json || !ck->file_names || !ck->file_paths) return attn__error(ATTN_ENOMEM, "attn_checkpoint_open: out of memory");
    for (int i = 0; i < c->n_extra; i++) {
        ck->n_files = i + 1;
        ck->file_names[i] = attn__strdup(c->extra_names[i]);
        ck->file_paths[i] = attn__strdup(c->extra_paths[i]);
        if (!ck->file_names[i] || !ck->file_paths[i]) return attn__error(ATTN_ENOMEM, "attn_checkpoint_open: out of memory");
    }
    return ATTN_OK;
}

int attn_checkpoint_open(const char *dir, attn_checkpoint *ck) {
    if (!ck) return attn__error(ATTN_EINVAL, "attn_checkpoint_open: NULL output");
    memset(ck, 0, sizeof *ck);
    attn__ck c;
    int st = attn__ck_open(dir, &c);
    if (!st && (st = read_all(&c, ck))) attn_checkpoint_free(ck);
    attn__ck_close(&c);
    return st;
}

int attn_checkpoint_load_params(const attn_checkpoint *ck, attn_params *ps) {
    if (!ck || !ck->dir || !ps) return attn__error(ATTN_EINVAL, "attn_checkpoint_load_params: NULL or closed checkpoint");
    char *p = attn__ck_file_path(ck->dir, ATTN__CK_MODEL);
    if (!p) return attn__error(ATTN_ENOMEM, "out of memory");
    int st = attn_params_load(ps, p, 0);
    attn_free(p);
    return st;
}

int attn_checkpoint_load_optim(const attn_checkpoint *ck, attn_optim *opt) {
    if (!ck || !ck->dir || !opt) return attn__error(ATTN_EINVAL, "attn_checkpoint_load_optim: NULL or closed checkpoint");
    if (!ck->has_optim) return attn__error(ATTN_ENOTFOUND, "%s: the checkpoint holds no optimizer state", ck->dir);
    if (attn_optim_get_config(opt)->kind != ck->optim.kind)
        return attn__error(ATTN_EINVAL, "%s: the checkpoint's optimizer is %s, not %s", ck->dir, attn_optim_name(ck->optim.kind),
                           attn_optim_name(attn_optim_get_config(opt)->kind));
    char *p = attn__ck_file_path(ck->dir, ATTN__CK_OPTIM);
    if (!p) return attn__error(ATTN_ENOMEM, "out of memory");
    int st = attn_optim_load(opt, p);
    attn_free(p);
    return st;
}
