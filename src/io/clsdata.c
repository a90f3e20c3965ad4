/* Labelled texts for the classifiers (attn/clsdata.h): the CSV/TSV reader, with malformed
 * records counted and skipped, the stratified split and the TSV writer.
 * Not here: tokenisation (tokenize.c), features and batches (the models' and trainer's job).
 *
 * The reader parses the file in place: unquoting and cleaning a field only ever shorten it,
 * so each field is rewritten over its own bytes in the buffer the file was read into.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/clsdata.h"
#include "core/internal.h"
#include "io/atomic.h"
#include "io/common.h"

const char *attn_cls_problem_name(attn_cls_problem p) {
    switch (p) {
    case ATTN_CLS_OK: return "ok";
    case ATTN_CLS_FIELD_COUNT: return "wrong number of fields";
    case ATTN_CLS_EMPTY_LABEL: return "empty label";
    case ATTN_CLS_EMPTY_TEXT: return "empty text";
    case ATTN_CLS_BAD_UTF8: return "invalid UTF-8";
    case ATTN_CLS_NUL_BYTE: return "NUL byte";
    }
    return "unknown problem";
}

static void free_rows(attn_cls_data *d) {
    for (int i = 0; i < d->n; i++) attn_free(d->ex[i].text);
    attn_free(d->ex);
    for (int i = 0; i < d->n_labels; i++) attn_free(d->label_name[i]);
    attn_free(d->label_name);
    d->ex = NULL, d->n = 0, d->cap_ = 0, d->label_name = NULL, d->n_labels = 0;
}

void attn_cls_free(attn_cls_data *d) {
    if (!d) return;
    free_rows(d);
    memset(d, 0, sizeof *d);
}

/* Appends an example with a copy of text[0, len). */
static int push(attn_cls_data *d, const char *text, size_t len, int label, int line) {
    if (d->n == d->cap_) {
        if (d->cap_ >= (1 << 29)) return attn__error(ATTN_ENOMEM, "cls: too many rows");
        int cap = d->cap_ ? 2 * d->cap_ : 256;
        attn_cls_example *a = attn_malloc((size_t)cap * sizeof *a);
        if (!a) return ATTN_ENOMEM;
        if (d->n) memcpy(a, d->ex, (size_t)d->n * sizeof *a);
        attn_free(d->ex);
        d->ex = a;
        d->cap_ = cap;
    }
    char *t = attn__strndup(text, len);
    if (!t) return ATTN_ENOMEM;
    d->ex[d->n++] = (attn_cls_example){t, label, line};
    return ATTN_OK;
}

/* ---- Reading --------------------------------------------------------------------------- */

/* A cursor over the file's bytes p[0, n), which it rewrites in place. */
typedef struct {
    char *p;
    size_t n, pos;
    char sep;   /* ',' or '\t' */
    int quotes; /* 1 for CSV: a field may be quoted */
    int line;   /* the line of p[pos], 1-based */
} cursor;

/* Reads the field at c->pos into p[*start, *start + *len) (unquoted, otherwise as written) and
 * moves past its separator; *last is 1 if the field ended its record (a line break or the end
 * of the file). ATTN_EFORMAT for a quoted field that runs to the end of the file. */
static int next_field(cursor *c, const char *path, size_t *start, size_t *len, int *last) {
    char *p = c->p;
    size_t w = c->pos;
    int quoted = c->quotes && c->pos < c->n && p[c->pos] == '"', first_line = c->line;
    *start = w;
    *last = 0;
    if (quoted) c->pos++;
    for (;;) {
        if (c->pos == c->n) {
            if (quoted)
                return attn__error(ATTN_EFORMAT, "%s: line %d: a quoted field has no closing quote (it runs to the end of the file)",
                                   path, first_line);
            *last = 1;
            break;
        }
        char ch = p[c->pos];
        if (quoted) {
            if (ch == '"') {
                c->pos++;
                if (c->pos < c->n && p[c->pos] == '"') p[w++] = p[c->pos++]; /* "" is one " */
                else quoted = 0;
                continue;
            }
        } else if (ch == c->sep) {
            c->pos++;
            break;
        } else if (ch == '\n' || (ch == '\r' && c->pos + 1 < c->n && p[c->pos + 1] == '\n')) {
            c->pos += ch == '\r' ? 2 : 1;
            c->line++;
            *last = 1;
            break;
        }
        if (ch == '\n') c->line++;
        p[w++] = p[c->pos++];
    }
    *len = w - *start;
    return ATTN_OK;
}

