/* Tests of the file-format layer: .npy and safetensors against files written by numpy
 * (tests/data/io/, made by tools/gen_io_fixtures.py) and byte strings quoted from the
 * safetensors reference implementation's tests; every malformed case we could think of,
 * every truncation of valid files, single-byte corruptions, allocation failures at every
 * allocation, and atomic writes that leave nothing behind. Run under ASan/UBSan in CI. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/io.h"
#include "testutil.h"

#define DATA "data/io/"

static char g_dir[256];

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* Removes the old file first: on ext4, truncating and rewriting a file forces a flush to disk
 * on close (auto_da_alloc), which would make the thousands of writes below take seconds. */
static void write_all(const char *path, const void *data, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* Number of leftover temporary files (names containing ".tmp.") in the test directory. */
static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int err_has(const char *s) { return strstr(attn_last_error(), s) != NULL; }

/* The fixtures' values: element i is (i-2)/2 for floats, i-2 for ints, i for u8, i%3==0 for bool. */
static double want_value(attn_dtype dt, int64_t i) {
    switch (dt) {
    case ATTN_F32: case ATTN_F64: case ATTN_F16: case ATTN_BF16: return (double)(i - 2) * 0.5;
    case ATTN_I32: case ATTN_I64: return (double)(i - 2);
    case ATTN_U8: return (double)i;
    case ATTN_BOOL: return i % 3 == 0;
    }
    return 0;
}

/* Fills n elements of dtype dt with the fixtures' values (F16 patterns for exact halves). */
static void fill_values(attn_dtype dt, void *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = want_value(dt, i);
        switch (dt) {
        case ATTN_F32: ((float *)p)[i] = (float)v; break;
        case ATTN_F64: ((double *)p)[i] = v; break;
        case ATTN_I32: ((int32_t *)p)[i] = (int32_t)v; break;
        case ATTN_I64: ((int64_t *)p)[i] = (int64_t)v; break;
        case ATTN_U8: case ATTN_BOOL: ((uint8_t *)p)[i] = (uint8_t)v; break;
        case ATTN_F16: {
            /* v in {-1, -0.5, 0, 0.5, 1, 1.5}: sign, exponent, one mantissa bit */
            static const uint16_t h[] = {0xbc00, 0xb800, 0x0000, 0x3800, 0x3c00, 0x3e00};
            ((uint16_t *)p)[i] = h[i % 6];
            break;
        }
        case ATTN_BF16: break;
        }
    }
}

