/* Internal helpers of the pictures layer. */
#ifndef ATTN_VIZ_INTERNAL_H
#define ATTN_VIZ_INTERNAL_H

#include <stddef.h>

#include "core/strbuf.h"

/* Colour of a weight in [0, 1] (clamped): white to deep blue. */
void attn__heat_color(float w, unsigned char rgb[3]);

/* Decodes one UTF-8 code point (invalid bytes give U+FFFD); returns the bytes consumed. */
int attn__utf8_next(const char *s, unsigned *cp);

/* Appends s escaped for HTML element content and quoted attribute values (< > & " as entities;
 * invalid UTF-8 sanitised to U+FFFD; NULL as ""). */
void attn__sb_html(attn__sb *b, const char *s);

/* An RGB raster px (h, w, 3) as a PNG file, written atomically (builds with libpng only). */
int attn__png_write_rgb(const unsigned char *px, int w, int h, const char *path);

#endif
