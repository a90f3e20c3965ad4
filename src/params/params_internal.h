/* Internals of the parameter store shared with the layers above it (not API). */
#ifndef ATTN_PARAMS_INTERNAL_H
#define ATTN_PARAMS_INTERNAL_H

#include "attn/io.h"
#include "attn/params.h"

/* Floats spanned by the store's allocations (parameters plus alignment gaps, which stay 0). */
int64_t attn__params_span(const attn_params *ps);

/* attn_params_save(ps, path, 0, NULL) with the signature of a checkpoint file's writer
 * (io/ckdir.h). */
int attn__params_write(const void *ps, const char *path);

/* A model's checkpoint without training state: ps as model.safetensors, the model's own files,
 * and config.json with the "model" section model_json (an object). attn_translator_save,
 * attn_classifier_save and attn_tfclf_save; training checkpoints are attn_checkpoint_save's. */
int attn__model_save(const char *dir, const attn_params *ps, const char *model_json, int n_files, const attn_ckpt_file *files);

#endif
