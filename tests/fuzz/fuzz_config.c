/* libFuzzer target: the model configurations read from a checkpoint's JSON (seq2seq,
 * Transformer, classifier, recall). */
#include "fuzz.h"
#include "attn/classifier.h"
#include "attn/recall.h"
#include "attn/seq2seq.h"
#include "attn/transformer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *s = fuzz_text(data, n);
    attn_s2s_config a;
    attn_transformer_config b;
    attn_classifier_config c;
    attn_recall_config d;
    (void)attn_s2s_config_from_json(s, &a);
    (void)attn_transformer_config_from_json(s, &b);
    (void)attn_classifier_config_from_json(s, &c);
    (void)attn_recall_config_from_json(s, &d);
    free(s);
    return 0;
}
