/* BLEU as sacreBLEU 2.x computes it: its 13a and zh tokenisers (an exact transcription of
 * their regular expressions, applied to bytes, which is equivalent here because every pattern
 * is ASCII and one match consumes at most one non-ASCII code point, as its last character),
 * clipped n-gram counts per segment summed over the corpus, and compute_bleu with the
 * none/exp/floor/add-k smoothings. See include/attn/text.h for the definitions.
 * Not here: several references per segment, lowercased BLEU, chrF, TER, significance tests.
 *
 * Python's str.split() and str.strip() split on Unicode white space (attn_is_space).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/text.h"
#include "core/internal.h"
#include "core/strbuf.h"

/* Python's str.replace(pat, rep): non-overlapping, left to right. Replaces b's contents. */
static int replace_all(attn__sb *b, const char *pat, const char *rep) {
    size_t pl = strlen(pat), rl = strlen(rep);
    if (b->len < pl || !strstr(b->buf, pat)) return ATTN_OK;
    attn__sb o = {0};
    int st = attn__sb_put(&o, "", 0);
    size_t i = 0;
    while (!st && i < b->len) {
        if (i + pl <= b->len && memcmp(b->buf + i, pat, pl) == 0) {
            st = attn__sb_put(&o, rep, rl);
            i += pl;
        } else {
            st = attn__sb_put(&o, b->buf + i, 1);
            i++;
        }
    }
    attn_free(b->buf);
    *b = o;
    return st;
}

/* [\{-\~\[-\` -\&\(-\+\:-\@\/] */
static int re_sym(unsigned char c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2B) ||
           (c >= 0x3A && c <= 0x40) || c == '/';
}
static int re_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int re_dotcomma(unsigned char c) { return c == '.' || c == ','; }

/* TokenizerRegexp: the four substitutions, then split on white space. */
static int post_tokenize(const char *line, size_t n, attn_tokens *out) {
    attn__sb a = {0}, b = {0};
    int st = attn__sb_put(&a, "", 0);
    /* ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 " */
    for (size_t i = 0; i < n && !st; i++) {
        unsigned char c = (unsigned char)line[i];
        if (re_sym(c)) {
            char t[3] = {' ', (char)c, ' '};
            st = attn__sb_put(&a, t, 3);
        } else {
            st = attn__sb_put(&a, line + i, 1);
        }
    }
    /* ([^0-9])([\.,]) -> "\1 \2 ";  ([\.,])([^0-9]) -> " \1 \2";  ([0-9])(-) -> "\1 \2 " */
    for (int pass = 0; pass < 3 && !st; pass++) {
        b.len = 0;
        st = attn__sb_put(&b, "", 0);
        size_t i = 0;
        while (!st && i < a.len) {
            unsigned char c = (unsigned char)a.buf[i], d = i + 1 < a.len ? (unsigned char)a.buf[i + 1] : 0;
            int m = i + 1 < a.len && (pass == 0   ? !re_digit(c) && re_dotcomma(d)
                                      : pass == 1 ? re_dotcomma(c) && !re_digit(d)
                                                  : re_digit(c) && d == '-');
            if (m) {
                char t[4];
                if (pass == 1) t[0] = ' ', t[1] = (char)c, t[2] = ' ', t[3] = (char)d;
                else t[0] = (char)c, t[1] = ' ', t[2] = (char)d, t[3] = ' ';
                st = attn__sb_put(&b, t, 4);
                i += 2;
            } else {
                st = attn__sb_put(&b, a.buf + i, 1);
                i++;
            }
        }
        attn__sb t = a;
        a = b, b = t;
    }
    if (!st) st = attn_tokenize(ATTN_TOK_SPACE, a.buf ? a.buf : "", out);
    attn_free(a.buf), attn_free(b.buf);
    return st;
}

