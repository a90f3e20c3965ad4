/* The gradient sum of data-parallel training (attn_dist_sum) timed under mpirun: n floats
 * (default 1463260, the Transformer of experiments/dp_loss_curve.sh), median of R runs, the
 * slowest rank's time; bytes each rank sends, 2 (P-1)/P * 4 n, over that time.
 *
 *   mpirun -np P dist_sum [n] [R]      (bench/dist_sum.sh) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "attn/attn.h"

static int cmp(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }

int main(int argc, char **argv) {
    if (attn_dist_init(&argc, &argv)) return fprintf(stderr, "%s\n", attn_last_error()), 1;
    int64_t n = argc > 1 ? atoll(argv[1]) : 1463260;
    int R = argc > 2 ? atoi(argv[2]) : 21, P = attn_dist_size();
    float *x = calloc((size_t)n, sizeof *x);
    double *t = calloc((size_t)R, sizeof *t), *slot = calloc((size_t)P, sizeof *slot);
    if (!x || !t || !slot || R < 1) return 1;
    for (int r = -1; r < R; r++) {
        double z = 0;
        attn_dist_sum_f64(&z, 1); /* start together */
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (attn_dist_sum(x, n)) return fprintf(stderr, "%s\n", attn_last_error()), 1;
        clock_gettime(CLOCK_MONOTONIC, &b);
        for (int k = 0; k < P; k++) slot[k] = 0;
        slot[attn_dist_rank()] = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        attn_dist_sum_f64(slot, P);
        double worst = 0;
        for (int k = 0; k < P; k++) worst = slot[k] > worst ? slot[k] : worst;
        if (r >= 0) t[r] = worst;
    }
    qsort(t, (size_t)R, sizeof *t, cmp);
    double med = t[R / 2], bytes = 2.0 * (P - 1) / P * 4.0 * (double)n;
    if (attn_dist_rank() == 0)
        printf("attn_dist_sum of %lld floats (%.1f MB) over %d ranks: %.2f ms (median of %d, slowest rank), %.2f GB/s sent per rank\n",
               (long long)n, 4e-6 * (double)n, P, 1e3 * med, R, bytes / med * 1e-9);
    attn_dist_finalize();
    return 0;
}
