/* attn/viz_html.h: self-contained HTML pages of attention. The explorer: every attention head
 * on one page. A reader picks the sentence, the kind of attention (e.g. encoder
 * self-attention, decoder self-attention, cross-attention), the layer and the head (or the
 * mean of the heads), and sees the weights between the tokens as a shaded grid; hovering a
 * cell shows its weight. The page needs no network and no files beside it: the weights are
 * embedded as JSON, the script and style inline.
 *
 * The page can be driven from its address, for links and for headless tests:
 *   PAGE.html#s=0&kind=cross-attention&layer=1&head=2   (head=mean for the mean of the heads)
 *   PAGE.html#selftest  switches heads and kinds through the controls' change events and writes
 *                       "selftest: ok ..." or "selftest: FAIL ..." into <pre id="selftest">.
 * The texts page (attn_texts_html): classified texts with each token coloured by its weight.
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

/* ---- Texts coloured by a weight per token (attn classify --attention-html) ------------------ */

/* One classified text: its tokens with a weight each, the model's verdict, and optionally a
 * list of weighted terms shown under it (e.g. the n-grams that weighed most). */
typedef struct {
    const char *text;        /* the text as given (shown above its tokens) */
    const char *label;       /* the predicted label */
    double number;           /* its number (the page's `number` says what it is) */
    int n;                   /* tokens, >= 0 */
    const char *const *tok;  /* (n) UTF-8 strings */
    const float *w;          /* (n) each token's weight */
    int n_terms;             /* >= 0 */
    const char *const *term; /* (n_terms) */
    const float *term_w;     /* (n_terms) */
} attn_html_text;

/* What the page's numbers mean, the same for every text. */
typedef struct {
    const char *title;  /* the heading */
    const char *legend; /* what the colours mean, in words (plain text) */
    const char *number; /* what a text's number is, e.g. "probability" */
    const char *terms;  /* the heading of the term lists, e.g. "n-grams that weighed most" */
    /* 0: weights >= 0, shaded white to blue by w / (the text's largest w); 1: signed weights,
     * blue for > 0 and red for < 0, by |w| / (the text's largest |w|). */
    int signed_weights;
} attn_html_texts;

/* The page as a NUL-terminated string in *out (freed with attn_free). Every token is a
 * <span class="tok"> whose background is its colour and whose title is its weight; every
 * text and label is escaped (no markup of the input can reach the page). The page's address
 * #selftest makes its script write "selftest: ok, N tokens in M texts" (or "selftest: FAIL
 * ...", also for any script error) into <pre id="selftest">. ATTN_EINVAL for no text, or a
 * text with tokens but no weights. */
int attn_texts_html(const attn_html_texts *page, const attn_html_text *texts, int n_texts, char **out);
/* The page written to path, atomically. */
int attn_texts_html_save(const attn_html_texts *page, const attn_html_text *texts, int n_texts, const char *path);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
