/* Internal helpers of the pictures layer. */
#ifndef ATTN_VIZ_INTERNAL_H
#define ATTN_VIZ_INTERNAL_H

#include <stddef.h>

#include "core/strbuf.h"

/* Colour of a weight in [0, 1] (clamped): white to deep blue. */
void attn__heat_color(float w, unsigned char rgb[3]);

/* Decodes one UTF-8 code point (invalid bytes give U+FFFD); returns the bytes consumed. */
int attn__utf8_next(const char *s, unsigned *cp);

#endif
