/* Tests of safetensors files and of the JSON parser under their headers (attn/io.h,
 * io/json.h): the fixture written by the safetensors package (tests/data/io/, made by
 * tools/gen_io_fixtures.py) and byte strings quoted from the reference implementation's tests;
 * every malformed case we could think of, every truncation of valid files, single-byte
 * corruptions, and allocation failures at every allocation (also of .npy loading). The .npy
 * tests are in test_npy.c. Run under ASan/UBSan in CI. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/io.h"
#include "io/json.h"
#include "testutil.h"

#define DATA "data/io/"

/* Loads a (truncated or corrupted) file: it fails with a message naming the file, or gives
 * self-consistent tensors. */
static int load_st_checked(const char *path) {
    attn_st *st = NULL;
    int rc = attn_st_open(path, &st);
    if (rc == ATTN_OK) {
        for (int i = 0; i < attn_st_count(st); i++) {
            attn_array a;
            int64_t shape[8];
            CHECK(attn_st_shape(st, i, shape) >= 0 && attn_st_dtype(st, i), "info");
            if (attn_st_get_f32(st, attn_st_name(st, i), &a) == ATTN_OK)
                CHECK(a.nbytes == (size_t)attn_array_numel(&a) * 4, "inconsistent tensor");
            attn_array_free(&a);
        }
        attn_st_free(st);
    } else {
        CHECK(st == NULL && tu_err_has(path), "failure without a message naming the file: %s", attn_last_error());
    }
    return rc;
}

/* ---- safetensors ----------------------------------------------------------------------- */

static void test_st_fixture(void) {
    attn_st *st = NULL;
    const char *file = DATA "small.safetensors";
    int rc = attn_st_open(file, &st);
    CHECK(rc == ATTN_OK, "%s", attn_last_error());
    if (rc) return;
    CHECK(attn_st_count(st) == 3, "count %d", attn_st_count(st));
    const char *names[] = {"a.weight", "b.bias", "c.half"}, *dts[] = {"F64", "F32", "F16"};
    for (int i = 0; i < 3; i++) {
        CHECK(attn_st_name(st, i) && !strcmp(attn_st_name(st, i), names[i]), "name %d", i);
        CHECK(!strcmp(attn_st_dtype(st, i), dts[i]), "dtype %d", i);
        CHECK(attn_st_find(st, names[i]) == i, "find %s", names[i]);
    }
    CHECK(attn_st_name(st, 3) == NULL && attn_st_name(st, -1) == NULL && attn_st_find(st, "nope") == -1, "range");
    int64_t shape[8];
    CHECK(attn_st_shape(st, 0, shape) == 2 && shape[0] == 2 && shape[1] == 2, "shape");
    CHECK(attn_st_shape(st, 9, shape) == -1, "shape range");
    CHECK(attn_st_metadata(st, "format") && !strcmp(attn_st_metadata(st, "format"), "pt"), "metadata");
    CHECK(attn_st_metadata(st, "note") && !strcmp(attn_st_metadata(st, "note"), "caf\xc3\xa9 \"q\""), "metadata escapes");
    CHECK(attn_st_metadata(st, "missing") == NULL, "missing metadata");

    attn_array a;
    const attn_dtype src[] = {ATTN_F64, ATTN_F32, ATTN_F16};
    for (int i = 0; i < 3; i++) {
        CHECK(attn_st_get_f32(st, names[i], &a) == ATTN_OK, "%s", attn_last_error());
        tu_fixture_check_f32(names[i], &a, src[i]);
        attn_array_free(&a);
    }
    float dst[4] = {0};
    int64_t s22[2] = {2, 2}, s3[1] = {3}, s4[1] = {4};
    CHECK(attn_st_read_f32(st, "a.weight", 2, s22, dst) == ATTN_OK && dst[0] == -1.0f && dst[3] == 0.5f, "read_f32");
    CHECK(attn_st_read_f32(st, "b.bias", 1, s3, dst) == ATTN_OK && dst[2] == 0.0f, "read_f32 1-d");
    CHECK(attn_st_read_f32(st, "b.bias", 1, s4, dst) == ATTN_ESHAPE, "wrong shape accepted");
    char want[256];
    snprintf(want, sizeof want, "tensor 'b.bias' in %s has shape (3,), expected (4,)", file);
    CHECK(!strcmp(attn_last_error(), want), "message: %s", attn_last_error());
    CHECK(attn_st_read_f32(st, "a.weight", 1, s4, dst) == ATTN_ESHAPE, "wrong ndim accepted");
    snprintf(want, sizeof want, "tensor 'a.weight' in %s has shape (2, 2), expected (4,)", file);
    CHECK(!strcmp(attn_last_error(), want), "message: %s", attn_last_error());
    CHECK(attn_st_get_f32(st, "out_proj.weight", &a) == ATTN_ENOTFOUND, "missing tensor");
    CHECK(tu_err_has("'out_proj.weight'") && tu_err_has(file), "message: %s", attn_last_error());
    CHECK(attn_st_read_f32(st, "nope", 0, NULL, dst) == ATTN_ENOTFOUND, "missing tensor (read)");
    attn_st_free(st);
    attn_st_free(NULL);
    CHECK(attn_st_open(tu_path("missing.safetensors"), &st) == ATTN_EIO && st == NULL, "missing file");
    CHECK(tu_err_has("missing.safetensors"), "message: %s", attn_last_error());
}

