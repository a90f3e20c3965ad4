/* Ring attention at full size against the single-process kernel on a slice (bench/ring_check.sh
 * builds and runs it under mpirun): B = 1, H heads, d features, N rows over the P ranks.
 *
 * Every element is a function of its global position (a hash), so no rank ever holds more
 * than its own rows. The upstream gradient dO is zero but on S = 64 query rows spread over the
 * sequence: then O and dQ on S, and all of dK and dV, depend only on those rows, and one
 * process computes them exactly with the kernel on a slice (Nq = |S| queries against all N
 * keys; for the causal mask a boolean mask with each row's global position). The ranks' results
 * are gathered on rank 0 and compared: max |ring - kernel| / max |kernel| per array.
 * Reports each rank's time and peak resident size (taken before rank 0 gathers anything).
 *
 *   mpirun -np P ring_check N [H d causal layout]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "attn/attn.h"

enum { NS = 64 };

/* A value in [-1, 1) for (tensor, head, row, column): splitmix64 of the position. */
static float val(uint64_t t, uint64_t h, uint64_t row, uint64_t col) {
    uint64_t z = ((t * 1000003u + h) * 0x100000001b3u + row) * 0x9e3779b97f4a7c15u + col;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int64_t srow(int k, int64_t N) { return (int64_t)k * (N / NS) + (k * 37) % (N / NS); } /* the checked rows */
static int in_s(int64_t row, int64_t N) {
    int64_t k = row / (N / NS);
    return k < NS && srow((int)k, N) == row;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The reference in float64 by plain loops (the kernel's and the ring's float32 rounding
 * measured against it): for each head and checked row s, the softmax over the visible keys,
 * O, lse, and the gradients dQ (row s), dK and dV (every key row) from dO. */
static void ref64(int H, int64_t N, int d, int causal, const float *Qs, const float *K, const float *V, const float *dOs, double *O,
                  double *L, double *dQ, double *dK, double *dV) {
    double scale = 1.0 / sqrt((double)d), *p = malloc((size_t)N * sizeof *p);
    memset(dK, 0, (size_t)H * N * d * sizeof *dK), memset(dV, 0, (size_t)H * N * d * sizeof *dV);
    for (int h = 0; h < H; h++)
        for (int s = 0; s < NS; s++) {
            const float *q = Qs + ((size_t)h * NS + s) * d, *g = dOs + ((size_t)h * NS + s) * d;
            int64_t n = causal ? srow(s, N) + 1 : N;
            double m = -INFINITY, sum = 0, delta = 0;
            for (int64_t j = 0; j < n; j++) {
                const float *k = K + ((size_t)h * N + j) * d;
                double x = 0;
                for (int c = 0; c < d; c++) x += (double)q[c] * k[c];
                p[j] = x * scale, m = fmax(m, p[j]);
            }
            for (int64_t j = 0; j < n; j++) sum += (p[j] = exp(p[j] - m));
            double *o = O + ((size_t)h * NS + s) * d, *dq = dQ + ((size_t)h * NS + s) * d;
            memset(o, 0, (size_t)d * sizeof *o), memset(dq, 0, (size_t)d * sizeof *dq);
            for (int64_t j = 0; j < n; j++) {
                const float *v = V + ((size_t)h * N + j) * d;
                p[j] /= sum;
                for (int c = 0; c < d; c++) o[c] += p[j] * v[c];
            }
            L[h * NS + s] = m + log(sum);
            for (int c = 0; c < d; c++) delta += o[c] * g[c];
            for (int64_t j = 0; j < n; j++) {
                const float *k = K + ((size_t)h * N + j) * d, *v = V + ((size_t)h * N + j) * d;
                double dp = 0;
                for (int c = 0; c < d; c++) dp += (double)g[c] * v[c];
                double ds = p[j] * (dp - delta) * scale;
                double *dk = dK + ((size_t)h * N + j) * d, *dv = dV + ((size_t)h * N + j) * d;
                for (int c = 0; c < d; c++) dq[c] += ds * k[c], dk[c] += ds * q[c], dv[c] += p[j] * g[c];
            }
        }
    free(p);
}

/* |got - want|_2 / |want|_2 against the float64 reference. */
static double rel64(const float *got, const double *want, size_t n) {
    double e2 = 0, w2 = 0;
    for (size_t i = 0; i < n; i++) e2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), w2 += want[i] * want[i];
    return sqrt(e2 / w2);
}

/* The relative error in norm, |got - want|_2 / |want|_2; in *maxrel the largest |got - want|
 * over the largest |want| (a stricter figure). */
static double rel(const float *got, const float *want, size_t n, double *maxrel) {
    double big = 0, worst = 0, e2 = 0, w2 = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        big = fmax(big, fabs(want[i])), worst = fmax(worst, fabs(e)), e2 += e * e, w2 += (double)want[i] * want[i];
    }
    if (maxrel) *maxrel = fmax(*maxrel, worst / big);
    return sqrt(e2 / w2);
}

