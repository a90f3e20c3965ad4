/* attn/clsdata.h: labelled texts for the text classifiers: a reader of the CSV and TSV files
 * that classification data sets come in (SST-2, ChnSentiCorp, waimai_10k,
 * online_shopping_10_cats), a seeded stratified split into train/valid/test, and a writer.
 * Not here: tokenisation (attn/text.h), features, models.
 *
 * The file format, told by the name's extension (ASCII case ignored):
 *  - ".csv": RFC 4180: fields separated by ',', records by "\n" or "\r\n"; a field that
 *    starts with '"' is quoted and may hold ',', line breaks and '""' (one '"'); characters
 *    after its closing quote are kept as they are, as are quotes inside an unquoted field
 *    (Python's csv module does the same).
 *  - ".tsv": fields separated by tabs, records by "\n" or "\r\n"; no quoting.
 *  - The first record is the header. The text column is the first one named "sentence",
 *    "content", "review" or "text"; the label column is the first one named "label", or the
 *    name the caller gives (e.g. "cat"). Other columns are ignored.
 *  - A UTF-8 byte-order mark at the start of the file is dropped; U+FEFF anywhere inside a
 *    field is removed; a tab, carriage return or line feed inside a field becomes a space (so
 *    that every text can be written back one per line, see attn_cls_write).
 *  - A record is skipped, counted and reported (attn_cls_problem) if it has another number of
 *    fields than the header (an empty line included), a NUL byte or invalid UTF-8 in any
 *    field, an empty label or a text that is empty or white space only.
 *  - A quoted field that has no closing quote before the end of the file is an error
 *    (ATTN_EFORMAT) naming the line where the field began: everything after it would be one
 *    field, so no row after it can be trusted.
 *
 * Labels are kept as written ("0", "1", "书籍") and numbered in sorted order of their UTF-8
 * bytes (as memcmp; a prefix first), so the ids do not depend on the order of the rows. The
 * ids belong to one attn_cls_data: map by name (attn_cls_label_id) to use another's.
 * Calls return ATTN_OK or a negative ATTN_E* status and leave a message (attn_last_error()).
 */
#ifndef ATTN_CLSDATA_H
#define ATTN_CLSDATA_H

#include <stddef.h>
#include <stdint.h>

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* One labelled text. */
typedef struct {
    char *text; /* NUL-terminated UTF-8, not blank, without tab, CR, LF or U+FEFF */
    int label;  /* in [0, n_labels): the index of its name in label_name */
    int line;   /* 1-based line where its record starts in the file it was read from */
} attn_cls_example;

/* Why a record was skipped. */
typedef enum {
    ATTN_CLS_OK = 0,
    ATTN_CLS_FIELD_COUNT, /* not as many fields as the header (an empty line included) */
    ATTN_CLS_EMPTY_LABEL, /* the label is empty or white space only */
    ATTN_CLS_EMPTY_TEXT,  /* the text is empty or white space only (U+FEFF and U+200B count as space) */
    ATTN_CLS_BAD_UTF8,    /* invalid UTF-8 in a field */
    ATTN_CLS_NUL_BYTE     /* a NUL byte in a field */
} attn_cls_problem;
const char *attn_cls_problem_name(attn_cls_problem p); /* "wrong number of fields", ... */

#define ATTN_CLS_REPORT 8

/* A labelled data set with what reading left out. Start zeroed; free with attn_cls_free. */
typedef struct {
    attn_cls_example *ex;
    int n;
    char **label_name;  /* n_labels names, sorted, distinct, non-empty, without tab or line break */
    int n_labels;
    int rows;           /* records read after the header: n + skipped */
    int skipped;        /* records skipped as malformed */
    int n_reported;     /* min(skipped, ATTN_CLS_REPORT) */
    int bad_line[ATTN_CLS_REPORT];             /* the first skipped records' lines */
    attn_cls_problem bad_why[ATTN_CLS_REPORT]; /* and why */
    int cap_;           /* private */
} attn_cls_data;

void attn_cls_free(attn_cls_data *d); /* frees and zeroes; accepts NULL */

/* Reads a CSV or TSV file (see the top) into *out, replacing its contents. label_column:
 * the label column's name, NULL for "label". ATTN_EIO if the file cannot be read,
 * ATTN_EINVAL for an extension other than .csv and .tsv, ATTN_EFORMAT for an empty file, a
 * file of 2 GiB or more, a header without the text or label column, an unbalanced quote, or
 * no valid row (the message gives the count and the first skipped line). On failure *out
 * keeps the counts of skipped records but no rows. */
int attn_cls_read(const char *path, const char *label_column, attn_cls_data *out);

/* One line for people about the skipped records, e.g. "2 malformed rows skipped (line 4:
 * empty text; line 9: wrong number of fields)", or "" if none; into buf (capacity cap, always
 * NUL-terminated, cut if too long). Returns buf. */
char *attn_cls_report(const attn_cls_data *d, char *buf, size_t cap);

/* The id of the label spelled `name`, or -1. */
int attn_cls_label_id(const attn_cls_data *d, const char *name);

/* A stratified split of `all` into train, valid and test, the same on every run and platform
 * for a seed: for each label in id order, the indices of its examples are shuffled
 * (Fisher-Yates driven by one attn_rng seeded with `seed`, unbiased bounded integers, as
 * attn_pairs_split); of its m examples floor(frac_valid * m + 0.5) go to valid and
 * floor(frac_test * m + 0.5) to test (less if the two would exceed m), the rest to train. So
 * each part has the proportions of `all` up to rounding per label. Fractions in [0, 1] with
 * frac_valid + frac_test <= 1 (the defaults: ATTN_SPLIT_VALID and ATTN_SPLIT_TEST of
 * attn/text.h). Each part keeps the file's order, the line numbers and all of the label
 * names (so ids agree across the parts). Outputs (zeroed or earlier results, replaced) may
 * be NULL; no two may be the same struct, nor `all`. */
int attn_cls_split(const attn_cls_data *all, uint64_t seed, double frac_valid, double frac_test,
                   attn_cls_data *train, attn_cls_data *valid, attn_cls_data *test);

/* Writes a TSV file, atomically: the header "label<TAB>text", then "LABEL<TAB>TEXT\n" per
 * example with the label's name. attn_cls_read gives the same texts and label names back
 * (with new line numbers; a label absent from d's examples is absent from what is read). */
int attn_cls_write(const attn_cls_data *d, const char *path);

/* attn_cls_split, then the parts written to DIR/train.tsv, DIR/valid.tsv and DIR/test.tsv
 * (each atomic; the directory must exist). */
int attn_cls_split_save(const attn_cls_data *all, uint64_t seed, double frac_valid, double frac_test,
                        const char *dir);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
