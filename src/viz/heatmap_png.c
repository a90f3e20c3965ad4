/* Heatmaps as PNG: cells drawn into an RGB raster, labels drawn with FreeType from a font
 * that has Chinese glyphs, found by fontconfig (or ATTN_FONT), encoded by libpng.
 * Built only when libpng, FreeType and fontconfig are found (ATTN_HAVE_PNG). */
#include "attn/viz.h"

#include "core/internal.h"

#ifndef ATTN_HAVE_PNG
int attn_heatmap_png(const attn_heatmap *h, const char *path) {
    (void)h;
    (void)path;
    return attn__error(ATTN_EINVAL, "PNG output needs libpng, FreeType and fontconfig, which this build of attn lacks; use SVG");
}
#else

#include <fontconfig/fontconfig.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "viz/viz_internal.h"

typedef struct {
    unsigned char *px; /* (height, width, 3) */
    int w, h;
} raster;

static void fill_rect(raster *r, int x0, int y0, int w, int h, const unsigned char c[3]) {
    for (int y = y0 < 0 ? 0 : y0; y < y0 + h && y < r->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x0 + w && x < r->w; x++) memcpy(r->px + ((size_t)y * r->w + x) * 3, c, 3);
}

/* Finds a font file with the glyph for 我 (U+6211): ATTN_FONT, else fontconfig's best match. */
static int find_font(char *path, size_t cap) {
    const char *env = getenv("ATTN_FONT");
    if (env && *env) {
        snprintf(path, cap, "%s", env);
        return ATTN_OK;
    }
    if (!FcInit()) return attn__error(ATTN_EINVAL, "fontconfig could not be initialised");
    FcPattern *pat = FcNameParse((const FcChar8 *)"sans-serif:lang=zh-cn");
    FcConfigSubstitute(NULL, pat, FcMatchPattern);
    FcDefaultSubstitute(pat);
    FcResult res;
    FcPattern *m = FcFontMatch(NULL, pat, &res);
    FcPatternDestroy(pat);
    int st = ATTN_EINVAL;
    FcChar8 *file = NULL;
    FcCharSet *cs = NULL;
    if (m && FcPatternGetString(m, FC_FILE, 0, &file) == FcResultMatch &&
        FcPatternGetCharSet(m, FC_CHARSET, 0, &cs) == FcResultMatch && FcCharSetHasChar(cs, 0x6211)) {
        snprintf(path, cap, "%s", (const char *)file);
        st = ATTN_OK;
    }
    if (m) FcPatternDestroy(m);
    if (st)
        return attn__error(ATTN_EINVAL, "no font with Chinese glyphs found for the PNG labels: install fonts-wqy-microhei "
                                        "(or fonts-noto-cjk), or set ATTN_FONT=/path/to/font.ttf, or use SVG");
    return ATTN_OK;
}

/* Draws UTF-8 text with its baseline origin at (x, y), rotated by `deg` degrees counter-
 * clockwise; anchor: 0 start, 1 middle, 2 end (horizontal text only). Returns the advance. */
static int draw_text(raster *r, FT_Face face, const char *s, double x, double y, double deg, int anchor,
                     const unsigned char col[3]) {
    double a = deg * 3.14159265358979 / 180.0;
    if (anchor && deg == 0.0) {
        int adv = 0;
        FT_Set_Transform(face, NULL, NULL);
        for (const char *p = s; *p;) {
            unsigned cp;
            p += attn__utf8_next(p, &cp);
            if (!FT_Load_Char(face, cp, FT_LOAD_DEFAULT)) adv += (int)(face->glyph->advance.x >> 6);
        }
        x -= anchor == 1 ? adv / 2.0 : adv;
    }
    FT_Matrix m = {(FT_Fixed)(cos(a) * 0x10000), (FT_Fixed)(-sin(a) * 0x10000), (FT_Fixed)(sin(a) * 0x10000),
                   (FT_Fixed)(cos(a) * 0x10000)};
    FT_Vector pen = {0, 0};
    int total = 0;
    for (const char *p = s; *p;) {
        unsigned cp;
        p += attn__utf8_next(p, &cp);
        FT_Set_Transform(face, &m, &pen);
        if (FT_Load_Char(face, cp, FT_LOAD_RENDER)) continue;
        FT_GlyphSlot g = face->glyph;
        int ox = (int)lround(x) + g->bitmap_left, oy = (int)lround(y) - g->bitmap_top;
        for (unsigned by = 0; by < g->bitmap.rows; by++)
            for (unsigned bx = 0; bx < g->bitmap.width; bx++) {
                int px = ox + (int)bx, py = oy + (int)by;
                if (px < 0 || py < 0 || px >= r->w || py >= r->h) continue;
                unsigned alpha = g->bitmap.buffer[by * g->bitmap.pitch + bx];
                unsigned char *d = r->px + ((size_t)py * r->w + px) * 3;
                for (int c = 0; c < 3; c++) d[c] = (unsigned char)((d[c] * (255 - alpha) + col[c] * alpha) / 255);
            }
        pen.x += g->advance.x;
        pen.y += g->advance.y;
        total += (int)(g->advance.x >> 6);
    }
    FT_Set_Transform(face, NULL, NULL);
    return total;
}

static int text_width(FT_Face face, const char *s) {
    int adv = 0;
    for (const char *p = s; *p;) {
        unsigned cp;
        p += attn__utf8_next(p, &cp);
        if (!FT_Load_Char(face, cp, FT_LOAD_DEFAULT)) adv += (int)(face->glyph->advance.x >> 6);
    }
    return adv;
}

