/* The visual-attention models (attn/vision.h): fc, cnn, soft spatial attention and the
 * Recurrent Attention Model on the autograd tape, their hybrid loss (cross-entropy +
 * REINFORCE with a learned baseline), multiply-adds, and checkpoint directories. Not here:
 * the images (src/io/vision_data.c), the training loop (src/train/vision_train.c), pictures.
 * Letters: B a batch, S the image side, n glimpses, g the patch side, k scales, H the core
 * size, G the glimpse net's hidden size, N = (S/4)^2 feature locations, C = c2 channels,
 * A the attention's hidden size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/vision.h"
#include "autograd/ag.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/ckdir.h"
#include "io/json.h"
#include "params/params_internal.h"

/* ---- Configuration ---------------------------------------------------------------------- */

static const char *const KINDS[4] = {"fc", "cnn", "soft", "ram"};

const char *attn_vision_kind_name(attn_vision_kind k) { return (unsigned)k < 4 ? KINDS[k] : "?"; }

int attn_vision_kind_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, KINDS[i])) return i;
    return -1;
}

attn_vision_config attn_vision_config_default(attn_vision_kind kind, attn_vision_task task) {
    attn_vision_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind, c.task = task, c.hidden = 256, c.c1 = 16, c.c2 = 32, c.kernel = 5, c.attn_dim = 64;
    /* The paper's glimpses: 8x8 at 1 scale on 28x28; 12x12 at 3 scales on 60x60, 4 on 100x100. */
    c.glimpses = 6, c.patch = task == ATTN_TASK_CENTRED28 ? 8 : 12, c.glimpse_hidden = 128;
    c.scales = task == ATTN_TASK_CENTRED28 ? 1 : task == ATTN_TASK_CLUTTERED100 ? 4 : 3;
    c.lstm = task == ATTN_TASK_CLUTTERED60 || task == ATTN_TASK_CLUTTERED100, c.std = 0.1f, c.data_seed = 1;
    return c;
}

int attn_vision_config_check(const attn_vision_config *c) {
    if (!c) return attn__error(ATTN_EINVAL, "vision config: NULL");
    if ((unsigned)c->kind > ATTN_VISION_RAM) return attn__error(ATTN_EINVAL, "vision config: unknown model kind %d", (int)c->kind);
    if ((unsigned)c->task > ATTN_TASK_CLUTTERED100) return attn__error(ATTN_EINVAL, "vision config: unknown task %d", (int)c->task);
    if (c->hidden < 1 || c->hidden > 65536 || c->c1 < 1 || c->c1 > 4096 || c->c2 < 1 || c->c2 > 4096 || c->attn_dim < 1 ||
        c->attn_dim > 65536 || c->glimpse_hidden < 1 || c->glimpse_hidden > 65536)
        return attn__error(ATTN_EINVAL, "vision config: hidden, c1, c2, attn_dim and glimpse_hidden must be positive (and not huge)");
    if (c->loc_hidden < 0 || c->loc_hidden > 65536) return attn__error(ATTN_EINVAL, "vision config: loc_hidden %d must be in [0, 65536]", c->loc_hidden);
    if (c->kernel < 1 || c->kernel > 15 || c->kernel % 2 == 0)
        return attn__error(ATTN_EINVAL, "vision config: kernel %d must be odd, in [1, 15]", c->kernel);
    if (c->glimpses < 1 || c->glimpses > ATTN_VISION_MAX_GLIMPSES)
        return attn__error(ATTN_EINVAL, "vision config: glimpses %d must be in [1, %d]", c->glimpses, ATTN_VISION_MAX_GLIMPSES);
    if (c->patch < 1 || c->patch > 64 || c->scales < 1 || c->scales > 4)
        return attn__error(ATTN_EINVAL, "vision config: patch %d must be in [1, 64] and scales %d in [1, 4]", c->patch, c->scales);
    if (c->lstm != 0 && c->lstm != 1) return attn__error(ATTN_EINVAL, "vision config: lstm must be 0 or 1");
    if (!(c->std > 0.0f && c->std < 10.0f)) return attn__error(ATTN_EINVAL, "vision config: std %g must be in (0, 10)", (double)c->std);
    return ATTN_OK;
}

