/* The linear classifiers on TF-IDF rows (attn/tfidf.h): logistic regression, the one-vs-rest
 * squared-hinge SVM and NB-SVM; their loss as autograd ops (the sparse linear layer of
 * nn/sparse_linear.c, then cross-entropy or the hinge), predictions without a graph, and
 * the checkpoint directory (config.json's "model", model.safetensors, tfidf.tsv).
 * Letters: N rows, F features, C classes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/internal.h"
#include "io/ckdir.h"
#include "params/params_internal.h"
#include "models/tfidf_internal.h"
#include "nn/nn_internal.h"

#define FEATURES_FILE "tfidf.tsv"

struct attn_tfclf {
    attn_tfclf_config c;
    attn_tfidf *f;
    attn_params *ps;
    attn_param *W, *b, *r; /* (C, F), (C), (C, F) for NB-SVM (else NULL) */
    char **labels;         /* (C) the classes' names; NULL: none set */
};

static const char *const KIND_NAMES[] = {"tfidf-lr", "tfidf-svm", "nbsvm"};

const char *attn_tfclf_kind_name(attn_tfclf_kind k) { return k >= 0 && k <= ATTN_TFCLF_NBSVM ? KIND_NAMES[k] : "?"; }

int attn_tfclf_kind_parse(const char *name) {
    for (int k = 0; name && k <= ATTN_TFCLF_NBSVM; k++)
        if (!strcmp(name, KIND_NAMES[k])) return k;
    return -1;
}

void attn_tfclf_free(attn_tfclf *m) {
    if (!m) return;
    attn_tfidf_free(m->f);
    attn_params_free(m->ps);
    for (int c = 0; m->labels && c < m->c.n_classes; c++) attn_free(m->labels[c]);
    attn_free(m->labels);
    attn_free(m);
}

const attn_tfidf *attn_tfclf_features(const attn_tfclf *m) { return m ? m->f : NULL; }
attn_params *attn_tfclf_params(attn_tfclf *m) { return m ? m->ps : NULL; }
const attn_tfclf_config *attn_tfclf_config_of(const attn_tfclf *m) { return m ? &m->c : NULL; }

