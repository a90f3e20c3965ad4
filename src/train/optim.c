/* Optimisers (SGD with momentum, Adam, AdamW) and gradient clipping by global norm, over the
 * parameter store's flat arrays. The formulas are PyTorch 1.13's torch.optim single-tensor
 * code, operation by operation in float32, with Python-float hyper-parameters rounded to
 * float where PyTorch's scalar ops round them; bias corrections in double as in Python.
 * Work is split into fixed chunks of parameters, so results do not depend on the thread
 * count (every element's update is independent; the norm's partial sums are added in chunk
 * order).
 *
 * PyTorch's CPU kernels for `a + alpha * b` (add_ with alpha, addcmul_) are compiled with FMA
 * contraction on x86-64 (its AVX2/AVX-512 kernel builds), so each such step is one fused
 * multiply-add, rounded once: fmaf() here, which makes the updates bitwise equal to PyTorch's
 * (checked against its own numbers in tests/test_train.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/io.h"
#include "attn/train.h"
#include "core/internal.h"
#include "kernels/kernels.h"
#include "train/train_internal.h"

#define CHUNK 16384 /* floats per task */

typedef struct {
    int64_t off, n; /* a piece of one parameter, in floats from the allocations' start */
    float wd;       /* this parameter's weight decay (0 for no_decay) */
} chunk;

struct attn_optim {
    attn_params *ps;
    attn_optim_config cfg;
    int64_t steps;
    int nstate;          /* state arrays: 0, 1 (momentum) or 2 (exp_avg, exp_avg_sq) */
    void *raw;
    float *s1, *s2;      /* (span) each */
    chunk *chunks;
    int nchunks;
};

attn_optim_config attn_optim_defaults(attn_optim_kind kind) {
    attn_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = kind == ATTN_OPTIM_SGD ? 0.1 : 1e-3;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = kind == ATTN_OPTIM_ADAMW ? 1e-2 : 0.0;
    return c;
}

static const char *const NAMES[] = {"sgd", "adam", "adamw"};
const char *attn_optim_name(attn_optim_kind kind) { return (unsigned)kind <= ATTN_OPTIM_ADAMW ? NAMES[kind] : "?"; }
int attn_optim_parse(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, NAMES[i])) return i;
    return -1;
}

