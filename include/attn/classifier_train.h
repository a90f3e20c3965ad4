/* attn/classifier_train.h: the text classifiers (attn/classifier.h) as the trainer sees them
 * (attn/trainer.h), so that training a classifier is a data set and options:
 *
 *   attn_train_model tm;
 *   attn_classifier_train_model(m, &train, &valid, "attn train classifier ...", &tm);
 *   attn_trainer_run(&tm, &config, &result);
 *   attn_classifier_train_model_free(&tm);
 */
#ifndef ATTN_CLASSIFIER_TRAIN_H
#define ATTN_CLASSIFIER_TRAIN_H

#include "attn/classifier.h"
#include "attn/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* Fills *out to train m on `train` and validate on `valid` (NULL or empty: no validation):
 *   loss    the mean cross-entropy of a batch padded from the example indices (its weight the
 *           number of examples, its tokens theirs); train_lens are the sentence lengths;
 *   metric  the validation accuracy ("valid_accuracy", higher is better);
 *   save    the model's export (attn_classifier_export, so m needs its vocabulary and labels)
 *           with the optimiser and training state (attn_checkpoint_save); `command` (may be
 *           NULL) is recorded in config.json.
 * m and both data sets must outlive *out; free it with attn_classifier_train_model_free. */
int attn_classifier_train_model(attn_classifier *m, const attn_cls_examples *train, const attn_cls_examples *valid,
                                const char *command, attn_train_model *out);
void attn_classifier_train_model_free(attn_train_model *tm); /* frees and zeroes; accepts a zeroed struct */

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
