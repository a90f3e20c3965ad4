/* attn translate: translates sentences with a model trained by `attn train seq2seq` or
 * `attn train transformer` (any family of attn/translator.h), greedily or with beam search,
 * and shows what the decoder looked at: the alignment a_ij between each target word and the
 * source words, as a heatmap in the terminal, an SVG or a PNG, and every head of every
 * layer on one HTML page.
 *
 * Sentences come from the command line, or one per line from stdin; each gives one line on
 * stdout (an empty input line gives an empty output line, so outputs stay aligned with
 * inputs). Unknown source characters are read as <unk>, with a note on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_attention_html.h"
#include "cli_s2s.h"

static const char HELP[] =
    "usage: attn translate --model DIR [options] [SENTENCE...]\n"
    "\n"
    "Translates each SENTENCE (or each line of stdin when none is given) with a model trained by\n"
    "'attn train seq2seq' or 'attn train transformer', one translation per line on stdout.\n"
    "\n"
    "options:\n"
    "  --model DIR            the checkpoint directory (required)\n"
    "  --beam K               beam search with K hypotheses (default 5; 1 = greedy)\n"
    "  --len-alpha F          length normalisation: hypotheses score logp / length^F (default 1)\n"
    "  --max-len N            at most N target tokens (default 2 * source length + 10)\n"
    "  --show-attention       after each translation, its alignment as a heatmap: one row per\n"
    "                         target word, one column per source word, darker = more weight\n"
    "  --color                draw the heatmap with terminal colours instead of shades\n"
    "  --attention-svg FILE   draw the alignment matrix as SVG (several sentences, or\n"
    "                         stdin: FILE-1.svg, FILE-2.svg, ...)\n"
    "  --attention-png FILE   the same as PNG (needs a font with Chinese glyphs)\n"
    "  --attention-html FILE  every attention map of every sentence on one self-contained HTML\n"
    "                         page: pick the sentence, the kind (encoder self-attention, decoder\n"
    "                         self-attention, cross-attention), the layer and the head\n"
    "                         (a Transformer's); a seq2seq model shows its alignment\n"
    "                         (for the Transformer, the alignment above is the cross-attention\n"
    "                         of the last layer averaged over its heads)\n"
    "  --show-tokens          print the source tokens the model read (<unk> marked)\n"
    "  --threads N            threads (default: all cores)\n"
    S2S_MEMORY_HELP
    "  -h, --help             this help\n"
    "\n"
    "A sentence that cannot be translated (e.g. a line holding a NUL byte) gets a one-line error\n"
    "on stderr naming it (\"stdin line 7: ...\") and an empty output line, so that outputs stay\n"
    "aligned with inputs; the others are translated. The exit status is then 1, after a last\n"
    "line \"N of M sentences failed\" on stderr.\n"
    "\n"
    "The 'none' model (the distracted encoder-decoder) has no alignment: every target word is\n"
    "decoded from the same vector C.\n"
    "\n"
    "example:\n"
    "  attn translate --model models/zh-en-small --show-attention \"我爱你。\"\n";

typedef struct {
    const char *model, *svg, *png, *html;
    int beam, max_len, show, color, tokens, threads;
    float alpha;
} tr_opts;

/* FILE.svg -> FILE-3.svg when there are several sentences. */
static void numbered(const char *path, int i, int many, char *buf, size_t cap) {
    if (!many) {
        snprintf(buf, cap, "%s", path);
        return;
    }
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) snprintf(buf, cap, "%s-%d", path, i + 1);
    else snprintf(buf, cap, "%.*s-%d%s", (int)(dot - path), path, i + 1, dot);
}

static int show(const char *cmd, attn_translator *m, const tr_opts *o, const char *sentence, const attn_s2s_translation *t, int idx,
                int many) {
    if (t->src.n == 0) return CLI_OK;
    if (o->tokens) {
        fprintf(stderr, "source tokens:");
        for (int i = 0; i < t->src.n; i++) {
            const char *tok = t->src.tok[i];
            int unk = i < t->src.n - 1 && attn_vocab_find(attn_translator_src_vocab(m), tok, strlen(tok)) < 0;
            fprintf(stderr, " %s%s", tok, unk ? "(<unk>)" : "");
        }
        fprintf(stderr, "\n");
    }
    if (!o->show && !o->svg && !o->png) return CLI_OK;
    if (!t->hyp.align) {
        if (o->svg || o->png)
            return cli_fail(cmd, "this model has no attention (--attention none): every word is decoded from one vector C, "
                                 "there is no alignment to draw");
        printf("(no alignment: this model has no attention; every word is decoded from one vector C)\n");
        return CLI_OK;
    }
    int rows = t->hyp.n + t->hyp.eos, cols = t->src.n;
    const char **rl = malloc((size_t)(rows ? rows : 1) * sizeof(char *));
    if (!rl) return cli_fail(cmd, "out of memory");
    for (int i = 0; i < t->hyp.n; i++) rl[i] = t->out.tok[i];
    if (t->hyp.eos) rl[t->hyp.n] = ATTN_EOS_TOKEN;
    char title[1024];
    snprintf(title, sizeof title, "%s -> %s", sentence, t->text);
    attn_heatmap h = {t->hyp.align, rows, cols, rl, (const char *const *)t->src.tok, title, "target (query)", "source (key)", 0};
    int rc = CLI_OK;
    if (rows == 0) {
        free(rl);
        return CLI_OK;
    }
    if (o->show) {
        char *txt = NULL;
        int st = attn_heatmap_text(&h, o->color, &txt);
        if (st) rc = cli_fail_lib(cmd, st, NULL);
        else printf("%s", txt);
        attn_free(txt);
    }
    char path[4096];
    h.show_values = 1;
    if (!rc && o->svg) {
        numbered(o->svg, idx, many, path, sizeof path);
        int st = attn_heatmap_svg(&h, path);
        if (st) rc = cli_fail_lib(cmd, st, path);
    }
    if (!rc && o->png) {
        numbered(o->png, idx, many, path, sizeof path);
        int st = attn_heatmap_png(&h, path);
        if (st) rc = cli_fail_lib(cmd, st, path);
    }
    free(rl);
    return rc;
}

