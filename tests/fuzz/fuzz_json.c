/* libFuzzer target: the strict JSON parser every config and checkpoint reader uses. */
#include "fuzz.h"
#include "io/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    attn__json *v = NULL;
    char err[128];
    if (attn__json_parse((const char *)data, n, &v, err, sizeof err) == 0) attn__json_free(v);
    return 0;
}
