#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "attn/core.h"

int tu_checks, tu_failures;

void tu_fail(const char *file, int line, const char *cond) {
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, cond);
}

void tu_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* How far got is outside the tolerance of want (> 0: it fails). An infinity matches only the
 * same infinity; NaN always fails. */
static double excess(double g, double w, double rtol, double atol) {
    if (isnan(g) || isnan(w)) return INFINITY;
    if (isinf(g) || isinf(w)) return g == w ? -1.0 : INFINITY;
    return fabs(g - w) - (atol + rtol * fabs(w));
}

/* Compares n elements (of float or double arrays) and reports the worst one. */
#define CLOSE_BODY                                                                          \
    size_t worst = 0;                                                                       \
    double worst_ex = -INFINITY;                                                            \
    for (size_t i = 0; i < n; i++) {                                                        \
        double ex = excess(got[i], want[i], rtol, atol);                                    \
        if (ex > worst_ex) worst_ex = ex, worst = i;                                        \
    }                                                                                       \
    int ok = !(worst_ex > 0);                                                               \
    tu_checks++;                                                                            \
    if (!ok) {                                                                              \
        tu_failures++;                                                                      \
        fprintf(stderr, "FAIL %s: element %zu of %zu: got %.9g want %.9g\n", what, worst, n, \
                (double)got[worst], (double)want[worst]);                                   \
    }                                                                                       \
    return ok;

int tu_close(const char *what, const float *got, const float *want, size_t n, double rtol, double atol) { CLOSE_BODY }
int tu_close_d(const char *what, const double *got, const double *want, size_t n, double rtol, double atol) { CLOSE_BODY }

void tu_randn(float *x, size_t n, uint64_t seed) {
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = attn_rng_normal(&r);
}

int tu_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, tu_checks - tu_failures, tu_failures);
    return tu_failures ? 1 : 0;
}
