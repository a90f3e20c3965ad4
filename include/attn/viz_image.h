/* attn/viz_image.h: pictures of what the visual-attention models (attn/vision.h) looked at:
 * the image with RAM's glimpse path drawn on it (a numbered box per glimpse at each scale, as
 * Figure 3 of Mnih et al. 2014, and a line from one glimpse to the next), or with the soft
 * model's attention over its feature grid as a heat map; a grid of example images; and
 * grayscale PNG images read in (for attn classify-image --image). PNG needs libpng (else SVG
 * only, and reading fails with a message saying so).
 */
#ifndef ATTN_VIZ_IMAGE_H
#define ATTN_VIZ_IMAGE_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef struct {
    const float *image;   /* (side, side) in [0, 1] */
    int side;
    const float *locs;    /* (glimpses, 2) (row, col) in [-1, 1] ((-1, -1) the top-left corner),
                             or NULL */
    int glimpses, patch, scales; /* scale s: the patch * 2^s pixels attn_glimpse_box gives */
    const float *heat;    /* (heat_side, heat_side) weights >= 0 over the image, or NULL */
    int heat_side;
    const char *caption;  /* SVG only; or NULL */
} attn_glimpse_picture;

/* Writes the picture to path, PNG or SVG by its extension (.png, .svg), atomically. ATTN_EINVAL
 * for another extension or a bad argument; PNG without libpng is ATTN_EINVAL with a message. */
int attn_glimpse_picture_write(const attn_glimpse_picture *p, const char *path);

/* n images (n, side, side) in [0, 1] as one PNG grid of `cols` columns, atomically. */
int attn_images_grid_png(const float *images, int n, int side, int cols, const char *path);

/* A PNG image (any colour type and depth) as luminance in [0, 1]: *px (h, w) (attn_free).
 * ATTN_EIO for a file that cannot be opened, ATTN_EFORMAT for one that is not a valid PNG. */
int attn_png_read_gray(const char *path, float **px, int *h, int *w);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
