/* What nn/mha.c shares with models/mha_file.c, the layer's safetensors files. Not API. */
#ifndef ATTN_NN_MHA_INTERNAL_H
#define ATTN_NN_MHA_INTERNAL_H

#include "attn/mha.h"

/* Checks cfg (filling its defaults) and that w was initialised for it: ATTN_OK or an error. */
int attn__mha_check_weights(const attn_mha_weights *w, attn_mha_config *cfg);

#endif
