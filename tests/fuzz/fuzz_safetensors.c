/* libFuzzer target: the safetensors reader (attn_st_open, then every tensor read as float32). */
#include "fuzz.h"
#include "attn/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    attn_st *st = NULL;
    if (attn_st_open(fuzz_file("in.safetensors", data, n), &st) != ATTN_OK) return 0;
    for (int i = 0; i < attn_st_count(st); i++) {
        attn_array a;
        if (attn_st_get_f32(st, attn_st_name(st, i), &a) == ATTN_OK) attn_array_free(&a);
    }
    attn_st_free(st);
    return 0;
}
