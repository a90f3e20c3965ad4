/* attn eval: scores a model trained by `attn train seq2seq` or `attn train transformer` (any
 * family of attn/translator.h) on held-out sentence pairs, or a text classifier of `attn train
 * classifier` on labelled texts (cli_eval_classifier, at the end: accuracy, macro-F1 and the
 * confusion matrix). For translations:
 * corpus BLEU-4 (sacreBLEU's definition: 13a tokenisation, 'exp' smoothing) and the exact-match
 * rate, overall and by source-sentence length bucket (the shape of Bahdanau et al. 2014,
 * Figure 2), as a table on stdout and optionally CSV, Markdown and the translations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_cls.h"
#include "cli_recall.h"
#include "cli_vision.h"
#include "cli_s2s.h"

static const char HELP[] =
    "usage: attn eval --model DIR --data PAIRS.tsv [options]\n"
    "\n"
    "Translates every pair's source and scores the translations against the references:\n"
    "corpus BLEU-4 as sacreBLEU computes it, and the share of exact matches, overall and by the\n"
    "length of the source sentence (in tokens: Chinese characters for a zh-en model).\n"
    "\n"
    "options:\n"
    "  --model DIR         the checkpoint directory (required)\n"
    "  --data FILE         sentence pairs (TSV, e.g. the test.tsv of the split written by\n"
    "                      'attn train seq2seq' or 'attn train transformer'); malformed lines\n"
    "                      are reported and skipped\n"
    "  --src-col N         the source column (default: 1 for a zh-en model, 0 for en-zh)\n"
    "  --beam K            beam width (default 5; 1 = greedy)\n"
    "  --len-alpha F       length normalisation (default 1)\n"
    "  --max-len N         at most N target tokens (default 2 * source length + 10)\n"
    "  --buckets E1,E2,..  source-length buckets 1-E1, E1+1-E2, ..., above the last (default\n"
    "                      5,10,15,20,25)\n"
    "  --limit N           only the first N pairs\n"
    "  --csv FILE          the table as CSV: bucket,min_len,max_len,sentences,bleu,exact_match\n"
    "  --markdown FILE     the table as Markdown\n"
    "  --hyp-out FILE      the translations, one per line (TSV: source, reference, translation)\n"
    "  --label NAME        a name for the model in the CSV and Markdown (default: its attention,\n"
    "                      or \"transformer\")\n"
    "  --threads N         threads (default: all cores)\n"
    S2S_MEMORY_HELP
    "  --quiet             only the overall line\n"
    "\n"
    "A classifier (from 'attn train classifier') is scored on labelled texts instead:\n"
    "  attn eval --model DIR --data TEST.csv|tsv [--label-column NAME] [--csv FILE]\n"
    "prints the accuracy, the macro-F1 (the mean over labels of each label's F1, the harmonic\n"
    "mean of its precision and recall: every label counts the same, however rare), precision,\n"
    "recall and F1 per label, and the confusion matrix (rows: the true label, columns: the\n"
    "predicted one). --csv FILE writes one row per label: label,support,precision,recall,f1 and\n"
    "the counts predicted as each label. Texts whose label the model never saw are left out\n"
    "(with a count).\n"
    "The seed's question, whether attention is more than a bag of words, has two tests here:\n"
    "  --subset negation   score only the texts with a negation or a contrast, as a whole word:\n"
    "                      not, n't, no, never, but, though\n"
    "  --shuffle-words N   score every text with its words in a random order (seed N; a text\n"
    "                      without spaces is shuffled by character): a bag-of-words model keeps\n"
    "                      its accuracy by construction, a model that reads order loses some\n"
    "An associative-recall model (from 'attn train recall') needs no --data: its test split is\n"
    "generated again from its seed (attn eval --model DIR [--show N] [--json] [--test N]).\n"
    "A vision model (from 'attn train vision') reads Fashion-MNIST's test images rendered for its\n"
    "task (attn eval --model DIR [--task TASK] [--test N] [--json]).\n";

static void progress(int done, int total) {
    fprintf(stderr, "\r%d/%d translated", done, total);
    if (done == total) fprintf(stderr, "\n");
}

/* The checkpoint directory named by --model (or -m), if any. */
static const char *model_arg(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--model") || !strcmp(argv[i], "-m")) && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--model=", 8)) return argv[i] + 8;
    }
    return NULL;
}

