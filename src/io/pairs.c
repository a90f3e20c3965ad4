/* Sentence-pair data sets in TSV ("side0 TAB side1 [TAB extra]", as Tatoeba's cmn.txt):
 * reading with malformed lines counted and skipped, length filters, a seeded split into
 * train/valid/test that is the same on every platform, and atomic writing.
 * Not here: tokenisation (tokenize.c), batching and padding (the training code's job),
 * grouping of duplicate sentences across the split.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn/text.h"
#include "core/internal.h"
#include "io/atomic.h"
#include "io/common.h"

const char *attn_pair_problem_name(attn_pair_problem p) {
    switch (p) {
    case ATTN_PAIR_OK: return "ok";
    case ATTN_PAIR_NO_TAB: return "no tab";
    case ATTN_PAIR_EMPTY_SIDE: return "empty side";
    case ATTN_PAIR_BAD_UTF8: return "invalid UTF-8";
    case ATTN_PAIR_NUL_BYTE: return "NUL byte";
    }
    return "unknown problem";
}

void attn_pairs_free(attn_pairs *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) attn_free(p->pair[i].side[0]); /* one block per pair */
    attn_free(p->pair);
    memset(p, 0, sizeof *p);
}

/* Appends a pair, copying the three strings into one block. */
static int pairs_push(attn_pairs *p, const char *s0, size_t l0, const char *s1, size_t l1, const char *ex, size_t lex,
                      int line) {
    if (p->n == p->cap_) {
        if (p->cap_ >= (1 << 29)) return attn__error(ATTN_ENOMEM, "pairs: too many pairs");
        int cap = p->cap_ ? 2 * p->cap_ : 256;
        attn_pair *a = attn_malloc((size_t)cap * sizeof *a);
        if (!a) return ATTN_ENOMEM;
        if (p->n) memcpy(a, p->pair, (size_t)p->n * sizeof *a);
        attn_free(p->pair);
        p->pair = a;
        p->cap_ = cap;
    }
    char *b = attn_malloc(l0 + l1 + lex + 3);
    if (!b) return ATTN_ENOMEM;
    attn_pair *q = &p->pair[p->n++];
    q->side[0] = b;
    q->side[1] = b + l0 + 1;
    q->extra = b + l0 + l1 + 2;
    q->line = line;
    memcpy(q->side[0], s0, l0), q->side[0][l0] = '\0';
    memcpy(q->side[1], s1, l1), q->side[1][l1] = '\0';
    if (lex) memcpy(q->extra, ex, lex);
    q->extra[lex] = '\0';
    return ATTN_OK;
}

/* Parses one line (without its line break) into its columns, or says what is wrong. */
static attn_pair_problem parse_line(const char *s, size_t len, size_t *t1, size_t *t2) {
    if (memchr(s, '\0', len)) return ATTN_PAIR_NUL_BYTE;
    if (!attn_utf8_valid(s, len, NULL)) return ATTN_PAIR_BAD_UTF8;
    const char *a = memchr(s, '\t', len);
    if (!a) return ATTN_PAIR_NO_TAB;
    *t1 = (size_t)(a - s);
    const char *b = memchr(a + 1, '\t', len - *t1 - 1);
    *t2 = b ? (size_t)(b - s) : len;
    if (attn__blank(s, *t1) || attn__blank(a + 1, *t2 - *t1 - 1)) return ATTN_PAIR_EMPTY_SIDE;
    return ATTN_PAIR_OK;
}

int attn_pairs_read(const char *path, attn_pairs *out) {
    if (!path || !out) return attn__error(ATTN_EINVAL, "pairs_read: NULL argument");
    attn_pairs_free(out);
    char *data;
    size_t size;
    int st = attn__read_file(path, SIZE_MAX / 2, &data, &size);
    if (st) return st;
    size_t pos = 0;
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* byte-order mark */
    int line = 0;
    while (pos < size && !st) {
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - s) : size - pos;
        pos += len + (nl != NULL);
        if (line == 0x7fffffff) {
            st = attn__error(ATTN_EFORMAT, "%s: too many lines", path);
            break;
        }
        line++;
        if (len && s[len - 1] == '\r') len--;
        size_t t1 = 0, t2 = 0;
        attn_pair_problem why = parse_line(s, len, &t1, &t2);
        if (why != ATTN_PAIR_OK) {
            if (out->n_reported < ATTN_PAIRS_REPORT) {
                out->bad_line[out->n_reported] = line;
                out->bad_why[out->n_reported++] = why;
            }
            out->malformed++;
            continue;
        }
        size_t ex = t2 < len ? t2 + 1 : len;
        st = pairs_push(out, s, t1, s + t1 + 1, t2 - t1 - 1, s + ex, len - ex, line);
    }
    out->lines = line;
    attn_free(data);
    if (!st && out->n == 0) {
        if (out->malformed)
            st = attn__error(ATTN_EFORMAT, "%s: no valid pair: all %d lines are malformed (line %d: %s)", path,
                             out->malformed, out->bad_line[0], attn_pair_problem_name(out->bad_why[0]));
        else
            st = attn__error(ATTN_EFORMAT, "%s: no valid pair: the file is empty", path);
    }
    if (st) {
        /* Keep the counts for the caller's message, drop the pairs. */
        for (int i = 0; i < out->n; i++) attn_free(out->pair[i].side[0]);
        attn_free(out->pair);
        out->pair = NULL, out->n = 0, out->cap_ = 0;
    }
    return st;
}

