/* The text-data layer: UTF-8 edge cases, the tokenisers and detokenisation, token counts and
 * vocabularies (round trip, validation of saved files), pair files (malformed lines, splits
 * that are reproducible), and a smoke test on the real Tatoeba cmn.txt when it is there
 * ($ATTN_DATA_DIR, default ../../shared/data relative to tests/). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attn/text.h"
#include "testutil.h"

#define DATA "data/text/"

static char g_dir[512];

static const char *tmp_path(const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* Tokens joined by '|' for comparisons. */
static const char *bar(const attn_tokens *t) {
    static char buf[2048];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->n && len + (size_t)t->len[i] + 2 < sizeof buf; i++) {
        if (i) buf[len++] = '|';
        memcpy(buf + len, t->tok[i], (size_t)t->len[i] + 1);
        len += (size_t)t->len[i];
    }
    return buf;
}

static void check_tok(attn_tok_kind kind, const char *in, const char *want) {
    attn_tokens t = {0};
    int st = attn_tokenize(kind, in, &t);
    CHECK(st == ATTN_OK, "tokenize: %s", attn_last_error());
    CHECK(strcmp(bar(&t), want) == 0, "tokenize(%d, \"%s\"):\n  got  %s\n  want %s", (int)kind, in, bar(&t), want);
    for (int i = 0; i < t.n; i++) CHECK(t.len[i] == (int)strlen(t.tok[i]) && t.len[i] > 0, "token length");
    attn_tokens_free(&t);
}

