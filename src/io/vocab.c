/* Token counts (a string hash map) and vocabularies: build, encode, decode, save, load.
 * The hash map is open addressing with linear probing over FNV-1a hashes; entries are kept in
 * insertion order (an index per distinct string), so nothing depends on the hash order.
 * A vocabulary is a counter whose insertion order is the id order.
 * Not here: subword vocabularies, frequency-based sampling.
 */
#include <stdlib.h>
#include <string.h>

#include "attn/text.h"
#include "core/internal.h"
#include "io/atomic.h"
#include "io/common.h"

struct attn_counter {
    char *buf; /* the strings, each NUL-terminated, entry i at off[i] */
    size_t buf_len, buf_cap;
    size_t *off;
    uint32_t *len;
    uint64_t *hash;
    int64_t *count;
    int n, cap;
    int32_t *slot; /* nslot (a power of 2) entries: -1 empty, else an entry index */
    size_t nslot;
    int64_t total;
};

struct attn_vocab {
    attn_counter c;
};

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static void counter_clear(attn_counter *c) {
    attn_free(c->buf), attn_free(c->off), attn_free(c->len), attn_free(c->hash);
    attn_free(c->count), attn_free(c->slot);
    memset(c, 0, sizeof *c);
}

int attn_counter_new(attn_counter **out) {
    if (!out) return attn__error(ATTN_EINVAL, "counter_new: NULL argument");
    *out = attn_calloc(1, sizeof **out);
    return *out ? ATTN_OK : ATTN_ENOMEM;
}

void attn_counter_free(attn_counter *c) {
    if (!c) return;
    counter_clear(c);
    attn_free(c);
}