int cli_eval(int argc, char **argv) {
    const char *cmd = "eval", *dir = model_arg(argc, argv);
    if (dir && cls_is_classifier(dir)) return cli_eval_classifier(argc, argv);
    if (dir && cli_is_recall(dir)) return cli_eval_recall(argc, argv);
    if (dir && cli_is_vision(dir)) return cli_eval_vision(argc, argv);
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    const char *model = NULL, *data = NULL, *buckets = "5,10,15,20,25", *csv = NULL, *md = NULL, *hyp_out = NULL, *label = NULL;
    int src_col = -1, beam = 5, max_len = 0, limit = 0, threads = 0, quiet = 0;
    float alpha = 1.0f;
    s2s_memory mem;
    memset(&mem, 0, sizeof mem);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_str(&p, "--model", &model) || cli_str(&p, "-m", &model) || cli_str(&p, "--data", &data) ||
                   cli_str(&p, "--buckets", &buckets) || cli_str(&p, "--csv", &csv) || cli_str(&p, "--markdown", &md) ||
                   cli_str(&p, "--hyp-out", &hyp_out) || cli_str(&p, "--label", &label)) {
        } else if (cli_int(&p, "--src-col", 0, 1, &src_col) || cli_int(&p, "--beam", 1, 1000, &beam) ||
                   cli_int(&p, "--max-len", 0, 100000, &max_len) || cli_int(&p, "--limit", 0, INT32_MAX, &limit) ||
                   cli_int(&p, "--threads", 1, 1024, &threads)) {
        } else if (cli_float(&p, "--len-alpha", &alpha) || s2s_memory_option(&p, &mem)) {
        } else if (cli_flag(&p, "--quiet")) {
            quiet = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!model || !data) return cli_usage(cmd, "--model DIR and --data FILE are required");
    const char *outs[] = {csv, md, hyp_out};
    for (int i = 0; i < 3; i++)
        if (cli_not_input(cmd, outs[i], &data, 1)) return CLI_EUSAGE;
    int edges[S2S_MAX_BUCKETS];
    int ne = s2s_parse_edges(buckets, edges, S2S_MAX_BUCKETS - 1);
    if (ne < 0) return cli_usage(cmd, "--buckets wants increasing positive integers like 5,10,15,20 (at most %d)", S2S_MAX_BUCKETS - 1);
    if (threads) attn_set_threads(threads);
    attn_translator *m = NULL;
    attn_pairs pairs = {0};
    s2s_data d = {0};
    char **hyps = NULL;
    int rc = CLI_EDATA, st;
    if ((st = attn_translator_load(model, &m))) return cli_fail_lib(cmd, st, model);
    if (src_col < 0) src_col = attn_translator_src_tok(m) == ATTN_TOK_ZH ? 1 : 0;
    if ((st = attn_pairs_read(data, &pairs))) {
        cli_fail_lib(cmd, st, data);
        goto done;
    }
    if (pairs.malformed) {
        char rep[512];
        fprintf(stderr, "attn %s: %s: %s\n", cmd, data, attn_pairs_report(&pairs, rep, sizeof rep));
    }
    attn_pairs view = pairs; /* the first --limit pairs (pairs itself keeps all, to be freed) */
    if (limit > 0 && view.n > limit) view.n = limit;
    if ((st = s2s_data_encode(m, &view, src_col, 0, &d))) {
        cli_fail_lib(cmd, st, data);
        goto done;
    }
    if (d.dropped && !quiet)
        fprintf(stderr, "attn %s: %d pairs skipped: %d with an empty source, %d with a source over %d tokens\n", cmd, d.dropped,
                d.empty, d.dropped - d.empty, ATTN_S2S_MAX_SRC);
    hyps = calloc((size_t)d.n + 1, sizeof(char *));
    if (!hyps) goto done;
    attn_s2s_decode_opts o = attn_s2s_decode_defaults();
    o.beam = beam, o.len_alpha = alpha, o.max_len = max_len;
    if ((rc = s2s_memory_open(cmd, m, &mem, &o, quiet))) goto done;
    rc = CLI_EDATA;
    s2s_eval_result r;
    if ((st = s2s_evaluate(m, &d, &o, edges, ne, hyps, quiet ? NULL : progress, &r))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", label ? label : attn_translator_label(m));
    printf("%s: BLEU %.2f, exact match %.2f%%, %d sentences (%s, beam %d, %.1f s); BLEU precisions %.1f/%.1f/%.1f/%.1f, "
           "brevity penalty %.3f, length ratio %.3f\n",
           model, r.total.bleu, r.total_exact, r.n, name, beam, r.seconds, r.total.precision[0], r.total.precision[1],
           r.total.precision[2], r.total.precision[3], r.total.bp, r.total.ratio);
    printf("decoding: %lld target tokens in %.1f s, %.0f tokens/s%s\n", (long long)r.tokens, r.seconds,
           r.seconds > 0 ? r.tokens / r.seconds : 0.0, mem.store ? " (with the memory)" : "");
    if (!quiet) {
        printf("%-10s %9s %8s %12s\n", "src len", "sentences", "BLEU", "exact match");
        for (int b = 0; b < r.n_buckets; b++) {
            char lb[32];
            printf("%-10s %9d %8.2f %11.2f%%\n", s2s_bucket_label(&r, b, lb, sizeof lb), r.count[b], r.bleu[b].bleu, r.exact[b]);
        }
    }
    FILE *f;
    if (csv) {
        if (!(f = fopen(csv, "w"))) {
            cli_fail(cmd, "%s: cannot write: %s", csv, strerror(errno));
            goto done;
        }
        fprintf(f, "model,bucket,min_len,max_len,sentences,bleu,exact_match\n");
        for (int b = 0; b < r.n_buckets; b++) {
            char lb[32];
            int lo = b == 0 ? 1 : r.edges[b - 1] + 1;
            fprintf(f, "%s,%s,%d,%d,%d,%.2f,%.2f\n", name, s2s_bucket_label(&r, b, lb, sizeof lb), lo,
                    b == r.n_buckets - 1 ? -1 : r.edges[b], r.count[b], r.bleu[b].bleu, r.exact[b]);
        }
        fprintf(f, "%s,all,1,-1,%d,%.2f,%.2f\n", name, r.n, r.total.bleu, r.total_exact);
        if (fclose(f)) {
            cli_fail(cmd, "%s: cannot write: %s", csv, strerror(errno));
            goto done;
        }
    }
    if (md) {
        if (!(f = fopen(md, "w"))) {
            cli_fail(cmd, "%s: cannot write: %s", md, strerror(errno));
            goto done;
        }
        fprintf(f, "| source length | sentences | BLEU (%s) | exact match |\n|---|---:|---:|---:|\n", name);
        for (int b = 0; b < r.n_buckets; b++) {
            char lb[32];
            fprintf(f, "| %s | %d | %.2f | %.2f%% |\n", s2s_bucket_label(&r, b, lb, sizeof lb), r.count[b], r.bleu[b].bleu, r.exact[b]);
        }
        fprintf(f, "| all | %d | %.2f | %.2f%% |\n", r.n, r.total.bleu, r.total_exact);
        if (fclose(f)) {
            cli_fail(cmd, "%s: cannot write: %s", md, strerror(errno));
            goto done;
        }
    }
    if (hyp_out) {
        if (!(f = fopen(hyp_out, "w"))) {
            cli_fail(cmd, "%s: cannot write", hyp_out);
            goto done;
        }
        for (int i = 0; i < d.n; i++) fprintf(f, "%s\t%s\t%s\n", d.src_text[i], d.ref[i], hyps[i] ? hyps[i] : "");
        if (fclose(f)) {
            cli_fail(cmd, "%s: cannot write", hyp_out);
            goto done;
        }
    }
    rc = CLI_OK;
done:
    for (int i = 0; hyps && i < d.n; i++) attn_free(hyps[i]);
    free(hyps);
    s2s_data_free(&d);
    attn_pairs_free(&pairs);
    s2s_memory_close(&mem);
    attn_translator_free(m);
    return rc;
}

