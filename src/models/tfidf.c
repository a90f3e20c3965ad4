/* TF-IDF features (attn/tfidf.h): n-grams of the library's tokenisers, a vocabulary fitted on
 * the training texts, sublinear tf times smooth idf, L2-normalised compressed sparse rows;
 * and the features file of a checkpoint (models/tfidf_internal.h). Not here: the classifiers
 * (models/tfidf_clf.c). Letters: n texts, F features, nnz non-zeros. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "models/tfidf_internal.h"

struct attn_tfidf {
    attn_tfidf_config c;
    int64_t n_docs;   /* training texts of the fit */
    attn_counter *ng; /* the features: index = column */
    int64_t *df;      /* (F) */
    float *idf;       /* (F) */
};

attn_tfidf_config attn_tfidf_defaults(attn_tok_kind tok) {
    attn_tfidf_config c = {tok, 1, tok == ATTN_TOK_ZH ? 3 : 2, 1, 0, 1};
    return c;
}

void attn_csr_free(attn_csr *m) {
    if (!m) return;
    attn_free(m->rowptr), attn_free(m->col), attn_free(m->val);
    memset(m, 0, sizeof *m);
}

void attn_tfidf_free(attn_tfidf *f) {
    if (!f) return;
    attn_counter_free(f->ng);
    attn_free(f->df), attn_free(f->idf);
    attn_free(f);
}

int attn_tfidf_size(const attn_tfidf *f) { return f ? attn_counter_size(f->ng) : 0; }
const attn_tfidf_config *attn_tfidf_config_of(const attn_tfidf *f) { return f ? &f->c : NULL; }
const char *attn_tfidf_feature(const attn_tfidf *f, int j) { return f ? attn_counter_token(f->ng, j) : NULL; }
float attn_tfidf_idf(const attn_tfidf *f, int j) { return f && j >= 0 && j < attn_tfidf_size(f) ? f->idf[j] : 0.0f; }
int attn_tfidf_find(const attn_tfidf *f, const char *ngram) {
    return f && ngram ? attn_counter_find(f->ng, ngram, strlen(ngram)) : -1;
}

static int check_config(const attn_tfidf_config *c) {
    if (c->tok < ATTN_TOK_SPACE || c->tok > ATTN_TOK_ZH || c->ngram_min < 1 || c->ngram_max < c->ngram_min ||
        c->ngram_max > ATTN_TFIDF_MAX_N || c->min_df < 1 || c->max_features < 0)
        return attn__error(ATTN_EINVAL, "tfidf: bad configuration (tokeniser %d, n-grams %d..%d, min_df %d, max_features %d)",
                           (int)c->tok, c->ngram_min, c->ngram_max, c->min_df, c->max_features);
    return ATTN_OK;
}

/* The n-grams of one text, each as its tokens joined by spaces: calls fn(ctx, ngram, len) for
 * every n-gram in order. */
typedef int (*ngram_fn)(void *ctx, const char *s, size_t len);

static int each_ngram(const attn_tfidf_config *c, const char *text, attn_tokens *tok, attn__sb *sb, ngram_fn fn, void *ctx) {
    int st = attn_tokenize(c->tok, text, tok);
    if (st) return st;
    for (int len = c->ngram_min; len <= c->ngram_max; len++)
        for (int i = 0; i + len <= tok->n; i++) {
            sb->len = 0;
            for (int k = 0; k < len; k++) {
                if (k) attn__sb_put(sb, " ", 1);
                attn__sb_put(sb, tok->tok[i + k], (size_t)tok->len[i + k]);
            }
            if (sb->failed) return attn__error(ATTN_ENOMEM, "tfidf: out of memory");
            if ((st = fn(ctx, sb->buf, sb->len))) return st;
        }
    return ATTN_OK;
}

/* A growable int array. */
typedef struct {
    int *v;
    int n, cap;
} ivec;

static int ivec_push(ivec *a, int x) {
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 256;
        int *v = attn_malloc((size_t)cap * sizeof(int));
        if (!v) return ATTN_ENOMEM;
        if (a->n) memcpy(v, a->v, (size_t)a->n * sizeof(int));
        attn_free(a->v);
        a->v = v, a->cap = cap;
    }
    a->v[a->n++] = x;
    return ATTN_OK;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Fitting: every n-gram of a text interned in `all` (count 0), its index kept. */
typedef struct {
    attn_counter *all;
    ivec ids;
} fit_ctx;

static int fit_add(void *ctx, const char *s, size_t len) {
    fit_ctx *fc = ctx;
    int id, st = attn_counter_add(fc->all, s, len, 0, &id);
    return st ? st : ivec_push(&fc->ids, id) ? attn__error(ATTN_ENOMEM, "tfidf: out of memory") : ATTN_OK;
}

/* A candidate feature; the vocabulary's order: document frequency descending, then bytes
 * ascending. */
typedef struct {
    int64_t df;
    const char *s;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->df != y->df) return x->df > y->df ? -1 : 1;
    return strcmp(x->s, y->s);
}

