/* The neural text classifiers (attn/classifier.h: bow, attn-pool, bigru-attn, transformer, cnn) as a
 * family of the classification commands (cli_cls.h): their options, a vocabulary of the
 * training texts, training through the library's trainer (attn/classifier_train.h), and a
 * loaded checkpoint's predictions and pooling weights (for attn classify --show-attention).
 *
 * A text becomes token ids: the tokeniser of --tok, every word the vocabulary does not hold as
 * <unk>, at most max_len tokens (longer texts are cut, with a count on stderr); a text without
 * any token reads as one <unk>. Letters: B texts in a batch, T their longest, C classes. */
#include <stdlib.h>
#include <string.h>

#include "attn/classifier_train.h"
#include "cli_cls.h"

static const char *const KINDS[] = {"bow", "attn-pool", "bigru-attn", "transformer", "cnn", NULL};

static const char HELP[] =
    "neural models (bow, attn-pool, bigru-attn, transformer, cnn): each word is a learned vector\n"
    "(its embedding); the vectors of a text are pooled into one, and a linear layer gives the\n"
    "class scores (softmax: a probability). Trained with Adam on the cross-entropy.\n"
    "  bow          the mean of the word vectors: every word weighs the same\n"
    "  attn-pool    attention pooling, the \"weighted bag of words\": a learned query scores each\n"
    "               word vector, the softmax of the scores weighs them; no word order\n"
    "  bigru-attn   a bidirectional GRU reads the words in order (Yang et al. 2016), then the\n"
    "               same attention pooling over its states\n"
    "  transformer  a Transformer encoder (self-attention), pooled by a [CLS] token or by\n"
    "               attention; positions tell it the order\n"
    "  cnn          a convolutional network (Kim 2014): filters slide over every window of w\n"
    "               consecutive word vectors (w - 1 zero vectors pad each end, so short texts\n"
    "               work); each filter keeps its largest response in the text (max over time),\n"
    "               so it detects an n-gram wherever it occurs; order counts within a window\n"
    "  --embed N           word vector size E, the Transformer's d_model (default 128)\n"
    "  --hidden N          attn-pool's attention size, bigru-attn's GRU size per direction\n"
    "                      (default 128)\n"
    "  --score additive|scaled   attn-pool's score: u . tanh(W e + b) (default) or q . e / sqrt(E)\n"
    "  --heads N, --layers N, --d-ff N   the Transformer's (default 4, 2, 256)\n"
    "  --pos none|sinusoidal|learned|rope|alibi   the Transformer's positions (default sinusoidal)\n"
    "  --pool cls|attention   the Transformer's pooling (default cls)\n"
    "  --maps N            the cnn's filters (feature maps) per width (default 100)\n"
    "  --widths 3,4,5      the cnn's filter widths in words, 1 to 8 of them, each 1 to 64\n"
    "                      (default 3,4,5: Kim's; the pooled vector has maps x widths numbers)\n"
    "  --dropout F         on the word vectors and the pooled vector (default 0.1; Kim's cnn\n"
    "                      used 0.5)\n"
    "  --max-len N         tokens per text; longer texts are cut (default 512)\n"
    "  --min-count N       vocabulary: words seen at least N times in the training texts\n"
    "                      (default 2; rarer words, and words never seen, read as <unk>)\n"
    "  --max-vocab N       vocabulary: at most N words, the most frequent (default 0: all)\n"
    "\n";

typedef struct {
    attn_classifier_config m;
    int min_count, max_vocab;
    const char *pos, *pool, *score, *widths; /* as given, parsed by resolve() */
} neural_cfg;

static void *cfg_new(void) {
    neural_cfg *c = calloc(1, sizeof *c);
    if (c) c->m = attn_classifier_config_default(), c->min_count = 2;
    return c;
}