static const char *const INT_KEYS[] = {"hidden", "c1", "c2", "kernel", "attn_dim", "glimpses", "patch", "scales", "glimpse_hidden", "lstm",
                                       "loc_hidden"};
enum { N_INTS = 11 };

static void int_fields(attn_vision_config *c, int *v[N_INTS]) {
    int *const p[N_INTS] = {&c->hidden, &c->c1, &c->c2, &c->kernel, &c->attn_dim, &c->glimpses, &c->patch, &c->scales,
                            &c->glimpse_hidden, &c->lstm, &c->loc_hidden};
    memcpy(v, p, sizeof p);
}

int attn_vision_config_to_json(const attn_vision_config *cfg, char **json) {
    if (!cfg || !json) return attn__error(ATTN_EINVAL, "vision config json: NULL argument");
    attn_vision_config c = *cfg;
    int *v[N_INTS];
    int_fields(&c, v);
    attn__sb sb = {0};
    attn__jw w;
    attn__jw_init(&w, &sb, 1, 0);
    attn__jw_object(&w, 0);
    attn__jw_key(&w, "kind"), attn__jw_str(&w, "vision");
    attn__jw_key(&w, "model"), attn__jw_str(&w, attn_vision_kind_name(c.kind));
    attn__jw_key(&w, "task"), attn__jw_str(&w, attn_vision_task_name(c.task));
    for (int i = 0; i < N_INTS; i++) attn__jw_key(&w, INT_KEYS[i]), attn__jw_i64(&w, *v[i]);
    attn__jw_key(&w, "std"), attn__jw_f32(&w, c.std);
    attn__jw_key(&w, "data_seed"), attn__jw_u64(&w, c.data_seed);
    attn__jw_end(&w, '}');
    if (!(*json = attn__sb_take(&sb, NULL))) return attn__error(ATTN_ENOMEM, "vision config json: out of memory");
    return ATTN_OK;
}

static const attn__json *member(const attn__json *obj, const char *key) {
    for (const attn__json *v = obj->type == ATTN__JSON_OBJECT ? obj->child : NULL; v; v = v->next)
        if (!strcmp(v->key, key)) return v;
    return NULL;
}

/* The string member `key` parsed by `parse`, or -1. */
static int name_member(const attn__json *root, const char *key, int (*parse)(const char *)) {
    const attn__json *v = member(root, key);
    return v && v->type == ATTN__JSON_STRING ? parse(v->str) : -1;
}

int attn_vision_config_from_json(const char *json, attn_vision_config *cfg) {
    if (!json || !cfg) return attn__error(ATTN_EINVAL, "vision config json: NULL argument");
    attn__json *root = NULL;
    char err[128];
    int st = attn__json_parse(json, strlen(json), &root, err, sizeof err);
    if (st) return st == ATTN_ENOMEM ? st : attn__error(ATTN_EFORMAT, "vision config: %s", err);
    const attn__json *kind = member(root, "kind");
    int model = name_member(root, "model", attn_vision_kind_parse), task = name_member(root, "task", attn_vision_task_parse);
    const char *bad = NULL;
    attn_vision_config c = attn_vision_config_default(model < 0 ? 0 : model, task < 0 ? 0 : task);
    int *v[N_INTS];
    int_fields(&c, v);
    if (!kind || kind->type != ATTN__JSON_STRING || strcmp(kind->str, "vision")) bad = "\"kind\" is not \"vision\"";
    else if (model < 0) bad = "\"model\" is not fc, cnn, soft or ram";
    else if (task < 0) bad = "\"task\" is not a known task";
    for (int i = 0; i < N_INTS && !bad; i++) {
        const attn__json *x = member(root, INT_KEYS[i]);
        if (x && (x->type != ATTN__JSON_NUMBER || !x->is_uint || x->u > 1000000u)) bad = "a size is not a non-negative integer";
        else if (x) *v[i] = (int)x->u;
    }
    const attn__json *s = bad ? NULL : member(root, "std"), *seed = bad ? NULL : member(root, "data_seed");
    if (s && s->type != ATTN__JSON_NUMBER) bad = "\"std\" is not a number";
    else if (s) c.std = (float)strtod(json + s->offset, NULL);
    if (seed && (seed->type != ATTN__JSON_NUMBER || !seed->is_uint)) bad = "\"data_seed\" is not a non-negative integer";
    else if (seed) c.data_seed = seed->u;
    attn__json_free(root);
    if (bad) return attn__error(ATTN_EFORMAT, "vision config: %s", bad);
    if ((st = attn_vision_config_check(&c))) return st;
    *cfg = c;
    return ATTN_OK;
}