/* A label name goes into config.json and on output lines: not empty, no control character. */
static int label_ok(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

int attn_tfclf_set_labels(attn_tfclf *m, const char *const *names) {
    if (!m || !names) return attn__error(ATTN_EINVAL, "attn_tfclf_set_labels: NULL argument");
    int C = m->c.n_classes;
    for (int c = 0; c < C; c++)
        if (!label_ok(names[c])) return attn__error(ATTN_EINVAL, "attn_tfclf_set_labels: label %d is empty or has a control character", c);
    char **v = attn_calloc((size_t)C, sizeof(char *));
    int st = v ? ATTN_OK : ATTN_ENOMEM;
    for (int c = 0; c < C && !st; c++) {
        size_t n = strlen(names[c]) + 1;
        if (!(v[c] = attn_malloc(n))) st = ATTN_ENOMEM;
        else memcpy(v[c], names[c], n);
    }
    if (st) {
        for (int c = 0; v && c < C; c++) attn_free(v[c]);
        attn_free(v);
        return attn__error(ATTN_ENOMEM, "attn_tfclf_set_labels: out of memory");
    }
    for (int c = 0; m->labels && c < C; c++) attn_free(m->labels[c]);
    attn_free(m->labels);
    m->labels = v;
    return ATTN_OK;
}

const char *attn_tfclf_label(const attn_tfclf *m, int c) {
    return m && m->labels && c >= 0 && c < m->c.n_classes ? m->labels[c] : NULL;
}

int attn_tfclf_new(const attn_tfclf_config *c, attn_tfidf *f, attn_tfclf **out) {
    if (!c || !f || !out) {
        attn_tfidf_free(f);
        return attn__error(ATTN_EINVAL, "attn_tfclf_new: NULL argument");
    }
    *out = NULL;
    int C = c->n_classes, F = attn_tfidf_size(f);
    if (c->kind < ATTN_TFCLF_LR || c->kind > ATTN_TFCLF_NBSVM || C < 2 || F < 1 || !(c->nb_alpha > 0)) {
        attn_tfidf_free(f);
        return attn__error(ATTN_EINVAL, "attn_tfclf_new: bad configuration (kind %d, %d classes, %d features, alpha %g)",
                           (int)c->kind, C, F, (double)c->nb_alpha);
    }
    attn_tfclf *m = attn_calloc(1, sizeof *m);
    if (!m) {
        attn_tfidf_free(f);
        return attn__error(ATTN_ENOMEM, "attn_tfclf_new: out of memory");
    }
    m->c = *c, m->f = f;
    int st = attn_params_new(&m->ps);
    if (!st) {
        m->W = attn_params_add(m->ps, "weight", 2, (int64_t[]){C, F}, attn_init_zeros());
        m->b = attn_params_add(m->ps, "bias", 1, (int64_t[]){C}, attn_init_zeros());
        if (c->kind == ATTN_TFCLF_NBSVM) m->r = attn_params_add(m->ps, "nb_ratio", 2, (int64_t[]){C, F}, attn_init_constant(1.0f));
        if (!m->W || !m->b || (c->kind == ATTN_TFCLF_NBSVM && !m->r)) st = ATTN_ENOMEM;
        else {
            m->b->no_decay = 1;
            if (m->r) m->r->frozen = 1;
            st = attn_params_init(m->ps, 0);
        }
    }
    if (st) {
        attn_tfclf_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}

static int check_rows(const attn_tfclf *m, const attn_csr *X, const int32_t *y, const char *fn) {
    if (!X || !X->rowptr || X->rows < 0 || X->cols != attn_tfidf_size(m->f))
        return attn__error(ATTN_EINVAL, "%s: rows of %lld features for a model of %d", fn, X ? (long long)X->cols : 0LL,
                           attn_tfidf_size(m->f));
    for (int64_t i = 0; y && i < X->rows; i++)
        if (y[i] < 0 || y[i] >= m->c.n_classes)
            return attn__error(ATTN_EINVAL, "%s: label %d of row %lld outside [0, %d)", fn, (int)y[i], (long long)i, m->c.n_classes);
    return ATTN_OK;
}

int attn_tfclf_fit_nb(attn_tfclf *m, const attn_csr *X, const int32_t *y) {
    if (!m || !y) return attn__error(ATTN_EINVAL, "attn_tfclf_fit_nb: NULL argument");
    int st = check_rows(m, X, y, "attn_tfclf_fit_nb");
    if (st || !m->r) return st;
    int C = m->c.n_classes, F = (int)X->cols;
    double a = m->c.nb_alpha, *cnt = attn_calloc((size_t)(C + 1) * F, sizeof(double)), *all = cnt + (size_t)C * F;
    if (!cnt) return attn__error(ATTN_ENOMEM, "attn_tfclf_fit_nb: out of memory");
    /* cnt[c, j]: rows of class c where feature j is present (the binarised features) */
    for (int64_t i = 0; i < X->rows; i++)
        for (int64_t k = X->rowptr[i]; k < X->rowptr[i + 1]; k++)
            if (X->val[k] != 0) cnt[(size_t)y[i] * F + X->col[k]] += 1, all[X->col[k]] += 1;
    for (int c = 0; c < C; c++) {
        const double *pc = cnt + (size_t)c * F;
        double sp = 0, sq = 0;
        for (int j = 0; j < F; j++) sp += a + pc[j], sq += a + (all[j] - pc[j]);
        /* r = ln((p / |p|_1) / (q / |q|_1)), p = alpha + pc, q = alpha + the other classes' */
        for (int j = 0; j < F; j++) m->r->data[(size_t)c * F + j] = (float)log(((a + pc[j]) / sp) / ((a + all[j] - pc[j]) / sq));
    }
    attn_free(cnt);
    return ATTN_OK;
}

/* The scores (N, C) of a batch in CSR on g. NB-SVM: class c's values scaled by its ratios,
 * through row c of W and b as leaves over the parameters' memory. */
static attn_var *batch_scores(attn_tfclf *m, attn_graph *g, int64_t N, const int64_t *rp, const int32_t *col,
                              const float *val) {
    attn_var *W = attn_param_var(g, m->W), *b = attn_param_var(g, m->b);
    if (!m->r || !W || !b) return attn_ag_sparse_linear(g, N, rp, col, val, W, b);
    int C = m->c.n_classes, F = attn_tfidf_size(m->f);
    int64_t nnz = rp[N];
    attn_var *cols[8], **sc = C <= 8 ? cols : attn_graph_alloc(g, (size_t)C * sizeof(attn_var *));
    float *v = attn_graph_alloc(g, (size_t)(nnz + 1) * sizeof(float));
    if (!sc || !v) return NULL;
    for (int c = 0; c < C; c++) {
        const float *r = m->r->data + (size_t)c * F;
        for (int64_t k = 0; k < nnz; k++) v[k] = val[k] * r[col[k]];
        attn_var *Wc = attn_graph_leaf(g, 2, (int64_t[]){1, F}, W->data + (size_t)c * F, W->grad ? W->grad + (size_t)c * F : NULL);
        attn_var *bc = attn_graph_leaf(g, 1, (int64_t[]){1}, b->data + c, b->grad ? b->grad + c : NULL);
        sc[c] = attn_ag_sparse_linear(g, N, rp, col, v, Wc, bc); /* copies v */
    }
    return attn_ag_concat(g, C, sc, 1);
}

attn_var *attn_tfclf_loss(attn_tfclf *m, attn_graph *g, const attn_csr *X, const int32_t *y, const int *idx, int n) {
    if (!m || !g || !X || !y || !idx || n < 1) {
        attn__error(ATTN_EINVAL, "attn_tfclf_loss: NULL argument or empty batch");
        return NULL;
    }
    int C = m->c.n_classes;
    /* The batch's rows gathered into the graph's arena. */
    int64_t nnz = 0;
    for (int i = 0; i < n; i++) nnz += X->rowptr[idx[i] + 1] - X->rowptr[idx[i]];
    int64_t *rp = attn_graph_alloc(g, (size_t)(n + 1) * sizeof(int64_t));
    int32_t *col = attn_graph_alloc(g, (size_t)(nnz + 1) * sizeof(int32_t)), *yb = attn_graph_alloc(g, (size_t)n * sizeof(int32_t));
    float *val = attn_graph_alloc(g, (size_t)(nnz + 1) * sizeof(float));
    if (!rp || !col || !val || !yb) return NULL;
    rp[0] = 0;
    for (int i = 0; i < n; i++) {
        int64_t k0 = X->rowptr[idx[i]], len = X->rowptr[idx[i] + 1] - k0;
        memcpy(col + rp[i], X->col + k0, (size_t)len * sizeof(int32_t));
        memcpy(val + rp[i], X->val + k0, (size_t)len * sizeof(float));
        rp[i + 1] = rp[i] + len, yb[i] = y[idx[i]];
    }
    attn_var *s = batch_scores(m, g, n, rp, col, val); /* (n, C) */
    if (m->c.kind == ATTN_TFCLF_LR) return attn_ag_cross_entropy(g, s, yb, -1, 0.0f);
    /* Squared hinge, one-vs-rest: mean over rows of sum_c max(0, 1 - t_c s_c)^2. */
    attn_var *t = attn_graph_input(g, 2, (int64_t[]){n, C}, NULL), *one = attn_graph_input(g, 2, (int64_t[]){n, C}, NULL);
    if (!t || !one) return NULL;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) t->data[(size_t)i * C + c] = c == yb[i] ? 1.0f : -1.0f, one->data[(size_t)i * C + c] = 1.0f;
    attn_var *h = attn_ag_relu(g, attn_ag_sub(g, one, attn_ag_mul(g, s, t)));
    return attn_ag_scale(g, attn_ag_sum(g, attn_ag_mul(g, h, h)), 1.0f / (float)n);
}

int attn_tfclf_predict(const attn_tfclf *m, const attn_csr *X, int32_t *pred, float *scores) {
    if (!m) return attn__error(ATTN_EINVAL, "attn_tfclf_predict: NULL argument");
    int st = check_rows(m, X, NULL, "attn_tfclf_predict");
    if (st) return st;
    int C = m->c.n_classes, F = (int)X->cols, N = (int)X->rows;
    int64_t nnz = X->rowptr[N];
    float *s = attn_malloc((size_t)N * C * sizeof(float) + 1), *v = m->r ? attn_malloc((size_t)nnz * sizeof(float) + 1) : NULL;
    float *one = m->r ? attn_malloc((size_t)N * sizeof(float) + 1) : NULL;
    if (!s || (m->r && (!v || !one))) {
        attn_free(s), attn_free(v), attn_free(one);
        return attn__error(ATTN_ENOMEM, "attn_tfclf_predict: out of memory");
    }
    if (!m->r) attn__sparse_linear_forward(s, X->rowptr, X->col, X->val, m->W->data, m->b->data, N, F, C);
    else
        for (int c = 0; c < C; c++) { /* class c on its scaled features, as the loss has it */
            const float *r = m->r->data + (size_t)c * F;
            for (int64_t k = 0; k < nnz; k++) v[k] = X->val[k] * r[X->col[k]];
            attn__sparse_linear_forward(one, X->rowptr, X->col, v, m->W->data + (size_t)c * F, m->b->data + c, N, F, 1);
            for (int i = 0; i < N; i++) s[(size_t)i * C + c] = one[i];
        }
    for (int i = 0; pred && i < N; i++) {
        int best = 0;
        for (int c = 1; c < C; c++)
            if (s[(size_t)i * C + c] > s[(size_t)i * C + best]) best = c;
        pred[i] = best;
    }
    if (scores) memcpy(scores, s, (size_t)N * C * sizeof(float));
    attn_free(s), attn_free(v), attn_free(one);
    return ATTN_OK;
}

int attn_tfclf_contrib(const attn_tfclf *m, const attn_csr *X, int64_t i, int c, float *contrib) {
    if (!m || !contrib) return attn__error(ATTN_EINVAL, "attn_tfclf_contrib: NULL argument");
    int st = check_rows(m, X, NULL, "attn_tfclf_contrib");
    if (st) return st;
    if (i < 0 || i >= X->rows || c < 0 || c >= m->c.n_classes)
        return attn__error(ATTN_EINVAL, "attn_tfclf_contrib: row %lld or class %d out of range", (long long)i, c);
    int F = (int)X->cols;
    const float *w = m->W->data + (size_t)c * F, *r = m->r ? m->r->data + (size_t)c * F : NULL;
    for (int64_t k = X->rowptr[i]; k < X->rowptr[i + 1]; k++) {
        float v = r ? X->val[k] * r[X->col[k]] : X->val[k]; /* the value the score sees, as in predict */
        contrib[k - X->rowptr[i]] = v * w[X->col[k]];
    }
    return ATTN_OK;
}

/* ---- Checkpoint directory ------------------------------------------------------------------ */

void attn_tfclf_export_free(attn_tfclf_export *e) {
    if (!e) return;
    attn_free(e->model_json), attn_free(e->data_);
    memset(e, 0, sizeof *e);
}

int attn_tfclf_export_make(const attn_tfclf *m, attn_tfclf_export *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_tfclf_export_make: NULL argument");
    memset(out, 0, sizeof *out);
    if (!m) return attn__error(ATTN_EINVAL, "attn_tfclf_export_make: NULL argument");
    attn__sb json = {0}, feats = {0};
    attn__sb_printf(&json, "{\"kind\": \"%s\", \"classes\": %d, \"nb_alpha\": ", KIND_NAMES[m->c.kind], m->c.n_classes);
    attn__json_f32(&json, m->c.nb_alpha);
    if (m->labels) {
        attn__sb_str(&json, ", \"labels\": [");
        for (int c = 0; c < m->c.n_classes; c++) {
            if (c) attn__sb_str(&json, ", ");
            attn__json_escape(&json, m->labels[c], 0);
        }
        attn__sb_str(&json, "]");
    }
    attn__sb_str(&json, "}");
    attn__tfidf_write(m->f, &feats);
    size_t n = 0;
    out->model_json = attn__sb_take(&json, NULL), out->data_ = attn__sb_take(&feats, &n);
    if (!out->model_json || !out->data_) {
        attn_tfclf_export_free(out);
        return attn__error(ATTN_ENOMEM, "attn_tfclf_export_make: out of memory");
    }
    out->file = (attn_ckpt_file){FEATURES_FILE, NULL, out->data_, n};
    return ATTN_OK;
}

int attn_tfclf_save(const attn_tfclf *m, const char *dir) {
    if (!m || !dir) return attn__error(ATTN_EINVAL, "attn_tfclf_save: NULL argument");
    attn_tfclf_export e;
    int st = attn_tfclf_export_make(m, &e);
    if (st) return st;
    st = attn__model_save(dir, m->ps, e.model_json, 1, &e.file);
    attn_tfclf_export_free(&e);
    return st;
}

/* The "model" object: kind, classes, nb_alpha. */
static int read_config(const attn__ck *ck, attn_tfclf_config *c) {
    const attn__json *mo = attn__ck_member(ck, "model"), *kind = NULL;
    for (const attn__json *v = mo ? mo->child : NULL; v; v = v->next)
        if (!strcmp(v->key, "kind")) kind = v;
    int k = kind && kind->type == ATTN__JSON_STRING ? attn_tfclf_kind_parse(kind->str) : -1;
    if (k < 0) return attn__ck_bad(ck, "\"model\" is not a TF-IDF classifier (kind tfidf-lr, tfidf-svm or nbsvm)");
    int64_t classes;
    double alpha = 0;
    int st = attn__ck_u64(ck, mo, "classes", &classes);
    if (!st) st = attn__ck_double(ck, mo, "nb_alpha", &alpha);
    if (!st && (classes < 2 || classes > INT32_MAX || !(alpha > 0))) st = attn__ck_bad(ck, "bad \"classes\" or \"nb_alpha\"");
    *c = (attn_tfclf_config){(attn_tfclf_kind)k, (int)classes, (float)alpha};
    return st;
}

/* The optional "labels" of the "model" object: as many distinct names as classes. */
static int read_labels(const attn__ck *ck, attn_tfclf *m) {
    const attn__json *mo = attn__ck_member(ck, "model"), *lab = NULL;
    for (const attn__json *v = mo ? mo->child : NULL; v; v = v->next)
        if (!strcmp(v->key, "labels")) lab = v;
    if (!lab) return ATTN_OK;
    int C = m->c.n_classes, i = 0;
    const char *names[64], **v = C <= 64 ? names : attn_malloc((size_t)C * sizeof(char *));
    if (!v) return attn__error(ATTN_ENOMEM, "attn_tfclf_load: out of memory");
    int st = lab->type == ATTN__JSON_ARRAY && lab->len == (size_t)C ? ATTN_OK : attn__ck_bad(ck, "\"labels\" is not an array of one name per class");
    for (const attn__json *e = lab->child; e && !st; e = e->next, i++) {
        if (e->type != ATTN__JSON_STRING || strlen(e->str) != e->len || !label_ok(e->str)) st = attn__ck_bad(ck, "a label is not a non-empty name");
        for (int j = 0; j < i && !st; j++)
            if (!strcmp(v[j], e->str)) st = attn__ck_bad(ck, "two labels have the same name");
        if (!st) v[i] = e->str;
    }
    if (!st) st = attn_tfclf_set_labels(m, v);
    if (v != names) attn_free((void *)v);
    return st;
}

int attn_tfclf_load(const char *dir, attn_tfclf **out) {
    if (!dir || !out) return attn__error(ATTN_EINVAL, "attn_tfclf_load: NULL argument");
    *out = NULL;
    attn__ck ck;
    int st = attn__ck_open(dir, &ck);
    if (st) return st;
    attn_tfclf_config c;
    attn_tfidf *f = NULL;
    attn_tfclf *m = NULL;
    char *text = NULL, *weights = NULL;
    size_t n = 0;
    const char *fp = attn__ck_extra(&ck, FEATURES_FILE);
    if ((st = read_config(&ck, &c))) goto done;
    if (!fp) {
        st = attn__error(ATTN_EFORMAT, "%s: not a TF-IDF checkpoint (no " FEATURES_FILE ")", dir);
        goto done;
    }
    if ((st = attn__read_file(fp, (size_t)1 << 31, &text, &n)) || (st = attn__tfidf_read(text, n, fp, &f))) goto done;
    if ((st = attn_tfclf_new(&c, f, &m)) || (st = read_labels(&ck, m))) goto done; /* takes f */
    if (!(weights = attn__ck_file_path(dir, ATTN__CK_MODEL))) st = attn__error(ATTN_ENOMEM, "attn_tfclf_load: out of memory");
    else st = attn_params_load(m->ps, weights, 0);
done:
    attn_free(text), attn_free(weights);
    attn__ck_close(&ck);
    if (st) {
        attn_tfclf_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}
