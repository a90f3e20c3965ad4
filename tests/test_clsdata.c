/* The classification data sets (attn/clsdata.h): each behaviour of the CSV/TSV reader on the
 * hand-written fixtures of data/cls/ (quotes, doubled quotes, line breaks inside quotes,
 * CRLF, byte-order marks, empty and malformed rows, invalid UTF-8, an unbalanced quote), the
 * stratified split (proportions, determinism), the TSV round trip, and random corruptions.
 * Run as `test_clsdata real` (its own ctest test): the row counts of the real files of
 * ../shared/data/README.md ($ATTN_DATA_DIR), exit 77 (a skip) when they are not there. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/clsdata.h"
#include "attn/text.h"
#include "testutil.h"

#define DATA "data/cls/"

/* Checks that d holds exactly these examples (label names and texts) in this order. */
static void expect(const char *what, const attn_cls_data *d, int n, const char *const *label, const char *const *text,
                   const int *line) {
    CHECK(d->n == n, "%s: %d examples, want %d", what, d->n, n);
    for (int i = 0; i < n && i < d->n; i++) {
        const attn_cls_example *e = &d->ex[i];
        CHECK(e->label >= 0 && e->label < d->n_labels && !strcmp(d->label_name[e->label], label[i]),
              "%s: example %d: label %d", what, i, e->label);
        CHECK(!strcmp(e->text, text[i]), "%s: example %d: text \"%s\", want \"%s\"", what, i, e->text, text[i]);
        if (line) CHECK(e->line == line[i], "%s: example %d: line %d, want %d", what, i, e->line, line[i]);
    }
}

/* The invariants every successful read keeps, whatever the input. */
static void check_invariants(const char *what, const attn_cls_data *d) {
    CHECK(d->n + d->skipped == d->rows && d->n > 0, "%s: counts %d + %d != %d", what, d->n, d->skipped, d->rows);
    CHECK(d->n_reported == (d->skipped < ATTN_CLS_REPORT ? d->skipped : ATTN_CLS_REPORT), "%s: reported", what);
    for (int i = 1; i < d->n_labels; i++)
        CHECK(strcmp(d->label_name[i - 1], d->label_name[i]) < 0, "%s: labels not sorted and distinct", what);
    for (int i = 0; i < d->n; i++) {
        const char *t = d->ex[i].text;
        size_t len = strlen(t);
        CHECK(d->ex[i].label >= 0 && d->ex[i].label < d->n_labels, "%s: label of %d", what, i);
        CHECK(len > 0 && attn_utf8_valid(t, len, NULL) && !strpbrk(t, "\t\r\n") && !strstr(t, "\xEF\xBB\xBF"),
              "%s: text %d is not clean", what, i);
    }
}