char *attn_pairs_report(const attn_pairs *p, char *buf, size_t cap) {
    const char *why[ATTN_PAIRS_REPORT];
    int n = p ? p->n_reported : 0;
    for (int i = 0; i < n; i++) why[i] = attn_pair_problem_name(p->bad_why[i]);
    return attn__skip_report(buf, cap, "line", p ? p->malformed : 0, n, p ? p->bad_line : NULL, why);
}

int attn_pairs_filter_length(attn_pairs *p, const attn_tok_kind kind[2], const int max_tokens[2]) {
    if (!p || !kind || !max_tokens) return attn__error(ATTN_EINVAL, "pairs_filter_length: NULL argument");
    attn_tokens t = {0};
    int st = ATTN_OK, k = 0;
    for (int i = 0; i < p->n; i++) {
        int keep = 1;
        for (int s = 0; s < 2 && keep && !st; s++) {
            if (max_tokens[s] <= 0) continue;
            st = attn_tokenize(kind[s], p->pair[i].side[s], &t);
            if (!st && t.n > max_tokens[s]) keep = 0;
        }
        if (st) {
            /* Keep everything not yet looked at. */
            memmove(p->pair + k, p->pair + i, (size_t)(p->n - i) * sizeof *p->pair);
            k += p->n - i;
            break;
        }
        if (keep) {
            p->pair[k++] = p->pair[i];
        } else {
            attn_free(p->pair[i].side[0]);
            p->filtered++;
        }
    }
    p->n = k;
    attn_tokens_free(&t);
    return st;
}

int attn_pairs_split(const attn_pairs *all, uint64_t seed, double frac_valid, double frac_test, attn_pairs *train,
                     attn_pairs *valid, attn_pairs *test) {
    if (!all) return attn__error(ATTN_EINVAL, "pairs_split: NULL input");
    if ((train && train == all) || (valid && valid == all) || (test && test == all) ||
        (train && (train == valid || train == test)) || (valid && valid == test))
        return attn__error(ATTN_EINVAL, "pairs_split: the outputs must be distinct from each other and the input");
    if (!(frac_valid >= 0 && frac_valid <= 1 && frac_test >= 0 && frac_test <= 1 && frac_valid + frac_test <= 1.0))
        return attn__error(ATTN_EINVAL, "pairs_split: fractions %g (valid) and %g (test) must be in [0, 1] and sum to <= 1",
                           frac_valid, frac_test);
    int n = all->n;
    int n_valid = (int)floor(frac_valid * n + 0.5);
    int n_test = (int)floor(frac_test * n + 0.5);
    if (n_valid > n) n_valid = n;
    if (n_valid + n_test > n) n_test = n - n_valid;
    int *perm = attn_malloc((size_t)(n ? n : 1) * sizeof *perm);
    unsigned char *part = attn_malloc((size_t)(n ? n : 1));
    if (!perm || !part) {
        attn_free(perm), attn_free(part);
        return ATTN_ENOMEM;
    }
    for (int i = 0; i < n; i++) perm[i] = i;
    attn_rng rng;
    attn_rng_seed(&rng, seed);
    attn__shuffle(perm, n, &rng);
    /* The first n_valid shuffled indices go to valid, the next n_test to test. */
    for (int i = 0; i < n; i++) part[perm[i]] = i < n_valid ? 1 : i < n_valid + n_test ? 2 : 0;
    attn_free(perm);
    attn_pairs *dst[3] = {train, valid, test};
    for (int k = 0; k < 3; k++) attn_pairs_free(dst[k]);
    int st = ATTN_OK;
    for (int i = 0; i < n && !st; i++) {
        attn_pairs *d = dst[part[i]];
        if (!d) continue;
        const attn_pair *q = &all->pair[i];
        st = pairs_push(d, q->side[0], strlen(q->side[0]), q->side[1], strlen(q->side[1]), q->extra, strlen(q->extra),
                        q->line);
    }
    attn_free(part);
    if (st)
        for (int k = 0; k < 3; k++) attn_pairs_free(dst[k]);
    return st;
}

int attn_pairs_write(const attn_pairs *p, const char *path) {
    if (!p || !path) return attn__error(ATTN_EINVAL, "pairs_write: NULL argument");
    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    for (int i = 0; i < p->n; i++) {
        const attn_pair *q = &p->pair[i];
        int bad = fputs(q->side[0], f) == EOF || fputc('\t', f) == EOF || fputs(q->side[1], f) == EOF;
        if (!bad && q->extra[0]) bad = fputc('\t', f) == EOF || fputs(q->extra, f) == EOF;
        if (!bad) bad = fputc('\n', f) == EOF;
        if (bad) {
            return attn__atomic_fail(f, tmp, path);
        }
    }
    return attn__atomic_commit(f, tmp, path);
}

int attn_pairs_split_save(const attn_pairs *all, uint64_t seed, double frac_valid, double frac_test, const char *dir) {
    if (!all || !dir) return attn__error(ATTN_EINVAL, "pairs_split_save: NULL argument");
    attn_pairs part[3];
    memset(part, 0, sizeof part);
    int st = attn_pairs_split(all, seed, frac_valid, frac_test, &part[0], &part[1], &part[2]);
    for (int k = 0; k < 3 && !st; k++) {
        char path[ATTN__TMP_PATH_MAX];
        st = attn__split_path(path, dir, k);
        if (!st) st = attn_pairs_write(&part[k], path);
    }
    for (int k = 0; k < 3; k++) attn_pairs_free(&part[k]);
    return st;
}
