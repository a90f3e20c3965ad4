/* Tests of the text classifiers (attn/classifier.h, attn/classifier_train.h):
 *  - every kind learns, with the trainer, a label that depends on WHICH tokens occur;
 *  - a label that depends on token ORDER: the BiGRU and the Transformer with positions learn
 *    it, the bag of embeddings and attention pooling cannot (they stay near chance);
 *  - the seed's claim, exactly: attention pooling without positions (and the bag) give bitwise
 *    the same logits and per-token weights for any shuffle of a sentence; the Transformer
 *    with each position encoding, the BiGRU and the CNN do not (their logits move by more
 *    than rounding); the Transformer without positions does, up to rounding (self-attention
 *    is permutation-equivariant, its pooling invariant; its sums are not reordered);
 *  - every kind's gradients against central finite differences;
 *  - the CNN against a forward written here in double (the wide convolution: sentences
 *    shorter than the widest filter included), whatever the padding of the batch;
 *  - save/load round trips (and a training checkpoint) give bitwise the same logits, and
 *    every configuration (the CNN's widths included) survives its JSON form;
 *  - bad configurations, unknown token ids, bad lengths and labels, corrupt directories are
 *    clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

enum { V = 12, FIRST = ATTN_NSPECIAL, MAXT = 8, NTRAIN = 480, NVALID = 200 };

/* ---- Synthetic data -------------------------------------------------------------------------- */

typedef struct {
    int32_t ids[NTRAIN + NVALID][MAXT];
    const int32_t *rows[NTRAIN + NVALID];
    int len[NTRAIN + NVALID];
    int32_t labels[NTRAIN + NVALID];
    attn_cls_examples train, valid;
} dataset;

static uint32_t next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

/* order 0: label 1 iff token FIRST occurs (filler from FIRST+1..). order 1: tokens FIRST and
 * FIRST+1 occur once each among fillers (FIRST+2..), label 1 iff FIRST comes first. */
static void make_data(dataset *d, int order, uint64_t seed) {
    for (int i = 0; i < NTRAIN + NVALID; i++) {
        int n = 3 + (int)(next(&seed) % (MAXT - 2));
        int lo = FIRST + 1 + order;
        for (int t = 0; t < n; t++) d->ids[i][t] = lo + (int32_t)(next(&seed) % (uint32_t)(V - lo));
        int a = (int)(next(&seed) % (uint32_t)n), b = (int)(next(&seed) % (uint32_t)(n - 1));
        b += b >= a;
        int label = (int)(next(&seed) & 1);
        if (!order) {
            if (label) d->ids[i][a] = FIRST;
        } else {
            d->ids[i][a < b ? a : b] = label ? FIRST : FIRST + 1;
            d->ids[i][a < b ? b : a] = label ? FIRST + 1 : FIRST;
        }
        d->rows[i] = d->ids[i], d->len[i] = n, d->labels[i] = label;
    }
    d->train = (attn_cls_examples){NTRAIN, d->rows, d->len, d->labels};
    d->valid = (attn_cls_examples){NVALID, d->rows + NTRAIN, d->len + NTRAIN, d->labels + NTRAIN};
}

static attn_classifier_config small(attn_cls_kind kind) {
    attn_classifier_config c = attn_classifier_config_default();
    c.kind = kind, c.vocab = V, c.classes = 2;
    c.embed = 16, c.hidden = 16, c.heads = 2, c.layers = 1, c.d_ff = 32, c.max_len = 16;
    c.dropout = 0.0f;
    return c;
}

static attn_classifier *make(const attn_classifier_config *c, uint64_t seed) {
    attn_classifier *m = NULL;
    CHECK(attn_classifier_new(c, seed, &m) == ATTN_OK, "new %s: %s", attn_cls_kind_name(c->kind), attn_last_error());
    return m;
}

