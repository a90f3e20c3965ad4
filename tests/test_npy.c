/* Tests of .npy files (attn/io.h): against files written by numpy (tests/data/io/, made by
 * tools/gen_io_fixtures.py); every malformed case we could think of, every truncation of valid
 * files, single-byte corruptions; and atomic writes (of .npy, safetensors and plain bytes) that
 * leave nothing behind. The safetensors and JSON tests are in test_safetensors.c. Run under
 * ASan/UBSan in CI. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/io.h"
#include "testutil.h"

#define DATA "data/io/"

/* ---- .npy ------------------------------------------------------------------------------ */

static const struct {
    const char *file;
    attn_dtype dt;
} npy_fixtures[] = {
    {DATA "a_f4.npy", ATTN_F32}, {DATA "a_f8.npy", ATTN_F64}, {DATA "a_f2.npy", ATTN_F16}, {DATA "a_i4.npy", ATTN_I32},
    {DATA "a_i8.npy", ATTN_I64}, {DATA "a_u1.npy", ATTN_U8},  {DATA "a_b1.npy", ATTN_BOOL},
};
#define NFIX ((int)(sizeof npy_fixtures / sizeof npy_fixtures[0]))

static void test_npy_fixtures(void) {
    for (int k = 0; k < NFIX; k++) {
        attn_array a;
        int rc = attn_npy_load(npy_fixtures[k].file, &a);
        CHECK(rc == ATTN_OK, "%s: %s", npy_fixtures[k].file, attn_last_error());
        if (rc) continue;
        CHECK(a.dtype == npy_fixtures[k].dt && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3,
              "%s: dtype %d ndim %d", npy_fixtures[k].file, (int)a.dtype, a.ndim);
        CHECK(a.nbytes == 6 * attn_dtype_size(a.dtype), "%s", npy_fixtures[k].file);
        unsigned char raw[48];
        tu_fixture_fill(a.dtype, raw, 6);
        CHECK(a.nbytes <= sizeof raw && !memcmp(raw, a.data, a.nbytes), "%s: raw values", npy_fixtures[k].file);
        CHECK(attn_array_to_f32(&a) == ATTN_OK, "%s", attn_last_error());
        tu_fixture_check_f32(npy_fixtures[k].file, &a, npy_fixtures[k].dt);
        attn_array_free(&a);
        CHECK(a.data == NULL && a.nbytes == 0 && a.ndim == 0, "attn_array_free zeroes");

        rc = attn_npy_load_f32(npy_fixtures[k].file, &a);
        CHECK(rc == ATTN_OK, "load_f32 %s: %s", npy_fixtures[k].file, attn_last_error());
        if (!rc) tu_fixture_check_f32(npy_fixtures[k].file, &a, npy_fixtures[k].dt);
        attn_array_free(&a);
    }
    attn_array_free(NULL);

    /* Big-endian data, byte-swapped on load. */
    static const struct {
        const char *file;
        attn_dtype dt;
        int ndim;
        int64_t s0, s1;
    } be[] = {{DATA "be_f4.npy", ATTN_F32, 2, 3, 2}, {DATA "be_i8.npy", ATTN_I64, 1, 4, 0}, {DATA "be_f8.npy", ATTN_F64, 2, 2, 2}};
    for (int k = 0; k < 3; k++) {
        attn_array a;
        int rc = attn_npy_load(be[k].file, &a);
        CHECK(rc == ATTN_OK, "%s: %s", be[k].file, attn_last_error());
        if (rc) continue;
        CHECK(a.dtype == be[k].dt && a.ndim == be[k].ndim && a.shape[0] == be[k].s0, "%s: header", be[k].file);
        CHECK(attn_array_to_f32(&a) == ATTN_OK, "to_f32");
        tu_fixture_check_f32(be[k].file, &a, be[k].dt);
        attn_array_free(&a);
    }

    /* Format versions 2.0 and 3.0, 1-d, 0-d, empty. */
    const char *v23[] = {DATA "v2_f4.npy", DATA "v3_f4.npy", DATA "vec_f4.npy"};
    for (int k = 0; k < 3; k++) {
        attn_array a;
        int rc = attn_npy_load(v23[k], &a);
        CHECK(rc == ATTN_OK, "%s: %s", v23[k], attn_last_error());
        if (!rc) tu_fixture_check_f32(v23[k], &a, ATTN_F32);
        CHECK(a.ndim == (k == 2 ? 1 : 2), "%s ndim %d", v23[k], a.ndim);
        attn_array_free(&a);
    }
    attn_array a;
    CHECK(attn_npy_load(DATA "scalar_f8.npy", &a) == ATTN_OK, "%s", attn_last_error());
    CHECK(a.ndim == 0 && a.dtype == ATTN_F64 && a.nbytes == 8 && attn_array_numel(&a) == 1, "0-d header");
    CHECK(a.data && *(double *)a.data == 3.25, "0-d value");
    attn_array_free(&a);
    CHECK(attn_npy_load(DATA "empty_f4.npy", &a) == ATTN_OK, "%s", attn_last_error());
    CHECK(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 3 && a.nbytes == 0 && attn_array_numel(&a) == 0, "empty");
    CHECK(attn_array_to_f32(&a) == ATTN_OK && a.nbytes == 0, "empty to f32");
    attn_array_free(&a);

    /* Fortran order (2, 3): refused, saying so. */
    CHECK(attn_npy_load(DATA "fortran_f4.npy", &a) == ATTN_EFORMAT, "fortran accepted");
    CHECK(tu_err_has("Fortran") && tu_err_has("fortran_f4.npy"), "message: %s", attn_last_error());
    CHECK(a.data == NULL && a.nbytes == 0, "output zeroed on failure");
}

