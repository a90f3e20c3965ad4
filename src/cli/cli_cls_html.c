/* The page of `attn classify --attention-html FILE` (cli_cls.h): each classified text with its
 * verdict and a weight per token, kept (copied) until the page is written by attn_texts_html
 * (attn/viz_html.h). The weights are the model's own explanation: the pooling weights of a
 * neural model (what --show-attention prints), each word's share of the n-gram contributions
 * of a TF-IDF model (what --explain lists, mapped onto the words, with its top n-grams). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "attn/viz_html.h"
#include "cli_cls.h"

/* One text and the strings its attn_html_text points to (owned). */
typedef struct {
    attn_html_text h;
    char **tok, **term; /* (h.n), (h.n_terms) */
    float *w, *term_w;  /* (h.n), (h.n_terms) */
} page_text;

struct cls_page {
    page_text *t;
    int n, cap;
};

cls_page *cls_page_new(void) { return calloc(1, sizeof(cls_page)); }

static void strs_free(char **a, int n) {
    for (int i = 0; a && i < n; i++) free(a[i]);
    free(a);
}

void cls_page_free(cls_page *pg) {
    if (!pg) return;
    for (int i = 0; i < pg->n; i++) {
        page_text *t = &pg->t[i];
        free((void *)t->h.text), strs_free(t->tok, t->h.n), strs_free(t->term, t->h.n_terms), free(t->w), free(t->term_w);
    }
    free(pg->t);
    free(pg);
}

/* Copies n strings and their weights into *s, *w (1 on success). */
static int copy(int n, const char *const *src, const float *wsrc, char ***s, float **w) {
    *s = calloc((size_t)n + 1, sizeof(char *)), *w = malloc(((size_t)n + 1) * sizeof(float));
    if (!*s || !*w) return 0;
    for (int i = 0; i < n; i++)
        if (!((*s)[i] = strdup(src[i]))) return 0;
    if (n) memcpy(*w, wsrc, (size_t)n * sizeof(float));
    return 1;
}

int cls_page_add(const char *cmd, cls_page *pg, cls_model *m, const char *text, int32_t pred, float num, int top) {
    cls_view v = {0};
    int st = ATTN_OK;
    if (m->contrib) st = m->contrib(m->self, text, top, &v);
    else if (m->weights) st = m->weights(m->self, text, &v.n, &v.tok, &v.w);
    if (st) return cli_fail_lib(cmd, st, NULL);
    if (pg->n == pg->cap) {
        int cap = pg->cap ? 2 * pg->cap : 16;
        page_text *nt = realloc(pg->t, (size_t)cap * sizeof *nt);
        if (!nt) return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
        pg->t = nt, pg->cap = cap;
    }
    page_text *t = &pg->t[pg->n++];
    memset(t, 0, sizeof *t);
    t->h = (attn_html_text){strdup(text), m->labels[pred], num, v.n, NULL, NULL, v.n_terms, NULL, NULL};
    if (!t->h.text || !copy(v.n, v.tok, v.w, &t->tok, &t->w) || !copy(v.n_terms, v.term, v.term_w, &t->term, &t->term_w))
        return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    t->h.tok = (const char *const *)t->tok, t->h.w = t->w, t->h.term = (const char *const *)t->term, t->h.term_w = t->term_w;
    return CLI_OK;
}

int cls_page_write(const char *cmd, const cls_page *pg, const cls_model *m, const char *dir, const char *path) {
    if (!pg->n) return cli_fail(cmd, "%s: nothing to draw: no text was classified", path);
    attn_html_text *h = malloc((size_t)pg->n * sizeof *h);
    if (!h) return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    for (int i = 0; i < pg->n; i++) h[i] = pg->t[i].h;
    char title[512];
    snprintf(title, sizeof title, "%s: %s", m->kind, dir);
    attn_html_texts page = {title, m->legend ? m->legend : "", m->number,
                            m->contrib ? "the n-grams that weighed most, with their contributions" : "", m->contrib != NULL};
    int st = attn_texts_html_save(&page, h, pg->n, path);
    free(h);
    return st ? cli_fail_lib(cmd, st, path) : CLI_OK;
}
