/* TF-IDF features and the linear classifiers on them (attn/tfidf.h, attn/tfidf_train.h):
 * the vocabulary (n-grams, min_df, max_features, its order), the rows against values
 * computed here in double, Chinese character n-grams, each classifier learning a small
 * synthetic task through the trainer, predictions that survive a save/load round trip, and
 * corrupt checkpoints. The sparse linear layer itself is checked in test_ops.c. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/tfidf.h"
#include "attn/tfidf_train.h"
#include "testutil.h"

static void test_features(void) {
    const char *train[] = {"the cat sat", "the dog sat", "a cat ran"};
    attn_tfidf_config c = attn_tfidf_defaults(ATTN_TOK_EN);
    attn_tfidf *f;
    CHECK(attn_tfidf_fit(&c, train, 3, &f) == ATTN_OK, "fit: %s", attn_last_error());
    /* unigrams: the cat sat dog a ran (6); bigrams: the cat, cat sat, the dog, dog sat, a cat, cat ran (6) */
    CHECK(attn_tfidf_size(f) == 12, "12 features, got %d", attn_tfidf_size(f));
    /* df 2 first (bytes ascending: cat, sat, the), then df 1 */
    CHECK(!strcmp(attn_tfidf_feature(f, 0), "cat") && !strcmp(attn_tfidf_feature(f, 1), "sat") &&
              !strcmp(attn_tfidf_feature(f, 2), "the") && !strcmp(attn_tfidf_feature(f, 3), "a"),
          "order: %s %s %s %s", attn_tfidf_feature(f, 0), attn_tfidf_feature(f, 1), attn_tfidf_feature(f, 2),
          attn_tfidf_feature(f, 3));
    CHECK(attn_tfidf_find(f, "cat sat") >= 0 && attn_tfidf_find(f, "sat the") < 0, "bigrams");
    CHECK(fabsf(attn_tfidf_idf(f, 0) - (float)(log(4.0 / 3.0) + 1)) < 1e-6f, "idf of cat");
    /* A row by hand: "the cat cat zebra" -> the (tf 1), cat (tf 2), the cat, cat cat (unknown), zebra (unknown). */
    const char *txt[] = {"the cat cat zebra", "zebra", ""};
    attn_csr X = {0};
    CHECK(attn_tfidf_transform(f, txt, 3, &X) == ATTN_OK, "transform: %s", attn_last_error());
    CHECK(X.rows == 3 && X.cols == 12 && X.rowptr[1] == 3 && X.rowptr[2] == 3 && X.rowptr[3] == 3,
          "rows: nnz %lld %lld %lld", (long long)X.rowptr[1], (long long)X.rowptr[2], (long long)X.rowptr[3]);
    double idf2 = log(4.0 / 3.0) + 1, idf1 = log(2.0) + 1;
    double want[3] = {(1 + log(2.0)) * idf2, idf2, idf1}; /* cat, the, "the cat" */
    int wcol[3] = {0, 2, attn_tfidf_find(f, "the cat")};
    double nrm = sqrt(want[0] * want[0] + want[1] * want[1] + want[2] * want[2]);
    for (int k = 0; k < 3 && X.rowptr[1] == 3; k++) {
        CHECK(X.col[k] == wcol[k], "column %d: %d, want %d", k, X.col[k], wcol[k]);
        CHECK(fabs(X.val[k] - want[k] / nrm) < 1e-6, "value %d: %g, want %g", k, X.val[k], want[k] / nrm);
    }
    attn_csr_free(&X);
    attn_tfidf_free(f);
    /* min_df and max_features */
    c.min_df = 2;
    CHECK(attn_tfidf_fit(&c, train, 3, &f) == ATTN_OK && attn_tfidf_size(f) == 3, "min_df 2: 3 features");
    attn_tfidf_free(f);
    c.min_df = 1, c.max_features = 4;
    CHECK(attn_tfidf_fit(&c, train, 3, &f) == ATTN_OK && attn_tfidf_size(f) == 4 && !strcmp(attn_tfidf_feature(f, 3), "a"),
          "max_features 4");
    attn_tfidf_free(f);
    c.ngram_max = ATTN_TFIDF_MAX_N + 1;
    CHECK(attn_tfidf_fit(&c, train, 3, &f) == ATTN_EINVAL, "bad n-gram range refused");
}

static void test_chinese(void) {
    const char *train[] = {"好吃不贵", "不好吃"};
    attn_tfidf_config c = attn_tfidf_defaults(ATTN_TOK_ZH);
    attn_tfidf *f;
    CHECK(attn_tfidf_fit(&c, train, 2, &f) == ATTN_OK, "fit zh: %s", attn_last_error());
    /* 1-grams 好 吃 不 贵; 2-grams 好吃 吃不 不贵 不好; 3-grams 好吃不 吃不贵 不好吃 */
    CHECK(attn_tfidf_size(f) == 11, "11 character n-grams, got %d", attn_tfidf_size(f));
    CHECK(attn_tfidf_find(f, "好 吃") >= 0 && attn_tfidf_find(f, "不 好 吃") >= 0, "character bi- and trigrams");
    attn_tfidf_free(f);
}

