/* attn/vision_train.h: the visual-attention models (attn/vision.h) as the trainer sees them
 * (attn/trainer.h), so that training one is images and options:
 *
 *   attn_train_model tm;
 *   attn_vision_train_model(m, &train, &valid, 0, "attn train vision ...", &tm);
 *   attn_trainer_run(&tm, &config, &result);
 *   attn_vision_train_model_free(&tm);
 */
#ifndef ATTN_VISION_TRAIN_H
#define ATTN_VISION_TRAIN_H

#include "attn/trainer.h"
#include "attn/vision.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* Fills *out to train m on `train` and validate on `valid` (NULL or empty: no validation;
 * n_valid > 0 uses only its first n_valid images), 28x28 sources rendered for the model's task:
 *   loss    attn_vision_loss of a batch; the training images of epoch e are rendered with
 *           seed attn_seed_mix(attn_vision_split_seed(data_seed, 0), e) (a new placement and
 *           new clutter each epoch), the validation ones with attn_vision_split_seed(data_seed,
 *           1) (the same every epoch); weight and tokens: the images;
 *   metric  the validation accuracy ("valid_accuracy", higher is better);
 *   save    attn_vision_model_json (with `command`, may be NULL) and the weights, with the
 *           optimiser and training state.
 * m and both image sets must outlive *out; free it with attn_vision_train_model_free. */
int attn_vision_train_model(attn_vision *m, const attn_images *train, const attn_images *valid, int n_valid,
                            const char *command, attn_train_model *out);
void attn_vision_train_model_free(attn_train_model *tm); /* frees and zeroes; accepts a zeroed struct */

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
