/* attn bench: timings of the attention function (and of the multi-head attention layer, whose
 * projections are matrix products) on the fast path the library picked, beside the portable
 * reference path measured in the same run. Medians of several runs, wall-clock time.
 *
 * FLOPs, as the field counts them: forward 4 B H Nq Nk d (2 B H Nq Nk (d + dv) in general),
 * halved when causal; forward + backward 3.5 times the forward. The MHA layer adds its four
 * projections, 2 B N E^2 each forward (twice that backward).
 *
 * The reference path is slow (plain loops): to keep a run short it is timed on fewer heads
 * (--ref-heads, default: all of them up to N = 1024, one group of heads above) and scaled by
 * the number of heads, which is exact up to noise since heads are independent tasks; the
 * output marks it. (mha always times the reference on every head.)
 * With --json, the process CPU time per thread is reported beside the wall clock (see cli_bench_cpu_now).
 * Peak memory: every allocation of the library goes through a counting hook, so the bench
 * reports the most the library held at once during a call (scratch, on top of the caller's
 * inputs and outputs), and the process's peak resident size.
 *
 * Every GFLOP/s is also a share of the fp32 FMA peak of the same threads, measured at the start
 * of the run (attn/machine.h, about 0.2 s). attn bench peak, bandwidth (cli_bench_machine.c)
 * and decode (cli_bench_decode.c) are reached from here.
 *
 * Not here: comparisons with PyTorch and ONNX Runtime (bench/torch_attention.py,
 * bench/run_attention.sh, bench/peers/run.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "cli_bench_mods.h"

static const char HELP[] =
    "usage: attn bench attention [options]\n"
    "       attn bench mha [options]\n"
    "       attn bench peak|bandwidth|decode [options]   (see each one's --help)\n"
    "\n"
    "Times the fused attention (attention) or the multi-head attention layer with its\n"
    "projections (mha) on the fastest instruction-set path of this CPU (or ATTN_ISA's), and the\n"
    "portable reference path in the same run; prints the median time, GFLOP/s and the speedup.\n"
    "Every GFLOP/s figure is also given as a percentage of the machine's fp32 peak, measured at\n"
    "the start of the run with the same threads (attn bench peak, about 0.2 s; not with --mods,\n"
    "--doc-lens or --ring).\n"
    "The other benchmarks: peak (the FMA and bf16 peaks), bandwidth (STREAM-like memory\n"
    "bandwidth), decode (one query or a beam against a long KV cache, as % of the bandwidth).\n"
    "\n"
    "options:\n"
    "  --n LIST            key (and query) lengths, comma-separated      (default 256,1024,4096)\n"
    "  --nq N              query length, e.g. 1 for decoding one token   (default: = n)\n"
    "  --d D               features per head (dq = dk = dv)              (default 64)\n"
    "  --heads H           query heads                                   (default 8)\n"
    "  --kv-heads H        key/value heads (grouped heads; divides --heads) (default = heads)\n"
    "  --batch B                                                         (default 1)\n"
    "  --causal            causal mask (each query sees the keys up to its own position)\n"
    "  --backward          time forward + backward (3.5x the forward FLOPs)\n"
    "  --dtype T           attention: f32 or bf16 arrays (bf16: products in bfloat16, sums,\n"
    "                      softmax and log-sum-exp in fp32; AMX, AVX512-BF16, the fp32\n"
    "                      kernels on widened values (f32) or the reference: ATTN_BF16_ISA;\n"
    "                      the path column names it)                       (default f32)\n"
    "  --compute T         attention: f32, or bf16 on f32 arrays (converted once per call)\n"
    "  --threads N         library threads                 (default: ATTN_THREADS or all CPUs)\n"
    "  --repeat R          timed runs per shape, after one warm-up run (default 5)\n"
    "  --ref-heads K       time the reference on K heads and scale (0 = skip the reference)\n"
    "  --mods LIST         attention: each modifier of LIST (softcap, alibi, t5, sinks,\n"
    "                      dropout) built in, beside the same as a score_mod callback, as\n"
    "                      score_mod_tile callbacks and beside none (no reference path)\n"
    "  --doc-lens LENS     attention: documents packed in each row (comma-separated lengths,\n"
    "                      or one length repeated to fill n) beside the same mask as a dense\n"
    "                      bool mask (no reference path)\n"
    "  --json              one JSON object per line instead of the table (adds the CPU time\n"
    "                      per thread: on a shared machine, the speed when the cores are ours)\n"
    "  --ring              attention only, under mpirun: ring attention over the ranks (each\n"
    "                      holds n/P rows; zig-zag layout with --causal); the time of the\n"
    "                      slowest rank, GFLOP/s in all and per rank, the largest peak RSS\n"
    "\n"
    "FLOPs: forward 4*B*H*Nq*Nk*d, halved when causal; forward+backward 3.5x that; mha adds\n"
    "2*B*N*E^2 per projection (E = H*d), twice that backward. % peak: GFLOP/s / the fp32 peak.\n"
    "\n"
    "example:\n"
    "  attn bench attention --n 1024,4096 --threads 2 --repeat 10\n"
    "  attn bench attention --n 4096 --nq 1 --json          # decoding one token\n"
    "  attn bench attention --n 1024,4096 --dtype bf16 --backward\n"
    "  attn bench attention --n 4096 --mods softcap,alibi --doc-lens 512\n"
    "  mpirun -np 4 attn bench attention --ring --n 65536 --backward --threads 1\n";

/* ---- A counting allocator: the library's peak bytes held ------------------------------- */

