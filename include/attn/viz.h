/* attn/viz.h: pictures of attention weights: heatmaps and alignment matrices, as SVG, PNG and
 * text for a terminal. "People would rather look at them than read numbers."
 *
 * A heatmap shows weights (rows, cols) in C order: row i is one query (a target word, or one
 * token attending), column j one key (a source word). Labels are UTF-8; Chinese characters are
 * fine: SVG carries them as text (any browser draws them with a CJK font), PNG draws them with
 * a CJK font found by fontconfig (see attn_heatmap_png), the terminal shows them as they are.
 */
#ifndef ATTN_VIZ_H
#define ATTN_VIZ_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef struct {
    const float *w;                 /* (rows, cols) weights, usually in [0, 1] */
    int rows, cols;
    const char *const *row_labels;  /* rows strings, or NULL (then 0, 1, ...) */
    const char *const *col_labels;  /* cols strings, or NULL */
    const char *title;              /* or NULL */
    const char *row_axis;           /* e.g. "target (query)", or NULL */
    const char *col_axis;           /* e.g. "source (key)", or NULL */
    int show_values;                /* write each weight in its cell */
} attn_heatmap;

/* SVG document as a NUL-terminated string (free with attn_free). */
int attn_heatmap_svg_string(const attn_heatmap *h, char **out);
/* SVG file, written atomically. */
int attn_heatmap_svg(const attn_heatmap *h, const char *path);
/* PNG file, written atomically. ATTN_EINVAL with a message if the library was built without
 * libpng/FreeType/fontconfig, or no font with Chinese glyphs is installed (Debian:
 * fonts-wqy-microhei or fonts-noto-cjk); ATTN_FONT=/path/to/font.ttf overrides the choice. */
int attn_heatmap_png(const attn_heatmap *h, const char *path);
/* A text rendering for a terminal: a grid of shaded cells (' ', '░', '▒', '▓', '█') with the
 * labels; with color != 0 the cells use ANSI 256-colour backgrounds instead. */
int attn_heatmap_text(const attn_heatmap *h, int color, char **out);

/* Display width of a UTF-8 string in terminal columns (East Asian wide characters count 2). */
int attn_utf8_width(const char *s);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