/* ---- Classifiers ---------------------------------------------------------------------------- */

/* A CSV field, quoted when it must be (RFC 4180). */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) fputs(*s == '"' ? "\"\"" : (char[]){*s, 0}, f);
    fputc('"', f);
}

/* Per label: precision, recall, F1 (0 where undefined) from the confusion matrix cm (C, C),
 * rows true, columns predicted; returns the macro-F1 over the labels that occur in the truth
 * or the predictions (as scikit-learn's f1_score(average="macro")). */
static double label_scores(const int64_t *cm, int C, double *prec, double *rec, double *f1, int64_t *support) {
    double sum = 0;
    int used = 0;
    for (int c = 0; c < C; c++) {
        int64_t tp = cm[(size_t)c * C + c], row = 0, col = 0;
        for (int k = 0; k < C; k++) row += cm[(size_t)c * C + k], col += cm[(size_t)k * C + c];
        prec[c] = col ? (double)tp / (double)col : 0, rec[c] = row ? (double)tp / (double)row : 0;
        f1[c] = prec[c] + rec[c] > 0 ? 2 * prec[c] * rec[c] / (prec[c] + rec[c]) : 0;
        support[c] = row;
        if (row || col) sum += f1[c], used++;
    }
    return used ? sum / used : 0;
}