int main(int argc, char **argv) {
    if (attn_dist_init(&argc, &argv)) return fprintf(stderr, "%s\n", attn_last_error()), 1;
    int P = attn_dist_size(), rank = attn_dist_rank();
    int64_t N = argc > 1 ? atoll(argv[1]) : 65536;
    int H = argc > 2 ? atoi(argv[2]) : 8, d = argc > 3 ? atoi(argv[3]) : 64, causal = argc > 4 ? atoi(argv[4]) : 0;
    attn_ring_layout layout = argc > 5 ? (attn_ring_layout)atoi(argv[5]) : ATTN_RING_CONTIGUOUS;
    int64_t nl = N / P;
    if (attn_ring_row(N, P, 0, layout, 0) < 0 || N / NS < 1) return fprintf(stderr, "N must be a multiple of P (2P for zig-zag), >= 64\n"), 1;
    size_t n = (size_t)H * nl * d, nr = (size_t)H * nl;
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4), *l = malloc(nr * 4), *dO = calloc(n, 4);
    float *dq = malloc(n * 4), *dk = malloc(n * 4), *dv = malloc(n * 4);
    if (!q || !k || !v || !o || !l || !dO || !dq || !dk || !dv) return fprintf(stderr, "out of memory\n"), 1;
    for (int h = 0; h < H; h++)
        for (int64_t i = 0; i < nl; i++) {
            int64_t g = attn_ring_row(N, P, rank, layout, i);
            for (int c = 0; c < d; c++) {
                size_t e = ((size_t)h * nl + i) * d + c;
                q[e] = val(1, h, g, c), k[e] = val(2, h, g, c), v[e] = val(3, h, g, c);
                if (in_s(g, N)) dO[e] = val(4, h, g, c);
            }
        }
    attn_desc a = {0};
    a.B = 1, a.H = H, a.Nq = a.Nk = (int)nl, a.dq = d, a.mask.causal = causal, a.score = ATTN_SCORE_SCALED;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    int st = attn_ring_forward(&a, layout, q, k, v, o, l);
    double t1 = now();
    if (!st) st = attn_ring_backward(&a, layout, q, k, v, o, l, dO, dq, dk, dv);
    double t2 = now();
    if (st) fprintf(stderr, "rank %d: %s\n", rank, attn_last_error()), attn_dist_abort(1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mine[3] = {t1 - t0, t2 - t1, ru.ru_maxrss / 1024.0}, all[3 * 1024];
    MPI_Gather(mine, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    /* everything to rank 0, in rank order */
    float *g[5] = {NULL};
    float *mine5[5] = {o, l, dq, dk, dv};
    size_t cnt[5] = {n, nr, n, n, n};
    for (int t = 0; t < 5; t++) {
        if (rank == 0 && !(g[t] = malloc(cnt[t] * P * 4))) return fprintf(stderr, "out of memory\n"), 1;
        MPI_Gather(mine5[t], (int)cnt[t], MPI_FLOAT, g[t], (int)cnt[t], MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
    if (rank == 0) {
        printf("ring attention, N %lld, B 1, H %d, d %d, %s%s, %d ranks, %d threads each\n", (long long)N, H, d,
               layout ? "zig-zag" : "contiguous", causal ? ", causal" : "", P, attn_get_threads());
        for (int r = 0; r < P; r++)
            printf("rank %d: forward %.1f s, backward %.1f s, peak resident %.0f MiB\n", r, all[3 * r], all[3 * r + 1], all[3 * r + 2]);
        /* the reference: the kernel on the slice S against every key */
        size_t nk = (size_t)H * N * d, ns = (size_t)H * NS * d;
        float *K = malloc(nk * 4), *V = malloc(nk * 4), *Qs = malloc(ns * 4), *dOs = malloc(ns * 4), *Os = malloc(ns * 4);
        float *Ls = malloc((size_t)H * NS * 4), *dQs = malloc(ns * 4), *dK = malloc(nk * 4), *dV = malloc(nk * 4);
        uint8_t *mask = malloc((size_t)NS * N);
        if (!K || !V || !Qs || !dOs || !Os || !Ls || !dQs || !dK || !dV || !mask) return fprintf(stderr, "out of memory\n"), 1;
        for (int h = 0; h < H; h++)
            for (int64_t j = 0; j < N; j++)
                for (int c = 0; c < d; c++) K[((size_t)h * N + j) * d + c] = val(2, h, j, c), V[((size_t)h * N + j) * d + c] = val(3, h, j, c);
        for (int h = 0; h < H; h++)
            for (int s = 0; s < NS; s++)
                for (int c = 0; c < d; c++)
                    Qs[((size_t)h * NS + s) * d + c] = val(1, h, srow(s, N), c), dOs[((size_t)h * NS + s) * d + c] = val(4, h, srow(s, N), c);
        for (int s = 0; s < NS; s++)
            for (int64_t j = 0; j < N; j++) mask[(size_t)s * N + j] = j <= srow(s, N);
        attn_desc ra = {0};
        ra.B = 1, ra.H = H, ra.Nq = NS, ra.Nk = (int)N, ra.dq = d, ra.score = ATTN_SCORE_SCALED;
        if (causal) {
            int64_t shape[2] = {NS, N}, target[4] = {1, H, NS, N};
            ra.mask.bool_mask = mask;
            attn_broadcast_strides(shape, 2, target, ra.mask.bool_strides);
        }
        double t3 = now();
        if (attn_forward(&ra, Qs, K, V, Os, NULL, Ls) || attn_backward(&ra, Qs, K, V, Os, Ls, dOs, dQs, dK, dV, NULL))
            return fprintf(stderr, "reference: %s\n", attn_last_error()), 1;
        double t4 = now();
        /* the ring's rows at S (O, lse, dQ) and at every row (dK, dV), in global order */
        float *ro = malloc(ns * 4), *rl = malloc((size_t)H * NS * 4), *rq = malloc(ns * 4), *rk = malloc(nk * 4), *rv = malloc(nk * 4);
        for (int r = 0; r < P; r++)
            for (int64_t i = 0; i < nl; i++) {
                int64_t gr = attn_ring_row(N, P, r, layout, i);
                for (int h = 0; h < H; h++) {
                    size_t src = (((size_t)r * H + h) * nl + i) * d, dst = ((size_t)h * N + gr) * d;
                    memcpy(rk + dst, g[3] + src, (size_t)d * 4), memcpy(rv + dst, g[4] + src, (size_t)d * 4);
                    if (!in_s(gr, N)) continue;
                    size_t s = (size_t)(gr / (N / NS)), ds = ((size_t)h * NS + s) * d;
                    memcpy(ro + ds, g[0] + src, (size_t)d * 4), memcpy(rq + ds, g[2] + src, (size_t)d * 4);
                    rl[h * NS + s] = g[1][((size_t)r * H + h) * nl + i];
                }
            }
        printf("reference (one process, %d query rows x %lld keys): %.1f s\n", NS, (long long)N, t4 - t3);
        double mr = 0, e[5] = {rel(ro, Os, ns, &mr), rel(rl, Ls, (size_t)H * NS, &mr), rel(rq, dQs, ns, &mr), rel(rk, dK, nk, &mr),
                               rel(rv, dV, nk, &mr)};
        printf("|ring - kernel|_2 / |kernel|_2: O %.2e, lse %.2e, dQ %.2e (on the %d rows), dK %.2e, dV %.2e (all rows)\n", e[0], e[1],
               e[2], NS, e[3], e[4]);
        double worst = 0;
        for (int t = 0; t < 5; t++) worst = fmax(worst, e[t]);
        printf("largest relative error in norm %.2e: %s (tolerance 1e-6); largest |difference| / largest |value| %.2e\n", worst,
               worst <= 1e-6 ? "MATCH" : "MISMATCH", mr);
        /* both against float64: is the difference the ring's, or float32's? */
        double *O64 = malloc(ns * 8), *L64 = malloc((size_t)H * NS * 8), *dQ64 = malloc(ns * 8), *dK64 = malloc(nk * 8), *dV64 = malloc(nk * 8);
        if (!O64 || !L64 || !dQ64 || !dK64 || !dV64) return fprintf(stderr, "out of memory\n"), 1;
        double t5 = now();
        ref64(H, N, d, causal, Qs, K, V, dOs, O64, L64, dQ64, dK64, dV64);
        printf("float64 reference: %.1f s\n", now() - t5);
        printf("|x - float64|_2 / |float64|_2   ring:   O %.2e, lse %.2e, dQ %.2e, dK %.2e, dV %.2e\n", rel64(ro, O64, ns),
               rel64(rl, L64, (size_t)H * NS), rel64(rq, dQ64, ns), rel64(rk, dK64, nk), rel64(rv, dV64, nk));
        printf("                                 kernel: O %.2e, lse %.2e, dQ %.2e, dK %.2e, dV %.2e\n", rel64(Os, O64, ns),
               rel64(Ls, L64, (size_t)H * NS), rel64(dQs, dQ64, ns), rel64(dK, dK64, nk), rel64(dV, dV64, nk));
    }
    attn_dist_finalize();
    return 0;
}
