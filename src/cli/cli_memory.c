/* attn memory: the translation memory of attn/knnmt.h (kNN-MT, Khandelwal et al. 2021) for a
 * trained translator of either family: `build` runs the model with teacher forcing over
 * sentence pairs and stores each decoder state with the token that followed it; `tune` picks
 * k, T and lambda by BLEU on validation pairs and writes them into the store's header; `info`
 * prints a store's header. Reading the memory while translating is `attn translate` / `attn
 * eval --memory STORE` (cli_s2s.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_s2s.h"

static const char HELP[] =
    "usage: attn memory build --model DIR --data PAIRS.tsv [--data MORE.tsv ...] --out STORE\n"
    "       attn memory tune  --model DIR --memory STORE --data VALID.tsv [options]\n"
    "       attn memory info  STORE\n"
    "\n"
    "A translation memory read by soft addressing (kNN-MT: Khandelwal et al. 2021, \"Nearest\n"
    "neighbor machine translation\"). The model translates with the memory beside it, unchanged:\n"
    "\n"
    "  build   runs the model over sentence pairs with teacher forcing (it reads the reference\n"
    "          prefix) and stores every decoder state, the vector its output layer reads (the\n"
    "          key), with the target token that followed it (the value): one entry per target\n"
    "          token and one for <eos>. Same model and pairs give the same bytes.\n"
    "  tune    translates validation pairs (greedy, for speed) with the memory under a grid of\n"
    "          settings and writes the best by BLEU into the store's header, so that\n"
    "          '--memory STORE' alone uses them. The search is by coordinates: lambda first\n"
    "          (k 8, T the median nearest-neighbour distance), then T, then k, then lambda again;\n"
    "          --full tries every combination instead.\n"
    "  info    the store's header: entries, state size, vocabulary, model identity, settings.\n"
    "\n"
    "While translating (attn translate / attn eval --memory STORE), the current decoder state q\n"
    "looks up its k nearest keys by squared distance d = ||q - key||^2 (exact search over the\n"
    "whole store: the store is the keys, q the query, as in attention), weighs them softmax(-d/T),\n"
    "sums the weights per token into p_memory and mixes: p = lambda p_memory + (1-lambda) p_model.\n"
    "\n"
    "options:\n"
    "  --model DIR         the translator (a checkpoint of attn train seq2seq / transformer); the\n"
    "                      store records its identity and refuses any other model\n"
    "  --data FILE         sentence pairs (TSV, as attn eval reads); build takes up to 8\n"
    "  --out STORE         build: the store file (written atomically)\n"
    "  --memory STORE      tune: the store to tune (its header is rewritten atomically)\n"
    "  --src-col N         the source column (default: 1 for a zh-en model, 0 for en-zh)\n"
    "  --limit N           tune: the first N validation pairs (default 500)\n"
    "  --beam K            tune: beam width (default 1, greedy)\n"
    "  --k-grid LIST       tune: k values (default 4,8,16,32)\n"
    "  --t-grid LIST       tune: temperatures as multiples of the median nearest-neighbour\n"
    "                      distance of the validation states (default 0.25,0.5,1,2,4)\n"
    "  --lambda-grid LIST  tune: lambda values (default 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8)\n"
    "  --full              tune: the whole grid, not coordinate by coordinate\n"
    "  --csv FILE          tune: every setting tried: k,temperature,lambda,bleu\n"
    "  --threads N         threads (default: all cores)\n"
    "  --quiet             only errors and the final line\n"
    "\n"
    "example:\n"
    "  attn memory build --model models/zh-en-small --data out/split/train.tsv --out out/train.knn\n"
    "  attn memory tune --model models/zh-en-small --memory out/train.knn --data out/split/valid.tsv\n"
    "  attn eval --model models/zh-en-small --data out/split/test.tsv --memory out/train.knn\n";

static int load_data(const char *cmd, attn_translator *m, const char *path, int src_col, attn_pairs *pairs, s2s_data *d) {
    int st = attn_pairs_read(path, pairs);
    if (st) return cli_fail_lib(cmd, st, path);
    if (pairs->malformed) {
        char rep[512];
        fprintf(stderr, "attn %s: %s: %s\n", cmd, path, attn_pairs_report(pairs, rep, sizeof rep));
    }
    if (src_col < 0) src_col = attn_translator_src_tok(m) == ATTN_TOK_ZH ? 1 : 0;
    /* pairs longer than 200 tokens on a side are left out (a Transformer's positions end) */
    if ((st = s2s_data_encode(m, pairs, src_col, 200, d))) return cli_fail_lib(cmd, st, path);
    return CLI_OK;
}

