/* libFuzzer target: the IDX image and label reader (attn_idx_read, attn_images_read_idx) of
 * the visual-attention data, plain or gzip-compressed. The input is read whole as an idx3 and
 * as an idx1 file, then split in two (at its first byte's share of the rest) and read as a
 * matched pair of images and labels. */
#include "fuzz.h"
#include "attn/vision_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    int dims[4];
    uint8_t *bytes = NULL;
    if (attn_idx_read(fuzz_file("in.idx", data, n), 3, dims, &bytes) == ATTN_OK) attn_free(bytes);
    bytes = NULL;
    if (attn_idx_read(fuzz_file("in.idx", data, n), 1, dims, &bytes) == ATTN_OK) attn_free(bytes);
    if (n < 2) return 0;
    size_t k = 1 + (size_t)data[0] * (n - 1) / 255;
    char images[512];
    snprintf(images, sizeof images, "%s", fuzz_file("images.idx", data + 1, k - 1));
    attn_images im = {0};
    if (attn_images_read_idx(images, fuzz_file("labels.idx", data + k, n - k), 10, &im) == ATTN_OK) attn_images_free(&im);
    return 0;
}