static atomic_llong g_now, g_peak;

static void *count_malloc(size_t n, void *u) {
    (void)u;
    size_t *p = malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    long long now = atomic_fetch_add(&g_now, (long long)n) + (long long)n, peak = atomic_load(&g_peak);
    while (now > peak && !atomic_compare_exchange_weak(&g_peak, &peak, now)) {
    }
    return (char *)p + 16;
}

static void count_free(void *q, void *u) {
    (void)u;
    size_t *p = (size_t *)((char *)q - 16);
    atomic_fetch_sub(&g_now, (long long)p[0]);
    free(p);
}

double cli_bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time of the whole process (all threads). The library's threads sleep while they wait,
 * so on a machine shared with other work (CPU time) / threads shows what the code does when it
 * has its cores, where the wall clock also counts the time others held them. */
double cli_bench_cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

float *cli_bench_randn(size_t n, uint64_t seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) return NULL;
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = attn_rng_normal(&r);
    return x;
}

/* ---- One shape ----------------------------------------------------------------------------- */

typedef struct {
    const char *what; /* "attention" or "mha" */
    int B, H, Hkv, nq, n, d, causal, backward, repeat;
    int dtype, compute; /* attention: ATTN_F32 or ATTN_BF16 */
} shape;

typedef struct {
    float *Q, *K, *V, *O, *lse, *dO, *dQ, *dK, *dV; /* attention */
    attn_mha_config cfg;                             /* mha */
    attn_mha_weights w, g;
    attn_mha_cache cache;
    float *x, *out, *dout, *dx;
} buffers;

static void buffers_free(buffers *b) {
    free(b->Q), free(b->K), free(b->V), free(b->O), free(b->lse), free(b->dO), free(b->dQ), free(b->dK), free(b->dV);
    attn_mha_weights_free(&b->w), attn_mha_weights_free(&b->g), attn_mha_cache_free(&b->cache);
    free(b->x), free(b->out), free(b->dout), free(b->dx);
    memset(b, 0, sizeof *b);
}

/* Inputs for shape s with `heads` query heads (kv heads scaled alike). */
static int buffers_init(buffers *b, const shape *s, int heads) {
    memset(b, 0, sizeof *b);
    int hkv = heads * s->Hkv / s->H;
    size_t nq = (size_t)s->B * heads * s->nq * s->d, nk = (size_t)s->B * hkv * s->n * s->d;
    if (!strcmp(s->what, "attention")) {
        b->Q = cli_bench_randn(nq, 1), b->K = cli_bench_randn(nk, 2), b->V = cli_bench_randn(nk, 3), b->dO = cli_bench_randn(nq, 4);
        b->O = malloc(nq * sizeof(float)), b->lse = malloc((size_t)s->B * heads * s->nq * sizeof(float));
        if (s->backward) b->dQ = malloc(nq * sizeof(float)), b->dK = malloc(nk * sizeof(float)), b->dV = malloc(nk * sizeof(float));
        if (!b->Q || !b->K || !b->V || !b->dO || !b->O || !b->lse || (s->backward && (!b->dQ || !b->dK || !b->dV)))
            return ATTN_ENOMEM;
        if (s->dtype == ATTN_BF16) { /* the same values rounded, as uint16_t in place */
            float *in[4] = {b->Q, b->K, b->V, b->dO};
            size_t n[4] = {nq, nk, nk, nq};
            for (int t = 0; t < 4; t++) attn_f32_to_bf16(in[t], (uint16_t *)in[t], n[t]);
        }
        return ATTN_OK;
    }
    /* mha: self-attention on x (B, N, E) */
    b->cfg.embed_dim = heads * s->d, b->cfg.num_heads = heads;
    int st = attn_mha_weights_init(&b->w, &b->cfg);
    if (!st) st = attn_mha_weights_init(&b->g, &b->cfg);
    attn_rng r;
    attn_rng_seed(&r, 5);
    if (!st) st = attn_mha_weights_reset(&b->w, &b->cfg, &r);
    if (!st) st = attn_mha_cache_init(&b->cache, &b->cfg, s->B, s->n, s->n);
    if (st) return st;
    size_t nx = (size_t)s->B * s->n * b->cfg.embed_dim;
    b->x = cli_bench_randn(nx, 6), b->dout = cli_bench_randn(nx, 7), b->out = malloc(nx * sizeof(float));
    b->dx = malloc(3 * nx * sizeof(float));
    return b->x && b->dout && b->out && b->dx ? ATTN_OK : ATTN_ENOMEM;
}