/* Translates one sentence and prints it. On failure the message names `where` (e.g. "stdin
 * line 7"), and *printed says whether its line of output was printed already. */
static int translate_one(const char *cmd, attn_translator *m, const tr_opts *o, const attn_s2s_decode_opts *d, const char *sentence,
                         int idx, int many, cli_html_pages *pg, const char *where, int *printed) {
    attn_s2s_translation t;
    *printed = 0;
    int st = attn_translator_translate(m, sentence, d, &t);
    if (st) return cli_fail_lib(cmd, st, where);
    printf("%s\n", t.text);
    *printed = 1;
    if (t.n_unk > 0) {
        fprintf(stderr, "note: %d source token%s not in the vocabulary, read as <unk>:", t.n_unk, t.n_unk > 1 ? "s" : "");
        for (int i = 0; i + 1 < t.src.n; i++)
            if (attn_vocab_find(attn_translator_src_vocab(m), t.src.tok[i], (size_t)t.src.len[i]) < 0) fprintf(stderr, " %s", t.src.tok[i]);
        fprintf(stderr, "\n");
    }
    int rc = show(cmd, m, o, sentence, &t, idx, many);
    if (!rc && pg) rc = cli_html_add(cmd, pg, m, sentence, &t);
    fflush(stdout);
    attn_s2s_translation_free(&t);
    return rc;
}

/* One input of the stream: a failure prints its message and, if the sentence's line of
 * output was not printed, an empty line (so that outputs stay aligned with inputs); the
 * stream goes on. Counts the failures in *failed. */
static void stream_one(const char *cmd, attn_translator *m, const tr_opts *o, const attn_s2s_decode_opts *d, const char *sentence,
                       size_t len, int idx, int many, cli_html_pages *pg, const char *where, int *failed) {
    int printed = 0;
    if (len != strlen(sentence)) cli_fail(cmd, "%s: holds a NUL byte", where);
    else if (!translate_one(cmd, m, o, d, sentence, idx, many, pg, where, &printed)) return;
    if (!printed) printf("\n"), fflush(stdout);
    (*failed)++;
}

int cli_translate(int argc, char **argv) {
    const char *cmd = "translate";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    tr_opts o;
    memset(&o, 0, sizeof o);
    o.beam = 5, o.alpha = 1.0f;
    s2s_memory mem;
    memset(&mem, 0, sizeof mem);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_str(&p, "--model", &o.model) || cli_str(&p, "-m", &o.model) || cli_str(&p, "--attention-svg", &o.svg) ||
                   cli_str(&p, "--attention-png", &o.png) || cli_str(&p, "--attention-html", &o.html)) {
        } else if (cli_int(&p, "--beam", 1, 1000, &o.beam) || cli_int(&p, "--max-len", 0, 100000, &o.max_len) ||
                   cli_int(&p, "--threads", 1, 1024, &o.threads)) {
        } else if (cli_float(&p, "--len-alpha", &o.alpha) || s2s_memory_option(&p, &mem)) {
        } else if (cli_flag(&p, "--show-attention")) {
            o.show = 1;
        } else if (cli_flag(&p, "--color")) {
            o.color = 1;
        } else if (cli_flag(&p, "--show-tokens")) {
            o.tokens = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (!o.model) return cli_usage(cmd, "--model DIR is required");
    if (o.threads) attn_set_threads(o.threads);
    attn_translator *m = NULL;
    int st = attn_translator_load(o.model, &m);
    if (st) return cli_fail_lib(cmd, st, o.model);
    cli_html_pages *pg = NULL;
    if (o.html && !(pg = cli_html_new())) {
        attn_translator_free(m);
        return cli_fail(cmd, "out of memory");
    }
    attn_s2s_decode_opts d = attn_s2s_decode_defaults();
    d.beam = o.beam, d.len_alpha = o.alpha, d.max_len = o.max_len;
    int rc = s2s_memory_open(cmd, m, &mem, &d, 1), failed = 0, total = 0;
    char where[64];
    if (rc) {
    } else if (p.npos > 0) {
        for (int i = 0; i < p.npos; i++, total++) {
            snprintf(where, sizeof where, "sentence %d", i + 1);
            stream_one(cmd, m, &o, &d, p.pos[i], strlen(p.pos[i]), i, p.npos > 1, pg, where, &failed);
        }
    } else {
        /* one sentence per line of stdin; files become numbered from the second line on */
        size_t cap = 0;
        char *line = NULL;
        long k;
        while ((k = (long)getline(&line, &cap, stdin)) >= 0) {
            while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
            snprintf(where, sizeof where, "stdin line %d", total + 1);
            stream_one(cmd, m, &o, &d, line, (size_t)k, total, 1, pg, where, &failed);
            total++;
        }
        free(line);
    }
    if (!rc && pg) rc = cli_html_write(cmd, pg, o.html, o.model);
    if (!rc && failed) rc = cli_fail(cmd, "%d of %d sentences failed (each has an empty output line)", failed, total);
    cli_html_free(pg);
    s2s_memory_close(&mem);
    attn_translator_free(m);
    return rc;
}
