/* Tests of the text classifiers (attn/classifier.h, attn/classifier_train.h):
 *  - every kind learns, with the trainer, a label that depends on WHICH tokens occur;
 *  - a label that depends on token ORDER: the BiGRU and the Transformer with positions learn
 *    it, the bag of embeddings and attention pooling cannot (they stay near chance);
 *  - the seed's claim, exactly: attention pooling without positions (and the bag) give bitwise
 *    the same logits and per-token weights for any shuffle of a sentence; the Transformer
 *    with each position encoding, and the BiGRU, do not;
 *  - save/load round trips (and a training checkpoint) give bitwise the same logits;
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
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_classifier_config c = small(cases[i].kind);
        c.score = cases[i].score ? cases[i].score : c.score, c.pos = cases[i].pos, c.pool = cases[i].pool;
        char what[96];
        snprintf(what, sizeof what, "%s score %s pos %s pool %s", attn_cls_kind_name(c.kind), attn_score_name(c.score),
                 attn_pos_name(c.pos), attn_cls_pool_name(c.pool));
        for (int task = 0; task < 2; task++) {
            attn_classifier *m = make(&c, 3);
            if (!m) continue;
            name_things(m);
            double acc = train(m, task ? &order : &which, 12, 1e-2, tu_scratch_dir());
            if (!task) CHECK(acc >= 0.95, "%s learns which tokens occur: accuracy %.3f", what, acc);
            else if (cases[i].uses_order) CHECK(acc >= 0.9, "%s learns token order: accuracy %.3f", what, acc);
            else CHECK(acc <= 0.65, "%s cannot learn token order (a bag): accuracy %.3f", what, acc);
            printf("  %-55s %s accuracy %.3f\n", what, task ? "order" : "which", acc);
            attn_classifier_free(m);
        }
    }
}

/* ---- Permutations -------------------------------------------------------------------------- */

/* Logits and weights of B random sentences, and of the same with each sentence's real tokens
 * shuffled; returns whether the logits are bitwise equal (and checks that the weights follow
 * their tokens exactly when they are). */
static int shuffle_invariant(attn_classifier *m, const char *what) {
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
        CHECK(shuffle_invariant(m, attn_cls_kind_name(bags[i].kind)), "%s (score %s): logits bitwise the same under a shuffle",
              attn_cls_kind_name(bags[i].kind), attn_score_name(bags[i].score));
        attn_classifier_free(m);
    }
    attn_classifier_config seq = small(ATTN_CLS_BIGRU_ATTN);
    attn_classifier *m = make(&seq, 8);
    if (m) CHECK(!shuffle_invariant(m, "bigru-attn"), "bigru-attn sees order");
    attn_classifier_free(m);
    for (int pos = ATTN_POS_SINUSOIDAL; pos <= ATTN_POS_ALIBI; pos++)
        for (int pool = 0; pool < 2; pool++) {
            attn_classifier_config c = small(ATTN_CLS_TRANSFORMER);
            c.pos = (attn_pos_kind)pos, c.pool = (attn_cls_pool)pool;
            if (!(m = make(&c, 8))) continue;
            CHECK(!shuffle_invariant(m, "transformer"), "the Transformer with %s positions (%s pooling) sees order",
                  attn_pos_name(c.pos), attn_cls_pool_name(c.pool));
            attn_classifier_free(m);
        }
}

/* ---- Weights, files, errors ---------------------------------------------------------------- */

static void test_weights_and_round_trip(void) {
    int32_t ids[2 * 5] = {4, 5, 6, 0, 0, 7, 8, 9, 10, 11}, len[2] = {3, 5};
    attn_cls_batch b = {2, 5, ids, len};
    for (int kind = 0; kind <= ATTN_CLS_TRANSFORMER; kind++)
        for (int pool = 0; pool < (kind == ATTN_CLS_TRANSFORMER ? 2 : 1); pool++) {
            attn_classifier_config c = small((attn_cls_kind)kind);
            c.pool = (attn_cls_pool)pool, c.pos = ATTN_POS_LEARNED;
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
    } bad[8];
    for (int i = 0; i < 8; i++) bad[i].c = small(ATTN_CLS_TRANSFORMER);
    bad[0].field = "classes", bad[0].c.classes = 1;
    bad[1].field = "vocab", bad[1].c.vocab = 3;
    bad[2].field = "heads", bad[2].c.heads = 3;
    bad[3].field = "rope", bad[3].c.pos = ATTN_POS_ROPE, bad[3].c.embed = 6, bad[3].c.heads = 2;
    bad[4].field = "dropout", bad[4].c.dropout = 1.0f;
    bad[5].field = "kind", bad[5].c.kind = (attn_cls_kind)7;
    bad[6].field = "attn-pool", bad[6].c.kind = ATTN_CLS_ATTN_POOL, bad[6].c.score = ATTN_SCORE_COSINE;
    bad[7].field = "pooling", bad[7].c.pool = (attn_cls_pool)5;
    for (int i = 0; i < 8; i++) {
        attn_classifier *m = NULL;
        CHECK(attn_classifier_new(&bad[i].c, 1, &m) == ATTN_EINVAL && !m && tu_err_has(bad[i].field), "bad %s: %s", bad[i].field,
              attn_last_error());
    }
    attn_classifier_config c;
    CHECK(attn_classifier_config_from_json("{\"kind\": \"transformer\", \"vocab\": 12}", &c) == ATTN_EFORMAT, "another kind");
    CHECK(attn_classifier_config_from_json("{\"kind\": \"classifier\", \"model\": \"cnn\", \"vocab\": 12, \"classes\": 2}", &c) ==
              ATTN_EFORMAT,
          "an unknown model");
    CHECK(attn_classifier_config_from_json("{\"kind\": \"classifier\", \"model\": \"bow\", \"vocab\": -3}", &c) == ATTN_EFORMAT,
          "a negative size");
    CHECK(attn_classifier_config_from_json("{\"kind\": \"classifier\", \"model\": \"bow\", \"vocab\": 12}", &c) == ATTN_EINVAL &&
              tu_err_has("classes"),
          "a checked result: %s", attn_last_error());

    for (int kind = 0; kind <= ATTN_CLS_TRANSFORMER; kind++) {
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
    test_permutations();
    test_weights_and_round_trip();
    test_checkpoint_and_corruption();
    test_learns();
    tu_scratch_remove();
    return tu_summary("test_classifier");
}
