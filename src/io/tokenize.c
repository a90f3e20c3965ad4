/* Tokenisers (white space, English, the PyTorch tutorial's English, Chinese by character) and
 * detokenisation for display. The conventions are documented in include/attn/text.h.
 * Not here: subword tokenisation (BPE, SentencePiece), word segmentation of Chinese, Unicode
 * case folding beyond ASCII and Latin-1.
 */
#include <string.h>

#include "attn/text.h"
#include "core/internal.h"
#include "core/strbuf.h"

/* ---- attn_tokens storage ------------------------------------------------------------------
 * Tokens are appended to buf_ (each NUL-terminated) with their offsets in off_; tok[] and
 * len[] are filled at the end (finish), once buf_ no longer moves. */

void attn_tokens_free(attn_tokens *t) {
    if (!t) return;
    attn_free((void *)t->tok);
    attn_free(t->len);
    attn_free(t->buf_);
    attn_free(t->off_);
    memset(t, 0, sizeof *t);
}

static void tok_reset(attn_tokens *t) {
    t->n = 0;
    t->buf_len_ = 0;
}

static int buf_reserve(attn_tokens *t, size_t extra) {
    if (t->buf_len_ + extra <= t->buf_cap_) return ATTN_OK;
    size_t cap = t->buf_cap_ ? t->buf_cap_ : 256;
    while (cap < t->buf_len_ + extra) {
        if (cap > ((size_t)-1) / 2) return attn__error(ATTN_ENOMEM, "tokens: text too long");
        cap *= 2;
    }
    char *b = attn_malloc(cap);
    if (!b) return ATTN_ENOMEM;
    if (t->buf_len_) memcpy(b, t->buf_, t->buf_len_);
    attn_free(t->buf_);
    t->buf_ = b;
    t->buf_cap_ = cap;
    return ATTN_OK;
}

/* Room for one more token in the index arrays. */
static int idx_reserve(attn_tokens *t) {
    if (t->n < t->cap_) return ATTN_OK;
    if (t->cap_ > (1 << 29)) return attn__error(ATTN_ENOMEM, "tokens: too many tokens");
    int cap = t->cap_ ? 2 * t->cap_ : 32;
    size_t *off = attn_malloc((size_t)cap * sizeof *off);
    const char **tok = attn_malloc((size_t)cap * sizeof *tok);
    int *len = attn_malloc((size_t)cap * sizeof *len);
    if (!off || !tok || !len) {
        attn_free(off), attn_free((void *)tok), attn_free(len);
        return ATTN_ENOMEM;
    }
    if (t->n) memcpy(off, t->off_, (size_t)t->n * sizeof *off);
    attn_free(t->off_), attn_free((void *)t->tok), attn_free(t->len);
    t->off_ = off, t->tok = tok, t->len = len, t->cap_ = cap;
    return ATTN_OK;
}

/* Appends a whole token (len > 0). */
static int tok_push(attn_tokens *t, const char *s, size_t len) {
    if (len > (size_t)0x7fffffff) return attn__error(ATTN_EINVAL, "tokens: token too long");
    int st = idx_reserve(t);
    if (!st) st = buf_reserve(t, len + 1);
    if (st) return st;
    t->off_[t->n++] = t->buf_len_;
    memcpy(t->buf_ + t->buf_len_, s, len);
    t->buf_len_ += len;
    t->buf_[t->buf_len_++] = '\0';
    return ATTN_OK;
}

static void tok_finish(attn_tokens *t) {
    for (int i = 0; i < t->n; i++) {
        size_t end = i + 1 < t->n ? t->off_[i + 1] : t->buf_len_;
        t->tok[i] = t->buf_ + t->off_[i];
        t->len[i] = (int)(end - t->off_[i] - 1);
    }
}

int attn_tokens_set(attn_tokens *out, const char *const *tok, int n) {
    if (!out || n < 0 || (n > 0 && !tok)) return attn__error(ATTN_EINVAL, "tokens_set: bad arguments");
    tok_reset(out);
    for (int i = 0; i < n; i++) {
        if (!tok[i]) return attn__error(ATTN_EINVAL, "tokens_set: token %d is NULL", i);
        /* An empty token is allowed here: push writes the NUL only. */
        int st = idx_reserve(out);
        size_t len = strlen(tok[i]);
        if (!st) st = buf_reserve(out, len + 1);
        if (st) {
            out->n = 0;
            return st;
        }
        out->off_[out->n++] = out->buf_len_;
        memcpy(out->buf_ + out->buf_len_, tok[i], len + 1);
        out->buf_len_ += len + 1;
    }
    tok_finish(out);
    return ATTN_OK;
}

