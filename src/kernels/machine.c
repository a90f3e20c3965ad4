/* The machine's limits, measured (attn/machine.h): the arithmetic peak through the per-ISA
 * loops of kernels/peak.h, and the memory bandwidth by STREAM-like loops (McCalpin's STREAM:
 * copy and triad; plus a read-only sum, the traffic of decoding's K and V). Both run one task
 * per thread of the library's pool, started together behind a spin barrier so that no thread
 * runs two tasks one after the other; a run's time is from the first start to the last end. */
#define _POSIX_C_SOURCE 200809L
#include "attn/machine.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "kernels/peak.h"

#define MAX_TASKS 256

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v (n values) and returns the median; *lo, *hi the extremes. */
static double median(double *v, int n, double *lo, double *hi) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *lo = v[0], *hi = v[n - 1];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int nthreads(void) { return attn__max_threads() < MAX_TASKS ? attn__max_threads() : MAX_TASKS; }

/* ---- Running every thread at once -------------------------------------------------------- */

typedef struct {
    void (*work)(void *ctx, int task, int ntasks);
    void *ctx;
    int ntasks;
    atomic_int arrived;
    double t0[MAX_TASKS], t1[MAX_TASKS];
} together;

static void together_task(void *ctx, int task, int thread) {
    (void)thread;
    together *g = ctx;
    atomic_fetch_add(&g->arrived, 1);
    /* Wait until every task has started (1 s at most: a thread may be held elsewhere), yielding
     * the core: a woken thread is often queued on the core of the one that woke it, and would
     * otherwise start only when this one's work is done (the run then measures one core). */
    double wait0 = now_s();
    while (atomic_load(&g->arrived) < g->ntasks && now_s() - wait0 < 1.0) sched_yield();
    g->t0[task] = now_s();
    g->work(g->ctx, task, g->ntasks);
    g->t1[task] = now_s();
}

/* Seconds from the first task's start to the last one's end, one task per thread. */
static double run_together(void (*work)(void *, int, int), void *ctx) {
    together *g = attn_malloc(sizeof *g);
    if (!g) return -1;
    g->work = work, g->ctx = ctx;
    g->ntasks = nthreads();
    atomic_init(&g->arrived, 0);
    attn__parallel(g->ntasks, together_task, g);
    double t0 = g->t0[0], t1 = g->t1[0];
    for (int t = 1; t < g->ntasks; t++) t0 = g->t0[t] < t0 ? g->t0[t] : t0, t1 = g->t1[t] > t1 ? g->t1[t] : t1;
    attn_free(g);
    return t1 - t0;
}

/* ---- The arithmetic peak -------------------------------------------------------------------- */

/* The portable fp32 loop: 12 chains of 4 lanes, acc = acc * x + y (a multiply and an add, 2
 * flops; C11 does not contract them into an FMA), which compilers vectorise with the baseline
 * vectors (SSE2 on x86-64). */
static float loop_ref(long iters) {
    float a[12][4];
    for (int c = 0; c < 12; c++)
        for (int l = 0; l < 4; l++) a[c][l] = (float)(c + l);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < 12; c++)
            for (int l = 0; l < 4; l++) a[c][l] = a[c][l] * 0.999f + 0.001f;
    float s = 0;
    for (int c = 0; c < 12; c++)
        for (int l = 0; l < 4; l++) s += a[c][l];
    return s;
}

static const attn__peak_loop peak_ref = {loop_ref, 12 * 4 * 2.0, "ref: 12 chains of 4-lane multiply + add in portable C", NULL};

static const attn__peak_loop *peak_loop(attn_peak_kind kind) {
    const char *isa = attn_get_isa();
    (void)isa;
#if defined(ATTN_HAVE_X86)
    const attn__cpu *c = attn__cpu_features();
    if (kind == ATTN_PEAK_F32 && !strcmp(isa, "avx512")) return &attn__peak_f32_avx512;
    if (kind == ATTN_PEAK_F32 && !strcmp(isa, "avx2")) return &attn__peak_f32_avx2;
#if defined(ATTN_HAVE_AVX512BF16)
    if (kind == ATTN_PEAK_BF16 && c->avx512f && c->avx512bf16) return &attn__peak_bf16_avx512;
#endif
#if defined(ATTN_HAVE_AMX)
    if (kind == ATTN_PEAK_AMX && attn__cpu_amx_bf16()) return &attn__peak_bf16_amx;
#endif
    (void)c;
#endif
    return kind == ATTN_PEAK_F32 ? &peak_ref : NULL;
}

typedef struct {
    const attn__peak_loop *p;
    long iters;
    float sink[MAX_TASKS];
} peak_job;

static void peak_work(void *ctx, int task, int ntasks) {
    (void)ntasks;
    peak_job *j = ctx;
    j->sink[task] = j->p->loop(j->iters);
}