/* The side of the conv trunk's output: two 2x2 poolings of S. */
static int64_t grid_side(const attn_vision_config *c) { return attn_vision_task_size(c->task) / 2 / 2; }

int64_t attn_vision_madds(const attn_vision_config *c) {
    if (attn_vision_config_check(c)) return -1;
    int64_t S = attn_vision_task_size(c->task), K2 = (int64_t)c->kernel * c->kernel, h = c->hidden, N = grid_side(c) * grid_side(c);
    int64_t trunk = S * S * c->c1 * K2 + (S / 2) * (S / 2) * c->c2 * c->c1 * K2;
    switch (c->kind) {
    case ATTN_VISION_FC: return S * S * h + h * h + h * ATTN_VISION_CLASSES;
    case ATTN_VISION_CNN: return trunk + N * c->c2 * ATTN_VISION_CLASSES;
    case ATTN_VISION_SOFT: return trunk + N * c->c2 * c->attn_dim + N * c->attn_dim + N * c->c2 + c->c2 * ATTN_VISION_CLASSES;
    case ATTN_VISION_RAM: break;
    }
    int64_t sensor = 0, G = c->glimpse_hidden, g2 = (int64_t)c->patch * c->patch;
    for (int s = 0; s < c->scales; s++) sensor += g2 << (2 * s); /* every source pixel of each scale */
    int64_t glimpse = sensor + c->scales * g2 * G + 2 * G + 2 * G * h;
    int64_t core = c->lstm ? 8 * h * h : 2 * h * h, q = c->loc_hidden;
    int64_t locator = q ? h * q + q * 2 : h * 2;
    return c->glimpses * (glimpse + core) + (c->glimpses - 1) * locator + h * ATTN_VISION_CLASSES;
}

/* ---- The model -------------------------------------------------------------------------- */

struct attn_vision {
    attn_vision_config cfg;
    attn_params *ps;
    attn_param *fc1_w, *fc1_b, *fc2_w, *fc2_b;              /* fc (h, S*S), (h, h) */
    attn_param *conv1_w, *conv1_b, *conv2_w, *conv2_b;      /* (c1, 1, k, k), (c2, c1, k, k) */
    attn_param *att_w, *att_b, *att_ctx;                    /* soft: U (A, C), b_U (A), w (A) */
    attn_param *g1_w, *g1_b, *l1_w, *l1_b, *g2_w, *g2_b, *l2_w, *l2_b; /* ram's glimpse net */
    attn_param *core[4];                                    /* RNN: W_ih (H, H), W_hh, b_ih, b_hh; LSTM: 4H rows */
    attn_param *loc_w, *loc_b, *base_w, *base_b;            /* (2, H or Q), (2), (1, H), (1) */
    attn_param *lq_w, *lq_b;                                /* the locator's hidden layer (Q, H), (Q) */
    attn_param *out_w, *out_b;                              /* the classifier (10, D), (10) */
};

static attn_param *add(attn_vision *m, int *st, const char *name, int ndim, const int64_t *shape, int64_t fan) {
    if (*st) return NULL;
    attn_param *p = attn_params_add(m->ps, name, ndim, shape, attn_init_fan(fan));
    if (!p) *st = ATTN_ENOMEM;
    else p->no_decay = ndim == 1;
    return p;
}

