/* The attention explorer page of `attn translate --attention-html` (see cli_attention_html.h):
 * each sentence's source ids are rebuilt from its tokens, its maps computed by the
 * translator, labelled (source tokens with <eos>; decoder inputs <bos> y_1 .. y_n; outputs
 * y_1 .. y_n <eos>) and kept until the page is written. */
#define _POSIX_C_SOURCE 200809L
#include "cli_attention_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/viz_html.h"
#include "cli.h"

typedef struct {
    char *title;
    attn_map_set set;
    char **src, **din, **dout; /* labels */
    int n_src, n_din, n_dout;
    attn_html_map *maps;
} sentence_maps;

struct cli_html_pages {
    sentence_maps *s;
    int n, cap;
};

cli_html_pages *cli_html_new(void) { return calloc(1, sizeof(cli_html_pages)); }

static void strs_free(char **a, int n) {
    for (int i = 0; a && i < n; i++) free(a[i]);
    free(a);
}

void cli_html_free(cli_html_pages *pg) {
    if (!pg) return;
    for (int i = 0; i < pg->n; i++) {
        sentence_maps *s = &pg->s[i];
        free(s->title);
        attn_map_set_free(&s->set);
        strs_free(s->src, s->n_src), strs_free(s->din, s->n_din), strs_free(s->dout, s->n_dout);
        free(s->maps);
    }
    free(pg->s);
    free(pg);
}

static char **strs(int n) { return calloc((size_t)(n ? n : 1), sizeof(char *)); }
static int dup_into(char **a, int i, const char *s) { return (a[i] = strdup(s)) != NULL; }

int cli_html_add(const char *cmd, cli_html_pages *pg, attn_translator *m, const char *sentence, const attn_s2s_translation *t) {
    if (t->src.n == 0) return CLI_OK;
    int S = t->src.n, n = t->hyp.n, eos = t->hyp.eos;
    int32_t *ids = malloc((size_t)S * sizeof(int32_t));
    if (!ids) return cli_fail(cmd, "out of memory");
    const attn_vocab *sv = attn_translator_src_vocab(m);
    for (int i = 0; i < S; i++) ids[i] = i == S - 1 ? ATTN_EOS : attn_vocab_id(sv, t->src.tok[i]);
    attn_map_set set = {0};
    int st = attn_translator_maps(m, ids, S, &t->hyp, &set);
    free(ids);
    if (st) return cli_fail_lib(cmd, st, NULL);
    if (set.n == 0) return CLI_OK; /* nothing to draw for this model */
    if (pg->n == pg->cap) {
        int cap = pg->cap ? 2 * pg->cap : 8;
        sentence_maps *ns = realloc(pg->s, (size_t)cap * sizeof *ns);
        if (!ns) {
            attn_map_set_free(&set);
            return cli_fail(cmd, "out of memory");
        }
        pg->s = ns, pg->cap = cap;
    }
    sentence_maps *s = &pg->s[pg->n];
    memset(s, 0, sizeof *s);
    s->set = set;
    pg->n++;
    size_t tl = strlen(sentence) + strlen(t->text ? t->text : "") + 8;
    s->title = malloc(tl);
    s->n_src = S, s->n_din = n + 1, s->n_dout = n + eos;
    s->src = strs(S), s->din = strs(n + 1), s->dout = strs(n + eos);
    s->maps = calloc((size_t)set.n, sizeof *s->maps);
    int ok = s->title && s->src && s->din && s->dout && s->maps;
    if (ok) snprintf(s->title, tl, "%s \xe2\x86\x92 %s", sentence, t->text ? t->text : "");
    for (int i = 0; ok && i < S; i++) ok = dup_into(s->src, i, t->src.tok[i]);
    if (ok) ok = dup_into(s->din, 0, ATTN_BOS_TOKEN);
    for (int i = 0; ok && i < n; i++) ok = dup_into(s->din, i + 1, t->out.tok[i]) && dup_into(s->dout, i, t->out.tok[i]);
    if (ok && eos) ok = dup_into(s->dout, n, ATTN_EOS_TOKEN);
    if (!ok) return cli_fail(cmd, "out of memory");
    for (int k = 0; k < set.n; k++) {
        const attn_map *a = &set.maps[k];
        attn_html_map *h = &s->maps[k];
        h->kind = attn_map_kind_name(a->kind);
        h->layer = a->layer, h->head = a->head, h->rows = a->rows, h->cols = a->cols, h->w = a->w;
        switch (a->kind) {
        case ATTN_MAP_ENCODER_SELF: h->row_labels = (const char *const *)s->src, h->col_labels = (const char *const *)s->src; break;
        case ATTN_MAP_DECODER_SELF: h->row_labels = (const char *const *)s->din, h->col_labels = (const char *const *)s->din; break;
        case ATTN_MAP_CROSS: h->row_labels = (const char *const *)s->dout, h->col_labels = (const char *const *)s->src; break;
        }
        /* a map whose sizes do not match its labels would be drawn wrong: refuse it */
        int want_r = a->kind == ATTN_MAP_ENCODER_SELF ? S : a->kind == ATTN_MAP_DECODER_SELF ? n + 1 : n + eos;
        int want_c = a->kind == ATTN_MAP_DECODER_SELF ? n + 1 : S;
        if (a->rows != want_r || a->cols != want_c)
            return cli_fail(cmd, "internal error: %s map of %d x %d for %d x %d labels", h->kind, a->rows, a->cols, want_r, want_c);
    }
    return CLI_OK;
}

int cli_html_write(const char *cmd, cli_html_pages *pg, const char *path, const char *model_dir) {
    if (pg->n == 0)
        return cli_fail(cmd, "%s: nothing to draw: this model has no attention (every word is decoded from one vector C), "
                             "or no sentence was translated",
                        path);
    attn_html_item *items = calloc((size_t)pg->n, sizeof *items);
    if (!items) return cli_fail(cmd, "out of memory");
    int k = 0;
    for (int i = 0; i < pg->n; i++) {
        /* an empty translation leaves no cross-attention rows: keep only the maps with rows */
        sentence_maps *s = &pg->s[i];
        int m = 0;
        for (int j = 0; j < s->set.n; j++)
            if (s->maps[j].rows > 0 && s->maps[j].cols > 0) s->maps[m++] = s->maps[j];
        s->set.n = m;
        if (m) items[k++] = (attn_html_item){s->title, m, s->maps};
    }
    char title[512];
    snprintf(title, sizeof title, "attention of %s", model_dir);
    int st = k ? attn_attention_html_save(title, items, k, path) : ATTN_EINVAL;
    free(items);
    if (!k) return cli_fail(cmd, "%s: nothing to draw (empty translations)", path);
    if (st) return cli_fail_lib(cmd, st, path);
    return CLI_OK;
}
