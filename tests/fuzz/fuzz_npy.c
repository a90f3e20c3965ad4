/* libFuzzer target: the .npy reader (attn_npy_load). */
#include "fuzz.h"
#include "attn/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    attn_array a;
    if (attn_npy_load(fuzz_file("in.npy", data, n), &a) == ATTN_OK) attn_array_free(&a);
    return 0;
}