/* The C writer against numpy.save's bytes, for every dtype, 0-d, empty and 1-d. */
static void test_npy_save_matches_numpy(void) {
    static const struct {
        const char *file;
        attn_dtype dt;
        int ndim;
        int64_t shape[2];
    } cases[] = {
        {DATA "a_f4.npy", ATTN_F32, 2, {2, 3}}, {DATA "a_f8.npy", ATTN_F64, 2, {2, 3}},  {DATA "a_f2.npy", ATTN_F16, 2, {2, 3}},
        {DATA "a_i4.npy", ATTN_I32, 2, {2, 3}}, {DATA "a_i8.npy", ATTN_I64, 2, {2, 3}},  {DATA "a_u1.npy", ATTN_U8, 2, {2, 3}},
        {DATA "a_b1.npy", ATTN_BOOL, 2, {2, 3}}, {DATA "vec_f4.npy", ATTN_F32, 1, {5, 0}}, {DATA "empty_f4.npy", ATTN_F32, 2, {0, 3}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        unsigned char data[64];
        tu_fixture_fill(cases[k].dt, data, cases[k].shape[0] * (cases[k].ndim == 2 ? cases[k].shape[1] : 1));
        const char *out = tu_path("saved.npy");
        int rc = attn_npy_save(out, cases[k].dt, cases[k].ndim, cases[k].shape, data);
        CHECK(rc == ATTN_OK, "save like %s: %s", cases[k].file, attn_last_error());
        size_t n1 = 0, n2 = 0;
        unsigned char *got = tu_read_file(out, &n1), *want = tu_read_file(cases[k].file, &n2);
        CHECK(got && want && n1 == n2 && !memcmp(got, want, n1), "bytes differ from numpy's %s (%zu vs %zu bytes)",
              cases[k].file, n1, n2);
        free(got);
        free(want);
    }
    double x = 3.25;
    CHECK(attn_npy_save(tu_path("s.npy"), ATTN_F64, 0, NULL, &x) == ATTN_OK, "%s", attn_last_error());
    size_t n1 = 0, n2 = 0;
    unsigned char *got = tu_read_file(tu_path("s.npy"), &n1), *want = tu_read_file(DATA "scalar_f8.npy", &n2);
    CHECK(got && want && n1 == n2 && !memcmp(got, want, n1), "0-d bytes differ from numpy's");
    free(got);
    free(want);
    CHECK(tu_count_tmp_files() == 0, "temporary files left behind");
}

static void test_npy_roundtrip(void) {
    const attn_dtype dts[] = {ATTN_F32, ATTN_F64, ATTN_BOOL, ATTN_I32, ATTN_I64, ATTN_U8, ATTN_F16};
    const int64_t shape8[8] = {1, 2, 1, 3, 1, 2, 1, 2};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        for (int nd = 0; nd <= 8; nd++) {
            int64_t numel = 1;
            for (int i = 0; i < nd; i++) numel *= shape8[i];
            unsigned char data[24 * 8];
            for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 37 + k);
            if (dts[k] == ATTN_BOOL)
                for (size_t i = 0; i < sizeof data; i++) data[i] &= 1;
            const char *p = tu_path("rt.npy");
            CHECK(attn_npy_save(p, dts[k], nd, shape8, data) == ATTN_OK, "save: %s", attn_last_error());
            attn_array a;
            int rc = attn_npy_load(p, &a);
            CHECK(rc == ATTN_OK, "load: %s", attn_last_error());
            if (rc) continue;
            CHECK(a.dtype == dts[k] && a.ndim == nd && attn_array_numel(&a) == numel, "dtype %d nd %d", (int)dts[k], nd);
            CHECK(!memcmp(a.shape, shape8, (size_t)nd * 8), "shape");
            CHECK(a.nbytes == (size_t)numel * attn_dtype_size(dts[k]) && !memcmp(a.data, data, a.nbytes), "data");
            attn_array_free(&a);
        }
    }
    int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-1};
    float f = 0;
    CHECK(attn_npy_save(tu_path("x.npy"), ATTN_F32, 9, s9, &f) == ATTN_EINVAL, "9 dims");
    CHECK(attn_npy_save(tu_path("x.npy"), ATTN_F32, 1, neg, &f) == ATTN_EINVAL, "negative dim");
    CHECK(attn_npy_save(tu_path("x.npy"), ATTN_BF16, 1, s9, &f) == ATTN_EDTYPE, "bf16");
    CHECK(attn_npy_save(tu_path("x.npy"), ATTN_F32, 1, s9, NULL) == ATTN_EINVAL, "NULL data");
    CHECK(attn_npy_save(tu_path("x.npy"), (attn_dtype)99, 1, s9, &f) == ATTN_EDTYPE, "unknown dtype");
    CHECK(attn_npy_save("", ATTN_F32, 1, s9, &f) == ATTN_EINVAL, "empty path");
    int64_t zero[1] = {0};
    CHECK(attn_npy_save(tu_path("z.npy"), ATTN_F32, 1, zero, NULL) == ATTN_OK, "empty array with NULL data");

    /* attn_array_to_f32 on BF16 and F16 special values. */
    uint16_t h[6] = {0x3f80, 0xc000, 0x7f80, 0x0001, 0x7c00, 0x0001};
    attn_array b = {ATTN_BF16, 1, {4}, NULL, 8};
    b.data = attn_malloc(8);
    memcpy(b.data, h, 8);
    CHECK(attn_array_to_f32(&b) == ATTN_OK, "bf16");
    float *bf = b.data;
    CHECK(bf[0] == 1.0f && bf[1] == -2.0f && bf[2] > 3e38f && bf[3] > 0 && bf[3] < 1e-38f, "bf16 values");
    attn_array_free(&b);
    attn_array hh = {ATTN_F16, 1, {2}, NULL, 4};
    hh.data = attn_malloc(4);
    memcpy(hh.data, h + 4, 4);
    CHECK(attn_array_to_f32(&hh) == ATTN_OK, "f16");
    bf = hh.data;
    CHECK(bf[0] > 3e38f && bf[1] == 5.9604644775390625e-8f, "f16 inf and smallest subnormal: %g %g", bf[0], bf[1]);
    attn_array_free(&hh);
}