static int build(int argc, char **argv) {
    const char *cmd = "memory build", *model = NULL, *out = NULL, *data[8];
    int nd = 0, src_col = -1, threads = 0, quiet = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        const char *s = NULL;
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_str(&p, "--data", &s)) {
            if (s && nd == 8) return cli_usage(cmd, "at most 8 --data files");
            if (s) data[nd++] = s;
        } else if (cli_str(&p, "--model", &model) || cli_str(&p, "-m", &model) || cli_str(&p, "--out", &out) ||
                   cli_str(&p, "-o", &out)) {
        } else if (cli_int(&p, "--src-col", 0, 1, &src_col) || cli_int(&p, "--threads", 1, 1024, &threads)) {
        } else if (cli_flag(&p, "--quiet")) {
            quiet = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!model || !nd || !out) return cli_usage(cmd, "--model DIR, --data FILE and --out STORE are required");
    if (threads) attn_set_threads(threads);
    attn_translator *m = NULL;
    attn_knn_store *s = NULL;
    int st = attn_translator_load(model, &m);
    if (st) return cli_fail_lib(cmd, st, model);
    int rc = CLI_OK;
    if ((st = attn_knn_new_for(m, &s))) rc = cli_fail_lib(cmd, st, NULL);
    double t0 = attn_time_now();
    for (int f = 0; f < nd && !rc; f++) {
        attn_pairs pairs = {0};
        s2s_data d = {0};
        if (!(rc = load_data(cmd, m, data[f], src_col, &pairs, &d))) {
            if (!quiet)
                fprintf(stderr, "%s: %d pairs%s\n", data[f], d.n, d.dropped ? " (some left out: empty or over 200 tokens)" : "");
            /* chunks of 512 pairs, in order */
            int32_t **tgt = malloc((size_t)(d.n ? d.n : 1) * sizeof *tgt);
            if (!tgt) rc = cli_fail(cmd, "out of memory");
            for (int i = 0; i < d.n && !rc; i++) tgt[i] = d.tgt[i] + 1; /* y_1 .. y_n, without <bos> */
            for (int i0 = 0; i0 < d.n && !rc; i0 += 512) {
                int k = d.n - i0 < 512 ? d.n - i0 : 512;
                if ((st = attn_knn_add_pairs(s, m, k, (const int32_t *const *)(d.src + i0), d.n_src + i0,
                                             (const int32_t *const *)(tgt + i0), d.n_tgt + i0)))
                    rc = cli_fail_lib(cmd, st, data[f]);
                else if (!quiet)
                    fprintf(stderr, "\r%d/%d pairs, %lld entries, %.0f s", i0 + k, d.n, (long long)attn_knn_count(s), attn_time_now() - t0);
            }
            if (!quiet && d.n) fprintf(stderr, "\n");
            free(tgt);
        }
        s2s_data_free(&d);
        attn_pairs_free(&pairs);
    }
    if (!rc && (st = attn_knn_save(s, out))) rc = cli_fail_lib(cmd, st, out);
    if (!rc)
        printf("%s: %lld entries of %d floats (%s, target vocabulary %d), %.1f MB, built in %.1f s\n", out, (long long)attn_knn_count(s),
               attn_knn_dim(s), attn_translator_label(m), attn_knn_vocab(s), (64.0 + 4.0 * attn_knn_count(s) * (attn_knn_dim(s) + 1)) / 1e6,
               attn_time_now() - t0);
    attn_knn_free(s);
    attn_translator_free(m);
    return rc;
}