/* A linear layer's weight (O, I) and bias (O), PyTorch's default initialisation. */
static void add_linear(attn_vision *m, int *st, const char *name, int64_t O, int64_t I, attn_param **w, attn_param **b) {
    char n[64];
    snprintf(n, sizeof n, "%s.weight", name);
    *w = add(m, st, n, 2, (int64_t[]){O, I}, I);
    snprintf(n, sizeof n, "%s.bias", name);
    *b = add(m, st, n, 1, (int64_t[]){O}, I);
}

static void add_trunk(attn_vision *m, int *st) {
    const attn_vision_config *c = &m->cfg;
    int64_t k = c->kernel;
    m->conv1_w = add(m, st, "conv1.weight", 4, (int64_t[]){c->c1, 1, k, k}, k * k);
    m->conv1_b = add(m, st, "conv1.bias", 1, (int64_t[]){c->c1}, k * k);
    m->conv2_w = add(m, st, "conv2.weight", 4, (int64_t[]){c->c2, c->c1, k, k}, c->c1 * k * k);
    m->conv2_b = add(m, st, "conv2.bias", 1, (int64_t[]){c->c2}, c->c1 * k * k);
}

static void add_ram(attn_vision *m, int *st) {
    const attn_vision_config *c = &m->cfg;
    int64_t H = c->hidden, G = c->glimpse_hidden, R = (int64_t)c->scales * c->patch * c->patch, GH = c->lstm ? 4 * H : H;
    add_linear(m, st, "glimpse.patch1", G, R, &m->g1_w, &m->g1_b);
    add_linear(m, st, "glimpse.loc1", G, 2, &m->l1_w, &m->l1_b);
    add_linear(m, st, "glimpse.patch2", H, G, &m->g2_w, &m->g2_b);
    add_linear(m, st, "glimpse.loc2", H, G, &m->l2_w, &m->l2_b);
    m->core[0] = add(m, st, "core.weight_ih", 2, (int64_t[]){GH, H}, H);
    m->core[1] = add(m, st, "core.weight_hh", 2, (int64_t[]){GH, H}, H);
    m->core[2] = add(m, st, "core.bias_ih", 1, (int64_t[]){GH}, H);
    m->core[3] = add(m, st, "core.bias_hh", 1, (int64_t[]){GH}, H);
    if (c->loc_hidden) add_linear(m, st, "locator.hidden", c->loc_hidden, H, &m->lq_w, &m->lq_b);
    add_linear(m, st, "locator", 2, c->loc_hidden ? c->loc_hidden : H, &m->loc_w, &m->loc_b);
    add_linear(m, st, "baseline", 1, H, &m->base_w, &m->base_b);
}

int attn_vision_new(const attn_vision_config *cfg, uint64_t seed, attn_vision **out) {
    if (!cfg || !out) return attn__error(ATTN_EINVAL, "attn_vision_new: NULL argument");
    *out = NULL;
    int st = attn_vision_config_check(cfg);
    if (st) return st;
    attn_vision *m = attn_calloc(1, sizeof *m);
    if (!m || attn_params_new(&m->ps)) {
        attn_free(m);
        return attn__error(ATTN_ENOMEM, "attn_vision_new: out of memory");
    }
    m->cfg = *cfg;
    const attn_vision_config *c = cfg;
    int64_t S = attn_vision_task_size(c->task), N = grid_side(c) * grid_side(c), D = c->hidden;
    switch (c->kind) {
    case ATTN_VISION_FC:
        add_linear(m, &st, "fc1", c->hidden, S * S, &m->fc1_w, &m->fc1_b);
        add_linear(m, &st, "fc2", c->hidden, c->hidden, &m->fc2_w, &m->fc2_b);
        break;
    case ATTN_VISION_CNN: add_trunk(m, &st), D = N * c->c2; break;
    case ATTN_VISION_SOFT:
        add_trunk(m, &st), D = c->c2;
        add_linear(m, &st, "attention.key", c->attn_dim, c->c2, &m->att_w, &m->att_b);
        if (!st && !(m->att_ctx = attn_params_add(m->ps, "attention.context", 1, (int64_t[]){c->attn_dim}, attn_init_normal(0.0f, 0.1f))))
            st = ATTN_ENOMEM;
        break;
    case ATTN_VISION_RAM: add_ram(m, &st); break;
    }
    add_linear(m, &st, c->kind == ATTN_VISION_RAM ? "action" : "out", ATTN_VISION_CLASSES, D, &m->out_w, &m->out_b);
    if (!st) st = attn_params_init(m->ps, seed);
    if (st) {
        attn_vision_free(m);
        return st == ATTN_ENOMEM ? attn__error(ATTN_ENOMEM, "attn_vision_new: out of memory") : st;
    }
    *out = m;
    return ATTN_OK;
}

