/* JSON (not API): a small strict parser (RFC 8259) for file headers, and the writer. Untrusted input: the text
 * must be valid UTF-8, strings may not hold raw control characters or \u0000, surrogate
 * escapes must pair, numbers follow the JSON grammar, nesting is limited to
 * ATTN__JSON_MAX_DEPTH, and nothing but whitespace may follow the value.
 * Duplicate object keys are kept (the caller decides: see safetensors.c). */
#ifndef ATTN_IO_JSON_H
#define ATTN_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define ATTN__JSON_MAX_DEPTH 64

typedef enum {
    ATTN__JSON_NULL,
    ATTN__JSON_FALSE,
    ATTN__JSON_TRUE,
    ATTN__JSON_NUMBER,
    ATTN__JSON_STRING,
    ATTN__JSON_ARRAY,
    ATTN__JSON_OBJECT
} attn__json_type;

typedef struct attn__json attn__json;
struct attn__json {
    attn__json_type type;
    char *key;           /* for an object member: its name (decoded, NUL-terminated) */
    size_t key_len;
    char *str;           /* STRING: the decoded value, NUL-terminated */
    size_t len;          /* STRING: bytes in str; ARRAY, OBJECT: number of children */
    int is_uint;         /* NUMBER: 1 if a plain non-negative integer that fits in uint64 */
    uint64_t u;          /* NUMBER: its value if is_uint */
    attn__json *child;   /* ARRAY, OBJECT: first element or member */
    attn__json *next;    /* next sibling in the parent */
    size_t offset;       /* byte offset of the value in the text, for messages */
};

/* Parses text[0..n) (need not be NUL-terminated) into a tree. ATTN_OK, or ATTN_EFORMAT with a
 * short reason in err ("expected ':' at byte 17"), or ATTN_ENOMEM. */
int attn__json_parse(const char *text, size_t n, attn__json **out, char *err, size_t errcap);
void attn__json_free(attn__json *v); /* accepts NULL */

/* ---- Writing ----
 * JSON text is appended to a string builder (core/strbuf.h); allocation failures are sticky
 * there, so a document needs one check at the end (attn__sb_take). Every function returns
 * ATTN_OK or ATTN_ENOMEM. */

#define ATTN__JSON_HTML 1 /* also escape '<', '>', '&' (for text inside an HTML <script>) */

/* s as a JSON string, quotes included: '"', '\\' and control characters escaped (\b \t \n \f \r,
 * others as \u00xx), everything else (UTF-8 included) as it is; invalid UTF-8 becomes U+FFFD.
 * s NULL is "". This is what serde_json (the safetensors reference) writes. */
int attn__json_escape(attn__sb *sb, const char *s, int flags);
/* The shortest decimal that reads back as the same double (float): 0.9 stays "0.9", 0.1f is
 * "0.1". JSON has no NaN or infinity: those are written as the strings "nan", "inf", "-inf". */
int attn__json_f64(attn__sb *sb, double v);
int attn__json_f32(attn__sb *sb, float v);

/* A writer of nested values that places the commas: open a container, then write its
 * elements (an object: a key before each value), then end it. With `spaced`, ", " and ": "
 * separate elements and keys ("," and ":" otherwise). A container opened with lines = 1 puts
 * each element on its own line, indented by `indent` spaces per level, and its closing
 * bracket on a line of its own. Nothing is checked beyond the nesting depth: the caller writes
 * keys in objects only. */
typedef struct {
    attn__sb *sb;
    int spaced, indent, flags; /* flags: ATTN__JSON_HTML for every string */
    int depth, after_key;
    unsigned char lines[ATTN__JSON_MAX_DEPTH];
    size_t count[ATTN__JSON_MAX_DEPTH];
} attn__jw;

void attn__jw_init(attn__jw *w, attn__sb *sb, int spaced, int indent);
int attn__jw_object(attn__jw *w, int lines);
int attn__jw_array(attn__jw *w, int lines);
int attn__jw_end(attn__jw *w, char bracket); /* '}' or ']' */
int attn__jw_key(attn__jw *w, const char *key);
int attn__jw_str(attn__jw *w, const char *s);
int attn__jw_f64(attn__jw *w, double v);
int attn__jw_f32(attn__jw *w, float v);
int attn__jw_i64(attn__jw *w, int64_t v);
int attn__jw_u64(attn__jw *w, uint64_t v);
int attn__jw_bool(attn__jw *w, int v);
int attn__jw_raw(attn__jw *w, const char *json); /* a value that is JSON text already */

/* Is s[0..n) valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF)? */
int attn__utf8_valid(const char *s, size_t n);

#endif
