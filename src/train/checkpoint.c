/* Checkpoints: a directory holding model.safetensors, optim.safetensors, extra files
 * (vocabularies: opaque blobs) and config.json, which is written last and names the size and
 * FNV-1a checksum of every other file. Each file is written atomically; a checkpoint whose
 * writing was interrupted (old config.json, some new files) is therefore detected on load
 * rather than silently mixing two states. config.json is untrusted on load: strict JSON
 * parser, every field checked. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attn/io.h"
#include "attn/train.h"
#include "core/internal.h"
#include "io/common.h"
#include "io/json.h"
#include "train/train_internal.h"

#define CONFIG "config.json"
#define MODEL "model.safetensors"
#define OPTIM "optim.safetensors"
#define FORMAT "attn-checkpoint"
#define VERSION 1
#define MAX_CONFIG (64u << 20)

uint64_t attn__fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* ---- Small helpers ----------------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = attn_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static char *dup_n(const char *s, size_t n) {
    char *p = attn_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Size and checksum of a file, streamed. */
static int file_sum(const char *path, uint64_t *bytes, uint64_t *sum) {
    FILE *f;
    size_t n;
    int st = attn__file_open(path, &f, &n);
    if (st) return st;
    unsigned char buf[1 << 16];
    uint64_t h = ATTN__FNV_INIT, total = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        h = attn__fnv1a(h, buf, k);
        total += k;
    }
    int err = ferror(f);
    fclose(f);
    if (err) return attn__error(ATTN_EIO, "%s: read error", path);
    *bytes = total;
    *sum = h;
    return ATTN_OK;
}