/* ---- Character classes -------------------------------------------------------------------- */

static int is_digit(uint32_t c) { return (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19); }

static int is_letter(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || /* Latin-1, Extended-A/B */
           (c >= 0x1E00 && c <= 0x1EFF) ||                        /* Latin Extended Additional */
           (c >= 0x386 && c <= 0x3FF && c != 0x387) ||            /* Greek */
           (c >= 0x400 && c <= 0x52F) ||                          /* Cyrillic */
           (c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A); /* fullwidth */
}

static int is_alnum(uint32_t c) { return is_letter(c) || is_digit(c); }

/* Dropped between tokens: white space, zero-width characters, the byte-order mark, controls. */
static int is_skip(uint32_t c) {
    return attn_is_space(c) || c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x200B && c <= 0x200D) ||
           c == 0x2060 || c == 0xFEFF;
}

static uint32_t to_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    return c;
}

/* Decodes text into code points (invalid sequences as U+FFFD): *cps (attn_free), *m. */
static int decode_all(const char *text, uint32_t **cps, size_t *m) {
    size_t n = strlen(text), pos = 0, k = 0;
    size_t bytes;
    if (attn__mul_size(n + 1, sizeof(uint32_t), &bytes)) return attn__error(ATTN_EINVAL, "tokenize: text too long");
    uint32_t *c = attn_malloc(bytes);
    if (!c) return ATTN_ENOMEM;
    while (attn_utf8_next(text, n, &pos, &c[k])) k++;
    *cps = c;
    *m = k;
    return ATTN_OK;
}

/* Appends code points c[i, j) as one token (lower-cased if asked). */
static int push_cps(attn_tokens *t, const uint32_t *c, size_t i, size_t j, int lower) {
    char tmp[256];
    size_t len = 0;
    int st = ATTN_OK;
    /* Long tokens go through buf_ directly; the usual short ones through tmp. */
    if ((j - i) * 4 > sizeof tmp) {
        st = idx_reserve(t);
        if (!st) st = buf_reserve(t, (j - i) * 4 + 1);
        if (st) return st;
        t->off_[t->n++] = t->buf_len_;
        for (size_t k = i; k < j; k++) t->buf_len_ += attn_utf8_encode(lower ? to_lower(c[k]) : c[k], t->buf_ + t->buf_len_);
        t->buf_[t->buf_len_++] = '\0';
        return ATTN_OK;
    }
    for (size_t k = i; k < j; k++) len += attn_utf8_encode(lower ? to_lower(c[k]) : c[k], tmp + len);
    return tok_push(t, tmp, len);
}

/* ---- The tokenisers ----------------------------------------------------------------------- */

static int tok_space(const char *text, attn_tokens *out) {
    size_t n = strlen(text), pos = 0, start = 0;
    if (!attn_utf8_valid(text, n, NULL)) { /* rare: tokenise the text with U+FFFD instead */
        char *clean;
        int st = attn_utf8_sanitize(text, n, &clean, NULL);
        if (st) return st;
        st = tok_space(clean, out);
        attn_free(clean);
        return st;
    }
    int in = 0, st = ATTN_OK;
    uint32_t c;
    while (pos < n && !st) {
        size_t at = pos;
        attn_utf8_next(text, n, &pos, &c);
        if (attn_is_space(c)) {
            if (in) st = tok_push(out, text + start, at - start);
            in = 0;
        } else if (!in) {
            in = 1, start = at;
        }
    }
    if (!st && in) st = tok_push(out, text + start, n - start);
    return st;
}

static int tok_zh(const uint32_t *c, size_t m, attn_tokens *out) {
    size_t i = 0;
    int st = ATTN_OK;
    while (i < m && !st) {
        if (is_skip(c[i])) {
            i++;
        } else if (is_alnum(c[i])) {
            size_t j = i + 1;
            while (j < m && is_alnum(c[j])) j++;
            st = push_cps(out, c, i, j, 0);
            i = j;
        } else {
            st = push_cps(out, c, i, i + 1, 0);
            i++;
        }
    }
    return st;
}

static uint32_t straighten(uint32_t c) {
    if (c == 0x2018 || c == 0x2019) return '\'';
    if (c == 0x201C || c == 0x201D) return '"';
    return c;
}

