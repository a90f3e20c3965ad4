/* A tiny test harness: CHECK records failures without stopping; test_main prints a summary
 * and returns non-zero if anything failed. Helpers compare arrays with mixed tolerances. */
#ifndef ATTN_TESTUTIL_H
#define ATTN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "attn/io.h"

extern int tu_checks, tu_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        tu_checks++;                                                            \
        if (!(cond)) {                                                          \
            tu_failures++;                                                      \
            tu_fail(__FILE__, __LINE__, #cond);                                 \
            tu_msg(__VA_ARGS__);                                                \
        }                                                                       \
    } while (0)

void tu_fail(const char *file, int line, const char *cond);
void tu_msg(const char *fmt, ...);

/* Compares got against want elementwise: |got - want| <= atol + rtol * |want|. Reports the
 * worst element under `what`; returns 1 if all pass. An infinite want passes only the same
 * infinity (and an infinite got only the same infinity); NaN never passes. */
int tu_close(const char *what, const float *got, const float *want, size_t n, double rtol, double atol);
int tu_close_d(const char *what, const double *got, const double *want, size_t n, double rtol, double atol);

/* Filled with reproducible standard-normal values. */
void tu_randn(float *x, size_t n, uint64_t seed);

/* ---- Scratch files ---- */

/* Makes a fresh scratch directory "<prefix>.XXXXXX" under $TMPDIR, else /dev/shm (memory) if
 * there is one, else /tmp; returns 0 (with a message) if it cannot. */
int tu_scratch_new(const char *prefix);
const char *tu_scratch_dir(void);
void tu_scratch_remove(void); /* the directory and everything in it */
/* The path of `name` in the scratch directory (one of 8 rotating buffers). */
const char *tu_path(const char *name);
/* A whole file (malloc'd, NUL-terminated, size in *n), or NULL. */
unsigned char *tu_read_file(const char *path, size_t *n);
/* Replaces the file with n bytes (a failed CHECK if it cannot). */
void tu_write_file(const char *path, const void *data, size_t n);
/* 1 if the file holds exactly these bytes (else it prints the bytes it holds). */
int tu_file_equals(const char *path, const unsigned char *want, size_t n);
/* Leftover temporary files (names containing ".tmp.") in the scratch directory. */
int tu_count_tmp_files(void);
/* 1 if attn_last_error() contains s. */
int tu_err_has(const char *s);

/* Every proper prefix of the fixture file must fail to load; every single-byte corruption
 * (five masks per byte) is loaded too: `load` checks that it fails cleanly or gives a
 * self-consistent result, and returns the status. Written as scratch file "fuzz.<ext>". */
typedef int (*tu_load_fn)(const char *path);
void tu_fuzz_file(const char *fixture, tu_load_fn load, const char *ext);

/* ---- The values of the file-format fixtures (tools/gen_io_fixtures.py) ---- */

/* Element i is (i-2)/2 for floats, i-2 for ints, i for u8, i%3==0 for bool. */
double tu_fixture_value(attn_dtype dt, int64_t i);
/* Fills n elements of dtype dt with those values (F16 patterns for exact halves). */
void tu_fixture_fill(attn_dtype dt, void *p, int64_t n);
/* Checks that a is F32 and holds the values of dtype src. */
void tu_fixture_check_f32(const char *what, const attn_array *a, attn_dtype src);

/* The exit code of a test that could not run (missing data or tool): ctest reports it as
 * skipped (SKIP_RETURN_CODE in CMakeLists.txt), never as passed. */
#define TU_SKIP 77

/* Prints "N passed, N failed" (checks) and returns the process exit code. */
int tu_summary(const char *name);

#endif
