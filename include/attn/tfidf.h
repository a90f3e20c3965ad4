/* attn/tfidf.h: the bag-of-n-grams text classifiers (model 1 of the "TF-IDF or attention?"
 * question): TF-IDF features as sparse rows, and linear classifiers on them, trained by the
 * library's trainer (attn/tfidf_train.h) with its autograd.
 *
 *   attn_tfidf_config fc = attn_tfidf_defaults(ATTN_TOK_EN);
 *   attn_tfidf *f;  attn_tfidf_fit(&fc, train_texts, n_train, &f);      // training texts only
 *   attn_csr X = {0};  attn_tfidf_transform(f, texts, n, &X);
 *   attn_tfclf_config cc = {ATTN_TFCLF_NBSVM, 2, 1.0f};
 *   attn_tfclf *m;  attn_tfclf_new(&cc, f, seed, &m);                   // takes f
 *   attn_tfclf_fit_nb(m, &Xtrain, ytrain);                              // NB-SVM's ratios
 *   ... attn_tfclf_train (attn/tfidf_train.h) ...;  attn_tfclf_predict(m, &X, pred, NULL);
 *
 * Features: the texts are tokenised (attn_tokenize), n-grams of ngram_min .. ngram_max tokens
 * are formed (English: words; Chinese: characters, ATTN_TOK_ZH giving one token per
 * character), the vocabulary keeps the n-grams found in at least min_df training texts, at
 * most max_features of them: by document frequency (descending), ties by their UTF-8 bytes
 * (ascending), which is also the column order, so a fit is the same on every run. A text's
 * row: tf = the count of each known n-gram (1 + ln(tf) when sublinear_tf), times
 * idf = ln((1 + n) / (1 + df)) + 1 (scikit-learn's smooth_idf, n training texts), the row
 * then scaled to unit L2 norm (a text with no known n-gram gives an empty row). Rows are
 * compressed sparse rows (attn_csr), never a dense matrix of the vocabulary's size.
 *
 * Classifiers, with C classes: scores s (N, C) = X W^T + b (W (C, F), b (C)), prediction the
 * arg max. Losses: ATTN_TFCLF_LR the softmax cross-entropy (multinomial logistic regression);
 * ATTN_TFCLF_SVM the squared hinge, one-vs-rest: the mean over rows of
 * sum_c max(0, 1 - t_c s_c)^2 with t_c = +1 for the row's class and -1 for the others
 * (LIBLINEAR's L2-loss SVM, as scikit-learn's LinearSVC); ATTN_TFCLF_NBSVM (Wang & Manning
 * 2012, "Baselines and bigrams") the same SVM where class c sees the features scaled by its
 * log-count ratio r_c = ln((p / |p|_1) / (q / |q|_1)), p = alpha + the sum of the binarised
 * rows of class c, q = alpha + that of the other classes (one-vs-rest, also for two classes;
 * the paper's interpolation with the mean weight is left out). L2 regularisation is the
 * optimiser's weight decay (the bias is not decayed).
 */
#ifndef ATTN_TFIDF_H
#define ATTN_TFIDF_H

#include <stddef.h>
#include <stdint.h>

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/io.h"
#include "attn/params.h"
#include "attn/text.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* ---- Sparse rows ---------------------------------------------------------------------------- */

/* A matrix (rows, cols) in compressed sparse rows: row i's non-zeros are k = rowptr[i] ..
 * rowptr[i + 1] - 1, at columns col[k] (ascending in a row) with values val[k]. Start zeroed;
 * attn_csr_free frees the arrays. */
typedef struct {
    int64_t rows, cols;
    int64_t *rowptr; /* (rows + 1), rowptr[0] = 0, rowptr[rows] = the number of non-zeros */
    int32_t *col;    /* (nnz) */
    float *val;      /* (nnz) */
} attn_csr;
void attn_csr_free(attn_csr *m); /* frees and zeroes *m; accepts NULL */

/* ---- TF-IDF features ------------------------------------------------------------------------ */

#define ATTN_TFIDF_MAX_N 5

typedef struct {
    attn_tok_kind tok;        /* the tokeniser: ATTN_TOK_EN (words), ATTN_TOK_ZH (characters) */
    int ngram_min, ngram_max; /* 1 <= ngram_min <= ngram_max <= ATTN_TFIDF_MAX_N */
    int min_df;               /* keep n-grams of at least this many training texts (>= 1) */
    int max_features;         /* at most this many n-grams; 0: no limit */
    int sublinear_tf;         /* 1: tf = 1 + ln(count) */
} attn_tfidf_config;

/* English: word 1- and 2-grams; Chinese (ATTN_TOK_ZH): character 1- to 3-grams; min_df 1, no
 * feature limit, sublinear tf. */
attn_tfidf_config attn_tfidf_defaults(attn_tok_kind tok);

typedef struct attn_tfidf attn_tfidf;

/* Fits the vocabulary and idf on n training texts (NUL-terminated UTF-8). ATTN_EINVAL for a
 * bad configuration or no text; an empty vocabulary is allowed (every row is then empty). */
