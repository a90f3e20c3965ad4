/* Training machinery: optimisers, clipping, schedules and cross-entropy against PyTorch 1.13
 * (tests/data/train/refs.safetensors, written by tools/gen_train_refs.py); the parameter
 * store (initialisers, names, save/load); batching; progress lines; and, on a small GRU
 * language model trained with dropout, AdamW, clipping and a warm-up schedule: two runs give
 * bitwise-identical weights (also with 1 and 2 threads), and a run stopped at a checkpoint
 * and resumed from it ends bitwise where the uninterrupted run ends. Then checkpoints that
 * are truncated, altered, incomplete or of another model: clear errors, never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/autograd.h"
#include "attn/io.h"
#include "attn/train.h"
#include "testutil.h"

#define REFS "data/train/refs.safetensors"
#define STEPS 6

static float *ref(const attn_st *st, const char *name, attn_array *a) {
    int rc = attn_st_get_f32(st, name, a);
    CHECK(rc == ATTN_OK, "reference %s: %s", name, attn_last_error());
    return rc == ATTN_OK ? a->data : NULL;
}

/* ---- Against PyTorch -------------------------------------------------------------------- */

typedef struct {
    const char *name;
    attn_optim_kind kind;
    double lr, momentum, dampening;
    int nesterov;
    double beta1, beta2, eps, wd;
    int use_lrs;
} optim_case;

static const optim_case OPTIM_CASES[] = {
    {"sgd", ATTN_OPTIM_SGD, 0.1, 0, 0, 0, 0.9, 0.999, 1e-8, 0, 0},
    {"sgd_momentum", ATTN_OPTIM_SGD, 0.05, 0.9, 0.1, 0, 0.9, 0.999, 1e-8, 0.01, 0},
    {"sgd_nesterov", ATTN_OPTIM_SGD, 0.05, 0.8, 0, 1, 0.9, 0.999, 1e-8, 0.001, 0},
    {"adam", ATTN_OPTIM_ADAM, 1e-2, 0, 0, 0, 0.9, 0.999, 1e-8, 0, 0},
    {"adam_l2", ATTN_OPTIM_ADAM, 3e-3, 0, 0, 0, 0.8, 0.95, 1e-6, 0.1, 0},
    {"adamw", ATTN_OPTIM_ADAMW, 1e-2, 0, 0, 0, 0.9, 0.98, 1e-9, 0.1, 0},
    {"adamw_lrs", ATTN_OPTIM_ADAMW, 1e-2, 0, 0, 0, 0.9, 0.999, 1e-8, 0.01, 1},
};

static void test_optim_refs(const attn_st *st) {
    attn_array p0 = {0}, grads = {0}, lrs = {0};
    if (!ref(st, "p0", &p0) || !ref(st, "grads", &grads) || !ref(st, "lrs", &lrs)) return;
    for (size_t c = 0; c < sizeof OPTIM_CASES / sizeof OPTIM_CASES[0]; c++) {
        const optim_case *oc = &OPTIM_CASES[c];
        char name[64];
        snprintf(name, sizeof name, "%s.params", oc->name);
        attn_array want = {0};
        if (!ref(st, name, &want)) continue;
        attn_params *ps; CHECK(attn_params_new(&ps) == ATTN_OK, "%s", attn_last_error());
        attn_param *p = attn_params_add(ps, "p", 2, (int64_t[]){3, 5}, attn_init_zeros());
        attn_params_alloc(ps);
        memcpy(p->data, p0.data, 15 * sizeof(float));
        attn_optim_config cfg = attn_optim_defaults(oc->kind);
        cfg.lr = oc->lr, cfg.momentum = oc->momentum, cfg.dampening = oc->dampening, cfg.nesterov = oc->nesterov;
        cfg.beta1 = oc->beta1, cfg.beta2 = oc->beta2, cfg.eps = oc->eps, cfg.weight_decay = oc->wd;
        attn_optim *o; CHECK(attn_optim_new(&cfg, ps, &o) == ATTN_OK, "%s", attn_last_error());
        CHECK(o != NULL, "%s: %s", oc->name, attn_last_error());
        for (int s = 0; o && s < STEPS; s++) {
            memcpy(p->grad, (float *)grads.data + s * 15, 15 * sizeof(float));
            double lr = oc->use_lrs ? (double)((float *)lrs.data)[s] : cfg.lr;
            /* The reference used the Python floats; lrs holds them rounded to float32, which
             * PyTorch rounds the same way (lr enters the update as a float32 scalar). */
            CHECK(attn_optim_step(o, lr) == ATTN_OK, "step");
            char what[96];
            snprintf(what, sizeof what, "%s step %d", oc->name, s + 1);
            tu_close(what, p->data, (float *)want.data + s * 15, 15, 0, 0); /* bitwise PyTorch's */
        }
        CHECK(attn_optim_steps(o) == STEPS, "step count");
        attn_optim_free(o);
        attn_params_free(ps);
        attn_array_free(&want);
    }
    attn_array_free(&p0), attn_array_free(&grads), attn_array_free(&lrs);
}