/* Length of s[0, n) without trailing white space (Python's rstrip). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t pos = 0, end = 0;
    uint32_t c;
    while (pos < n) {
        attn_utf8_next(s, n, &pos, &c);
        if (!attn_is_space(c)) end = pos;
    }
    return end;
}

static int tok_13a(const char *clean, size_t n, attn_tokens *out) {
    attn__sb b = {0};
    int st = attn__sb_put(&b, " ", 1);
    if (!st) st = attn__sb_put(&b, clean, rstrip_len(clean, n));
    static const char *const rep[][2] = {{"<skipped>", ""}, {"-\n", ""},  {"\n", " "},  {"&quot;", "\""},
                                         {"&amp;", "&"},    {"&lt;", "<"}, {"&gt;", ">"}};
    /* b holds " " + line: the replacements cannot match across the leading space. */
    for (size_t k = 0; k < sizeof rep / sizeof rep[0] && !st; k++) st = replace_all(&b, rep[k][0], rep[k][1]);
    if (!st) st = attn__sb_put(&b, " ", 1);
    if (!st) st = post_tokenize(b.buf, b.len, out);
    attn_free(b.buf);
    return st;
}

/* sacreBLEU's _UCODE_RANGES as Python evaluates them: '\u20000' is the two characters U+2000
 * '0', so that range compares as U+2001..U+2A6D, and '\u2f800'..'\u2fa1d' as U+2F81..U+2FA1;
 * no character above U+FFFF is in the table. */