/* Writes a .npy file with the given version and header text (unpadded) and data. */
static void write_npy_raw(const char *path, int major, const char *header, const void *data, size_t n) {
    unsigned char buf[1024];
    size_t hl = strlen(header), o = 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)hl;
        buf[9] = (unsigned char)(hl >> 8);
        o = 10;
    } else {
        for (int i = 0; i < 4; i++) buf[8 + i] = (unsigned char)(hl >> (8 * i));
        o = 12;
    }
    memcpy(buf + o, header, hl);
    o += hl;
    if (n) memcpy(buf + o, data, n);
    tu_write_file(path, buf, o + n);
}

static void test_npy_malformed(void) {
    float d6[6] = {0, 1, 2, 3, 4, 5};
    const char *p = tu_path("bad.npy");
    static const struct {
        const char *header;
        size_t ndata;
        int want;
    } cases[] = {
        /* accepted variants */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24, ATTN_OK},
        {"{ 'shape':(2,3),'fortran_order':False,'descr':'<f4'}", 24, ATTN_OK},
        {"{\"descr\": \"=f4\", \"fortran_order\": False, \"shape\": (6,)}", 24, ATTN_OK},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (2L, 3L), }", 24, ATTN_OK},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6, 1), }", 24, ATTN_OK}, /* same layout as C */
        {"{'descr': '<u1', 'fortran_order': False, 'shape': (2, 3, 4), }", 24, ATTN_OK},
        /* refused */
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'fortran_order': False, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (06,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,),,}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EFORMAT},
        {"['descr', '<f4']", 24, ATTN_EFORMAT},
        {"", 24, ATTN_EFORMAT},
        {"{", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 6)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 24, ATTN_EFORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5,)}", 24, ATTN_EFORMAT},  /* trailing bytes */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7,)}", 24, ATTN_EFORMAT},  /* truncated data */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,)}", 24, ATTN_EFORMAT}, /* no huge alloc */
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (12,)}", 24, ATTN_EDTYPE},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,)}", 24, ATTN_EDTYPE},
        {"{'descr': 'O', 'fortran_order': False, 'shape': (3,)}", 24, ATTN_EDTYPE},
        {"{'descr': '<f4 ', 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EDTYPE},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", 24, ATTN_EDTYPE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_npy_raw(p, 1 + (int)(k % 3 == 2), cases[k].header, d6, cases[k].ndata);
        attn_array a;
        int rc = attn_npy_load(p, &a);
        CHECK(rc == cases[k].want, "header %s: got %d want %d (%s)", cases[k].header, rc, cases[k].want, attn_last_error());
        if (rc) CHECK(tu_err_has(p), "message lacks the path: %s", attn_last_error());
        if (rc) CHECK(a.data == NULL, "output not zeroed");
        attn_array_free(&a);
    }
    /* A NUL inside the header. */
    unsigned char nul[] = "\x93NUMPY\x01\x00\x08\x00{'d\0x': }";
    tu_write_file(p, nul, sizeof nul - 1);
    attn_array a;
    CHECK(attn_npy_load(p, &a) == ATTN_EFORMAT, "NUL in header");
    /* Bad magic, bad versions, header length larger than the file. */
    unsigned char buf[200];
    size_t n = 0;
    unsigned char *good = tu_read_file(DATA "a_f4.npy", &n);
    CHECK(good && n < sizeof buf, "fixture");
    if (!good) return;
    struct {
        size_t at;
        unsigned char v;
        const char *msg;
    } edits[] = {{0, 0x92, "bad magic"}, {3, 'm', "bad magic"}, {6, 4, "version 4.0"}, {6, 0, "version 0.0"},
                 {7, 1, "version 1.1"},  {8, 0xff, "header length"}, {9, 0x01, "header length"}};
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
        memcpy(buf, good, n);
        buf[edits[k].at] = edits[k].v;
        tu_write_file(p, buf, n);
        CHECK(attn_npy_load(p, &a) == ATTN_EFORMAT, "%s accepted", edits[k].msg);
    }
    /* Version 2.0 header length field of 2^32 - 1. */
    write_npy_raw(p, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", d6, 24);
    size_t m = 0;
    unsigned char *v2 = tu_read_file(p, &m);
    if (v2) {
        memset(v2 + 8, 0xff, 4);
        tu_write_file(p, v2, m);
        CHECK(attn_npy_load(p, &a) == ATTN_EFORMAT && tu_err_has("header length"), "huge v2 header: %s", attn_last_error());
        free(v2);
    }
    /* Missing file, a directory. */
    CHECK(attn_npy_load(tu_path("does-not-exist.npy"), &a) == ATTN_EIO && tu_err_has("does-not-exist.npy"), "missing file");
    CHECK(attn_npy_load(tu_scratch_dir(), &a) == ATTN_EIO, "a directory");
    CHECK(attn_npy_load(NULL, &a) == ATTN_EINVAL, "NULL path");
    CHECK(attn_npy_load(p, NULL) == ATTN_EINVAL, "NULL output");
    free(good);
}