static void test_clip_refs(const attn_st *st) {
    attn_array g0 = {0}, g1 = {0};
    if (!ref(st, "clip.g0", &g0) || !ref(st, "clip.g1", &g1)) return;
    const char *keys[2] = {"clip.1", "clip.100"};
    float maxn[2] = {1.0f, 100.0f};
    for (int k = 0; k < 2; k++) {
        attn_params *ps; CHECK(attn_params_new(&ps) == ATTN_OK, "%s", attn_last_error());
        attn_param *a = attn_params_add(ps, "a", 2, (int64_t[]){4, 3}, attn_init_zeros());
        attn_param *b = attn_params_add(ps, "b", 1, (int64_t[]){5}, attn_init_zeros());
        attn_params_alloc(ps);
        memcpy(a->grad, g0.data, 12 * sizeof(float));
        memcpy(b->grad, g1.data, 5 * sizeof(float));
        float total = -1;
        CHECK(attn_clip_grad_norm(ps, maxn[k], &total) == ATTN_OK, "clip");
        char name[64];
        attn_array t = {0}, w0 = {0}, w1 = {0};
        snprintf(name, sizeof name, "%s.total", keys[k]);
        if (ref(st, name, &t)) tu_close("clip total", &total, t.data, 1, 1e-6, 0);
        snprintf(name, sizeof name, "%s.g0", keys[k]);
        if (ref(st, name, &w0)) tu_close("clip g0", a->grad, w0.data, 12, 2e-6, 1e-8);
        snprintf(name, sizeof name, "%s.g1", keys[k]);
        if (ref(st, name, &w1)) tu_close("clip g1", b->grad, w1.data, 5, 2e-6, 1e-8);
        attn_array_free(&t), attn_array_free(&w0), attn_array_free(&w1);
        attn_params_free(ps);
    }
    attn_array_free(&g0), attn_array_free(&g1);
}

static void test_sched_refs(const attn_st *st) {
    struct {
        const char *name;
        attn_sched s;
        int n;
    } cases[4] = {
        {"sched.cosine_w0", {ATTN_SCHED_COSINE, 1e-2, 0, 20, 1e-4}, 21},
        {"sched.cosine_w5", {ATTN_SCHED_COSINE, 1e-2, 5, 20, 1e-4}, 21},
        {"sched.linear_w5", {ATTN_SCHED_LINEAR, 1e-2, 5, 20, 1e-4}, 24},
        {"sched.noam", {0}, 24},
    };
    cases[3].s = attn_sched_noam(16, 4, 2.0);
    for (int c = 0; c < 4; c++) {
        attn_array want = {0};
        if (!ref(st, cases[c].name, &want)) continue;
        float got[24];
        for (int i = 0; i < cases[c].n; i++) got[i] = (float)attn_sched_lr(&cases[c].s, i);
        tu_close(cases[c].name, got, want.data, (size_t)cases[c].n, 1e-5, 1e-9);
        attn_array_free(&want);
    }
    attn_sched cst = {ATTN_SCHED_CONSTANT, 0.5, 0, 0, 0};
    CHECK(attn_sched_lr(&cst, 0) == 0.5 && attn_sched_lr(&cst, 1000) == 0.5, "constant");
    CHECK(attn_sched_parse("cosine") == ATTN_SCHED_COSINE && attn_sched_parse("x") == -1, "parse");
    CHECK(!strcmp(attn_sched_name(ATTN_SCHED_INV_SQRT), "inv_sqrt"), "name");
}

static void test_ce_ref(const attn_st *st) {
    attn_array x = {0}, t = {0}, l = {0}, gr = {0};
    if (!ref(st, "ce.logits", &x) || !ref(st, "ce.targets", &t) || !ref(st, "ce.loss", &l) || !ref(st, "ce.grad", &gr)) return;
    int32_t tg[6];
    for (int i = 0; i < 6; i++) tg[i] = (int32_t)((float *)t.data)[i];
    float grad[30] = {0};
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_var *lg = attn_graph_leaf(g, 2, (int64_t[]){6, 5}, x.data, grad);
    attn_var *loss = attn_ag_cross_entropy(g, lg, tg, -100, 0.15f);
    CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "cross-entropy");
    if (loss) tu_close("ce loss", loss->data, l.data, 1, 1e-6, 0);
    tu_close("ce grad", grad, gr.data, 30, 1e-5, 1e-7);
    attn_graph_free(g);
    attn_array_free(&x), attn_array_free(&t), attn_array_free(&l), attn_array_free(&gr);
}

/* ---- Parameter store ------------------------------------------------------------------- */

