/* attn/recall_train.h: the associative-recall models (attn/recall.h) as the trainer sees them
 * (attn/trainer.h), so that training one is a data set and options:
 *
 *   attn_train_model tm;
 *   attn_recall_train_model(m, &train, &valid, "attn train recall ...", &tm);
 *   attn_trainer_run(&tm, &config, &result);
 *   attn_recall_train_model_free(&tm);
 */
#ifndef ATTN_RECALL_TRAIN_H
#define ATTN_RECALL_TRAIN_H

#include "attn/recall.h"
#include "attn/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* Fills *out to train m on `train` and validate on `valid` (NULL or empty: no validation),
 * both of m's number of pairs:
 *   loss    the mean cross-entropy of the batch's answers (weight: the sequences; tokens:
 *           theirs);
 *   metric  the validation accuracy ("valid_accuracy", higher is better);
 *   save    attn_recall_model_json (with `command`, may be NULL) and the weights, with the
 *           optimiser and training state (attn_checkpoint_save).
 * m and both data sets must outlive *out; free it with attn_recall_train_model_free. */
int attn_recall_train_model(attn_recall *m, const attn_recall_data *train, const attn_recall_data *valid, const char *command,
                            attn_train_model *out);
void attn_recall_train_model_free(attn_train_model *tm); /* frees and zeroes; accepts a zeroed struct */

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