void attn_vision_free(attn_vision *m) {
    if (!m) return;
    attn_params_free(m->ps);
    attn_free(m);
}

const attn_vision_config *attn_vision_get_config(const attn_vision *m) { return m ? &m->cfg : NULL; }
int attn_vision_set_task(attn_vision *m, attn_vision_task task) {
    if (!m || (unsigned)task > ATTN_TASK_CLUTTERED100) return attn__error(ATTN_EINVAL, "attn_vision_set_task: bad argument");
    int have = attn_vision_task_size(m->cfg.task), want = attn_vision_task_size(task);
    if (have != want)
        return attn__error(ATTN_EINVAL, "the model reads %dx%d images (%s); task %s has %dx%d", have, have,
                           attn_vision_task_name(m->cfg.task), attn_vision_task_name(task), want, want);
    m->cfg.task = task;
    return ATTN_OK;
}

attn_params *attn_vision_params(attn_vision *m) { return m ? m->ps : NULL; }
int64_t attn_vision_num_params(const attn_vision *m) { return m ? attn_params_numel(m->ps) : 0; }

#define PV(p) attn_param_var(g, (p))
#define LIN(x, w, b) attn_ag_linear(g, (x), PV(w), PV(b))

/* conv -> ReLU -> 2x2 max pool, twice: (B, 1, S, S) -> (B, C, S/4, S/4). */
static attn_var *trunk(attn_vision *m, attn_graph *g, attn_var *x) {
    int pad = m->cfg.kernel / 2;
    x = attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, x, PV(m->conv1_w), PV(m->conv1_b), 1, pad)), 2, 2);
    return attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, x, PV(m->conv2_w), PV(m->conv2_b), 1, pad)), 2, 2);
}

/* Soft attention over the feature grid: f (B, C, N) -> keys tanh(U f_i + b_U) (B, N, A), the
 * learned context's dot score, the weighted sum of the f_i (B, C); *P the weights (B, 1, 1, N). */
static attn_var *soft(attn_vision *m, attn_graph *g, attn_var *fmap, attn_var **P) {
    if (!fmap) return NULL;
    int64_t B = fmap->shape[0], C = fmap->shape[1], N = fmap->shape[2] * fmap->shape[3], A = m->cfg.attn_dim;
    attn_var *f = attn_ag_transpose(g, attn_ag_reshape(g, fmap, 3, (int64_t[]){B, C, N})); /* (B, N, C) */
    attn_var *k = attn_ag_tanh(g, LIN(f, m->att_w, m->att_b));
    attn_var *q = attn_ag_add(g, attn_graph_input(g, 3, (int64_t[]){B, 1, A}, NULL), PV(m->att_ctx)); /* (B, 1, A) */
    attn_ag_attention_opts o;
    memset(&o, 0, sizeof o);
    o.layout = ATTN_AG_BNHD, o.score = ATTN_SCORE_DOT;
    attn_var *r = attn_ag_attention(g, q, k, f, &o, P);
    return attn_ag_reshape(g, r, 2, (int64_t[]){B, C});
}

attn_var *attn_vision_reinforce(attn_graph *g, attn_var *mu, const float *x, const float *adv, float std) {
    if (!g || attn_graph_status(g) != ATTN_OK || !mu) return NULL;
    if (!x || !adv || mu->ndim != 2 || !(std > 0.0f)) return ag_fail(g, ATTN_EINVAL, "attn_vision_reinforce: bad argument");
    int64_t B = mu->shape[0];
    attn_var *d = attn_ag_sub(g, attn_graph_input(g, 2, mu->shape, x), mu);                           /* x - mu (B, D) */
    attn_var *logp = attn_ag_scale(g, attn_ag_sum_axis(g, attn_ag_mul(g, d, d), 1), -0.5f / (std * std)); /* (B), less a constant */
    attn_var *a = attn_graph_input(g, 1, (int64_t[]){B}, adv);
    return attn_ag_scale(g, attn_ag_mean(g, attn_ag_mul(g, logp, a)), -1.0f);
}