static int parse_list(const char *s, double *v, int cap) {
    int n = 0;
    char buf[512];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap || cli_parse_float(tok, &v[n])) return -1;
        n++;
    }
    return n ? n : -1;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The median distance from each validation state (teacher-forced) to its nearest key, the
 * scale of the temperature grid. */
static int median_nn(const char *cmd, attn_translator *m, attn_knn_store *s, const s2s_data *d, float *out) {
    int n = d->n < 200 ? d->n : 200, D = attn_knn_dim(s);
    int64_t rows = 0;
    for (int i = 0; i < n; i++) rows += d->n_tgt[i] + 1;
    float *q = malloc((size_t)(rows ? rows : 1) * D * sizeof(float)), *dist = malloc((size_t)(rows ? rows : 1) * sizeof(float));
    int32_t **tgt = malloc((size_t)(n ? n : 1) * sizeof *tgt);
    int rc = CLI_OK, st;
    if (!q || !dist || !tgt) rc = cli_fail(cmd, "out of memory");
    for (int i = 0; i < n && !rc; i++) tgt[i] = d->tgt[i] + 1;
    if (!rc && (st = attn_translator_states(m, n, (const int32_t *const *)d->src, d->n_src, (const int32_t *const *)tgt, d->n_tgt, q)))
        rc = cli_fail_lib(cmd, st, NULL);
    for (int64_t r0 = 0; r0 < rows && !rc; r0 += 64) {
        int k = rows - r0 < 64 ? (int)(rows - r0) : 64;
        if ((st = attn_knn_search(s, k, q + (size_t)r0 * D, 1, NULL, dist + r0))) rc = cli_fail_lib(cmd, st, NULL);
    }
    if (!rc) {
        qsort(dist, (size_t)rows, sizeof(float), cmp_float);
        *out = rows ? dist[rows / 2] : 1.0f;
        if (!(*out > 0.0f)) *out = 1.0f;
    }
    free(q), free(dist), free(tgt);
    return rc;
}

typedef struct {
    attn_translator *m;
    attn_knn_store *s;
    const s2s_data *d;
    attn_s2s_decode_opts o;
    FILE *csv;
    int quiet, tried;
    attn_knn_params seen[128]; /* the settings tried (the first 128) */
    attn_knn_params best;
    double best_bleu;
} tuner;

/* BLEU of the validation pairs with settings p (lambda 0: the model alone). */
static int try_one(const char *cmd, tuner *t, attn_knn_params p, double *bleu) {
    for (int i = 0; i < t->tried && i < 128; i++)
        if (t->seen[i].k == p.k && t->seen[i].temperature == p.temperature && t->seen[i].lambda == p.lambda) return CLI_OK;
    if (t->tried < 128) t->seen[t->tried] = p;
    attn_knn_hook h;
    attn_knn_hook_init(&h, t->s, &p);
    attn_s2s_decode_opts o = t->o;
    o.hook = p.lambda > 0.0f ? &h.hook : NULL;
    s2s_eval_result r;
    int edges[1] = {1000};
    int st = s2s_evaluate(t->m, t->d, &o, edges, 1, NULL, NULL, &r);
    if (st) return cli_fail_lib(cmd, st, NULL);
    *bleu = r.total.bleu;
    t->tried++;
    if (!t->quiet)
        printf("k %2d  T %8.3f  lambda %.2f  BLEU %6.2f  (%.1f s, %.0f tokens/s)\n", p.k, (double)p.temperature, (double)p.lambda, *bleu,
               r.seconds, r.seconds > 0 ? r.tokens / r.seconds : 0.0);
    fflush(stdout);
    if (t->csv) fprintf(t->csv, "%d,%g,%g,%.2f\n", p.k, (double)p.temperature, (double)p.lambda, *bleu);
    if (*bleu > t->best_bleu) t->best_bleu = *bleu, t->best = p;
    return CLI_OK;
}