static int run_once(const shape *s, buffers *b, int heads) {
    if (!strcmp(s->what, "mha")) {
        attn_mha_masks m = {0};
        m.is_causal = s->causal;
        size_t nx = (size_t)s->B * s->n * b->cfg.embed_dim;
        int st = attn_mha_forward(&b->cfg, &b->w, &b->cache, b->x, b->x, b->x, &m, b->out, NULL, 0);
        if (!st && s->backward)
            st = attn_mha_backward(&b->cfg, &b->w, &b->cache, b->x, b->x, b->x, &m, b->dout, b->dx, b->dx + nx,
                                   b->dx + 2 * nx, &b->g);
        return st;
    }
    attn_desc a = {0};
    a.B = s->B, a.H = heads, a.Hkv = heads * s->Hkv / s->H, a.Nq = s->nq, a.Nk = s->n, a.dq = s->d;
    a.score = ATTN_SCORE_SCALED;
    a.mask.causal = s->causal;
    a.dtype = s->dtype, a.compute = s->compute;
    int st = attn_forward(&a, b->Q, b->K, b->V, b->O, NULL, b->lse);
    if (!st && s->backward) st = attn_backward(&a, b->Q, b->K, b->V, b->O, b->lse, b->dO, b->dQ, b->dK, b->dV, NULL);
    return st;
}

/* Median seconds of `repeat` runs after a warm-up (wall clock, and process CPU time in *cpu);
 * the library's peak bytes in *peak. */
static int time_shape(const shape *s, int heads, int repeat, double *sec, double *cpu, long long *peak) {
    buffers b;
    int st = buffers_init(&b, s, heads);
    double *t = malloc((size_t)(repeat > 0 ? repeat : 1) * 2 * sizeof *t), *c = t + (repeat > 0 ? repeat : 1);
    if (!st && !t) st = ATTN_ENOMEM;
    if (!st) {
        atomic_store(&g_peak, atomic_load(&g_now));
        long long base = atomic_load(&g_now);
        st = run_once(s, &b, heads);
        *peak = atomic_load(&g_peak) - base;
    }
    for (int r = 0; !st && r < repeat; r++) {
        double t0 = cli_bench_now(), c0 = cli_bench_cpu_now();
        st = run_once(s, &b, heads);
        t[r] = cli_bench_now() - t0, c[r] = cli_bench_cpu_now() - c0;
    }
    if (!st) *sec = cli_bench_median(t, repeat), *cpu = cli_bench_median(c, repeat);
    free(t);
    buffers_free(&b);
    return st;
}

static double flops(const shape *s) {
    double f = 4.0 * s->B * s->H * (double)s->nq * s->n * s->d;
    if (s->causal) f *= 0.5;
    if (!strcmp(s->what, "mha")) f += 4 * 2.0 * s->B * (double)s->n * (s->H * s->d) * (s->H * s->d);
    if (s->backward) f *= 3.5;
    return f;
}

static int parse_list(const char *arg, int *out, int max) {
    int n = 0;
    const char *p = arg;
    while (*p && n < max) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > (1L << 24)) return -1;
        out[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end) return -1;
        p = end;
    }
    return *p ? -1 : n;
}

