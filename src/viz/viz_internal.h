/* Internal helpers of the pictures layer. */
#ifndef ATTN_VIZ_INTERNAL_H
#define ATTN_VIZ_INTERNAL_H

#include <stddef.h>

/* A growing NUL-terminated string; on allocation failure `failed` is set and later appends
 * do nothing. Free buf with attn_free. */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} attn__sb;
int attn__sb_printf(attn__sb *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Colour of a weight in [0, 1] (clamped): white to deep blue. */
void attn__heat_color(float w, unsigned char rgb[3]);

/* Decodes one UTF-8 code point (invalid bytes give U+FFFD); returns the bytes consumed. */
int attn__utf8_next(const char *s, unsigned *cp);

#endif