/* The vocabulary <pad> <unk> <bos> <eos> w4 .. w11 and the labels "neg", "pos". */
static void name_things(attn_classifier *m) {
    attn_counter *cn = NULL;
    attn_vocab *v = NULL;
    attn_counter_new(&cn);
    for (int i = FIRST; i < V; i++) {
        char tok[8];
        snprintf(tok, sizeof tok, "w%d", i);
        attn_counter_add(cn, tok, strlen(tok), 100 - i, NULL);
    }
    CHECK(attn_vocab_build(cn, 0, 0, &v) == ATTN_OK && attn_classifier_set_vocab(m, v) == ATTN_OK, "vocab: %s", attn_last_error());
    attn_counter_free(cn);
    const char *labels[2] = {"neg", "pos"};
    CHECK(attn_classifier_set_labels(m, 2, labels) == ATTN_OK, "labels: %s", attn_last_error());
}

/* Trains m on d with the trainer; returns the validation accuracy after training. */
static double train(attn_classifier *m, const dataset *d, int epochs, double lr, const char *out) {
    attn_train_model tm;
    CHECK(attn_classifier_train_model(m, &d->train, &d->valid, "test_classifier", &tm) == ATTN_OK, "%s", attn_last_error());
    attn_trainer_config c = attn_trainer_defaults();
    c.epochs = epochs, c.batch = 32, c.optim.lr = lr, c.sched.lr = lr, c.out = out, c.seed = 5;
    c.patience = epochs + 1; /* validation after every epoch (never stops early) */
    attn_train_result r;
    int st = attn_trainer_run(&tm, &c, &r);
    CHECK(st == ATTN_OK, "train %s: %s", attn_cls_kind_name(attn_classifier_get_config(m)->kind), attn_last_error());
    attn_classifier_train_model_free(&tm);
    double acc = -1;
    CHECK(attn_classifier_accuracy(m, &d->valid, &acc) == ATTN_OK, "%s", attn_last_error());
    CHECK(st || r.best_metric >= acc, "the trainer's best validation accuracy %g is at least the final %g", r.best_metric, acc);
    return acc;
}

/* ---- Learning ------------------------------------------------------------------------------ */

static void test_learns(void) {
    static dataset which, order;
    make_data(&which, 0, 11), make_data(&order, 1, 12);
    struct {
        attn_cls_kind kind;
        attn_score score;
        attn_pos_kind pos;
        attn_cls_pool pool;
        int uses_order;
    } cases[] = {
        {ATTN_CLS_BOW, 0, 0, 0, 0},
        {ATTN_CLS_ATTN_POOL, ATTN_SCORE_ADDITIVE, 0, 0, 0},
        {ATTN_CLS_ATTN_POOL, ATTN_SCORE_SCALED, 0, 0, 0},
        {ATTN_CLS_BIGRU_ATTN, 0, 0, 0, 1},
        {ATTN_CLS_TRANSFORMER, 0, ATTN_POS_SINUSOIDAL, ATTN_CLS_POOL_CLS, 1},
        {ATTN_CLS_TRANSFORMER, 0, ATTN_POS_LEARNED, ATTN_CLS_POOL_ATTENTION, 1},
        {ATTN_CLS_CNN, 0, 0, 0, -1}, /* order: only within a window, and the two tokens may lie
                                        farther apart: no claim */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_classifier_config c = small(cases[i].kind);
        c.score = cases[i].score ? cases[i].score : c.score, c.pos = cases[i].pos, c.pool = cases[i].pool;
        char what[96];
        snprintf(what, sizeof what, "%s score %s pos %s pool %s", attn_cls_kind_name(c.kind), attn_score_name(c.score),
                 attn_pos_name(c.pos), attn_cls_pool_name(c.pool));
        for (int task = 0; task < 2 - (cases[i].uses_order < 0); task++) {
            attn_classifier *m = make(&c, 3);
            if (!m) continue;
            name_things(m);
            double acc = train(m, task ? &order : &which, 12, 1e-2, tu_scratch_dir());
            if (!task) CHECK(acc >= 0.95, "%s learns which tokens occur: accuracy %.3f", what, acc);
            else if (cases[i].uses_order > 0) CHECK(acc >= 0.9, "%s learns token order: accuracy %.3f", what, acc);
            else CHECK(acc <= 0.65, "%s cannot learn token order (a bag): accuracy %.3f", what, acc);
            printf("  %-55s %s accuracy %.3f\n", what, task ? "order" : "which", acc);
            attn_classifier_free(m);
        }
    }
}

