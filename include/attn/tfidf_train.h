/* attn/tfidf_train.h: training the TF-IDF classifiers of attn/tfidf.h with the library's
 * trainer (attn/trainer.h): the classifier as an attn_train_model (the loss of a batch of
 * rows, validation accuracy as the metric, checkpoints with the features file), handed to
 * attn_trainer_run. */
#ifndef ATTN_TFIDF_TRAIN_H
#define ATTN_TFIDF_TRAIN_H

#include "attn/tfidf.h"
#include "attn/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* Trains m on the rows Xtr (N, F) with labels ytr (N) as c configures (L2 regularisation:
 * c->optim.weight_decay), validating on Xva / yva (NULL: no validation; then no metric).
 * NB-SVM's ratios must have been fitted (attn_tfclf_fit_nb). The metric is the accuracy on
 * the validation rows ("valid_acc", higher is better); checkpoints in c->out load with
 * attn_tfclf_load. Errors: those of attn_trainer_run, ATTN_EINVAL for rows that do not fit
 * the model or labels out of range. */
int attn_tfclf_train(attn_tfclf *m, const attn_csr *Xtr, const int32_t *ytr, const attn_csr *Xva, const int32_t *yva,
                     const attn_trainer_config *c, attn_train_result *res);

/* The fraction of rows of X whose predicted class is y's. */
int attn_tfclf_accuracy(const attn_tfclf *m, const attn_csr *X, const int32_t *y, double *acc);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