static int tune(int argc, char **argv) {
    const char *cmd = "memory tune", *model = NULL, *store = NULL, *data = NULL, *kg = "4,8,16,32", *tg = "0.25,0.5,1,2,4",
               *lg = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8", *csv = NULL;
    int src_col = -1, threads = 0, quiet = 0, limit = 500, beam = 1, full = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_str(&p, "--model", &model) || cli_str(&p, "-m", &model) || cli_str(&p, "--memory", &store) ||
                   cli_str(&p, "--data", &data) || cli_str(&p, "--k-grid", &kg) || cli_str(&p, "--t-grid", &tg) ||
                   cli_str(&p, "--lambda-grid", &lg) || cli_str(&p, "--csv", &csv)) {
        } else if (cli_int(&p, "--src-col", 0, 1, &src_col) || cli_int(&p, "--threads", 1, 1024, &threads) ||
                   cli_int(&p, "--limit", 1, INT32_MAX, &limit) || cli_int(&p, "--beam", 1, 100, &beam)) {
        } else if (cli_flag(&p, "--quiet")) {
            quiet = 1;
        } else if (cli_flag(&p, "--full")) {
            full = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!model || !store || !data) return cli_usage(cmd, "--model DIR, --memory STORE and --data VALID.tsv are required");
    double K[16], TT[16], L[16];
    int nk = parse_list(kg, K, 16), nt = parse_list(tg, TT, 16), nl = parse_list(lg, L, 16);
    if (nk < 0 || nt < 0 || nl < 0) return cli_usage(cmd, "--k-grid, --t-grid and --lambda-grid want lists of numbers like 4,8,16");
    for (int i = 0; i < nk; i++)
        if (K[i] < 1 || K[i] > ATTN_KNN_MAX_K || K[i] != floor(K[i])) return cli_usage(cmd, "--k-grid: k %g is not in 1-%d", K[i], ATTN_KNN_MAX_K);
    for (int i = 0; i < nt; i++)
        if (!(TT[i] > 0)) return cli_usage(cmd, "--t-grid: %g is not positive", TT[i]);
    for (int i = 0; i < nl; i++)
        if (!(L[i] > 0 && L[i] < 1)) return cli_usage(cmd, "--lambda-grid: %g is not in (0, 1)", L[i]);
    if (threads) attn_set_threads(threads);
    attn_translator *m = NULL;
    attn_knn_store *s = NULL;
    attn_pairs pairs = {0};
    s2s_data d = {0};
    tuner t;
    memset(&t, 0, sizeof t);
    int st = attn_translator_load(model, &m), rc = CLI_OK, n_full = 0;
    if (st) return cli_fail_lib(cmd, st, model);
    if ((st = attn_knn_load(store, &s))) rc = cli_fail_lib(cmd, st, store);
    else if ((st = attn_knn_check(s, m))) rc = cli_fail(cmd, "%s: %s", store, attn_last_error());
    if (!rc) rc = load_data(cmd, m, data, src_col, &pairs, &d);
    if (rc) goto done;
    n_full = d.n;
    if (d.n > limit) d.n = limit; /* the first --limit pairs (all n_full are freed below) */
    float scale = 1.0f;
    if ((rc = median_nn(cmd, m, s, &d, &scale))) goto done;
    if (!quiet) printf("%s: %d validation pairs, beam %d; median nearest-neighbour distance %.4g (the unit of T)\n", data, d.n, beam, (double)scale);
    if (csv && !(t.csv = fopen(csv, "w"))) {
        rc = cli_fail(cmd, "%s: cannot write", csv);
        goto done;
    }
    if (t.csv) fprintf(t.csv, "k,temperature,lambda,bleu\n");
    t.m = m, t.s = s, t.d = &d, t.quiet = quiet;
    t.o = attn_s2s_decode_defaults();
    t.o.beam = beam;
    double base, b;
    attn_knn_params p0 = {8, scale, 0.0f};
    if ((rc = try_one(cmd, &t, p0, &base))) goto done; /* the model alone */
    t.best = p0, t.best_bleu = base;
    if (full) {
        for (int i = 0; i < nk && !rc; i++)
            for (int j = 0; j < nt && !rc; j++)
                for (int l = 0; l < nl && !rc; l++) rc = try_one(cmd, &t, (attn_knn_params){(int)K[i], (float)(TT[j] * scale), (float)L[l]}, &b);
    } else {
        /* coordinates: lambda (k 8, T = scale), then T, then k, then lambda again */
        attn_knn_params c = {8, scale, 0.0f};
        for (int pass = 0; pass < 4 && !rc; pass++) {
            int n = pass == 1 ? nt : pass == 2 ? nk : nl;
            for (int i = 0; i < n && !rc; i++) {
                attn_knn_params q = c;
                if (pass == 1) q.temperature = (float)(TT[i] * scale);
                else if (pass == 2) q.k = (int)K[i];
                else q.lambda = (float)L[i];
                if (q.lambda == 0.0f) q.lambda = (float)L[0];
                rc = try_one(cmd, &t, q, &b); /* (a setting already tried is skipped) */
            }
            if (t.best.lambda > 0.0f) c = t.best;
        }
    }
    if (rc) goto done;
    if (t.csv) {
        FILE *f = t.csv;
        t.csv = NULL;
        if (fclose(f)) {
            rc = cli_fail(cmd, "%s: cannot write", csv);
            goto done;
        }
    }
    if (t.best.lambda == 0.0f)
        fprintf(stderr, "attn %s: no setting beat the model alone (BLEU %.2f); the store keeps lambda 0\n", cmd, base);
    if ((st = attn_knn_set_params(s, &t.best, 1)) || (st = attn_knn_save(s, store))) {
        rc = cli_fail_lib(cmd, st, store);
        goto done;
    }
    printf("%s: tuned on %d pairs of %s (%d settings): k %d, temperature %g, lambda %g: BLEU %.2f (the model alone: %.2f)\n", store,
           d.n, data, t.tried, t.best.k, (double)t.best.temperature, (double)t.best.lambda, t.best_bleu, base);
