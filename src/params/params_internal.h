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

/* The other way (a training checkpoint too): dir is opened and verified, `make` builds the
 * model from the "model" section's JSON text and gives its parameters (*ps), and
 * model.safetensors is loaded into them. A failure of make or of the weights is ATTN_EFORMAT
 * (or ATTN_ENOMEM) naming dir; the model make built is the caller's to free either way. */
/* While loading a saved model, the weights file's size bounds what its configuration may ask
 * for: attn_params_alloc on this thread refuses a store of more than `bytes` bytes of floats
 * (a corrupt or hostile config.json would otherwise allocate gigabytes before the weights are
 * read). attn__params_limit_file(path) sets it from a file's size; attn__params_limit(-1) lifts it. */
void attn__params_limit(int64_t bytes);
int attn__params_limit_file(const char *path);
int attn__model_load(const char *dir, int (*make)(const char *json, void *ud, attn_params **ps), void *ud);

/* model_json (a JSON object) with "command": command added as its last member (command NULL:
 * a copy), into *out (attn_free): the "model" section of a checkpoint that says what made it. */
int attn__model_json_command(const char *model_json, const char *command, char **out);

#endif