static int option(cli_args *p, void *cfg) {
    neural_cfg *c = cfg;
    attn_classifier_config *m = &c->m;
    if (cli_str(p, "--pos", &c->pos) || cli_str(p, "--pool", &c->pool) || cli_str(p, "--score", &c->score) ||
        cli_str(p, "--widths", &c->widths))
        return 1;
    if (cli_float(p, "--dropout", &m->dropout)) {
        if (!p->status && !(m->dropout >= 0 && m->dropout < 1)) p->status = cli_usage(p->cmd, "--dropout must be in [0, 1)");
        return 1;
    }
    return cli_int(p, "--embed", 1, 1 << 16, &m->embed) || cli_int(p, "--hidden", 1, 1 << 16, &m->hidden) ||
           cli_int(p, "--heads", 1, 4096, &m->heads) || cli_int(p, "--layers", 1, 1000, &m->layers) ||
           cli_int(p, "--d-ff", 1, 1 << 20, &m->d_ff) || cli_int(p, "--maps", 1, 1 << 16, &m->maps) ||
           cli_int(p, "--max-len", 1, 1 << 20, &m->max_len) ||
           cli_int(p, "--min-count", 1, INT32_MAX, &c->min_count) || cli_int(p, "--max-vocab", 0, INT32_MAX, &c->max_vocab);
}

/* ---- Texts as token ids --------------------------------------------------------------------- */

/* n texts as ids: text i is ids[i] (len[i] >= 1 ids), views into one allocation. */
typedef struct {
    int n, cut;      /* texts, and how many of them were cut to max_len */
    int32_t *flat;   /* every text's ids, one after the other */
    const int32_t **ids;
    int *len;
} encoded;

static void encoded_free(encoded *e) {
    free(e->flat), free((void *)e->ids), free(e->len);
    memset(e, 0, sizeof *e);
}

/* The tokens of one text as the model reads them into *t (cut to max_len; "<unk>" alone for a
 * text without tokens), their ids into ids (room for max_len); *cut is 1 if it was cut. */
static int encode_one(const attn_classifier *m, const char *text, attn_tokens *t, int32_t *ids, int *n, int *cut) {
    const attn_classifier_config *c = attn_classifier_get_config(m);
    static const char *const UNK[] = {ATTN_UNK_TOKEN};
    int st = attn_tokenize(c->tok, text, t);
    if (!st && t->n == 0) st = attn_tokens_set(t, UNK, 1);
    if (st) return st;
    *cut = t->n > c->max_len;
    if (*cut) t->n = c->max_len; /* attn_tokens keeps its buffers; the next call replaces them */
    return attn_vocab_encode(attn_classifier_vocab(m), t, 0, ids, c->max_len, n, NULL);
}

/* Encodes texts[0, n) into *e (replacing it). */
static int encode_all(const attn_classifier *m, const char *const *texts, int n, encoded *e) {
    int L = attn_classifier_get_config(m)->max_len, st = ATTN_OK;
    attn_tokens t = {0};
    size_t used = 0, cap = 0;
    encoded_free(e);
    e->ids = malloc(((size_t)n + 1) * sizeof(int32_t *)), e->len = malloc(((size_t)n + 1) * sizeof(int));
    if (!e->ids || !e->len) st = ATTN_ENOMEM;
    for (int i = 0; !st && i < n; i++) {
        if (cap - used < (size_t)L) {
            cap = 2 * cap + (size_t)L;
            int32_t *f = realloc(e->flat, cap * sizeof(int32_t));
            if (!f) st = ATTN_ENOMEM;
            else e->flat = f;
        }
        int cut = 0;
        if (!st && !(st = encode_one(m, texts[i], &t, e->flat + used, &e->len[i], &cut))) used += (size_t)e->len[i], e->cut += cut;
    }
    attn_tokens_free(&t);
    if (st) {
        encoded_free(e);
        return st;
    }
    for (int i = 0, off = 0; i < n; off += e->len[i++]) e->ids[i] = e->flat + off;
    e->n = n;
    return ATTN_OK;
}

/* ---- Training ------------------------------------------------------------------------------- */

/* A vocabulary of the training texts: the words of at least min_count of their tokens. */
static int build_vocab(const cls_set *tr, attn_tok_kind tok, const neural_cfg *nc, attn_vocab **v) {
    attn_counter *cnt = NULL;
    attn_tokens t = {0};
    int st = attn_counter_new(&cnt);
    for (int i = 0; !st && i < tr->n; i++) {
        if (!(st = attn_tokenize(tok, tr->text[i], &t)))
            for (int k = 0; !st && k < t.n; k++) st = attn_counter_add(cnt, t.tok[k], (size_t)t.len[k], 1, NULL);
    }
    if (!st) st = attn_vocab_build(cnt, nc->min_count, nc->max_vocab ? nc->max_vocab + ATTN_NSPECIAL : 0, v);
    attn_tokens_free(&t);
    attn_counter_free(cnt);
    return st;
}

