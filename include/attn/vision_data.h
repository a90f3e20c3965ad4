/* attn/vision_data.h: images for the visual-attention models (attn/vision.h): IDX files
 * (the format of MNIST and Fashion-MNIST, gzip-compressed or not), Fashion-MNIST's splits, and
 * the four task variants of "Recurrent Models of Visual Attention" (Mnih, Heess, Graves and
 * Kavukcuoglu 2014, section 4.1), made deterministically from a seed:
 *
 *   centred28     the 28x28 image as it is;
 *   translated60  the 28x28 image at a random place on a blank 60x60 canvas;
 *   cluttered60   translated60 plus 4 distractors: 8x8 patches cropped at random from random
 *                 other images of the same split, put at random places (pixel-wise maximum);
 *   cluttered100  the same on a 100x100 canvas with 8 distractors.
 *
 * A task image is rendered on demand from (seed, split, index): the same pixels on every
 * machine and in any order, and no 55,000 x 100 x 100 copy held in memory.
 *
 * Fashion-MNIST (Xiao, Rasul and Vollgraf 2017; Zalando, MIT licence) comes from Debian's
 * package dataset-fashion-mnist, in /usr/share/datasets/fashion-mnist/ (ATTN_FASHION_DIR
 * overrides the folder). Letters: N images, H x W pixels, S the canvas side.
 */
#ifndef ATTN_VISION_DATA_H
#define ATTN_VISION_DATA_H

#include <stdint.h>

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

#define ATTN_FASHION_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define ATTN_FASHION_VALID 5000 /* the last 5,000 training images are the validation split */

/* n images of h x w bytes (0 = background, 255 = ink) and their labels. */
typedef struct {
    int n, h, w;
    uint8_t *pixels; /* (n, h, w) */
    uint8_t *labels; /* (n), or NULL for images read without labels */
} attn_images;

void attn_images_free(attn_images *im); /* frees and zeroes; accepts a zeroed struct */

/* An IDX file of unsigned bytes (magic 0x00 0x00 0x08 ndim, then ndim big-endian uint32
 * sizes, then the bytes), gzip-compressed or plain, read whole into *data (attn_free) with its
 * sizes in dims (at most 4). The magic, the number of dimensions (`want_ndim`), every size
 * (positive, product below 2^31) and the length (no byte missing, none after) are checked:
 * ATTN_EFORMAT naming the file and what is wrong; ATTN_EIO for a file that cannot be opened
 * (or a build without zlib). */
int attn_idx_read(const char *path, int want_ndim, int dims[4], uint8_t **data);

/* Images (idx3) and labels (idx1, each < n_classes) read and matched (same count). */
int attn_images_read_idx(const char *images_path, const char *labels_path, int n_classes, attn_images *out);

/* Fashion-MNIST from dir (NULL: $ATTN_FASHION_DIR, else ATTN_FASHION_DEFAULT_DIR): train
 * (the first 55,000 training images), valid (the last 5,000), test (10,000); any may be NULL.
 * A missing folder or file is ATTN_EIO with a message that says how to install the package. */
int attn_fashion_load(const char *dir, attn_images *train, attn_images *valid, attn_images *test);
/* The ten class names ("T-shirt/top", "Trouser", ...). */
const char *attn_fashion_class_name(int c);

typedef enum {
    ATTN_TASK_CENTRED28 = 0,
    ATTN_TASK_TRANSLATED60 = 1,
    ATTN_TASK_CLUTTERED60 = 2,
    ATTN_TASK_CLUTTERED100 = 3
} attn_vision_task;
const char *attn_vision_task_name(attn_vision_task t); /* "centred28", ... */
int attn_vision_task_parse(const char *name);          /* -1 if unknown */
int attn_vision_task_size(attn_vision_task t);         /* S: 28, 60, 60, 100 */
int attn_vision_task_distractors(attn_vision_task t);  /* 0, 0, 4, 8 */

/* Where the object of image i was put: its top-left corner (row, col) on the canvas. */
typedef struct {
    int row, col;
} attn_vision_place;

/* Renders image i (0 <= i < src->n, 28x28 sources) of `task` into out (S, S) floats in
 * [0, 1], from attn_seed_mix(seed, i): the same pixels for the same (src, task, seed, i).
 * place (may be NULL) gets where the object went. ATTN_EINVAL for a bad argument. */
int attn_vision_render(const attn_images *src, attn_vision_task task, uint64_t seed, int i, float *out,
                       attn_vision_place *place);
/* The seed of split 0 (train), 1 (valid), 2 (test) of a run seeded with `seed`. */
uint64_t attn_vision_split_seed(uint64_t seed, int split);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