/* idf = ln((1 + n) / (1 + df)) + 1, in double, rounded to float. */
static float smooth_idf(int64_t n, int64_t df) { return (float)(log((1.0 + (double)n) / (1.0 + (double)df)) + 1.0); }

/* An empty feature set of configuration c over n_docs texts, with room for F features. */
static int tfidf_alloc(const attn_tfidf_config *c, int64_t n_docs, int F, attn_tfidf **out) {
    attn_tfidf *f = attn_calloc(1, sizeof *f);
    if (!f) return attn__error(ATTN_ENOMEM, "tfidf: out of memory");
    f->c = *c, f->n_docs = n_docs;
    f->df = attn_calloc((size_t)F + 1, sizeof(int64_t));
    f->idf = attn_calloc((size_t)F + 1, sizeof(float));
    int st = f->df && f->idf ? attn_counter_new(&f->ng) : attn__error(ATTN_ENOMEM, "tfidf: out of memory");
    if (st) {
        attn_tfidf_free(f);
        return st;
    }
    *out = f;
    return ATTN_OK;
}

/* Appends a feature of document frequency df as the next column. */
static int tfidf_push(attn_tfidf *f, const char *s, size_t len, int64_t df) {
    int j, before = attn_counter_size(f->ng), st = attn_counter_add(f->ng, s, len, 1, &j);
    if (st) return st;
    if (j != before) return attn__error(ATTN_EFORMAT, "tfidf: duplicate feature \"%.*s\"", (int)len, s);
    f->df[j] = df, f->idf[j] = smooth_idf(f->n_docs, df);
    return ATTN_OK;
}

int attn_tfidf_fit(const attn_tfidf_config *c, const char *const *texts, int n, attn_tfidf **out) {
    if (!c || !texts || !out || n < 1) return attn__error(ATTN_EINVAL, "attn_tfidf_fit: NULL argument or no text");
    *out = NULL;
    int st = check_config(c);
    if (st) return st;
    fit_ctx fc = {NULL, {0}};
    attn_tokens tok = {0};
    attn__sb sb = {0};
    cand *keep = NULL;
    attn_tfidf *f = NULL;
    if ((st = attn_counter_new(&fc.all))) goto done;
    /* Document frequencies: each distinct n-gram of a text counted once. */
    for (int i = 0; i < n && !st; i++) {
        fc.ids.n = 0;
        if (!texts[i]) st = attn__error(ATTN_EINVAL, "attn_tfidf_fit: text %d is NULL", i);
        else st = each_ngram(c, texts[i], &tok, &sb, fit_add, &fc);
        if (st) break;
        if (fc.ids.n) qsort(fc.ids.v, (size_t)fc.ids.n, sizeof(int), cmp_int);
        for (int k = 0; k < fc.ids.n && !st; k++)
            if (k == 0 || fc.ids.v[k] != fc.ids.v[k - 1]) {
                const char *s = attn_counter_token(fc.all, fc.ids.v[k]);
                st = attn_counter_add(fc.all, s, strlen(s), 1, NULL);
            }
    }
    if (st) goto done;
    int V = attn_counter_size(fc.all), F = 0;
    if (!(keep = attn_malloc((size_t)V * sizeof(cand) + 1))) {
        st = attn__error(ATTN_ENOMEM, "tfidf: out of memory");
        goto done;
    }
    for (int j = 0; j < V; j++)
        if (attn_counter_count(fc.all, j) >= c->min_df) keep[F++] = (cand){attn_counter_count(fc.all, j), attn_counter_token(fc.all, j)};
    qsort(keep, (size_t)F, sizeof(cand), cmp_cand);
    if (c->max_features > 0 && F > c->max_features) F = c->max_features;
    if ((st = tfidf_alloc(c, n, F, &f))) goto done;
    for (int j = 0; j < F && !st; j++) st = tfidf_push(f, keep[j].s, strlen(keep[j].s), keep[j].df);
done:
    attn_counter_free(fc.all), attn_free(fc.ids.v), attn_free(keep);
    attn_tokens_free(&tok), attn__sb_free(&sb);
    if (st) {
        attn_tfidf_free(f);
        return st;
    }
    *out = f;
    return ATTN_OK;
}

/* Transforming: the columns of a text's known n-grams. */
typedef struct {
    const attn_tfidf *f;
    ivec cols;
} tr_ctx;

static int tr_add(void *ctx, const char *s, size_t len) {
    tr_ctx *t = ctx;
    int j = attn_counter_find(t->f->ng, s, len);
    return j < 0 ? ATTN_OK : ivec_push(&t->cols, j) ? attn__error(ATTN_ENOMEM, "tfidf: out of memory") : ATTN_OK;
}

