/* JSON: a strict recursive-descent parser for untrusted file headers (one pass over the text,
 * one node per value), and the library's one JSON writer (escaped strings, numbers that read
 * back to the same float or double, objects and arrays with their commas). The parser converts
 * only non-negative integers, as that is all headers need; other numbers are checked against
 * the grammar. */
#include "io/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/text.h"

#include "core/internal.h"

typedef struct {
    const unsigned char *s;
    size_t n, pos;
    int status;
    char *err;
    size_t errcap;
} parser;

static void *fail(parser *p, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void *fail(parser *p, int status, const char *fmt, ...) {
    if (p->status == 0) {
        p->status = status;
        va_list ap;
        va_start(ap, fmt);
        if (p->errcap) vsnprintf(p->err, p->errcap, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

int attn__utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static attn__json *new_node(parser *p, attn__json_type t) {
    attn__json *v = attn_calloc(1, sizeof *v);
    if (!v) return fail(p, ATTN_ENOMEM, "out of memory");
    v->type = t;
    v->offset = p->pos;
    return v;
}

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses the string at p->pos (which is '"') into a new NUL-terminated buffer. The decoded
 * text is never longer than the quoted source, which bounds the allocation. */
static char *parse_string(parser *p, size_t *len_out) {
    size_t start = ++p->pos, end = start;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n) return fail(p, ATTN_EFORMAT, "unterminated string at byte %zu", start - 1);
    char *out = attn_malloc(end - start + 1);
    if (!out) return fail(p, ATTN_ENOMEM, "out of memory");
    size_t o = 0, i = start;
    while (i < end) {
        unsigned char c = p->s[i];
        if (c < 0x20) {
            attn_free(out);
            return fail(p, ATTN_EFORMAT, "control character in a string at byte %zu", i);
        }
        if (c != '\\') {
            out[o++] = (char)c;
            i++;
            continue;
        }
        unsigned char e = p->s[i + 1]; /* i + 1 < end: the scan above skipped escapes in pairs */
        i += 2;
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (end - i < 4 || !hex4(p->s + i, &cp)) {
                attn_free(out);
                return fail(p, ATTN_EFORMAT, "invalid \\u escape at byte %zu", i - 2);
            }
            i += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                attn_free(out);
                return fail(p, ATTN_EFORMAT, "unpaired surrogate escape at byte %zu", i - 6);
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - i < 6 || p->s[i] != '\\' || p->s[i + 1] != 'u' || !hex4(p->s + i + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff) {
                    attn_free(out);
                    return fail(p, ATTN_EFORMAT, "unpaired surrogate escape at byte %zu", i - 6);
                }
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                attn_free(out);
                return fail(p, ATTN_EFORMAT, "\\u0000 in a string is not supported (byte %zu)", i - 6);
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            attn_free(out);
            return fail(p, ATTN_EFORMAT, "invalid escape at byte %zu", i - 2);
        }
    }
    out[o] = '\0';
    p->pos = end + 1;
    *len_out = o;
    return out;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static attn__json *parse_number(parser *p) {
    attn__json *v = new_node(p, ATTN__JSON_NUMBER);
    if (!v) return NULL;
    size_t i = p->pos;
    int neg = 0, plain = 1, overflow = 0;
    uint64_t u = 0;
    if (p->s[i] == '-') neg = 1, i++;
    if (i >= p->n || !is_digit(p->s[i])) goto bad;
    if (p->s[i] == '0') {
        i++;
        if (i < p->n && is_digit(p->s[i])) goto bad; /* leading zero */
    } else {
        while (i < p->n && is_digit(p->s[i])) {
            unsigned d = p->s[i++] - '0';
            if (u > (UINT64_MAX - d) / 10) overflow = 1;
            else u = u * 10 + d;
        }
    }
    if (i < p->n && p->s[i] == '.') {
        plain = 0;
        i++;
        if (i >= p->n || !is_digit(p->s[i])) goto bad;
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        plain = 0;
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->n || !is_digit(p->s[i])) goto bad;
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    v->is_uint = plain && !neg && !overflow;
    v->u = v->is_uint ? u : 0;
    p->pos = i;
    return v;
bad:
    attn__json_free(v);
    return fail(p, ATTN_EFORMAT, "invalid number at byte %zu", p->pos);
}

static attn__json *parse_value(parser *p, int depth);

/* Array or object at p->pos; members get their key. */
static attn__json *parse_container(parser *p, int depth, int object) {
    attn__json *v = new_node(p, object ? ATTN__JSON_OBJECT : ATTN__JSON_ARRAY), *tail = NULL;
    if (!v) return NULL;
    if (depth >= ATTN__JSON_MAX_DEPTH) {
        attn__json_free(v);
        return fail(p, ATTN_EFORMAT, "nesting deeper than %d at byte %zu", ATTN__JSON_MAX_DEPTH, p->pos);
    }
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"') {
                attn__json_free(v);
                return fail(p, ATTN_EFORMAT, "expected a string key at byte %zu", p->pos);
            }
            key = parse_string(p, &key_len);
            if (!key) {
                attn__json_free(v);
                return NULL;
            }
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                attn_free(key);
                attn__json_free(v);
                return fail(p, ATTN_EFORMAT, "expected ':' at byte %zu", p->pos);
            }
            p->pos++;
        }
        attn__json *c = parse_value(p, depth + 1);
        if (!c) {
            attn_free(key);
            attn__json_free(v);
            return NULL;
        }
        c->key = key;
        c->key_len = key_len;
        if (tail) tail->next = c;
        else v->child = c;
        tail = c;
        v->len++;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            return v;
        }
        attn__json_free(v);
        return fail(p, ATTN_EFORMAT, "expected ',' or '%c' at byte %zu", close, p->pos);
    }
}