static void check_values_f32(const char *what, const attn_array *a, attn_dtype src) {
    CHECK(a->dtype == ATTN_F32, "%s: dtype %d", what, (int)a->dtype);
    int64_t n = attn_array_numel(a);
    CHECK(a->nbytes == (size_t)n * 4, "%s: nbytes %zu", what, a->nbytes);
    for (int64_t i = 0; i < n; i++)
        if (((const float *)a->data)[i] != (float)want_value(src, i)) {
            CHECK(0, "%s: element %" PRId64 " is %g, want %g", what, i, ((const float *)a->data)[i], want_value(src, i));
            return;
        }
}

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
        fill_values(a.dtype, raw, 6);
        CHECK(a.nbytes <= sizeof raw && !memcmp(raw, a.data, a.nbytes), "%s: raw values", npy_fixtures[k].file);
        CHECK(attn_array_to_f32(&a) == ATTN_OK, "%s", attn_last_error());
        check_values_f32(npy_fixtures[k].file, &a, npy_fixtures[k].dt);
        attn_array_free(&a);
        CHECK(a.data == NULL && a.nbytes == 0 && a.ndim == 0, "attn_array_free zeroes");

        rc = attn_npy_load_f32(npy_fixtures[k].file, &a);
        CHECK(rc == ATTN_OK, "load_f32 %s: %s", npy_fixtures[k].file, attn_last_error());
        if (!rc) check_values_f32(npy_fixtures[k].file, &a, npy_fixtures[k].dt);
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
        check_values_f32(be[k].file, &a, be[k].dt);
        attn_array_free(&a);
    }

    /* Format versions 2.0 and 3.0, 1-d, 0-d, empty. */
    const char *v23[] = {DATA "v2_f4.npy", DATA "v3_f4.npy", DATA "vec_f4.npy"};
    for (int k = 0; k < 3; k++) {
        attn_array a;
        int rc = attn_npy_load(v23[k], &a);
        CHECK(rc == ATTN_OK, "%s: %s", v23[k], attn_last_error());
        if (!rc) check_values_f32(v23[k], &a, ATTN_F32);
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
    CHECK(err_has("Fortran") && err_has("fortran_f4.npy"), "message: %s", attn_last_error());
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
        fill_values(cases[k].dt, data, cases[k].shape[0] * (cases[k].ndim == 2 ? cases[k].shape[1] : 1));
        const char *out = tpath("saved.npy");
        int rc = attn_npy_save(out, cases[k].dt, cases[k].ndim, cases[k].shape, data);
        CHECK(rc == ATTN_OK, "save like %s: %s", cases[k].file, attn_last_error());
        size_t n1 = 0, n2 = 0;
        unsigned char *got = read_all(out, &n1), *want = read_all(cases[k].file, &n2);
        CHECK(got && want && n1 == n2 && !memcmp(got, want, n1), "bytes differ from numpy's %s (%zu vs %zu bytes)",
              cases[k].file, n1, n2);
        free(got);
        free(want);
    }
    double x = 3.25;
    CHECK(attn_npy_save(tpath("s.npy"), ATTN_F64, 0, NULL, &x) == ATTN_OK, "%s", attn_last_error());
    size_t n1 = 0, n2 = 0;
    unsigned char *got = read_all(tpath("s.npy"), &n1), *want = read_all(DATA "scalar_f8.npy", &n2);
    CHECK(got && want && n1 == n2 && !memcmp(got, want, n1), "0-d bytes differ from numpy's");
    free(got);
    free(want);
    CHECK(count_tmp_files(g_dir) == 0, "temporary files left behind");
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
            const char *p = tpath("rt.npy");
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
    CHECK(attn_npy_save(tpath("x.npy"), ATTN_F32, 9, s9, &f) == ATTN_EINVAL, "9 dims");
    CHECK(attn_npy_save(tpath("x.npy"), ATTN_F32, 1, neg, &f) == ATTN_EINVAL, "negative dim");
    CHECK(attn_npy_save(tpath("x.npy"), ATTN_BF16, 1, s9, &f) == ATTN_EDTYPE, "bf16");
    CHECK(attn_npy_save(tpath("x.npy"), ATTN_F32, 1, s9, NULL) == ATTN_EINVAL, "NULL data");
    CHECK(attn_npy_save(tpath("x.npy"), (attn_dtype)99, 1, s9, &f) == ATTN_EDTYPE, "unknown dtype");
    CHECK(attn_npy_save("", ATTN_F32, 1, s9, &f) == ATTN_EINVAL, "empty path");
    int64_t zero[1] = {0};
    CHECK(attn_npy_save(tpath("z.npy"), ATTN_F32, 1, zero, NULL) == ATTN_OK, "empty array with NULL data");

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
    write_all(path, buf, o + n);
}

static void test_npy_malformed(void) {
    float d6[6] = {0, 1, 2, 3, 4, 5};
    const char *p = tpath("bad.npy");
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
        if (rc) CHECK(err_has(p), "message lacks the path: %s", attn_last_error());
        if (rc) CHECK(a.data == NULL, "output not zeroed");
        attn_array_free(&a);
    }
    /* A NUL inside the header. */
    unsigned char nul[] = "\x93NUMPY\x01\x00\x08\x00{'d\0x': }";
    write_all(p, nul, sizeof nul - 1);
    attn_array a;
    CHECK(attn_npy_load(p, &a) == ATTN_EFORMAT, "NUL in header");
    /* Bad magic, bad versions, header length larger than the file. */
    unsigned char buf[200];
    size_t n = 0;
    unsigned char *good = read_all(DATA "a_f4.npy", &n);
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
        write_all(p, buf, n);
        CHECK(attn_npy_load(p, &a) == ATTN_EFORMAT, "%s accepted", edits[k].msg);
    }
    /* Version 2.0 header length field of 2^32 - 1. */
    write_npy_raw(p, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", d6, 24);
    size_t m = 0;
    unsigned char *v2 = read_all(p, &m);
    if (v2) {
        memset(v2 + 8, 0xff, 4);
        write_all(p, v2, m);
        CHECK(attn_npy_load(p, &a) == ATTN_EFORMAT && err_has("header length"), "huge v2 header: %s", attn_last_error());
        free(v2);
    }
    /* Missing file, a directory. */
    CHECK(attn_npy_load(tpath("does-not-exist.npy"), &a) == ATTN_EIO && err_has("does-not-exist.npy"), "missing file");
    CHECK(attn_npy_load(g_dir, &a) == ATTN_EIO, "a directory");
    CHECK(attn_npy_load(NULL, &a) == ATTN_EINVAL, "NULL path");
    CHECK(attn_npy_load(p, NULL) == ATTN_EINVAL, "NULL output");
    free(good);
}

