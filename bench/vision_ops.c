/* Training-step throughput of the vision operations on the tape (bench/vision_ops.sh): a small
 * CNN, conv2d(1 -> C1, 5x5, pad 2) -> relu -> max_pool2d(2) -> conv2d(C1 -> C2, 5x5, pad 2) ->
 * relu -> max_pool2d(2) -> linear(10) -> cross-entropy, forward and backward on a batch of
 * random S x S images (no optimiser step: the same on both sides): images/s of the median
 * step after 3 warm-up steps, wall clock, and images per second of the process's CPU time
 * (the speed when the cores are ours, on a shared machine; with one thread, the same).
 *
 *   cc -O2 -Iinclude bench/vision_ops.c build/libattn.a -lm -lpthread -o vision_ops
 *   ./vision_ops S B C1 C2 STEPS THREADS */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "attn/autograd.h"

static double clock_s(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    return x;
}

static int cmp(const void *a, const void *b) { return *(const double *)a < *(const double *)b ? -1 : 1; }

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: vision_ops S B C1 C2 STEPS THREADS\n");
        return 2;
    }
    int S = atoi(argv[1]), B = atoi(argv[2]), C1 = atoi(argv[3]), C2 = atoi(argv[4]), steps = atoi(argv[5]);
    if (S < 4 || B < 1 || C1 < 1 || C2 < 1 || steps < 1 || steps > 1000) return 2;
    attn_set_threads(atoi(argv[6]));
    int K = 5, F = C2 * (S / 4) * (S / 4);
    float *x = rnd((size_t)B * S * S, 2), *w1 = rnd((size_t)C1 * K * K, 0.4f), *b1 = rnd(C1, 0.1f);
    float *w2 = rnd((size_t)C2 * C1 * K * K, 0.1f), *b2 = rnd(C2, 0.1f), *w3 = rnd((size_t)10 * F, 0.01f);
    float *b3 = rnd(10, 0.1f), *g1 = calloc((size_t)C1 * K * K, 4), *gb1 = calloc(C1, 4);
    float *g2 = calloc((size_t)C2 * C1 * K * K, 4), *gb2 = calloc(C2, 4), *g3 = calloc((size_t)10 * F, 4), *gb3 = calloc(10, 4);
    int32_t *t = malloc(B * sizeof(int32_t));
    for (int i = 0; i < B; i++) t[i] = i % 10;
    double *ts = malloc(steps * sizeof(double)), *cs = malloc(steps * sizeof(double));
    attn_graph *g = NULL;
    if (attn_graph_new(0, &g)) return 1;
    for (int it = 0; it < steps + 3; it++) {
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        attn_graph_reset(g);
        attn_var *vx = attn_graph_leaf(g, 4, (int64_t[]){B, 1, S, S}, x, NULL);
        attn_var *v1 = attn_graph_leaf(g, 4, (int64_t[]){C1, 1, K, K}, w1, g1), *vb1 = attn_graph_leaf(g, 1, (int64_t[]){C1}, b1, gb1);
        attn_var *v2 = attn_graph_leaf(g, 4, (int64_t[]){C2, C1, K, K}, w2, g2), *vb2 = attn_graph_leaf(g, 1, (int64_t[]){C2}, b2, gb2);
        attn_var *v3 = attn_graph_leaf(g, 2, (int64_t[]){10, F}, w3, g3), *vb3 = attn_graph_leaf(g, 1, (int64_t[]){10}, b3, gb3);
        attn_var *h = attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, vx, v1, vb1, 1, 2)), 2, 2);
        h = attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, h, v2, vb2, 1, 2)), 2, 2);
        h = attn_ag_reshape(g, h, 2, (int64_t[]){B, F});
        attn_var *loss = attn_ag_cross_entropy(g, attn_ag_linear(g, h, v3, vb3), t, -100, 0.0f);
        if (attn_graph_backward(g, loss)) {
            fprintf(stderr, "vision_ops: %s\n", attn_last_error());
            return 1;
        }
        if (it >= 3) ts[it - 3] = clock_s(CLOCK_MONOTONIC) - t0, cs[it - 3] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    qsort(ts, steps, sizeof(double), cmp);
    qsort(cs, steps, sizeof(double), cmp);
    printf("%.1f images/s, %.1f images per CPU second\n", B / ts[steps / 2], B / cs[steps / 2]);
    return 0;
}