static attn__json *parse_literal(parser *p, const char *word, attn__json_type t) {
    size_t len = strlen(word);
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
        return fail(p, ATTN_EFORMAT, "unexpected character at byte %zu", p->pos);
    attn__json *v = new_node(p, t);
    if (v) p->pos += len;
    return v;
}

static attn__json *parse_value(parser *p, int depth) {
    skip_ws(p);
    if (p->pos >= p->n) return fail(p, ATTN_EFORMAT, "unexpected end of text at byte %zu", p->pos);
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': {
        attn__json *v = new_node(p, ATTN__JSON_STRING);
        if (!v) return NULL;
        v->str = parse_string(p, &v->len);
        if (!v->str) {
            attn__json_free(v);
            return NULL;
        }
        return v;
    }
    case 't': return parse_literal(p, "true", ATTN__JSON_TRUE);
    case 'f': return parse_literal(p, "false", ATTN__JSON_FALSE);
    case 'n': return parse_literal(p, "null", ATTN__JSON_NULL);
    default:
        if (c == '-' || is_digit(c)) return parse_number(p);
        return fail(p, ATTN_EFORMAT, "unexpected character at byte %zu", p->pos);
    }
}

int attn__json_parse(const char *text, size_t n, attn__json **out, char *err, size_t errcap) {
    parser p = {(const unsigned char *)text, n, 0, 0, err, errcap};
    *out = NULL;
    if (errcap) err[0] = '\0';
    if (!attn__utf8_valid(text, n)) {
        fail(&p, ATTN_EFORMAT, "not valid UTF-8");
        return p.status;
    }
    attn__json *v = parse_value(&p, 0);
    if (!v) return p.status;
    skip_ws(&p);
    if (p.pos != n) {
        attn__json_free(v);
        fail(&p, ATTN_EFORMAT, "unexpected text after the value at byte %zu", p.pos);
        return p.status;
    }
    *out = v;
    return ATTN_OK;
}

/* Siblings are walked in a loop and children recursed into, so the stack depth is bounded by
 * the nesting limit, not by the length of an array. */
void attn__json_free(attn__json *v) {
    while (v) {
        attn__json *next = v->next;
        attn__json_free(v->child);
        attn_free(v->key);
        attn_free(v->str);
        attn_free(v);
        v = next;
    }
}

/* ---- Writing ----------------------------------------------------------------------------- */

