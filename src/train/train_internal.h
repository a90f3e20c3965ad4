/* Internals shared by the training files (not API). */
#ifndef ATTN_TRAIN_INTERNAL_H
#define ATTN_TRAIN_INTERNAL_H

#include "attn/train.h"
#include "params/params_internal.h"

#endif
