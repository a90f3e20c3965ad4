/* The core utilities: the growing string (core/strbuf.h), the whole-file reader
 * (core/file.h), and JSON (io/json.h): the parser, and the writer, its output read back. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/core.h"
#include "core/file.h"
#include "core/strbuf.h"
#include "io/json.h"
#include "testutil.h"

static long g_fail_at = -1, g_allocs;
static void *failing_malloc(size_t n, void *user) {
    (void)user;
    return g_allocs++ == g_fail_at ? NULL : malloc(n);
}
static void plain_free(void *p, void *user) {
    (void)user;
    free(p);
}

static void test_strbuf(void) {
    attn__sb sb = {0};
    size_t len = 7;
    char *s = attn__sb_take(&sb, &len);
    CHECK(s && !strcmp(s, "") && len == 0, "an empty builder gives \"\"");
    attn_free(s);
    CHECK(attn__sb_str(&sb, "ab") == ATTN_OK && attn__sb_put(&sb, "cdef", 2) == ATTN_OK, "append");
    CHECK(attn__sb_printf(&sb, "%d-%s", 42, "x") == ATTN_OK && !strcmp(sb.buf, "abcd42-x") && sb.len == 8, "%s", sb.buf);
    /* Grow far past the first allocation, with one long printf among many short appends. */
    char big[5000];
    memset(big, 'z', sizeof big - 1), big[sizeof big - 1] = 0;
    for (int i = 0; i < 1000; i++) attn__sb_put(&sb, "0123456789", 10);
    attn__sb_printf(&sb, "[%s]", big);
    CHECK(sb.len == 8 + 10000 + 5001 && strlen(sb.buf) == sb.len && sb.buf[8 + 10000] == '[' && sb.buf[sb.len - 1] == ']',
          "length %zu", sb.len);
    s = attn__sb_take(&sb, &len);
    CHECK(s && len == 8 + 10000 + 5001 && sb.buf == NULL && sb.len == 0, "take");
    attn_free(s);
    /* A failed allocation is sticky: later appends fail, take gives NULL, nothing leaks. */
    attn_set_allocator(failing_malloc, plain_free, NULL);
    g_allocs = 0, g_fail_at = 1;
    CHECK(attn__sb_str(&sb, "abc") == ATTN_OK, "first append");
    CHECK(attn__sb_put(&sb, big, sizeof big) == ATTN_ENOMEM && sb.failed, "a failed growth is ATTN_ENOMEM");
    g_fail_at = -1;
    CHECK(attn__sb_str(&sb, "d") == ATTN_ENOMEM && attn__sb_printf(&sb, "e") == ATTN_ENOMEM, "failure is sticky");
    CHECK(attn__sb_take(&sb, NULL) == NULL && sb.buf == NULL && !sb.failed, "take after a failure");
    attn_set_allocator(NULL, NULL, NULL);
}

static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, "write %s", path);
}

static void test_read_file(const char *dir) {
    char path[512];
    char *s = (char *)1;
    size_t n = 99;
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    int st = attn__read_file(path, 100, &s, &n);
    CHECK(st == ATTN_EIO && s == NULL && strstr(attn_last_error(), "missing.txt"), "missing file: %d %s", st, attn_last_error());
    CHECK(attn__read_file(dir, 100, &s, &n) == ATTN_EIO && s == NULL, "a directory is not a file");

    snprintf(path, sizeof path, "%s/empty.txt", dir);
    write_bytes(path, "", 0);
    st = attn__read_file(path, 100, &s, &n);
    CHECK(st == ATTN_OK && s && s[0] == 0 && n == 0, "empty file: %d", st);
    attn_free(s);

    /* Larger than any buffer a reader might keep (3 MiB, with NULs and a pattern to check). */
    size_t big = (size_t)3 << 20;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++) data[i] = (char)(i * 2654435761u >> 13);
    snprintf(path, sizeof path, "%s/big.bin", dir);
    write_bytes(path, data, big);
    st = attn__read_file(path, big, &s, &n);
    CHECK(st == ATTN_OK && n == big && s && !memcmp(s, data, big) && s[big] == 0, "big file: %d, %zu bytes", st, n);
    attn_free(s);
    st = attn__read_file(path, big - 1, &s, &n);
    CHECK(st == ATTN_EFORMAT && s == NULL && strstr(attn_last_error(), "big.bin"), "limit: %d %s", st, attn_last_error());
    unlink(path);
    free(data);
    snprintf(path, sizeof path, "%s/empty.txt", dir);
    unlink(path);
}