/* Cleans a valid UTF-8 field in place: removes U+FEFF, turns tab, CR and LF into spaces.
 * Returns the new length. */
static size_t clean(char *s, size_t n) {
    size_t r = 0, w = 0;
    uint32_t cp;
    while (r < n) {
        size_t at = r;
        attn_utf8_next(s, n, &r, &cp);
        if (cp == 0xFEFF) continue;
        if (cp == '\t' || cp == '\r' || cp == '\n') s[w++] = ' ';
        else
            while (at < r) s[w++] = s[at++];
    }
    return w;
}

static int has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), m = strlen(ext);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++) {
        char a = path[n - m + i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (a != ext[i]) return 0;
    }
    return 1;
}

static int field_is(const char *s, size_t n, const char *name) { return strlen(name) == n && memcmp(s, name, n) == 0; }

/* Reads the header: the number of fields and the indices of the label and text columns. */
static int read_header(cursor *c, const char *path, const char *label_col, int *nfields, int *li, int *ti) {
    static const char *const text_names[] = {"sentence", "content", "review", "text"};
    int last = 0, k = 0, st = ATTN_OK;
    *li = *ti = -1;
    while (!last && !st) {
        size_t s, n;
        st = next_field(c, path, &s, &n, &last);
        if (st) break;
        if (attn_utf8_valid(c->p + s, n, NULL)) n = clean(c->p + s, n);
        for (int j = 0; j < 4 && *ti < 0; j++)
            if (field_is(c->p + s, n, text_names[j])) *ti = k;
        if (*li < 0 && field_is(c->p + s, n, label_col)) *li = k;
        if (k++ == 1 << 20) st = attn__error(ATTN_EFORMAT, "%s: more than 2^20 columns in the header", path);
    }
    if (st) return st;
    *nfields = k;
    if (*ti < 0) return attn__error(ATTN_EFORMAT, "%s: no text column (sentence, content, review or text) in the header", path);
    if (*li < 0) return attn__error(ATTN_EFORMAT, "%s: no label column '%s' in the header", path, label_col);
    if (*li == *ti) return attn__error(ATTN_EINVAL, "%s: the label column '%s' is the text column", path, label_col);
    return ATTN_OK;
}

/* Reads one record; on success *why says whether it is a row, with its label and text
 * spans (cleaned), or why it is skipped. */
static int read_record(cursor *c, const char *path, int nfields, int li, int ti, size_t span[2][2],
                       attn_cls_problem *why) {
    int last = 0, k = 0;
    *why = ATTN_CLS_OK;
    while (!last) {
        size_t s, n;
        int st = next_field(c, path, &s, &n, &last);
        if (st) return st;
        if (*why == ATTN_CLS_OK && memchr(c->p + s, '\0', n)) *why = ATTN_CLS_NUL_BYTE;
        if (*why == ATTN_CLS_OK && !attn_utf8_valid(c->p + s, n, NULL)) *why = ATTN_CLS_BAD_UTF8;
        if (*why == ATTN_CLS_OK && (k == li || k == ti)) {
            n = clean(c->p + s, n);
            span[k == ti][0] = s, span[k == ti][1] = n;
        }
        if (k < nfields) k++; /* a count past nfields is wrong whatever it is */
        else *why = ATTN_CLS_FIELD_COUNT;
    }
    if (k != nfields) *why = ATTN_CLS_FIELD_COUNT;
    if (*why == ATTN_CLS_OK && attn__blank(c->p + span[0][0], span[0][1])) *why = ATTN_CLS_EMPTY_LABEL;
    if (*why == ATTN_CLS_OK && attn__blank(c->p + span[1][0], span[1][1])) *why = ATTN_CLS_EMPTY_TEXT;
    return ATTN_OK;
}

static int cmp_str(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp(x, y); /* compares as unsigned bytes, as memcmp */
}

/* Gives d the labels interned in `labels` (ids in order of first appearance, which the rows
 * hold) as sorted names, and renumbers the rows. */
static int sort_labels(attn_cls_data *d, const attn_counter *labels) {
    int m = attn_counter_size(labels);
    int *id = attn_malloc((size_t)(m ? m : 1) * sizeof *id);
    d->label_name = attn_malloc((size_t)(m ? m : 1) * sizeof *d->label_name);
    if (!id || !d->label_name) {
        attn_free(id);
        return ATTN_ENOMEM;
    }
    for (int i = 0; i < m; i++) {
        d->label_name[i] = attn__strdup(attn_counter_token(labels, i));
        if (!d->label_name[i]) {
            attn_free(id);
            return ATTN_ENOMEM;
        }
        d->n_labels++;
    }
    qsort(d->label_name, (size_t)m, sizeof *d->label_name, cmp_str);
    for (int i = 0; i < m; i++) id[attn_counter_find(labels, d->label_name[i], strlen(d->label_name[i]))] = i;
    for (int i = 0; i < d->n; i++) d->ex[i].label = id[d->ex[i].label];
    attn_free(id);
    return ATTN_OK;
}