/* Byte strings from the reference implementation's unit tests (safetensors/src/tensor.rs:
 * test_serialization, test_empty, test_serialization_forced_alignement). */
static void test_st_writer_reference_bytes(void) {
    static const unsigned char ser[] = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
        70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
        111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0,
        64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
    static const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
    static const unsigned char empty_meta[] = {40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97,
                                               116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114,
                                               107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32};
    static const unsigned char aligned[] = {
        72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70,
        51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97,
        95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0,
        0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
    const float v[6] = {0, 1, 2, 3, 4, 5};
    const int64_t s123[3] = {1, 2, 3}, s1123[4] = {1, 1, 2, 3};
    const char *p = tu_path("ref.safetensors");

    attn_st_writer *w; CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "attn.0", 3, s123, v) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK, "%s", attn_last_error());
    CHECK(tu_file_equals(p, ser, sizeof ser), "test_serialization bytes");
    attn_st_writer_free(w);

    CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK && tu_file_equals(p, empty, sizeof empty), "test_empty bytes");
    CHECK(attn_st_writer_set_metadata(w, "framework", "tf") == ATTN_OK, "metadata");
    CHECK(attn_st_writer_set_metadata(w, "framework", "pt") == ATTN_OK, "metadata replaced");
    CHECK(attn_st_writer_save(w, p) == ATTN_OK && tu_file_equals(p, empty_meta, sizeof empty_meta), "test_empty metadata bytes");
    attn_st_writer_free(w);

    CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "attn0", 4, s1123, v) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK && tu_file_equals(p, aligned, sizeof aligned), "forced alignment bytes");
    attn_st_writer_free(w);
    attn_st_writer_free(NULL);
}