/* The parser: what it accepts, refuses and decodes. */
static void test_json(void) {
    static const char *ok[] = {
        "{}", " [ ] ", "0", "-0", "1e5", "-1.5E-3", "\"\"", "true", "null", "[1,[2,[3]]]",
        "{\"a\":{\"b\":[]}}", "\"\\u00e9\\ud83d\\ude00\\n\\/\"", "\"\xc3\xa9\"", "[18446744073709551615]",
    };
    static const char *bad[] = {
        "", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "{\"a\" 1}", "{\"a\":}", "01", "1.", ".5", "-", "+1", "1e",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"",
        "\"a\nb\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{} x", "[1] [2]", "{\"a\":1}}", "NaN", "[Infinity]",
    };
    char err[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        attn__json *v = NULL;
        int rc = attn__json_parse(ok[i], strlen(ok[i]), &v, err, sizeof err);
        CHECK(rc == ATTN_OK && v, "json '%s' refused: %s", ok[i], err);
        attn__json_free(v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attn__json *v = NULL;
        int rc = attn__json_parse(bad[i], strlen(bad[i]), &v, err, sizeof err);
        CHECK(rc == ATTN_EFORMAT && !v && err[0], "json '%s' accepted", bad[i]);
        attn__json_free(v);
    }
    /* Decoding. */
    const char *s = "{\"k\":\"\\u00e9\\ud83d\\ude00\\t\\\"\",\"n\":[7,18446744073709551615,18446744073709551616,1.0,-1]}";
    attn__json *v = NULL;
    CHECK(attn__json_parse(s, strlen(s), &v, err, sizeof err) == ATTN_OK, "%s", err);
    if (v) {
        attn__json *k = v->child, *n = k->next, *e = n->child;
        CHECK(v->len == 2 && !strcmp(k->key, "k") && !strcmp(k->str, "\xc3\xa9\xf0\x9f\x98\x80\t\"") && k->len == 8, "string");
        CHECK(n->len == 5 && e->is_uint && e->u == 7, "7");
        CHECK(e->next->is_uint && e->next->u == UINT64_MAX, "u64 max");
        CHECK(!e->next->next->is_uint, "2^64 overflows");
        CHECK(!e->next->next->next->is_uint && !e->next->next->next->next->is_uint, "1.0 and -1 are not uint");
    }
    attn__json_free(v);
    /* Deep nesting fails cleanly instead of exhausting the stack; long flat arrays are fine. */
    size_t deep = 100000;
    char *t = malloc(2 * deep + 1);
    memset(t, '[', deep);
    memset(t + deep, ']', deep);
    CHECK(attn__json_parse(t, 2 * deep, &v, err, sizeof err) == ATTN_EFORMAT && strstr(err, "nesting"), "deep nesting");
    size_t o = 0;
    t[o++] = '[';
    for (size_t i = 0; i < deep - 1; i++) {
        if (i) t[o++] = ',';
        t[o++] = '0';
    }
    t[o++] = ']';
    CHECK(attn__json_parse(t, o, &v, err, sizeof err) == ATTN_OK && v && v->len == deep - 1, "long array: %s", err);
    attn__json_free(v);
    free(t);
}

/* The text sb holds, parsed back: one string value, compared with want. */
static void check_string(const char *in, int flags, const char *want_json, const char *want_value) {
    attn__sb sb = {0};
    attn__json_escape(&sb, in, flags);
    CHECK(sb.buf && !strcmp(sb.buf, want_json), "escape: got %s, want %s", sb.buf ? sb.buf : "(null)", want_json);
    attn__json *v = NULL;
    char err[128];
    int st = attn__json_parse(sb.buf, sb.len, &v, err, sizeof err);
    CHECK(st == ATTN_OK && v->type == ATTN__JSON_STRING && !strcmp(v->str, want_value), "read back %s: %s", want_json, err);
    attn__json_free(v);
    attn__sb_free(&sb);
}

static void test_json_strings(void) {
    check_string("plain", 0, "\"plain\"", "plain");
    check_string("q\"b\\s/", 0, "\"q\\\"b\\\\s/\"", "q\"b\\s/");
    check_string("\x01\b\t\n\f\r\x1f", 0, "\"\\u0001\\b\\t\\n\\f\\r\\u001f\"", "\x01\b\t\n\f\r\x1f");
    check_string("\x7f caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 0, "\"\x7f caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"",
                 "\x7f caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
    check_string("bad \xff end", 0, "\"bad \xef\xbf\xbd end\"", "bad \xef\xbf\xbd end"); /* U+FFFD */
    check_string("</script>&", ATTN__JSON_HTML, "\"\\u003c/script\\u003e\\u0026\"", "</script>&");
    check_string("</script>&", 0, "\"</script>&\"", "</script>&");
    check_string(NULL, 0, "\"\"", "");
}

static void test_json_numbers(void) {
    static const struct {
        double v;
        const char *want;
    } d[] = {{0.9, "0.9"}, {0.1, "0.1"}, {1e-8, "1e-08"}, {-2.5, "-2.5"}, {0.0, "0"}, {1.0 / 3.0, "0.3333333333333333"},
             {NAN, "\"nan\""}, {INFINITY, "\"inf\""}, {-INFINITY, "\"-inf\""}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        attn__sb sb = {0};
        attn__json_f64(&sb, d[i].v);
        CHECK(!strcmp(sb.buf, d[i].want), "f64 %.17g: got %s, want %s", d[i].v, sb.buf, d[i].want);
        attn__sb_free(&sb);
    }
    attn__sb sb = {0};
    attn__json_f32(&sb, 0.1f);
    CHECK(!strcmp(sb.buf, "0.1"), "f32 0.1f: %s", sb.buf);
    attn__sb_free(&sb);
    /* Round trips over many bit patterns: floats (with subnormals) and doubles. */
    attn_rng r;
    attn_rng_seed(&r, 7);
    int bad_f = 0, bad_d = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t b = attn_rng_u32(&r);
        float f;
        memcpy(&f, &b, 4);
        if (!isfinite(f)) continue;
        attn__json_f32(&sb, f);
        bad_f += strtof(sb.buf, NULL) != f || strlen(sb.buf) > 16;
        attn__sb_free(&sb);
        uint64_t b2 = (uint64_t)attn_rng_u32(&r) << 32 | attn_rng_u32(&r);
        double x;
        memcpy(&x, &b2, 8);
        if (!isfinite(x)) continue;
        attn__json_f64(&sb, x);
        bad_d += strtod(sb.buf, NULL) != x;
        attn__sb_free(&sb);
    }
    CHECK(!bad_f && !bad_d, "round trips failed: %d floats, %d doubles", bad_f, bad_d);
}

static void test_json_writer(void) {
    attn__sb sb = {0};
    attn__jw w;
    /* Compact, as the safetensors header. */
    attn__jw_init(&w, &sb, 0, 0);
    attn__jw_object(&w, 0);
    attn__jw_key(&w, "a\"b"), attn__jw_array(&w, 0);
    attn__jw_i64(&w, -3), attn__jw_u64(&w, UINT64_MAX), attn__jw_bool(&w, 1), attn__jw_f32(&w, 0.5f);
    attn__jw_end(&w, ']');
    attn__jw_key(&w, "e"), attn__jw_object(&w, 0), attn__jw_end(&w, '}');
    attn__jw_key(&w, "r"), attn__jw_raw(&w, "{\"x\": null}");
    attn__jw_end(&w, '}');
    const char *want = "{\"a\\\"b\":[-3,18446744073709551615,true,0.5],\"e\":{},\"r\":{\"x\": null}}";
    CHECK(!strcmp(sb.buf, want), "compact: got %s", sb.buf);
    attn__json *v = NULL;
    char err[128];
    CHECK(attn__json_parse(sb.buf, sb.len, &v, err, sizeof err) == ATTN_OK && v->len == 3, "read back: %s", err);
    attn__json_free(v);
    attn__sb_free(&sb);
    /* Spaced, one member per line, as a checkpoint's config.json. */
    attn__jw_init(&w, &sb, 1, 2);
    attn__jw_object(&w, 1);
    attn__jw_key(&w, "v"), attn__jw_f64(&w, 0.9);
    attn__jw_key(&w, "l"), attn__jw_object(&w, 1);
    attn__jw_key(&w, "k"), attn__jw_array(&w, 0), attn__jw_str(&w, "x"), attn__jw_str(&w, "y"), attn__jw_end(&w, ']');
    attn__jw_end(&w, '}');
    attn__jw_key(&w, "n"), attn__jw_array(&w, 1), attn__jw_end(&w, ']');
    attn__jw_end(&w, '}');
    want = "{\n  \"v\": 0.9,\n  \"l\": {\n    \"k\": [\"x\", \"y\"]\n  },\n  \"n\": []\n}";
    CHECK(!strcmp(sb.buf, want), "lines: got\n%s", sb.buf);
    CHECK(attn__json_parse(sb.buf, sb.len, &v, err, sizeof err) == ATTN_OK && v->len == 3, "read back: %s", err);
    attn__json_free(v);
    attn__sb_free(&sb);
    CHECK(attn__jw_end(&w, '}') == ATTN_EINVAL, "an end without a container is refused");
}

int main(void) {
    test_strbuf();
    char dir[] = "/tmp/attn_test_util_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return tu_summary("test_util");
    }
    test_read_file(dir);
    rmdir(dir);
    test_json();
    test_json_strings();
    test_json_numbers();
    test_json_writer();
    return tu_summary("test_util");
}