/* ---- The order analyses of the seed's question ------------------------------------------ */

/* Does the text hold a negation or a contrast, as a whole word: not, n't, no, never, but,
 * though (SST-2's texts are lower-cased and split on spaces; "don't" is "do n't")? */
static int has_negation(const char *t) {
    static const char *const W[] = {"not", "n't", "no", "never", "but", "though"};
    for (const char *p = t; *p;) {
        while (*p == ' ') p++;
        size_t n = strcspn(p, " ");
        for (size_t k = 0; k < sizeof W / sizeof W[0] && n; k++)
            if (n == strlen(W[k]) && !strncmp(p, W[k], n)) return 1;
        p += n;
    }
    return 0;
}

/* The text's words (split on spaces) in a seeded random order, joined by spaces; a text
 * without spaces (Chinese) is shuffled by character. malloc'ed; NULL if out of memory. */
static char *shuffle_words(const char *t, uint64_t seed) {
    size_t len = strlen(t), n = 0;
    const char **w = malloc((len + 1) * sizeof *w);
    size_t *wl = malloc((len + 1) * sizeof *wl);
    char *out = malloc(len + 2), *o = out;
    if (!w || !wl || !out) return free(w), free(wl), free(out), NULL;
    int spaced = strchr(t, ' ') != NULL;
    for (const char *p = t; *p;) {
        if (spaced && *p == ' ') {
            p++;
            continue;
        }
        size_t k = spaced ? strcspn(p, " ") : 1;
        if (!spaced)
            while (p[k] && ((unsigned char)p[k] & 0xC0) == 0x80) k++; /* one UTF-8 character */
        w[n] = p, wl[n++] = k, p += k;
    }
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = attn_rng_u32(&r) % i;
        const char *tw = w[i - 1];
        size_t tl = wl[i - 1];
        w[i - 1] = w[j], wl[i - 1] = wl[j], w[j] = tw, wl[j] = tl;
    }
    for (size_t i = 0; i < n; i++) {
        if (i && spaced) *o++ = ' ';
        memcpy(o, w[i], wl[i]), o += wl[i];
    }
    *o = 0;
    free(w), free(wl);
    return out;
}