/* What ram's loss needs from its forward: per sampled location, the policy's mean node, the
 * sample (before clipping) and the baseline node (B, 1). */
typedef struct {
    int n;
    attn_var *mu[ATTN_VISION_MAX_GLIMPSES], *base[ATTN_VISION_MAX_GLIMPSES];
    float *x[ATTN_VISION_MAX_GLIMPSES];
} ram_policy;

static float clip1(float v) { return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v; }

static attn_var *ram(attn_vision *m, attn_graph *g, attn_var *img, float *locs, ram_policy *pol) {
    const attn_vision_config *c = &m->cfg;
    int64_t B = img->shape[0], H = c->hidden, R = (int64_t)c->scales * c->patch * c->patch;
    float *loc = ag_calloc(g, (size_t)B * 2 * sizeof(float)); /* l_0 = the centre */
    attn_var *h = NULL, *cell = NULL;
    if (pol) pol->n = 0;
    for (int t = 0; t < c->glimpses && loc; t++) {
        if (locs)
            for (int64_t b = 0; b < B; b++) memcpy(locs + ((size_t)b * c->glimpses + t) * 2, loc + b * 2, 2 * sizeof(float));
        attn_var *rho = attn_ag_reshape(g, attn_ag_glimpse(g, img, loc, c->patch, c->scales), 2, (int64_t[]){B, R});
        attn_var *hg = attn_ag_relu(g, LIN(rho, m->g1_w, m->g1_b));
        attn_var *hl = attn_ag_relu(g, LIN(attn_graph_input(g, 2, (int64_t[]){B, 2}, loc), m->l1_w, m->l1_b));
        attn_var *gt = attn_ag_relu(g, attn_ag_add(g, LIN(hg, m->g2_w, m->g2_b), LIN(hl, m->l2_w, m->l2_b)));
        attn_param *const *p = m->core;
        if (c->lstm) h = attn_ag_lstm_cell(g, gt, h, cell, PV(p[0]), PV(p[1]), PV(p[2]), PV(p[3]), &cell);
        else {
            attn_var *in = LIN(gt, p[0], p[2]);
            h = attn_ag_relu(g, h ? attn_ag_add(g, in, LIN(h, p[1], p[3])) : attn_ag_add(g, in, PV(p[3])));
        }
        if (t == c->glimpses - 1 || !h) break;
        /* The location net reads h as a constant. */
        attn_var *hd = attn_graph_input(g, 2, (int64_t[]){B, H}, h->data);
        attn_var *q = c->loc_hidden ? attn_ag_relu(g, LIN(hd, m->lq_w, m->lq_b)) : hd;
        attn_var *mu = attn_ag_tanh(g, LIN(q, m->loc_w, m->loc_b));
        float *next = ag_alloc(g, (size_t)B * 2 * sizeof(float)), *x = ag_alloc(g, (size_t)B * 2 * sizeof(float));
        if (!mu || !next || !x) return NULL;
        int train = attn_graph_training(g);
        attn_rng *rng = attn_graph_rng(g);
        for (int64_t i = 0; i < B * 2; i++) {
            x[i] = train ? mu->data[i] + c->std * attn_rng_normal(rng) : mu->data[i];
            next[i] = clip1(x[i]);
        }
        if (pol) {
            pol->mu[pol->n] = mu, pol->x[pol->n] = x, pol->base[pol->n] = LIN(hd, m->base_w, m->base_b);
            pol->n++;
        }
        loc = next;
    }
    return LIN(h, m->out_w, m->out_b);
}

