/* UTF-8 decoding, validation and encoding, and the character classes the tokenisers use.
 * Not here: normalisation (NFC/NFKC), case mapping beyond what the tokenisers need, grapheme
 * clusters. Invalid input is read as U+FFFD per maximal subpart (Unicode 15, section 3.9),
 * which is what Python's bytes.decode("utf-8", errors="replace") does.
 */
#include <string.h>

#include "attn/text.h"
#include "core/internal.h"

/* Well-formed sequences (Unicode Table 3-7): the range allowed for the second byte depends on
 * the first; the later bytes are always 80..BF. */
size_t attn_utf8_decode(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) {
        *cp = ATTN_UTF8_REPLACEMENT;
        return 0;
    }
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int need;           /* continuation bytes */
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, v = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *cp = ATTN_UTF8_REPLACEMENT; /* 80..C1 or F5..FF: never valid as a first byte */
        return 1;
    }
    size_t i = 1;
    for (int k = 0; k < need; k++, i++) {
        if (i >= n) break;
        unsigned b = p[i];
        unsigned l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
        if (b < l || b > h) break;
        v = (v << 6) | (b & 0x3F);
    }
    if (i != (size_t)need + 1) {
        *cp = ATTN_UTF8_REPLACEMENT; /* the maximal subpart p[0, i) */
        return i;
    }
    *cp = v;
    return i;
}

int attn_utf8_next(const char *s, size_t n, size_t *pos, uint32_t *cp) {
    if (*pos >= n) return 0;
    *pos += attn_utf8_decode(s + *pos, n - *pos, cp);
    return 1;
}

size_t attn_utf8_encode(uint32_t cp, char out[4]) {
    unsigned char *o = (unsigned char *)out;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = ATTN_UTF8_REPLACEMENT;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int attn_utf8_valid(const char *s, size_t n, size_t *bad_offset) {
    size_t pos = 0;
    while (pos < n) {
        if ((unsigned char)s[pos] < 0x80) { /* fast path for ASCII */
            pos++;
            continue;
        }
        uint32_t cp;
        size_t k = attn_utf8_decode(s + pos, n - pos, &cp);
        /* U+FFFD itself is valid (EF BF BD); only a decoding failure is not. */
        if (cp == ATTN_UTF8_REPLACEMENT && !(k == 3 && memcmp(s + pos, "\xEF\xBF\xBD", 3) == 0)) {
            if (bad_offset) *bad_offset = pos;
            return 0;
        }
        pos += k;
    }
    if (bad_offset) *bad_offset = n;
    return 1;
}

size_t attn_utf8_length(const char *s, size_t n) {
    size_t pos = 0, count = 0;
    uint32_t cp;
    while (attn_utf8_next(s, n, &pos, &cp)) count++;
    return count;
}

int attn_utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len) {
    if (!out || (!s && n)) return attn__error(ATTN_EINVAL, "utf8_sanitize: NULL argument");
    *out = NULL;
    /* Each invalid byte becomes at most 3 bytes. */
    size_t cap;
    if (attn__mul_size(n, 3, &cap) != ATTN_OK || cap + 1 < cap)
        return attn__error(ATTN_EINVAL, "utf8_sanitize: text too long");
    char *d = attn_malloc(cap + 1);
    if (!d) return ATTN_ENOMEM;
    size_t pos = 0, len = 0;
    while (pos < n) {
        uint32_t cp;
        size_t k = attn_utf8_decode(s + pos, n - pos, &cp);
        if (cp == ATTN_UTF8_REPLACEMENT) {
            len += attn_utf8_encode(cp, d + len);
        } else {
            memcpy(d + len, s + pos, k);
            len += k;
        }
        pos += k;
    }
    d[len] = '\0';
    *out = d;
    if (out_len) *out_len = len;
    return ATTN_OK;
}

int attn_is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) ||   /* CJK Unified Ideographs */
           (c >= 0x3400 && c <= 0x4DBF) ||   /* Extension A */
           (c >= 0x20000 && c <= 0x323AF) || /* Extensions B..H (and I at 2EBF0..2EE5F) */
           (c >= 0xF900 && c <= 0xFAFF) ||   /* Compatibility Ideographs */
           (c >= 0x2F800 && c <= 0x2FA1F) || /* Compatibility Ideographs Supplement */
           (c >= 0x2E80 && c <= 0x2FDF) ||   /* CJK Radicals Supplement, Kangxi Radicals */
           c == 0x3007;                      /* 〇 ideographic number zero */
}

int attn_is_cjk_punct(uint32_t c) {
    if (c >= 0x3000 && c <= 0x303F) return c != 0x3000 && c != 0x3005 && c != 0x3007;
    return (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
           (c >= 0xFF5B && c <= 0xFF65) || (c >= 0xFFE0 && c <= 0xFFEE) || (c >= 0xFE10 && c <= 0xFE1F) ||
           (c >= 0xFE30 && c <= 0xFE6F);
}

int attn_is_space(uint32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}