/* Every proper prefix of a valid file must fail cleanly; every single-byte corruption must
 * either fail cleanly or give a self-consistent array. */
typedef int (*load_fn)(const char *path);
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
        CHECK(a.data == NULL && err_has(path), "failure without a message naming the file: %s", attn_last_error());
    }
    attn_array_free(&a);
    return rc;
}

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
        CHECK(st == NULL && err_has(path), "failure without a message naming the file: %s", attn_last_error());
    }
    return rc;
}

static void fuzz_file(const char *fixture, load_fn load, const char *ext) {
    size_t n = 0;
    unsigned char *good = read_all(fixture, &n);
    CHECK(good != NULL, "read %s", fixture);
    if (!good) return;
    char name[64];
    snprintf(name, sizeof name, "fuzz.%s", ext);
    const char *p = tpath(name);
    int fails = 0;
    for (size_t len = 0; len < n; len++) {
        write_all(p, good, len);
        int rc = load(p);
        fails += rc < 0;
        if (rc >= 0) CHECK(0, "%s truncated to %zu of %zu bytes was accepted", fixture, len, n);
    }
    CHECK(fails == (int)n, "%s: %d of %zu truncations failed", fixture, fails, n);
    write_all(p, good, n);
    CHECK(load(p) == ATTN_OK, "%s intact: %s", fixture, attn_last_error());
    static const unsigned char masks[] = {0x01, 0x02, 0x10, 0x80, 0xff};
    unsigned char *bad = malloc(n);
    for (size_t i = 0; i < n && bad; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(bad, good, n);
            bad[i] ^= masks[k];
            write_all(p, bad, n);
            (void)load(p);
        }
    free(bad);
    free(good);
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
        check_values_f32(names[i], &a, src[i]);
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
    CHECK(err_has("'out_proj.weight'") && err_has(file), "message: %s", attn_last_error());
    CHECK(attn_st_read_f32(st, "nope", 0, NULL, dst) == ATTN_ENOTFOUND, "missing tensor (read)");
    attn_st_free(st);
    attn_st_free(NULL);
    CHECK(attn_st_open(tpath("missing.safetensors"), &st) == ATTN_EIO && st == NULL, "missing file");
    CHECK(err_has("missing.safetensors"), "message: %s", attn_last_error());
}

static int file_equals(const char *path, const unsigned char *want, size_t n) {
    size_t m = 0;
    unsigned char *got = read_all(path, &m);
    int eq = got && m == n && !memcmp(got, want, n);
    if (!eq && got) {
        fprintf(stderr, "  got %zu bytes:", m);
        for (size_t i = 0; i < m; i++) fprintf(stderr, "%s%d", i ? "," : " ", got[i]);
        fprintf(stderr, "\n");
    }
    free(got);
    return eq;
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
    const char *p = tpath("ref.safetensors");

    attn_st_writer *w; CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "attn.0", 3, s123, v) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK, "%s", attn_last_error());
    CHECK(file_equals(p, ser, sizeof ser), "test_serialization bytes");
    attn_st_writer_free(w);

    CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK && file_equals(p, empty, sizeof empty), "test_empty bytes");
    CHECK(attn_st_writer_set_metadata(w, "framework", "tf") == ATTN_OK, "metadata");
    CHECK(attn_st_writer_set_metadata(w, "framework", "pt") == ATTN_OK, "metadata replaced");
    CHECK(attn_st_writer_save(w, p) == ATTN_OK && file_equals(p, empty_meta, sizeof empty_meta), "test_empty metadata bytes");
    attn_st_writer_free(w);

    CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_add_f32(w, "attn0", 4, s1123, v) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK && file_equals(p, aligned, sizeof aligned), "forced alignment bytes");
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
    CHECK(attn_st_writer_add_f32(w, "alpha", 1, s6, x) == ATTN_EINVAL && err_has("duplicate"), "duplicate name");
    CHECK(attn_st_writer_add_f32(w, "__metadata__", 1, s6, x) == ATTN_EINVAL, "reserved name");
    CHECK(attn_st_writer_add_f32(w, "bad\xff", 1, s6, x) == ATTN_EINVAL, "invalid UTF-8");
    CHECK(attn_st_writer_add_f32(w, "neg", 1, neg, x) == ATTN_EINVAL, "negative dim");
    CHECK(attn_st_writer_add_f32(w, "nine", 9, s9, x) == ATTN_EINVAL, "9 dims");
    CHECK(attn_st_writer_add_f32(w, "null", 1, s6, NULL) == ATTN_EINVAL, "NULL data");
    CHECK(attn_st_writer_set_metadata(w, "k", "\xc3") == ATTN_EINVAL, "invalid UTF-8 metadata");
    /* The writer copied the data. */
    float saved = x[0];
    x[0] = 1e9f;
    const char *p = tpath("rt.safetensors");
    CHECK(attn_st_writer_save(w, p) == ATTN_OK, "%s", attn_last_error());
    CHECK(attn_st_writer_save(w, p) == ATTN_OK, "saving twice: %s", attn_last_error());
    x[0] = saved;
    attn_st_writer_free(w);
    CHECK(count_tmp_files(g_dir) == 0, "temporary files left behind");

    size_t n = 0;
    unsigned char *raw = read_all(p, &n);
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
    fuzz_file(p, load_st_checked, "safetensors");
}