static void test_st_writer_roundtrip(void) {
    attn_st_writer *w; CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    float x[24], one = 7.5f;
    tu_randn(x, 24, 3);
    const int64_t s234[3] = {2, 3, 4}, s0[2] = {0, 5}, s6[1] = {6};
    /* Added out of order; names with escapes and UTF-8. */
    const char *weird = "q\"uo\\te\n\x01/\xc3\xa9\xf0\x9f\x98\x80";
    CHECK(attn_st_writer_add_f32(w, "zeta", 3, s234, x) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "alpha", 1, s6, x + 3) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "scalar", 0, NULL, &one) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "empty", 2, s0, NULL) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, weird, 1, s6, x + 10) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_set_metadata(w, "format", "pt") == ATTN_OK, "meta");
    CHECK(attn_st_writer_set_metadata(w, "b\tkey", weird) == ATTN_OK, "meta");
    CHECK(attn_st_writer_set_metadata(w, "a", "") == ATTN_OK, "meta");
    /* Refusals. */
    int64_t neg[1] = {-1}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(attn_st_writer_add_f32(w, "alpha", 1, s6, x) == ATTN_EINVAL && tu_err_has("duplicate"), "duplicate name");
    CHECK(attn_st_writer_add_f32(w, "__metadata__", 1, s6, x) == ATTN_EINVAL, "reserved name");
    CHECK(attn_st_writer_add_f32(w, "bad\xff", 1, s6, x) == ATTN_EINVAL, "invalid UTF-8");
    CHECK(attn_st_writer_add_f32(w, "neg", 1, neg, x) == ATTN_EINVAL, "negative dim");
    CHECK(attn_st_writer_add_f32(w, "nine", 9, s9, x) == ATTN_EINVAL, "9 dims");
    CHECK(attn_st_writer_add_f32(w, "null", 1, s6, NULL) == ATTN_EINVAL, "NULL data");
    CHECK(attn_st_writer_set_metadata(w, "k", "\xc3") == ATTN_EINVAL, "invalid UTF-8 metadata");
    /* The writer copied the data. */
    float saved = x[0];
    x[0] = 1e9f;
    const char *p = tu_path("rt.safetensors");
    CHECK(attn_st_writer_save(w, p) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK, "saving twice: %s", attn_last_error());
    x[0] = saved;
    attn_st_writer_free(w);
    CHECK(tu_count_tmp_files() == 0, "temporary files left behind");

    size_t n = 0;
    unsigned char *raw = tu_read_file(p, &n);
    CHECK(raw && n >= 8, "read");
    if (raw) {
        uint64_t hl = 0;
        for (int i = 0; i < 8; i++) hl |= (uint64_t)raw[i] << (8 * i);
        CHECK(hl % 8 == 0 && raw[8] == '{', "header padded to 8: %" PRIu64, hl);
        CHECK(!memcmp(raw + 8, "{\"__metadata__\":{\"a\":\"\",\"b\\tkey\":", 33), "metadata first, sorted, escaped");
        free(raw);
    }

    attn_st *st = NULL;
    CHECK(attn_st_open(p, &st) == ATTN_OK, "%s", attn_last_error());
    if (!st) return;
    CHECK(attn_st_count(st) == 5, "count");
    /* Offsets follow name order (bytewise): alpha, empty, q"uo..., scalar, zeta. */
    const char *order[] = {"alpha", "empty", weird, "scalar", "zeta"};
    for (int i = 0; i < 5; i++) CHECK(attn_st_name(st, i) && !strcmp(attn_st_name(st, i), order[i]), "order %d", i);
    attn_array a;
    CHECK(attn_st_get_f32(st, "zeta", &a) == ATTN_OK && a.ndim == 3 && a.shape[2] == 4, "zeta");
    if (a.data) tu_close("zeta", a.data, x, 24, 0, 0);
    attn_array_free(&a);
    CHECK(attn_st_get_f32(st, weird, &a) == ATTN_OK && a.shape[0] == 6, "weird name");
    if (a.data) tu_close("weird", a.data, x + 10, 6, 0, 0);
    attn_array_free(&a);
    CHECK(attn_st_get_f32(st, "scalar", &a) == ATTN_OK && a.ndim == 0 && *(float *)a.data == 7.5f, "scalar");
    attn_array_free(&a);
    CHECK(attn_st_get_f32(st, "empty", &a) == ATTN_OK && a.ndim == 2 && a.nbytes == 0, "empty");
    attn_array_free(&a);
    float out0;
    CHECK(attn_st_read_f32(st, "scalar", 0, NULL, &out0) == ATTN_OK && out0 == 7.5f, "read scalar");
    CHECK(attn_st_metadata(st, "format") && !strcmp(attn_st_metadata(st, "format"), "pt"), "meta format");
    CHECK(attn_st_metadata(st, "b\tkey") && !strcmp(attn_st_metadata(st, "b\tkey"), weird), "meta escapes");
    CHECK(attn_st_metadata(st, "a") && !strcmp(attn_st_metadata(st, "a"), ""), "meta empty");
    attn_st_free(st);
    tu_fuzz_file(p, load_st_checked, "safetensors");
}

