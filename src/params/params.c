/* The parameter store: named parameters carved out of one allocation for data and one for
 * gradients (so optimisers and clipping run over flat arrays), their initialisers, and
 * safetensors save/load by name with shape checks. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn/io.h"
#include "attn/params.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/ckdir.h"
#include "io/json.h"
#include "params/params_internal.h"

#define ALIGN_FLOATS 16 /* each parameter starts on a 64-byte boundary */

struct attn_params {
    attn_param **p;
    int n, cap;
    int64_t total;      /* floats, including alignment padding */
    void *data_raw, *grad_raw;
    float *data, *grad;
};

int attn_params_new(attn_params **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_params_new: NULL argument");
    if (!(*out = attn_calloc(1, sizeof(attn_params)))) return attn__error(ATTN_ENOMEM, "attn_params_new: out of memory");
    return ATTN_OK;
}

void attn_params_free(attn_params *ps) {
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) {
        attn_free(ps->p[i]->name);
        attn_free(ps->p[i]);
    }
    attn_free(ps->p);
    attn_free(ps->data_raw);
    attn_free(ps->grad_raw);
    attn_free(ps);
}

attn_init attn_init_fan(int64_t fan) {
    float k = fan > 0 ? (float)(1.0 / sqrt((double)fan)) : 0.0f;
    return attn_init_uniform(-k, k);
}

attn_param *attn_params_add(attn_params *ps, const char *name, int ndim, const int64_t *shape, attn_init init) {
    if (!ps || !name || !*name) {
        attn__error(ATTN_EINVAL, "attn_params_add: NULL store or empty name");
        return NULL;
    }
    if (ps->data) {
        attn__error(ATTN_EINVAL, "attn_params_add: '%s' declared after attn_params_alloc", name);
        return NULL;
    }
    if (attn_params_find(ps, name)) {
        attn__error(ATTN_EINVAL, "attn_params_add: duplicate parameter name '%s'", name);
        return NULL;
    }
    if (ndim < 0 || ndim > ATTN_PARAM_MAX_DIMS || (ndim && !shape)) {
        attn__error(ATTN_EINVAL, "attn_params_add: '%s' has %d dimensions (0 to %d allowed)", name, ndim, ATTN_PARAM_MAX_DIMS);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > INT32_MAX || numel > ((int64_t)1 << 40) / shape[i]) {
            attn__error(ATTN_EINVAL, "attn_params_add: '%s' dimension %d is %lld", name, i, (long long)shape[i]);
            return NULL;
        }
        numel *= shape[i];
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 32;
        attn_param **np = attn_malloc((size_t)cap * sizeof *np);
        if (!np) return NULL;
        if (ps->n) memcpy(np, ps->p, (size_t)ps->n * sizeof *np);
        attn_free(ps->p);
        ps->p = np;
        ps->cap = cap;
    }
    attn_param *p = attn_calloc(1, sizeof *p);
    size_t len = strlen(name);
    char *nm = attn_malloc(len + 1);
    if (!p || !nm) {
        attn_free(p);
        attn_free(nm);
        return NULL;
    }
    memcpy(nm, name, len + 1);
    p->name = nm;
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
    p->numel = numel;
    p->offset = ps->total;
    p->init = init;
    ps->total += (numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    ps->p[ps->n++] = p;
    return p;
}

static _Thread_local int64_t alloc_limit = -1; /* bytes of floats; -1: none */

void attn__params_limit(int64_t bytes) { alloc_limit = bytes; }

int attn__params_limit_file(const char *path) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return attn__error(ATTN_EIO, "%s: cannot open: %s", path ? path : "(null)", strerror(errno));
    int64_t n = fseek(f, 0, SEEK_END) ? -1 : (int64_t)ftell(f);
    fclose(f);
    if (n < 0) return attn__error(ATTN_EIO, "%s: cannot find its size", path);
    alloc_limit = n;
    return ATTN_OK;
}