/* Writes a safetensors file: N = strlen(header), then header, then n data bytes. */
static void write_st_raw(const char *path, const char *header, const void *data, size_t n) {
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + n + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (n) memcpy(b + 8 + hl, data, n);
    write_all(path, b, 8 + hl + n);
    free(b);
}

static void test_st_malformed(void) {
    unsigned char d[64];
    for (int i = 0; i < 64; i++) d[i] = (unsigned char)i;
    const char *p = tpath("bad.safetensors");
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
            CHECK(err_has(p), "message lacks the path: %s", attn_last_error());
            if (cases[k].msg) CHECK(err_has(cases[k].msg), "case %zu: message lacks '%s': %s", k, cases[k].msg, attn_last_error());
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
        CHECK(attn_st_get_f32(st, "u", &a) == ATTN_EDTYPE && err_has("U16"), "U16: %s", attn_last_error());
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
    write_all(p, "\x02\x00\x00", 3);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && err_has("too short"), "short file: %s", attn_last_error());
    unsigned char big[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    write_all(p, big, sizeof big);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && err_has("header length"), "huge header length: %s", attn_last_error());
    big[0] = 25, memset(big + 1, 0, 7);
    write_all(p, big, sizeof big);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && err_has("header length 25"), "header length > file: %s", attn_last_error());
    big[0] = 0x01, big[1] = 0xe1, big[2] = 0xf5, big[3] = 0x05; /* 100000001 */
    write_all(p, big, sizeof big);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && err_has("100 MB"), "limit: %s", attn_last_error());
    /* Deep nesting inside the header. */
    size_t deep = 5000;
    char *h = malloc(2 * deep + 64);
    size_t o = (size_t)sprintf(h, "{\"x\":");
    memset(h + o, '[', deep), o += deep;
    memset(h + o, ']', deep), o += deep;
    strcpy(h + o, "}");
    write_st_raw(p, h, NULL, 0);
    CHECK(attn_st_open(p, &st) == ATTN_EFORMAT && err_has("nesting"), "deep nesting: %s", attn_last_error());
    free(h);
    CHECK(attn_st_open(g_dir, &st) == ATTN_EIO, "a directory");
    CHECK(attn_st_open(p, NULL) == ATTN_EINVAL, "NULL output");
    CHECK(attn_st_count(NULL) == 0 && attn_st_find(NULL, "x") == -1 && attn_st_metadata(NULL, "x") == NULL, "NULL st");
}

/* ---- Atomic writes --------------------------------------------------------------------- */