static void test_fixtures(void) {
    attn_cls_data d = {0};
    char rep[512];

    /* Quotes: commas, doubled quotes and a line break inside them; quotes in unquoted text. */
    CHECK(attn_cls_read(DATA "quotes.csv", NULL, &d) == ATTN_OK, "quotes.csv: %s", attn_last_error());
    expect("quotes.csv", &d, 7, (const char *[]){"1", "0", "1", "0", "1", "0", "1"},
           (const char *[]){"plain text", "quoted, with comma", "doubled \"quotes\" inside", "first line second line",
                            "unquoted \"quote\" inside", "closedthen more", "\""},
           (const int[]){2, 3, 4, 5, 7, 8, 9});
    CHECK(d.rows == 8 && d.skipped == 1 && d.bad_line[0] == 10 && d.bad_why[0] == ATTN_CLS_EMPTY_TEXT, "quotes.csv: skips");
    CHECK(d.n_labels == 2 && !strcmp(d.label_name[0], "0") && !strcmp(d.label_name[1], "1"), "quotes.csv: labels");
    check_invariants("quotes.csv", &d);

    /* CRLF line ends, CRLF inside quotes (each byte a space), no line break at the end. */
    CHECK(attn_cls_read(DATA "crlf.csv", NULL, &d) == ATTN_OK, "crlf.csv: %s", attn_last_error());
    expect("crlf.csv", &d, 3, (const char *[]){"1", "0", "1"}, (const char *[]){"a  b", "c", "d,e"}, (const int[]){2, 4, 5});
    CHECK(d.rows == 3 && d.skipped == 0 && !attn_cls_report(&d, rep, sizeof rep)[0], "crlf.csv: nothing skipped");

    /* Every kind of malformed row, and a byte-order mark at the start and inside fields. */
    CHECK(attn_cls_read(DATA "malformed.csv", NULL, &d) == ATTN_OK, "malformed.csv: %s", attn_last_error());
    expect("malformed.csv", &d, 4, (const char *[]){"1", "1", "书籍", "0"},
           (const char *[]){"good", "stray mark", "中文 ok", "quoted, fine"}, (const int[]){2, 9, 13, 14});
    static const attn_cls_problem why[] = {ATTN_CLS_EMPTY_TEXT,  ATTN_CLS_EMPTY_LABEL, ATTN_CLS_FIELD_COUNT,
                                           ATTN_CLS_FIELD_COUNT, ATTN_CLS_FIELD_COUNT, ATTN_CLS_BAD_UTF8,
                                           ATTN_CLS_EMPTY_TEXT,  ATTN_CLS_EMPTY_TEXT};
    CHECK(d.rows == 13 && d.skipped == 9 && d.n_reported == ATTN_CLS_REPORT, "malformed.csv: %d rows, %d skipped", d.rows,
          d.skipped);
    static const int bad_line[] = {3, 4, 5, 6, 7, 8, 10, 11}; /* line 12 (a NUL byte) is not reported */
    for (int i = 0; i < ATTN_CLS_REPORT; i++)
        CHECK(d.bad_line[i] == bad_line[i] && d.bad_why[i] == why[i], "malformed.csv: report %d: line %d, %s", i, d.bad_line[i],
              attn_cls_problem_name(d.bad_why[i]));
    CHECK(d.n_labels == 3 && attn_cls_label_id(&d, "0") == 0 && attn_cls_label_id(&d, "1") == 1 &&
              attn_cls_label_id(&d, "书籍") == 2 && attn_cls_label_id(&d, "2") == -1,
          "malformed.csv: labels sorted by bytes");
    attn_cls_report(&d, rep, sizeof rep);
    CHECK(!strcmp(rep, "9 malformed rows skipped (line 3: empty text; line 4: empty label; line 5: wrong number of "
                       "fields; line 6: wrong number of fields; line 7: wrong number of fields; line 8: invalid UTF-8; "
                       "line 10: empty text; line 11: empty text; ...)"),
          "report: %s", rep);
    CHECK(strlen(attn_cls_report(&d, rep, 20)) == 19, "a short report buffer is cut");
    check_invariants("malformed.csv", &d);
    tu_write_file(tu_path("nul.csv"), "label,text\n1,a\0b\n0,ok\n", 22);
    CHECK(attn_cls_read(tu_path("nul.csv"), NULL, &d) == ATTN_OK && d.n == 1 && d.skipped == 1 && d.bad_line[0] == 2 &&
              d.bad_why[0] == ATTN_CLS_NUL_BYTE,
          "nul.csv: %s", attn_last_error());

    /* An unbalanced quote is an error naming the line where the field began. */
    CHECK(attn_cls_read(DATA "unbalanced.csv", NULL, &d) == ATTN_EFORMAT && tu_err_has("line 3") &&
              tu_err_has("closing quote") && d.n == 0 && d.ex == NULL,
          "unbalanced.csv: %s", attn_last_error());

    /* Another label column; the text column still found. */
    CHECK(attn_cls_read(DATA "three.csv", "cat", &d) == ATTN_OK, "three.csv cat: %s", attn_last_error());
    expect("three.csv cat", &d, 4, (const char *[]){"书籍", "水果", "书籍", "手机"},
           (const char *[]){"好书", "不新鲜,难吃", "一般", "不错"}, NULL);
    CHECK(d.n_labels == 3 && !strcmp(d.label_name[0], "书籍") && !strcmp(d.label_name[1], "手机") &&
              !strcmp(d.label_name[2], "水果"),
          "three.csv: categories in byte order");
    CHECK(attn_cls_read(DATA "three.csv", NULL, &d) == ATTN_OK && d.n_labels == 2 && d.ex[1].label == 0, "three.csv label");
    CHECK(attn_cls_read(DATA "three.csv", "nope", &d) == ATTN_EFORMAT && tu_err_has("no label column 'nope'"), "no column");
    CHECK(attn_cls_read(DATA "three.csv", "review", &d) == ATTN_EINVAL, "label column = text column");

    /* TSV: tabs only, quotes are text, CRLF line ends. */
    CHECK(attn_cls_read(DATA "sst.tsv", NULL, &d) == ATTN_OK, "sst.tsv: %s", attn_last_error());
    expect("sst.tsv", &d, 3, (const char *[]){"0", "1", "0"}, (const char *[]){"it 's \"quoted\" , not", "a \"b", "last"},
           (const int[]){2, 3, 5});
    CHECK(d.skipped == 1 && d.bad_line[0] == 4 && d.bad_why[0] == ATTN_CLS_FIELD_COUNT, "sst.tsv: skip");

    /* Files that hold no row, and names that tell no format. */
    static const struct {
        const char *name, *bytes, *msg;
        int st;
    } bad[] = {
        {"empty.csv", "", "empty", ATTN_EFORMAT},
        {"bom.csv", "\xEF\xBB\xBF", "empty", ATTN_EFORMAT},
        {"header.csv", "label,review\n", "header only", ATTN_EFORMAT},
        {"notext.csv", "label,body\n1,x\n", "no text column", ATTN_EFORMAT},
        {"allbad.TSV", "label\ttext\n1\t \n\n", "all 2 rows are malformed (line 2: empty text)", ATTN_EFORMAT},
        {"data.txt", "label\ttext\n1\tx\n", "not a .csv or .tsv", ATTN_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = tu_path(bad[i].name);
        tu_write_file(p, bad[i].bytes, strlen(bad[i].bytes));
        int st = attn_cls_read(p, NULL, &d);
        CHECK(st == bad[i].st && tu_err_has(bad[i].msg), "%s: status %d: %s", bad[i].name, st, attn_last_error());
    }
    CHECK(attn_cls_read(tu_path("missing.csv"), NULL, &d) == ATTN_EIO, "a missing file");
    attn_cls_free(&d);
    attn_cls_free(NULL);
}

/* A data set of 1,000 rows with labels in proportions 6:3:1, written as CSV and read back. */
static void make_set(attn_cls_data *d) {
    char *buf = malloc(40000);
    size_t n = (size_t)sprintf(buf, "review,label\n");
    for (int i = 0; i < 1000; i++) n += (size_t)sprintf(buf + n, "\"text %d, number %d\",%s\n", i, i, i % 10 < 6 ? "pos" : i % 10 < 9 ? "neg" : "mixed");
    tu_write_file(tu_path("set.csv"), buf, n);
    free(buf);
    CHECK(attn_cls_read(tu_path("set.csv"), NULL, d) == ATTN_OK && d->n == 1000, "set.csv: %s", attn_last_error());
}

/* The number of examples of each label (up to 8) of d. */
static void count_labels(const attn_cls_data *d, int count[8]) {
    memset(count, 0, 8 * sizeof *count);
    for (int i = 0; i < d->n; i++) count[d->ex[i].label & 7]++;
}

static int same_data(const attn_cls_data *a, const attn_cls_data *b, int lines) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->ex[i].text, b->ex[i].text) || strcmp(a->label_name[a->ex[i].label], b->label_name[b->ex[i].label]) ||
            (lines && a->ex[i].line != b->ex[i].line))
            return 0;
    return 1;
}