int cli_bench(int argc, char **argv) {
    const char *cmd = "bench";
    if (argc >= 2 && !strcmp(argv[1], "peak")) return cli_bench_peak(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "bandwidth")) return cli_bench_bandwidth(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "decode")) return cli_bench_decode(argc - 1, argv + 1);
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    const char *nlist = "256,1024,4096";
    int nq = 0, d = 64, H = 8, Hkv = 0, B = 1, causal = 0, backward = 0, threads = 0, repeat = 5, ref_heads = -1, json = 0, ring = 0;
    const char *mods = NULL, *doc_lens = NULL, *dtype = "f32", *compute = "f32";
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) return cli_help(HELP);
        else if (cli_str(&p, "--n", &nlist)) {}
        else if (cli_int(&p, "--nq", 1, 1 << 24, &nq)) {}
        else if (cli_int(&p, "--d", 1, 4096, &d)) {}
        else if (cli_int(&p, "--heads", 1, 4096, &H)) {}
        else if (cli_int(&p, "--kv-heads", 1, 4096, &Hkv)) {}
        else if (cli_int(&p, "--batch", 1, 1 << 20, &B)) {}
        else if (cli_flag(&p, "--causal")) causal = 1;
        else if (cli_flag(&p, "--backward")) backward = 1;
        else if (cli_int(&p, "--threads", 1, 256, &threads)) {}
        else if (cli_int(&p, "--repeat", 1, 100000, &repeat)) {}
        else if (cli_int(&p, "--ref-heads", 0, 4096, &ref_heads)) {}
        else if (cli_flag(&p, "--json")) json = 1;
        else if (cli_str(&p, "--mods", &mods)) {}
        else if (cli_str(&p, "--doc-lens", &doc_lens)) {}
        else if (cli_flag(&p, "--ring")) ring = 1;
        else if (cli_str(&p, "--dtype", &dtype)) {}
        else if (cli_str(&p, "--compute", &compute)) {}
        else cli_unknown(&p);
    }
    if (p.status) return p.status;
    if (cli_positionals(&p, 1, 1, "attn bench attention|mha [options]")) return CLI_EUSAGE;
    const char *what = p.pos[0];
    if (strcmp(what, "attention") && strcmp(what, "mha"))
        return cli_usage(cmd, "unknown benchmark '%s' (attention, mha, peak, bandwidth or decode)", what);
    int ns[64], nn = parse_list(nlist, ns, 64);
    if (nn <= 0) return cli_usage(cmd, "--n expects comma-separated positive lengths, not '%s'", nlist);
    if (!Hkv) Hkv = H;
    int dt = !strcmp(dtype, "bf16") ? ATTN_BF16 : !strcmp(dtype, "f32") ? ATTN_F32 : -1;
    int ct = !strcmp(compute, "bf16") ? ATTN_BF16 : !strcmp(compute, "f32") ? ATTN_F32 : -1;
    if (dt < 0 || ct < 0) return cli_usage(cmd, "--dtype and --compute take f32 or bf16, not '%s'", dt < 0 ? dtype : compute);
    if ((dt || ct) && (strcmp(what, "attention") || ring || mods || doc_lens))
        return cli_usage(cmd, "--dtype and --compute bf16 are for attention (no --ring, --mods or --doc-lens)");
    if (H % Hkv) return cli_usage(cmd, "--heads (%d) must be a multiple of --kv-heads (%d)", H, Hkv);
    if (!strcmp(what, "mha") && (Hkv != H || nq))
        return cli_usage(cmd, "mha has no --kv-heads or --nq (self-attention, E = heads * d)");
    if (ring && (strcmp(what, "attention") || nq)) return cli_usage(cmd, "--ring is for attention, self-attention (no --nq)");
    if (threads) attn_set_threads(threads);
    if (ring) return cli_bench_ring(B, H, Hkv, d, causal, backward, repeat, json, ns, nn);
    threads = attn_get_threads();
    if (mods || doc_lens) {
        if (strcmp(what, "attention") || nq || Hkv != H || json)
            return cli_usage(cmd, "--mods and --doc-lens time self-attention: attention, without --nq, --kv-heads or --json");
        bench_mods_opts mo = {ns, nn, B, H, d, causal, backward, repeat, mods, doc_lens};
        return cli_bench_mods(cmd, &mo);
    }
    char isa[32];
    snprintf(isa, sizeof isa, "%s", attn_get_isa());
    const char *path = dt || ct ? attn_bf16_isa() : isa; /* the kernels timed */
    double peak_gf = 0;
    int pst = cli_bench_peak_f32(0.2, &peak_gf);
    if (pst == ATTN_ENOMEM) return cli_fail_lib(cmd, pst, NULL);
    attn_set_allocator(count_malloc, count_free, NULL);

    if (!json) {
        printf("%s %s: B=%d H=%d Hkv=%d d=%d%s, %d threads, path %s, median of %d runs%s; fp32 peak %.1f GFLOP/s\n",
               what, backward ? "forward+backward" : "forward", B, H, Hkv, d, causal ? " causal" : "", threads, path,
               repeat, dt ? ", bf16 arrays" : ct ? ", f32 arrays, bf16 compute" : "", peak_gf);
        printf("%7s %7s %10s %9s %7s %10s %9s %8s %11s\n", "n", "nq", "ms", "GFLOP/s", "% peak", "ref ms", "GFLOP/s",
               "speedup", "scratch MB");
    }
    int rc = CLI_OK, scaled = 0;
    for (int k = 0; k < nn; k++) {
        shape s = {what, B, H, Hkv, nq ? nq : ns[k], ns[k], d, causal, backward, repeat, dt, ct};
        double sec = 0, rsec = 0, cpu = 0, rcpu = 0;
        long long peak = 0, rpeak = 0;
        int st = time_shape(&s, H, repeat, &sec, &cpu, &peak);
        if (st) {
            rc = cli_fail_lib(cmd, st, NULL);
            break;
        }
        /* The reference: all heads while that is quick, else one head (a multiple of the
         * group size so grouped heads stay grouped), scaled. */
        int G = H / Hkv, rh = ref_heads;
        if (rh < 0) rh = (double)s.nq * s.n <= 1024.0 * 1024.0 ? H : G;
        rh = rh > H ? H : rh;
        rh = rh && rh < G ? G : rh / G * G;
        if (!strcmp(what, "mha") && rh) rh = H; /* projections cost E^2: no scaling by heads */
        scaled |= rh && rh < H;
        if (rh) {
            attn_set_isa("ref");
            st = time_shape(&s, rh, repeat > 3 && rh < H ? 3 : repeat, &rsec, &rcpu, &rpeak);
            attn_set_isa(isa);
            if (st) {
                rc = cli_fail_lib(cmd, st, NULL);
                break;
            }
            rsec *= (double)H / rh;
        }
        double f = flops(&s), gf = f / sec * 1e-9, rgf = rh ? f / rsec * 1e-9 : 0.0;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        if (json) {
            printf("{\"bench\": \"%s\", \"n\": %d, \"nq\": %d, \"d\": %d, \"heads\": %d, \"kv_heads\": %d, \"batch\": %d, "
                   "\"causal\": %s, \"backward\": %s, \"threads\": %d, \"isa\": \"%s\", \"dtype\": \"%s\", \"repeat\": %d, \"ms\": %.4f, "
                   "\"gflops\": %.2f",
                   what, s.n, s.nq, d, H, Hkv, B, causal ? "true" : "false", backward ? "true" : "false", threads, path,
                   dt ? "bf16" : ct ? "f32+bf16" : "f32", repeat, sec * 1e3, gf);
            printf(", \"peak_gflops\": %.2f, \"pct_peak\": %.1f", peak_gf, peak_gf > 0 ? 100 * gf / peak_gf : 0.0);
            printf(", \"cpu_ms_per_thread\": %.4f, \"cpu_gflops\": %.2f", cpu / threads * 1e3, f / (cpu / threads) * 1e-9);
            if (rh)
                printf(", \"ref_ms\": %.4f, \"ref_gflops\": %.3f, \"ref_heads_timed\": %d, \"speedup\": %.2f", rsec * 1e3,
                       rgf, rh, rsec / sec);
            printf(", \"scratch_mb\": %.3f, \"peak_rss_mb\": %.1f}\n", peak / 1048576.0, ru.ru_maxrss / 1024.0);
        } else {
            char rms[32] = "-", rg[32] = "-", sp[32] = "-";
            if (rh) {
                snprintf(rms, sizeof rms, "%.3f%s", rsec * 1e3, rh < H ? "*" : "");
                snprintf(rg, sizeof rg, "%.2f", rgf);
                snprintf(sp, sizeof sp, "%.1fx", rsec / sec);
            }
            printf("%7d %7d %10.3f %9.1f %6.1f%% %10s %9s %8s %11.2f\n", s.n, s.nq, sec * 1e3, gf,
                   peak_gf > 0 ? 100 * gf / peak_gf : 0.0, rms, rg, sp, peak / 1048576.0);
        }
        fflush(stdout);
    }
    if (!json && rc == CLI_OK)
        printf("(%sscratch MB: the most the library held at once, beyond inputs and outputs)\n",
               scaled ? "* reference timed on fewer heads and scaled to all of them; " : "");
    attn_set_allocator(NULL, NULL, NULL);
    return rc;
}