done:
    if (t.csv) fclose(t.csv);
    if (n_full) d.n = n_full;
    s2s_data_free(&d);
    attn_pairs_free(&pairs);
    attn_knn_free(s);
    attn_translator_free(m);
    return rc;
}

static int info(int argc, char **argv) {
    const char *cmd = "memory info";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos != 1) return cli_usage(cmd, "one STORE file");
    attn_knn_store *s = NULL;
    int st = attn_knn_load(p.pos[0], &s), tuned = 0;
    if (st) return cli_fail_lib(cmd, st, p.pos[0]);
    attn_knn_params kp = attn_knn_get_params(s, &tuned);
    printf("%s: %lld entries, state size %d, target vocabulary %d, model identity %016llx; k %d, temperature %g, lambda %g (%s)\n",
           p.pos[0], (long long)attn_knn_count(s), attn_knn_dim(s), attn_knn_vocab(s), (unsigned long long)attn_knn_model_id(s), kp.k,
           (double)kp.temperature, (double)kp.lambda, tuned ? "tuned" : "defaults");
    attn_knn_free(s);
    return CLI_OK;
}

int cli_memory(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        if (argc < 2) {
            fputs(HELP, stderr);
            return CLI_EUSAGE;
        }
        return cli_help(HELP);
    }
    if (!strcmp(argv[1], "build")) return build(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tune")) return tune(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return info(argc - 1, argv + 1);
    return cli_usage("memory", "unknown subcommand '%s' (build, tune, info)", argv[1]);
}
