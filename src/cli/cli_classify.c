/* attn classify: labels texts with a classifier trained by `attn train classifier`: per text
 * one line "LABEL<TAB>NUMBER", the label as written in the training data; --explain N adds why
 * (for the TF-IDF models: the n-grams that weighed most), --show-attention the weight of each
 * word in a neural model's pooling, as bars, and --attention-html FILE a page of the texts with
 * each word coloured by its weight (cli_cls_html.c). Texts come from the arguments or, without
 * any, from stdin, one per line. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cls.h"

static const char HELP[] =
    "usage: attn classify --model DIR [options] \"text\" ...\n"
    "       attn classify --model DIR [options] < texts.txt      (one text per line)\n"
    "\n"
    "Prints one line per text: its label as written in the training data, a tab, and a number:\n"
    "  tfidf-lr            the probability of that label (the softmax of the class scores)\n"
    "  tfidf-svm, nbsvm    the SVM's decision value for that label (its score s = w.x + b; the\n"
    "                      classifier is confident beyond the margin when s > 1); not a\n"
    "                      probability\n"
    "  bow, attn-pool, bigru-attn, transformer, cnn   the probability of that label\n"
    "\n"
    "options:\n"
    "  --model DIR         a checkpoint of 'attn train classifier' (required)\n"
    "  --explain N         after each line, the N n-grams that weighed most in the decision, with\n"
    "                      their contributions to the score of the chosen label minus that of the\n"
    "                      runner-up (positive: for the chosen label)\n"
    "  --show-attention    after each line, the neural model's view of the text: each token\n"
    "                      with its weight in the pooling (the attention weights, which sum to\n"
    "                      1; the same 1/n for every word of bow; for a Transformer pooled by\n"
    "                      [CLS], the [CLS] row of its last self-attention; for the cnn, which\n"
    "                      has no attention, each token's share of the max-pooled feature maps\n"
    "                      whose winning window covers it) and a bar scaled to the largest\n"
    "                      weight of the text\n"
    "  --attention-html FILE   writes one self-contained HTML page with every text, its label\n"
    "                      and number, and each word coloured by its weight: for a neural model\n"
    "                      its pooling weight (as --show-attention), for a TF-IDF model its\n"
    "                      share of the n-gram contributions (as --explain; blue for the label,\n"
    "                      red against it) with the top n-grams listed (--explain N of them,\n"
    "                      default 10); the page's legend says which\n"
    "  --threads N         threads (default: all cores)\n"
    "\n"
    "A line of stdin that is blank or not valid UTF-8 is reported on stderr and skipped (no line\n"
    "out); the others go on, and the exit status is then 1.\n"
    "\n"
    "example:\n"
    "  attn classify --model runs/nbsvm --explain 5 \"a gorgeous , witty , seductive movie\"\n"
    "  attn classify --model runs/attn-pool --show-attention \"a gorgeous , witty , seductive movie\"\n"
    "  attn classify --model runs/nbsvm --attention-html why.html < texts.txt\n";

/* Why a text cannot be classified, or NULL. */
static const char *bad_text(const char *s, size_t n) {
    if (strlen(s) != n) return "a NUL byte";
    if (!attn_utf8_valid(s, n, NULL)) return "invalid UTF-8";
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n\f\v", s[i])) return NULL;
    return "an empty text";
}

/* A bar of up to `cells` character cells for x in [0, 1], in eighths of a cell, padded with
 * spaces to `cells`. */
static void bar(double x, int cells) {
    static const char *const part[8] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    long e = lround(x * cells * 8), full = e / 8;
    for (long i = 0; i < full; i++) fputs("█", stdout);
    fputs(part[e % 8], stdout);
    printf("%*s", (int)(cells - full - (e % 8 != 0)), "");
}

/* Each token of text with its weight in the model's pooling: "  0.4123  ███▌      word". */
static int show_attention(cls_model *m, const char *text) {
    int n;
    const char *const *tok;
    const float *w;
    int st = m->weights(m->self, text, &n, &tok, &w);
    if (st) return st;
    float top = 0;
    for (int i = 0; i < n; i++) top = w[i] > top ? w[i] : top;
    for (int i = 0; i < n; i++) {
        printf("  %.4f  ", (double)w[i]);
        bar(top > 0 && w[i] > 0 ? w[i] / top : 0, 20);
        printf("  %s\n", tok[i]);
    }
    return ATTN_OK;
}

/* What to print or draw for each text. */
typedef struct {
    int explain, attention;
    cls_page *page; /* --attention-html, or NULL */
} shown;

static int one(const char *cmd, cls_model *m, const char *text, const shown *o) {
    int32_t pred;
    float num;
    int st = m->predict(m->self, &text, 1, &pred, &num);
    if (st) return cli_fail_lib(cmd, st, NULL);
    printf("%s\t%.4f\n", m->labels[pred], (double)num);
    if (o->explain > 0 && m->explain && (st = m->explain(m->self, text, o->explain, stdout))) return cli_fail_lib(cmd, st, NULL);
    if (o->attention && m->weights && (st = show_attention(m, text))) return cli_fail_lib(cmd, st, NULL);
    fflush(stdout);
    return o->page ? cls_page_add(cmd, o->page, m, text, pred, num, o->explain > 0 ? o->explain : 10) : CLI_OK;
}

int cli_classify(int argc, char **argv) {
    const char *cmd = "classify", *dir = NULL, *html = NULL;
    int threads = 0;
    shown o = {0};
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_str(&p, "--model", &dir) || cli_str(&p, "-m", &dir) || cli_int(&p, "--explain", 0, 100000, &o.explain) ||
                   cli_int(&p, "--threads", 1, 1024, &threads) || cli_str(&p, "--attention-html", &html)) {
        } else if (cli_flag(&p, "--show-attention")) {
            o.attention = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (!dir) return cli_usage(cmd, "--model DIR is required");
    if (threads) attn_set_threads(threads);
    cls_model m;
    int rc = cls_model_load(cmd, dir, &m);
    if (rc) return rc;
    if (o.explain && !m.explain) fprintf(stderr, "attn %s: a %s model has no --explain; ignored\n", cmd, m.kind);
    if (o.attention && !m.weights)
        fprintf(stderr, "attn %s: a %s model has no attention to show (--explain shows its reasons); ignored\n", cmd, m.kind);
    if (html && !(o.page = cls_page_new())) rc = cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    if (html && !m.weights && !m.contrib) fprintf(stderr, "attn %s: a %s model has no weights per word: the page shows its labels only\n", cmd, m.kind);
    for (int i = 0; i < p.npos && !rc; i++) {
        const char *why = bad_text(p.pos[i], strlen(p.pos[i]));
        if (why) rc = cli_fail(cmd, "argument %d: %s", i + 1, why);
        else rc = one(cmd, &m, p.pos[i], &o);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int skipped = 0;
    for (int ln = 1; !p.npos && !rc && (n = getline(&line, &cap, stdin)) >= 0; ln++) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        const char *why = bad_text(line, (size_t)n);
        if (why) fprintf(stderr, "attn %s: line %d: %s, skipped\n", cmd, ln, why), skipped++;
        else rc = one(cmd, &m, line, &o);
    }
    free(line);
    if (!rc && o.page) rc = cls_page_write(cmd, o.page, &m, dir, html);
    cls_page_free(o.page);
    m.free(m.self);
    return rc ? rc : skipped ? CLI_EDATA : CLI_OK;
}
