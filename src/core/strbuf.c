/* The growing string (attn__sb): appends double the capacity, so n appends cost O(total). */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

/* Makes room for `extra` more bytes and the NUL. */
static int reserve(attn__sb *sb, size_t extra) {
    if (sb->failed) return ATTN_ENOMEM;
    if (extra < sb->cap - sb->len) return ATTN_OK; /* cap > len + extra: room for the NUL too */
    if (extra > ((size_t)-1) / 2 - sb->len) {
        sb->failed = 1;
        return attn__error(ATTN_ENOMEM, "string of %zu + %zu bytes: too long", sb->len, extra);
    }
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap <= sb->len + extra) cap *= 2;
    char *nb = attn_malloc(cap);
    if (!nb) {
        sb->failed = 1;
        return ATTN_ENOMEM;
    }
    if (sb->buf) memcpy(nb, sb->buf, sb->len + 1);
    else nb[0] = 0;
    attn_free(sb->buf);
    sb->buf = nb;
    sb->cap = cap;
    return ATTN_OK;
}

int attn__sb_put(attn__sb *sb, const void *s, size_t n) {
    int st = reserve(sb, n);
    if (st) return st;
    if (n) memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = 0;
    return ATTN_OK;
}

int attn__sb_str(attn__sb *sb, const char *s) { return attn__sb_put(sb, s, strlen(s)); }

int attn__sb_printf(attn__sb *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = 1;
        return attn__error(ATTN_ENOMEM, "string formatting failed");
    }
    int st = reserve(sb, (size_t)n);
    if (st) return st;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return ATTN_OK;
}

char *attn__sb_take(attn__sb *sb, size_t *len) {
    if (!sb->failed) reserve(sb, 0);
    if (sb->failed) {
        attn__sb_free(sb);
        attn__error(ATTN_ENOMEM, "out of memory");
        return NULL;
    }
    char *s = sb->buf;
    if (len) *len = sb->len;
    memset(sb, 0, sizeof *sb);
    return s;
}

void attn__sb_free(attn__sb *sb) {
    attn_free(sb->buf);
    memset(sb, 0, sizeof *sb);
}