int attn_tfidf_fit(const attn_tfidf_config *c, const char *const *texts, int n, attn_tfidf **out);
void attn_tfidf_free(attn_tfidf *f); /* accepts NULL */
int attn_tfidf_size(const attn_tfidf *f); /* F, the number of features */
const attn_tfidf_config *attn_tfidf_config_of(const attn_tfidf *f); /* its tokeniser and n-grams */
/* Feature j's n-gram (its tokens joined by single spaces) and idf; NULL and 0 out of range. */
const char *attn_tfidf_feature(const attn_tfidf *f, int j);
float attn_tfidf_idf(const attn_tfidf *f, int j);
/* The column of an n-gram written as attn_tfidf_feature writes it, or -1. */
int attn_tfidf_find(const attn_tfidf *f, const char *ngram);
/* The rows (n, F) of n texts into *out (replacing its contents, which it frees). */
int attn_tfidf_transform(const attn_tfidf *f, const char *const *texts, int n, attn_csr *out);

/* ---- Linear classifiers ------------------------------------------------------------------- */

typedef enum { ATTN_TFCLF_LR = 0, ATTN_TFCLF_SVM = 1, ATTN_TFCLF_NBSVM = 2 } attn_tfclf_kind;
const char *attn_tfclf_kind_name(attn_tfclf_kind k); /* "tfidf-lr", "tfidf-svm", "nbsvm" */
int attn_tfclf_kind_parse(const char *name);         /* -1 if unknown */

typedef struct {
    attn_tfclf_kind kind;
    int n_classes; /* C >= 2; labels are 0 .. C - 1 */
    float nb_alpha; /* NB-SVM's smoothing (Wang & Manning: 1) */
} attn_tfclf_config;

typedef struct attn_tfclf attn_tfclf;

/* A classifier over the features f (taken, also on failure), with W and b zero and, for
 * NB-SVM, ratios of one until attn_tfclf_fit_nb. Parameters: "weight" (C, F), "bias" (C),
 * and for NB-SVM the frozen "nb_ratio" (C, F). */
int attn_tfclf_new(const attn_tfclf_config *c, attn_tfidf *f, attn_tfclf **out);
void attn_tfclf_free(attn_tfclf *m); /* accepts NULL */
const attn_tfidf *attn_tfclf_features(const attn_tfclf *m);
attn_params *attn_tfclf_params(attn_tfclf *m);
const attn_tfclf_config *attn_tfclf_config_of(const attn_tfclf *m);

/* The classes' names as written in the training data (C NUL-terminated strings, copied; each
 * non-empty, without control characters), kept in checkpoints. attn_tfclf_label: class c's
 * name, NULL if none was set (a checkpoint written without them) or c is out of range. */
int attn_tfclf_set_labels(attn_tfclf *m, const char *const *names);
const char *attn_tfclf_label(const attn_tfclf *m, int c);

/* NB-SVM: the log-count ratios from the training rows X (N, F) and labels y (N) in [0, C).
 * Does nothing for the other kinds. */
int attn_tfclf_fit_nb(attn_tfclf *m, const attn_csr *X, const int32_t *y);

/* The mean loss (see the top) of rows idx[0 .. n) of X (labels y) as a scalar node of g. NULL
 * on failure (g's sticky error or the error says why). */
attn_var *attn_tfclf_loss(attn_tfclf *m, attn_graph *g, const attn_csr *X, const int32_t *y, const int *idx, int n);

/* Scores (X->rows, C) and the predicted class of each row of X (either may be NULL). */
int attn_tfclf_predict(const attn_tfclf *m, const attn_csr *X, int32_t *pred, float *scores);

/* What each non-zero of row i of X (N, F) adds to class c's score: contrib (the row's nnz, in
 * the row's order) with s_c = b_c + sum(contrib) (NB-SVM: value * ratio * weight). For
 * explanations: the n-gram of non-zero k is attn_tfidf_feature(features, X->col[k]). */
int attn_tfclf_contrib(const attn_tfclf *m, const attn_csr *X, int64_t i, int c, float *contrib);

/* The checkpoint directory's model part: the "model" object of config.json ({"kind": ...,
 * "classes", "nb_alpha", "labels" if set}) and the features file tfidf.tsv (the features'
 * configuration, the n-grams and their document frequencies). For attn_checkpoint_save (attn/train.h). */
typedef struct {
    char *model_json;
    attn_ckpt_file file;
    char *data_; /* the file's bytes (owned) */
} attn_tfclf_export;
int attn_tfclf_export_make(const attn_tfclf *m, attn_tfclf_export *out);
void attn_tfclf_export_free(attn_tfclf_export *e); /* frees and zeroes; accepts NULL */

/* Writes the model alone as a checkpoint directory; loads one written by it or by a training
 * run (every file verified: a missing, truncated or corrupt file is ATTN_EIO or ATTN_EFORMAT
 * with a message naming it). */
int attn_tfclf_save(const attn_tfclf *m, const char *dir);
int attn_tfclf_load(const char *dir, attn_tfclf **out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