static void test_params(const char *dir) {
    attn_params *ps; CHECK(attn_params_new(&ps) == ATTN_OK, "%s", attn_last_error());
    attn_param *w = attn_params_add(ps, "enc.weight", 2, (int64_t[]){30, 20}, attn_init_fan(20));
    attn_param *x = attn_params_add(ps, "enc.xavier", 2, (int64_t[]){30, 20}, attn_init_xavier_uniform(1.0f));
    attn_param *n = attn_params_add(ps, "emb.weight", 2, (int64_t[]){50, 8}, attn_init_normal(0.0f, 1.0f));
    attn_param *one = attn_params_add(ps, "ln.weight", 1, (int64_t[]){7}, attn_init_constant(1.0f));
    CHECK(w && x && n && one, "add");
    CHECK(attn_params_add(ps, "enc.weight", 1, (int64_t[]){3}, attn_init_zeros()) == NULL, "duplicate name accepted");
    CHECK(attn_params_add(ps, "", 1, (int64_t[]){3}, attn_init_zeros()) == NULL, "empty name accepted");
    CHECK(attn_params_add(ps, "bad", 1, (int64_t[]){0}, attn_init_zeros()) == NULL, "zero dimension accepted");
    CHECK(attn_params_init(ps, 7) == ATTN_OK, "init");
    CHECK(attn_params_count(ps) == 4 && attn_params_numel(ps) == 600 + 600 + 400 + 7, "count");
    CHECK(attn_params_find(ps, "emb.weight") == n && attn_params_find(ps, "nope") == NULL, "find");
    CHECK(((uintptr_t)x->data & 63) == 0 && ((uintptr_t)n->grad & 63) == 0, "alignment");
    CHECK(attn_params_add(ps, "late", 1, (int64_t[]){3}, attn_init_zeros()) == NULL, "added after alloc");
    float k = 1.0f / sqrtf(20.0f), kx = sqrtf(6.0f / 50.0f), mx = 0, mxx = 0;
    double mean = 0, var = 0;
    for (int i = 0; i < 600; i++) mx = fmaxf(mx, fabsf(w->data[i])), mxx = fmaxf(mxx, fabsf(x->data[i]));
    for (int i = 0; i < 400; i++) mean += n->data[i] / 400.0;
    for (int i = 0; i < 400; i++) var += (n->data[i] - mean) * (n->data[i] - mean) / 400.0;
    CHECK(mx <= k && mx > 0.9f * k, "uniform(-1/sqrt(fan)): max %g, bound %g", (double)mx, (double)k);
    CHECK(mxx <= kx && mxx > 0.9f * kx, "xavier: max %g, bound %g", (double)mxx, (double)kx);
    CHECK(fabs(mean) < 0.15 && fabs(var - 1.0) < 0.2, "normal: mean %g var %g", mean, var);
    CHECK(one->data[0] == 1.0f && one->data[6] == 1.0f, "constant");
    /* Per-name generators: another store with an extra parameter first gives the same values. */
    attn_params *ps2; CHECK(attn_params_new(&ps2) == ATTN_OK, "%s", attn_last_error());
    attn_params_add(ps2, "other", 1, (int64_t[]){5}, attn_init_normal(0, 1));
    attn_param *w2 = attn_params_add(ps2, "enc.weight", 2, (int64_t[]){30, 20}, attn_init_fan(20));
    attn_params_init(ps2, 7);
    CHECK(!memcmp(w->data, w2->data, 600 * sizeof(float)), "initialisation depends on other parameters");
    attn_params_init(ps2, 8);
    CHECK(memcmp(w->data, w2->data, 600 * sizeof(float)) != 0, "seed has no effect");
    attn_params_free(ps2);
    /* Save, load into a fresh store, errors. */
    char path[512];
    snprintf(path, sizeof path, "%s/params.safetensors", dir);
    const char *meta[2] = {"note", "test"};
    CHECK(attn_params_save(ps, path, 1, meta) == ATTN_OK, "save: %s", attn_last_error());
    attn_params *ps3; CHECK(attn_params_new(&ps3) == ATTN_OK, "%s", attn_last_error());
    attn_param *w3 = attn_params_add(ps3, "enc.weight", 2, (int64_t[]){30, 20}, attn_init_zeros());
    attn_params_add(ps3, "enc.xavier", 2, (int64_t[]){30, 20}, attn_init_zeros());
    attn_params_add(ps3, "emb.weight", 2, (int64_t[]){50, 8}, attn_init_zeros());
    attn_params_add(ps3, "ln.weight", 1, (int64_t[]){7}, attn_init_zeros());
    CHECK(attn_params_load(ps3, path, 0) == ATTN_OK, "load: %s", attn_last_error());
    CHECK(!memcmp(w3->data, w->data, 600 * sizeof(float)), "loaded values");
    attn_params_free(ps3);
    CHECK(attn_params_new(&ps3) == ATTN_OK, "%s", attn_last_error());
    attn_params_add(ps3, "enc.weight", 2, (int64_t[]){30, 20}, attn_init_zeros());
    CHECK(attn_params_load(ps3, path, 0) == ATTN_EINVAL, "extra tensors accepted: %s", attn_last_error());
    CHECK(attn_params_load(ps3, path, 1) == ATTN_OK, "allow_extra: %s", attn_last_error());
    attn_params_free(ps3);
    CHECK(attn_params_new(&ps3) == ATTN_OK, "%s", attn_last_error());
    w3 = attn_params_add(ps3, "enc.weight", 2, (int64_t[]){20, 30}, attn_init_constant(3.0f));
    attn_params_init(ps3, 0);
    CHECK(attn_params_load(ps3, path, 1) == ATTN_ESHAPE && w3->data[0] == 3.0f, "shape mismatch: %s", attn_last_error());
    attn_params_free(ps3);
    CHECK(attn_params_new(&ps3) == ATTN_OK, "%s", attn_last_error());
    attn_params_add(ps3, "missing", 1, (int64_t[]){3}, attn_init_zeros());
    CHECK(attn_params_load(ps3, path, 1) == ATTN_ENOTFOUND, "missing tensor: %s", attn_last_error());
    attn_params_free(ps3);
    attn_params_free(ps);
    unlink(path);
}

/* ---- Batching and progress --------------------------------------------------------------- */