static void test_split(void) {
    attn_cls_data all = {0}, part[3] = {{0}}, again[3] = {{0}}, other = {0};
    make_set(&all);
    CHECK(all.n_labels == 3 && attn_cls_label_id(&all, "mixed") == 0 && attn_cls_label_id(&all, "neg") == 1 &&
              attn_cls_label_id(&all, "pos") == 2,
          "set labels");
    CHECK(attn_cls_split(&all, 7, 0.1, 0.1, &part[0], &part[1], &part[2]) == ATTN_OK, "split: %s", attn_last_error());
    /* Each label's examples: 100 mixed, 300 neg, 600 pos; 10% of each to valid and test. */
    static const int want[3][3] = {{80, 240, 480}, {10, 30, 60}, {10, 30, 60}};
    int seen[1001] = {0};
    for (int k = 0; k < 3; k++) {
        int c[8];
        count_labels(&part[k], c);
        CHECK(c[0] == want[k][0] && c[1] == want[k][1] && c[2] == want[k][2], "part %d: %d %d %d", k, c[0], c[1], c[2]);
        CHECK(part[k].n_labels == 3, "part %d keeps every label name", k);
        for (int i = 0; i < part[k].n; i++) {
            seen[part[k].ex[i].line - 1]++;
            CHECK(i == 0 || part[k].ex[i].line > part[k].ex[i - 1].line, "part %d keeps the file's order", k);
        }
    }
    int once = 1;
    for (int i = 1; i <= 1000; i++) once &= seen[i] == 1;
    CHECK(once, "every example in exactly one part");

    /* The same seed gives the same split, another seed another one. */
    CHECK(attn_cls_split(&all, 7, 0.1, 0.1, &again[0], &again[1], &again[2]) == ATTN_OK, "split again");
    for (int k = 0; k < 3; k++) CHECK(same_data(&part[k], &again[k], 1), "seed 7 twice: part %d differs", k);
    CHECK(attn_cls_split(&all, 8, 0.1, 0.1, NULL, &other, NULL) == ATTN_OK && other.n == 100 && !same_data(&other, &part[1], 1),
          "seed 8 gives another valid set");
    /* Uneven sizes round per label: 0.25 of 100, 300, 600. */
    CHECK(attn_cls_split(&all, 1, 0.25, 0, NULL, &other, NULL) == ATTN_OK && other.n == 25 + 75 + 150, "0.25");
    CHECK(attn_cls_split(&all, 1, 0.6, 0.6, NULL, &other, NULL) == ATTN_EINVAL, "fractions over 1");
    CHECK(attn_cls_split(&all, 1, 0.1, 0.1, &all, NULL, NULL) == ATTN_EINVAL, "output = input");

    /* Written once, read back identically: the split files and a file full of quotes. */
    CHECK(attn_cls_split_save(&all, 7, 0.1, 0.1, tu_scratch_dir()) == ATTN_OK, "split_save: %s", attn_last_error());
    static const char *const names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    for (int k = 0; k < 3; k++) {
        CHECK(attn_cls_read(tu_path(names[k]), NULL, &again[k]) == ATTN_OK, "%s: %s", names[k], attn_last_error());
        CHECK(same_data(&part[k], &again[k], 0) && again[k].skipped == 0, "%s: not what was written", names[k]);
    }
    CHECK(tu_count_tmp_files() == 0, "temporary files left");
    static const char *const fixtures[] = {DATA "quotes.csv", DATA "malformed.csv", DATA "crlf.csv", DATA "three.csv"};
    for (int i = 0; i < 4; i++) {
        CHECK(attn_cls_read(fixtures[i], NULL, &other) == ATTN_OK, "%s", fixtures[i]);
        CHECK(attn_cls_write(&other, tu_path("back.tsv")) == ATTN_OK, "write: %s", attn_last_error());
        CHECK(attn_cls_read(tu_path("back.tsv"), NULL, &again[0]) == ATTN_OK && same_data(&other, &again[0], 0),
              "%s: round trip", fixtures[i]);
    }
    attn_cls_free(&all), attn_cls_free(&other);
    for (int k = 0; k < 3; k++) attn_cls_free(&part[k]), attn_cls_free(&again[k]);
}

