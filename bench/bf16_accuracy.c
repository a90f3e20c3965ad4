/* The accuracy of attention in fp32 and in bf16 against float64: max and mean absolute error
 * of O, dQ, dK, dV for B = 1, H heads, N queries and keys, d features, standard normal Q, K,
 * V and dO (seeded), scaled scores. Columns:
 *   fp32               attn_forward/attn_backward on fp32 arrays, vs float64 of the same inputs
 *   bf16 (kernel)      compute = ATTN_BF16 on fp32 arrays, vs float64 of the bf16-ROUNDED
 *                      inputs: the kernels' own error (P and dS rounded to bf16, fp32 sums)
 *   bf16 (total)       the same outputs vs float64 of the fp32 inputs: what a user of fp32
 *                      data gets, the inputs' rounding included
 *   bf16 storage       dtype = ATTN_BF16 (inputs and outputs bf16), vs float64 of the rounded
 *                      inputs: the kernel error plus the outputs' own rounding
 * Prints one Markdown table and the kernels used. The float64 reference is plain loops (a
 * thread per head group, about a minute at N = 4096).
 * Compile: cc -O3 -march=native -Iinclude bench/bf16_accuracy.c build/libattn.a -lm -lpthread -lz -lpng -lfreetype -lfontconfig -o bf16_accuracy
 *   (or link build/libattn.so)
 * usage: bf16_accuracy [N=4096 H=8 d=64 THREADS=2] */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"

typedef struct {
    int N, H, d, h0, h1;
    const double *q, *k, *v, *g;   /* (H, N, d) */
    double *O, *dQ, *dK, *dV;      /* (H, N, d) */
} ref_job;

/* Float64 attention forward and backward of heads [h0, h1). */
static void *ref_heads(void *arg) {
    ref_job *r = arg;
    int N = r->N, d = r->d;
    double scale = 1.0 / sqrt((double)d), *p = malloc(sizeof(double) * N), *ds = malloc(sizeof(double) * N);
    for (int h = r->h0; h < r->h1; h++) {
        size_t off = (size_t)h * N * d;
        const double *q = r->q + off, *k = r->k + off, *v = r->v + off, *g = r->g + off;
        double *O = r->O + off, *dQ = r->dQ + off, *dK = r->dK + off, *dV = r->dV + off;
        for (int i = 0; i < N; i++) {
            const double *qi = q + (size_t)i * d, *gi = g + (size_t)i * d;
            double mx = -INFINITY, l = 0, delta = 0;
            for (int j = 0; j < N; j++) {
                const double *kj = k + (size_t)j * d;
                double s = 0;
                for (int c = 0; c < d; c++) s += qi[c] * kj[c];
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < N; j++) l += (p[j] = exp(p[j] - mx));
            double *oi = O + (size_t)i * d, *dqi = dQ + (size_t)i * d;
            memset(oi, 0, sizeof(double) * d), memset(dqi, 0, sizeof(double) * d);
            for (int j = 0; j < N; j++) {
                p[j] /= l;
                const double *vj = v + (size_t)j * d;
                for (int c = 0; c < d; c++) oi[c] += p[j] * vj[c];
            }
            for (int c = 0; c < d; c++) delta += gi[c] * oi[c];
            for (int j = 0; j < N; j++) {
                const double *vj = v + (size_t)j * d;
                double dp = 0;
                for (int c = 0; c < d; c++) dp += gi[c] * vj[c];
                ds[j] = p[j] * (dp - delta) * scale;
            }
            for (int j = 0; j < N; j++) {
                const double *kj = k + (size_t)j * d;
                double *dkj = dK + (size_t)j * d, *dvj = dV + (size_t)j * d;
                for (int c = 0; c < d; c++) {
                    dqi[c] += ds[j] * kj[c];
                    dkj[c] += ds[j] * qi[c];
                    dvj[c] += p[j] * gi[c];
                }
            }
        }
    }
    free(p), free(ds);
    return NULL;
}