static void check_detok(attn_tok_kind kind, const char *const *tok, int n, int flags, const char *want) {
    char *s = NULL;
    CHECK(attn_detokenize(kind, tok, n, flags, &s) == ATTN_OK, "detokenize: %s", attn_last_error());
    CHECK(s && strcmp(s, want) == 0, "detokenize: got \"%s\" want \"%s\"", s ? s : "(null)", want);
    attn_free(s);
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* Decodes all of s (copied to a heap buffer of exactly n bytes, so that ASan sees any read
 * past the end) and compares the code points and byte counts. */
static void check_decode(const char *s, size_t n, const uint32_t *want_cp, const size_t *want_len, int m) {
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    size_t pos = 0;
    int k = 0;
    uint32_t cp;
    while (pos < n && k < m) {
        size_t used = attn_utf8_decode(b + pos, n - pos, &cp);
        CHECK(cp == want_cp[k] && used == want_len[k], "decode piece %d: U+%04X (%zu bytes), want U+%04X (%zu)", k,
              (unsigned)cp, used, (unsigned)want_cp[k], want_len[k]);
        pos += used, k++;
    }
    CHECK(pos == n && k == m, "decode: %d pieces, %zu of %zu bytes", k, pos, n);
    CHECK(attn_utf8_length(b, n) == (size_t)m, "length");
    free(b);
}

static void test_utf8(void) {
    const uint32_t R = ATTN_UTF8_REPLACEMENT;
    /* Valid: 1 to 4 bytes, and the edges of each length. */
    {
        const char s[] = "A\xC3\xA9\xE6\x88\x91\xF0\x9F\x98\x80\xC2\x80\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF";
        uint32_t cp[] = {'A', 0xE9, 0x6211, 0x1F600, 0x80, 0x7FF, 0xFFFF, 0x10FFFF};
        size_t len[] = {1, 2, 3, 4, 2, 2, 3, 4};
        check_decode(s, sizeof s - 1, cp, len, 8);
        CHECK(attn_utf8_valid(s, sizeof s - 1, NULL), "valid");
    }
    /* Invalid, with Python's decode(errors="replace") as the reference for the pieces. */
    {
        const char s[] = "\xE4\xBD" "a"; /* truncated 3-byte sequence, then ASCII */
        uint32_t cp[] = {R, 'a'};
        size_t len[] = {2, 1};
        check_decode(s, 3, cp, len, 2);
    }
    {
        const char s[] = "\xED\xA0\x80"; /* a surrogate (U+D800): three pieces */
        uint32_t cp[] = {R, R, R};
        size_t len[] = {1, 1, 1};
        check_decode(s, 3, cp, len, 3);
    }
    {
        const char s[] = "\xC0\xAF\xE0\x80\xAF\xF0\x80\x80\xAF"; /* overlong '/' in 2, 3 and 4 bytes */
        uint32_t cp[] = {R, R, R, R, R, R, R, R, R};
        size_t len[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        check_decode(s, 9, cp, len, 9);
    }
    {
        const char s[] = "\xF4\x90\x80\x80"; /* above U+10FFFF */
        uint32_t cp[] = {R, R, R, R};
        size_t len[] = {1, 1, 1, 1};
        check_decode(s, 4, cp, len, 4);
    }
    {
        const char s[] = "\xF0\x9F\x98"; /* truncated at the end of the buffer: one piece */
        uint32_t cp[] = {R};
        size_t len[] = {3};
        check_decode(s, 3, cp, len, 1);
    }
    {
        const char s[] = "\x80\xBF\xFE\xFF\xF8\x88\x80\x80\x80"; /* stray continuation bytes, FE, FF, 5-byte form */
        uint32_t cp[] = {R, R, R, R, R, R, R, R, R};
        size_t len[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        check_decode(s, 9, cp, len, 9);
    }
    {
        const char s[] = "\xE6\x88\x91"; /* a valid character cut by the length given */
        uint32_t cp[] = {R};
        size_t len[] = {2};
        check_decode(s, 2, cp, len, 1);
    }
    uint32_t cp;
    CHECK(attn_utf8_decode("", 0, &cp) == 0, "empty input uses no byte");
    size_t bad;
    CHECK(!attn_utf8_valid("ok\xC3(", 4, &bad) && bad == 2, "valid: bad offset %zu", bad);
    CHECK(attn_utf8_valid("\xEF\xBF\xBD", 3, NULL), "U+FFFD itself is valid");
    /* Every scalar value round-trips through encode/decode; surrogates encode as U+FFFD. */
    int bad_rt = 0;
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        char b[4];
        size_t n = attn_utf8_encode(c, b);
        uint32_t back;
        size_t used = attn_utf8_decode(b, n, &back);
        uint32_t want = (c >= 0xD800 && c <= 0xDFFF) ? R : c;
        if (back != want || used != n) bad_rt++;
    }
    CHECK(bad_rt == 0, "%d code points do not round-trip", bad_rt);
    char b[4];
    CHECK(attn_utf8_encode(0x110000, b) == 3 && memcmp(b, "\xEF\xBF\xBD", 3) == 0, "too large -> U+FFFD");
    /* Sanitize: invalid pieces become U+FFFD, the result is valid. */
    char *clean;
    size_t n;
    CHECK(attn_utf8_sanitize("a\xFF" "b\xE4\xBD", 5, &clean, &n) == ATTN_OK, "sanitize");
    CHECK(n == 8 && strcmp(clean, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD") == 0, "sanitize result");
    attn_free(clean);
    /* Random bytes: each step uses 1..4 bytes, never past the end; sanitised text is valid. */
    attn_rng rng;
    attn_rng_seed(&rng, 7);
    for (int trial = 0; trial < 2000; trial++) {
        size_t len = 1 + attn_rng_u32(&rng) % 24;
        char *s = malloc(len);
        for (size_t i = 0; i < len; i++) {
            uint32_t r = attn_rng_u32(&rng);
            /* Mostly bytes that start or continue sequences, some ASCII. */
            s[i] = (char)((r & 3) == 0 ? (r >> 8) % 128 : 0x80 + (r >> 8) % 128);
        }
        size_t pos = 0;
        int ok = 1;
        while (pos < len) {
            size_t used = attn_utf8_decode(s + pos, len - pos, &cp);
            if (used < 1 || used > 4 || used > len - pos) ok = 0;
            if (!used) break;
            pos += used;
        }
        CHECK(ok, "random bytes: bad step");
        CHECK(attn_utf8_sanitize(s, len, &clean, &n) == ATTN_OK && attn_utf8_valid(clean, n, NULL), "sanitized is valid");
        attn_free(clean);
        free(s);
    }
    /* Character classes. */
    CHECK(attn_is_cjk(0x6211) && attn_is_cjk(0x3400) && attn_is_cjk(0x4DBF) && attn_is_cjk(0x20000) &&
              attn_is_cjk(0xF900) && attn_is_cjk(0x2F800) && attn_is_cjk(0x3007),
          "CJK ideographs");
    CHECK(!attn_is_cjk(0x3002) && !attn_is_cjk('A') && !attn_is_cjk(0x30A2) && !attn_is_cjk(0xFF01), "not ideographs");
    CHECK(attn_is_cjk_punct(0x3002) && attn_is_cjk_punct(0xFF0C) && attn_is_cjk_punct(0xFF01) &&
              attn_is_cjk_punct(0x300C) && attn_is_cjk_punct(0xFE50),
          "CJK punctuation");
    CHECK(!attn_is_cjk_punct(0x3000) && !attn_is_cjk_punct(0x3005) && !attn_is_cjk_punct('.') &&
              !attn_is_cjk_punct(0xFF21),
          "not CJK punctuation");
    CHECK(attn_is_space(' ') && attn_is_space(0x3000) && attn_is_space(0xA0) && attn_is_space(0x1F) &&
              !attn_is_space(0x200B) && !attn_is_space('a'),
          "white space");
}

/* ---- Tokenisers --------------------------------------------------------------------------- */

static void test_tokenize(void) {
    /* Chinese by character; ASCII runs kept whole; white space and zero-width space dropped. */
    check_tok(ATTN_TOK_ZH, "我爱你。", "我|爱|你|。");
    check_tok(ATTN_TOK_ZH, "他是一个 DJ 。", "他|是|一|个|DJ|。");
    check_tok(ATTN_TOK_ZH, "现在是7点45分。", "现|在|是|7|点|45|分|。");
    check_tok(ATTN_TOK_ZH, "Tom在这儿。", "Tom|在|这|儿|。");
    check_tok(ATTN_TOK_ZH, "“你好！”他说，\u200b“再见…”", "“|你|好|！|”|他|说|，|“|再|见|…|”");
    check_tok(ATTN_TOK_ZH, "\u3000我用Twitter\u3000。", "我|用|Twitter|。");
    check_tok(ATTN_TOK_ZH, "ＡＢ１２的3.5%", "ＡＢ１２|的|3|.|5|%");
    check_tok(ATTN_TOK_ZH, "", "");
    check_tok(ATTN_TOK_ZH, " \t\n", "");
    check_tok(ATTN_TOK_ZH, "我\xFF你", "我|\xEF\xBF\xBD|你"); /* invalid byte -> U+FFFD token */
    /* English: lower-cased, punctuation split off, contractions and numbers kept. */
    check_tok(ATTN_TOK_EN, "Tom's here.", "tom's|here|.");
    check_tok(ATTN_TOK_EN, "I'm fine.", "i'm|fine|.");
    check_tok(ATTN_TOK_EN, "Don't do that!", "don't|do|that|!");
    check_tok(ATTN_TOK_EN, "It's 3.5 km, or 1,000 m.", "it's|3.5|km|,|or|1,000|m|.");
    check_tok(ATTN_TOK_EN, "He said “hi” to Tom’s dog.", "he|said|\"|hi|\"|to|tom's|dog|.");
    check_tok(ATTN_TOK_EN, "The students' books", "the|students|'|books");
    check_tok(ATTN_TOK_EN, "A well-known CAFÉ, $5?!", "a|well|-|known|café|,|$|5|?|!");
    check_tok(ATTN_TOK_EN, "Wait...", "wait|.|.|.");
    check_tok(ATTN_TOK_EN, "'Hello', he said", "'|hello|'|,|he|said");
    check_tok(ATTN_TOK_EN, "  ", "");
    /* The PyTorch tutorial's normalizeString (checked against Python's re). */
    check_tok(ATTN_TOK_EN_TUTORIAL, "I'm fine.", "i|m|fine");
    check_tok(ATTN_TOK_EN_TUTORIAL, "Wait... 7 days!", "wait|days|!");
    check_tok(ATTN_TOK_EN_TUTORIAL, "Café résumé", "cafe|resume");
    check_tok(ATTN_TOK_EN_TUTORIAL, "Tom’s “book”?!", "tom|s|book|?|!");
    check_tok(ATTN_TOK_EN_TUTORIAL, "Ça va? Œuvre Straße", "ca|va|?|uvre|stra|e");
    check_tok(ATTN_TOK_EN_TUTORIAL, "a!b", "a|!b");
    check_tok(ATTN_TOK_EN_TUTORIAL, "你好", "");
    /* White space only. */
    check_tok(ATTN_TOK_SPACE, "  it 's a   good\tfilm \n", "it|'s|a|good|film");
    check_tok(ATTN_TOK_SPACE, "a\u3000b\xC2\xA0" "c", "a|b|c");
    check_tok(ATTN_TOK_SPACE, "x\xFFy z", "x\xEF\xBF\xBDy|z");
    /* Errors. */
    attn_tokens t = {0};
    CHECK(attn_tokenize((attn_tok_kind)9, "a", &t) == ATTN_EINVAL, "unknown kind");
    CHECK(attn_tokenize(ATTN_TOK_EN, NULL, &t) == ATTN_EINVAL, "NULL text");
    /* Reuse: a second call replaces the first's tokens. */
    attn_tokenize(ATTN_TOK_EN, "one two three four five six seven", &t);
    attn_tokenize(ATTN_TOK_EN, "eight", &t);
    CHECK(t.n == 1 && strcmp(t.tok[0], "eight") == 0, "reuse");
    /* A long token (more than the small buffer) survives. */
    char longw[1200];
    for (int i = 0; i < 1199; i++) longw[i] = 'a' + i % 26;
    longw[1199] = '\0';
    CHECK(attn_tokenize(ATTN_TOK_ZH, longw, &t) == ATTN_OK && t.n == 1 && strcmp(t.tok[0], longw) == 0, "long token");
    attn_tokens_free(&t);
    attn_tokens_free(&t); /* twice is fine */

    /* Detokenisation. */
    const char *z1[] = {"他", "是", "DJ", "。"};
    check_detok(ATTN_TOK_ZH, z1, 4, 0, "他是DJ。");
    const char *z2[] = {"I", "love", "你", "3", "个"};
    check_detok(ATTN_TOK_ZH, z2, 5, 0, "I love你3个");
    const char *e1[] = {"i'm", "fine", ",", "thanks", "."};
    check_detok(ATTN_TOK_EN, e1, 5, 0, "i'm fine, thanks.");
    check_detok(ATTN_TOK_EN, e1, 5, ATTN_DETOK_CAPITALIZE, "I'm fine, thanks.");
    const char *e2[] = {"he", "said", "\"", "hi", "\"", "to", "tom", ".", "is", "i", "ok", "?"};
    check_detok(ATTN_TOK_EN, e2, 12, ATTN_DETOK_CAPITALIZE, "He said \"hi\" to tom. Is I ok?");
    const char *e3[] = {"a", "well", "-", "known", "(", "old", ")", "cafe", "costs", "$", "5", "%", "!"};
    check_detok(ATTN_TOK_EN, e3, 13, 0, "a well-known (old) cafe costs $5%!");
    const char *e4[] = {"the", "students", "'", "books"};
    check_detok(ATTN_TOK_EN, e4, 4, 0, "the students' books");
    const char *s1[] = {"it", "'s", "good"};
    check_detok(ATTN_TOK_SPACE, s1, 3, 0, "it 's good");
    check_detok(ATTN_TOK_EN, NULL, 0, 0, "");
    /* Tokenising the detokenised text gives the same tokens back (English). */
    const char *lines[] = {"I'm fine, thanks.", "He said \"hi\" to Tom's dog.", "It costs $5.50 (or 1,000 yen)!",
                           "A well-known cafe; 50% off?"};
    attn_tokens a = {0}, b = {0};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char *d;
        attn_tokenize(ATTN_TOK_EN, lines[i], &a);
        attn_detokenize(ATTN_TOK_EN, a.tok, a.n, 0, &d);
        attn_tokenize(ATTN_TOK_EN, d, &b);
        char sa[512];
        snprintf(sa, sizeof sa, "%s", bar(&a));
        CHECK(strcmp(sa, bar(&b)) == 0, "round trip of \"%s\" via \"%s\"", lines[i], d);
        attn_free(d);
    }
    attn_tokens_free(&a), attn_tokens_free(&b);
}

/* ---- Counts and vocabularies -------------------------------------------------------------- */

static void test_vocab(void) {
    attn_counter *c;
    CHECK(attn_counter_new(&c) == ATTN_OK, "counter_new");
    attn_tokens t = {0};
    attn_tokenize(ATTN_TOK_EN, "the cat and the dog . the end . a cat", &t);
    CHECK(attn_counter_add_tokens(c, &t) == ATTN_OK, "add tokens");
    attn_counter_add(c, "<unk>", 5, 100, NULL); /* spelled like a special: never a normal token */
    CHECK(attn_counter_size(c) == 8 && attn_counter_total(c) == 111, "size %d total %lld", attn_counter_size(c),
          (long long)attn_counter_total(c));
    int i_the = attn_counter_find(c, "the", 3);
    CHECK(i_the == 0 && attn_counter_count(c, i_the) == 3, "count of 'the'");
    CHECK(attn_counter_find(c, "zebra", 5) == -1 && attn_counter_token(c, 99) == NULL, "absent");
    CHECK(attn_counter_add(c, "", 0, 1, NULL) == ATTN_EINVAL, "empty token refused");
    CHECK(attn_counter_add(c, "a\nb", 3, 1, NULL) == ATTN_EINVAL, "line break refused");
    CHECK(attn_counter_add(c, "\xC3", 1, 1, NULL) == ATTN_EINVAL, "bad UTF-8 refused");
    /* Many tokens: the table grows, indices stay in first-seen order. */
    for (int i = 0; i < 3000; i++) {
        char w[16];
        int idx;
        snprintf(w, sizeof w, "w%d", i);
        attn_counter_add(c, w, strlen(w), 1, &idx);
        if (idx != 8 + i) {
            CHECK(0, "index %d for %s", idx, w);
            break;
        }
    }
    CHECK(attn_counter_find(c, "w2999", 5) == 8 + 2999 && attn_counter_find(c, "cat", 3) >= 0, "find after growth");

    /* Vocabulary: specials, then count desc, ties by bytes: the(3) .(2) cat(2) a and dog end w0 ... */
    attn_vocab *v;
    CHECK(attn_vocab_build(c, 1, 10, &v) == ATTN_OK, "build: %s", attn_last_error());
    const char *want[] = {"<pad>", "<unk>", "<bos>", "<eos>", "the", ".", "cat", "a", "and", "dog"};
    CHECK(attn_vocab_size(v) == 10, "size %d", attn_vocab_size(v));
    for (int i = 0; i < 10; i++)
        CHECK(attn_vocab_token(v, i) && strcmp(attn_vocab_token(v, i), want[i]) == 0, "id %d: %s want %s", i,
              attn_vocab_token(v, i), want[i]);
    attn_vocab_free(v);
    CHECK(attn_vocab_build(c, 2, 0, &v) == ATTN_OK && attn_vocab_size(v) == 4 + 3, "min_count 2: %d", attn_vocab_size(v));
    attn_vocab_free(v);
    CHECK(attn_vocab_build(c, 1, 3, &v) == ATTN_EINVAL, "max_size below the specials");
    CHECK(attn_vocab_build(c, 1, 0, &v) == ATTN_OK && attn_vocab_size(v) == 4 + 7 + 3000, "no limit");
    attn_vocab_free(v);
    attn_counter_free(c);

    /* Encode and decode. */
    attn_counter_new(&c);
    attn_tokenize(ATTN_TOK_ZH, "我爱你。你爱我。", &t);
    attn_counter_add_tokens(c, &t);
    attn_vocab_build(c, 1, 0, &v);
    attn_counter_free(c);
    CHECK(attn_vocab_size(v) == 8, "zh vocab %d", attn_vocab_size(v)); /* 我 爱 你 。 */
    CHECK(attn_vocab_id(v, "我") >= 4 && attn_vocab_id(v, "他") == ATTN_UNK && attn_vocab_find(v, "他", 3) == -1,
          "lookups");
    attn_tokenize(ATTN_TOK_ZH, "他爱我。", &t);
    int32_t ids[16];
    int n, unk;
    CHECK(attn_vocab_encode(v, &t, ATTN_ENC_BOS | ATTN_ENC_EOS, ids, 16, &n, &unk) == ATTN_OK && n == 6 && unk == 1,
          "encode: n %d unk %d", n, unk);
    CHECK(ids[0] == ATTN_BOS && ids[1] == ATTN_UNK && ids[5] == ATTN_EOS, "specials placed");
    CHECK(attn_vocab_encode(v, &t, ATTN_ENC_BOS | ATTN_ENC_EOS, ids, 5, &n, NULL) == ATTN_ESHAPE, "cap too small");
    int32_t more[] = {ATTN_BOS, ids[2], ids[3], ATTN_EOS, ids[2], ATTN_PAD};
    attn_tokens d = {0};
    CHECK(attn_vocab_decode(v, more, 6, ATTN_DEC_STOP_AT_EOS | ATTN_DEC_SKIP_SPECIAL, &d) == ATTN_OK &&
              strcmp(bar(&d), "爱|我") == 0,
          "decode: %s", bar(&d));
    attn_vocab_decode(v, more, 6, 0, &d);
    CHECK(strcmp(bar(&d), "<bos>|爱|我|<eos>|爱|<pad>") == 0, "decode all: %s", bar(&d));
    attn_vocab_decode(v, ids, 6, ATTN_DEC_SKIP_SPECIAL, &d);
    CHECK(strcmp(bar(&d), "<unk>|爱|我|。") == 0, "decode unk: %s", bar(&d));
    int32_t bad_id[] = {8};
    CHECK(attn_vocab_decode(v, bad_id, 1, 0, &d) == ATTN_EINVAL, "id out of range");

    /* Save and load: the same ids; the file is one token per line. */
    const char *p = tmp_path("vocab.txt");
    CHECK(attn_vocab_save(v, p) == ATTN_OK, "save: %s", attn_last_error());
    size_t len;
    char *file = (char *)tu_read_file(p, &len);
    CHECK(file && strncmp(file, "<pad>\n<unk>\n<bos>\n<eos>\n", 24) == 0 && file[len - 1] == '\n', "file layout");
    free(file);
    attn_vocab *w;
    CHECK(attn_vocab_load(p, &w) == ATTN_OK, "load: %s", attn_last_error());
    CHECK(attn_vocab_size(w) == attn_vocab_size(v), "loaded size");
    for (int i = 0; i < attn_vocab_size(v); i++)
        CHECK(strcmp(attn_vocab_token(v, i), attn_vocab_token(w, i)) == 0 && attn_vocab_id(w, attn_vocab_token(v, i)) == i,
              "loaded id %d", i);
    attn_vocab_free(w);
    attn_vocab_free(v);
    attn_tokens_free(&t), attn_tokens_free(&d);

    /* Load validation, each with a clear message naming the line. */
    struct {
        const char *data;
        size_t n;
        const char *msg;
    } bad[] = {
#define BAD(s, msg) {s, sizeof s - 1, msg}
        BAD("<pad>\n<unk>\n<bos>\n<eos>\nx\ny\nx\n", "line 7: duplicate token \"x\" (also on line 5)"),
        BAD("<pad>\n<unk>\n<bos>\n<eos>\nx\n\ny\n", "line 6: empty line"),
        BAD("<pad>\n<unk>\n<bos>\n<eos>\nx\xC3(\n", "line 5: invalid UTF-8"),
        BAD("<pad>\r\n<unk>\n<bos>\n<eos>\n", "line 1: carriage return"),
        BAD("<pad>\n<unk>\n<eos>\n<bos>\n", "line 3: expected the special token <bos>"),
        BAD("<pad>\n<unk>\n<bos>\n<eos>\na\0b\n", "line 5: NUL byte"),
        BAD("<pad>\n<unk>\n", "2 lines"),
        BAD("", "0 lines"),
#undef BAD
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = tmp_path("bad_vocab.txt");
        write_bytes(p, bad[i].data, bad[i].n);
        attn_vocab *x = (attn_vocab *)1;
        int st = attn_vocab_load(p, &x);
        CHECK(st == ATTN_EFORMAT && x == NULL && strstr(attn_last_error(), bad[i].msg), "bad vocab %zu: %d \"%s\"", i, st,
              attn_last_error());
    }
    /* A missing final newline is fine. */
    write_bytes(p, "<pad>\n<unk>\n<bos>\n<eos>\nlast", 28);
    CHECK(attn_vocab_load(p, &w) == ATTN_OK && attn_vocab_size(w) == 5 && attn_vocab_id(w, "last") == 4, "no final newline");
    attn_vocab_free(w);
    CHECK(attn_vocab_load(tmp_path("missing.txt"), &w) == ATTN_EIO, "missing file");
    remove(tmp_path("bad_vocab.txt"));
    remove(tmp_path("vocab.txt"));
}

/* ---- Pairs -------------------------------------------------------------------------------- */

static void test_pairs(void) {
    attn_pairs p = {0};
    CHECK(attn_pairs_read(DATA "pairs_small.tsv", &p) == ATTN_OK, "read: %s", attn_last_error());
    CHECK(p.n == 5 && p.lines == 9 && p.malformed == 4 && p.n_reported == 4, "n %d lines %d malformed %d", p.n, p.lines,
          p.malformed);
    int want_line[] = {3, 5, 6, 7};
    attn_pair_problem want_why[] = {ATTN_PAIR_NO_TAB, ATTN_PAIR_NO_TAB, ATTN_PAIR_EMPTY_SIDE, ATTN_PAIR_EMPTY_SIDE};
    for (int i = 0; i < 4 && i < p.n_reported; i++)
        CHECK(p.bad_line[i] == want_line[i] && p.bad_why[i] == want_why[i], "bad line %d: %d %d", i, p.bad_line[i],
              (int)p.bad_why[i]);
    if (p.n == 5) {
        CHECK(strcmp(p.pair[0].side[0], "Hi.") == 0 && strcmp(p.pair[0].side[1], "你好。") == 0 &&
                  strcmp(p.pair[0].extra, "hand-made test line") == 0 && p.pair[0].line == 1,
              "pair 0");
        CHECK(strcmp(p.pair[3].side[1], "现在是7点45分。") == 0 && p.pair[3].extra[0] == '\0' && p.pair[3].line == 8,
              "CRLF line, two columns");
        CHECK(strcmp(p.pair[4].side[0], "I love you.") == 0 && p.pair[4].line == 9, "last line without newline");
    }
    char rep[256];
    attn_pairs_report(&p, rep, sizeof rep);
    CHECK(strcmp(rep, "4 malformed lines skipped (line 3: no tab; line 5: no tab; line 6: empty side; line 7: empty side)") == 0,
          "report: %s", rep);
    char small[24];
    attn_pairs_report(&p, small, sizeof small);
    CHECK(strlen(small) == sizeof small - 1, "report cut to the buffer");

    /* Length filter: at most 4 English tokens and 6 Chinese ones. */
    attn_tok_kind kinds[2] = {ATTN_TOK_EN, ATTN_TOK_ZH};
    int maxt[2] = {4, 6};
    CHECK(attn_pairs_filter_length(&p, kinds, maxt) == ATTN_OK, "filter");
    /* Hi.(2,3) I'm fine, thanks.(5,x) Tom's here.(3,5) It's 7:45 now.(6,..) I love you.(4,4) */
    CHECK(p.n == 3 && p.filtered == 2 && p.pair[1].line == 4 && p.pair[2].line == 9, "filtered: n %d", p.n);

    /* Write and read back. */
    const char *out = tmp_path("pairs_out.tsv");
    CHECK(attn_pairs_write(&p, out) == ATTN_OK, "write: %s", attn_last_error());
    attn_pairs q = {0};
    CHECK(attn_pairs_read(out, &q) == ATTN_OK && q.n == p.n && q.malformed == 0, "read back");
    for (int i = 0; i < q.n && i < p.n; i++)
        CHECK(strcmp(q.pair[i].side[0], p.pair[i].side[0]) == 0 && strcmp(q.pair[i].side[1], p.pair[i].side[1]) == 0 &&
                  strcmp(q.pair[i].extra, p.pair[i].extra) == 0 && q.pair[i].line == i + 1,
              "pair %d read back", i);
    attn_pairs_free(&q);
    attn_pairs_free(&p);
    remove(out);

    /* Malformed bytes: invalid UTF-8 and NUL count as malformed; a BOM is ignored. */
    const char mixed[] = "\xEF\xBB\xBFok\t好\n"
                         "bad\xFF\t坏\n"
                         "nul\0here\t坏\n"
                         "good\t好\n";
    const char *mp = tmp_path("mixed.tsv");
    write_bytes(mp, mixed, sizeof mixed - 1);
    CHECK(attn_pairs_read(mp, &p) == ATTN_OK && p.n == 2 && p.malformed == 2, "mixed: n %d malformed %d", p.n, p.malformed);
    CHECK(p.n_reported == 2 && p.bad_why[0] == ATTN_PAIR_BAD_UTF8 && p.bad_why[1] == ATTN_PAIR_NUL_BYTE && p.bad_line[1] == 3,
          "mixed reasons");
    CHECK(p.n >= 1 && strcmp(p.pair[0].side[0], "ok") == 0, "BOM skipped");
    attn_pairs_free(&p);
    /* No valid pair: an error, with the counts kept. */
    write_bytes(mp, "", 0);
    CHECK(attn_pairs_read(mp, &p) == ATTN_EFORMAT && strstr(attn_last_error(), "empty"), "empty file: %s", attn_last_error());
    write_bytes(mp, "one\ntwo\n\n", 9);
    CHECK(attn_pairs_read(mp, &p) == ATTN_EFORMAT && p.malformed == 3 && p.n == 0 && strstr(attn_last_error(), "line 1"),
          "all malformed: %s", attn_last_error());
    attn_pairs_free(&p);
    CHECK(attn_pairs_read(tmp_path("nope.tsv"), &p) == ATTN_EIO, "missing file");
    remove(mp);
}

/* A synthetic set of n pairs, written to a file and read back. */
static void synthetic(int n, attn_pairs *p) {
    const char *path = tmp_path("synthetic.tsv");
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < n; i++) fprintf(f, "Sentence number %d.\t第%d句。\tsynthetic\n", i + 1, i + 1);
    fclose(f);
    attn_pairs_read(path, p);
    remove(path);
}

static void test_split(void) {
    attn_pairs all = {0}, tr = {0}, va = {0}, te = {0};
    synthetic(1000, &all);
    CHECK(all.n == 1000, "synthetic");
    CHECK(attn_pairs_split(&all, 42, 0.1, 0.1, &tr, &va, &te) == ATTN_OK, "split: %s", attn_last_error());
    CHECK(tr.n == 800 && va.n == 100 && te.n == 100, "sizes %d %d %d", tr.n, va.n, te.n);
    /* Every line exactly once; each part in file order. */
    int seen[1001] = {0}, ordered = 1;
    attn_pairs *parts[3] = {&tr, &va, &te};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < parts[k]->n; i++) {
            seen[parts[k]->pair[i].line]++;
            if (i && parts[k]->pair[i].line <= parts[k]->pair[i - 1].line) ordered = 0;
        }
    int once = 1;
    for (int i = 1; i <= 1000; i++) once &= seen[i] == 1;
    CHECK(once && ordered, "partition in file order");
    /* The same seed gives the same bytes; another seed another split. */
    const char *a = tmp_path("test_a.tsv"), *b = tmp_path("test_b.tsv"), *c = tmp_path("test_c.tsv");
    attn_pairs_write(&te, a);
    attn_pairs t2 = {0};
    attn_pairs_split(&all, 42, 0.1, 0.1, NULL, NULL, &t2);
    attn_pairs_write(&t2, b);
    attn_pairs_split(&all, 43, 0.1, 0.1, NULL, NULL, &t2);
    attn_pairs_write(&t2, c);
    size_t na, nb, nc;
    char *da = (char *)tu_read_file(a, &na), *db = (char *)tu_read_file(b, &nb), *dc = (char *)tu_read_file(c, &nc);
    CHECK(da && db && na == nb && memcmp(da, db, na) == 0, "same seed, same test file");
    CHECK(dc && (na != nc || memcmp(da, dc, na) != 0), "another seed, another test file");
    free(da), free(db), free(dc);
    remove(a), remove(b), remove(c);
    /* Pinned: the first test lines for seed 42. This fixes the algorithm (attn_rng, rejection
     * sampling, Fisher-Yates from the end) so that a change on any platform shows here. */
    int first[5];
    for (int i = 0; i < 5; i++) first[i] = te.pair[i].line;
    printf("split seed 42: test lines %d %d %d %d %d ...\n", first[0], first[1], first[2], first[3], first[4]);
    static const int pinned[5] = {16, 29, 52, 56, 66};
    CHECK(memcmp(first, pinned, sizeof first) == 0, "pinned split changed");
    /* The three files at once, read back. */
    CHECK(attn_pairs_split_save(&all, 42, 0.1, 0.1, g_dir) == ATTN_OK, "split_save: %s", attn_last_error());
    const char *names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    int sizes[3] = {800, 100, 100};
    for (int k = 0; k < 3; k++) {
        attn_pairs r = {0};
        CHECK(attn_pairs_read(tmp_path(names[k]), &r) == ATTN_OK && r.n == sizes[k], "%s read back", names[k]);
        if (k == 2 && r.n == 100) CHECK(strcmp(r.pair[0].side[0], "Sentence number 16.") == 0, "test.tsv content");
        attn_pairs_free(&r);
        remove(tmp_path(names[k]));
    }
    /* Rounding and edge fractions. */
    CHECK(attn_pairs_split(&all, 1, 0.0, 0.0, &tr, &va, &te) == ATTN_OK && tr.n == 1000 && va.n == 0 && te.n == 0, "0/0");
    CHECK(attn_pairs_split(&all, 1, 0.5, 0.5, &tr, &va, &te) == ATTN_OK && tr.n == 0 && va.n == 500 && te.n == 500, "all");
    CHECK(attn_pairs_split(&all, 1, 0.6, 0.6, &tr, &va, &te) == ATTN_EINVAL, "fractions over 1");
    CHECK(attn_pairs_split(&all, 1, 0.1, 0.1, &all, &va, &te) == ATTN_EINVAL, "aliasing refused");
    attn_pairs small = {0};
    synthetic(3, &small);
    CHECK(attn_pairs_split(&small, 5, 0.5, 0.5, &tr, &va, &te) == ATTN_OK && va.n == 2 && te.n == 1 && tr.n == 0,
          "rounding on 3 pairs: %d %d %d", tr.n, va.n, te.n);
    attn_pairs_free(&small);
    attn_pairs_free(&all), attn_pairs_free(&tr), attn_pairs_free(&va), attn_pairs_free(&te), attn_pairs_free(&t2);
}

/* ---- Out of memory ------------------------------------------------------------------------
 * Every allocation in turn fails: each call must return an error (no crash, no leak under
 * LeakSanitizer), and with enough memory the same work succeeds. */

static long g_fail_at = -1, g_count;
static void *failing_malloc(size_t n, void *user) {
    (void)user;
    if (g_fail_at >= 0 && g_count++ == g_fail_at) return NULL;
    return malloc(n);
}
static void plain_free(void *q, void *user) {
    (void)user;
    free(q);
}

static int workload(void) {
    attn_tokens t = {0};
    attn_counter *c = NULL;
    attn_vocab *v = NULL, *w = NULL;
    attn_pairs p = {0}, a = {0}, b = {0};
    char *d = NULL;
    const char *hyp[] = {"The cat is on the mat.", "我爱你。"}, *ref[] = {"The cat sat on the mat.", "我爱他。"};
    attn_bleu_score s;
    double em;
    int st = attn_tokenize(ATTN_TOK_EN, "I'm fine, thanks. It costs $1,000!", &t);
    if (!st) st = attn_detokenize(ATTN_TOK_EN, t.tok, t.n, ATTN_DETOK_CAPITALIZE, &d);
    if (!st) st = attn_tokenize(ATTN_TOK_ZH, "我现在30岁了。", &t);
    if (!st) st = attn_tokenize(ATTN_TOK_EN_TUTORIAL, "Wait... 7 days!", &t);
    if (!st) st = attn_tokenize(ATTN_TOK_SPACE, "a b\xFF c", &t);
    if (!st) st = attn_counter_new(&c);
    for (int i = 0; i < 200 && !st; i++) {
        char word[16];
        snprintf(word, sizeof word, "w%d", i);
        st = attn_counter_add(c, word, strlen(word), i % 7 + 1, NULL);
    }
    if (!st) st = attn_vocab_build(c, 1, 0, &v);
    if (!st) st = attn_vocab_save(v, tmp_path("oom_vocab.txt"));
    if (!st) st = attn_vocab_load(tmp_path("oom_vocab.txt"), &w);
    if (!st) st = attn_vocab_decode(w, (const int32_t[]){4, 5, 6}, 3, 0, &t);
    if (!st) st = attn_pairs_read(DATA "pairs_small.tsv", &p);
    if (!st) st = attn_pairs_filter_length(&p, (const attn_tok_kind[]){ATTN_TOK_EN, ATTN_TOK_ZH}, (const int[]){5, 5});
    if (!st) st = attn_pairs_split(&p, 1, 0.25, 0.25, &a, NULL, &b);
    if (!st) st = attn_pairs_write(&b, tmp_path("oom_pairs.tsv"));
    if (!st) st = attn_pairs_split_save(&p, 2, 0.25, 0.25, g_dir);
    if (!st) st = attn_bleu_corpus(hyp, ref, 2, NULL, &s);
    if (!st) {
        attn_bleu_opts o = {0};
        o.tokenize = ATTN_BLEU_TOK_ZH;
        st = attn_exact_match(hyp, ref, 2, &o, &em);
    }
    attn_tokens_free(&t);
    attn_counter_free(c);
    attn_vocab_free(v), attn_vocab_free(w);
    attn_pairs_free(&p), attn_pairs_free(&a), attn_pairs_free(&b);
    attn_free(d);
    return st;
}

static void test_oom(void) {
    attn_set_allocator(failing_malloc, plain_free, NULL);
    long k;
    int st = -1, bad = 0;
    for (k = 0; k < 100000; k++) {
        g_fail_at = k, g_count = 0;
        st = workload();
        if (st == ATTN_OK) break;
        if (st > 0) bad++;
    }
    g_fail_at = -1;
    attn_set_allocator(NULL, NULL, NULL);
    CHECK(st == ATTN_OK && bad == 0, "out-of-memory sweep: status %d after %ld failure points", st, k);
    printf("out of memory: %ld allocation failure points handled\n", k);
    remove(tmp_path("oom_vocab.txt"));
    remove(tmp_path("oom_pairs.tsv"));
    remove(tmp_path("train.tsv")), remove(tmp_path("valid.tsv")), remove(tmp_path("test.tsv"));
}

/* ---- Fuzzing the two readers -------------------------------------------------------------
 * Random byte changes, insertions and cuts of valid files: each read succeeds or fails with
 * a status, never crashes (ASan checks the reads). */
static void test_fuzz(void) {
    size_t n0;
    char *pairs = (char *)tu_read_file(DATA "pairs_small.tsv", &n0);
    const char vocab[] = "<pad>\n<unk>\n<bos>\n<eos>\nthe\n我\n。\ncat's\n";
    attn_rng rng;
    attn_rng_seed(&rng, 2024);
    int ok = 0, fail = 0;
    for (int trial = 0; trial < 600; trial++) {
        int which = trial & 1;
        const char *src = which ? vocab : pairs;
        size_t n = which ? sizeof vocab - 1 : n0;
        char *buf = malloc(n + 8);
        memcpy(buf, src, n);
        int edits = 1 + (int)(attn_rng_u32(&rng) % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            uint32_t r = attn_rng_u32(&rng);
            size_t at = (r >> 8) % n;
            static const char special[] = {'\t', '\n', '\r', '\0', (char)0xFF, (char)0xE6, (char)0x80, ' '};
            if ((r & 3) == 0) buf[at] = special[(r >> 4) % 8];
            else if ((r & 3) == 1) buf[at] = (char)(r >> 16);
            else if ((r & 3) == 2) n = at; /* cut */
            else buf[at] ^= (char)(1 << ((r >> 4) % 8));
        }
        const char *path = tmp_path("fuzz.txt");
        write_bytes(path, buf, n);
        int st;
        if (which) {
            attn_vocab *v = NULL;
            st = attn_vocab_load(path, &v);
            attn_vocab_free(v);
        } else {
            attn_pairs p = {0};
            st = attn_pairs_read(path, &p);
            if (st == ATTN_OK) CHECK(p.n + p.malformed == p.lines, "fuzz: counts");
            attn_pairs_free(&p);
        }
        CHECK(st == ATTN_OK || st == ATTN_EFORMAT, "fuzz: status %d", st);
        st == ATTN_OK ? ok++ : fail++;
        free(buf);
    }
    printf("fuzz: %d files read, %d refused\n", ok, fail);
    remove(tmp_path("fuzz.txt"));
    free(pairs);
}

/* ---- The real data ------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The smoke test on cmn.txt, run alone as `test_text cmn` (its own ctest test): the exit code
 * TU_SKIP when the data is not there. */
static int test_cmn(void) {
    const char *dir = getenv("ATTN_DATA_DIR");
    if (!dir || !*dir) dir = "../../shared/data";
    char path[1024];
    snprintf(path, sizeof path, "%s/cmn-eng/cmn.txt", dir);
    if (access(path, R_OK) != 0) {
        printf("skipped: %s not found (set ATTN_DATA_DIR)\n", path);
        return TU_SKIP;
    }
    double t0 = now_s();
    attn_pairs all = {0};
    CHECK(attn_pairs_read(path, &all) == ATTN_OK, "read cmn.txt: %s", attn_last_error());
    char rep[256];
    printf("cmn.txt: %d lines, %d pairs, %d malformed%s%s\n", all.lines, all.n, all.malformed, all.malformed ? ": " : "",
           attn_pairs_report(&all, rep, sizeof rep));
    CHECK(all.n > 1000 && all.n + all.malformed == all.lines, "pairs");
    attn_counter *ce, *cz;
    attn_counter_new(&ce), attn_counter_new(&cz);
    attn_tokens t = {0}, u = {0};
    int64_t ntok_e = 0, ntok_z = 0;
    int max_e = 0, max_z = 0, roundtrip_bad = 0;
    for (int i = 0; i < all.n; i++) {
        attn_tokenize(ATTN_TOK_EN, all.pair[i].side[0], &t);
        attn_counter_add_tokens(ce, &t);
        ntok_e += t.n;
        if (t.n > max_e) max_e = t.n;
        /* Detokenised English tokenises back to the same tokens. */
        char *d;
        attn_detokenize(ATTN_TOK_EN, t.tok, t.n, 0, &d);
        attn_tokenize(ATTN_TOK_EN, d, &u);
        int same = u.n == t.n;
        for (int k = 0; same && k < t.n; k++) same = strcmp(t.tok[k], u.tok[k]) == 0;
        if (!same && roundtrip_bad++ < 3) printf("  round trip differs: \"%s\" -> \"%s\"\n", all.pair[i].side[0], d);
        attn_free(d);
        attn_tokenize(ATTN_TOK_ZH, all.pair[i].side[1], &t);
        attn_counter_add_tokens(cz, &t);
        ntok_z += t.n;
        if (t.n > max_z) max_z = t.n;
    }
    CHECK(roundtrip_bad == 0, "%d English lines do not survive detokenisation", roundtrip_bad);
    printf("tokens: English %lld (%d distinct, longest %d), Chinese %lld (%d distinct, longest %d)\n",
           (long long)ntok_e, attn_counter_size(ce), max_e, (long long)ntok_z, attn_counter_size(cz), max_z);
    attn_vocab *ve1, *ve2, *vz1, *vz2;
    attn_vocab_build(ce, 1, 0, &ve1), attn_vocab_build(ce, 2, 0, &ve2);
    attn_vocab_build(cz, 1, 0, &vz1), attn_vocab_build(cz, 2, 0, &vz2);
    printf("vocabulary (all pairs, with 4 specials): English %d (min count 2: %d), Chinese %d (min count 2: %d)\n",
           attn_vocab_size(ve1), attn_vocab_size(ve2), attn_vocab_size(vz1), attn_vocab_size(vz2));
    CHECK(attn_vocab_size(vz1) > 1000 && attn_vocab_size(ve1) > 1000, "vocabulary sizes");
    attn_vocab_free(ve1), attn_vocab_free(ve2), attn_vocab_free(vz1), attn_vocab_free(vz2);
    attn_counter_free(ce), attn_counter_free(cz);

    /* The default split, and how much of valid/test the train vocabulary covers. */
    attn_pairs tr = {0}, va = {0}, te = {0};
    CHECK(attn_pairs_split(&all, 1, 0.1, 0.1, &tr, &va, &te) == ATTN_OK, "split");
    attn_counter_new(&ce), attn_counter_new(&cz);
    for (int i = 0; i < tr.n; i++) {
        attn_tokenize(ATTN_TOK_EN, tr.pair[i].side[0], &t), attn_counter_add_tokens(ce, &t);
        attn_tokenize(ATTN_TOK_ZH, tr.pair[i].side[1], &t), attn_counter_add_tokens(cz, &t);
    }
    attn_vocab_build(ce, 1, 0, &ve1), attn_vocab_build(cz, 1, 0, &vz1);
    int64_t unk_e = 0, unk_z = 0, tot_e = 0, tot_z = 0;
    int32_t *ids = malloc(4096 * sizeof *ids);
    for (int i = 0; i < te.n; i++) {
        int n, unk;
        attn_tokenize(ATTN_TOK_EN, te.pair[i].side[0], &t);
        if (attn_vocab_encode(ve1, &t, 0, ids, 4096, &n, &unk) == ATTN_OK) unk_e += unk, tot_e += n;
        attn_tokenize(ATTN_TOK_ZH, te.pair[i].side[1], &t);
        if (attn_vocab_encode(vz1, &t, 0, ids, 4096, &n, &unk) == ATTN_OK) unk_z += unk, tot_z += n;
    }
    free(ids);
    printf("split seed 1: train %d, valid %d, test %d; train vocabulary English %d, Chinese %d; "
           "unknown test tokens: English %.2f%%, Chinese %.2f%%\n",
           tr.n, va.n, te.n, attn_vocab_size(ve1), attn_vocab_size(vz1), 100.0 * (double)unk_e / (double)(tot_e ? tot_e : 1),
           100.0 * (double)unk_z / (double)(tot_z ? tot_z : 1));
    attn_vocab_free(ve1), attn_vocab_free(vz1);
    attn_counter_free(ce), attn_counter_free(cz);
    attn_tokens_free(&t), attn_tokens_free(&u);
    attn_pairs_free(&tr), attn_pairs_free(&va), attn_pairs_free(&te), attn_pairs_free(&all);
    printf("real-data smoke test: %.2f s\n", now_s() - t0);
    return tu_summary("text (cmn.txt)");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "cmn")) return test_cmn();
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/attn_test_text.XXXXXX", base);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_utf8();
    test_tokenize();
    test_vocab();
    test_pairs();
    test_split();
    test_oom();
    test_fuzz();
    rmdir(g_dir);
    return tu_summary("text");
}
