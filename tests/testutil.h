/* A tiny test harness: CHECK records failures without stopping; test_main prints a summary
 * and returns non-zero if anything failed. Helpers compare arrays with mixed tolerances. */
#ifndef ATTN_TESTUTIL_H
#define ATTN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

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

/* The exit code of a test that could not run (missing data or tool): ctest reports it as
 * skipped (SKIP_RETURN_CODE in CMakeLists.txt), never as passed. */
#define TU_SKIP 77

/* Prints "N passed, N failed" (checks) and returns the process exit code. */
int tu_summary(const char *name);

#endif
