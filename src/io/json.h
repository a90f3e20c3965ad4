/* A small strict JSON parser (RFC 8259) for file headers (not API). Untrusted input: the text
 * must be valid UTF-8, strings may not hold raw control characters or \u0000, surrogate
 * escapes must pair, numbers follow the JSON grammar, nesting is limited to
 * ATTN__JSON_MAX_DEPTH, and nothing but whitespace may follow the value.
 * Duplicate object keys are kept (the caller decides: see safetensors.c). */
#ifndef ATTN_IO_JSON_H
#define ATTN_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

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

/* Is s[0..n) valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF)? */
int attn__utf8_valid(const char *s, size_t n);

#endif