static int check_config(const attn_optim_config *c) {
    if ((unsigned)c->kind > ATTN_OPTIM_ADAMW) return attn__error(ATTN_EINVAL, "optimiser: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0.0)) return attn__error(ATTN_EINVAL, "optimiser: lr %g must be >= 0", c->lr);
    if (!(c->weight_decay >= 0.0)) return attn__error(ATTN_EINVAL, "optimiser: weight_decay %g must be >= 0", c->weight_decay);
    if (c->kind == ATTN_OPTIM_SGD) {
        if (!(c->momentum >= 0.0)) return attn__error(ATTN_EINVAL, "SGD: momentum %g must be >= 0", c->momentum);
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            return attn__error(ATTN_EINVAL, "SGD: Nesterov momentum requires a momentum and zero dampening");
    } else {
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
            return attn__error(ATTN_EINVAL, "%s: beta1 %g must be in [0, 1)", attn_optim_name(c->kind), c->beta1);
        if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return attn__error(ATTN_EINVAL, "%s: beta2 %g must be in [0, 1)", attn_optim_name(c->kind), c->beta2);
        if (!(c->eps >= 0.0)) return attn__error(ATTN_EINVAL, "%s: eps %g must be >= 0", attn_optim_name(c->kind), c->eps);
    }
    return ATTN_OK;
}

int attn_optim_new(const attn_optim_config *cfg, attn_params *ps, attn_optim **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_optim_new: NULL argument");
    *out = NULL;
    if (!ps || !cfg) return attn__error(ATTN_EINVAL, "attn_optim_new: NULL argument");
    int st = check_config(cfg);
    if (st || (st = attn_params_alloc(ps))) return st;
    attn_optim *o = attn_calloc(1, sizeof *o);
    if (!o) return attn__error(ATTN_ENOMEM, "attn_optim_new: out of memory");
    o->ps = ps;
    o->cfg = *cfg;
    o->nstate = cfg->kind == ATTN_OPTIM_SGD ? (cfg->momentum != 0.0) : 2;
    int64_t span = attn__params_span(ps);
    if (o->nstate) {
        size_t bytes = (size_t)(span * o->nstate) * sizeof(float) + 64;
        o->raw = attn_malloc(bytes);
        if (!o->raw) goto fail;
        memset(o->raw, 0, bytes);
        o->s1 = (float *)(((uintptr_t)o->raw + 63) & ~(uintptr_t)63);
        o->s2 = o->nstate == 2 ? o->s1 + span : NULL;
    }
    int n = 0, np = attn_params_count(ps);
    for (int i = 0; i < np; i++) {
        const attn_param *p = attn_params_at(ps, i);
        if (!p->frozen) n += (int)((p->numel + CHUNK - 1) / CHUNK);
    }
    o->chunks = attn_malloc((size_t)(n ? n : 1) * sizeof *o->chunks);
    if (!o->chunks) goto fail;
    for (int i = 0; i < np; i++) {
        const attn_param *p = attn_params_at(ps, i);
        if (p->frozen) continue;
        for (int64_t k = 0; k < p->numel; k += CHUNK) {
            chunk *c = &o->chunks[o->nchunks++];
            c->off = p->offset + k;
            c->n = p->numel - k < CHUNK ? p->numel - k : CHUNK;
            c->wd = p->no_decay ? 0.0f : (float)cfg->weight_decay;
        }
    }
    *out = o;
    return ATTN_OK;
fail:
    attn_optim_free(o);
    return attn__error(ATTN_ENOMEM, "attn_optim_new: out of memory");
}

void attn_optim_free(attn_optim *o) {
    if (!o) return;
    attn_free(o->raw);
    attn_free(o->chunks);
    attn_free(o);
}

int64_t attn_optim_steps(const attn_optim *o) { return o ? o->steps : 0; }
const attn_optim_config *attn_optim_get_config(const attn_optim *o) { return o ? &o->cfg : NULL; }

/* The per-step scalars, rounded as PyTorch rounds them. */
typedef struct {
    const attn_optim *o;
    float *p, *g;
    attn__sgd_k sgd;
    attn__adam_k adam;
    double lr;
    const attn__kernels *kern; /* the dispatch table's update loops */
} step_ctx;

static void step_task(void *ctx, int task, int thread) {
    (void)thread;
    const step_ctx *s = ctx;
    const attn_optim *o = s->o;
    const chunk *c = &o->chunks[task];
    float *p = s->p + c->off, *g = s->g + c->off;
    int64_t n = c->n;
    if (o->cfg.kind == ATTN_OPTIM_SGD) {
        attn__sgd_k k = s->sgd;
        k.wd = c->wd;
        s->kern->sgd(p, g, o->s1 ? o->s1 + c->off : NULL, n, &k);
        return;
    }
    attn__adam_k k = s->adam;
    if (o->cfg.kind == ATTN_OPTIM_ADAMW && c->wd != 0.0f) k.decay = (float)(1.0 - s->lr * o->cfg.weight_decay);
    if (o->cfg.kind == ATTN_OPTIM_ADAM) k.l2 = c->wd;
    s->kern->adam(p, g, o->s1 + c->off, o->s2 + c->off, n, &k);
}

int attn_optim_step(attn_optim *o, double lr) {
    if (!o) return attn__error(ATTN_EINVAL, "attn_optim_step: NULL optimiser");
    if (!(lr >= 0.0) || !isfinite(lr)) return attn__error(ATTN_EINVAL, "attn_optim_step: learning rate %g", lr);
    const attn_optim_config *c = &o->cfg;
    step_ctx s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.p = attn_params_data(o->ps);
    s.g = attn_params_grads(o->ps);
    s.lr = lr;
    s.kern = attn__kern(); /* every path gives the same bits (optim_kernels.h) */
    if (c->kind == ATTN_OPTIM_SGD) {
        s.sgd.momentum = (float)c->momentum;
        s.sgd.one_minus_damp = (float)(1.0 - c->dampening);
        s.sgd.neg_lr = (float)-lr;
        s.sgd.first = o->steps == 0;
        s.sgd.nesterov = c->nesterov;
    } else {
        double t = (double)(o->steps + 1);
        double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
        s.adam.decay = 1.0f;
        s.adam.beta1 = (float)c->beta1;
        s.adam.omb1 = (float)(1.0 - c->beta1);
        s.adam.beta2 = (float)c->beta2;
        s.adam.omb2 = (float)(1.0 - c->beta2);
        s.adam.bc2_sqrt = (float)sqrt(bc2);
        s.adam.eps = (float)c->eps;
        s.adam.neg_step = (float)-(lr / bc1);
    }
    attn__parallel(o->nchunks, step_task, &s);
    o->steps++;
    return ATTN_OK;
}

/* ---- State files ------------------------------------------------------------------------- */

static const char *state_name(const attn_optim *o, int k) {
    if (o->cfg.kind == ATTN_OPTIM_SGD) return "momentum_buffer";
    return k ? "exp_avg_sq" : "exp_avg";
}

int attn_optim_save(const attn_optim *o, const char *path) {
    if (!o || !path) return attn__error(ATTN_EINVAL, "attn_optim_save: NULL argument");
    attn_st_writer *w;
    int st = attn_st_writer_new(&w);
    if (st) return st;
    char buf[64];
    st = attn_st_writer_set_metadata(w, "optimizer", attn_optim_name(o->cfg.kind));
    snprintf(buf, sizeof buf, "%lld", (long long)o->steps);
    if (!st) st = attn_st_writer_set_metadata(w, "step", buf);
    for (int i = 0; i < attn_params_count(o->ps) && !st; i++) {
        const attn_param *p = attn_params_at(o->ps, i);
        if (p->frozen) continue;
        for (int k = 0; k < o->nstate && !st; k++) {
            char name[512];
            snprintf(name, sizeof name, "%s.%s", p->name, state_name(o, k));
            st = attn_st_writer_add_f32(w, name, p->ndim, p->shape, (k ? o->s2 : o->s1) + p->offset);
        }
    }
    if (!st) st = attn_st_writer_save(w, path);
    attn_st_writer_free(w);
    return st;
}

int attn_optim_load(attn_optim *o, const char *path) {
    if (!o || !path) return attn__error(ATTN_EINVAL, "attn_optim_load: NULL argument");
    attn_st *f;
    int st = attn_st_open(path, &f);
    if (st) return st;
    const char *kind = attn_st_metadata(f, "optimizer"), *step = attn_st_metadata(f, "step");
    int64_t span = attn__params_span(o->ps);
    float *tmp = NULL;
    if (!kind || attn_optim_parse(kind) != (int)o->cfg.kind) {
        st = attn__error(ATTN_EFORMAT, "%s: optimizer state of kind '%s', expected '%s'", path, kind ? kind : "(none)",
                         attn_optim_name(o->cfg.kind));
        goto done;
    }
    char *end = NULL;
    long long steps = step ? strtoll(step, &end, 10) : -1;
    if (!step || !*step || *end || steps < 0) {
        st = attn__error(ATTN_EFORMAT, "%s: missing or bad \"step\" metadata", path);
        goto done;
    }
    int expect = 0;
    for (int i = 0; i < attn_params_count(o->ps); i++) expect += attn_params_at(o->ps, i)->frozen ? 0 : o->nstate;
    if (attn_st_count(f) != expect) {
        st = attn__error(ATTN_EFORMAT, "%s: %d tensors, expected %d for this model and optimizer", path, attn_st_count(f), expect);
        goto done;
    }
    if (o->nstate) {
        tmp = attn_calloc((size_t)(span * o->nstate), sizeof(float));
        if (!tmp) {
            st = ATTN_ENOMEM;
            goto done;
        }
    }
    for (int i = 0; i < attn_params_count(o->ps) && !st; i++) {
        const attn_param *p = attn_params_at(o->ps, i);
        if (p->frozen) continue;
        for (int k = 0; k < o->nstate && !st; k++) {
            char name[512];
            snprintf(name, sizeof name, "%s.%s", p->name, state_name(o, k));
            st = attn_st_read_f32(f, name, p->ndim, p->shape, tmp + k * span + p->offset);
        }
    }
    if (!st) {
        if (o->nstate) memcpy(o->s1, tmp, (size_t)(span * o->nstate) * sizeof(float));
        o->steps = steps;
    }
done:
    attn_free(tmp);
    attn_st_free(f);
    return st;
}

/* ---- Clipping ---------------------------------------------------------------------------- */

typedef struct {
    const float *g;
    double *part;
    int64_t n;
    float coef;
    float *gm;
} norm_ctx;

static void sumsq_task(void *ctx, int task, int thread) {
    (void)thread;
    norm_ctx *c = ctx;
    int64_t i0 = (int64_t)task * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
    double s = 0.0;
    for (int64_t i = i0; i < i1; i++) s += (double)c->g[i] * c->g[i];
    c->part[task] = s;
}

static void scale_task(void *ctx, int task, int thread) {
    (void)thread;
    norm_ctx *c = ctx;
    int64_t i0 = (int64_t)task * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
    for (int64_t i = i0; i < i1; i++) c->gm[i] = c->gm[i] * c->coef;
}

int attn_clip_grad_norm(attn_params *ps, float max_norm, float *total_norm) {
    if (!ps) return attn__error(ATTN_EINVAL, "attn_clip_grad_norm: NULL store");
    if (!(max_norm > 0.0f)) return attn__error(ATTN_EINVAL, "attn_clip_grad_norm: max_norm %g must be > 0", (double)max_norm);
    float *g = attn_params_grads(ps);
    int64_t n = attn__params_span(ps);
    if (!g || n == 0) {
        if (total_norm) *total_norm = 0.0f;
        return ATTN_OK;
    }
    int ntask = (int)((n + CHUNK - 1) / CHUNK);
    double part_small[1024]; /* up to 16M parameters: no allocation in a training step */
    double *part = ntask <= 1024 ? part_small : attn_malloc((size_t)ntask * sizeof(double));
    if (!part) return attn__error(ATTN_ENOMEM, "attn_clip_grad_norm: out of memory");
    norm_ctx c = {g, part, n, 1.0f, g};
    attn__parallel(ntask, sumsq_task, &c);
    double s = 0.0;
    for (int t = 0; t < ntask; t++) s += part[t];
    if (part != part_small) attn_free(part);
    float total = (float)sqrt(s);
    if (total_norm) *total_norm = total;
    if (!isfinite(total)) return ATTN_OK;
    float coef = max_norm / (total + 1e-6f); /* max_norm / (total_norm + 1e-6), clamped to 1 */
    if (coef < 1.0f) {
        c.coef = coef;
        attn__parallel(ntask, scale_task, &c);
    }
    return ATTN_OK;
}