/* ---- Permutations -------------------------------------------------------------------------- */

/* Logits and weights of B random sentences, and of the same with each sentence's real tokens
 * shuffled; returns whether the logits are bitwise equal (and checks that the weights follow
 * their tokens exactly when they are); *diff, if not NULL, gets the largest change of a logit. */
static int shuffle_invariant(attn_classifier *m, const char *what, double *diff) {
    enum { B = 6, T = 8 };
    int32_t ids[B * T] = {0}, sh[B * T] = {0}, len[B], where[B * T];
    uint64_t s = 99;
    for (int i = 0; i < B; i++) {
        len[i] = 2 + i + (i == B - 1);
        for (int t = 0; t < len[i]; t++) ids[i * T + t] = FIRST + (int32_t)(next(&s) % (V - FIRST)), where[i * T + t] = t;
        for (int t = len[i] - 1; t > 0; t--) { /* Fisher-Yates on the positions */
            int u = (int)(next(&s) % (uint32_t)(t + 1)), x = where[i * T + t];
            where[i * T + t] = where[i * T + u], where[i * T + u] = x;
        }
        for (int t = 0; t < len[i]; t++) sh[i * T + where[i * T + t]] = ids[i * T + t];
    }
    float l1[B * 2], l2[B * 2], w1[B * T], w2[B * T];
    attn_cls_batch b1 = {B, T, ids, len}, b2 = {B, T, sh, len};
    CHECK(attn_classifier_predict(m, &b1, NULL, l1, w1) == ATTN_OK && attn_classifier_predict(m, &b2, NULL, l2, w2) == ATTN_OK,
          "%s predict: %s", what, attn_last_error());
    int same = !memcmp(l1, l2, sizeof l1);
    for (int i = 0; diff && i < B * 2; i++) *diff = i ? fmax(*diff, fabs((double)l1[i] - l2[i])) : fabs((double)l1[i] - l2[i]);
    if (same) {
        int follow = 1;
        for (int i = 0; i < B; i++)
            for (int t = 0; t < len[i]; t++) follow &= !memcmp(&w1[i * T + t], &w2[i * T + where[i * T + t]], sizeof(float));
        CHECK(follow, "%s: each token keeps its weight, bitwise, wherever it moves", what);
    }
    return same;
}

static void test_permutations(void) {
    attn_classifier_config bags[3] = {small(ATTN_CLS_BOW), small(ATTN_CLS_ATTN_POOL), small(ATTN_CLS_ATTN_POOL)};
    bags[2].score = ATTN_SCORE_SCALED;
    for (int i = 0; i < 3; i++) {
        bags[i].embed = 24, bags[i].dropout = 0.1f; /* dropout is off in evaluation */
        attn_classifier *m = make(&bags[i], 8);
        if (!m) continue;
        CHECK(shuffle_invariant(m, attn_cls_kind_name(bags[i].kind), NULL), "%s (score %s): logits bitwise the same under a shuffle",
              attn_cls_kind_name(bags[i].kind), attn_score_name(bags[i].score));
        attn_classifier_free(m);
    }
    /* Order: the logits move by far more than rounding (1e-3; the invariant below stay within
     * 1e-5). */
    attn_cls_kind seqs[2] = {ATTN_CLS_BIGRU_ATTN, ATTN_CLS_CNN};
    double diff = 0;
    attn_classifier *m;
    for (int i = 0; i < 2; i++) {
        attn_classifier_config seq = small(seqs[i]);
        if (!(m = make(&seq, 8))) continue;
        CHECK(!shuffle_invariant(m, attn_cls_kind_name(seq.kind), &diff) && diff > 1e-3, "%s sees order: logits move by %g",
              attn_cls_kind_name(seq.kind), diff);
        attn_classifier_free(m);
    }
    for (int pos = ATTN_POS_NONE; pos <= ATTN_POS_ALIBI; pos++)
        for (int pool = 0; pool < 2; pool++) {
            attn_classifier_config c = small(ATTN_CLS_TRANSFORMER);
            c.pos = (attn_pos_kind)pos, c.pool = (attn_cls_pool)pool;
            if (!(m = make(&c, 8))) continue;
            shuffle_invariant(m, "transformer", &diff);
            if (pos == ATTN_POS_NONE)
                CHECK(diff < 1e-5, "the Transformer without positions (%s pooling) is blind to order: logits move by %g",
                      attn_cls_pool_name(c.pool), diff);
            else
                CHECK(diff > 1e-3, "the Transformer with %s positions (%s pooling) sees order: logits move by %g",
                      attn_pos_name(c.pos), attn_cls_pool_name(c.pool), diff);
            attn_classifier_free(m);
        }
}