/* Random byte changes, insertions of special bytes and cuts of the fixtures: each read
 * succeeds with consistent counts and clean rows, or fails with a status; never a crash
 * (ASan checks the reads). */
static void test_fuzz(void) {
    static const char *const src[] = {DATA "malformed.csv", DATA "quotes.csv", DATA "sst.tsv"};
    static const char special[] = {'"', ',', '\t', '\n', '\r', '\0', (char)0xEF, (char)0xBB, (char)0xBF, (char)0xFF};
    attn_rng rng;
    attn_rng_seed(&rng, 2027);
    int ok = 0, fail = 0;
    for (int trial = 0; trial < 900; trial++) {
        size_t n;
        char *buf = (char *)tu_read_file(src[trial % 3], &n);
        if (!buf) break;
        int edits = 1 + (int)(attn_rng_u32(&rng) % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            uint32_t r = attn_rng_u32(&rng);
            size_t at = (r >> 8) % n;
            if ((r & 3) == 0) buf[at] = special[(r >> 4) % sizeof special];
            else if ((r & 3) == 1) buf[at] = (char)(r >> 16);
            else if ((r & 3) == 2) n = at; /* cut */
            else buf[at] ^= (char)(1 << ((r >> 4) % 8));
        }
        const char *p = tu_path(trial % 3 == 2 ? "fuzz.tsv" : "fuzz.csv");
        tu_write_file(p, buf, n);
        free(buf);
        attn_cls_data d = {0};
        int st = attn_cls_read(p, NULL, &d);
        CHECK(st == ATTN_OK || st == ATTN_EFORMAT || st == ATTN_EINVAL, "fuzz: status %d", st);
        if (st == ATTN_OK) check_invariants("fuzz", &d);
        else CHECK(d.n == 0 && d.ex == NULL && d.label_name == NULL, "fuzz: rows kept after a failure");
        st == ATTN_OK ? ok++ : fail++;
        attn_cls_free(&d);
    }
    printf("fuzz: %d files read, %d refused\n", ok, fail);
    CHECK(ok > 100 && fail > 10, "fuzz: both outcomes seen (%d read, %d refused)", ok, fail);
}

