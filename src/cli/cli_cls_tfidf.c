/* The TF-IDF classifiers (attn/tfidf.h: tfidf-lr, tfidf-svm, nbsvm) as a family of the
 * classification commands (cli_cls.h): their options, training through attn_tfclf_train, and
 * a loaded checkpoint's predictions and explanations (each n-gram's contribution). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/tfidf_train.h"
#include "cli_cls.h"

static const char *const KINDS[] = {"tfidf-lr", "tfidf-svm", "nbsvm", NULL};

static const char HELP[] =
    "TF-IDF models (tfidf-lr, tfidf-svm, nbsvm): a text becomes a sparse vector over the n-grams\n"
    "seen in the training texts: each n-gram's count (1 + ln(count), sublinear tf) times its\n"
    "idf = ln((1 + n) / (1 + df)) + 1 (rare n-grams weigh more), scaled to unit length. Word order\n"
    "counts only inside an n-gram. Then a linear score per class, s = W x + b:\n"
    "  tfidf-lr    logistic regression (softmax cross-entropy); prints a probability\n"
    "  tfidf-svm   linear SVM, squared hinge, one-vs-rest (as LIBLINEAR / scikit-learn LinearSVC)\n"
    "  nbsvm       the SVM on features scaled by naive-Bayes log-count ratios (Wang & Manning\n"
    "              2012, \"Baselines and bigrams\"), the strongest bag-of-n-grams baseline\n"
    "  --ngram MIN-MAX     n-gram lengths (default 1-2 for English words, 1-3 for Chinese\n"
    "                      characters)\n"
    "  --min-df N          keep n-grams of at least N training texts (default 1)\n"
    "  --max-features N    at most N n-grams, the most frequent (default 0: all)\n"
    "  --no-sublinear      tf = the raw count\n"
    "  --nb-alpha F        nbsvm's smoothing of the counts (default 1)\n"
    "  L2 regularisation is --weight-decay (the bias is not decayed).\n"
    "\n";

typedef struct {
    int ngram_min, ngram_max, min_df, max_features, linear_tf;
    float nb_alpha;
} tfidf_cfg;

static void *cfg_new(void) {
    tfidf_cfg *c = calloc(1, sizeof *c);
    if (c) c->min_df = 1, c->nb_alpha = 1.0f;
    return c;
}

static int option(cli_args *p, void *cfg) {
    tfidf_cfg *c = cfg;
    const char *v = NULL;
    if (cli_str(p, "--ngram", &v)) {
        char end;
        if (v && (sscanf(v, "%d-%d%c", &c->ngram_min, &c->ngram_max, &end) != 2 || c->ngram_min < 1 ||
                  c->ngram_max < c->ngram_min || c->ngram_max > ATTN_TFIDF_MAX_N))
            p->status = cli_usage(p->cmd, "--ngram wants MIN-MAX with 1 <= MIN <= MAX <= %d, e.g. 1-2", ATTN_TFIDF_MAX_N);
        return 1;
    }
    if (cli_flag(p, "--no-sublinear")) return c->linear_tf = 1;
    if (cli_float(p, "--nb-alpha", &c->nb_alpha)) {
        if (!p->status && !(c->nb_alpha > 0)) p->status = cli_usage(p->cmd, "--nb-alpha must be positive");
        return 1;
    }
    return cli_int(p, "--min-df", 1, INT32_MAX, &c->min_df) || cli_int(p, "--max-features", 0, INT32_MAX, &c->max_features);
}

/* The model: resumed from o->out (its kind and labels must fit), or fitted on the training
 * texts. */
static int get_model(const char *cmd, const cls_opts *o, const tfidf_cfg *tc, const cls_data *d, const cls_set *tr,
                     attn_tfclf **m, attn_checkpoint *ck) {
    int st;
    if (o->resume) {
        if ((st = attn_tfclf_load(o->out, m)) || (st = attn_checkpoint_open(o->out, ck))) return cli_fail_lib(cmd, st, o->out);
        const char *kind = attn_tfclf_kind_name(attn_tfclf_config_of(*m)->kind);
        if (strcmp(kind, o->model)) return cli_fail(cmd, "%s: a %s checkpoint; resume it with --model %s", o->out, kind, kind);
        cls_say_resume(o, ck);
        return CLI_OK;
    }
    attn_tfidf_config fc = attn_tfidf_defaults(d->tok);
    if (tc->ngram_min) fc.ngram_min = tc->ngram_min, fc.ngram_max = tc->ngram_max;
    fc.min_df = tc->min_df, fc.max_features = tc->max_features, fc.sublinear_tf = !tc->linear_tf;
    attn_tfidf *f = NULL;
    if ((st = attn_tfidf_fit(&fc, tr->text, tr->n, &f))) return cli_fail_lib(cmd, st, NULL);
    if (attn_tfidf_size(f) == 0) {
        attn_tfidf_free(f);
        return cli_fail(cmd, "no n-gram of the training texts is kept (--min-df %d)", fc.min_df);
    }
    attn_tfclf_config cc = {(attn_tfclf_kind)attn_tfclf_kind_parse(o->model), d->n_labels, tc->nb_alpha};
    if ((st = attn_tfclf_new(&cc, f, m)) || (st = attn_tfclf_set_labels(*m, d->labels))) return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}