/* --widths "3,4,5" into c (1 to ATTN_CLS_MAX_WIDTHS widths, each in [1, 64]): 1, or 0 if bad. */
static int parse_widths(const char *s, attn_classifier_config *c) {
    int n = 0, w[ATTN_CLS_MAX_WIDTHS] = {0};
    for (;;) {
        char *end;
        long v = *s >= '0' && *s <= '9' ? strtol(s, &end, 10) : 0;
        if (v < 1 || v > 64 || n == ATTN_CLS_MAX_WIDTHS) return 0;
        w[n++] = (int)v;
        if (!*end) break;
        if (*end != ',') return 0;
        s = end + 1;
    }
    c->n_widths = n;
    memcpy(c->widths, w, sizeof w);
    return 1;
}

/* The named options into c (CLI_OK), or a usage error. */
static int resolve(const char *cmd, const neural_cfg *nc, attn_classifier_config *c) {
    int pos = nc->pos ? attn_pos_parse(nc->pos) : (int)c->pos, pool = nc->pool ? attn_cls_pool_parse(nc->pool) : (int)c->pool;
    int score = !nc->score                     ? (int)c->score
                : !strcmp(nc->score, "additive") ? ATTN_SCORE_ADDITIVE
                : !strcmp(nc->score, "scaled")   ? ATTN_SCORE_SCALED
                                                 : -1;
    if (pos < 0) return cli_usage(cmd, "unknown --pos '%s' (none, sinusoidal, learned, rope, alibi)", nc->pos);
    if (pool < 0) return cli_usage(cmd, "unknown --pool '%s' (cls, attention)", nc->pool);
    if (score < 0) return cli_usage(cmd, "unknown --score '%s' (additive, scaled)", nc->score);
    if (nc->widths && !parse_widths(nc->widths, c))
        return cli_usage(cmd, "--widths '%s': 1 to %d filter widths, each 1 to 64, separated by commas (e.g. 3,4,5)",
                         nc->widths, ATTN_CLS_MAX_WIDTHS);
    c->pos = (attn_pos_kind)pos, c->pool = (attn_cls_pool)pool, c->score = (attn_score)score;
    return attn_classifier_config_check(c) ? cli_usage(cmd, "%s", attn_last_error()) : CLI_OK;
}

/* The model: resumed from o->out (its kind must be --model), or new for the training texts. */
static int get_model(const char *cmd, const cls_opts *o, const neural_cfg *nc, const cls_data *d, const cls_set *tr,
                     attn_classifier **m, attn_checkpoint *ck) {
    int st;
    if (o->resume) {
        if ((st = attn_classifier_load(o->out, m)) || (st = attn_checkpoint_open(o->out, ck))) return cli_fail_lib(cmd, st, o->out);
        const char *kind = attn_cls_kind_name(attn_classifier_get_config(*m)->kind);
        if (strcmp(kind, o->model)) return cli_fail(cmd, "%s: a %s checkpoint; resume it with --model %s", o->out, kind, kind);
        cls_say_resume(o, ck);
        return CLI_OK;
    }
    attn_classifier_config c = nc->m;
    c.kind = (attn_cls_kind)attn_cls_kind_parse(o->model), c.vocab = ATTN_NSPECIAL, c.classes = d->n_labels, c.tok = d->tok;
    int rc = resolve(cmd, nc, &c);
    if (rc) return rc;
    attn_vocab *v = NULL;
    if ((st = build_vocab(tr, d->tok, nc, &v))) return cli_fail_lib(cmd, st, NULL);
    c.vocab = attn_vocab_size(v);
    if ((st = attn_classifier_new(&c, (uint64_t)o->seed, m))) {
        attn_vocab_free(v);
        return cli_fail_lib(cmd, st, NULL);
    }
    if ((st = attn_classifier_set_vocab(*m, v)) || (st = attn_classifier_set_labels(*m, d->n_labels, d->labels)))
        return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}

