#define _DEFAULT_SOURCE
/* Pictures of attention weights: SVG structure and escaping, terminal text, PNG files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/io.h"
#include "attn/viz.h"
#include "testutil.h"

static const float W[3 * 3] = {0.9f, 0.05f, 0.05f, 0.1f, 0.8f, 0.1f, 0.0f, 0.2f, 0.8f};
static const char *SRC[3] = {"我", "爱", "你"};
static const char *TGT[3] = {"I", "love", "<you&me>"};

static unsigned be32(const unsigned char *p) { return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3]; }

int main(void) {
    attn_heatmap h = {W, 3, 3, TGT, SRC, "我爱你 -> I love you", "target", "source", 1};

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
        CHECK(strstr(svg, "#08306b") != NULL || strstr(svg, "fill=\"#") != NULL, "cells are coloured");
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

    char path[] = "viz_test_XXXXXX.png";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0, "temp file");
    close(fd);
    int st = attn_heatmap_png(&h, path);
    if (st == ATTN_OK) {
        FILE *f = fopen(path, "rb");
        unsigned char head[24] = {0};
        CHECK(f && fread(head, 1, 24, f) == 24, "PNG readable");
        if (f) fclose(f);
        CHECK(memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0, "PNG signature");
        CHECK(memcmp(head + 12, "IHDR", 4) == 0 && be32(head + 16) > 3 * 40 && be32(head + 20) > 3 * 40,
              "PNG header with room for 3 x 3 cells (%u x %u)", be32(head + 16), be32(head + 20));
    } else {
        printf("PNG not available in this build or on this machine: %s\n", attn_last_error());
    }
    remove(path);
    return tu_summary("test_viz");
}
