/* libFuzzer target: the text readers: sentence pairs (TSV), vocabularies, classification data
 * (CSV/TSV with a header), one input read by each. */
#include "fuzz.h"
#include "attn/clsdata.h"
#include "attn/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    attn_pairs p = {0};
    if (attn_pairs_read(fuzz_file("in.tsv", data, n), &p) == ATTN_OK) attn_pairs_free(&p);
    attn_vocab *v = NULL;
    if (attn_vocab_load(fuzz_file("in.vocab", data, n), &v) == ATTN_OK) attn_vocab_free(v);
    attn_cls_data d = {0};
    if (attn_cls_read(fuzz_file("in.csv", data, n), NULL, &d) == ATTN_OK) attn_cls_free(&d);
    return 0;
}
