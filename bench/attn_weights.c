/* The cost of attention weights: a fused forward asked for P (every head's (Nq, Nk) weights)
 * against the fused forward without P followed by attn_weights for one head, the way the
 * pictures get theirs (attn/attention.h). Median of REPEAT runs each, wall clock.
 * Compile against the library: cc -O2 -Iinclude bench/attn_weights.c build/libattn.a -lm -lpthread
 * usage: attn_weights [B H N d repeat]   (default 1 8 1024 64 11) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "attn/attention.h"

#include "bench_time.h"

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 1, H = argc > 2 ? atoi(argv[2]) : 8, N = argc > 3 ? atoi(argv[3]) : 1024;
    int d = argc > 4 ? atoi(argv[4]) : 64, R = argc > 5 ? atoi(argv[5]) : 11;
    if (B < 1 || H < 1 || N < 1 || d < 1 || R < 1 || R > 1000) return fprintf(stderr, "usage: %s [B H N d repeat]\n", argv[0]), 2;
    size_t nx = (size_t)B * H * N * d, np = (size_t)B * H * N * N;
    float *Q = malloc(nx * sizeof(float)), *K = malloc(nx * sizeof(float)), *V = malloc(nx * sizeof(float));
    float *O = malloc(nx * sizeof(float)), *P = malloc(np * sizeof(float)), *W = malloc((size_t)N * N * sizeof(float));
    float *lse = malloc((size_t)B * H * N * sizeof(float));
    double *t1 = malloc(R * sizeof(double)), *t2 = malloc(R * sizeof(double)), *t3 = malloc(R * sizeof(double));
    if (!Q || !K || !V || !O || !P || !W || !lse || !t1 || !t2 || !t3) return fprintf(stderr, "out of memory\n"), 1;
    srand(1);
    for (size_t i = 0; i < nx; i++) Q[i] = rand() / (float)RAND_MAX - 0.5f, K[i] = rand() / (float)RAND_MAX - 0.5f, V[i] = Q[i];
    attn_desc a = {.B = B, .H = H, .Nq = N, .Nk = N, .dq = d};
    attn_plan *pl;
    if (attn_plan_new(&a, &pl)) return fprintf(stderr, "%s\n", attn_last_error()), 1;
    int head = H / 2, st = 0;
    for (int r = -1; r < R && !st; r++) { /* run -1 warms up */
        double t0 = bench_now();
        st |= attn_plan_forward(pl, Q, K, V, O, P, lse);
        double ta = bench_now();
        st |= attn_plan_forward(pl, Q, K, V, O, NULL, lse);
        double tb = bench_now();
        st |= attn_plan_weights(pl, Q, K, lse, &head, 1, 0, N, W);
        double tc = bench_now();
        if (r >= 0) t1[r] = ta - t0, t2[r] = tb - ta, t3[r] = tc - tb;
    }
    if (st) return fprintf(stderr, "%s\n", attn_last_error()), 1;
    qsort(t1, R, sizeof *t1, bench_cmp), qsort(t2, R, sizeof *t2, bench_cmp), qsort(t3, R, sizeof *t3, bench_cmp);
    printf("B=%d H=%d N=%d d=%d, %d threads, path %s, median of %d runs:\n", B, H, N, d, attn_get_threads(), attn_get_isa(), R);
    printf("forward with P (all heads)       %8.3f ms\n", t1[R / 2] * 1e3);
    printf("forward without P                %8.3f ms\n", t2[R / 2] * 1e3);
    printf("attn_weights, one head, all rows %8.3f ms\n", t3[R / 2] * 1e3);
    printf("fused + attn_weights             %8.3f ms (%.2fx faster than with P)\n", (t2[R / 2] + t3[R / 2]) * 1e3,
           t1[R / 2] / (t2[R / 2] + t3[R / 2]));
    attn_plan_free(pl);
    free(Q), free(K), free(V), free(O), free(P), free(W), free(lse), free(t1), free(t2), free(t3);
    return 0;
}