static int parse(char *data, size_t size, const char *path, const char *label_col, attn_cls_data *out,
                 attn_counter *labels) {
    cursor c = {data, size, 0, has_ext(path, ".csv") ? ',' : '\t', has_ext(path, ".csv"), 1};
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) c.pos = 3; /* byte-order mark */
    if (c.pos == size) return attn__error(ATTN_EFORMAT, "%s: the file is empty (no header)", path);
    int nfields, li, ti;
    int st = read_header(&c, path, label_col, &nfields, &li, &ti);
    while (!st && c.pos < size) {
        int line = c.line;
        size_t span[2][2] = {{0, 0}, {0, 0}};
        attn_cls_problem why;
        st = read_record(&c, path, nfields, li, ti, span, &why);
        if (st) break;
        out->rows++;
        if (why != ATTN_CLS_OK) {
            if (out->n_reported < ATTN_CLS_REPORT) {
                out->bad_line[out->n_reported] = line;
                out->bad_why[out->n_reported++] = why;
            }
            out->skipped++;
            continue;
        }
        int label;
        st = attn_counter_add(labels, data + span[0][0], span[0][1], 1, &label);
        if (!st) st = push(out, data + span[1][0], span[1][1], label, line);
    }
    if (!st) st = sort_labels(out, labels);
    if (!st && out->n == 0) {
        if (out->skipped)
            return attn__error(ATTN_EFORMAT, "%s: no valid row: all %d rows are malformed (line %d: %s)", path,
                               out->skipped, out->bad_line[0], attn_cls_problem_name(out->bad_why[0]));
        return attn__error(ATTN_EFORMAT, "%s: no valid row: the file has a header only", path);
    }
    return st;
}

int attn_cls_read(const char *path, const char *label_column, attn_cls_data *out) {
    if (!path || !out) return attn__error(ATTN_EINVAL, "cls_read: NULL argument");
    attn_cls_free(out);
    if (!has_ext(path, ".csv") && !has_ext(path, ".tsv"))
        return attn__error(ATTN_EINVAL, "%s: not a .csv or .tsv file (the extension tells the format)", path);
    if (!label_column) label_column = "label";
    char *data;
    size_t size;
    /* Under 2 GiB, so that line and row numbers fit an int. */
    int st = attn__read_file(path, (size_t)INT_MAX - 1, &data, &size);
    if (st) return st;
    attn_counter *labels = NULL;
    st = attn_counter_new(&labels);
    if (!st) st = parse(data, size, path, label_column, out, labels);
    attn_counter_free(labels);
    attn_free(data);
    if (st) free_rows(out); /* keep the counts for the caller's message */
    return st;
}

char *attn_cls_report(const attn_cls_data *d, char *buf, size_t cap) {
    const char *why[ATTN_CLS_REPORT];
    int n = d ? d->n_reported : 0;
    for (int i = 0; i < n; i++) why[i] = attn_cls_problem_name(d->bad_why[i]);
    return attn__skip_report(buf, cap, "row", d ? d->skipped : 0, n, d ? d->bad_line : NULL, why);
}

int attn_cls_label_id(const attn_cls_data *d, const char *name) {
    if (!d || !name) return -1;
    for (int i = 0; i < d->n_labels; i++)
        if (!strcmp(d->label_name[i], name)) return i;
    return -1;
}

/* ---- Splitting and writing ----------------------------------------------------------------- */

/* Replaces d's labels by copies of src's, with no examples. */
static int copy_labels(attn_cls_data *d, const attn_cls_data *src) {
    attn_cls_free(d);
    if (!src->n_labels) return ATTN_OK;
    d->label_name = attn_malloc((size_t)src->n_labels * sizeof *d->label_name);
    if (!d->label_name) return ATTN_ENOMEM;
    for (; d->n_labels < src->n_labels; d->n_labels++) {
        d->label_name[d->n_labels] = attn__strdup(src->label_name[d->n_labels]);
        if (!d->label_name[d->n_labels]) return ATTN_ENOMEM;
    }
    return ATTN_OK;
}