static void test_batching(void) {
    enum { N = 103 };
    int ln[N], seen[N];
    attn_rng r;
    attn_rng_seed(&r, 4);
    for (int i = 0; i < N; i++) ln[i] = 1 + (int)(attn_rng_u32(&r) % 30);
    attn_batches b1, b2, b3;
    CHECK(attn_batches_make(ln, N, 8, 0, 4, 11, &b1) == ATTN_OK, "batches");
    CHECK(attn_batches_make(ln, N, 8, 0, 4, 11, &b2) == ATTN_OK, "batches");
    CHECK(attn_batches_make(ln, N, 8, 0, 4, 12, &b3) == ATTN_OK, "batches");
    CHECK(b1.n_batches == b2.n_batches && !memcmp(b1.index, b2.index, N * sizeof(int)), "not deterministic");
    CHECK(memcmp(b1.index, b3.index, N * sizeof(int)) != 0, "seed has no effect");
    memset(seen, 0, sizeof seen);
    int ok = b1.offsets[0] == 0 && b1.offsets[b1.n_batches] == N, pad_bucket = 0;
    for (int i = 0; i < N; i++) seen[b1.index[i]]++;
    for (int i = 0; i < N; i++) ok &= seen[i] == 1;
    for (int b = 0; b < b1.n_batches; b++) {
        int lo = b1.offsets[b], hi = b1.offsets[b + 1], mx = 0;
        ok &= hi > lo && hi - lo <= 8;
        for (int i = lo; i < hi; i++) mx = ln[b1.index[i]] > mx ? ln[b1.index[i]] : mx;
        for (int i = lo; i < hi; i++) pad_bucket += mx - ln[b1.index[i]];
    }
    CHECK(ok, "batches are not a partition into sizes <= 8");
    attn_batches nb;
    attn_batches_make(ln, N, 8, 0, 1, 11, &nb);
    int pad_plain = 0;
    for (int b = 0; b < nb.n_batches; b++) {
        int lo = nb.offsets[b], hi = nb.offsets[b + 1], mx = 0;
        for (int i = lo; i < hi; i++) mx = ln[nb.index[i]] > mx ? ln[nb.index[i]] : mx;
        for (int i = lo; i < hi; i++) pad_plain += mx - ln[nb.index[i]];
    }
    CHECK(pad_bucket * 2 < pad_plain, "bucketing does not reduce padding: %d vs %d", pad_bucket, pad_plain);
    attn_batches tok;
    attn_batches_make(ln, N, 64, 60, 8, 3, &tok);
    ok = 1;
    for (int b = 0; b < tok.n_batches; b++) {
        int lo = tok.offsets[b], hi = tok.offsets[b + 1], mx = 0;
        for (int i = lo; i < hi; i++) mx = ln[tok.index[i]] > mx ? ln[tok.index[i]] : mx;
        ok &= (hi - lo == 1) || mx * (hi - lo) <= 60;
    }
    CHECK(ok, "max_tokens exceeded");
    attn_batches_free(&b1), attn_batches_free(&b2), attn_batches_free(&b3), attn_batches_free(&nb), attn_batches_free(&tok);
    CHECK(attn_seed_mix(1, 2) != attn_seed_mix(1, 3) && attn_seed_mix(1, 2) == attn_seed_mix(1, 2), "seed_mix");
}

static void test_progress(void) {
    char buf[256];
    attn_progress p = {1, 10, 1200, 5000, 2.31454, 4.2e-4, 12345.4, 3725};
    attn_progress_format(buf, sizeof buf, &p);
    CHECK(!strcmp(buf, "epoch 2/10 step 1200/5000 loss 2.3145 lr 4.20e-04 12345 tok/s eta 1h02m"), "progress: '%s'", buf);
    attn_progress q = {0, -1, 7, -1, NAN, -1, -1, -1};
    attn_progress_format(buf, sizeof buf, &q);
    CHECK(!strcmp(buf, "epoch 1 step 7"), "progress: '%s'", buf);
    char small[8];
    int n = attn_progress_format(small, sizeof small, &p);
    CHECK(n > 8 && strlen(small) == 7, "truncation");
    attn_format_duration(buf, sizeof buf, 45.2);
    CHECK(!strcmp(buf, "45s"), "%s", buf);
    attn_format_duration(buf, sizeof buf, 725);
    CHECK(!strcmp(buf, "12m05s"), "%s", buf);
    attn_format_duration(buf, sizeof buf, 2 * 86400 + 4 * 3600 + 10);
    CHECK(!strcmp(buf, "2d04h"), "%s", buf);
    CHECK(fabs(attn_eta(10.0, 25, 100) - 30.0) < 1e-9 && attn_eta(1.0, 0, 10) < 0, "eta");
    attn_train_state ts = {0};
    ts.best_metric = INFINITY;
    CHECK(attn_train_observe(&ts, 3.0) == 1 && attn_train_observe(&ts, 3.0) == 0 && attn_train_observe(&ts, 3.5) == 0 &&
              ts.bad_epochs == 2 && attn_train_observe(&ts, 2.0) == 1 && ts.bad_epochs == 0 && ts.best_metric == 2.0,
          "early stopping");
    double t0 = attn_time_now();
    CHECK(attn_time_now() >= t0, "monotonic clock");
}

/* ---- A small model: training, determinism, resume --------------------------------------- */

enum { VOC = 11, EMB = 8, HID = 8, NSEQ = 37, BATCH = 6, EPOCHS = 3 };

typedef struct {
    int32_t seq[NSEQ][9];
    int len[NSEQ];
} dataset;

static void make_data(dataset *d) {
    attn_rng r;
    attn_rng_seed(&r, 99);
    for (int i = 0; i < NSEQ; i++) {
        d->len[i] = 2 + (int)(attn_rng_u32(&r) % 8);
        int start = 1 + (int)(attn_rng_u32(&r) % (VOC - 1));
        for (int t = 0; t < d->len[i]; t++) d->seq[i][t] = 1 + (start + t * 3) % (VOC - 1); /* a learnable rule */
    }
}

typedef struct {
    attn_params *ps;
    attn_param *emb, *wih, *whh, *bih, *bhh, *ow, *ob;
    attn_optim *opt;
    attn_graph *g;
    attn_sched sched;
    attn_train_state st;
    double last_loss;
} run;