static float *aligned_zeroed(int64_t n, void **raw) {
    size_t bytes = (size_t)n * sizeof(float) + 64;
    *raw = attn_malloc(bytes);
    if (!*raw) return NULL;
    memset(*raw, 0, bytes);
    return (float *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
}

int attn_params_alloc(attn_params *ps) {
    if (!ps) return attn__error(ATTN_EINVAL, "attn_params_alloc: NULL store");
    if (ps->data) return ATTN_OK;
    if (alloc_limit >= 0 && attn_params_numel(ps) > alloc_limit / (int64_t)sizeof(float))
        return attn__error(ATTN_EFORMAT, "the configuration asks for %lld parameters (%lld bytes) but the weights file holds %lld bytes",
                           (long long)attn_params_numel(ps), (long long)attn_params_numel(ps) * (long long)sizeof(float),
                           (long long)alloc_limit);
    int64_t n = ps->total ? ps->total : ALIGN_FLOATS;
    float *d = aligned_zeroed(n, &ps->data_raw);
    float *g = d ? aligned_zeroed(n, &ps->grad_raw) : NULL;
    if (!g) {
        attn_free(ps->data_raw);
        ps->data_raw = NULL;
        return attn__error(ATTN_ENOMEM, "attn_params_alloc: out of memory for %lld parameters", (long long)n);
    }
    ps->data = d;
    ps->grad = g;
    for (int i = 0; i < ps->n; i++) {
        ps->p[i]->data = d + ps->p[i]->offset;
        ps->p[i]->grad = g + ps->p[i]->offset;
    }
    return ATTN_OK;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int init_one(attn_param *p, uint64_t seed) {
    attn_rng r;
    attn_rng_seed(&r, attn_seed_mix(seed, fnv1a(p->name)));
    const attn_init *in = &p->init;
    float a = in->a, b = in->b;
    if (in->kind == ATTN_INIT_XAVIER_UNIFORM || in->kind == ATTN_INIT_XAVIER_NORMAL) {
        if (p->ndim < 2) return attn__error(ATTN_EINVAL, "parameter '%s': Xavier initialisation needs 2 or more dimensions", p->name);
        int64_t rf = 1;
        for (int i = 2; i < p->ndim; i++) rf *= p->shape[i];
        double fan_in = (double)(p->shape[1] * rf), fan_out = (double)(p->shape[0] * rf);
        double std = in->a * sqrt(2.0 / (fan_in + fan_out));
        if (in->kind == ATTN_INIT_XAVIER_UNIFORM) a = (float)(-std * sqrt(3.0)), b = (float)(std * sqrt(3.0));
        else a = 0.0f, b = (float)std;
    }
    switch (in->kind) {
    case ATTN_INIT_ZEROS: memset(p->data, 0, (size_t)p->numel * sizeof(float)); break;
    case ATTN_INIT_CONSTANT:
        for (int64_t i = 0; i < p->numel; i++) p->data[i] = a;
        break;
    case ATTN_INIT_UNIFORM:
    case ATTN_INIT_XAVIER_UNIFORM:
        for (int64_t i = 0; i < p->numel; i++) p->data[i] = a + (b - a) * attn_rng_uniform(&r);
        break;
    case ATTN_INIT_NORMAL:
    case ATTN_INIT_XAVIER_NORMAL:
        for (int64_t i = 0; i < p->numel; i++) p->data[i] = a + b * attn_rng_normal(&r);
        break;
    default: return attn__error(ATTN_EINVAL, "parameter '%s': unknown initialiser %d", p->name, (int)in->kind);
    }
    return ATTN_OK;
}

int attn_params_init(attn_params *ps, uint64_t seed) {
    int st = attn_params_alloc(ps);
    if (st) return st;
    for (int i = 0; i < ps->n; i++)
        if ((st = init_one(ps->p[i], seed))) return st;
    return ATTN_OK;
}

int attn_params_count(const attn_params *ps) { return ps ? ps->n : 0; }
attn_param *attn_params_at(const attn_params *ps, int i) { return ps && i >= 0 && i < ps->n ? ps->p[i] : NULL; }

attn_param *attn_params_find(const attn_params *ps, const char *name) {
    if (!ps || !name) return NULL;
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->p[i]->name, name)) return ps->p[i];
    return NULL;
}

int64_t attn_params_numel(const attn_params *ps) {
    int64_t n = 0;
    for (int i = 0; ps && i < ps->n; i++) n += ps->p[i]->numel;
    return n;
}

/* The raw allocations (with alignment gaps between parameters, which stay zero). */
float *attn_params_data(const attn_params *ps) { return ps ? ps->data : NULL; }
float *attn_params_grads(const attn_params *ps) { return ps ? ps->grad : NULL; }
int64_t attn__params_span(const attn_params *ps) { return ps ? ps->total : 0; }

void attn_params_zero_grad(attn_params *ps) {
    if (ps && ps->grad) memset(ps->grad, 0, (size_t)ps->total * sizeof(float));
}