/* Writes a safetensors file: N = strlen(header), then header, then n data bytes. */
static void write_st_raw(const char *path, const char *header, const void *data, size_t n) {
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + n + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (n) memcpy(b + 8 + hl, data, n);
    tu_write_file(path, b, 8 + hl + n);
    free(b);
}

static void test_st_malformed(void) {
    unsigned char d[64];
    for (int i = 0; i < 64; i++) d[i] = (unsigned char)i;
    const char *p = tu_path("bad.safetensors");
    static const struct {
        const char *header;
        size_t ndata;
        int want;
        const char *msg; /* expected in the message, or NULL */
    } cases[] = {
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, ATTN_OK, NULL},
        {"  {\"t\":{\"shape\":[4],\"data_offsets\":[0,16],\"dtype\":\"F32\",\"extra\":[1]}}   \n", 16, ATTN_OK, NULL},
        {"{\"__metadata__\":null,\"t\":{\"dtype\":\"U16\",\"shape\":[8],\"data_offsets\":[0,16]}}", 16, ATTN_OK, NULL},
        {"{\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]},\"a\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 8, ATTN_OK, NULL},
        {"{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"f\":{\"dtype\":\"F64\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 0, ATTN_OK, NULL},
        {"{}", 0, ATTN_OK, NULL},
        /* refused */
        {"{}", 4, ATTN_EFORMAT, "end at byte 0"},
        {"[]", 0, ATTN_EFORMAT, "not a JSON object"},
        {"", 0, ATTN_EFORMAT, "invalid JSON"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},}", 16, ATTN_EFORMAT, "invalid JSON"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}} x", 16, ATTN_EFORMAT, "invalid JSON"},
        {"{\"t\":{\"dtype\":\"F33\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "unknown dtype 'F33'"},
        {"{\"t\":{\"dtype\":\"f32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "unknown dtype"},
        {"{\"t\":{\"dtype\":4,\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "dtype"},
        {"{\"t\":{\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "lacks \"dtype\""},
        {"{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "lacks \"shape\""},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, ATTN_EFORMAT, "lacks \"data_offsets\""},
        {"{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "duplicate"},
        {"{\"t\":[1,2]}", 16, ATTN_EFORMAT, "not an object"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2.0],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[\"2\",2],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "dimensions"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "too large"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "need 24 bytes"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,20]}}", 16, ATTN_EFORMAT, "data_offsets"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", 16, ATTN_EFORMAT, "data_offsets"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,-16]}}", 16, ATTN_EFORMAT, "data_offsets"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":\"0,16\"}}", 16, ATTN_EFORMAT, "data_offsets"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, ATTN_EFORMAT, "outside"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", 16, ATTN_EFORMAT, "outside"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[18446744073709551600,18446744073709551615]}}", 16, ATTN_EFORMAT, "outside"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[4,20]}}", 20, ATTN_EFORMAT, "contiguous"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 20, ATTN_EFORMAT, "end at byte 16"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"u\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "contiguous"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, ATTN_EFORMAT, "contiguous"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, ATTN_EFORMAT, "duplicate tensor name 't'"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, ATTN_EFORMAT, "duplicate"},
        {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, ATTN_EFORMAT, "duplicate metadata key 'k'"},
        {"{\"__metadata__\":{\"k\":1}}", 0, ATTN_EFORMAT, "not a string"},
        {"{\"__metadata__\":[]}", 0, ATTN_EFORMAT, "not an object"},
        {"{\"__metadata__\":\"x\"}", 0, ATTN_EFORMAT, "not an object"},
        {"{\"t\\u0000\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "invalid JSON"},
        {"{\"t\\ud800\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "surrogate"},
        {"{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "UTF-8"},
        {"{'t':{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, ATTN_EFORMAT, "invalid JSON"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_st_raw(p, cases[k].header, d, cases[k].ndata);
        attn_st *st = (attn_st *)&k; /* must be reset to NULL on failure */
        int rc = attn_st_open(p, &st);
        CHECK(rc == cases[k].want, "case %zu %s: got %d want %d (%s)", k, cases[k].header, rc, cases[k].want,
              attn_last_error());
        if (rc) {
            CHECK(st == NULL, "output not reset");
            CHECK(tu_err_has(p), "message lacks the path: %s", attn_last_error());
            if (cases[k].msg) CHECK(tu_err_has(cases[k].msg), "case %zu: message lacks '%s': %s", k, cases[k].msg, attn_last_error());
        }
        attn_st_free(rc ? NULL : st);
    }

    /* Recognised dtypes that do not convert; integer and bfloat dtypes that do. */
    write_st_raw(p, "{\"__metadata__\":null,\"u\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                    "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[4,20]},"
                    "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]},"
                    "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[24,27]},"
                    "\"n\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[27,31]},"
                    "\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[31,32]},"
                    "\"\\ud83d\\ude00\":{\"dtype\":\"F8_E4M3\",\"shape\":[],\"data_offsets\":[32,33]}}",
                 "\x01\x00\x02\x00"
                 "\xfe\xff\xff\xff\xff\xff\xff\xff\x05\x00\x00\x00\x00\x00\x00\x00"
                 "\x80\x3f\x40\xc0"
                 "\x00\x01\x07"
                 "\xf9\xff\xff\xff"
                 "\xc8"
                 "\x00",
                 33);
    attn_st *st = NULL;
    CHECK(attn_st_open(p, &st) == ATTN_OK, "%s", attn_last_error());
    if (st) {
        attn_array a;
        CHECK(attn_st_get_f32(st, "u", &a) == ATTN_EDTYPE && tu_err_has("U16"), "U16: %s", attn_last_error());
        CHECK(attn_st_get_f32(st, "\xf0\x9f\x98\x80", &a) == ATTN_EDTYPE, "F8 (and \\u surrogate pair name)");
        float f[3];
        int64_t s2[1] = {2}, s3[1] = {3}, s1[1] = {1};
        CHECK(attn_st_read_f32(st, "i", 1, s2, f) == ATTN_OK && f[0] == -2.0f && f[1] == 5.0f, "I64");
        CHECK(attn_st_read_f32(st, "h", 1, s2, f) == ATTN_OK && f[0] == 1.0f && f[1] == -3.0f, "BF16");
        CHECK(attn_st_read_f32(st, "b", 1, s3, f) == ATTN_OK && f[0] == 0 && f[1] == 1 && f[2] == 1, "BOOL");
        CHECK(attn_st_read_f32(st, "n", 1, s1, f) == ATTN_OK && f[0] == -7.0f, "I32");
        CHECK(attn_st_read_f32(st, "y", 1, s1, f) == ATTN_OK && f[0] == 200.0f, "U8");
        attn_st_free(st);
    }

    /* Files shorter than 8 bytes, header lengths beyond the file or the 100 MB limit. */
    tu_write_file(p, "\x02\x00\x00", 3);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && tu_err_has("too short"), "short file: %s", attn_last_error());
    unsigned char big[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    tu_write_file(p, big, sizeof big);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && tu_err_has("header length"), "huge header length: %s", attn_last_error());
    big[0] = 25, memset(big + 1, 0, 7);
    tu_write_file(p, big, sizeof big);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && tu_err_has("header length 25"), "header length > file: %s", attn_last_error());
    big[0] = 0x01, big[1] = 0xe1, big[2] = 0xf5, big[3] = 0x05; /* 100000001 */
    tu_write_file(p, big, sizeof big);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && tu_err_has("100 MB"), "limit: %s", attn_last_error());
    /* Deep nesting inside the header. */
    size_t deep = 5000;
    char *h = malloc(2 * deep + 64);
    size_t o = (size_t)sprintf(h, "{\"x\":");
    memset(h + o, '[', deep), o += deep;
    memset(h + o, ']', deep), o += deep;
    strcpy(h + o, "}");
    write_st_raw(p, h, NULL, 0);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && tu_err_has("nesting"), "deep nesting: %s", attn_last_error());
    free(h);
    CHECK(attn_st_open(tu_scratch_dir(), &st) == ATTN_EIO, "a directory");
    CHECK(attn_st_open(p, NULL) == ATTN_EINVAL, "NULL output");
    CHECK(attn_st_count(NULL) == 0 && attn_st_find(NULL, "x") == -1 && attn_st_metadata(NULL, "x") == NULL, "NULL st");
}