static int train(const char *cmd, const cls_opts *o, void *cfg, const cls_data *d) {
    attn_tfclf *m = NULL;
    attn_checkpoint ck = {0};
    attn_csr Xtr = {0}, Xva = {0};
    cls_set tr = {0}, va = {0};
    int rc, st, unknown;
    /* A new model's classes are the training file's labels; a resumed one keeps its own. */
    if ((rc = cls_set_make(cmd, &d->train_data, d->labels, d->n_labels, &tr, &unknown))) goto done;
    if ((rc = get_model(cmd, o, cfg, d, &tr, &m, &ck))) goto done;
    int C = attn_tfclf_config_of(m)->n_classes;
    const char *labels[256], **lab = C <= 256 ? labels : malloc((size_t)C * sizeof(char *));
    if (!lab) {
        rc = cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
        goto done;
    }
    for (int c = 0; c < C; c++) lab[c] = attn_tfclf_label(m, c) ? attn_tfclf_label(m, c) : "?";
    if (o->resume) cls_set_free(&tr), rc = cls_set_make(cmd, &d->train_data, lab, C, &tr, &unknown);
    if (!rc && unknown) rc = cli_fail(cmd, "%s: %d training texts have labels the checkpoint does not know", o->out, unknown);
    if (!rc) rc = cls_set_make(cmd, &d->valid_data, lab, C, &va, &unknown);
    if (lab != labels) free((void *)lab);
    if (rc) goto done;
    rc = CLI_EDATA;
    if (unknown) fprintf(stderr, "attn %s: %d validation texts with labels not in training left out\n", cmd, unknown);
    if ((st = attn_tfidf_transform(attn_tfclf_features(m), tr.text, tr.n, &Xtr)) ||
        (st = attn_tfidf_transform(attn_tfclf_features(m), va.text, va.n, &Xva)) ||
        (!o->resume && (st = attn_tfclf_fit_nb(m, &Xtr, tr.y)))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "model: %s, %d classes, %d n-grams (%s), %lld parameters; training on %d texts\n", o->model, C,
                attn_tfidf_size(attn_tfclf_features(m)), d->tok == ATTN_TOK_ZH ? "characters" : "words",
                (long long)attn_params_numel(attn_tfclf_params(m)), tr.n);
    attn_trainer_config c = cls_trainer_config(o);
    c.resume = o->resume ? &ck : NULL;
    attn_train_result r;
    if ((st = attn_tfclf_train(m, &Xtr, tr.y, va.n ? &Xva : NULL, va.n ? va.y : NULL, &c, &r))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    double acc = NAN;
    if (va.n && (st = attn_tfclf_accuracy(m, &Xva, va.y, &acc))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    cls_say_result(o, &r, va.n, acc);
    rc = CLI_OK;
done:
    attn_csr_free(&Xtr), attn_csr_free(&Xva);
    cls_set_free(&tr), cls_set_free(&va);
    attn_checkpoint_free(&ck);
    attn_tfclf_free(m);
    return rc;
}

/* ---- A loaded checkpoint ------------------------------------------------------------------- */

typedef struct {
    attn_tfclf *m;
    const char **labels; /* (C) */
    attn_csr X;          /* scratch */
    float *s, *contrib;  /* scratch: scores (n, C), contributions (nnz) */
    int *order, *occ;    /* scratch: (nnz) the non-zeros by |contribution|, their occurrences */
    attn_tokens t;       /* scratch: one text's tokens */
    float *tw, *term_w;  /* scratch: their shares (t.n), the top n-grams' contributions */
    const char **terms;  /* scratch: the top n-grams */
} loaded;

static void loaded_free(void *self) {
    loaded *l = self;
    if (!l) return;
    attn_tfclf_free(l->m), attn_csr_free(&l->X);
    free((void *)l->labels), free(l->s), free(l->contrib), free(l->order), free(l->occ);
    attn_tokens_free(&l->t), free(l->tw), free(l->term_w), free((void *)l->terms);
    free(l);
}

/* The scores (n, C) of n texts into l->s, l->X their rows. */
static int scores(loaded *l, const char *const *texts, int n) {
    int C = attn_tfclf_config_of(l->m)->n_classes;
    int st = attn_tfidf_transform(attn_tfclf_features(l->m), texts, n, &l->X);
    if (st) return st;
    free(l->s);
    if (!(l->s = malloc((size_t)n * C * sizeof(float) + 1))) return ATTN_ENOMEM;
    return attn_tfclf_predict(l->m, &l->X, NULL, l->s);
}

/* LR: the softmax probability of the best class; the SVMs: its decision value. */
static int predict(void *self, const char *const *texts, int n, int32_t *pred, float *num) {
    loaded *l = self;
    int C = attn_tfclf_config_of(l->m)->n_classes, lr = attn_tfclf_config_of(l->m)->kind == ATTN_TFCLF_LR;
    int st = scores(l, texts, n);
    for (int i = 0; !st && i < n; i++) {
        const float *s = l->s + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (s[c] > s[best]) best = c;
        double z = 0;
        for (int c = 0; lr && c < C; c++) z += exp((double)s[c] - s[best]);
        pred[i] = best, num[i] = lr ? (float)(1.0 / z) : s[best];
    }
    return st;
}

/* Why one text gets its class: l->X its row, l->s its scores, *best the predicted class and
 * *second the runner-up, l->contrib (nnz) each non-zero's contribution to s_best - s_second,
 * l->order[0, *shown) the min(top, nnz) non-zeros of largest |contribution|, strongest first
 * (ties: column order). */
static int decide(loaded *l, const char *text, int top, int *best, int *second, int *shown) {
    int C = attn_tfclf_config_of(l->m)->n_classes;
    int st = scores(l, &text, 1);
    if (st) return st;
    *best = 0, *second = -1;
    for (int c = 1; c < C; c++)
        if (l->s[c] > l->s[*best]) *best = c;
    for (int c = 0; c < C; c++)
        if (c != *best && (*second < 0 || l->s[c] > l->s[*second])) *second = c;
    int nnz = (int)l->X.rowptr[1];
    free(l->contrib), free(l->order);
    l->contrib = malloc(2 * (size_t)nnz * sizeof(float) + 1), l->order = malloc((size_t)nnz * sizeof(int) + 1);
    if (!l->contrib || !l->order) return ATTN_ENOMEM;
    float *other = l->contrib + nnz;
    if ((st = attn_tfclf_contrib(l->m, &l->X, 0, *best, l->contrib)) || (st = attn_tfclf_contrib(l->m, &l->X, 0, *second, other)))
        return st;
    for (int k = 0; k < nnz; k++) l->contrib[k] -= other[k], l->order[k] = k;
    /* Selection of the top entries by |contribution|, enough for small N. */
    *shown = nnz < top ? nnz : top;
    for (int a = 0; a < *shown; a++)
        for (int b = a + 1; b < nnz; b++)
            if (fabsf(l->contrib[l->order[b]]) > fabsf(l->contrib[l->order[a]])) {
                int t = l->order[a];
                l->order[a] = l->order[b], l->order[b] = t;
            }
    return ATTN_OK;
}

/* The n-grams with the largest |contribution| to s_best - s_second (the decision between the
 * predicted class and the runner-up), one per line: "  +0.1234  n-gram". */
static int explain(void *self, const char *text, int top, FILE *f) {
    loaded *l = self;
    int best, second, shown, st = decide(l, text, top, &best, &second, &shown);
    if (st) return st;
    fprintf(f, "  n-gram contributions to s(%s) - s(%s) = %+.4f:\n", l->labels[best], l->labels[second],
            (double)(l->s[best] - l->s[second]));
    if (!l->X.rowptr[1]) fprintf(f, "  (no n-gram of this text was seen in training: the biases decide)\n");
    for (int a = 0; a < shown; a++)
        fprintf(f, "  %+.4f  %s\n", (double)l->contrib[l->order[a]], attn_tfidf_feature(attn_tfclf_features(l->m), l->X.col[l->order[a]]));
    return ATTN_OK;
}

/* The non-zero of this text's row at column j (the row's columns ascend), or -1. */
static int nz_of(const attn_csr *X, int j) {
    int lo = 0, hi = (int)X->rowptr[1] - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (X->col[mid] == j) return mid;
        if (X->col[mid] < j) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Tokens i .. i + len - 1 of t joined by single spaces, as attn_tfidf_feature writes an n-gram,
 * into *buf (capacity *cap, grown as needed). */
static int ngram_of(const attn_tokens *t, int i, int len, char **buf, size_t *cap) {
    size_t need = 1;
    for (int k = i; k < i + len; k++) need += (size_t)t->len[k] + 1;
    if (need > *cap) {
        char *b = realloc(*buf, need);
        if (!b) return ATTN_ENOMEM;
        *buf = b, *cap = need;
    }
    size_t at = 0;
    for (int k = i; k < i + len; k++) {
        if (k > i) (*buf)[at++] = ' ';
        memcpy(*buf + at, t->tok[k], (size_t)t->len[k]), at += (size_t)t->len[k];
    }
    (*buf)[at] = '\0';
    return ATTN_OK;
}

static const char LEGEND[] =
    "Each word's share of the decision between the predicted label and the runner-up: every n-gram of the text "
    "adds its contribution to that difference of scores (its TF-IDF value times its weight), shared equally among "
    "its words; blue: for the predicted label, red: against it; the deeper, the larger (scaled to the text's largest).";

/* Each token's share of s_best - s_second: every occurrence of an n-gram of n tokens gives
 * each of its tokens contribution / (n * occurrences), so the tokens' shares add up to the
 * n-grams' total (the biases' difference aside). Then the top n-grams, as explain lists them. */
static int contrib(void *self, const char *text, int top, cls_view *v) {
    loaded *l = self;
    const attn_tfidf *f = attn_tfclf_features(l->m);
    const attn_tfidf_config *fc = attn_tfidf_config_of(f);
    int best, second, shown, st = decide(l, text, top, &best, &second, &shown);
    if (!st) st = attn_tokenize(fc->tok, text, &l->t);
    if (st) return st;
    int n = l->t.n, nnz = (int)l->X.rowptr[1];
    free(l->tw), free(l->occ), free((void *)l->terms), free(l->term_w);
    l->tw = calloc((size_t)n + 1, sizeof(float)), l->occ = calloc((size_t)nnz + 1, sizeof(int));
    l->terms = malloc(((size_t)shown + 1) * sizeof(char *)), l->term_w = malloc(((size_t)shown + 1) * sizeof(float));
    char *ng = NULL;
    size_t cap = 0;
    if (!l->tw || !l->occ || !l->terms || !l->term_w) return ATTN_ENOMEM;
    for (int pass = 0; pass < 2 && !st; pass++) /* pass 0 counts the occurrences, pass 1 shares */
        for (int len = fc->ngram_min; len <= fc->ngram_max && !st; len++)
            for (int i = 0; i + len <= n && !st; i++) {
                if ((st = ngram_of(&l->t, i, len, &ng, &cap))) break;
                int k = nz_of(&l->X, attn_tfidf_find(f, ng));
                if (k < 0) continue;
                if (pass == 0) l->occ[k]++;
                else
                    for (int t = i; t < i + len; t++) l->tw[t] += l->contrib[k] / (float)(len * l->occ[k]);
            }
    free(ng);
    for (int a = 0; a < shown; a++) l->terms[a] = attn_tfidf_feature(f, l->X.col[l->order[a]]), l->term_w[a] = l->contrib[l->order[a]];
    *v = (cls_view){n, l->t.tok, l->tw, shown, l->terms, l->term_w};
    return st;
}

static int load(const char *cmd, const char *dir, cls_model *out) {
    loaded *l = calloc(1, sizeof *l);
    if (!l) return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    int st = attn_tfclf_load(dir, &l->m);
    if (st) {
        loaded_free(l);
        return cli_fail_lib(cmd, st, dir);
    }
    const attn_tfclf_config *c = attn_tfclf_config_of(l->m);
    if (!(l->labels = malloc((size_t)c->n_classes * sizeof(char *)))) {
        loaded_free(l);
        return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    }
    /* A checkpoint without label names (written by the library alone) shows the class ids. */
    static const char *const IDS[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    for (int k = 0; k < c->n_classes; k++) {
        l->labels[k] = attn_tfclf_label(l->m, k);
        if (!l->labels[k] && k >= 10) {
            loaded_free(l);
            return cli_fail(cmd, "%s: the checkpoint has no label names", dir);
        }
        if (!l->labels[k]) l->labels[k] = IDS[k];
    }
    *out = (cls_model){attn_tfclf_kind_name(c->kind), c->n_classes, l->labels,
                       c->kind == ATTN_TFCLF_LR ? "probability" : "SVM decision value", l, predict, explain, loaded_free, NULL,
                       contrib, LEGEND};
    return CLI_OK;
}

const cls_family cls_tfidf_family = {KINDS, HELP, cfg_new, option, train, load, NULL};