int attn__json_escape(attn__sb *sb, const char *s, int flags) {
    char *clean = NULL;
    if (!s) s = "";
    size_t n = strlen(s);
    if (!attn__utf8_valid(s, n)) {
        if (attn_utf8_sanitize(s, n, &clean, &n)) {
            sb->failed = 1;
            return ATTN_ENOMEM;
        }
        s = clean;
    }
    attn__sb_put(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *e = NULL;
        switch (*p) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\t': e = "\\t"; break;
        case '\n': e = "\\n"; break;
        case '\f': e = "\\f"; break;
        case '\r': e = "\\r"; break;
        }
        if (e) attn__sb_str(sb, e);
        else if (*p < 0x20 || ((flags & ATTN__JSON_HTML) && (*p == '<' || *p == '>' || *p == '&')))
            attn__sb_printf(sb, "\\u%04x", *p);
        else attn__sb_put(sb, p, 1);
    }
    attn_free(clean);
    return attn__sb_put(sb, "\"", 1);
}

/* The shortest "%.*g" of v that reads back as v, tried from 1 to `max` digits (17 for a
 * double, 9 for a float, enough for any value). */
static int put_shortest(attn__sb *sb, double v, int max, int as_float) {
    char t[40];
    for (int prec = 1; prec <= max; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (as_float ? strtof(t, NULL) == (float)v : strtod(t, NULL) == v) break;
    }
    return attn__sb_str(sb, t);
}

int attn__json_f64(attn__sb *sb, double v) {
    if (!isfinite(v)) return attn__sb_printf(sb, "\"%s\"", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    return put_shortest(sb, v, 17, 0);
}

int attn__json_f32(attn__sb *sb, float v) {
    if (!isfinite(v)) return attn__json_f64(sb, v);
    return put_shortest(sb, v, 9, 1);
}

void attn__jw_init(attn__jw *w, attn__sb *sb, int spaced, int indent) {
    memset(w, 0, sizeof *w);
    w->sb = sb;
    w->spaced = spaced;
    w->indent = indent;
}

/* What goes before a value: nothing after a key, else a comma after an earlier element, and
 * a new line with indentation in a container that puts elements on lines of their own. */
static void before_value(attn__jw *w) {
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0) return;
    int d = w->depth - 1;
    if (w->count[d]++) attn__sb_str(w->sb, w->spaced && !w->lines[d] ? ", " : ",");
    if (w->lines[d]) attn__sb_printf(w->sb, "\n%*s", w->indent * w->depth, "");
}

static int open_container(attn__jw *w, const char *bracket, int lines) {
    before_value(w);
    if (w->depth == ATTN__JSON_MAX_DEPTH) {
        w->sb->failed = 1;
        return attn__error(ATTN_EINVAL, "JSON writer: nesting deeper than %d", ATTN__JSON_MAX_DEPTH);
    }
    w->lines[w->depth] = (unsigned char)(lines != 0);
    w->count[w->depth++] = 0;
    return attn__sb_str(w->sb, bracket);
}

int attn__jw_object(attn__jw *w, int lines) { return open_container(w, "{", lines); }
int attn__jw_array(attn__jw *w, int lines) { return open_container(w, "[", lines); }

int attn__jw_end(attn__jw *w, char bracket) {
    if (w->depth == 0) return attn__error(ATTN_EINVAL, "JSON writer: end without a container");
    int d = --w->depth;
    if (w->lines[d] && w->count[d]) attn__sb_printf(w->sb, "\n%*s", w->indent * d, "");
    return attn__sb_put(w->sb, &bracket, 1);
}

int attn__jw_key(attn__jw *w, const char *key) {
    before_value(w);
    attn__json_escape(w->sb, key, w->flags);
    w->after_key = 1;
    return attn__sb_str(w->sb, w->spaced ? ": " : ":");
}

int attn__jw_str(attn__jw *w, const char *s) {
    before_value(w);
    return attn__json_escape(w->sb, s, w->flags);
}

int attn__jw_f64(attn__jw *w, double v) {
    before_value(w);
    return attn__json_f64(w->sb, v);
}

int attn__jw_f32(attn__jw *w, float v) {
    before_value(w);
    return attn__json_f32(w->sb, v);
}

int attn__jw_i64(attn__jw *w, int64_t v) {
    before_value(w);
    return attn__sb_printf(w->sb, "%" PRId64, v);
}

int attn__jw_u64(attn__jw *w, uint64_t v) {
    before_value(w);
    return attn__sb_printf(w->sb, "%" PRIu64, v);
}

int attn__jw_bool(attn__jw *w, int v) {
    before_value(w);
    return attn__sb_str(w->sb, v ? "true" : "false");
}

int attn__jw_raw(attn__jw *w, const char *json) {
    before_value(w);
    return attn__sb_str(w->sb, json);
}