/* out[0..3] = O, dQ, dK, dV in float64 from the inputs x[0..3] = Q, K, V, dO. */
static void reference(int N, int H, int d, int threads, double *const x[4], double *out[4]) {
    size_t n = (size_t)H * N * d;
    for (int t = 0; t < 4; t++) out[t] = calloc(n, sizeof(double));
    pthread_t th[64];
    ref_job jobs[64];
    if (threads > H) threads = H;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (ref_job){N, H, d, H * t / threads, H * (t + 1) / threads, x[0], x[1], x[2], x[3], out[0], out[1], out[2], out[3]};
        pthread_create(&th[t], NULL, ref_heads, &jobs[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
}

/* Runs attention on fp32 inputs xf (or, with dtype ATTN_BF16, on their bf16 rounding), the
 * outputs as fp32 in y[0..3]. */
static int run(int N, int H, int d, int dtype, int compute, float *const xf[4], float *y[4]) {
    size_t n = (size_t)H * N * d;
    attn_desc a = {.B = 1, .H = H, .Nq = N, .Nk = N, .dq = d, .score = ATTN_SCORE_SCALED, .dtype = dtype, .compute = compute};
    void *in[4], *out[4];
    size_t es = dtype == ATTN_BF16 ? 2 : 4;
    for (int t = 0; t < 4; t++) {
        in[t] = malloc(n * es), out[t] = malloc(n * es);
        if (dtype == ATTN_BF16) attn_f32_to_bf16(xf[t], in[t], n);
        else memcpy(in[t], xf[t], n * 4);
    }
    float *lse = malloc(sizeof(float) * H * N);
    int st = attn_forward(&a, in[0], in[1], in[2], out[0], NULL, lse);
    if (!st) st = attn_backward(&a, in[0], in[1], in[2], out[0], lse, in[3], out[1], out[2], out[3], NULL);
    for (int t = 0; t < 4; t++) {
        y[t] = malloc(n * 4);
        if (dtype == ATTN_BF16) attn_bf16_to_f32(out[t], y[t], n);
        else memcpy(y[t], out[t], n * 4);
        free(in[t]), free(out[t]);
    }
    free(lse);
    if (st) fprintf(stderr, "bf16_accuracy: %s\n", attn_last_error());
    return st;
}

static void err(const float *y, const double *r, size_t n, double *mx, double *mean) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(y[i] - r[i]);
        if (e > m || isnan(e)) m = e;
        s += e;
    }
    *mx = m, *mean = s / (double)n;
}

int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 4096, H = argc > 2 ? atoi(argv[2]) : 8, d = argc > 3 ? atoi(argv[3]) : 64;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    if (N < 1 || H < 1 || d < 1 || threads < 1 || threads > 64)
        return fprintf(stderr, "usage: %s [N=4096 H=8 d=64 THREADS=2]\n", argv[0]), 2;
    size_t n = (size_t)H * N * d;
    float *xf[4];
    double *x32[4], *x16[4];
    attn_rng rng;
    attn_rng_seed(&rng, 2026);
    for (int t = 0; t < 4; t++) {
        xf[t] = malloc(n * 4), x32[t] = malloc(n * 8), x16[t] = malloc(n * 8);
        uint16_t *b = malloc(n * 2);
        float *w = malloc(n * 4);
        for (size_t i = 0; i < n; i++) xf[t][i] = attn_rng_normal(&rng);
        attn_f32_to_bf16(xf[t], b, n), attn_bf16_to_f32(b, w, n);
        for (size_t i = 0; i < n; i++) x32[t][i] = xf[t][i], x16[t][i] = w[i];
        free(b), free(w);
    }
    attn_set_threads(threads);
    float *y32[4], *yc[4], *ys[4];
    if (run(N, H, d, ATTN_F32, ATTN_F32, xf, y32) || run(N, H, d, ATTN_F32, ATTN_BF16, xf, yc) ||
        run(N, H, d, ATTN_BF16, ATTN_F32, xf, ys))
        return 1;
    double *r32[4], *r16[4];
    reference(N, H, d, threads, x32, r32);
    reference(N, H, d, threads, x16, r16);
    printf("B=1 H=%d N=%d d=%d, standard normal Q K V dO, scaled scores; kernels: fp32 %s, bf16 %s\n\n", H, N, d,
           attn_get_isa(), attn_bf16_isa());
    printf("| max / mean abs error | fp32 | bf16 (kernel) | bf16 (total) | bf16 storage | mean abs value |\n");
    printf("|---|---|---|---|---|---|\n");
    const char *nm[4] = {"O", "dQ", "dK", "dV"};
    for (int t = 0; t < 4; t++) {
        double a[4][2], mag = 0;
        err(y32[t], r32[t], n, &a[0][0], &a[0][1]);
        err(yc[t], r16[t], n, &a[1][0], &a[1][1]);
        err(yc[t], r32[t], n, &a[2][0], &a[2][1]);
        err(ys[t], r16[t], n, &a[3][0], &a[3][1]);
        for (size_t i = 0; i < n; i++) mag += fabs(r32[t][i]);
        printf("| %s |", nm[t]);
        for (int c = 0; c < 4; c++) printf(" %.2e / %.2e |", a[c][0], a[c][1]);
        printf(" %.3g |\n", mag / (double)n);
    }
    for (int t = 0; t < 4; t++) free(xf[t]), free(x32[t]), free(x16[t]), free(y32[t]), free(yc[t]), free(ys[t]), free(r32[t]), free(r16[t]);
    return 0;
}