static attn_var *forward(attn_vision *m, attn_graph *g, attn_var *images, attn_vision_trace *tr, ram_policy *pol) {
    if (!g || attn_graph_status(g) != ATTN_OK) return NULL;
    int64_t S = m ? attn_vision_task_size(m->cfg.task) : 0;
    if (!m || !images || images->ndim != 4 || images->shape[1] != 1 || images->shape[2] != S || images->shape[3] != S)
        return ag_fail(g, ATTN_EINVAL, "attn_vision_forward: NULL model, or images that are not (B, 1, %d, %d)", (int)S, (int)S);
    int64_t B = images->shape[0];
    const attn_vision_config *c = &m->cfg;
    attn_var *P = NULL, *y = NULL;
    switch (c->kind) {
    case ATTN_VISION_FC: {
        attn_var *x = attn_ag_reshape(g, images, 2, (int64_t[]){B, S * S});
        x = attn_ag_relu(g, LIN(attn_ag_relu(g, LIN(x, m->fc1_w, m->fc1_b)), m->fc2_w, m->fc2_b));
        y = LIN(x, m->out_w, m->out_b);
        break;
    }
    case ATTN_VISION_CNN: y = LIN(attn_ag_reshape(g, trunk(m, g, images), 2, (int64_t[]){B, -1}), m->out_w, m->out_b); break;
    case ATTN_VISION_SOFT: y = LIN(soft(m, g, trunk(m, g, images), &P), m->out_w, m->out_b); break;
    case ATTN_VISION_RAM: y = ram(m, g, images, tr ? tr->locs : NULL, pol); break;
    }
    if (y && tr && tr->weights && P) memcpy(tr->weights, P->data, (size_t)P->numel * sizeof(float));
    return y;
}

attn_var *attn_vision_forward(attn_vision *m, attn_graph *g, attn_var *images, attn_vision_trace *trace) {
    return forward(m, g, images, trace, NULL);
}

attn_var *attn_vision_loss(attn_vision *m, attn_graph *g, attn_var *images, const int32_t *labels) {
    ram_policy pol;
    memset(&pol, 0, sizeof pol);
    attn_var *logits = forward(m, g, images, NULL, &pol);
    if (!logits) return NULL;
    int64_t B = logits->shape[0];
    for (int64_t i = 0; labels && i < B; i++)
        if (labels[i] < 0 || labels[i] >= ATTN_VISION_CLASSES)
            return ag_fail(g, ATTN_EINVAL, "vision: label %d of image %d is outside [0, 10)", (int)labels[i], (int)i);
    if (!labels) return ag_fail(g, ATTN_EINVAL, "attn_vision_loss: NULL labels");
    attn_var *loss = attn_ag_cross_entropy(g, logits, labels, -1, 0.0f);
    if (!pol.n) return loss;
    /* The reward: 1 for a right class. */
    float *R = ag_alloc(g, (size_t)B * sizeof(float)), *adv = ag_alloc(g, (size_t)B * sizeof(float));
    if (!R || !adv) return NULL;
    for (int64_t b = 0; b < B; b++) {
        const float *l = logits->data + b * ATTN_VISION_CLASSES;
        int best = 0;
        for (int k = 1; k < ATTN_VISION_CLASSES; k++) best = l[k] > l[best] ? k : best;
        R[b] = best == labels[b];
    }
    attn_var *Rv = attn_graph_input(g, 2, (int64_t[]){B, 1}, R);
    for (int t = 0; t < pol.n && pol.base[t]; t++) {
        for (int64_t b = 0; b < B; b++) adv[b] = R[b] - pol.base[t]->data[b];
        attn_var *d = attn_ag_sub(g, pol.base[t], Rv);
        loss = attn_ag_add(g, loss, attn_vision_reinforce(g, pol.mu[t], pol.x[t], adv, m->cfg.std));
        loss = attn_ag_add(g, loss, attn_ag_mean(g, attn_ag_mul(g, d, d))); /* (reinforce copied adv) */
    }
    return loss;
}