static int tok_en(uint32_t *c, size_t m, attn_tokens *out) {
    for (size_t k = 0; k < m; k++) c[k] = straighten(c[k]);
    size_t i = 0;
    int st = ATTN_OK;
    while (i < m && !st) {
        if (is_skip(c[i])) {
            i++;
        } else if (is_alnum(c[i])) {
            size_t j = i + 1;
            while (j < m) {
                if (is_alnum(c[j])) {
                    j++;
                } else if (c[j] == '\'' && j + 1 < m && is_letter(c[j - 1]) && is_letter(c[j + 1])) {
                    j += 2;
                } else if ((c[j] == '.' || c[j] == ',') && j + 1 < m && is_digit(c[j - 1]) && is_digit(c[j + 1])) {
                    j += 2;
                } else {
                    break;
                }
            }
            st = push_cps(out, c, i, j, 1);
            i = j;
        } else {
            st = push_cps(out, c, i, i + 1, 0);
            i++;
        }
    }
    return st;
}

/* Base letters of U+00C0..U+017F after lower() and NFD with the combining marks dropped
 * (generated with Python's unicodedata); '*' where nothing in a-z is left. */
static const char latin_base[] = "aaaaaa*ceeeeiiii*nooooo**uuuuy**"
                                 "aaaaaa*ceeeeiiii*nooooo**uuuuy*y"
                                 "aaaaaaccccccccdd**eeeeeeeeeegggg"
                                 "gggghh**iiiiiiiii***jjkk*llllll*"
                                 "***nnnnnn***oooooo**rrrrrrssssss"
                                 "sstttt**uuuuuuuuuuuuwwyyyzzzzzz*";

/* normalizeString (the tutorial as revised in 2023): lower, strip accents, " " before each of
 * .!?, [^a-zA-Z!?]+ -> " " (which removes the '.' again), split. A token is therefore an
 * optional leading '!' or '?' followed by letters. */
static int tok_en_tutorial(const uint32_t *c, size_t m, attn_tokens *out) {
    char *tmp = attn_malloc(m + 1);
    if (!tmp) return ATTN_ENOMEM;
    size_t len = 0;
    int st = ATTN_OK;
    for (size_t k = 0; k < m && !st; k++) {
        uint32_t x = c[k];
        char ch = 0; /* 0: a separator */
        if (x < 0x80) {
            if ((x | 0x20) >= 'a' && (x | 0x20) <= 'z') ch = (char)(x | 0x20);
            else if (x == '!' || x == '?') ch = (char)x;
        } else if (x >= 0xC0 && x <= 0x17F && latin_base[x - 0xC0] != '*') {
            ch = latin_base[x - 0xC0];
        }
        if (ch == '!' || ch == '?' || ch == 0) {
            if (len) st = tok_push(out, tmp, len);
            len = 0;
        }
        if (ch) tmp[len++] = ch;
    }
    if (!st && len) st = tok_push(out, tmp, len);
    attn_free(tmp);
    return st;
}

int attn_tokenize(attn_tok_kind kind, const char *text, attn_tokens *out) {
    if (!text || !out) return attn__error(ATTN_EINVAL, "tokenize: NULL argument");
    if (kind != ATTN_TOK_SPACE && kind != ATTN_TOK_EN && kind != ATTN_TOK_EN_TUTORIAL && kind != ATTN_TOK_ZH)
        return attn__error(ATTN_EINVAL, "tokenize: unknown tokenizer kind %d", (int)kind);
    tok_reset(out);
    int st;
    if (kind == ATTN_TOK_SPACE) {
        st = tok_space(text, out);
    } else {
        uint32_t *c = NULL;
        size_t m = 0;
        st = decode_all(text, &c, &m);
        if (st) return st;
        if (kind == ATTN_TOK_ZH) st = tok_zh(c, m, out);
        else if (kind == ATTN_TOK_EN) st = tok_en(c, m, out);
        else st = tok_en_tutorial(c, m, out);
        attn_free(c);
    }
    if (st) {
        out->n = 0;
        return st;
    }
    tok_finish(out);
    return ATTN_OK;
}

/* ---- Detokenisation ----------------------------------------------------------------------- */

static uint32_t first_cp(const char *s) {
    uint32_t c;
    size_t n = strlen(s);
    if (!n) return 0;
    attn_utf8_decode(s, n, &c);
    return c;
}