static int zh_char(uint32_t c) {
    static const uint32_t r[][2] = {
        {0x3400, 0x4DB5}, {0x4E00, 0x9FA5}, {0x9FA6, 0x9FBB}, {0xF900, 0xFA2D}, {0xFA30, 0xFA6A}, {0xFA70, 0xFAD9},
        {0x2001, 0x2A6D}, {0x2F81, 0x2FA1}, {0xFF00, 0xFFEF}, {0x2E80, 0x2EFF}, {0x3000, 0x303F}, {0x31C0, 0x31EF},
        {0x2F00, 0x2FDF}, {0x2FF0, 0x2FFF}, {0x3100, 0x312F}, {0x31A0, 0x31BF}, {0xFE10, 0xFE1F}, {0xFE30, 0xFE4F},
        {0x2600, 0x26FF}, {0x2700, 0x27BF}, {0x3200, 0x32FF}, {0x3300, 0x33FF}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (c >= r[i][0] && c <= r[i][1]) return 1;
    return 0;
}

static int tok_zh(const char *clean, size_t n, attn_tokens *out) {
    size_t end = rstrip_len(clean, n), pos = 0, start = 0;
    uint32_t c;
    /* strip(): skip leading white space too */
    while (pos < end) {
        size_t at = pos;
        attn_utf8_next(clean, end, &pos, &c);
        if (!attn_is_space(c)) {
            start = at;
            break;
        }
        start = pos;
    }
    attn__sb b = {0};
    int st = attn__sb_put(&b, "", 0);
    pos = start;
    while (!st && pos < end) {
        size_t at = pos;
        attn_utf8_next(clean, end, &pos, &c);
        if (zh_char(c)) {
            st = attn__sb_put(&b, " ", 1);
            if (!st) st = attn__sb_put(&b, clean + at, pos - at);
            if (!st) st = attn__sb_put(&b, " ", 1);
        } else {
            st = attn__sb_put(&b, clean + at, pos - at);
        }
    }
    if (!st) st = post_tokenize(b.buf, b.len, out);
    attn_free(b.buf);
    return st;
}

static const attn_bleu_opts corpus_default = {ATTN_BLEU_TOK_13A, ATTN_BLEU_SMOOTH_EXP, 0.0, 0};
static const attn_bleu_opts sentence_default = {ATTN_BLEU_TOK_13A, ATTN_BLEU_SMOOTH_EXP, 0.0, 1};

int attn_bleu_tokenize(const char *text, const attn_bleu_opts *opts, attn_tokens *out) {
    if (!text || !out) return attn__error(ATTN_EINVAL, "bleu_tokenize: NULL argument");
    if (!opts) opts = &corpus_default;
    char *clean;
    size_t n;
    int st = attn_utf8_sanitize(text, strlen(text), &clean, &n);
    if (st) return st;
    switch (opts->tokenize) {
    case ATTN_BLEU_TOK_13A: st = tok_13a(clean, n, out); break;
    case ATTN_BLEU_TOK_ZH: st = tok_zh(clean, n, out); break;
    case ATTN_BLEU_TOK_NONE: st = attn_tokenize(ATTN_TOK_SPACE, clean, out); break;
    default: st = attn__error(ATTN_EINVAL, "bleu: unknown tokenizer %d", (int)opts->tokenize);
    }
    attn_free(clean);
    return st;
}

/* ---- n-gram statistics -------------------------------------------------------------------- */

typedef struct {
    uint32_t id[4];
} gram;

static int gram_cmp(const void *pa, const void *pb) {
    const gram *a = pa, *b = pb;
    for (int k = 0; k < 4; k++)
        if (a->id[k] != b->id[k]) return a->id[k] < b->id[k] ? -1 : 1;
    return 0;
}

/* The n-grams of ids[0, len) in g (room for len), sorted; returns their number. */
static int grams(const uint32_t *ids, int len, int n, gram *g) {
    int m = len - n + 1;
    if (m <= 0) return 0;
    for (int i = 0; i < m; i++) {
        memset(&g[i], 0, sizeof g[i]);
        for (int k = 0; k < n; k++) g[i].id[k] = ids[i + k];
    }
    qsort(g, (size_t)m, sizeof *g, gram_cmp);
    return m;
}

int attn_bleu_add(const char *hyp, const char *ref, const attn_bleu_opts *opts, attn_bleu_stats *acc) {
    if (!hyp || !ref || !acc) return attn__error(ATTN_EINVAL, "bleu_add: NULL argument");
    attn_tokens th = {0}, tr = {0};
    attn_counter *ids = NULL;
    uint32_t *ih = NULL, *ir = NULL;
    gram *gh = NULL, *gr = NULL;
    int st = attn_bleu_tokenize(hyp, opts, &th);
    if (!st) st = attn_bleu_tokenize(ref, opts, &tr);
    if (!st) st = attn_counter_new(&ids);
    if (st) goto done;
    size_t nh = (size_t)th.n + 1, nr = (size_t)tr.n + 1;
    ih = attn_malloc(nh * sizeof *ih), ir = attn_malloc(nr * sizeof *ir);
    gh = attn_malloc(nh * sizeof *gh), gr = attn_malloc(nr * sizeof *gr);
    if (!ih || !ir || !gh || !gr) {
        st = ATTN_ENOMEM;
        goto done;
    }
    /* Interned ids: equal tokens, equal ids. */
    for (int i = 0; i < th.n && !st; i++) {
        int x;
        st = attn_counter_add(ids, th.tok[i], (size_t)th.len[i], 1, &x);
        ih[i] = (uint32_t)x;
    }
    for (int i = 0; i < tr.n && !st; i++) {
        int x;
        st = attn_counter_add(ids, tr.tok[i], (size_t)tr.len[i], 1, &x);
        ir[i] = (uint32_t)x;
    }
    if (st) goto done;
    attn_bleu_stats s = {0};
    s.sys_len = th.n;
    s.ref_len = tr.n;
    for (int n = 1; n <= 4; n++) {
        int mh = grams(ih, th.n, n, gh), mr = grams(ir, tr.n, n, gr);
        s.total[n - 1] = mh;
        /* Clipped matches: for each distinct hypothesis n-gram, min(its count, the ref's). */
        int i = 0, j = 0;
        while (i < mh) {
            int i2 = i + 1;
            while (i2 < mh && gram_cmp(&gh[i2], &gh[i]) == 0) i2++;
            while (j < mr && gram_cmp(&gr[j], &gh[i]) < 0) j++;
            int j2 = j;
            while (j2 < mr && gram_cmp(&gr[j2], &gh[i]) == 0) j2++;
            int ch = i2 - i, cr = j2 - j;
            s.correct[n - 1] += ch < cr ? ch : cr;
            i = i2, j = j2;
        }
    }
    acc->sys_len += s.sys_len;
    acc->ref_len += s.ref_len;
    for (int k = 0; k < 4; k++) acc->correct[k] += s.correct[k], acc->total[k] += s.total[k];
done:
    attn_tokens_free(&th), attn_tokens_free(&tr);
    attn_counter_free(ids);
    attn_free(ih), attn_free(ir), attn_free(gh), attn_free(gr);
    return st;
}

/* sacreBLEU's my_log: log(0) is a large negative number, not -inf. */
static double my_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

void attn_bleu_compute(const attn_bleu_stats *s, const attn_bleu_opts *opts, attn_bleu_score *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!s) return;
    if (!opts) opts = &corpus_default;
    out->stats = *s;
    out->ratio = s->ref_len ? (double)s->sys_len / (double)s->ref_len : 0.0;
    if (s->sys_len < s->ref_len) out->bp = s->sys_len > 0 ? exp(1.0 - (double)s->ref_len / (double)s->sys_len) : 0.0;
    else out->bp = 1.0;
    int any = 0;
    for (int k = 0; k < 4; k++) any |= s->correct[k] != 0;
    if (!any) return; /* BLEU 0, precisions 0 */
    double sv = opts->smooth_value;
    if (sv == 0.0) sv = opts->smooth == ATTN_BLEU_SMOOTH_FLOOR ? 0.1 : 1.0;
    double smooth_mteval = 1.0;
    int eff_order = 4;
    for (int n = 1; n <= 4; n++) {
        double correct = (double)s->correct[n - 1], total = (double)s->total[n - 1];
        if (opts->smooth == ATTN_BLEU_SMOOTH_ADDK && n > 1) correct += sv, total += sv;
        if (total == 0.0) break;
        if (opts->effective_order) eff_order = n;
        if (correct == 0.0) {
            if (opts->smooth == ATTN_BLEU_SMOOTH_EXP) {
                smooth_mteval *= 2;
                out->precision[n - 1] = 100.0 / (smooth_mteval * total);
            } else if (opts->smooth == ATTN_BLEU_SMOOTH_FLOOR) {
                out->precision[n - 1] = 100.0 * sv / total;
            }
        } else {
            out->precision[n - 1] = 100.0 * correct / total;
        }
    }
    double sum = 0.0;
    for (int k = 0; k < eff_order; k++) sum += my_log(out->precision[k]);
    out->bleu = out->bp * exp(sum / eff_order);
}