static int valid_name(const char *s) {
    if (!s || !*s || *s == '.' || strlen(s) > 200) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int reserved(const char *s) { return !strcmp(s, CONFIG) || !strcmp(s, MODEL) || !strcmp(s, OPTIM); }

/* ---- Save -------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    uint64_t bytes, sum;
} entry;

int attn_checkpoint_save(const char *dir, const attn_params *ps, const attn_optim *opt, const char *model_json,
                         const attn_train_state *state, int n_files, const attn_ckpt_file *files) {
    if (!dir || !*dir || !ps || !state || n_files < 0 || (n_files && !files))
        return attn__error(ATTN_EINVAL, "attn_checkpoint_save: NULL or empty argument");
    const char *mj = model_json ? model_json : "{}";
    {
        attn__json *v = NULL;
        char err[128];
        int st = attn__json_parse(mj, strlen(mj), &v, err, sizeof err);
        int obj = st == ATTN_OK && v->type == ATTN__JSON_OBJECT;
        attn__json_free(v);
        if (st == ATTN_ENOMEM) return attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
        if (!obj) return attn__error(ATTN_EINVAL, "attn_checkpoint_save: the model config is not a JSON object%s%s", st ? ": " : "", st ? err : "");
    }
    for (int i = 0; i < n_files; i++) {
        if (!valid_name(files[i].name) || reserved(files[i].name))
            return attn__error(ATTN_EINVAL, "attn_checkpoint_save: bad extra file name '%s' (letters, digits, '.', '_', '-'; not a checkpoint file)",
                               files[i].name ? files[i].name : "(null)");
        if (!files[i].path && files[i].size && !files[i].data)
            return attn__error(ATTN_EINVAL, "attn_checkpoint_save: extra file '%s' has neither a path nor data", files[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(files[i].name, files[j].name)) return attn__error(ATTN_EINVAL, "attn_checkpoint_save: duplicate extra file '%s'", files[i].name);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return attn__error(ATTN_EIO, "%s: cannot create the directory: %s", dir, strerror(errno));
    struct stat sdir;
    if (stat(dir, &sdir) != 0 || !S_ISDIR(sdir.st_mode)) return attn__error(ATTN_EIO, "%s: not a directory", dir);

    int st = ATTN_OK, ne = 0;
    entry *ents = attn_calloc((size_t)n_files + 2, sizeof *ents);
    attn__sb b = {0};
    char *path = NULL;
    if (!ents) return attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");

    /* 1. The weights, the optimiser state, the extra files; each atomic. */
    for (int k = -2; k < n_files && !st; k++) {
        const char *name = k == -2 ? MODEL : k == -1 ? OPTIM : files[k].name;
        if (k == -1 && !opt) continue;
        attn_free(path);
        if (!(path = join(dir, name))) {
            st = ATTN_ENOMEM;
            break;
        }
        if (k == -2) st = attn_params_save(ps, path, 0, NULL);
        else if (k == -1) st = attn_optim_save(opt, path);
        else if (files[k].path) {
            char *data;
            size_t n;
            st = attn__read_file(files[k].path, SIZE_MAX / 2, &data, &n);
            if (!st) st = attn_write_file_atomic(path, data, n);
            attn_free(data);
        } else {
            st = attn_write_file_atomic(path, files[k].data ? files[k].data : "", files[k].size);
        }
        if (!st) st = file_sum(path, &ents[ne].bytes, &ents[ne].sum);
        ents[ne++].name = name;
    }
    if (st) goto done;

    /* 2. config.json, the commit point. */
    attn__jw w;
    char hex[2][20];
    attn__jw_init(&w, &b, 1, 2);
    attn__jw_object(&w, 1);
    attn__jw_key(&w, "format"), attn__jw_str(&w, FORMAT);
    attn__jw_key(&w, "version"), attn__jw_i64(&w, VERSION);
    attn__jw_key(&w, "model"), attn__jw_raw(&w, mj);
    if (opt) {
        const attn_optim_config *c = attn_optim_get_config(opt);
        attn__jw_key(&w, "optimizer"), attn__jw_object(&w, 0);
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
    attn__jw_key(&w, "train"), attn__jw_object(&w, 0);
    attn__jw_key(&w, "epoch"), attn__jw_i64(&w, state->epoch);
    attn__jw_key(&w, "batch"), attn__jw_i64(&w, state->batch);
    attn__jw_key(&w, "step"), attn__jw_i64(&w, state->step);
    snprintf(hex[0], sizeof hex[0], "%016llx", (unsigned long long)state->data_seed);
    attn__jw_key(&w, "data_seed"), attn__jw_str(&w, hex[0]);
    attn__jw_key(&w, "rng"), attn__jw_array(&w, 0);
    for (int i = 0; i < 2; i++) snprintf(hex[i], sizeof hex[i], "%016llx", (unsigned long long)state->rng.s[i]);
    attn__jw_str(&w, hex[0]), attn__jw_str(&w, hex[1]), attn__jw_end(&w, ']');
    attn__jw_key(&w, "best_metric"), attn__jw_f64(&w, state->best_metric);
    attn__jw_key(&w, "bad_epochs"), attn__jw_i64(&w, state->bad_epochs);
    attn__jw_end(&w, '}');
    attn__jw_key(&w, "files"), attn__jw_object(&w, 1);
    for (int i = 0; i < ne; i++) {
        snprintf(hex[0], sizeof hex[0], "%016llx", (unsigned long long)ents[i].sum);
        attn__jw_key(&w, ents[i].name), attn__jw_object(&w, 0);
        attn__jw_key(&w, "bytes"), attn__jw_u64(&w, ents[i].bytes);
        attn__jw_key(&w, "fnv1a64"), attn__jw_str(&w, hex[0]);
        attn__jw_end(&w, '}');
    }
    attn__jw_end(&w, '}');
    attn__jw_key(&w, "extra_files"), attn__jw_array(&w, 0);
    for (int i = 0; i < n_files; i++) attn__jw_str(&w, files[i].name);
    attn__jw_end(&w, ']');
    attn__jw_end(&w, '}');
    attn__sb_str(&b, "\n");
    if (b.failed) {
        st = attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
        goto done;
    }
    attn_free(path);
    if (!(path = join(dir, CONFIG))) {
        st = ATTN_ENOMEM;
        goto done;
    }
    st = attn_write_file_atomic(path, b.buf, b.len);
done:
    if (st == ATTN_ENOMEM) attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
    attn_free(path);
    attn__sb_free(&b);
    attn_free(ents);
    return st;
}

/* ---- Open -------------------------------------------------------------------------------- */

static const attn__json *member(const attn__json *obj, const char *key) {
    if (!obj || obj->type != ATTN__JSON_OBJECT) return NULL;
    for (const attn__json *c = obj->child; c; c = c->next)
        if (!strcmp(c->key, key)) return c;
    return NULL;
}

/* The end of the JSON value starting at text[i] (validated JSON: only brackets and strings
 * need care). */
static size_t value_end(const char *text, size_t n, size_t i) {
    int depth = 0;
    for (; i < n; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < n && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
            if (depth == 0) return i + 1;
        } else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        } else if (depth == 0 && (c == ',' || c == '\n' || c == ' ' || c == '\r' || c == '\t')) return i;
    }
    return n;
}