/* ---- Gradients and the CNN's forward ------------------------------------------------------- */

static double loss_of(attn_classifier *m, attn_graph *g, const attn_cls_batch *b, const int32_t *labels) {
    attn_graph_reset(g);
    attn_var *l = attn_classifier_loss(m, g, b, labels, 0.1f);
    return l ? (double)l->data[0] : NAN;
}

/* Every kind's backward against central finite differences of its loss (dropout 0, so the
 * loss is a function of the parameters), on a batch with padding and a one-token sentence:
 * up to 6 elements of every parameter tensor, weights doubled so that the attention is far
 * from uniform. */
static void test_gradients(void) {
    int32_t ids[3 * 6] = {4, 5, 6, 7, 8, 9, 10, 11, 4, 0, 0, 0, 9, 0, 0, 0, 0, 0}, len[3] = {6, 3, 1}, labels[3] = {1, 0, 1};
    attn_cls_batch b = {3, 6, ids, len};
    for (int kind = 0; kind <= ATTN_CLS_CNN; kind++) {
        attn_classifier_config c = small((attn_cls_kind)kind);
        c.embed = 8, c.hidden = 6, c.d_ff = 12, c.maps = 5, c.n_widths = 2, c.widths[0] = 2, c.widths[1] = 4;
        const char *name = attn_cls_kind_name(c.kind);
        attn_classifier *m = make(&c, 17);
        attn_graph *g = NULL;
        if (!m || attn_graph_new(0, &g)) {
            attn_classifier_free(m);
            continue;
        }
        attn_params *ps = attn_classifier_params(m);
        for (int64_t k = 0; k < attn_params_numel(ps); k++) attn_params_data(ps)[k] *= 2.0f;
        attn_params_zero_grad(ps);
        attn_graph_seed(g, 7);
        attn_var *loss = attn_classifier_loss(m, g, &b, labels, 0.1f);
        CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "%s: backward: %s", name, attn_last_error());
        int bad = 0, checked = 0;
        const float eps = 1e-3f;
        for (int i = 0; loss && i < attn_params_count(ps); i++) {
            attn_param *p = attn_params_at(ps, i);
            for (int64_t k = i % 3, step = p->numel / 6 + 1; k < p->numel; k += step) {
                float save = p->data[k];
                p->data[k] = save + eps;
                double up = loss_of(m, g, &b, labels);
                p->data[k] = save - eps;
                double dn = loss_of(m, g, &b, labels);
                p->data[k] = save;
                double fd = (up - dn) / (2.0 * eps), an = p->grad[k];
                checked++;
                if (!(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd)) && bad++ < 3)
                    tu_msg("%s: d/d %s[%lld] = %.6g, finite differences %.6g", name, p->name, (long long)k, an, fd);
            }
        }
        CHECK(loss && bad == 0 && checked >= 10, "%s: %d of %d gradient elements off", name, bad, checked);
        attn_graph_free(g);
        attn_classifier_free(m);
    }
}

/* The CNN's logits of one sentence (n tokens), computed here in double from its parameters:
 * each width w pads the sentence with w - 1 zero vectors at both ends; its n + w - 1 windows
 * give y[t, o] = b[o] + sum_k sum_c W[o, c, k] e[t + k - w + 1, c]; h = relu(max_t y); fc. */