/* A synthetic task of C classes: each text has two of its class's 6 words and three of 20
 * shared noise words, so no single word decides and bigrams do not matter. */
enum { NC = 3, NTR = 300, NVA = 90 };

static void make_texts(int n, uint64_t seed, char **texts, int32_t *y) {
    attn_rng rng;
    attn_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        y[i] = i % NC;
        char buf[256];
        int len = 0;
        for (int w = 0; w < 5; w++) {
            int r = (int)(attn_rng_uniform(&rng) * 1000);
            if (w < 2) len += snprintf(buf + len, sizeof buf - len, "c%dw%d ", y[i], r % 6);
            else len += snprintf(buf + len, sizeof buf - len, "noise%d ", r % 20);
        }
        texts[i] = strdup(buf);
    }
}

static void test_classifiers(void) {
    char *tr[NTR], *va[NVA];
    int32_t ytr[NTR], yva[NVA], p1[NVA], p2[NVA];
    make_texts(NTR, 1, tr, ytr);
    make_texts(NVA, 2, va, yva);
    attn_tfidf_config fc = attn_tfidf_defaults(ATTN_TOK_EN);
    for (int kind = ATTN_TFCLF_LR; kind <= ATTN_TFCLF_NBSVM; kind++) {
        const char *name = attn_tfclf_kind_name(kind);
        attn_tfidf *f;
        attn_tfclf *m = NULL, *m2 = NULL;
        attn_csr Xtr = {0}, Xva = {0};
        CHECK(attn_tfidf_fit(&fc, (const char *const *)tr, NTR, &f) == ATTN_OK, "fit");
        CHECK(attn_tfidf_transform(f, (const char *const *)tr, NTR, &Xtr) == ATTN_OK, "transform train");
        CHECK(attn_tfidf_transform(f, (const char *const *)va, NVA, &Xva) == ATTN_OK, "transform valid");
        attn_tfclf_config cc = {(attn_tfclf_kind)kind, NC, 1.0f};
        CHECK(attn_tfclf_new(&cc, f, &m) == ATTN_OK, "%s: new: %s", name, attn_last_error());
        CHECK(attn_tfclf_fit_nb(m, &Xtr, ytr) == ATTN_OK, "%s: fit_nb", name);
        double acc0 = 0, acc = 0;
        CHECK(attn_tfclf_accuracy(m, &Xva, yva, &acc0) == ATTN_OK, "accuracy");
        attn_trainer_config c = attn_trainer_defaults();
        c.epochs = 15, c.batch = 16, c.optim.lr = 0.05, c.optim.weight_decay = 1e-5;
        c.patience = 50; /* the validation metric runs each epoch */
        c.out = tu_path(name);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", c.out);
        CHECK(system(cmd) == 0, "mkdir");
        attn_train_result r;
        CHECK(attn_tfclf_train(m, &Xtr, ytr, &Xva, yva, &c, &r) == ATTN_OK, "%s: train: %s", name, attn_last_error());
        CHECK(attn_tfclf_accuracy(m, &Xva, yva, &acc) == ATTN_OK && acc >= 0.95, "%s: valid accuracy %.3f (untrained %.3f)",
              name, acc, acc0);
        /* The training checkpoint and a plain save load to the same predictions and scores. */
        float s1[NVA * NC], s2[NVA * NC];
        CHECK(attn_tfclf_predict(m, &Xva, p1, s1) == ATTN_OK, "predict");
        CHECK(attn_tfclf_load(c.out, &m2) == ATTN_OK, "%s: load checkpoint: %s", name, attn_last_error());
        CHECK(m2 && attn_tfclf_predict(m2, &Xva, p2, s2) == ATTN_OK && !memcmp(p1, p2, sizeof p1) && !memcmp(s1, s2, sizeof s1),
              "%s: checkpoint round trip", name);
        attn_tfclf_free(m2), m2 = NULL;
        const char *dir = tu_path("saved");
        CHECK(attn_tfclf_save(m, dir) == ATTN_OK, "save: %s", attn_last_error());
        CHECK(attn_tfclf_load(dir, &m2) == ATTN_OK, "%s: load: %s", name, attn_last_error());
        CHECK(m2 && attn_tfclf_predict(m2, &Xva, p2, s2) == ATTN_OK && !memcmp(s1, s2, sizeof s1), "%s: save round trip", name);
        attn_tfclf_free(m2), m2 = NULL;
        /* A corrupt features file is refused (its checksum), as is a forged one with a bad line. */
        tu_write_file(tu_path("saved/tfidf.tsv"), "attn-tfidf 1 1 1 2 1 300\nxx\tcat\n", 31);
        CHECK(attn_tfclf_load(dir, &m2) == ATTN_EFORMAT && !m2, "%s: corrupt features file refused", name);
        attn_tfclf_free(m), attn_csr_free(&Xtr), attn_csr_free(&Xva);
    }
    for (int i = 0; i < NTR; i++) free(tr[i]);
    for (int i = 0; i < NVA; i++) free(va[i]);
}

int main(void) {
    if (!tu_scratch_new("test_tfidf")) return 1;
    test_features();
    test_chinese();
    test_classifiers();
    tu_scratch_remove();
    return tu_summary("test_tfidf");
}