/* ---- The real data ------------------------------------------------------------------------ */

/* Reads DIR/name and checks its row count and the number of examples labelled `label` (want;
 * a skipped row may have held it, so up to `skipped` fewer). Returns the number of labels. */
static int check_real(const char *dir, const char *name, const char *column, int rows, const char *label, int want) {
    char path[1024], rep[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    attn_cls_data d = {0};
    CHECK(attn_cls_read(path, column, &d) == ATTN_OK, "%s: %s", name, attn_last_error());
    int id = attn_cls_label_id(&d, label), c = 0;
    for (int i = 0; i < d.n; i++) c += d.ex[i].label == id;
    printf("%s (%s): %d rows, %d labels, %d labelled %s, %d skipped%s%s\n", name, column ? column : "label", d.rows,
           d.n_labels, c, label, d.skipped, d.skipped ? ": " : "", attn_cls_report(&d, rep, sizeof rep));
    CHECK(d.rows == rows && d.n + d.skipped == rows, "%s: %d rows, want %d", name, d.rows, rows);
    CHECK(c <= want && c >= want - d.skipped, "%s: %d labelled %s, want %d", name, c, label, want);
    check_invariants(name, &d);
    if (!strcmp(name, "zh-cls/ChnSentiCorp_htl_all.csv")) {
        /* The default split keeps the proportions. */
        attn_cls_data part[3] = {{0}};
        CHECK(attn_cls_split(&d, ATTN_SPLIT_SEED, ATTN_SPLIT_VALID, ATTN_SPLIT_TEST, &part[0], &part[1], &part[2]) == ATTN_OK,
              "split");
        for (int k = 0; k < 3; k++) {
            int pos = 0;
            for (int i = 0; i < part[k].n; i++) pos += part[k].ex[i].label == id;
            double share = (double)pos / part[k].n, all = (double)c / d.n;
            printf("  part %d: %d examples, %.4f positive (all: %.4f)\n", k, part[k].n, share, all);
            CHECK(share > all - 0.002 && share < all + 0.002, "part %d: share %.4f", k, share);
            attn_cls_free(&part[k]);
        }
    }
    int n_labels = d.n_labels;
    attn_cls_free(&d);
    return n_labels;
}

static int test_real(void) {
    const char *dir = getenv("ATTN_DATA_DIR");
    if (!dir || !*dir) dir = "../../shared/data";
    char path[1024];
    snprintf(path, sizeof path, "%s/zh-cls/waimai_10k.csv", dir);
    if (access(path, R_OK) != 0) {
        printf("skipped: %s not found (set ATTN_DATA_DIR)\n", path);
        return TU_SKIP;
    }
    CHECK(check_real(dir, "sst2/train.tsv", NULL, 67349, "1", 37569) == 2, "sst2 train labels");
    CHECK(check_real(dir, "sst2/dev.tsv", NULL, 872, "1", 444) == 2, "sst2 dev labels");
    CHECK(check_real(dir, "sst2/test.tsv", NULL, 1821, "1", 909) == 2, "sst2 test labels");
    CHECK(check_real(dir, "zh-cls/ChnSentiCorp_htl_all.csv", NULL, 7766, "1", 5322) == 2, "ChnSentiCorp labels");
    CHECK(check_real(dir, "zh-cls/waimai_10k.csv", NULL, 11987, "1", 4000) == 2, "waimai labels");
    CHECK(check_real(dir, "zh-cls/online_shopping_10_cats.csv", NULL, 62774, "1", 31728) == 2, "online_shopping labels");
    CHECK(check_real(dir, "zh-cls/online_shopping_10_cats.csv", "cat", 62774, "热水器", 575) == 10, "10 categories");
    return tu_summary("clsdata real");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "real")) return test_real();
    if (!tu_scratch_new("attn_test_clsdata")) return 1;
    test_fixtures();
    test_split();
    test_fuzz();
    tu_scratch_remove();
    return tu_summary("clsdata");
}