int attn_measure_peak(attn_peak_kind kind, double seconds, int runs, attn_peak_result *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_measure_peak: NULL result");
    memset(out, 0, sizeof *out);
    if (kind != ATTN_PEAK_F32 && kind != ATTN_PEAK_BF16 && kind != ATTN_PEAK_AMX)
        return attn__error(ATTN_EINVAL, "attn_measure_peak: unknown kind %d", (int)kind);
    const attn__peak_loop *p = peak_loop(kind);
    if (!p)
        return attn__error(ATTN_EINVAL, "attn_measure_peak: this CPU (or this build) has no %s",
                           kind == ATTN_PEAK_BF16 ? "AVX512-BF16 (VDPBF16PS)" : "AMX-BF16 (TDPBF16PS)");
    if (p->prepare && p->prepare())
        return attn__error(ATTN_EINVAL, "attn_measure_peak: the kernel refused the AMX tile state (arch_prctl)");
    if (seconds <= 0) seconds = 0.2;
    if (runs <= 0) runs = 5;
    if (runs > 1000) runs = 1000;
    /* Calibrate on this thread: double the iterations until a loop takes 2 ms. */
    long iters = 1024;
    double t = 0;
    for (;;) {
        double t0 = now_s();
        volatile float s = p->loop(iters);
        (void)s;
        t = now_s() - t0;
        if (t >= 0.002 || iters > (1L << 40)) break;
        iters *= 2;
    }
    peak_job *j = attn_malloc(sizeof *j);
    double *g = attn_malloc((size_t)runs * sizeof *g);
    if (!j || !g) {
        attn_free(j), attn_free(g);
        return attn__error(ATTN_ENOMEM, "attn_measure_peak: out of memory");
    }
    j->p = p;
    j->iters = (long)((double)iters * (seconds / runs) / t) + 1;
    int threads = nthreads();
    int st = ATTN_OK;
    for (int r = 0; r < runs && !st; r++) {
        double sec = run_together(peak_work, j);
        if (sec < 0) st = attn__error(ATTN_ENOMEM, "attn_measure_peak: out of memory");
        g[r] = p->flops_per_iter * (double)j->iters * threads / sec * 1e-9;
    }
    if (!st) {
        out->gflops = median(g, runs, &out->min_gflops, &out->max_gflops);
        out->threads = threads, out->runs = runs, out->how = p->how;
    }
    attn_free(j), attn_free(g);
    return st;
}

/* ---- The memory bandwidth -------------------------------------------------------------------- */

typedef struct {
    attn_bw_kind kind;
    float *a, *b, *c;
    size_t n; /* floats per array */
    float sink[MAX_TASKS];
} bw_job;

/* Read: 16 accumulators, so that the adds do not bound the loop (vectorised by the compiler). */
static float sum_read(const float *x, size_t n) {
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += x[i + k];
    for (; i < n; i++) acc[0] += x[i];
    float s = 0;
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

static void bw_work(void *ctx, int task, int ntasks) {
    bw_job *j = ctx;
    size_t i0 = j->n * (size_t)task / (size_t)ntasks, i1 = j->n * (size_t)(task + 1) / (size_t)ntasks;
    float *a = j->a + i0, *b = j->b + i0, *c = j->c + i0;
    size_t n = i1 - i0;
    if (j->kind == ATTN_BW_READ) j->sink[task] = sum_read(a, n);
    else if (j->kind == ATTN_BW_COPY) memcpy(b, a, n * sizeof *a);
    else
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
}

/* The first pass writes every page from the thread that later reads it. */
static void bw_init(void *ctx, int task, int ntasks) {
    bw_job *j = ctx;
    size_t i0 = j->n * (size_t)task / (size_t)ntasks, i1 = j->n * (size_t)(task + 1) / (size_t)ntasks;
    for (size_t i = i0; i < i1; i++) j->a[i] = 1.0f, j->b[i] = 2.0f, j->c[i] = 0.5f;
}

int attn_measure_bandwidth(attn_bw_kind kind, size_t bytes, int runs, attn_bw_result *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_measure_bandwidth: NULL result");
    memset(out, 0, sizeof *out);
    if (kind != ATTN_BW_READ && kind != ATTN_BW_COPY && kind != ATTN_BW_TRIAD)
        return attn__error(ATTN_EINVAL, "attn_measure_bandwidth: unknown kind %d", (int)kind);
    if (bytes < (1u << 20)) return attn__error(ATTN_EINVAL, "attn_measure_bandwidth: %zu bytes is below 1 MiB", bytes);
    if (runs <= 0) runs = 5;
    if (runs > 1000) runs = 1000;
    int arrays = kind == ATTN_BW_READ ? 1 : kind == ATTN_BW_COPY ? 2 : 3;
    bw_job *j = attn_calloc(1, sizeof *j);
    double *g = attn_malloc((size_t)runs * sizeof *g);
    float *mem = NULL;
    size_t n = bytes / arrays / sizeof(float) / 16 * 16;
    if (j && g) mem = attn_malloc(n * arrays * sizeof(float));
    if (!j || !g || !mem) {
        attn_free(j), attn_free(g), attn_free(mem);
        return attn__error(ATTN_ENOMEM, "attn_measure_bandwidth: cannot allocate %zu MiB", bytes >> 20);
    }
    /* Arrays the kind does not use alias the first (bw_init writes them alike). */
    j->kind = kind, j->n = n, j->a = mem;
    j->b = arrays > 1 ? mem + n : mem, j->c = arrays > 2 ? mem + 2 * n : mem;
    int st = run_together(bw_init, j) < 0 ? ATTN_ENOMEM : ATTN_OK;
    double moved = (double)n * sizeof(float) * (kind == ATTN_BW_READ ? 1 : kind == ATTN_BW_COPY ? 2 : 3);
    for (int r = 0; r < runs && !st; r++) {
        double sec = run_together(bw_work, j);
        if (sec < 0) st = ATTN_ENOMEM;
        else g[r] = moved / sec * 1e-9;
    }
    if (st) st = attn__error(ATTN_ENOMEM, "attn_measure_bandwidth: out of memory");
    else {
        out->gbps = median(g, runs, &out->min_gbps, &out->max_gbps);
        out->threads = nthreads();
        out->runs = runs, out->bytes = n * arrays * sizeof(float);
    }
    attn_free(j), attn_free(g), attn_free(mem);
    return st;
}