int attn_tfidf_transform(const attn_tfidf *f, const char *const *texts, int n, attn_csr *out) {
    if (!f || !texts || !out || n < 0) return attn__error(ATTN_EINVAL, "attn_tfidf_transform: NULL argument");
    attn_csr_free(out);
    tr_ctx t = {f, {0}};
    attn_tokens tok = {0};
    attn__sb sb = {0};
    int st = ATTN_OK;
    /* First pass: the distinct columns of each row, kept in one list. */
    ivec all = {0}, cnt = {0};
    out->rowptr = attn_malloc(((size_t)n + 1) * sizeof(int64_t));
    if (!out->rowptr) st = attn__error(ATTN_ENOMEM, "tfidf: out of memory");
    else out->rowptr[0] = 0;
    for (int i = 0; i < n && !st; i++) {
        t.cols.n = 0;
        if (!texts[i]) st = attn__error(ATTN_EINVAL, "attn_tfidf_transform: text %d is NULL", i);
        else st = each_ngram(&f->c, texts[i], &tok, &sb, tr_add, &t);
        if (st) break;
        if (t.cols.n) qsort(t.cols.v, (size_t)t.cols.n, sizeof(int), cmp_int); /* v is NULL before the first n-gram */
        for (int k = 0; k < t.cols.n && !st; k++) {
            if (k > 0 && t.cols.v[k] == t.cols.v[k - 1]) cnt.v[cnt.n - 1]++;
            else if (ivec_push(&all, t.cols.v[k]) || ivec_push(&cnt, 1)) st = attn__error(ATTN_ENOMEM, "tfidf: out of memory");
        }
        out->rowptr[i + 1] = all.n;
    }
    if (!st) {
        size_t nnz = (size_t)all.n;
        out->col = attn_malloc(nnz * sizeof(int32_t) + 1), out->val = attn_malloc(nnz * sizeof(float) + 1);
        if (!out->col || !out->val) st = attn__error(ATTN_ENOMEM, "tfidf: out of memory");
    }
    /* The values: tf (or 1 + ln tf) times idf, each row scaled to unit norm. */
    for (int i = 0; i < n && !st; i++) {
        double ss = 0;
        for (int64_t k = out->rowptr[i]; k < out->rowptr[i + 1]; k++) {
            double tf = f->c.sublinear_tf ? 1.0 + log((double)cnt.v[k]) : (double)cnt.v[k];
            out->col[k] = all.v[k];
            out->val[k] = (float)(tf * f->idf[all.v[k]]);
            ss += (double)out->val[k] * out->val[k];
        }
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int64_t k = out->rowptr[i]; k < out->rowptr[i + 1]; k++) out->val[k] = (float)(out->val[k] * inv);
    }
    attn_free(t.cols.v), attn_free(all.v), attn_free(cnt.v);
    attn_tokens_free(&tok), attn__sb_free(&sb);
    if (st) {
        attn_csr_free(out);
        return st;
    }
    out->rows = n, out->cols = attn_tfidf_size(f);
    return ATTN_OK;
}

/* ---- The features file -------------------------------------------------------------------- */

void attn__tfidf_write(const attn_tfidf *f, attn__sb *sb) {
    attn__sb_printf(sb, "attn-tfidf 1 %d %d %d %d %lld\n", (int)f->c.tok, f->c.ngram_min, f->c.ngram_max,
                    f->c.sublinear_tf, (long long)f->n_docs);
    for (int j = 0, F = attn_tfidf_size(f); j < F; j++)
        attn__sb_printf(sb, "%lld\t%s\n", (long long)f->df[j], attn_counter_token(f->ng, j));
}

int attn__tfidf_read(const char *text, size_t n, const char *path, attn_tfidf **out) {
    *out = NULL;
    attn_tfidf_config c = {0, 0, 0, 1, 0, 0};
    int tok, used = 0, lines = 0;
    long long n_docs;
    const char *end = memchr(text, '\n', n);
    if (!end || sscanf(text, "attn-tfidf 1 %d %d %d %d %lld%n", &tok, &c.ngram_min, &c.ngram_max, &c.sublinear_tf, &n_docs,
                       &used) != 5 || text + used != end || n_docs < 1 || (c.sublinear_tf != 0 && c.sublinear_tf != 1))
        return attn__error(ATTN_EFORMAT, "%s: line 1: not an attn-tfidf version 1 header", path);
    c.tok = (attn_tok_kind)tok;
    if (check_config(&c)) return attn__error(ATTN_EFORMAT, "%s: line 1: %s", path, attn_last_error());
    for (const char *p = end + 1; p < text + n; p++) lines += *p == '\n';
    attn_tfidf *f;
    int st = tfidf_alloc(&c, n_docs, lines, &f), line = 1;
    for (const char *p = end + 1; !st && p < text + n; p = end + 1) {
        line++;
        end = memchr(p, '\n', (size_t)(text + n - p));
        const char *tab = end ? memchr(p, '\t', (size_t)(end - p)) : NULL;
        char *num_end;
        long long df = tab ? strtoll(p, &num_end, 10) : 0;
        if (!end || !tab || p == tab || num_end != tab || df < 1 || df > n_docs || tab + 1 == end)
            st = attn__error(ATTN_EFORMAT, "%s: line %d: expected DF<TAB>NGRAM with 1 <= DF <= %lld", path, line, n_docs);
        else if ((st = tfidf_push(f, tab + 1, (size_t)(end - tab - 1), df)))
            st = attn__error(ATTN_EFORMAT, "%s: line %d: %s", path, line, attn_last_error());
    }
    if (st) {
        attn_tfidf_free(f);
        return st;
    }
    *out = f;
    return ATTN_OK;
}