static void cnn_reference(attn_classifier *m, const int32_t *ids, int n, double *logits) {
    const attn_classifier_config *c = attn_classifier_get_config(m);
    attn_params *ps = attn_classifier_params(m);
    const float *emb = attn_params_find(ps, "embed.weight")->data;
    int E = c->embed, M = c->maps, D = M * c->n_widths;
    double *h = calloc((size_t)D, sizeof(double));
    for (int i = 0; i < c->n_widths; i++) {
        char wn[32], bn[32];
        snprintf(wn, sizeof wn, "convs.%d.weight", i), snprintf(bn, sizeof bn, "convs.%d.bias", i);
        const float *W = attn_params_find(ps, wn)->data, *bias = attn_params_find(ps, bn)->data; /* (M, E, w), (M) */
        int w = c->widths[i];
        for (int o = 0; o < M; o++) {
            double best = -INFINITY;
            for (int t = 0; t < n + w - 1; t++) {
                double y = bias[o];
                for (int k = 0; k < w; k++) {
                    int s = t + k - (w - 1);
                    for (int e = 0; s >= 0 && s < n && e < E; e++)
                        y += (double)W[((size_t)o * E + e) * w + k] * emb[(size_t)ids[s] * E + e];
                }
                best = fmax(best, y);
            }
            h[i * M + o] = fmax(best, 0.0);
        }
    }
    const float *fw = attn_params_find(ps, "fc.weight")->data, *fb = attn_params_find(ps, "fc.bias")->data;
    for (int k = 0; k < c->classes; k++) {
        logits[k] = fb[k];
        for (int d = 0; d < D; d++) logits[k] += (double)fw[(size_t)k * D + d] * h[d];
    }
    free(h);
}

/* Sentences of 1 to 7 tokens (shorter than the widest filter, 5, included) in batches of their
 * own length and padded to 9, beside a one-token sentence: the logits match the double
 * reference, and do not depend on the padding (bitwise); the weights of a sentence sum to 1,
 * and those of a one-token sentence are all its own. */
static void test_cnn_forward(void) {
    attn_classifier_config c = small(ATTN_CLS_CNN);
    c.maps = 6, c.n_widths = 3, c.widths[0] = 1, c.widths[1] = 3, c.widths[2] = 5;
    attn_classifier *m = make(&c, 23);
    if (!m) return;
    static const int32_t sent[7] = {4, 9, 5, 11, 7, 6, 10};
    float ref1[2] = {0};
    for (int n = 1; n <= 7; n++)
        for (int pad = 0; pad < 2; pad++) {
            int T = pad ? 9 : n;
            int32_t ids[2 * 9] = {0}, len[2] = {n, 1};
            memcpy(ids, sent, (size_t)n * sizeof(int32_t));
            ids[T] = 8;
            float l[4], w[2 * 9];
            attn_cls_batch b = {2, T, ids, len};
            CHECK(attn_classifier_predict(m, &b, NULL, l, w) == ATTN_OK, "cnn: %d tokens, T %d: %s", n, T, attn_last_error());
            double want[2];
            cnn_reference(m, sent, n, want);
            CHECK(fabs(l[0] - want[0]) < 1e-4 && fabs(l[1] - want[1]) < 1e-4, "cnn, %d tokens (T %d): logits %g %g, reference %g %g", n,
                  T, l[0], l[1], want[0], want[1]);
            double sum = 0;
            for (int t = 0; t < n; t++) sum += w[t];
            CHECK(fabs(sum - 1) < 1e-5 && w[T] == 1.0f, "cnn, %d tokens (T %d): weights sum to %g, one token's %g", n, T, sum, w[T]);
            for (int t = n; t < T; t++) CHECK(w[t] == 0, "cnn: weight %g at padded position %d", w[t], t);
            if (n == 1 && T == 1) memcpy(ref1, l, sizeof ref1);
            if (n == 1 && T == 9) CHECK(!memcmp(ref1, l, sizeof ref1), "cnn: one token gives the same bits whatever the padding");
        }
    attn_classifier_free(m);
}

/* ---- Weights, files, errors ---------------------------------------------------------------- */

/* Every kind's configuration through its JSON form and back, unchanged; the CNN's widths from
 * JSON: absent (the defaults), and bad ones. */