static uint32_t last_cp(const char *s) {
    size_t n = strlen(s), i = n;
    uint32_t c = 0;
    if (!n) return 0;
    /* Step back over at most 3 continuation bytes to the start of the last sequence. */
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) i--;
    attn_utf8_decode(s + i, n - i, &c);
    return c;
}

static int is_cjkish(uint32_t c) { return attn_is_cjk(c) || attn_is_cjk_punct(c) || (c >= 0x3040 && c <= 0x30FF); }

static int one_of(const char *t, const char *const *set) {
    for (; *set; set++)
        if (strcmp(t, *set) == 0) return 1;
    return 0;
}

static int detok_en(const char *const *tok, int n, int flags, attn__sb *b) {
    static const char *const no_space_before[] = {".", ",", "!", "?", ";", ":", "%", ")", "]", "}", "'", "-", "...", NULL};
    static const char *const no_space_after[] = {"(", "[", "{", "$", "#", "-", NULL};
    int glue_next = 1, quote_open = 0, sentence_start = 1, st = ATTN_OK;
    uint32_t prev_last = 0;
    for (int i = 0; i < n && !st; i++) {
        const char *t = tok[i];
        if (!*t) continue;
        uint32_t first = first_cp(t);
        int space = !glue_next, glue_after = 0;
        if (strcmp(t, "\"") == 0) {
            if (quote_open) space = 0;
            else glue_after = 1;
            quote_open = !quote_open;
        } else if (one_of(t, no_space_before)) {
            space = 0;
        }
        if (one_of(t, no_space_after)) glue_after = 1;
        if (is_cjkish(prev_last) && is_cjkish(first)) space = 0;
        if (space) st = attn__sb_put(b, " ", 1);
        size_t at = b->len, tl = strlen(t);
        if (!st) st = attn__sb_put(b, t, tl);
        if (st) break;
        if (flags & ATTN_DETOK_CAPITALIZE) {
            int has_alnum = 0;
            for (size_t k = at; k < b->len; k++) {
                unsigned char ch = (unsigned char)b->buf[k];
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch >= 0x80) {
                    has_alnum = 1;
                    break;
                }
            }
            int pronoun = strcmp(t, "i") == 0 || strncmp(t, "i'", 2) == 0;
            if ((sentence_start && has_alnum) || pronoun) {
                unsigned char ch = (unsigned char)b->buf[at];
                if (ch >= 'a' && ch <= 'z') b->buf[at] = (char)(ch - 32);
            }
            if (has_alnum) sentence_start = 0;
            if (strcmp(t, ".") == 0 || strcmp(t, "!") == 0 || strcmp(t, "?") == 0) sentence_start = 1;
        }
        glue_next = glue_after;
        prev_last = last_cp(t);
    }
    return st;
}

static int detok_zh(const char *const *tok, int n, attn__sb *b) {
    uint32_t prev_last = 0;
    int st = ATTN_OK;
    for (int i = 0; i < n && !st; i++) {
        if (!*tok[i]) continue;
        if (is_alnum(prev_last) && is_alnum(first_cp(tok[i]))) st = attn__sb_put(b, " ", 1);
        if (!st) st = attn__sb_put(b, tok[i], strlen(tok[i]));
        prev_last = last_cp(tok[i]);
    }
    return st;
}

int attn_detokenize(attn_tok_kind kind, const char *const *tok, int n, int flags, char **out) {
    if (!out || n < 0 || (n > 0 && !tok)) return attn__error(ATTN_EINVAL, "detokenize: bad arguments");
    *out = NULL;
    for (int i = 0; i < n; i++)
        if (!tok[i]) return attn__error(ATTN_EINVAL, "detokenize: token %d is NULL", i);
    attn__sb b = {0};
    int st = attn__sb_put(&b, "", 0);
    if (st) return st;
    switch (kind) {
    case ATTN_TOK_SPACE:
        for (int i = 0; i < n && !st; i++) {
            if (i) st = attn__sb_put(&b, " ", 1);
            if (!st) st = attn__sb_put(&b, tok[i], strlen(tok[i]));
        }
        break;
    case ATTN_TOK_EN:
    case ATTN_TOK_EN_TUTORIAL: st = detok_en(tok, n, flags, &b); break;
    case ATTN_TOK_ZH: st = detok_zh(tok, n, &b); break;
    default: st = attn__error(ATTN_EINVAL, "detokenize: unknown tokenizer kind %d", (int)kind);
    }
    if (st) {
        attn_free(b.buf);
        return st;
    }
    *out = b.buf;
    return ATTN_OK;
}
