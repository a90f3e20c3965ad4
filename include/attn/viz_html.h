/* attn/viz_html.h: every attention head on one self-contained HTML page. A reader picks the
 * sentence, the kind of attention (e.g. encoder self-attention, decoder self-attention,
 * cross-attention), the layer and the head (or the mean of the heads), and sees the weights
 * between the tokens as a shaded grid; hovering a cell shows its weight. The page needs no
 * network and no files beside it: the weights are embedded as JSON, the script and style
 * inline.
 *
 * The page can be driven from its address, for links and for headless tests:
 *   PAGE.html#s=0&kind=cross-attention&layer=1&head=2   (head=mean for the mean of the heads)
 *   PAGE.html#selftest  switches heads and kinds through the controls' change events and writes
 *                       "selftest: ok ..." or "selftest: FAIL ..." into <pre id="selftest">.
 */
#ifndef ATTN_VIZ_HTML_H
#define ATTN_VIZ_HTML_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* One map: the weights (rows, cols) of one head, row i a query (a token attending), column j a
 * key. Label arrays may be shared between maps (they are written once per sentence). */
typedef struct {
    const char *kind;               /* the group it belongs to, e.g. "cross-attention" */
    int layer, head;                /* 0-based */
    int rows, cols;
    const float *w;                 /* (rows, cols) */
    const char *const *row_labels;  /* rows UTF-8 strings (invalid bytes become U+FFFD) */
    const char *const *col_labels;  /* cols strings */
} attn_html_map;

/* One sentence: a title ("我爱你。 -> I love you.") and its maps. */
typedef struct {
    const char *title;
    int n_maps;
    const attn_html_map *maps;
} attn_html_item;

/* The page as a NUL-terminated string in *out (freed with attn_free). title may be NULL.
 * ATTN_EINVAL for an empty item list, a map without weights or labels, or sizes < 1. */
int attn_attention_html(const char *title, const attn_html_item *items, int n_items, char **out);
/* The page written to path, atomically. */
int attn_attention_html_save(const char *title, const attn_html_item *items, int n_items, const char *path);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
