/* The two helpers the C benchmarks of bench/ share: a monotonic clock and a comparison for
 * qsort, to take medians. */
#ifndef BENCH_TIME_H
#define BENCH_TIME_H
#include <time.h>

static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
#endif