int cli_eval_classifier(int argc, char **argv) {
    const char *cmd = "eval", *dir = NULL, *data = NULL, *label_col = NULL, *csv = NULL, *subset = NULL;
    int threads = 0, quiet = 0, shuffle = -1;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_str(&p, "--model", &dir) || cli_str(&p, "-m", &dir) || cli_str(&p, "--data", &data) ||
                   cli_str(&p, "--label-column", &label_col) || cli_str(&p, "--csv", &csv) ||
                   cli_str(&p, "--subset", &subset) || cli_int(&p, "--shuffle-words", 0, INT32_MAX, &shuffle) ||
                   cli_int(&p, "--threads", 1, 1024, &threads)) {
        } else if (cli_flag(&p, "--quiet")) {
            quiet = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!dir || !data) return cli_usage(cmd, "--model DIR and --data FILE are required");
    if (cli_not_input(cmd, csv, &data, 1)) return CLI_EUSAGE;
    if (subset && strcmp(subset, "negation")) return cli_usage(cmd, "unknown --subset '%s' (negation)", subset);
    if (threads) attn_set_threads(threads);
    cls_model m;
    attn_cls_data d = {0};
    cls_set s = {0};
    int rc = cls_model_load(cmd, dir, &m), unknown = 0, C = m.n_classes, st;
    if (rc) return rc;
    int32_t *pred = NULL;
    float *num = NULL;
    char **shuffled = NULL; /* (nshuf) the shuffled texts, owned */
    int nshuf = 0;
    int64_t *cm = calloc((size_t)C * C, sizeof(int64_t)), *support = malloc((size_t)C * sizeof(int64_t));
    double *sc = malloc(3 * (size_t)C * sizeof(double));
    if ((rc = cls_read(cmd, data, label_col, 1, &d)) || (rc = cls_set_make(cmd, &d, m.labels, C, &s, &unknown))) goto done;
    rc = CLI_EDATA;
    if (unknown) fprintf(stderr, "attn %s: %s: %d texts with labels the model does not know left out\n", cmd, data, unknown);
    if (subset) { /* keep the texts with a negation or a contrast */
        int k = 0;
        for (int i = 0; i < s.n; i++)
            if (has_negation(s.text[i])) s.text[k] = s.text[i], s.y[k++] = s.y[i];
        if (!quiet) fprintf(stderr, "attn %s: %d of %d texts hold a negation or a contrast (not, n't, no, never, but, though)\n", cmd, k, s.n);
        s.n = k;
    }
    if (!s.n) {
        cli_fail(cmd, "%s: no text with a label the model knows%s", data, subset ? " in the subset" : "");
        goto done;
    }
    if (shuffle >= 0) { /* every text's words in a seeded random order */
        if (!(shuffled = calloc((size_t)s.n, sizeof *shuffled)) || !(nshuf = s.n)) {
            cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
            goto done;
        }
        for (int i = 0; i < s.n; i++) {
            if (!(shuffled[i] = shuffle_words(s.text[i], attn_seed_mix((uint64_t)shuffle, (uint64_t)i)))) {
                cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
                goto done;
            }
            s.text[i] = shuffled[i];
        }
    }
    pred = malloc((size_t)s.n * sizeof(int32_t)), num = malloc((size_t)s.n * sizeof(float));
    if (!cm || !support || !sc || !pred || !num) {
        cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
        goto done;
    }
    double t0 = attn_time_now();
    if ((st = m.predict(m.self, s.text, s.n, pred, num))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    double secs = attn_time_now() - t0;
    int64_t right = 0;
    for (int i = 0; i < s.n; i++) cm[(size_t)s.y[i] * C + pred[i]]++, right += s.y[i] == pred[i];
    double *prec = sc, *rec = sc + C, *f1 = sc + 2 * C;
    double macro = label_scores(cm, C, prec, rec, f1, support);
    printf("%s: accuracy %.2f%%, macro-F1 %.2f, %d texts (%s, %.0f texts/s)\n", dir, 100.0 * right / s.n, 100 * macro, s.n, m.kind,
           secs > 0 ? s.n / secs : 0.0);
    if (!quiet) {
        printf("%-12s %9s %9s %9s %9s\n", "label", "precision", "recall", "F1", "support");
        for (int c = 0; c < C; c++)
            printf("%-12s %9.2f %9.2f %9.2f %9lld\n", m.labels[c], 100 * prec[c], 100 * rec[c], 100 * f1[c], (long long)support[c]);
        printf("confusion matrix (rows: true label, columns: predicted label):\n%-12s", "");
        for (int c = 0; c < C; c++) printf(" %8s", m.labels[c]);
        for (int t = 0; t < C; t++) {
            printf("\n%-12s", m.labels[t]);
            for (int c = 0; c < C; c++) printf(" %8lld", (long long)cm[(size_t)t * C + c]);
        }
        printf("\n");
    }
    FILE *f = csv ? fopen(csv, "w") : NULL;
    if (csv && !f) {
        cli_fail(cmd, "%s: cannot write: %s", csv, strerror(errno));
        goto done;
    }
    if (f) {
        fputs("label,support,precision,recall,f1", f);
        for (int c = 0; c < C; c++) fputs(",pred_", f), csv_field(f, m.labels[c]);
        for (int t = 0; t < C; t++) {
            fputc('\n', f), csv_field(f, m.labels[t]);
            fprintf(f, ",%lld,%.4f,%.4f,%.4f", (long long)support[t], prec[t], rec[t], f1[t]);
            for (int c = 0; c < C; c++) fprintf(f, ",%lld", (long long)cm[(size_t)t * C + c]);
        }
        fprintf(f, "\nall,%d,,,%.4f\n", s.n, macro);
        if (fclose(f)) {
            cli_fail(cmd, "%s: cannot write: %s", csv, strerror(errno));
            goto done;
        }
    }
    rc = CLI_OK;
done:
    free(cm), free(support), free(sc), free(pred), free(num);
    for (int i = 0; i < nshuf; i++) free(shuffled[i]);
    free(shuffled);
    cls_set_free(&s), attn_cls_free(&d);
    m.free(m.self);
    return rc;
}
