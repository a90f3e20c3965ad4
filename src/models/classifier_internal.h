/* Internals of the text classifiers (not API): the model struct shared by classifier.c (the
 * parameters and the forward) and classifier_io.c (JSON, vocabulary, labels, files).
 * Letters as in attn/classifier.h. */
#ifndef ATTN_MODELS_CLASSIFIER_INTERNAL_H
#define ATTN_MODELS_CLASSIFIER_INTERNAL_H

#include "attn/classifier.h"
#include "models/transformer_internal.h"

struct attn_classifier {
    attn_classifier_config cfg;
    attn_params *ps;
    attn_param *embed;           /* (V, E) */
    attn_param *fc_w, *fc_b;     /* (C, D), (C) */
    attn_param *proj_w, *proj_b; /* additive pooling: (A, D), (A); else NULL */
    attn_param *query;           /* the pooling's context vector (A) or query (D); NULL without pooling */
    attn_param *gru[2][4];       /* bigru-attn, forward and reverse: W_ih, W_hh, b_ih, b_hh */
    attn_param *conv_w[ATTN_CLS_MAX_WIDTHS]; /* cnn: (maps, E, w_i) per width */
    attn_param *conv_b[ATTN_CLS_MAX_WIDTHS]; /* cnn: (maps) per width */
    attn_transformer enc;        /* the transformer kind: the Transformer's encoder half over ps
                                    (its decoder fields unused) */
    attn_vocab *vocab;           /* NULL until set */
    char **labels;               /* (C) or NULL */
};

void cls_labels_free(attn_classifier *m);

#endif