static void run_init(run *r, uint64_t seed) {
    memset(r, 0, sizeof *r);
    CHECK(attn_params_new(&r->ps) == ATTN_OK, "%s", attn_last_error());
    r->emb = attn_params_add(r->ps, "emb.weight", 2, (int64_t[]){VOC, EMB}, attn_init_normal(0, 1));
    r->wih = attn_params_add(r->ps, "gru.weight_ih_l0", 2, (int64_t[]){3 * HID, EMB}, attn_init_fan(HID));
    r->whh = attn_params_add(r->ps, "gru.weight_hh_l0", 2, (int64_t[]){3 * HID, HID}, attn_init_fan(HID));
    r->bih = attn_params_add(r->ps, "gru.bias_ih_l0", 1, (int64_t[]){3 * HID}, attn_init_fan(HID));
    r->bhh = attn_params_add(r->ps, "gru.bias_hh_l0", 1, (int64_t[]){3 * HID}, attn_init_fan(HID));
    r->ow = attn_params_add(r->ps, "out.weight", 2, (int64_t[]){VOC, HID}, attn_init_fan(HID));
    r->ob = attn_params_add(r->ps, "out.bias", 1, (int64_t[]){VOC}, attn_init_fan(HID));
    r->ob->no_decay = 1;
    attn_params_init(r->ps, seed);
    attn_optim_config c = attn_optim_defaults(ATTN_OPTIM_ADAMW);
    c.lr = 1e-2;
    CHECK(attn_optim_new(&c, r->ps, &r->opt) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_graph_new(0, &r->g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_seed(r->g, seed + 1);
    attn_sched s = {ATTN_SCHED_COSINE, 1e-2, 3, 20, 1e-3};
    r->sched = s;
    r->st.data_seed = 1234;
    r->st.best_metric = INFINITY;
}

static void run_free(run *r) {
    attn_graph_free(r->g);
    attn_optim_free(r->opt);
    attn_params_free(r->ps);
}

/* One step on batch `idx` (n examples): next-token prediction, time-major. */
static int train_step(run *r, const dataset *d, const int *idx, int n) {
    int32_t x[9 * BATCH], y[9 * BATCH], lens[BATCH];
    int T = 1;
    for (int i = 0; i < n; i++) T = d->len[idx[i]] - 1 > T ? d->len[idx[i]] - 1 : T;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) {
            int L = d->len[idx[i]] - 1;
            x[t * n + i] = t < L ? d->seq[idx[i]][t] : 0;
            y[t * n + i] = t < L ? d->seq[idx[i]][t + 1] : -100;
        }
    for (int i = 0; i < n; i++) lens[i] = d->len[idx[i]] - 1;
    attn_graph *g = r->g;
    attn_graph_reset(g);
    attn_params_zero_grad(r->ps);
    attn_var *e = attn_ag_embedding(g, attn_param_var(g, r->emb), x, 2, (int64_t[]){T, n}, 0);
    e = attn_ag_dropout(g, e, 0.2f);
    attn_var *h = attn_ag_gru(g, e, NULL, attn_param_var(g, r->wih), attn_param_var(g, r->whh), attn_param_var(g, r->bih),
                              attn_param_var(g, r->bhh), lens, 0, NULL);
    attn_var *logits = attn_ag_linear(g, attn_ag_dropout(g, h, 0.1f), attn_param_var(g, r->ow), attn_param_var(g, r->ob));
    attn_var *loss = attn_ag_cross_entropy(g, logits, y, -100, 0.05f);
    int st = attn_graph_backward(g, loss);
    if (st) return st;
    r->last_loss = loss->data[0];
    float norm;
    if ((st = attn_clip_grad_norm(r->ps, 1.0f, &norm))) return st;
    return attn_optim_step(r->opt, attn_sched_lr(&r->sched, r->st.step));
}

/* Trains until EPOCHS are done, or stops (returning 1) when st.step reaches stop_at. */
static int train(run *r, const dataset *d, int64_t stop_at) {
    while (r->st.epoch < EPOCHS) {
        attn_batches b;
        attn_batches_make(d->len, NSEQ, BATCH, 0, 2, attn_seed_mix(r->st.data_seed, (uint64_t)r->st.epoch), &b);
        for (int64_t k = r->st.batch; k < b.n_batches; k++) {
            if (r->st.step == stop_at) {
                attn_batches_free(&b);
                return 1;
            }
            int st = train_step(r, d, b.index + b.offsets[k], b.offsets[k + 1] - b.offsets[k]);
            CHECK(st == ATTN_OK, "train step: %s", attn_last_error());
            r->st.step++;
            r->st.batch = k + 1;
        }
        attn_batches_free(&b);
        r->st.epoch++;
        r->st.batch = 0;
    }
    return 0;
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static const char *MODEL_JSON = "{\"kind\": \"gru-lm\", \"vocab\": 11, \"emb\": 8, \"hidden\": 8, \"note\": \"a \\\"quoted\\\" {brace}\"}";
static const char VOCAB[] = "<pad>\n<s>\na\nb\n";

static void test_resume(const char *dir) {
    dataset d;
    make_data(&d);
    /* A: uninterrupted, 2 threads. A2: the same, 1 thread. */
    run a, a2;
    attn_set_threads(2);
    run_init(&a, 5);
    double first = -1;
    {
        /* the loss goes down */
        train(&a, &d, 1);
        first = a.last_loss;
        train(&a, &d, -1);
    }
    CHECK(a.st.step > 12 && a.last_loss < first, "training: loss %g -> %g after %lld steps", first, a.last_loss, (long long)a.st.step);
    attn_set_threads(1);
    run_init(&a2, 5);
    train(&a2, &d, -1);
    attn_set_threads(2);
    int64_t span = attn_params_numel(a.ps);
    CHECK(!memcmp(attn_params_data(a.ps), attn_params_data(a2.ps), (size_t)span * sizeof(float)),
          "two runs (2 and 1 threads) give different weights");
    run_free(&a2);

    /* B: stop in the middle of epoch 1, checkpoint, throw everything away. */
    int64_t stop = 9;
    run b;
    run_init(&b, 5);
    CHECK(train(&b, &d, stop) == 1 && b.st.epoch == 1 && b.st.batch > 0, "stopped mid-epoch (epoch %lld batch %lld)",
          (long long)b.st.epoch, (long long)b.st.batch);
    b.st.rng = *attn_graph_rng(b.g);
    b.st.best_metric = 2.5;
    b.st.bad_epochs = 1;
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    attn_ckpt_file files[2] = {{"src.vocab", NULL, VOCAB, sizeof VOCAB - 1}, {"empty.txt", NULL, NULL, 0}};
    CHECK(attn_checkpoint_save(ck, b.ps, b.opt, MODEL_JSON, &b.st, 2, files) == ATTN_OK, "save: %s", attn_last_error());
    attn_train_state saved = b.st;
    run_free(&b);

    /* C: a different initialisation, then everything from the checkpoint. */
    attn_checkpoint c;
    CHECK(attn_checkpoint_open(ck, &c) == ATTN_OK, "open: %s", attn_last_error());
    CHECK(c.model_json && !strcmp(c.model_json, MODEL_JSON), "model json: %s", c.model_json ? c.model_json : "(null)");
    CHECK(!memcmp(&c.state, &saved, sizeof saved), "training state differs");
    CHECK(c.has_optim && c.optim.kind == ATTN_OPTIM_ADAMW && c.optim.lr == 1e-2 && c.optim.weight_decay == 1e-2, "optimizer config");
    CHECK(c.n_files == 2 && !strcmp(c.file_names[0], "src.vocab"), "extra files");
    if (c.n_files == 2) {
        FILE *f = fopen(c.file_paths[0], "rb");
        char buf[64] = {0};
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        CHECK(n == sizeof VOCAB - 1 && !memcmp(buf, VOCAB, n), "vocab blob");
    }
    run r;
    run_init(&r, 77);
    CHECK(attn_checkpoint_load_params(&c, r.ps) == ATTN_OK, "load params: %s", attn_last_error());
    CHECK(attn_checkpoint_load_optim(&c, r.opt) == ATTN_OK, "load optim: %s", attn_last_error());
    CHECK(attn_optim_steps(r.opt) == stop, "optimizer step %lld", (long long)attn_optim_steps(r.opt));
    r.st = c.state;
    *attn_graph_rng(r.g) = c.state.rng;
    attn_checkpoint_free(&c);
    train(&r, &d, -1);
    CHECK(r.st.step == a.st.step, "steps %lld vs %lld", (long long)r.st.step, (long long)a.st.step);
    CHECK(!memcmp(attn_params_data(a.ps), attn_params_data(r.ps), (size_t)span * sizeof(float)),
          "resumed run differs from the uninterrupted one");
    char pa[600], pr[600];
    snprintf(pa, sizeof pa, "%s/a.optim", dir);
    snprintf(pr, sizeof pr, "%s/r.optim", dir);
    attn_optim_save(a.opt, pa);
    attn_optim_save(r.opt, pr);
    CHECK(files_equal(pa, pr), "optimizer states differ");
    unlink(pa), unlink(pr);
    run_free(&r);
    run_free(&a);
}

/* ---- Out of memory: every allocation of these calls fails in turn ------------------------- */

static long g_fail_at = -1, g_allocs;

static void *failing_malloc(size_t n, void *user) {
    (void)user;
    if (g_fail_at >= 0 && g_allocs++ == g_fail_at) return NULL;
    return malloc(n);
}

static void plain_free(void *p, void *user) {
    (void)user;
    free(p);
}

static void test_oom(const char *dir) {
    dataset d;
    make_data(&d);
    run r;
    run_init(&r, 3);
    char ck[512], ck3[512];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    snprintf(ck3, sizeof ck3, "%s/ckpt3", dir);
    int idx[BATCH] = {0, 1, 2, 3, 4, 5};
    int done = 0, failures = 0, bad = 0;
    attn_set_allocator(failing_malloc, plain_free, NULL);
    for (long k = 0; k < 2000 && !done; k++) {
        g_fail_at = k;
        g_allocs = 0;
        /* a training step on a fresh graph */
        attn_graph *g;
        int gst = attn_graph_new(1024, &g);
        bad |= gst != ATTN_OK && gst != ATTN_ENOMEM;
        if (!gst) {
            attn_graph *keep = r.g;
            r.g = g;
            int st = train_step(&r, &d, idx, BATCH);
            bad |= st != ATTN_OK && st != ATTN_ENOMEM;
            failures += st != ATTN_OK;
            r.g = keep;
            attn_graph_free(g);
        }
        /* checkpoint open, load, save */
        attn_checkpoint c;
        int st = attn_checkpoint_open(ck, &c);
        bad |= st != ATTN_OK && st != ATTN_ENOMEM;
        if (st == ATTN_OK) {
            st = attn_checkpoint_load_params(&c, r.ps);
            bad |= st != ATTN_OK && st != ATTN_ENOMEM;
            st = attn_checkpoint_load_optim(&c, r.opt);
            bad |= st != ATTN_OK && st != ATTN_ENOMEM;
            attn_checkpoint_free(&c);
        }
        attn_ckpt_file f = {"v.txt", NULL, "abc", 3};
        st = attn_checkpoint_save(ck3, r.ps, r.opt, "{\"a\": 1}", &r.st, 1, &f);
        bad |= st != ATTN_OK && st != ATTN_ENOMEM;
        attn_optim *o;
        st = attn_optim_new(attn_optim_get_config(r.opt), r.ps, &o);
        bad |= st != ATTN_OK && st != ATTN_ENOMEM;
        attn_optim_free(o);
        done = g_allocs <= k; /* nothing failed: every allocation point was visited */
    }
    attn_set_allocator(NULL, NULL, NULL);
    g_fail_at = -1;
    CHECK(done && failures > 5 && !bad, "out-of-memory sweep: done %d, %d failed steps, bad status %d", done, failures, bad);
    const char *names[] = {"config.json", "model.safetensors", "optim.safetensors", "v.txt"};
    for (int k = 0; k < 4; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", ck3, names[k]);
        unlink(p);
    }
    rmdir(ck3);
    run_free(&r);
}

/* ---- Damaged checkpoints ------------------------------------------------------------------ */

static void spit(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static int open_status(const char *dir) {
    attn_checkpoint c;
    memset(&c, 0x5a, sizeof c);
    int st = attn_checkpoint_open(dir, &c);
    if (st) CHECK(c.model_json == NULL && c.file_names == NULL && strlen(attn_last_error()) > 0, "failed open leaves a zeroed struct");
    attn_checkpoint_free(&c);
    return st;
}

static void test_damage(const char *dir) {
    char ck[512], cfg[600], model[600], optim[600];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", ck);
    snprintf(model, sizeof model, "%s/model.safetensors", ck);
    snprintf(optim, sizeof optim, "%s/optim.safetensors", ck);
    CHECK(open_status(ck) == ATTN_OK, "intact checkpoint: %s", attn_last_error());
    size_t nc, nm, no;
    char *c0 = (char *)tu_read_file(cfg, &nc), *m0 = (char *)tu_read_file(model, &nm), *o0 = (char *)tu_read_file(optim, &no);
    if (!c0 || !m0 || !o0) {
        CHECK(0, "checkpoint files missing");
        return;
    }
    /* Weights truncated, or one byte changed. */
    spit(model, m0, nm - 10);
    CHECK(open_status(ck) == ATTN_EFORMAT && strstr(attn_last_error(), "model.safetensors"), "truncated weights: %s", attn_last_error());
    m0[nm / 2] ^= 1;
    spit(model, m0, nm);
    CHECK(open_status(ck) == ATTN_EFORMAT, "altered weights: %s", attn_last_error());
    m0[nm / 2] ^= 1;
    spit(model, m0, nm);
    /* A missing file. */
    unlink(optim);
    CHECK(open_status(ck) == ATTN_EIO, "missing optimizer state: %s", attn_last_error());
    spit(optim, o0, no);
    /* config.json cut at many lengths: always an error, never a crash. */
    int all = 1;
    for (size_t n = 0; n + 1 < nc; n += 5) { /* (cutting only the final newline leaves valid JSON) */
        spit(cfg, c0, n);
        int st = open_status(ck);
        all &= st == ATTN_EFORMAT || st == ATTN_EIO;
    }
    CHECK(all, "a truncated config.json was accepted");
    /* Field by field. */
    const char *edits[][2] = {
        {"\"version\": 1", "\"version\": 2"},
        {"\"format\": \"attn-checkpoint\"", "\"format\": \"other\""},
        {"\"rng\": [\"", "\"rng\": [\"x"},
        {"\"step\": 9", "\"step\": -9"},
        {"\"kind\": \"adamw\"", "\"kind\": \"lion\""},
        {"\"model\": {", "\"model\": [{"},
        {"\"extra_files\": [\"src.vocab\"", "\"extra_files\": [\"../etc/passwd\""},
        {"\"bytes\": ", "\"bytes\": 1"},
        {"\"train\"", "\"tra1n\""},
    };
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
        char *p = strstr(c0, edits[k][0]);
        CHECK(p != NULL, "edit %zu not applicable", k);
        if (!p) continue;
        size_t pre = (size_t)(p - c0), la = strlen(edits[k][0]), lb = strlen(edits[k][1]);
        char *e = malloc(nc + lb + 1);
        memcpy(e, c0, pre);
        memcpy(e + pre, edits[k][1], lb);
        memcpy(e + pre + lb, p + la, nc - pre - la);
        spit(cfg, e, nc - la + lb);
        int st = open_status(ck);
        CHECK(st == ATTN_EFORMAT, "edit '%s' -> '%s' gave %d: %s", edits[k][0], edits[k][1], st, attn_last_error());
        free(e);
    }
    spit(cfg, c0, nc);
    CHECK(open_status(ck) == ATTN_OK, "restored checkpoint: %s", attn_last_error());
    /* A checkpoint of another model, or another optimiser. */
    attn_checkpoint c;
    attn_checkpoint_open(ck, &c);
    attn_params *ps; CHECK(attn_params_new(&ps) == ATTN_OK, "%s", attn_last_error());
    attn_params_add(ps, "emb.weight", 2, (int64_t[]){VOC + 1, EMB}, attn_init_zeros());
    CHECK(attn_checkpoint_load_params(&c, ps) != ATTN_OK, "another model's weights were accepted");
    attn_params_free(ps);
    run r;
    run_init(&r, 1);
    attn_optim_config sc = attn_optim_defaults(ATTN_OPTIM_SGD);
    sc.momentum = 0.9;
    attn_optim *sgd; CHECK(attn_optim_new(&sc, r.ps, &sgd) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_checkpoint_load_optim(&c, sgd) == ATTN_EINVAL, "SGD loaded AdamW state: %s", attn_last_error());
    CHECK(attn_optim_load(sgd, optim) == ATTN_EFORMAT, "SGD loaded AdamW state file: %s", attn_last_error());
    attn_optim_free(sgd);
    run_free(&r);
    attn_checkpoint_free(&c);
    CHECK(open_status("/nonexistent/ckpt") == ATTN_EIO, "missing directory");
    CHECK(open_status(model) == ATTN_EIO, "a file as the directory");
    /* Bad arguments to save. */
    run s;
    run_init(&s, 1);
    attn_ckpt_file bad[2] = {{"config.json", NULL, "x", 1}, {"a/b", NULL, "x", 1}};
    CHECK(attn_checkpoint_save(ck, s.ps, NULL, NULL, &s.st, 1, bad) == ATTN_EINVAL, "reserved name");
    CHECK(attn_checkpoint_save(ck, s.ps, NULL, NULL, &s.st, 1, bad + 1) == ATTN_EINVAL, "path as a name");
    CHECK(attn_checkpoint_save(ck, s.ps, NULL, "[1, 2]", &s.st, 0, NULL) == ATTN_EINVAL, "model json not an object");
    CHECK(attn_checkpoint_save(ck, s.ps, NULL, "{\"a\": ", &s.st, 0, NULL) == ATTN_EINVAL, "bad model json");
    /* A checkpoint without optimiser state, from a path. */
    char vpath[600];
    snprintf(vpath, sizeof vpath, "%s/v.txt", dir);
    spit(vpath, VOCAB, sizeof VOCAB - 1);
    attn_ckpt_file fromfile = {"tgt.vocab", vpath, NULL, 0};
    char ck2[600];
    snprintf(ck2, sizeof ck2, "%s/ckpt2", dir);
    CHECK(attn_checkpoint_save(ck2, s.ps, NULL, NULL, &s.st, 1, &fromfile) == ATTN_OK, "save without optimizer: %s", attn_last_error());
    CHECK(attn_checkpoint_open(ck2, &c) == ATTN_OK && !c.has_optim && !strcmp(c.model_json, "{}"), "open without optimizer");
    CHECK(attn_checkpoint_load_optim(&c, s.opt) == ATTN_ENOTFOUND, "no optimizer state");
    attn_checkpoint_free(&c);
    run_free(&s);
    free(c0), free(m0), free(o0);
    /* Clean up. */
    const char *names[] = {"config.json", "model.safetensors", "optim.safetensors", "src.vocab", "empty.txt", "tgt.vocab"};
    for (size_t k = 0; k < 6; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", ck, names[k]);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s", ck2, names[k]);
        unlink(p);
    }
    rmdir(ck), rmdir(ck2);
    unlink(vpath);
}

/* A bad optimiser config is ATTN_EINVAL with a message naming the bad field (it once came back
 * as a NULL pointer that the CLI reported as "out of memory"). */
static void test_optim_config(void) {
    attn_params *ps;
    CHECK(attn_params_new(&ps) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_params_add(ps, "w", 1, (int64_t[]){4}, attn_init_zeros()) != NULL, "add");
    static const struct {
        attn_optim_kind kind;
        const char *field;
        double value;
    } bad[] = {{ATTN_OPTIM_SGD, "lr", -1.0},       {ATTN_OPTIM_ADAMW, "weight_decay", -0.5},
               {ATTN_OPTIM_SGD, "momentum", -0.1}, {ATTN_OPTIM_ADAM, "beta1", 1.0},
               {ATTN_OPTIM_ADAM, "beta2", -0.2},   {ATTN_OPTIM_ADAM, "eps", -1e-8}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attn_optim_config c = attn_optim_defaults(bad[i].kind);
        double *f = !strcmp(bad[i].field, "lr") ? &c.lr
                    : !strcmp(bad[i].field, "weight_decay") ? &c.weight_decay
                    : !strcmp(bad[i].field, "momentum") ? &c.momentum
                    : !strcmp(bad[i].field, "beta1") ? &c.beta1
                    : !strcmp(bad[i].field, "beta2") ? &c.beta2 : &c.eps;
        *f = bad[i].value;
        attn_optim *o = (attn_optim *)&c; /* not NULL, so that the call must clear it */
        int st = attn_optim_new(&c, ps, &o);
        CHECK(st == ATTN_EINVAL && o == NULL, "%s = %g: status %d", bad[i].field, bad[i].value, st);
        CHECK(strstr(attn_last_error(), bad[i].field) != NULL, "%s: message \"%s\"", bad[i].field, attn_last_error());
        attn_optim_free(st ? NULL : o);
    }
    attn_optim_config c = attn_optim_defaults(ATTN_OPTIM_ADAM);
    c.kind = (attn_optim_kind)7;
    attn_optim *o = NULL;
    CHECK(attn_optim_new(&c, ps, &o) == ATTN_EINVAL && strstr(attn_last_error(), "kind"), "%s", attn_last_error());
    CHECK(attn_optim_new(NULL, ps, &o) == ATTN_EINVAL && o == NULL, "NULL config accepted");
    attn_params_free(ps);
}

int main(void) {
    attn_set_threads(2);
    test_optim_config();
    attn_st *st = NULL;
    int rc = attn_st_open(REFS, &st);
    CHECK(rc == ATTN_OK, "open %s: %s", REFS, attn_last_error());
    if (st) {
        test_optim_refs(st);
        /* again on the portable loops (the AVX2 ones must give the same bits) */
        const char *isa = attn_get_isa();
        if (attn_set_isa("ref") == ATTN_OK) {
            test_optim_refs(st);
            attn_set_isa(isa);
        }
        test_clip_refs(st);
        test_sched_refs(st);
        test_ce_ref(st);
        attn_st_free(st);
    }
    char dir[] = "/tmp/attn_test_train_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return tu_summary("test_train");
    }
    test_params(dir);
    test_batching();
    test_progress();
    test_resume(dir);
    test_oom(dir);
    test_damage(dir);
    rmdir(dir);
    return tu_summary("test_train");
}
