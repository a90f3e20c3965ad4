/* Pictures of where the visual-attention models looked (attn/viz_image.h): the image drawn
 * large, RAM's glimpse boxes (every scale, numbered with a small built-in digit font, so no
 * font file is needed) and path, or the soft model's heat map; as an RGB raster for PNG
 * (libpng, ATTN_HAVE_PNG) or as SVG; and grayscale PNG reading. Not here: the models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/io.h"
#include "attn/layers.h"
#include "attn/viz_image.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/atomic.h"
#include "viz/viz_internal.h"

#ifdef ATTN_HAVE_PNG
#include <png.h>
#endif

/* Distinct colours for successive glimpses. */
static const unsigned char PALETTE[8][3] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},
                                            {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230}};

/* 3x5 digits, one row of 3 bits per byte (bit 2 the left column). */
static const unsigned char DIGITS[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
                                            {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

static int check(const attn_glimpse_picture *p) {
    if (!p || !p->image || p->side < 1 || p->side > 4096 || (p->locs && (p->glimpses < 1 || p->patch < 1 || p->scales < 1 || p->scales > 8)) ||
        (p->heat && (p->heat_side < 1 || p->heat_side > p->side)))
        return attn__error(ATTN_EINVAL, "glimpse picture: bad argument");
    return ATTN_OK;
}

/* Pixels per image pixel: the picture is about 420 pixels wide. */
static int zoom_of(int side) { return side >= 420 ? 1 : 420 / side; }

/* The box of glimpse t at scale s in image pixels: top-left (y, x) and side. */
static void box(const attn_glimpse_picture *p, int t, int s, double *y, double *x, double *w) {
    int top, left, side; /* exactly the pixels the sensor reads */
    attn_glimpse_box(p->locs + 2 * t, p->side, p->side, p->patch, s, &top, &left, &side);
    *y = top, *x = left, *w = side;
}

/* The heat of image pixel (y, x) in [0, 1]: the weight of its cell, from the smallest
 * weight (0) to the largest (1), so that a nearly uniform map still shows its peaks. */
static float heat_at(const attn_glimpse_picture *p, int y, int x, const float range[2]) {
    int hy = y * p->heat_side / p->side, hx = x * p->heat_side / p->side;
    float d = range[1] - range[0];
    return d > 0 ? (p->heat[hy * p->heat_side + hx] - range[0]) / d : 0.0f;
}

static void heat_range(const attn_glimpse_picture *p, float range[2]) {
    range[0] = range[1] = p->heat ? p->heat[0] : 0.0f;
    for (int i = 0; p->heat && i < p->heat_side * p->heat_side; i++) {
        range[0] = p->heat[i] < range[0] ? p->heat[i] : range[0];
        range[1] = p->heat[i] > range[1] ? p->heat[i] : range[1];
    }
}

/* ---- Raster ------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *px; /* (h, w, 3) */
    int w, h;
} raster;

static void put(raster *r, int y, int x, const unsigned char c[3]) {
    if (y >= 0 && y < r->h && x >= 0 && x < r->w) memcpy(r->px + ((size_t)y * r->w + x) * 3, c, 3);
}

static void rect_outline(raster *r, int y0, int x0, int side, int thick, const unsigned char c[3]) {
    for (int k = 0; k < thick; k++)
        for (int i = 0; i <= side; i++) {
            put(r, y0 + k, x0 + i, c), put(r, y0 + side - k, x0 + i, c);
            put(r, y0 + i, x0 + k, c), put(r, y0 + i, x0 + side - k, c);
        }
}

static void line(raster *r, double y0, double x0, double y1, double x1, const unsigned char c[3]) {
    int n = (int)(fabs(y1 - y0) + fabs(x1 - x0)) + 1;
    for (int i = 0; i <= n; i++) {
        double t = (double)i / n;
        int y = (int)lround(y0 + t * (y1 - y0)), x = (int)lround(x0 + t * (x1 - x0));
        for (int d = 0; d < 2; d++) put(r, y + d, x, c), put(r, y, x + d, c);
    }
}

/* The number v (0-99) at (y, x), digits `scale` pixels per dot, on a black backing. */
static void number(raster *r, int y, int x, int v, int scale) {
    static const unsigned char black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    char s[4];
    snprintf(s, sizeof s, "%d", v % 100);
    int n = (int)strlen(s);
    for (int yy = -1; yy < 5 * scale + 1; yy++)
        for (int xx = -1; xx < n * 4 * scale; xx++) put(r, y + yy, x + xx, black);
    for (int i = 0; i < n; i++)
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (DIGITS[s[i] - '0'][row] & (4 >> col))
                    for (int a = 0; a < scale; a++)
                        for (int b = 0; b < scale; b++) put(r, y + row * scale + a, x + (i * 4 + col) * scale + b, white);
}

static int draw(const attn_glimpse_picture *p, raster *r) {
    int z = zoom_of(p->side);
    r->w = r->h = p->side * z;
    if (!(r->px = attn_malloc((size_t)r->w * r->h * 3))) return attn__error(ATTN_ENOMEM, "glimpse picture: out of memory");
    float top[2];
    heat_range(p, top);
    for (int y = 0; y < r->h; y++)
        for (int x = 0; x < r->w; x++) {
            float v = p->image[(y / z) * p->side + x / z];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            unsigned char c[3] = {(unsigned char)lrintf(255 * v), (unsigned char)lrintf(255 * v), (unsigned char)lrintf(255 * v)};
            if (p->heat) { /* blend towards red by the weight */
                float a = 0.75f * heat_at(p, y / z, x / z, top);
                c[0] = (unsigned char)lrintf((1 - a) * c[0] + a * 255), c[1] = (unsigned char)lrintf((1 - a) * c[1] + a * 40);
                c[2] = (unsigned char)lrintf((1 - a) * c[2]);
            }
            put(r, y, x, c);
        }
    for (int t = 0; p->locs && t < p->glimpses; t++) {
        const unsigned char *c = PALETTE[t % 8];
        double y, x, w;
        for (int s = 0; s < p->scales; s++) {
            box(p, t, s, &y, &x, &w);
            rect_outline(r, (int)lround(y * z), (int)lround(x * z), (int)lround(w * z), 2, c);
        }
        box(p, t, 0, &y, &x, &w);
        if (t > 0) {
            double y0, x0, w0;
            box(p, t - 1, 0, &y0, &x0, &w0);
            line(r, (y0 + w0 / 2) * z, (x0 + w0 / 2) * z, (y + w / 2) * z, (x + w / 2) * z, c);
        }
        number(r, (int)lround(y * z) + 3, (int)lround(x * z) + 3, t + 1, z >= 6 ? 3 : 2);
    }
    return ATTN_OK;
}

/* ---- SVG ------------------------------------------------------------------------------------ */

static int svg(const attn_glimpse_picture *p, const char *path) {
    int z = zoom_of(p->side), W = p->side * z, cap = p->caption ? 24 : 0;
    attn__sb sb = {0};
    attn__sb_printf(&sb, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\">\n", W, W + cap);
    attn__sb_printf(&sb, "<rect width=\"%d\" height=\"%d\" fill=\"#000\"/>\n", W, W);
    float top[2];
    heat_range(p, top);
    for (int y = 0; y < p->side; y++)
        for (int x = 0; x < p->side; x++) {
            int v = (int)lrintf(255 * fminf(fmaxf(p->image[y * p->side + x], 0.0f), 1.0f));
            if (v) attn__sb_printf(&sb, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n", x * z, y * z, z, z, v, v, v);
            float a = p->heat ? 0.75f * heat_at(p, y, x, top) : 0.0f;
            if (a > 0.01f)
                attn__sb_printf(&sb, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#ff2800\" fill-opacity=\"%.2f\"/>\n", x * z,
                                y * z, z, z, (double)a);
        }
    for (int t = 0; p->locs && t < p->glimpses; t++) {
        const unsigned char *c = PALETTE[t % 8];
        double y, x, w;
        for (int s = 0; s < p->scales; s++) {
            box(p, t, s, &y, &x, &w);
            attn__sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#%02x%02x%02x\" stroke-width=\"2\"/>\n",
                            x * z, y * z, w * z, w * z, c[0], c[1], c[2]);
        }
        box(p, t, 0, &y, &x, &w);
        if (t > 0) {
            double y0, x0, w0;
            box(p, t - 1, 0, &y0, &x0, &w0);
            attn__sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#%02x%02x%02x\" stroke-width=\"2\"/>\n",
                            (x0 + w0 / 2) * z, (y0 + w0 / 2) * z, (x + w / 2) * z, (y + w / 2) * z, c[0], c[1], c[2]);
        }
        attn__sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"16\" fill=\"#fff\" stroke=\"#000\" stroke-width=\"0.5\">%d</text>\n",
                        x * z + 3, y * z + 17, t + 1);
    }
    if (p->caption) {
        attn__sb_printf(&sb, "<text x=\"4\" y=\"%d\" font-size=\"14\">", W + 17);
        attn__sb_html(&sb, p->caption);
        attn__sb_str(&sb, "</text>\n");
    }
    attn__sb_str(&sb, "</svg>\n");
    size_t n = 0;
    char *text = attn__sb_take(&sb, &n);
    if (!text) return ATTN_ENOMEM;
    int st = attn_write_file_atomic(path, text, n);
    attn_free(text);
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