static int check_opts(const attn_bleu_opts *o) {
    if (!o) return ATTN_OK;
    if ((unsigned)o->tokenize > ATTN_BLEU_TOK_NONE || (unsigned)o->smooth > ATTN_BLEU_SMOOTH_ADDK || o->smooth_value < 0)
        return attn__error(ATTN_EINVAL, "bleu: invalid options");
    return ATTN_OK;
}

int attn_bleu_corpus(const char *const *hyps, const char *const *refs, int n, const attn_bleu_opts *opts,
                     attn_bleu_score *out) {
    if (!out || n < 0 || (n > 0 && (!hyps || !refs))) return attn__error(ATTN_EINVAL, "bleu_corpus: bad arguments");
    memset(out, 0, sizeof *out);
    int st = check_opts(opts);
    if (st) return st;
    attn_bleu_stats s = {0};
    for (int i = 0; i < n; i++) {
        if (!hyps[i] || !refs[i]) return attn__error(ATTN_EINVAL, "bleu_corpus: segment %d is NULL", i);
        if ((st = attn_bleu_add(hyps[i], refs[i], opts, &s))) return st;
    }
    attn_bleu_compute(&s, opts, out);
    return ATTN_OK;
}

int attn_bleu_sentence(const char *hyp, const char *ref, const attn_bleu_opts *opts, attn_bleu_score *out) {
    if (!opts) opts = &sentence_default;
    return attn_bleu_corpus(&hyp, &ref, 1, opts, out);
}

int attn_exact_match(const char *const *hyps, const char *const *refs, int n, const attn_bleu_opts *opts, double *out) {
    if (!out || n < 0 || (n > 0 && (!hyps || !refs))) return attn__error(ATTN_EINVAL, "exact_match: bad arguments");
    *out = 0.0;
    int st = check_opts(opts);
    if (st) return st;
    attn_tokens a = {0}, b = {0};
    int hits = 0;
    for (int i = 0; i < n && !st; i++) {
        if (!hyps[i] || !refs[i]) {
            st = attn__error(ATTN_EINVAL, "exact_match: segment %d is NULL", i);
            break;
        }
        st = attn_bleu_tokenize(hyps[i], opts, &a);
        if (!st) st = attn_bleu_tokenize(refs[i], opts, &b);
        if (st) break;
        int same = a.n == b.n;
        for (int k = 0; same && k < a.n; k++) same = a.len[k] == b.len[k] && memcmp(a.tok[k], b.tok[k], (size_t)a.len[k]) == 0;
        hits += same;
    }
    attn_tokens_free(&a), attn_tokens_free(&b);
    if (!st && n > 0) *out = 100.0 * hits / n;
    return st;
}
