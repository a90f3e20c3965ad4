/* attn: the attention mechanism in C. This umbrella header includes the whole public API. */
#ifndef ATTN_H
#define ATTN_H

#include "attn/core.h"
#include "attn/attention.h"
#include "attn/kvcache.h"
#include "attn/machine.h"
#include "attn/mha.h"
#include "attn/posenc.h"
#include "attn/viz.h"
#include "attn/io.h"
#include "attn/layers.h"
#include "attn/text.h"
#include "attn/clsdata.h"
#include "attn/params.h"
#include "attn/autograd.h"
#include "attn/train.h"
#include "attn/trainer.h"
#include "attn/seq2seq.h"
#include "attn/translator.h" /* and attn/transformer.h */
#include "attn/knnmt.h"
#include "attn/classifier.h"
#include "attn/classifier_train.h"
#include "attn/recall.h"
#include "attn/recall_train.h"
#include "attn/vision_data.h"
#include "attn/vision.h"
#include "attn/vision_train.h"
#include "attn/dist.h"

#endif
