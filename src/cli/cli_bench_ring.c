/* attn bench attention --ring: ring attention (attn/dist.h) timed on all ranks of mpirun.
 * Each rank makes its own N/P rows; the ranks start each run together (a sum over the ranks
 * is the barrier), and a run takes as long as its slowest rank: the time printed is the median
 * over the runs of the slowest rank's time. FLOPs as cli_bench.c's for the whole sequence;
 * GFLOP/s per rank divides by P. Peak resident size: the largest over the ranks (MiB). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

/* The largest of every rank's x (a sum of one slot per rank). */
static int max_over_ranks(double *x) {
    int P = attn_dist_size(), r = attn_dist_rank();
    double *all = calloc((size_t)P, sizeof *all);
    if (!all) return ATTN_ENOMEM;
    all[r] = *x;
    int st = attn_dist_sum_f64(all, P);
    for (int k = 0; !st && k < P; k++) *x = all[k] > *x ? all[k] : *x;
    free(all);
    return st;
}

static int one_shape(int B, int H, int Hkv, int N, int d, int causal, int backward, int repeat, double *ms, double *rss) {
    int P = attn_dist_size(), r = attn_dist_rank();
    attn_ring_layout lay = causal ? ATTN_RING_ZIGZAG : ATTN_RING_CONTIGUOUS;
    int64_t nl = N / P;
    size_t nq = (size_t)B * H * nl * d, nk = (size_t)B * Hkv * nl * d, nr = (size_t)B * H * nl;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *o = malloc(nq * 4), *l = malloc(nr * 4);
    float *g = malloc(nq * 4), *gq = backward ? malloc(nq * 4) : NULL, *gk = backward ? malloc(nk * 4) : NULL;
    float *gv = backward ? malloc(nk * 4) : NULL;
    double *t = malloc((size_t)repeat * sizeof *t);
    int st = ATTN_OK;
    if (!q || !k || !v || !o || !l || !g || !t || (backward && (!gq || !gk || !gv))) {
        st = ATTN_ENOMEM;
        goto done;
    }
    attn_rng rng;
    attn_rng_seed(&rng, attn_seed_mix(16, (uint64_t)r));
    for (size_t i = 0; i < nq; i++) q[i] = attn_rng_normal(&rng), g[i] = attn_rng_normal(&rng);
    for (size_t i = 0; i < nk; i++) k[i] = attn_rng_normal(&rng), v[i] = attn_rng_normal(&rng);
    attn_desc a = {0};
    a.B = B, a.H = H, a.Hkv = Hkv, a.Nq = a.Nk = (int)nl, a.dq = d, a.mask.causal = causal;
    for (int rep = -1; rep < repeat && !st; rep++) { /* run -1: the warm-up */
        double start = 0.0;
        if ((st = attn_dist_sum_f64(&start, 1))) break; /* everyone starts together */
        double t0 = cli_bench_now();
        st = attn_ring_forward(&a, lay, q, k, v, o, l);
        if (!st && backward) st = attn_ring_backward(&a, lay, q, k, v, o, l, g, gq, gk, gv);
        double dt = cli_bench_now() - t0;
        if (!st) st = max_over_ranks(&dt);
        if (rep >= 0) t[rep] = dt;
    }
    if (!st) {
        *ms = 1e3 * cli_bench_median(t, repeat);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        *rss = ru.ru_maxrss / 1024.0;
        st = max_over_ranks(rss);
    }
done:
    free(q), free(k), free(v), free(o), free(l), free(g), free(gq), free(gk), free(gv), free(t);
    return st;
}

int cli_bench_ring(int B, int H, int Hkv, int d, int causal, int backward, int repeat, int json, const int *ns, int nn) {
    const char *cmd = "bench";
    int P = attn_dist_size(), root = attn_dist_rank() == 0, c = causal ? 2 : 1;
    for (int k = 0; k < nn; k++)
        if (ns[k] % (P * c))
            return cli_usage(cmd, "--ring: every --n must be a multiple of %d (%d ranks%s), not %d", P * c, P,
                             causal ? ", 2 chunks each for the causal zig-zag layout" : "", ns[k]);
    if (root && !json) {
        printf("ring attention %s: B=%d H=%d Hkv=%d d=%d%s, %d ranks x %d threads, %s layout, median of %d runs (slowest rank)\n",
               backward ? "forward+backward" : "forward", B, H, Hkv, d, causal ? " causal" : "", P, attn_get_threads(),
               causal ? "zig-zag" : "contiguous", repeat);
        printf("%8s %8s %10s %9s %13s %13s\n", "n", "n/rank", "ms", "GFLOP/s", "GFLOP/s/rank", "peak RSS MB");
    }
    for (int k = 0; k < nn; k++) {
        double ms = 0, rss = 0;
        int st = one_shape(B, H, Hkv, ns[k], d, causal, backward, repeat, &ms, &rss);
        if (st) return cli_fail_lib(cmd, st, NULL);
        double f = 4.0 * B * H * (double)ns[k] * ns[k] * d * (causal ? 0.5 : 1.0) * (backward ? 3.5 : 1.0), gf = f / ms * 1e-6;
        if (!root) continue;
        if (json)
            printf("{\"bench\": \"ring attention\", \"n\": %d, \"ranks\": %d, \"threads\": %d, \"d\": %d, \"heads\": %d, "
                   "\"kv_heads\": %d, \"batch\": %d, \"causal\": %s, \"backward\": %s, \"repeat\": %d, \"ms\": %.4f, "
                   "\"gflops\": %.2f, \"gflops_per_rank\": %.2f, \"peak_rss_mb\": %.1f}\n",
                   ns[k], P, attn_get_threads(), d, H, Hkv, B, causal ? "true" : "false", backward ? "true" : "false", repeat, ms,
                   gf, gf / P, rss);
        else printf("%8d %8d %10.3f %9.1f %13.1f %13.1f\n", ns[k], ns[k] / P, ms, gf, gf / P, rss);
        fflush(stdout);
    }
    return CLI_OK;
}