#ifndef ATTN_HAVE_PNG
static int no_png(const char *path) {
    return attn__error(ATTN_EINVAL, "%s: PNG needs libpng, which this build of attn lacks; use .svg", path);
}
#else
static int png_out(const attn_glimpse_picture *p, const char *path) {
    raster r = {0};
    int st = draw(p, &r);
    if (!st) st = attn__png_write_rgb(r.px, r.w, r.h, path);
    attn_free(r.px);
    return st;
}
#endif

int attn_glimpse_picture_write(const attn_glimpse_picture *p, const char *path) {
    int st = check(p);
    if (st) return st;
    if (!path) return attn__error(ATTN_EINVAL, "glimpse picture: NULL path");
    if (ends_with(path, ".svg")) return svg(p, path);
    if (!ends_with(path, ".png")) return attn__error(ATTN_EINVAL, "%s: the picture's name must end in .png or .svg", path);
#ifdef ATTN_HAVE_PNG
    return png_out(p, path);
#else
    (void)draw;
    return no_png(path);
#endif
}

int attn_images_grid_png(const float *images, int n, int side, int cols, const char *path) {
    if (!images || n < 1 || side < 1 || cols < 1 || !path) return attn__error(ATTN_EINVAL, "attn_images_grid_png: bad argument");
#ifndef ATTN_HAVE_PNG
    return no_png(path);
#else
    int z = side >= 100 ? 2 : side >= 60 ? 3 : 4, gap = 4, rows = (n + cols - 1) / cols;
    raster r = {NULL, cols * (side * z + gap) + gap, rows * (side * z + gap) + gap};
    if (!(r.px = attn_malloc((size_t)r.w * r.h * 3))) return attn__error(ATTN_ENOMEM, "attn_images_grid_png: out of memory");
    memset(r.px, 128, (size_t)r.w * r.h * 3);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < side * z; y++)
            for (int x = 0; x < side * z; x++) {
                float v = images[((size_t)i * side + y / z) * side + x / z];
                unsigned char g = (unsigned char)lrintf(255 * fminf(fmaxf(v, 0.0f), 1.0f)), c[3] = {g, g, g};
                put(&r, gap + (i / cols) * (side * z + gap) + y, gap + (i % cols) * (side * z + gap) + x, c);
            }
    int st = attn__png_write_rgb(r.px, r.w, r.h, path);
    attn_free(r.px);
    return st;