int attn_vision_predict(attn_vision *m, int B, const float *images, int32_t *pred, float *probs, attn_vision_trace *trace) {
    if (!m || !images || B < 1) return attn__error(ATTN_EINVAL, "attn_vision_predict: NULL argument or an empty batch");
    int64_t S = attn_vision_task_size(m->cfg.task);
    attn_graph *g = NULL;
    int st = attn_graph_new(0, &g);
    if (st) return st;
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    attn_var *y = attn_vision_forward(m, g, attn_graph_input(g, 4, (int64_t[]){B, 1, S, S}, images), trace);
    attn_var *p = attn_ag_softmax(g, y);
    if (!(st = attn_graph_status(g))) {
        if (probs) memcpy(probs, p->data, (size_t)B * ATTN_VISION_CLASSES * sizeof(float));
        for (int b = 0; pred && b < B; b++) {
            const float *l = p->data + (size_t)b * ATTN_VISION_CLASSES;
            int best = 0;
            for (int k = 1; k < ATTN_VISION_CLASSES; k++) best = l[k] > l[best] ? k : best;
            pred[b] = best;
        }
    }
    attn_graph_free(g);
    return st;
}

int attn_vision_accuracy(attn_vision *m, const attn_images *src, uint64_t seed, int n_max, double *accuracy,
                         int64_t *confusion) {
    if (!m || !src || !accuracy || !src->labels) return attn__error(ATTN_EINVAL, "attn_vision_accuracy: NULL argument");
    enum { CHUNK = 128 };
    int n = n_max > 0 && n_max < src->n ? n_max : src->n, S = attn_vision_task_size(m->cfg.task);
    float *buf = attn_malloc((size_t)CHUNK * S * S * sizeof(float));
    if (!buf) return attn__error(ATTN_ENOMEM, "attn_vision_accuracy: out of memory");
    if (confusion) memset(confusion, 0, ATTN_VISION_CLASSES * ATTN_VISION_CLASSES * sizeof(int64_t));
    int32_t pred[CHUNK];
    int64_t right = 0;
    int st = ATTN_OK;
    for (int i0 = 0; i0 < n && !st; i0 += CHUNK) {
        int B = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (int b = 0; b < B && !st; b++) st = attn_vision_render(src, m->cfg.task, seed, i0 + b, buf + (size_t)b * S * S, NULL);
        if (!st) st = attn_vision_predict(m, B, buf, pred, NULL, NULL);
        for (int b = 0; b < B && !st; b++) {
            int y = src->labels[i0 + b];
            right += pred[b] == y;
            if (confusion) confusion[y * ATTN_VISION_CLASSES + pred[b]]++;
        }
    }
    attn_free(buf);
    *accuracy = n && !st ? (double)right / n : 0.0;
    return st;
}

/* ---- Checkpoints ------------------------------------------------------------------------ */

int attn_vision_model_json(const attn_vision *m, const char *command, char **json) {
    if (!m || !json) return attn__error(ATTN_EINVAL, "attn_vision_model_json: NULL argument");
    char *cfg = NULL;
    int st = attn_vision_config_to_json(&m->cfg, &cfg);
    if (!st) st = attn__model_json_command(cfg, command, json);
    attn_free(cfg);
    return st;
}

int attn_vision_save(const attn_vision *m, const char *dir, const char *command) {
    if (!m || !dir) return attn__error(ATTN_EINVAL, "attn_vision_save: NULL argument");
    char *json = NULL;
    int st = attn_vision_model_json(m, command, &json);
    if (!st) st = attn__model_save(dir, m->ps, json, 0, NULL);
    attn_free(json);
    return st;
}

/* attn__model_load's builder: the model of the checkpoint's JSON, into *(attn_vision **)ud. */
static int make_loaded(const char *json, void *ud, attn_params **ps) {
    attn_vision_config c;
    attn_vision **m = ud;
    int st = attn_vision_config_from_json(json, &c);
    if (!st) st = attn_vision_new(&c, 0, m);
    if (!st) *ps = (*m)->ps;
    return st;
}

int attn_vision_load(const char *dir, attn_vision **out) {
    if (!dir || !out) return attn__error(ATTN_EINVAL, "attn_vision_load: NULL argument");
    *out = NULL;
    attn_vision *m = NULL;
    int st = attn__model_load(dir, make_loaded, &m);
    if (st) {
        attn_vision_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}