int attn_params_save(const attn_params *ps, const char *path, int n_meta, const char *const *meta_kv) {
    if (!ps || !path) return attn__error(ATTN_EINVAL, "attn_params_save: NULL argument");
    if (!ps->data) return attn__error(ATTN_EINVAL, "attn_params_save: parameters not allocated");
    attn_st_writer *w;
    int st = attn_st_writer_new(&w);
    for (int i = 0; i < ps->n && !st; i++) {
        const attn_param *p = ps->p[i];
        st = attn_st_writer_add_f32(w, p->name, p->ndim, p->shape, p->data);
    }
    for (int i = 0; i < n_meta && !st; i++) st = attn_st_writer_set_metadata(w, meta_kv[2 * i], meta_kv[2 * i + 1]);
    if (!st) st = attn_st_writer_save(w, path);
    attn_st_writer_free(w);
    return st;
}

int attn_params_load(attn_params *ps, const char *path, int allow_extra) {
    if (!ps || !path) return attn__error(ATTN_EINVAL, "attn_params_load: NULL argument");
    int st = attn_params_alloc(ps);
    if (st) return st;
    attn_st *f;
    if ((st = attn_st_open(path, &f))) return st;
    if (!allow_extra)
        for (int i = 0; i < attn_st_count(f); i++)
            if (!attn_params_find(ps, attn_st_name(f, i))) {
                st = attn__error(ATTN_EINVAL, "%s: tensor '%s' matches no parameter of the model", path, attn_st_name(f, i));
                goto done;
            }
    /* Read into a scratch copy first, so a failure leaves the parameters as they were. */
    float *tmp = attn_malloc((size_t)(ps->total ? ps->total : 1) * sizeof(float));
    if (!tmp) {
        st = ATTN_ENOMEM;
        goto done;
    }
    for (int i = 0; i < ps->n && !st; i++) {
        const attn_param *p = ps->p[i];
        if (p->optional && attn_st_find(f, p->name) < 0) memcpy(tmp + p->offset, p->data, (size_t)p->numel * sizeof(float));
        else st = attn_st_read_f32(f, p->name, p->ndim, p->shape, tmp + p->offset);
    }
    if (!st)
        for (int i = 0; i < ps->n; i++) memcpy(ps->p[i]->data, tmp + ps->p[i]->offset, (size_t)ps->p[i]->numel * sizeof(float));
    attn_free(tmp);
done:
    attn_st_free(f);
    return st;
}

int attn__params_write(const void *ps, const char *path) { return attn_params_save(ps, path, 0, NULL); }

int attn__model_save(const char *dir, const attn_params *ps, const char *model_json, int n_files, const attn_ckpt_file *files) {
    if (!dir || !ps || n_files < 0 || n_files > 8 || (n_files && !files)) return attn__error(ATTN_EINVAL, "model save: bad argument");
    attn__ck_file cf[9] = {{ATTN__CK_MODEL, attn__params_write, ps, NULL, NULL, 0, 0}};
    for (int i = 0; i < n_files; i++) cf[i + 1] = (attn__ck_file){files[i].name, NULL, NULL, files[i].path, files[i].data, files[i].size, 1};
    const char *keys[1] = {"model"}, *values[1] = {model_json};
    return attn__ck_write(dir, 1, keys, values, n_files + 1, cf);
}

int attn__model_load(const char *dir, int (*make)(const char *json, void *ud, attn_params **ps), void *ud) {
    if (!dir || !make) return attn__error(ATTN_EINVAL, "model load: NULL argument");
    attn__ck ck;
    int st = attn__ck_open(dir, &ck);
    if (st) return st;
    attn_params *ps = NULL;
    char *json = attn__ck_text(&ck, attn__ck_member(&ck, "model")), *weights = attn__ck_file_path(dir, ATTN__CK_MODEL);
    if (!json || !weights) st = attn__error(ATTN_ENOMEM, "%s: out of memory", dir);
    else if ((st = attn__params_limit_file(weights)) || (st = make(json, ud, &ps)) || (attn__params_limit(-1), 0) ||
             (st = attn_params_load(ps, weights, 0)))
        st = attn__error(st == ATTN_ENOMEM ? st : ATTN_EFORMAT, "%s: %s", dir, attn_last_error());
    attn__params_limit(-1);
    attn_free(json), attn_free(weights);
    attn__ck_close(&ck);
    return st;
}

int attn__model_json_command(const char *model_json, const char *command, char **out) {
    size_t n = model_json ? strlen(model_json) : 0;
    if (!out || n < 2 || model_json[n - 1] != '}') return attn__error(ATTN_EINVAL, "model json: not an object");
    attn__sb sb = {0};
    attn__sb_put(&sb, model_json, n - 1); /* the object, "command" added before its '}' */
    if (command) attn__sb_str(&sb, ", \"command\": "), attn__json_escape(&sb, command, 0);
    attn__sb_str(&sb, "}");
    if (!(*out = attn__sb_take(&sb, NULL))) return attn__error(ATTN_ENOMEM, "model json: out of memory");
    return ATTN_OK;
}