/* The slot holding tok, or the empty slot where it would go. */
static size_t probe(const attn_counter *c, const char *tok, size_t len, uint64_t h) {
    size_t mask = c->nslot - 1, i = (size_t)h & mask;
    for (;;) {
        int32_t e = c->slot[i];
        if (e < 0) return i;
        if (c->hash[e] == h && c->len[e] == len && memcmp(c->buf + c->off[e], tok, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

static int rehash(attn_counter *c, size_t nslot) {
    int32_t *slot = attn_malloc(nslot * sizeof *slot);
    if (!slot) return ATTN_ENOMEM;
    for (size_t i = 0; i < nslot; i++) slot[i] = -1;
    for (int e = 0; e < c->n; e++) {
        size_t i = (size_t)c->hash[e] & (nslot - 1);
        while (slot[i] >= 0) i = (i + 1) & (nslot - 1);
        slot[i] = e;
    }
    attn_free(c->slot);
    c->slot = slot;
    c->nslot = nslot;
    return ATTN_OK;
}

static int grow_entries(attn_counter *c) {
    if (c->cap >= (1 << 30)) return attn__error(ATTN_ENOMEM, "counter: too many distinct tokens");
    int cap = c->cap ? 2 * c->cap : 64;
    size_t *off = attn_malloc((size_t)cap * sizeof *off);
    uint32_t *len = attn_malloc((size_t)cap * sizeof *len);
    uint64_t *hash = attn_malloc((size_t)cap * sizeof *hash);
    int64_t *count = attn_malloc((size_t)cap * sizeof *count);
    if (!off || !len || !hash || !count) {
        attn_free(off), attn_free(len), attn_free(hash), attn_free(count);
        return ATTN_ENOMEM;
    }
    if (c->n) {
        memcpy(off, c->off, (size_t)c->n * sizeof *off);
        memcpy(len, c->len, (size_t)c->n * sizeof *len);
        memcpy(hash, c->hash, (size_t)c->n * sizeof *hash);
        memcpy(count, c->count, (size_t)c->n * sizeof *count);
    }
    attn_free(c->off), attn_free(c->len), attn_free(c->hash), attn_free(c->count);
    c->off = off, c->len = len, c->hash = hash, c->count = count, c->cap = cap;
    return ATTN_OK;
}

static int check_token(const char *tok, size_t len) {
    if (len == 0) return attn__error(ATTN_EINVAL, "empty token");
    if (len > 0xffffffu) return attn__error(ATTN_EINVAL, "token of %zu bytes is too long", len);
    for (size_t i = 0; i < len; i++) {
        char ch = tok[i];
        if (ch == '\n' || ch == '\r' || ch == '\0')
            return attn__error(ATTN_EINVAL, "token holds a %s", ch == '\0' ? "NUL byte" : "line break");
    }
    size_t bad;
    if (!attn_utf8_valid(tok, len, &bad)) return attn__error(ATTN_EINVAL, "token is not valid UTF-8 (byte %zu)", bad);
    return ATTN_OK;
}

int attn_counter_add(attn_counter *c, const char *tok, size_t len, int64_t count, int *index) {
    if (!c || !tok || count < 0) return attn__error(ATTN_EINVAL, "counter_add: bad arguments");
    int st = check_token(tok, len);
    if (st) return st;
    if (c->nslot == 0 && (st = rehash(c, 128))) return st;
    uint64_t h = fnv1a(tok, len);
    size_t i = probe(c, tok, len, h);
    int e = c->slot[i];
    if (e < 0) {
        if (c->n == c->cap && (st = grow_entries(c))) return st;
        if (c->buf_len + len + 1 > c->buf_cap) {
            size_t cap = c->buf_cap ? c->buf_cap : 1024;
            while (cap < c->buf_len + len + 1) cap *= 2;
            char *b = attn_malloc(cap);
            if (!b) return ATTN_ENOMEM;
            if (c->buf_len) memcpy(b, c->buf, c->buf_len);
            attn_free(c->buf);
            c->buf = b, c->buf_cap = cap;
        }
        e = c->n++;
        c->off[e] = c->buf_len;
        c->len[e] = (uint32_t)len;
        c->hash[e] = h;
        c->count[e] = 0;
        memcpy(c->buf + c->buf_len, tok, len);
        c->buf[c->buf_len + len] = '\0';
        c->buf_len += len + 1;
        c->slot[i] = e;
        /* Keep the load factor under 1/2. */
        if ((size_t)c->n * 2 > c->nslot && (st = rehash(c, c->nslot * 2))) {
            c->slot[i] = -1; /* rehash failed: the old table is intact; undo the entry */
            c->n--;
            c->buf_len = c->off[e];
            return st;
        }
    }
    c->count[e] += count;
    c->total += count;
    if (index) *index = e;
    return ATTN_OK;
}

int attn_counter_add_tokens(attn_counter *c, const attn_tokens *t) {
    if (!c || !t) return attn__error(ATTN_EINVAL, "counter_add_tokens: NULL argument");
    for (int i = 0; i < t->n; i++) {
        int st = attn_counter_add(c, t->tok[i], (size_t)t->len[i], 1, NULL);
        if (st) return st;
    }
    return ATTN_OK;
}

int attn_counter_size(const attn_counter *c) { return c ? c->n : 0; }

int attn_counter_find(const attn_counter *c, const char *tok, size_t len) {
    if (!c || !tok || c->nslot == 0) return -1;
    return c->slot[probe(c, tok, len, fnv1a(tok, len))];
}

const char *attn_counter_token(const attn_counter *c, int index) {
    if (!c || index < 0 || index >= c->n) return NULL;
    return c->buf + c->off[index];
}

int64_t attn_counter_count(const attn_counter *c, int index) {
    if (!c || index < 0 || index >= c->n) return 0;
    return c->count[index];
}

int64_t attn_counter_total(const attn_counter *c) { return c ? c->total : 0; }

/* ---- Vocabularies ------------------------------------------------------------------------- */

static const char *const specials[ATTN_NSPECIAL] = {ATTN_PAD_TOKEN, ATTN_UNK_TOKEN, ATTN_BOS_TOKEN, ATTN_EOS_TOKEN};

static int is_special(const char *tok, size_t len) {
    for (int i = 0; i < ATTN_NSPECIAL; i++)
        if (strlen(specials[i]) == len && memcmp(specials[i], tok, len) == 0) return 1;
    return 0;
}

typedef struct {
    int64_t count;
    const char *s;
    uint32_t len;
} sort_key;

/* Count descending, then bytes ascending (memcmp, a prefix first). */
static int key_cmp(const void *pa, const void *pb) {
    const sort_key *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    size_t m = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->s, b->s, m);
    if (r) return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int vocab_new_specials(attn_vocab **out) {
    attn_vocab *v = attn_calloc(1, sizeof *v);
    if (!v) return ATTN_ENOMEM;
    for (int i = 0; i < ATTN_NSPECIAL; i++) {
        int st = attn_counter_add(&v->c, specials[i], strlen(specials[i]), 0, NULL);
        if (st) {
            attn_vocab_free(v);
            return st;
        }
    }
    *out = v;
    return ATTN_OK;
}

int attn_vocab_build(const attn_counter *c, int64_t min_count, int max_size, attn_vocab **out) {
    if (!c || !out) return attn__error(ATTN_EINVAL, "vocab_build: NULL argument");
    *out = NULL;
    if (max_size < 0 || (max_size > 0 && max_size < ATTN_NSPECIAL))
        return attn__error(ATTN_EINVAL, "vocab_build: max_size %d is below the %d special tokens", max_size,
                           ATTN_NSPECIAL);
    sort_key *keys = attn_malloc((size_t)(c->n ? c->n : 1) * sizeof *keys);
    if (!keys) return ATTN_ENOMEM;
    int nk = 0;
    for (int e = 0; e < c->n; e++) {
        if (c->count[e] < min_count || c->count[e] <= 0) continue;
        if (is_special(c->buf + c->off[e], c->len[e])) continue;
        keys[nk++] = (sort_key){c->count[e], c->buf + c->off[e], c->len[e]};
    }
    qsort(keys, (size_t)nk, sizeof *keys, key_cmp);
    if (max_size > 0 && nk > max_size - ATTN_NSPECIAL) nk = max_size - ATTN_NSPECIAL;
    attn_vocab *v = NULL;
    int st = vocab_new_specials(&v);
    for (int i = 0; i < nk && !st; i++) st = attn_counter_add(&v->c, keys[i].s, keys[i].len, keys[i].count, NULL);
    attn_free(keys);
    if (st) {
        attn_vocab_free(v);
        return st;
    }
    *out = v;
    return ATTN_OK;
}

void attn_vocab_free(attn_vocab *v) {
    if (!v) return;
    counter_clear(&v->c);
    attn_free(v);
}

int attn_vocab_size(const attn_vocab *v) { return v ? v->c.n : 0; }

const char *attn_vocab_token(const attn_vocab *v, int id) { return v ? attn_counter_token(&v->c, id) : NULL; }

int attn_vocab_find(const attn_vocab *v, const char *tok, size_t len) {
    return v ? attn_counter_find(&v->c, tok, len) : -1;
}

int attn_vocab_id(const attn_vocab *v, const char *tok) {
    if (!v || !tok) return ATTN_UNK;
    int id = attn_counter_find(&v->c, tok, strlen(tok));
    return id < 0 ? ATTN_UNK : id;
}

int attn_vocab_encode(const attn_vocab *v, const attn_tokens *t, int flags, int32_t *ids, int cap, int *n_out,
                      int *n_unk) {
    if (!v || !t || !n_out || (cap > 0 && !ids) || cap < 0) return attn__error(ATTN_EINVAL, "vocab_encode: bad arguments");
    int need = t->n + !!(flags & ATTN_ENC_BOS) + !!(flags & ATTN_ENC_EOS);
    *n_out = 0;
    if (need > cap) return attn__error(ATTN_ESHAPE, "vocab_encode: %d ids do not fit in %d", need, cap);
    int k = 0, unk = 0;
    if (flags & ATTN_ENC_BOS) ids[k++] = ATTN_BOS;
    for (int i = 0; i < t->n; i++) {
        int id = attn_counter_find(&v->c, t->tok[i], (size_t)t->len[i]);
        if (id < 0) id = ATTN_UNK, unk++;
        ids[k++] = id;
    }
    if (flags & ATTN_ENC_EOS) ids[k++] = ATTN_EOS;
    *n_out = k;
    if (n_unk) *n_unk = unk;
    return ATTN_OK;
}

int attn_vocab_decode(const attn_vocab *v, const int32_t *ids, int n, int flags, attn_tokens *out) {
    if (!v || !out || n < 0 || (n > 0 && !ids)) return attn__error(ATTN_EINVAL, "vocab_decode: bad arguments");
    const char **tok = attn_malloc((size_t)(n ? n : 1) * sizeof *tok);
    if (!tok) return ATTN_ENOMEM;
    int k = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= v->c.n) {
            attn_free((void *)tok);
            return attn__error(ATTN_EINVAL, "vocab_decode: id %d at position %d is outside [0, %d)", (int)id, i, v->c.n);
        }
        if (id == ATTN_EOS && (flags & ATTN_DEC_STOP_AT_EOS)) break;
        if ((flags & ATTN_DEC_SKIP_SPECIAL) && (id == ATTN_PAD || id == ATTN_BOS || id == ATTN_EOS)) continue;
        tok[k++] = v->c.buf + v->c.off[id];
    }
    int st = attn_tokens_set(out, tok, k);
    attn_free((void *)tok);
    return st;
}

int attn_vocab_save(const attn_vocab *v, const char *path) {
    if (!v || !path) return attn__error(ATTN_EINVAL, "vocab_save: NULL argument");
    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    for (int i = 0; i < v->c.n; i++) {
        if (fwrite(v->c.buf + v->c.off[i], 1, v->c.len[i], f) != v->c.len[i] || fputc('\n', f) == EOF) {
            return attn__atomic_fail(f, tmp, path);
        }
    }
    return attn__atomic_commit(f, tmp, path);
}

int attn_vocab_load(const char *path, attn_vocab **out) {
    if (!path || !out) return attn__error(ATTN_EINVAL, "vocab_load: NULL argument");
    *out = NULL;
    char *data;
    size_t size;
    int st = attn__read_file(path, SIZE_MAX / 2, &data, &size);
    if (st) return st;
    attn_vocab *v = attn_calloc(1, sizeof *v);
    if (!v) {
        attn_free(data);
        return ATTN_ENOMEM;
    }
    size_t pos = 0;
    int line = 0;
    while (pos < size && !st) {
        line++;
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - s) : size - pos;
        pos += len + (nl != NULL);
        size_t bad;
        if (len == 0) {
            st = attn__error(ATTN_EFORMAT, "%s: line %d: empty line", path, line);
        } else if (memchr(s, '\r', len)) {
            st = attn__error(ATTN_EFORMAT, "%s: line %d: carriage return (CRLF line ends?)", path, line);
        } else if (memchr(s, '\0', len)) {
            st = attn__error(ATTN_EFORMAT, "%s: line %d: NUL byte", path, line);
        } else if (!attn_utf8_valid(s, len, &bad)) {
            st = attn__error(ATTN_EFORMAT, "%s: line %d: invalid UTF-8 at byte %zu", path, line, bad + 1);
        } else if (line <= ATTN_NSPECIAL &&
                   (len != strlen(specials[line - 1]) || memcmp(s, specials[line - 1], len) != 0)) {
            st = attn__error(ATTN_EFORMAT, "%s: line %d: expected the special token %s", path, line, specials[line - 1]);
        } else {
            int prev = attn_counter_find(&v->c, s, len);
            if (prev >= 0) {
                char shown[64];
                st = attn__error(ATTN_EFORMAT, "%s: line %d: duplicate token \"%s\" (also on line %d)", path, line,
                                 attn__printable(shown, sizeof shown, s, len), prev + 1);
            } else {
                st = attn_counter_add(&v->c, s, len, 0, NULL);
            }
        }
    }
    attn_free(data);
    if (!st && v->c.n < ATTN_NSPECIAL)
        st = attn__error(ATTN_EFORMAT, "%s: %d lines: a vocabulary starts with the %d special tokens", path, v->c.n,
                         ATTN_NSPECIAL);
    if (st) {
        attn_vocab_free(v);
        return st;
    }
    *out = v;
    return ATTN_OK;
}

void attn__vocab_pair_free(attn__vocab_pair *pair) {
    attn_vocab_free(pair->src);
    attn_vocab_free(pair->tgt);
    pair->src = pair->tgt = NULL;
}

int attn__vocabs_replace(const char *who, attn__vocab_pair *pair, attn_vocab *src, attn_vocab *tgt, int want_src, int want_tgt) {
    int st = ATTN_OK;
    if (!pair || !src || !tgt) st = attn__error(ATTN_EINVAL, "%s: set_vocabs: NULL argument", who);
    else if (attn_vocab_size(src) != want_src || attn_vocab_size(tgt) != want_tgt)
        st = attn__error(ATTN_EINVAL, "%s: vocabularies of %d and %d tokens, the model has %d and %d", who, attn_vocab_size(src),
                         attn_vocab_size(tgt), want_src, want_tgt);
    if (st) {
        attn_vocab_free(src);
        attn_vocab_free(tgt);
        return st;
    }
    attn__vocab_pair_free(pair);
    pair->src = src, pair->tgt = tgt;
    return ATTN_OK;
}