#endif
}

int attn_png_read_gray(const char *path, float **px, int *h, int *w) {
    if (px) *px = NULL;
    if (!path || !px || !h || !w) return attn__error(ATTN_EINVAL, "attn_png_read_gray: NULL argument");
#ifndef ATTN_HAVE_PNG
    return attn__error(ATTN_EIO, "%s: reading PNG needs libpng, which this build of attn lacks", path);
#else
    FILE *f = fopen(path, "rb");
    if (!f) return attn__error(ATTN_EIO, "%s: cannot open", path);
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return attn__error(ATTN_EFORMAT, "%s: not a PNG file", path);
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile rgb = NULL;
    float *volatile out = NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        attn_free(rgb), attn_free(out);
        return attn__error(ATTN_EFORMAT, "%s: a broken PNG file", path);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    /* Any colour type and depth to 8-bit RGB without alpha (on black). */
    png_set_expand(png), png_set_strip_16(png), png_set_gray_to_rgb(png), png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int W = (int)png_get_image_width(png, info), H = (int)png_get_image_height(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (W < 1 || H < 1 || W > 8192 || H > 8192 || rowbytes != (size_t)W * 3) png_error(png, "unsupported size");
    rgb = attn_malloc((size_t)H * rowbytes), out = attn_malloc((size_t)H * W * sizeof(float));
    if (!rgb || !out) png_error(png, "out of memory");
    for (int y = 0; y < H; y++) png_read_row(png, (png_bytep)(rgb + (size_t)y * rowbytes), NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    for (size_t i = 0; i < (size_t)H * W; i++)
        out[i] = (0.299f * rgb[3 * i] + 0.587f * rgb[3 * i + 1] + 0.114f * rgb[3 * i + 2]) / 255.0f;
    attn_free(rgb);
    *px = out, *h = H, *w = W;
    return ATTN_OK;
#endif
}