/* Which part (0 train, 1 valid, 2 test) each example of `all` goes to, into part[0, all->n). */
static int assign_parts(const attn_cls_data *all, uint64_t seed, double frac_valid, double frac_test, unsigned char *part) {
    int n = all->n;
    int *idx = attn_malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx) return ATTN_ENOMEM;
    attn_rng rng;
    attn_rng_seed(&rng, seed);
    for (int label = 0; label < all->n_labels; label++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (all->ex[i].label == label) idx[m++] = i;
        attn__shuffle(idx, m, &rng);
        int m_valid = (int)floor(frac_valid * m + 0.5);
        int m_test = (int)floor(frac_test * m + 0.5);
        if (m_valid > m) m_valid = m;
        if (m_valid + m_test > m) m_test = m - m_valid;
        /* The first m_valid shuffled examples go to valid, the next m_test to test. */
        for (int i = 0; i < m; i++) part[idx[i]] = i < m_valid ? 1 : i < m_valid + m_test ? 2 : 0;
    }
    attn_free(idx);
    return ATTN_OK;
}

int attn_cls_split(const attn_cls_data *all, uint64_t seed, double frac_valid, double frac_test, attn_cls_data *train,
                   attn_cls_data *valid, attn_cls_data *test) {
    if (!all) return attn__error(ATTN_EINVAL, "cls_split: NULL input");
    if ((train && train == all) || (valid && valid == all) || (test && test == all) ||
        (train && (train == valid || train == test)) || (valid && valid == test))
        return attn__error(ATTN_EINVAL, "cls_split: the outputs must be distinct from each other and the input");
    if (!(frac_valid >= 0 && frac_valid <= 1 && frac_test >= 0 && frac_test <= 1 && frac_valid + frac_test <= 1.0))
        return attn__error(ATTN_EINVAL, "cls_split: fractions %g (valid) and %g (test) must be in [0, 1] and sum to <= 1",
                           frac_valid, frac_test);
    for (int i = 0; i < all->n; i++)
        if (all->ex[i].label < 0 || all->ex[i].label >= all->n_labels)
            return attn__error(ATTN_EINVAL, "cls_split: example %d has label %d, outside [0, %d)", i, all->ex[i].label,
                               all->n_labels);
    unsigned char *part = attn_malloc((size_t)(all->n ? all->n : 1));
    if (!part) return ATTN_ENOMEM;
    attn_cls_data *dst[3] = {train, valid, test};
    int st = assign_parts(all, seed, frac_valid, frac_test, part);
    for (int k = 0; k < 3 && !st; k++)
        if (dst[k]) st = copy_labels(dst[k], all);
    for (int i = 0; i < all->n && !st; i++) {
        const attn_cls_example *e = &all->ex[i];
        if (dst[part[i]]) st = push(dst[part[i]], e->text, strlen(e->text), e->label, e->line);
    }
    attn_free(part);
    if (st)
        for (int k = 0; k < 3; k++) attn_cls_free(dst[k]);
    return st;
}

int attn_cls_write(const attn_cls_data *d, const char *path) {
    if (!d || !path) return attn__error(ATTN_EINVAL, "cls_write: NULL argument");
    for (int i = 0; i < d->n; i++)
        if (d->ex[i].label < 0 || d->ex[i].label >= d->n_labels || strpbrk(d->ex[i].text, "\t\r\n"))
            return attn__error(ATTN_EINVAL, "cls_write: example %d has a label outside [0, %d) or a tab or line break", i,
                               d->n_labels);
    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    int bad = fputs("label\ttext\n", f) == EOF;
    for (int i = 0; i < d->n && !bad; i++)
        bad = fputs(d->label_name[d->ex[i].label], f) == EOF || fputc('\t', f) == EOF || fputs(d->ex[i].text, f) == EOF ||
              fputc('\n', f) == EOF;
    if (bad) {
        return attn__atomic_fail(f, tmp, path);
    }
    return attn__atomic_commit(f, tmp, path);
}

int attn_cls_split_save(const attn_cls_data *all, uint64_t seed, double frac_valid, double frac_test, const char *dir) {
    if (!all || !dir) return attn__error(ATTN_EINVAL, "cls_split_save: NULL argument");
    attn_cls_data part[3];
    memset(part, 0, sizeof part);
    int st = attn_cls_split(all, seed, frac_valid, frac_test, &part[0], &part[1], &part[2]);
    for (int k = 0; k < 3 && !st; k++) {
        char path[ATTN__TMP_PATH_MAX];
        st = attn__split_path(path, dir, k);
        if (!st) st = attn_cls_write(&part[k], path);
    }
    for (int k = 0; k < 3; k++) attn_cls_free(&part[k]);
    return st;
}