/* ---- Allocation failures --------------------------------------------------------------- */

static long g_allocs, g_live, g_fail_at = -1;

static void *counting_malloc(size_t n, void *u) {
    (void)u;
    if (g_fail_at >= 0 && g_allocs++ == g_fail_at) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}

static void counting_free(void *p, void *u) {
    (void)u;
    if (p) g_live--;
    free(p);
}

static int op_st_open(void) {
    attn_st *st = NULL;
    int rc = attn_st_open(DATA "small.safetensors", &st);
    if (rc == ATTN_OK) {
        attn_array a;
        rc = attn_st_get_f32(st, "a.weight", &a);
        attn_array_free(&a);
    }
    attn_st_free(st);
    return rc;
}

static int op_npy(void) {
    attn_array a;
    int rc = attn_npy_load_f32(DATA "be_f8.npy", &a);
    attn_array_free(&a);
    return rc;
}

static int op_writer(void) {
    float x[4] = {1, 2, 3, 4};
    int64_t s[2] = {2, 2};
    attn_st_writer *w = NULL;
    int rc = attn_st_writer_new(&w); /* fails under the allocation sweep: that is the point */
    if (rc) return rc;
    char name[16];
    for (int i = 0; i < 12 && !rc; i++) {
        snprintf(name, sizeof name, "t%d", (i * 7) % 12);
        rc = attn_st_writer_add_f32(w, name, 2, s, x);
        if (!rc && i % 3 == 0) rc = attn_st_writer_set_metadata(w, name, "v");
    }
    if (!rc) rc = attn_st_writer_save(w, tu_path("oom.safetensors"));
    attn_st_writer_free(w);
    return rc;
}