static int write_png(const raster *r, const char *path) { return attn__png_write_rgb(r->px, r->w, r->h, path); }

int attn__png_write_rgb(const unsigned char *px, int w, int h, const char *path) {
    char tmp[4096];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        attn__atomic_abort(f, tmp);
        return attn__error(ATTN_EIO, "cannot encode PNG %s", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)(px + (size_t)y * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return attn__atomic_commit(f, tmp, path);
}

static const char *label(const char *const *labels, int i, char *buf, size_t cap) {
    if (labels && labels[i]) return labels[i];
    snprintf(buf, cap, "%d", i);
    return buf;
}

int attn_heatmap_png(const attn_heatmap *h, const char *path) {
    if (!h || !h->w || h->rows <= 0 || h->cols <= 0 || h->rows > 4096 || h->cols > 4096)
        return attn__error(ATTN_EINVAL, "heatmap needs weights with 0 < rows, cols <= 4096");
    char font_path[4096];
    int st = find_font(font_path, sizeof font_path);
    if (st) return st;
    FT_Library ft;
    FT_Face face;
    if (FT_Init_FreeType(&ft)) return attn__error(ATTN_EINVAL, "FreeType could not be initialised");
    if (FT_New_Face(ft, font_path, 0, &face)) {
        FT_Done_FreeType(ft);
        return attn__error(ATTN_EIO, "cannot load font %s", font_path);
    }
    const int font = 16, cell = 40, pad = 14;
    FT_Set_Pixel_Sizes(face, 0, font);
    char nb[32];
    int row_w = 0, col_h = 0;
    for (int i = 0; i < h->rows; i++) {
        int w = text_width(face, label(h->row_labels, i, nb, sizeof nb));
        if (w > row_w) row_w = w;
    }
    for (int j = 0; j < h->cols; j++) {
        int w = text_width(face, label(h->col_labels, j, nb, sizeof nb));
        if (w > col_h) col_h = w;
    }
    int rotate = col_h > cell - 4;
    int title_h = h->title ? font + 16 : 0, axis_h = h->col_axis ? font + 10 : 0;
    int left = pad + (h->row_axis ? font + 12 : 0) + row_w + 10;
    int top = pad + title_h + axis_h + (rotate ? (int)(col_h * 0.87) + 16 : font + 12);
    int gw = h->cols * cell, gh = h->rows * cell;
    raster r = {NULL, left + gw + 80, top + gh + pad + 10};
    r.px = attn_malloc((size_t)r.w * r.h * 3);
    if (!r.px) {
        FT_Done_Face(face);
        FT_Done_FreeType(ft);
        return ATTN_ENOMEM;
    }
    memset(r.px, 255, (size_t)r.w * r.h * 3);
    const unsigned char black[3] = {20, 20, 20}, grey[3] = {90, 90, 90}, white[3] = {255, 255, 255},
                        line[3] = {235, 235, 235};
    if (h->title) draw_text(&r, face, h->title, pad, pad + font, 0, 0, black);
    if (h->col_axis) draw_text(&r, face, h->col_axis, left + gw / 2.0, pad + title_h + font, 0, 1, grey);
    if (h->row_axis) draw_text(&r, face, h->row_axis, pad + font, top + gh / 2.0 + text_width(face, h->row_axis) / 2.0, 90, 0, grey);
    for (int j = 0; j < h->cols; j++) {
        const char *l = label(h->col_labels, j, nb, sizeof nb);
        if (rotate) draw_text(&r, face, l, left + j * cell + cell / 2.0 - 4, top - 8, 60, 0, black);
        else draw_text(&r, face, l, left + j * cell + cell / 2.0, top - 8, 0, 1, black);
    }
    for (int i = 0; i < h->rows; i++) {
        draw_text(&r, face, label(h->row_labels, i, nb, sizeof nb), left - 8, top + i * cell + cell / 2.0 + font / 3.0, 0, 2, black);
        for (int j = 0; j < h->cols; j++) {
            float w = h->w[(size_t)i * h->cols + j];
            unsigned char c[3];
            attn__heat_color(w, c);
            fill_rect(&r, left + j * cell, top + i * cell, cell, cell, line);
            fill_rect(&r, left + j * cell + 1, top + i * cell + 1, cell - 1, cell - 1, c);
            if (h->show_values) {
                char v[16];
                snprintf(v, sizeof v, "%.2f", (double)w);
                FT_Set_Pixel_Sizes(face, 0, 11);
                draw_text(&r, face, v, left + j * cell + cell / 2.0, top + i * cell + cell / 2.0 + 4, 0, 1, w > 0.5f ? white : black);
                FT_Set_Pixel_Sizes(face, 0, font);
            }
        }
    }
    int bx = left + gw + 20, bh = gh < 120 ? gh : 120;
    for (int y = 0; y < bh; y++) {
        unsigned char c[3];
        attn__heat_color(1.0f - (float)y / (float)(bh - 1 > 0 ? bh - 1 : 1), c);
        fill_rect(&r, bx, top + y, 14, 1, c);
    }
    FT_Set_Pixel_Sizes(face, 0, 11);
    draw_text(&r, face, "1", bx + 18, top + 10, 0, 0, grey);
    draw_text(&r, face, "0", bx + 18, top + bh, 0, 0, grey);
    FT_Done_Face(face);
    FT_Done_FreeType(ft);
    st = write_png(&r, path);
    attn_free(r.px);
    return st;
}
#endif
