/* libFuzzer target: the kNN-MT memory store reader (attn_knn_load). */
#include "fuzz.h"
#include "attn/knnmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    attn_knn_store *s = NULL;
    if (attn_knn_load(fuzz_file("in.knn", data, n), &s) == ATTN_OK) attn_knn_free(s);
    return 0;
}