typedef struct {
    const char *path, *text;
    int st;
} rd;

static int bad(rd *r, const char *what) {
    if (!r->st) r->st = attn__error(ATTN_EFORMAT, "%s: %s", r->path, what);
    return 0;
}

static int get_u64(rd *r, const attn__json *obj, const char *key, int64_t *out) {
    const attn__json *v = member(obj, key);
    char msg[128];
    if (!v || v->type != ATTN__JSON_NUMBER || !v->is_uint || v->u > (uint64_t)INT64_MAX) {
        snprintf(msg, sizeof msg, "\"%s\" is missing or not a non-negative integer", key);
        return bad(r, msg);
    }
    *out = (int64_t)v->u;
    return 1;
}

static int parse_hex(const char *s, uint64_t *out) {
    if (!s || strlen(s) != 16) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 1;
}

static int get_hex(rd *r, const attn__json *v, const char *key, uint64_t *out) {
    char msg[128];
    if (!v || v->type != ATTN__JSON_STRING || !parse_hex(v->str, out)) {
        snprintf(msg, sizeof msg, "\"%s\" is missing or not 16 lowercase hex digits", key);
        return bad(r, msg);
    }
    return 1;
}

static int get_double(rd *r, const attn__json *obj, const char *key, double *out) {
    const attn__json *v = member(obj, key);
    char msg[128];
    if (v && v->type == ATTN__JSON_NUMBER) {
        *out = strtod(r->text + v->offset, NULL);
        return 1;
    }
    if (v && v->type == ATTN__JSON_STRING) {
        if (!strcmp(v->str, "inf")) return *out = INFINITY, 1;
        if (!strcmp(v->str, "-inf")) return *out = -INFINITY, 1;
        if (!strcmp(v->str, "nan")) return *out = NAN, 1;
    }
    snprintf(msg, sizeof msg, "\"%s\" is missing or not a number", key);
    return bad(r, msg);
}

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

static int verify_file(rd *r, const char *dir, const attn__json *files, const char *name) {
    const attn__json *f = member(files, name);
    char msg[512];
    if (!f || f->type != ATTN__JSON_OBJECT) {
        snprintf(msg, sizeof msg, "\"files\" lists no \"%s\"", name);
        return bad(r, msg);
    }
    int64_t bytes;
    uint64_t sum, got_bytes, got_sum;
    if (!get_u64(r, f, "bytes", &bytes) || !get_hex(r, member(f, "fnv1a64"), "fnv1a64", &sum)) return 0;
    char *p = join(dir, name);
    if (!p) return r->st = ATTN_ENOMEM, 0;
    int st = file_sum(p, &got_bytes, &got_sum);
    if (st) {
        attn_free(p);
        if (!r->st) r->st = st;
        return 0;
    }
    if (got_bytes != (uint64_t)bytes || got_sum != sum) {
        r->st = attn__error(ATTN_EFORMAT, "%s: %s has %llu bytes and checksum %016llx, config.json says %lld bytes and %016llx "
                                          "(a changed file, or a checkpoint whose writing was interrupted)",
                            dir, name, (unsigned long long)got_bytes, (unsigned long long)got_sum, (long long)bytes,
                            (unsigned long long)sum);
        attn_free(p);
        return 0;
    }
    attn_free(p);
    return 1;
}