static void test_config_json(void) {
    for (int kind = 0; kind <= ATTN_CLS_CNN; kind++) {
        attn_classifier_config c = small((attn_cls_kind)kind), back;
        c.maps = 11, c.n_widths = 4, c.widths[0] = 1, c.widths[1] = 2, c.widths[2] = 7, c.widths[3] = 64, c.dropout = 0.35f;
        char *json = NULL;
        CHECK(attn_classifier_config_to_json(&c, &json) == ATTN_OK, "%s", attn_last_error());
        memset(&back, 0xff, sizeof back);
        CHECK(json && attn_classifier_config_from_json(json, &back) == ATTN_OK && !memcmp(&c, &back, sizeof c),
              "%s: the configuration survives its JSON form: %s", attn_cls_kind_name(c.kind), json ? json : "(none)");
        if (kind == ATTN_CLS_CNN) CHECK(json && strstr(json, "\"widths\": [1, 2, 7, 64]"), "cnn: the widths in JSON: %s", json);
        attn_free(json);
    }
    attn_classifier_config c, def = attn_classifier_config_default();
    const char *head = "{\"kind\": \"classifier\", \"model\": \"cnn\", \"vocab\": 12, \"classes\": 2";
    char json[256];
    snprintf(json, sizeof json, "%s}", head);
    CHECK(attn_classifier_config_from_json(json, &c) == ATTN_OK && c.maps == 100 && c.n_widths == 3 &&
              !memcmp(c.widths, def.widths, sizeof c.widths),
          "cnn: default maps and widths: %s", attn_last_error());
    struct {
        const char *widths;
        int status;
        const char *says;
    } bad[] = {{"[]", ATTN_EINVAL, "n_widths 0"},
               {"[3, 0]", ATTN_EINVAL, "width 0"},
               {"[1, 2, 3, 4, 5, 6, 7, 8, 9]", ATTN_EFORMAT, "widths"},
               {"\"3,4,5\"", ATTN_EFORMAT, "widths"},
               {"[3, -4]", ATTN_EFORMAT, "width"},
               {"[3, 4.5]", ATTN_EFORMAT, "width"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "%s, \"widths\": %s}", head, bad[i].widths);
        int st = attn_classifier_config_from_json(json, &c);
        CHECK(st == bad[i].status && tu_err_has(bad[i].says), "cnn: widths %s: %d %s", bad[i].widths, st, attn_last_error());
    }
}

static void test_weights_and_round_trip(void) {
    int32_t ids[2 * 5] = {4, 5, 6, 0, 0, 7, 8, 9, 10, 11}, len[2] = {3, 5};
    attn_cls_batch b = {2, 5, ids, len};
    for (int kind = 0; kind <= ATTN_CLS_CNN; kind++)
        for (int pool = 0; pool < (kind == ATTN_CLS_TRANSFORMER ? 2 : 1); pool++) {
            attn_classifier_config c = small((attn_cls_kind)kind);
            c.pool = (attn_cls_pool)pool, c.pos = ATTN_POS_LEARNED, c.maps = 7, c.n_widths = 2, c.widths[1] = 6, c.widths[2] = 0;
            const char *name = attn_cls_kind_name(c.kind);
            attn_classifier *m = make(&c, 4), *m2 = NULL;
            if (!m) continue;
            float p[4], l1[4], l2[4], w[10];
            CHECK(attn_classifier_predict(m, &b, p, l1, w) == ATTN_OK, "%s: %s", name, attn_last_error());
            CHECK(fabsf(p[0] + p[1] - 1) < 1e-6f && p[0] > 0 && p[1] > 0, "%s: probabilities", name);
            float sum = w[0] + w[1] + w[2];
            int sums_to_one = kind != ATTN_CLS_TRANSFORMER || pool == ATTN_CLS_POOL_ATTENTION;
            CHECK(w[3] == 0 && w[4] == 0 && (sums_to_one ? fabsf(sum - 1) < 1e-5f : sum > 0 && sum < 1), "%s: weights %g %g %g %g %g",
                  name, w[0], w[1], w[2], w[3], w[4]);
            CHECK(attn_classifier_save(m, tu_path("noname"), NULL) == ATTN_EINVAL, "%s: saving needs a vocabulary", name);
            name_things(m);
            CHECK(attn_classifier_save(m, tu_path("model"), "cmd") == ATTN_OK, "%s save: %s", name, attn_last_error());
            CHECK(attn_classifier_load(tu_path("model"), &m2) == ATTN_OK, "%s load: %s", name, attn_last_error());
            if (!m2) {
                attn_classifier_free(m);
                continue;
            }
            CHECK(attn_classifier_predict(m2, &b, NULL, l2, NULL) == ATTN_OK && !memcmp(l1, l2, sizeof l1),
                  "%s: the loaded model gives bitwise the same logits", name);
            CHECK(!strcmp(attn_classifier_label(m2, 1), "pos") && attn_vocab_size(attn_classifier_vocab(m2)) == V &&
                      !strcmp(attn_vocab_token(attn_classifier_vocab(m2), 5), "w5"),
                  "%s: labels and vocabulary come back", name);
            CHECK(!memcmp(attn_classifier_get_config(m2), &c, sizeof c), "%s: the configuration comes back", name);
            attn_classifier_free(m), attn_classifier_free(m2);
        }
}