static void test_oom(void) {
    int (*ops[])(void) = {op_st_open, op_npy, op_writer};
    const char *names[] = {"st_open", "npy_load_f32", "writer"};
    attn_set_allocator(counting_malloc, counting_free, NULL);
    for (int k = 0; k < 3; k++) {
        int done = 0;
        for (long at = 0; at < 10000 && !done; at++) {
            g_allocs = 0, g_live = 0, g_fail_at = at;
            int rc = ops[k]();
            CHECK(rc == ATTN_OK || rc == ATTN_ENOMEM, "%s, allocation %ld failing: %d (%s)", names[k], at, rc,
                  attn_last_error());
            CHECK(g_live == 0, "%s, allocation %ld failing: %ld blocks leaked", names[k], at, g_live);
            if (rc == ATTN_OK) done = at >= g_allocs; /* no allocation failed: every path was tried */
        }
        CHECK(done, "%s never succeeded", names[k]);
    }
    g_fail_at = -1;
    attn_set_allocator(NULL, NULL, NULL);
    CHECK(tu_count_tmp_files() == 0, "temporary files left behind after failures");
}

int main(void) {
    if (!tu_scratch_new("attn_test_safetensors")) return 1;
    test_st_fixture();
    test_st_writer_reference_bytes();
    test_st_writer_roundtrip();
    test_st_malformed();
    tu_fuzz_file(DATA "small.safetensors", load_st_checked, "safetensors");
    test_oom();
    tu_scratch_remove();
    return tu_summary("test_safetensors");
}