/* Loads a (truncated or corrupted) file: it fails with a message naming the file, or gives a
 * self-consistent array. */
static volatile float g_sink;

static int load_npy_checked(const char *path) {
    attn_array a;
    int rc = attn_npy_load(path, &a);
    if (rc == ATTN_OK) {
        size_t numel = (size_t)attn_array_numel(&a);
        CHECK(a.nbytes == numel * attn_dtype_size(a.dtype), "inconsistent array from a corrupted file");
        if (attn_array_to_f32(&a) == ATTN_OK) /* touch every element (ASan checks the bounds) */
            for (size_t i = 0; i < numel; i++) g_sink += ((float *)a.data)[i];
    } else {
        CHECK(a.data == NULL && tu_err_has(path), "failure without a message naming the file: %s", attn_last_error());
    }
    attn_array_free(&a);
    return rc;
}

/* ---- Atomic writes --------------------------------------------------------------------- */

static void test_atomic(void) {
    const char *p = tu_path("atomic.bin");
    CHECK(attn_write_file_atomic(p, "hello", 5) == ATTN_OK, "%s", attn_last_error());
    CHECK(tu_file_equals(p, (const unsigned char *)"hello", 5), "content");
    CHECK(attn_write_file_atomic(p, "bye", 3) == ATTN_OK && tu_file_equals(p, (const unsigned char *)"bye", 3), "overwrite");
    CHECK(attn_write_file_atomic(p, NULL, 0) == ATTN_OK && tu_file_equals(p, (const unsigned char *)"", 0), "empty");
    CHECK(attn_write_file_atomic("", "x", 1) == ATTN_EINVAL, "empty path");
    CHECK(attn_write_file_atomic(p, NULL, 1) == ATTN_EINVAL, "NULL data");

    /* Permissions as fopen would give: 0666 less the umask (not mkstemp's 0600). */
    mode_t um = umask(022);
    umask(um);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == (0666 & ~um), "mode %o", (unsigned)(sb.st_mode & 0777));

    /* A missing directory: ATTN_EIO naming the file, nothing created. */
    const char *nodir = tu_path("no/such/dir/x.npy");
    float f[2] = {1, 2};
    int64_t s2[1] = {2};
    CHECK(attn_write_file_atomic(nodir, "x", 1) == ATTN_EIO && tu_err_has("x.npy"), "missing dir: %s", attn_last_error());
    CHECK(attn_npy_save(nodir, ATTN_F32, 1, s2, f) == ATTN_EIO, "npy into a missing dir");
    attn_st_writer *w; CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    attn_st_writer_add_f32(w, "w", 1, s2, f);
    CHECK(attn_st_writer_save(w, tu_path("no/such.safetensors")) == ATTN_EIO, "st into a missing dir");

    /* The target is a (non-empty) directory: rename fails; the directory and its content stay
     * and the temporary file is removed. */
    const char *dir = tu_path("adir");
    CHECK(mkdir(dir, 0777) == 0, "mkdir");
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    tu_write_file(inner, "k", 1);
    CHECK(attn_npy_save(dir, ATTN_F32, 1, s2, f) == ATTN_EIO, "npy over a directory: %s", attn_last_error());
    CHECK(attn_st_writer_save(w, dir) == ATTN_EIO, "st over a directory");
    CHECK(attn_write_file_atomic(dir, "x", 1) == ATTN_EIO, "bytes over a directory");
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && tu_file_equals(inner, (const unsigned char *)"k", 1), "dir intact");
    attn_st_writer_free(w);

    /* A failing save leaves an existing file as it was. */
    const char *keep = tu_path("keep.npy");
    CHECK(attn_npy_save(keep, ATTN_F32, 1, s2, f) == ATTN_OK, "%s", attn_last_error());
    size_t n0 = 0;
    unsigned char *before = tu_read_file(keep, &n0);
    CHECK(attn_npy_save(keep, ATTN_BF16, 1, s2, f) == ATTN_EDTYPE, "bf16");
    CHECK(attn_npy_save(keep, ATTN_F32, 1, s2, NULL) == ATTN_EINVAL, "NULL data");
    CHECK(before && tu_file_equals(keep, before, n0), "existing file clobbered");
    free(before);
    CHECK(tu_count_tmp_files() == 0, "temporary files left behind: %d", tu_count_tmp_files());
}

int main(void) {
    if (!tu_scratch_new("attn_test_npy")) return 1;
    test_npy_fixtures();
    test_npy_save_matches_numpy();
    test_npy_roundtrip();
    test_npy_malformed();
    tu_fuzz_file(DATA "a_f4.npy", load_npy_checked, "npy");
    tu_fuzz_file(DATA "v2_f4.npy", load_npy_checked, "npy");
    tu_fuzz_file(DATA "scalar_f8.npy", load_npy_checked, "npy");
    test_atomic();
    tu_scratch_remove();
    return tu_summary("test_npy");
}