static void test_checkpoint_and_corruption(void) {
    static dataset d;
    make_data(&d, 0, 21);
    attn_classifier_config c = small(ATTN_CLS_ATTN_POOL);
    attn_classifier *m = make(&c, 2), *m2 = NULL;
    if (!m) return;
    name_things(m);
    train(m, &d, 1, 1e-2, tu_scratch_dir());
    attn_checkpoint ck;
    CHECK(attn_checkpoint_open(tu_scratch_dir(), &ck) == ATTN_OK && ck.has_optim, "a resumable training checkpoint: %s",
          attn_last_error());
    attn_checkpoint_free(&ck);
    CHECK(attn_classifier_load(tu_scratch_dir(), &m2) == ATTN_OK, "the training checkpoint loads: %s", attn_last_error());
    double a1 = 0, a2 = -1;
    if (m2) attn_classifier_accuracy(m, &d.valid, &a1), attn_classifier_accuracy(m2, &d.valid, &a2);
    CHECK(a1 == a2, "same accuracy after loading: %g %g", a1, a2);
    attn_classifier_free(m2), m2 = NULL;
    /* corruptions: a truncated weights file, a missing labels file, too few labels */
    CHECK(attn_classifier_save(m, tu_path("bad"), NULL) == ATTN_OK, "%s", attn_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", tu_path("bad"));
    size_t n = 0;
    unsigned char *bytes = tu_read_file(path, &n);
    if (bytes) tu_write_file(path, bytes, n / 2);
    free(bytes);
    int st = attn_classifier_load(tu_path("bad"), &m2);
    CHECK((st == ATTN_EFORMAT || st == ATTN_EIO) && !m2 && tu_err_has("model.safetensors"), "truncated weights: %d %s", st,
          attn_last_error());
    CHECK(attn_classifier_save(m, tu_path("bad"), NULL) == ATTN_OK, "%s", attn_last_error());
    snprintf(path, sizeof path, "%s/labels.txt", tu_path("bad"));
    tu_write_file(path, "neg\n", 4);
    st = attn_classifier_load(tu_path("bad"), &m2);
    CHECK(st == ATTN_EFORMAT && !m2 && tu_err_has("labels.txt"), "a changed labels file: %d %s", st, attn_last_error());
    CHECK(attn_classifier_load(tu_path("nowhere"), &m2) == ATTN_EIO && !m2, "a missing directory: %s", attn_last_error());
    attn_classifier_free(m);
}

static void test_errors(void) {
    struct {
        const char *field, *why;
        attn_classifier_config c;
    } bad[11];
    for (int i = 0; i < 11; i++) bad[i].c = small(i < 8 ? ATTN_CLS_TRANSFORMER : ATTN_CLS_CNN);
    bad[0].field = "classes", bad[0].c.classes = 1;
    bad[1].field = "vocab", bad[1].c.vocab = 3;
    bad[2].field = "heads", bad[2].c.heads = 3;
    bad[3].field = "rope", bad[3].c.pos = ATTN_POS_ROPE, bad[3].c.embed = 6, bad[3].c.heads = 2;
    bad[4].field = "dropout", bad[4].c.dropout = 1.0f;
    bad[5].field = "kind", bad[5].c.kind = (attn_cls_kind)7;
    bad[6].field = "attn-pool", bad[6].c.kind = ATTN_CLS_ATTN_POOL, bad[6].c.score = ATTN_SCORE_COSINE;
    bad[7].field = "pooling", bad[7].c.pool = (attn_cls_pool)5;
    bad[8].field = "maps", bad[8].c.maps = 0;
    bad[9].field = "n_widths", bad[9].c.n_widths = ATTN_CLS_MAX_WIDTHS + 1;
    bad[10].field = "width 65", bad[10].c.widths[1] = 65;
    for (int i = 0; i < 11; i++) {
        attn_classifier *m = NULL;
        CHECK(attn_classifier_new(&bad[i].c, 1, &m) == ATTN_EINVAL && !m && tu_err_has(bad[i].field), "bad %s: %s", bad[i].field,
              attn_last_error());
    }
    attn_classifier_config c;
    CHECK(attn_classifier_config_from_json("{\"kind\": \"transformer\", \"vocab\": 12}", &c) == ATTN_EFORMAT, "another kind");
    CHECK(attn_classifier_config_from_json("{\"kind\": \"classifier\", \"model\": \"cnn9\", \"vocab\": 12, \"classes\": 2}", &c) ==
              ATTN_EFORMAT,
          "an unknown model");
    CHECK(attn_classifier_config_from_json("{\"kind\": \"classifier\", \"model\": \"bow\", \"vocab\": -3}", &c) == ATTN_EFORMAT,
          "a negative size");
    CHECK(attn_classifier_config_from_json("{\"kind\": \"classifier\", \"model\": \"bow\", \"vocab\": 12}", &c) == ATTN_EINVAL &&
              tu_err_has("classes"),
          "a checked result: %s", attn_last_error());

    for (int kind = 0; kind <= ATTN_CLS_CNN; kind++) {
        attn_classifier_config k = small((attn_cls_kind)kind);
        attn_classifier *m = make(&k, 1);
        if (!m) continue;
        const char *name = attn_cls_kind_name(k.kind);
        float l[4];
        int32_t ids[4] = {4, V, 5, -1}, len[2] = {2, 2}, zero[2] = {2, 0}, labels[2] = {0, 2};
        attn_cls_batch b = {2, 2, ids, len};
        CHECK(attn_classifier_predict(m, &b, NULL, l, NULL) == ATTN_EINVAL && tu_err_has("token id 12"), "%s: unknown id: %s",
              name, attn_last_error());
        ids[1] = 6, ids[3] = 7;
        b.len = zero;
        CHECK(attn_classifier_predict(m, &b, NULL, l, NULL) == ATTN_EINVAL && tu_err_has("length 0"), "%s: empty: %s", name,
              attn_last_error());
        b.len = len, b.T = 1, b.B = 1;
        int32_t *longer = calloc(40, sizeof(int32_t)), n40[1] = {40};
        attn_cls_batch lb = {1, 40, longer, n40};
        CHECK(attn_classifier_predict(m, &lb, NULL, l, NULL) == ATTN_EINVAL && tu_err_has("max_len"), "%s: too long: %s", name,
              attn_last_error());
        free(longer);
        attn_graph *g = NULL;
        attn_graph_new(0, &g);
        b = (attn_cls_batch){2, 2, ids, len};
        CHECK(!attn_classifier_loss(m, g, &b, labels, 0) && attn_graph_status(g) == ATTN_EINVAL && tu_err_has("label 2"),
              "%s: label out of range: %s", name, attn_last_error());
        attn_graph_free(g);
        attn_classifier_free(m);
    }
}

int main(void) {
    if (!tu_scratch_new("test_classifier")) return 1;
    test_errors();
    test_config_json();
    test_cnn_forward();
    test_gradients();
    test_permutations();
    test_weights_and_round_trip();
    test_checkpoint_and_corruption();
    test_learns();
    tu_scratch_remove();
    return tu_summary("test_classifier");
}
