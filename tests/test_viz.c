#define _DEFAULT_SOURCE
/* Pictures of attention weights: SVG structure, escaping and cell colours, terminal text; PNG
 * files as `test_viz png` (its own ctest test: skipped where this build has no PNG support or
 * the machine has no font with Chinese glyphs, failed on any other PNG error); the texts page
 * of attn classify --attention-html (colours, escaping, errors). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/io.h"
#include "attn/viz.h"
#include "attn/viz_html.h"
#include "testutil.h"

static const float W[3 * 3] = {0.9f, 0.05f, 0.05f, 0.1f, 0.8f, 0.1f, 0.0f, 0.2f, 0.8f};
static const char *SRC[3] = {"我", "爱", "你"};
static const char *TGT[3] = {"I", "love", "<you&me>"};

static unsigned be32(const unsigned char *p) { return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3]; }

/* The colormap, independently: ColorBrewer's Blues from white through (198,219,239),
 * (107,174,214), (33,113,181) to (8,48,107), linear between the stops, as 0xRRGGBB. */
static unsigned blues(float w) {
    static const double stops[5][3] = {{255, 255, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
    double x = 4.0 * w, t;
    int i = x >= 4.0 ? 3 : (int)x;
    t = x - i;
    unsigned rgb = 0;
    for (int c = 0; c < 3; c++) rgb = rgb << 8 | (unsigned)lrint(stops[i][c] + t * (stops[i + 1][c] - stops[i][c]));
    return rgb;
}

/* Each cell of the SVG is <rect x y width height fill="#rrggbb" ...><title>weight</title>: the
 * cells in order (row by row, left to right) have the colour of their weight. */
static void check_cell_colours(const char *svg, const attn_heatmap *h) {
    int cells = 0, x0 = -1, y0 = -1, cell_w = 0;
    unsigned fill[9] = {0};
    for (const char *p = svg; (p = strstr(p, "<rect x=")); p++) {
        int x, y, wd, ht;
        unsigned rgb;
        float title;
        if (sscanf(p, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%6x\" stroke=\"#eee\"><title>%f</title>",
                   &x, &y, &wd, &ht, &rgb, &title) != 6)
            continue; /* the colour bar */
        if (cells == 0) x0 = x, y0 = y, cell_w = wd;
        int i = cells / h->cols, j = cells % h->cols;
        float w = h->w[i * h->cols + j];
        CHECK(cells < 9 && x == x0 + j * cell_w && y == y0 + i * cell_w && fabsf(title - w) < 1e-4f,
              "cell %d at (%d, %d) holds %g, want (%d, %d) and %g", cells, x, y, (double)title, x0 + j * cell_w,
              y0 + i * cell_w, (double)w);
        CHECK(rgb == blues(w), "cell (%d, %d), weight %g: colour #%06x, the colormap gives #%06x", i, j, (double)w, rgb, blues(w));
        if (cells < 9) fill[cells] = rgb;
        cells++;
    }
    CHECK(cells == 9, "9 cells with a colour and a title (found %d)", cells);
    /* The largest weight (0.9, cell 0) is dark blue, the smallest (0, cell 6) white. */
    CHECK(fill[6] == 0xffffff && fill[0] != fill[6] && (fill[0] & 0xff) > (fill[0] >> 16) + 60,
          "largest weight #%06x, smallest #%06x", fill[0], fill[6]);
}

/* `test_viz png`: a PNG file with the IHDR of a 3 x 3 heatmap, or TU_SKIP. */
static int test_png(const attn_heatmap *h) {
    char path[] = "viz_test_XXXXXX.png";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0, "temp file");
    close(fd);
    int st = attn_heatmap_png(h, path);
#ifndef ATTN_HAVE_PNG
    remove(path);
    CHECK(st == ATTN_EINVAL, "without PNG support attn_heatmap_png is refused: %d", st);
    printf("skipped: this build has no PNG support (%s)\n", attn_last_error());
    return tu_failures ? 1 : TU_SKIP;
#else
    if (st != ATTN_OK && !getenv("ATTN_FONT") && strstr(attn_last_error(), "no font with Chinese glyphs")) {
        remove(path);
        printf("skipped: %s\n", attn_last_error());
        return TU_SKIP;
    }
    CHECK(st == ATTN_OK, "attn_heatmap_png: %s", attn_last_error());
    FILE *f = fopen(path, "rb");
    unsigned char head[24] = {0};
    CHECK(f && fread(head, 1, 24, f) == 24, "PNG readable");
    if (f) fclose(f);
    CHECK(memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0, "PNG signature");
    CHECK(memcmp(head + 12, "IHDR", 4) == 0 && be32(head + 16) > 3 * 40 && be32(head + 20) > 3 * 40,
          "PNG header with room for 3 x 3 cells (%u x %u)", be32(head + 16), be32(head + 20));
    remove(path);
    return tu_summary("test_viz png");
#endif
}

/* The texts page (attn_texts_html): each token a span coloured by its weight scaled to the
 * text's largest |weight| (blues; reds below zero when signed), every string escaped, bad
 * arguments refused. */
static void test_texts_html(void) {
    static const char *const tok[4] = {"good", "<b>bad</b>", "\"q\"", "x"};
    static const float w[4] = {0.5f, -1.0f, 0.25f, 0.0f}, tw[1] = {-0.3f};
    static const char *const term[1] = {"bad & worse"};
    attn_html_text t = {"<script>alert(1)</script>", "<pos>", 0.75, 4, tok, w, 1, term, tw};
    attn_html_texts page = {"a \"title\"", "legend <i>", "probability", "top n-grams", 1};
    char *s = NULL, want[128];
    CHECK(attn_texts_html(&page, &t, 1, &s) == ATTN_OK, "%s", attn_last_error());
    if (!s) return;
    CHECK(!strstr(s, "<script>alert") && strstr(s, "&lt;script&gt;alert(1)&lt;/script&gt;"), "the text is escaped");
    CHECK(!strstr(s, "<b>bad") && strstr(s, ">&lt;b&gt;bad&lt;/b&gt;</span>"), "a token is escaped");
    CHECK(strstr(s, "<b>&lt;pos&gt;</b> probability 0.7500") != NULL, "the label, escaped, and the number");
    CHECK(strstr(s, ">&quot;q&quot;</span>") && strstr(s, "<title>a &quot;title&quot;</title>"), "quotes are escaped");
    CHECK(strstr(s, "legend &lt;i&gt;") && strstr(s, "bad &amp; worse</li>"), "the legend and the terms are escaped");
    snprintf(want, sizeof want, "background:#%06x\" title=\"+0.5000\" data-w=\"0.5000\">good<", blues(0.5f));
    CHECK(strstr(s, want) != NULL, "0.5 of the largest |w|: blue %06x", blues(0.5f));
    CHECK(strstr(s, "background:#67000d;color:#fff\" title=\"-1.0000\"") != NULL, "the most negative: the deepest red");
    CHECK(strstr(s, "background:#ffffff\" title=\"+0.0000\" data-w=\"0.0000\">x<") != NULL, "zero: white");
    CHECK(strstr(s, "title=\"-0.3000\" data-w=\"-0.3000\">-0.3000</span> bad") != NULL, "a term with its weight");
    int spans = 0;
    for (const char *p = s; (p = strstr(p, "<span class=\"tok\"")); p++) spans++;
    CHECK(spans == 4, "one span per token (found %d)", spans);
    attn_free(s);
    page.signed_weights = 0;
    CHECK(attn_texts_html(&page, &t, 1, &s) == ATTN_OK && strstr(s, "background:#08306b;color:#fff\" title=\"-1.0000\""),
          "unsigned: |w| shaded in blue");
    attn_free(s);
    attn_html_text no_w = {"t", "l", 0, 2, tok, NULL, 0, NULL, NULL};
    CHECK(attn_texts_html(&page, &no_w, 1, &s) == ATTN_EINVAL && s == NULL, "tokens without weights are refused");
    CHECK(attn_texts_html(&page, &t, 0, &s) == ATTN_EINVAL, "no text is refused");
    CHECK(attn_texts_html_save(&page, &t, 1, "/nonexistent-dir/x.html") == ATTN_EIO, "an unwritable path is an I/O error");
}

int main(int argc, char **argv) {
    attn_heatmap h = {W, 3, 3, TGT, SRC, "我爱你 -> I love you", "target", "source", 1};
    if (argc > 1 && !strcmp(argv[1], "png")) return test_png(&h);

    CHECK(attn_utf8_width("我爱你") == 6, "CJK characters are two columns wide");
    CHECK(attn_utf8_width("love") == 4, "ASCII is one column");
    CHECK(attn_utf8_width("\xff") == 1, "an invalid byte counts as one replacement character");

    char *svg = NULL;
    CHECK(attn_heatmap_svg_string(&h, &svg) == ATTN_OK, "%s", attn_last_error());
    if (svg) {
        CHECK(strstr(svg, "<svg") && strstr(svg, "</svg>"), "an SVG document");
        CHECK(strstr(svg, ">我</text>") != NULL, "the Chinese source label is carried as text");
        CHECK(strstr(svg, "&lt;you&amp;me&gt;") != NULL, "labels are XML-escaped");
        CHECK(strstr(svg, "<you&me>") == NULL, "no raw markup from a label");
        int rects = 0;
        for (const char *p = svg; (p = strstr(p, "<rect x=")); p++) rects++;
        CHECK(rects >= 9, "one rectangle per cell (found %d)", rects);
        check_cell_colours(svg, &h);
        attn_free(svg);
    }

    char *txt = NULL;
    CHECK(attn_heatmap_text(&h, 0, &txt) == ATTN_OK, "%s", attn_last_error());
    if (txt) {
        CHECK(strstr(txt, "我") && strstr(txt, "love"), "labels in the text rendering");
        CHECK(strstr(txt, "██") != NULL || strstr(txt, "▓▓") != NULL, "a strong weight is drawn dark");
        attn_free(txt);
    }
    CHECK(attn_heatmap_text(&h, 1, &txt) == ATTN_OK && strstr(txt, "\x1b[48;2;") != NULL, "ANSI colours on request");
    attn_free(txt);

    attn_heatmap bad = {W, 0, 3, NULL, NULL, NULL, NULL, NULL, 0};
    CHECK(attn_heatmap_svg_string(&bad, &svg) == ATTN_EINVAL, "zero rows are refused");
    CHECK(attn_heatmap_svg(&h, "/nonexistent-dir/x.svg") == ATTN_EIO, "an unwritable path is an I/O error");

    test_texts_html();
    return tu_summary("test_viz");
}
