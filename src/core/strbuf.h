/* The library's one growing string (not API).
 *
 * attn__sb: a NUL-terminated string that grows as text is appended. An allocation failure is
 * sticky: `failed` is set, later appends do nothing, and every append (and attn__sb_take)
 * reports ATTN_ENOMEM, so a long sequence of appends needs one check at the end. Start it
 * zeroed ({0}); release it with attn__sb_free, or take its text with attn__sb_take. */
#ifndef ATTN_CORE_STRBUF_H
#define ATTN_CORE_STRBUF_H

#include <stddef.h>

typedef struct {
    char *buf;      /* the text, NUL-terminated once anything was appended; NULL before */
    size_t len, cap; /* bytes in buf (without the NUL), bytes allocated */
    int failed;     /* an allocation failed */
} attn__sb;

/* Each returns ATTN_OK or ATTN_ENOMEM (also when an earlier append failed). */
int attn__sb_put(attn__sb *sb, const void *s, size_t n); /* n bytes (may hold NULs) */
int attn__sb_str(attn__sb *sb, const char *s);           /* a NUL-terminated string */
int attn__sb_printf(attn__sb *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The text ("" if nothing was appended), freed with attn_free, its length in *len (optional);
 * the builder is left empty. NULL if an append failed (the text is freed, ATTN_ENOMEM is
 * recorded for attn_last_error). */
char *attn__sb_take(attn__sb *sb, size_t *len);
void attn__sb_free(attn__sb *sb); /* frees the text and zeroes *sb */

#endif