int attn_checkpoint_open(const char *dir, attn_checkpoint *ck) {
    if (!ck) return attn__error(ATTN_EINVAL, "attn_checkpoint_open: NULL output");
    memset(ck, 0, sizeof *ck);
    if (!dir || !*dir) return attn__error(ATTN_EINVAL, "attn_checkpoint_open: empty directory name");
    char *cpath = join(dir, CONFIG), *text = NULL;
    size_t n = 0;
    attn__json *root = NULL;
    rd r = {cpath, NULL, ATTN_OK};
    if (!cpath) return attn__error(ATTN_ENOMEM, "attn_checkpoint_open: out of memory");
    if ((r.st = attn__read_file(cpath, MAX_CONFIG, &text, &n))) goto done;
    r.text = text;
    char err[128];
    int st = attn__json_parse(text, n, &root, err, sizeof err);
    if (st) {
        r.st = st == ATTN_ENOMEM ? attn__error(ATTN_ENOMEM, "%s: out of memory", cpath) : attn__error(ATTN_EFORMAT, "%s: %s", cpath, err);
        goto done;
    }
    if (root->type != ATTN__JSON_OBJECT) {
        bad(&r, "not a JSON object");
        goto done;
    }
    const attn__json *fmt = member(root, "format"), *ver = member(root, "version");
    if (!fmt || fmt->type != ATTN__JSON_STRING || strcmp(fmt->str, FORMAT)) {
        bad(&r, "not an attn checkpoint (\"format\" is not \"" FORMAT "\")");
        goto done;
    }
    if (!ver || ver->type != ATTN__JSON_NUMBER || !ver->is_uint || ver->u != VERSION) {
        bad(&r, "unsupported checkpoint version (this library reads version 1)");
        goto done;
    }
    const attn__json *model = member(root, "model");
    if (!model || model->type != ATTN__JSON_OBJECT) {
        bad(&r, "\"model\" is missing or not an object");
        goto done;
    }
    size_t end = value_end(text, n, model->offset);
    if (!(ck->model_json = dup_n(text + model->offset, end - model->offset)) || !(ck->dir = dup_n(dir, strlen(dir)))) {
        r.st = attn__error(ATTN_ENOMEM, "attn_checkpoint_open: out of memory");
        goto done;
    }
    /* Training state. */
    const attn__json *tr = member(root, "train");
    if (!tr || tr->type != ATTN__JSON_OBJECT) {
        bad(&r, "\"train\" is missing or not an object");
        goto done;
    }
    attn_train_state *s = &ck->state;
    const attn__json *rng = member(tr, "rng");
    if (!get_u64(&r, tr, "epoch", &s->epoch) || !get_u64(&r, tr, "batch", &s->batch) || !get_u64(&r, tr, "step", &s->step) ||
        !get_u64(&r, tr, "bad_epochs", &s->bad_epochs) || !get_hex(&r, member(tr, "data_seed"), "data_seed", &s->data_seed) ||
        !get_double(&r, tr, "best_metric", &s->best_metric))
        goto done;
    if (!rng || rng->type != ATTN__JSON_ARRAY || rng->len != 2 || !get_hex(&r, rng->child, "rng", &s->rng.s[0]) ||
        !get_hex(&r, rng->child->next, "rng", &s->rng.s[1])) {
        bad(&r, "\"rng\" must be two 16-digit hex strings");
        goto done;
    }
    /* Optimiser. */
    const attn__json *op = member(root, "optimizer");
    if (op) {
        const attn__json *kind = member(op, "kind"), *nest = member(op, "nesterov");
        attn_optim_config *c = &ck->optim;
        int k = kind && kind->type == ATTN__JSON_STRING ? attn_optim_parse(kind->str) : -1;
        if (op->type != ATTN__JSON_OBJECT || k < 0 || !nest || (nest->type != ATTN__JSON_TRUE && nest->type != ATTN__JSON_FALSE)) {
            bad(&r, "\"optimizer\" must have a known \"kind\" and a boolean \"nesterov\"");
            goto done;
        }
        c->kind = (attn_optim_kind)k;
        c->nesterov = nest->type == ATTN__JSON_TRUE;
        if (!get_double(&r, op, "lr", &c->lr) || !get_double(&r, op, "momentum", &c->momentum) ||
            !get_double(&r, op, "dampening", &c->dampening) || !get_double(&r, op, "beta1", &c->beta1) ||
            !get_double(&r, op, "beta2", &c->beta2) || !get_double(&r, op, "eps", &c->eps) ||
            !get_double(&r, op, "weight_decay", &c->weight_decay))
            goto done;
        ck->has_optim = 1;
    }
    /* Files: every listed one verified; the extra ones remembered. */
    const attn__json *files = member(root, "files"), *extra = member(root, "extra_files");
    if (!files || files->type != ATTN__JSON_OBJECT || !extra || extra->type != ATTN__JSON_ARRAY) {
        bad(&r, "\"files\" (object) or \"extra_files\" (array) is missing");
        goto done;
    }
    if (!verify_file(&r, dir, files, MODEL)) goto done;
    if (ck->has_optim && !verify_file(&r, dir, files, OPTIM)) goto done;
    if (!ck->has_optim && member(files, OPTIM)) {
        bad(&r, "lists optim.safetensors but no \"optimizer\"");
        goto done;
    }
    ck->file_names = attn_calloc(extra->len + 1, sizeof(char *));
    ck->file_paths = attn_calloc(extra->len + 1, sizeof(char *));
    if (!ck->file_names || !ck->file_paths) {
        r.st = attn__error(ATTN_ENOMEM, "attn_checkpoint_open: out of memory");
        goto done;
    }
    for (const attn__json *e = extra->child; e; e = e->next) {
        if (e->type != ATTN__JSON_STRING || !valid_name(e->str) || reserved(e->str)) {
            bad(&r, "\"extra_files\" holds a bad file name");
            goto done;
        }
        if (!verify_file(&r, dir, files, e->str)) goto done;
        int i = ck->n_files++;
        ck->file_names[i] = dup_n(e->str, strlen(e->str));
        ck->file_paths[i] = join(dir, e->str);
        if (!ck->file_names[i] || !ck->file_paths[i]) {
            r.st = attn__error(ATTN_ENOMEM, "attn_checkpoint_open: out of memory");
            goto done;
        }
    }
    for (const attn__json *f = files->child; f; f = f->next) {
        int known = !strcmp(f->key, MODEL) || (!strcmp(f->key, OPTIM) && ck->has_optim);
        for (int i = 0; i < ck->n_files && !known; i++) known = !strcmp(f->key, ck->file_names[i]);
        if (!known) {
            bad(&r, "\"files\" lists a file that is not part of the checkpoint");
            goto done;
        }
    }
done:
    attn__json_free(root);
    attn_free(text);
    attn_free(cpath);
    if (r.st) {
        int st2 = r.st;
        char msg[512];
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        attn_checkpoint_free(ck);
        return attn__error(st2, "%s", msg);
    }
    return ATTN_OK;
}

int attn_checkpoint_load_params(const attn_checkpoint *ck, attn_params *ps) {
    if (!ck || !ck->dir || !ps) return attn__error(ATTN_EINVAL, "attn_checkpoint_load_params: NULL or closed checkpoint");
    char *p = join(ck->dir, MODEL);
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
    char *p = join(ck->dir, OPTIM);
    if (!p) return attn__error(ATTN_ENOMEM, "out of memory");
    int st = attn_optim_load(opt, p);
    attn_free(p);
    return st;
}
