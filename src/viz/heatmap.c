/* Heatmaps of attention weights as SVG and terminal text (PNG lives in heatmap_png.c).
 * Both share the colour map: white for 0, deep blue for 1 (the classic alignment-matrix look). */
#include "attn/viz.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn/io.h"
#include "core/internal.h"
#include "viz/viz_internal.h"

/* ---- shared helpers ---- */

void attn__heat_color(float w, unsigned char rgb[3]) {
    if (!(w >= 0.0f)) w = 0.0f; /* NaN too */
    if (w > 1.0f) w = 1.0f;
    /* From white (255,255,255) through light blue to deep blue (8,48,107), like ColorBrewer Blues. */
    static const float stops[5][3] = {{255, 255, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
    float x = w * 4.0f;
    int i = (int)x;
    if (i >= 4) i = 3;
    float t = x - (float)i;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)lrintf(stops[i][c] + t * (stops[i + 1][c] - stops[i][c]));
}

/* East Asian wide/fullwidth ranges (a compact subset of Unicode's EastAsianWidth W and F). */
static int cp_width(unsigned cp) {
    if (cp == 0) return 0;
    if (cp < 0x1100) return 1;
    if ((cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) || (cp >= 0xac00 && cp <= 0xd7a3) ||
        (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

/* Decodes one UTF-8 code point; invalid bytes count as one U+FFFD. Returns bytes consumed. */
int attn__utf8_next(const char *s, unsigned *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) return *cp = u[0], 1;
    int n = u[0] >= 0xf0 && u[0] < 0xf5 ? 4 : u[0] >= 0xe0 ? 3 : u[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || (u[0] >= 0xf5)) return *cp = 0xfffd, 1;
    unsigned v = u[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) return *cp = 0xfffd, 1;
        v = (v << 6) | (u[i] & 0x3f);
    }
    *cp = v;
    return n;
}

int attn_utf8_width(const char *s) {
    int w = 0;
    while (s && *s) {
        unsigned cp;
        s += attn__utf8_next(s, &cp);
        w += cp_width(cp);
    }
    return w;
}

static int check(const attn_heatmap *h) {
    if (!h || !h->w || h->rows <= 0 || h->cols <= 0)
        return attn__error(ATTN_EINVAL, "heatmap needs weights with rows > 0 and cols > 0");
    if (h->rows > 4096 || h->cols > 4096)
        return attn__error(ATTN_EINVAL, "heatmap of %d x %d is too large to draw (at most 4096 x 4096)", h->rows, h->cols);
    return ATTN_OK;
}

static const char *label(const char *const *labels, int i, char *buf, size_t cap) {
    if (labels && labels[i]) return labels[i];
    snprintf(buf, cap, "%d", i);
    return buf;
}

static void xml_escaped(attn__sb *sb, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': attn__sb_printf(sb, "&lt;"); break;
        case '>': attn__sb_printf(sb, "&gt;"); break;
        case '&': attn__sb_printf(sb, "&amp;"); break;
        case '"': attn__sb_printf(sb, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') attn__sb_printf(sb, "%c", *s);
        }
    }
}

/* ---- SVG ---- */

int attn_heatmap_svg_string(const attn_heatmap *h, char **out) {
    int st = check(h);
    if (st) return st;
    const int cell = 36, font = 14, pad = 12;
    char nb[32];
    int row_w = 0, col_h = 0;
    for (int i = 0; i < h->rows; i++) {
        int w = attn_utf8_width(label(h->row_labels, i, nb, sizeof nb));
        if (w > row_w) row_w = w;
    }
    for (int j = 0; j < h->cols; j++) {
        int w = attn_utf8_width(label(h->col_labels, j, nb, sizeof nb));
        if (w > col_h) col_h = w;
    }
    int rotate = col_h > 3;              /* long column labels are drawn at -60 degrees */
    int left = pad + row_w * font * 6 / 10 + 10 + (h->row_axis ? font + 10 : 0);
    int top = pad + (h->title ? font + 14 : 0) + (h->col_axis ? font + 10 : 0) +
              (rotate ? col_h * font * 6 / 10 + 10 : font + 10);
    int gw = h->cols * cell, gh = h->rows * cell;
    int width = left + gw + 70, height = top + gh + pad + 10;
    attn__sb sb = {0};
    attn__sb_printf(&sb,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                    "font-family=\"'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei','PingFang SC',sans-serif\" "
                    "font-size=\"%d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                    width, height, width, height, font);
    if (h->title) {
        attn__sb_printf(&sb, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" font-weight=\"bold\">", pad, pad + font, font + 2);
        xml_escaped(&sb, h->title);
        attn__sb_printf(&sb, "</text>\n");
    }
    if (h->col_axis) {
        attn__sb_printf(&sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">", left + gw / 2,
                        pad + (h->title ? font + 14 : 0) + font);
        xml_escaped(&sb, h->col_axis);
        attn__sb_printf(&sb, "</text>\n");
    }
    if (h->row_axis) {
        attn__sb_printf(&sb, "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\" fill=\"#555\">",
                        pad + font, top + gh / 2);
        xml_escaped(&sb, h->row_axis);
        attn__sb_printf(&sb, "</text>\n");
    }
    for (int j = 0; j < h->cols; j++) {
        int x = left + j * cell + cell / 2, y = top - 8;
        if (rotate)
            attn__sb_printf(&sb, "<text transform=\"translate(%d,%d) rotate(-60)\" text-anchor=\"start\">", x, y);
        else
            attn__sb_printf(&sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", x, y);
        xml_escaped(&sb, label(h->col_labels, j, nb, sizeof nb));
        attn__sb_printf(&sb, "</text>\n");
    }
    for (int i = 0; i < h->rows; i++) {
        attn__sb_printf(&sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, top + i * cell + cell / 2 + font / 3);
        xml_escaped(&sb, label(h->row_labels, i, nb, sizeof nb));
        attn__sb_printf(&sb, "</text>\n");
        for (int j = 0; j < h->cols; j++) {
            float w = h->w[(size_t)i * h->cols + j];
            unsigned char c[3];
            attn__heat_color(w, c);
            attn__sb_printf(&sb, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" stroke=\"#eee\">"
                                 "<title>%.4f</title></rect>\n",
                            left + j * cell, top + i * cell, cell, cell, c[0], c[1], c[2], (double)w);
            if (h->show_values)
                attn__sb_printf(&sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" fill=\"%s\">%.2f</text>\n",
                                left + j * cell + cell / 2, top + i * cell + cell / 2 + 4, w > 0.5f ? "white" : "#333",
                                (double)w);
        }
    }
    /* Colour bar: 0 at the bottom, 1 at the top. */
    int bx = left + gw + 20, bh = gh < 100 ? gh : 100;
    for (int k = 0; k < 20; k++) {
        unsigned char c[3];
        attn__heat_color(1.0f - (k + 0.5f) / 20.0f, c);
        attn__sb_printf(&sb, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n", bx,
                        top + k * bh / 20, bh / 20 + 1, c[0], c[1], c[2]);
    }
    attn__sb_printf(&sb, "<text x=\"%d\" y=\"%d\" font-size=\"10\">1</text><text x=\"%d\" y=\"%d\" font-size=\"10\">0</text>\n",
                    bx + 16, top + 10, bx + 16, top + bh);
    attn__sb_printf(&sb, "</svg>\n");
    if (sb.failed) {
        attn_free(sb.buf);
        return ATTN_ENOMEM;
    }
    *out = sb.buf;
    return ATTN_OK;
}

int attn_heatmap_svg(const attn_heatmap *h, const char *path) {
    char *svg;
    int st = attn_heatmap_svg_string(h, &svg);
    if (st) return st;
    st = attn_write_file_atomic(path, svg, strlen(svg));
    attn_free(svg);
    return st;
}

/* ---- terminal ---- */

static void pad_to(attn__sb *sb, const char *s, int width, int right_align) {
    int w = attn_utf8_width(s);
    if (right_align)
        for (int k = w; k < width; k++) attn__sb_printf(sb, " ");
    attn__sb_printf(sb, "%s", s);
    if (!right_align)
        for (int k = w; k < width; k++) attn__sb_printf(sb, " ");
}

int attn_heatmap_text(const attn_heatmap *h, int color, char **out) {
    int st = check(h);
    if (st) return st;
    static const char *const shades[5] = {"  ", "░░", "▒▒", "▓▓", "██"};
    char nb[32];
    int row_w = 0, col_w = 2;
    for (int i = 0; i < h->rows; i++) {
        int w = attn_utf8_width(label(h->row_labels, i, nb, sizeof nb));
        if (w > row_w) row_w = w;
    }
    for (int j = 0; j < h->cols; j++) {
        int w = attn_utf8_width(label(h->col_labels, j, nb, sizeof nb));
        if (w > col_w) col_w = w;
    }
    if (col_w > 8) col_w = 8;
    attn__sb sb = {0};
    if (h->title) attn__sb_printf(&sb, "%s\n", h->title);
    /* Column labels on one line when they fit, else numbered with a legend below. */
    pad_to(&sb, "", row_w, 1);
    for (int j = 0; j < h->cols; j++) {
        const char *l = label(h->col_labels, j, nb, sizeof nb);
        attn__sb_printf(&sb, " ");
        if (attn_utf8_width(l) <= col_w) pad_to(&sb, l, col_w, 0);
        else {
            char idx[16];
            snprintf(idx, sizeof idx, "#%d", j);
            pad_to(&sb, idx, col_w, 0);
        }
    }
    attn__sb_printf(&sb, "\n");
    for (int i = 0; i < h->rows; i++) {
        pad_to(&sb, label(h->row_labels, i, nb, sizeof nb), row_w, 1);
        for (int j = 0; j < h->cols; j++) {
            float w = h->w[(size_t)i * h->cols + j];
            attn__sb_printf(&sb, " ");
            if (color) {
                unsigned char c[3];
                attn__heat_color(w, c);
                attn__sb_printf(&sb, "\x1b[48;2;%d;%d;%dm", c[0], c[1], c[2]);
                for (int k = 0; k < col_w; k++) attn__sb_printf(&sb, " ");
                attn__sb_printf(&sb, "\x1b[0m");
            } else {
                int level = !(w > 0.0f) ? 0 : w >= 1.0f ? 4 : (int)(w * 4.0f + 0.5f);
                for (int k = 0; k + 1 < col_w; k += 2) attn__sb_printf(&sb, "%s", shades[level]);
                if (col_w % 2) attn__sb_printf(&sb, "%s", level ? "▕" : " ");
            }
        }
        attn__sb_printf(&sb, "\n");
    }
    for (int j = 0; j < h->cols; j++) {
        const char *l = label(h->col_labels, j, nb, sizeof nb);
        if (attn_utf8_width(l) > col_w) attn__sb_printf(&sb, "  #%d = %s\n", j, l);
    }
    if (!color) attn__sb_printf(&sb, "  scale: '  ' 0  '░░' .25  '▒▒' .5  '▓▓' .75  '██' 1\n");
    if (sb.failed) {
        attn_free(sb.buf);
        return ATTN_ENOMEM;
    }
    *out = sb.buf;
    return ATTN_OK;
}