static void test_atomic(void) {
    const char *p = tpath("atomic.bin");
    CHECK(attn_write_file_atomic(p, "hello", 5) == ATTN_OK, "%s", attn_last_error());
    CHECK(file_equals(p, (const unsigned char *)"hello", 5), "content");
    CHECK(attn_write_file_atomic(p, "bye", 3) == ATTN_OK && file_equals(p, (const unsigned char *)"bye", 3), "overwrite");
    CHECK(attn_write_file_atomic(p, NULL, 0) == ATTN_OK && file_equals(p, (const unsigned char *)"", 0), "empty");
    CHECK(attn_write_file_atomic("", "x", 1) == ATTN_EINVAL, "empty path");
    CHECK(attn_write_file_atomic(p, NULL, 1) == ATTN_EINVAL, "NULL data");

    /* Permissions as fopen would give: 0666 less the umask (not mkstemp's 0600). */
    mode_t um = umask(022);
    umask(um);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == (0666 & ~um), "mode %o", (unsigned)(sb.st_mode & 0777));

    /* A missing directory: ATTN_EIO naming the file, nothing created. */
    const char *nodir = tpath("no/such/dir/x.npy");
    float f[2] = {1, 2};
    int64_t s2[1] = {2};
    CHECK(attn_write_file_atomic(nodir, "x", 1) == ATTN_EIO && err_has("x.npy"), "missing dir: %s", attn_last_error());
    CHECK(attn_npy_save(nodir, ATTN_F32, 1, s2, f) == ATTN_EIO, "npy into a missing dir");
    attn_st_writer *w; CHECK(attn_st_writer_new(&w) == ATTN_OK, "%s", attn_last_error());
    attn_st_writer_add_f32(w, "w", 1, s2, f);
    CHECK(attn_st_writer_save(w, tpath("no/such.safetensors")) == ATTN_EIO, "st into a missing dir");

    /* The target is a (non-empty) directory: rename fails; the directory and its content stay
     * and the temporary file is removed. */
    const char *dir = tpath("adir");
    CHECK(mkdir(dir, 0777) == 0, "mkdir");
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    write_all(inner, "k", 1);
    CHECK(attn_npy_save(dir, ATTN_F32, 1, s2, f) == ATTN_EIO, "npy over a directory: %s", attn_last_error());
    CHECK(attn_st_writer_save(w, dir) == ATTN_EIO, "st over a directory");
    CHECK(attn_write_file_atomic(dir, "x", 1) == ATTN_EIO, "bytes over a directory");
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && file_equals(inner, (const unsigned char *)"k", 1), "dir intact");
    attn_st_writer_free(w);

    /* A failing save leaves an existing file as it was. */
    const char *keep = tpath("keep.npy");
    CHECK(attn_npy_save(keep, ATTN_F32, 1, s2, f) == ATTN_OK, "%s", attn_last_error());
    size_t n0 = 0;
    unsigned char *before = read_all(keep, &n0);
    CHECK(attn_npy_save(keep, ATTN_BF16, 1, s2, f) == ATTN_EDTYPE, "bf16");
    CHECK(attn_npy_save(keep, ATTN_F32, 1, s2, NULL) == ATTN_EINVAL, "NULL data");
    CHECK(before && file_equals(keep, before, n0), "existing file clobbered");
    free(before);
    CHECK(count_tmp_files(g_dir) == 0, "temporary files left behind: %d", count_tmp_files(g_dir));
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
    attn_st_writer *w;
    int rc = attn_st_writer_new(&w);
    if (rc) return rc;
    char name[16];
    for (int i = 0; i < 12 && !rc; i++) {
        snprintf(name, sizeof name, "t%d", (i * 7) % 12);
        rc = attn_st_writer_add_f32(w, name, 2, s, x);
        if (!rc && i % 3 == 0) rc = attn_st_writer_set_metadata(w, name, "v");
    }
    if (!rc) rc = attn_st_writer_save(w, tpath("oom.safetensors"));
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
    CHECK(count_tmp_files(g_dir) == 0, "temporary files left behind after failures");
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    /* Scratch files go to $TMPDIR, else /dev/shm (memory) if there is one, else /tmp. */
    const char *base = getenv("TMPDIR");
    struct stat sb;
    if (!base || !*base) base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/attn_test_io.XXXXXX", base);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_npy_fixtures();
    test_npy_save_matches_numpy();
    test_npy_roundtrip();
    test_npy_malformed();
    fuzz_file(DATA "a_f4.npy", load_npy_checked, "npy");
    fuzz_file(DATA "v2_f4.npy", load_npy_checked, "npy");
    fuzz_file(DATA "scalar_f8.npy", load_npy_checked, "npy");
    test_st_fixture();
    test_st_writer_reference_bytes();
    test_st_writer_roundtrip();
    test_st_malformed();
    fuzz_file(DATA "small.safetensors", load_st_checked, "safetensors");
    test_atomic();
    test_oom();
    remove_tree(g_dir);
    return tu_summary("test_io");
}