/* The texts of d with labels the model knows (by name), encoded; *unknown: those left out. */
static int make_set(const char *cmd, attn_classifier *m, const attn_cls_data *d, cls_set *s, encoded *e, int *unknown) {
    int C = attn_classifier_get_config(m)->classes;
    const char **lab = malloc((size_t)C * sizeof(char *));
    if (!lab) return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    for (int c = 0; c < C; c++) lab[c] = attn_classifier_label(m, c) ? attn_classifier_label(m, c) : "?";
    int rc = cls_set_make(cmd, d, lab, C, s, unknown), st;
    free((void *)lab);
    if (!rc && (st = encode_all(m, s->text, s->n, e))) rc = cli_fail_lib(cmd, st, NULL);
    return rc;
}

static int train(const char *cmd, const cls_opts *o, void *cfg, const cls_data *d) {
    attn_classifier *m = NULL;
    attn_checkpoint ck = {0};
    attn_train_model tm = {0};
    cls_set tr = {0}, va = {0};
    encoded etr = {0}, eva = {0};
    int rc, st, unknown;
    /* A new model's classes are the training file's labels; a resumed one keeps its own. */
    if ((rc = cls_set_make(cmd, &d->train_data, d->labels, d->n_labels, &tr, &unknown))) goto done;
    if ((rc = get_model(cmd, o, cfg, d, &tr, &m, &ck))) goto done;
    cls_set_free(&tr);
    if ((rc = make_set(cmd, m, &d->train_data, &tr, &etr, &unknown))) goto done;
    if (unknown) {
        rc = cli_fail(cmd, "%s: %d training texts have labels the checkpoint does not know", o->out, unknown);
        goto done;
    }
    if ((rc = make_set(cmd, m, &d->valid_data, &va, &eva, &unknown))) goto done;
    if (unknown) fprintf(stderr, "attn %s: %d validation texts with labels not in training left out\n", cmd, unknown);
    const attn_classifier_config *c = attn_classifier_get_config(m);
    if (etr.cut + eva.cut)
        fprintf(stderr, "attn %s: %d texts longer than %d tokens cut to %d (--max-len)\n", cmd, etr.cut + eva.cut, c->max_len,
                c->max_len);
    if (!o->quiet)
        fprintf(stderr, "model: %s, %d classes, vocabulary %d (%s), %lld parameters; training on %d texts\n", o->model, c->classes,
                c->vocab, c->tok == ATTN_TOK_ZH ? "characters" : "words", (long long)attn_classifier_num_params(m), tr.n);
    attn_cls_examples xtr = {etr.n, etr.ids, etr.len, tr.y}, xva = {eva.n, eva.ids, eva.len, va.y};
    char command[96];
    snprintf(command, sizeof command, "attn train classifier --model %s", o->model);
    rc = CLI_EDATA;
    if ((st = attn_classifier_train_model(m, &xtr, &xva, command, &tm))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    attn_trainer_config tc = cls_trainer_config(o);
    tc.resume = o->resume ? &ck : NULL;
    attn_train_result r;
    double acc = 0;
    if ((st = attn_trainer_run(&tm, &tc, &r)) || (va.n && (st = attn_classifier_accuracy(m, &xva, &acc)))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    cls_say_result(o, &r, va.n, acc);
    rc = CLI_OK;
done:
    attn_classifier_train_model_free(&tm);
    encoded_free(&etr), encoded_free(&eva);
    cls_set_free(&tr), cls_set_free(&va);
    attn_checkpoint_free(&ck);
    attn_classifier_free(m);
    return rc;
}

/* ---- A loaded checkpoint -------------------------------------------------------------------- */

typedef struct {
    const char *cmd;
    attn_classifier *m;
    const char **labels; /* (C) */
    encoded e;           /* scratch: the texts of a call */
    attn_tokens t;       /* scratch: the tokens of one text */
    int32_t *ids;        /* scratch: a padded batch (B, T) */
    float *probs, *w;    /* scratch: (B, C) and one text's weights (max_len) */
    int64_t cut;         /* texts cut to max_len by predict so far */
} loaded;

static void loaded_free(void *self) {
    loaded *l = self;
    if (!l) return;
    if (l->cut)
        fprintf(stderr, "attn %s: %lld texts longer than the model's %d tokens were cut to them\n", l->cmd, (long long)l->cut,
                attn_classifier_get_config(l->m)->max_len);
    attn_classifier_free(l->m), encoded_free(&l->e), attn_tokens_free(&l->t);
    free((void *)l->labels), free(l->ids), free(l->probs), free(l->w);
    free(l);
}

enum { BATCH = 64 };

/* The most probable class of each text and its probability, in batches of BATCH texts. */
static int predict(void *self, const char *const *texts, int n, int32_t *pred, float *num) {
    loaded *l = self;
    const attn_classifier_config *c = attn_classifier_get_config(l->m);
    int st = encode_all(l->m, texts, n, &l->e);
    if (st) return st;
    l->cut += l->e.cut;
    for (int b0 = 0; b0 < n && !st; b0 += BATCH) {
        int B = n - b0 < BATCH ? n - b0 : BATCH, T = 1;
        for (int i = 0; i < B; i++) T = l->e.len[b0 + i] > T ? l->e.len[b0 + i] : T;
        memset(l->ids, 0, (size_t)B * T * sizeof(int32_t)); /* <pad> */
        for (int i = 0; i < B; i++) memcpy(l->ids + (size_t)i * T, l->e.ids[b0 + i], (size_t)l->e.len[b0 + i] * sizeof(int32_t));
        attn_cls_batch b = {B, T, l->ids, l->e.len + b0};
        st = attn_classifier_predict(l->m, &b, l->probs, NULL, NULL);
        for (int i = 0; !st && i < B; i++) {
            const float *p = l->probs + (size_t)i * c->classes;
            int best = 0;
            for (int k = 1; k < c->classes; k++) best = p[k] > p[best] ? k : best;
            pred[b0 + i] = best, num[b0 + i] = p[best];
        }
    }
    return st;
}

/* The tokens of one text as the model reads them and the weight of each in its pooling (a cut
 * is counted by predict, which sees every text first). */
static int weights(void *self, const char *text, int *n, const char *const **tok, const float **w) {
    loaded *l = self;
    int cut, st = encode_one(l->m, text, &l->t, l->ids, n, &cut);
    attn_cls_batch b = {1, *n, l->ids, n};
    if (!st) st = attn_classifier_predict(l->m, &b, NULL, NULL, l->w);
    *tok = l->t.tok, *w = l->w;
    return st;
}

/* What --attention-html's colours are for a model of configuration c. */
static const char *legend(const attn_classifier_config *c) {
    if (c->kind == ATTN_CLS_BOW) return "Each word's weight in the mean of the word vectors: 1/n for every word (a bag of embeddings weighs all alike).";
    if (c->kind == ATTN_CLS_TRANSFORMER && c->pool == ATTN_CLS_POOL_CLS)
        return "Each token's weight in the [CLS] token's row of the last self-attention layer (the mean of its heads, "
               "without the weight [CLS] gives itself: they sum to at most 1); the deeper the blue, the larger (scaled to the text's largest).";
    return "Each token's attention weight in the pooling (the softmax of the learned scores): the weights of a text sum "
           "to 1; the deeper the blue, the larger (scaled to the text's largest).";
}

static int load(const char *cmd, const char *dir, cls_model *out) {
    attn_classifier *m = NULL;
    int st = attn_classifier_load(dir, &m);
    if (st) return cli_fail_lib(cmd, st, dir);
    loaded *l = calloc(1, sizeof *l);
    if (!l) {
        attn_classifier_free(m);
        return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    }
    const attn_classifier_config *c = attn_classifier_get_config(m);
    l->cmd = cmd, l->m = m;
    l->labels = malloc((size_t)c->classes * sizeof(char *));
    l->ids = malloc((size_t)BATCH * c->max_len * sizeof(int32_t));
    l->probs = malloc((size_t)BATCH * c->classes * sizeof(float)), l->w = malloc((size_t)c->max_len * sizeof(float));
    if (!l->labels || !l->ids || !l->probs || !l->w) {
        loaded_free(l);
        return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    }
    for (int k = 0; k < c->classes; k++) l->labels[k] = attn_classifier_label(l->m, k); /* the loader checked them */
    *out = (cls_model){attn_cls_kind_name(c->kind), c->classes, l->labels, "probability", l, predict, NULL, loaded_free, weights,
                       NULL, legend(c)};
    return CLI_OK;
}

const cls_family cls_neural_family = {KINDS, HELP, cfg_new, option, train, load, "classifier"};
