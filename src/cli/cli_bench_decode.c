/* attn bench decode: decoding at memory speed. One decoding step's attention (one query row per
 * query head, or a beam of several) against a key/value cache of L keys is bound by reading K
 * and V: 2 L Hkv d 4 bytes in fp32. This benchmark times that step and gives it as a
 * percentage of the read bandwidth (attn/machine.h) measured in the same run.
 *
 * Two regimes per row, since a cache below the last-level cache is read from the cache after
 * the first step:
 *   cold: enough distinct caches (at least --cold-mib in all, and two) used in turn, so each
 *         step reads a cache that the others have evicted: memory speed;
 *   hot:  the same cache every step: the cache's speed where it fits (the row says whether it
 *         fits the last-level cache, from sysconf).
 * And two caches: "dense" is attn_forward on K, V (Hkv, L, d) held contiguously (beam b: b query
 * rows per head against the same keys, the hypotheses sharing their prefix; attn_forward runs
 * the G query heads of a group as G b rows of one head, so each group's K and V are read once),
 * and the same with bf16 arrays (dtype ATTN_BF16: half the bytes), cold; "paged" is the paged
 * cache the Transformer decodes with (attn/kvcache.h: b sequences forked from one, one query
 * row each), cold. Percentages count the unique K and V bytes of the step (in the arrays'
 * type), whatever the path reads in fact. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char HELP[] =
    "usage: attn bench decode [options]\n"
    "\n"
    "Times one decoding step's attention against a key/value cache of L keys (grouped heads:\n"
    "H query heads share Hkv key/value heads) and compares it with the memory's read bandwidth,\n"
    "measured first in the same run (attn bench bandwidth --kinds read). For each L and beam:\n"
    "the median time per token (one attention call, all heads; one layer), tokens/s, the K and V\n"
    "bytes a token needs (2 L Hkv d 4 in fp32, 2 L Hkv d 2 in bf16) and that over the time, as\n"
    "GB/s and % of the\n"
    "bandwidth.\n"
    "\n"
    "  cold   distinct caches (--cold-mib in all) used in turn: each step reads from memory\n"
    "  hot    the same cache every step; 'fits LLC' when K+V fit the last-level cache, read\n"
    "         from there (the % may then pass 100: it is relative to the memory's bandwidth)\n"
    "  dense  attn_forward on contiguous K, V; a beam of b is b query rows per head against the\n"
    "         same keys (hypotheses that share their prefix); the G query heads of a group go\n"
    "         through K and V together (the library folds them into G*b rows of one head)\n"
    "  paged  the paged cache of attn/kvcache.h, as the Transformer decodes: b sequences forked\n"
    "         from one (sharing every block), one query row each; cold\n"
    "  bf16   dense with bf16 arrays (dtype ATTN_BF16: half the bytes, path attn_bf16_isa()); cold\n"
    "\n"
    "options:\n"
    "  --keys LIST       cache lengths L           (default 1024,2048,4096,8192,16384,32768)\n"
    "  --beam LIST       query rows per head (beam width)              (default 1,5)\n"
    "  --d LIST          features per head, dk = dv                    (default 128,64)\n"
    "  --heads H         query heads                                   (default 32)\n"
    "  --kv-heads H      key/value heads, divides --heads              (default 8)\n"
    "  --cold-mib M      the cold caches' size in all, MiB             (default 1024)\n"
    "  --bw-mib M        the bandwidth measurement's array, MiB        (default 2048)\n"
    "  --repeat R        timed tokens per regime, at least (cold: at least every cache twice)\n"
    "                                                                   (default 9)\n"
    "  --no-paged        leave out the paged cache\n"
    "  --threads N       library threads                 (default: ATTN_THREADS or all CPUs)\n"
    "  --json            one JSON object per row instead of the table\n"
    "\n"
    "example:\n"
    "  attn bench decode --threads 2\n"
    "  attn bench decode --keys 4096 --beam 1 --d 64 --cold-mib 256 --bw-mib 512 --json\n";

typedef struct {
    int H, Hkv, d, L, beam, ncold, repeat;
} dshape;

static int parse_ints(const char *s, int *out, int max, int lo, int hi) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < lo || v > hi) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return *s ? -1 : n;
}

/* Median seconds per step of `steps` steps, step s on cache s % n (after one untimed pass). */
typedef int (*step_fn)(void *ctx, int cache);
static int time_steps(step_fn fn, void *ctx, int n, int steps, double *sec) {
    double *t = malloc((size_t)steps * sizeof *t);
    if (!t) return ATTN_ENOMEM;
    int st = ATTN_OK;
    for (int c = 0; c < n && !st; c++) st = fn(ctx, c);
    for (int s = 0; s < steps && !st; s++) {
        double t0 = cli_bench_now();
        st = fn(ctx, s % n);
        t[s] = cli_bench_now() - t0;
    }
    if (!st) *sec = cli_bench_median(t, steps);
    free(t);
    return st;
}

/* ---- Dense: attn_forward on K, V (1, Hkv, L, d) ---------------------------------------------- */

typedef struct {
    const dshape *s;
    void **K, **V, *Q, *O; /* float, or uint16_t (bf16) */
    int bf16;
} dense;

static int dense_step(void *ctx, int c) {
    dense *x = ctx;
    attn_desc a = {0};
    a.B = 1, a.H = x->s->H, a.Hkv = x->s->Hkv, a.Nq = x->s->beam, a.Nk = x->s->L, a.dq = x->s->d;
    a.score = ATTN_SCORE_SCALED, a.dtype = x->bf16 ? ATTN_BF16 : ATTN_F32;
    return attn_forward(&a, x->Q, x->K[c], x->V[c], x->O, NULL, NULL);
}

/* fp32 randn of n, or its bf16 rounding (seed as cli_bench_randn). */
static void *randn_as(size_t n, uint64_t seed, int bf16) {
    float *x = cli_bench_randn(n, seed);
    if (!x || !bf16) return x;
    uint16_t *y = malloc(n * sizeof *y);
    if (y) attn_f32_to_bf16(x, y, n);
    free(x);
    return y;
}

/* Cold (over s->ncold caches) and hot (cache 0) seconds per step, fp32 or bf16 arrays. */
static int time_dense(const dshape *s, int bf16, double *cold, double *hot) {
    size_t kv = (size_t)s->Hkv * s->L * s->d, q = (size_t)s->H * s->beam * s->d;
    dense x = {s, calloc((size_t)s->ncold, sizeof(void *)), calloc((size_t)s->ncold, sizeof(void *)), NULL, NULL, bf16};
    int st = x.K && x.V ? ATTN_OK : ATTN_ENOMEM;
    for (int c = 0; c < s->ncold && !st; c++)
        if (!(x.K[c] = randn_as(kv, 10 + 2 * (uint64_t)c, bf16)) || !(x.V[c] = randn_as(kv, 11 + 2 * (uint64_t)c, bf16)))
            st = ATTN_ENOMEM;
    x.Q = randn_as(q, 1, bf16), x.O = malloc(q * sizeof(float));
    if (!st && (!x.Q || !x.O)) st = ATTN_ENOMEM;
    if (!st) st = time_steps(dense_step, &x, s->ncold, s->repeat > 2 * s->ncold ? s->repeat : 2 * s->ncold, cold);
    if (!st && hot) st = time_steps(dense_step, &x, 1, s->repeat, hot);
    for (int c = 0; c < s->ncold && x.K; c++) free(x.K[c]), free(x.V[c]);
    free(x.K), free(x.V), free(x.Q), free(x.O);
    return st;
}

/* ---- Paged: attn_kvcache, `beam` sequences forked from one ------------------------------------ */

typedef struct {
    const dshape *s;
    attn_kvcache **c;
    int *seqs;
    float *Q, *O;
} paged;

static int paged_step(void *ctx, int c) {
    paged *x = ctx;
    attn_kvcache_query q = {0};
    q.nseq = x->s->beam, q.seqs = x->seqs, q.H = x->s->H, q.nq = 1;
    return attn_kvcache_attend(x->c[c], &q, x->Q, x->O, NULL);
}

static int time_paged(const dshape *s, double *cold) {
    attn_kvcache_config cfg = {0};
    cfg.Hkv = s->Hkv, cfg.dk = s->d, cfg.block_size = 16, cfg.num_blocks = (s->L + 15) / 16 + 1, cfg.max_seqs = s->beam;
    paged x = {s, calloc((size_t)s->ncold, sizeof(attn_kvcache *)), malloc((size_t)s->beam * sizeof(int)), NULL, NULL};
    const int chunk = 1024;
    float *k = cli_bench_randn((size_t)chunk * s->Hkv * s->d, 3), *v = cli_bench_randn((size_t)chunk * s->Hkv * s->d, 4);
    int st = x.c && x.seqs && k && v ? ATTN_OK : ATTN_ENOMEM;
    for (int c = 0; c < s->ncold && !st; c++) {
        st = attn_kvcache_new(&cfg, &x.c[c]);
        for (int p = 0; p < s->L && !st; p += chunk)
            st = attn_kvcache_append(x.c[c], 0, s->L - p < chunk ? s->L - p : chunk, k, 0, v, 0);
        for (int b = 1; b < s->beam && !st; b++) st = attn_kvcache_fork(x.c[c], 0, b);
    }
    for (int b = 0; b < s->beam && x.seqs; b++) x.seqs[b] = b;
    x.Q = cli_bench_randn((size_t)s->beam * s->H * s->d, 1), x.O = malloc((size_t)s->beam * s->H * s->d * sizeof(float));
    if (!st && (!x.Q || !x.O)) st = ATTN_ENOMEM;
    if (!st) st = time_steps(paged_step, &x, s->ncold, s->repeat > 2 * s->ncold ? s->repeat : 2 * s->ncold, cold);
    for (int c = 0; c < s->ncold && x.c; c++) attn_kvcache_free(x.c[c]);
    free(x.c), free(x.seqs), free(x.Q), free(x.O), free(k), free(v);
    return st;
}

/* ---- The command ---------------------------------------------------------------------------- */

int cli_bench_decode(int argc, char **argv) {
    const char *cmd = "bench decode", *keys = "1024,2048,4096,8192,16384,32768", *beams = "1,5", *dl = "128,64";
    int H = 32, Hkv = 8, cold_mib = 1024, bw_mib = 2048, repeat = 9, threads = 0, json = 0, no_paged = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) return cli_help(HELP);
        else if (cli_str(&p, "--keys", &keys)) {}
        else if (cli_str(&p, "--beam", &beams)) {}
        else if (cli_str(&p, "--d", &dl)) {}
        else if (cli_int(&p, "--heads", 1, 4096, &H)) {}
        else if (cli_int(&p, "--kv-heads", 1, 4096, &Hkv)) {}
        else if (cli_int(&p, "--cold-mib", 1, 1 << 20, &cold_mib)) {}
        else if (cli_int(&p, "--bw-mib", 1, 1 << 20, &bw_mib)) {}
        else if (cli_int(&p, "--repeat", 1, 100000, &repeat)) {}
        else if (cli_flag(&p, "--no-paged")) no_paged = 1;
        else if (cli_int(&p, "--threads", 1, 256, &threads)) {}
        else if (cli_flag(&p, "--json")) json = 1;
        else cli_unknown(&p);
    }
    if (p.status) return p.status;
    if (cli_positionals(&p, 0, 0, "attn bench decode [options]")) return CLI_EUSAGE;
    int Ls[32], bs[16], ds[8];
    int nL = parse_ints(keys, Ls, 32, 1, 1 << 24), nb = parse_ints(beams, bs, 16, 1, 4096), nd = parse_ints(dl, ds, 8, 1, 4096);
    if (nL <= 0) return cli_usage(cmd, "--keys expects comma-separated positive lengths, not '%s'", keys);
    if (nb <= 0) return cli_usage(cmd, "--beam expects comma-separated positive widths, not '%s'", beams);
    if (nd <= 0) return cli_usage(cmd, "--d expects comma-separated positive sizes, not '%s'", dl);
    if (H % Hkv) return cli_usage(cmd, "--heads (%d) must be a multiple of --kv-heads (%d)", H, Hkv);
    if (threads) attn_set_threads(threads);
    threads = attn_get_threads();
    attn_bw_result bw;
    int st = attn_measure_bandwidth(ATTN_BW_READ, (size_t)bw_mib << 20, 5, &bw);
    if (st) return cli_fail_lib(cmd, st, NULL);
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (!json) {
        printf("decode: H=%d Hkv=%d, %d threads, path %s; read bandwidth %.2f GB/s (%d MiB, median of 5, same run); "
               "median time per token (one attention call); last-level cache %s%.0f MiB\n",
               H, Hkv, threads, attn_get_isa(), bw.gbps, bw_mib, llc > 0 ? "" : "unknown, taken as ",
               llc > 0 ? llc / 1048576.0 : 0.0);
        printf("%4s %6s %4s %8s %6s | %9s %8s %7s %6s | %9s %7s %6s %-8s | %9s %6s | %9s %6s | %s\n", "d", "keys",
               "beam", "KV MiB", "caches", "cold ms", "tok/s", "GB/s", "% bw", "hot ms", "GB/s", "% bw", "hot in",
               "bf16 ms", "% bw", "paged ms", "% bw", "bf16 path");
    }
    for (int id = 0; id < nd; id++)
        for (int il = 0; il < nL; il++)
            for (int ib = 0; ib < nb; ib++) {
                dshape s = {H, Hkv, ds[id], Ls[il], bs[ib], 0, repeat};
                double bytes = 2.0 * s.L * Hkv * s.d * sizeof(float);
                s.ncold = (int)ceil((double)cold_mib * 1048576.0 / bytes);
                if (s.ncold < 2) s.ncold = 2;
                double cold = 0, hot = 0, bcold = 0, pcold = 0;
                st = time_dense(&s, 0, &cold, &hot);
                dshape sb = s; /* bf16: half the bytes a cache, twice the caches */
                sb.ncold = 2 * s.ncold;
                if (!st) st = time_dense(&sb, 1, &bcold, NULL);
                if (!st && !no_paged) st = time_paged(&s, &pcold);
                if (st) return cli_fail_lib(cmd, st, NULL);
                double gc = bytes / cold * 1e-9, gh = bytes / hot * 1e-9, gb = bytes / 2 / bcold * 1e-9;
                double gp = no_paged ? 0 : bytes / pcold * 1e-9;
                const char *where = llc > 0 && bytes <= (double)llc ? "fits LLC" : "> LLC";
                if (json) {
                    printf("{\"bench\": \"decode\", \"d\": %d, \"keys\": %d, \"beam\": %d, \"heads\": %d, \"kv_heads\": %d, "
                           "\"threads\": %d, \"isa\": \"%s\", \"kv_bytes\": %.0f, \"cold_caches\": %d, \"bw_gbps\": %.3f, "
                           "\"cold_ms\": %.4f, \"tokens_per_s\": %.1f, \"cold_gbps\": %.3f, \"cold_pct_bw\": %.1f, "
                           "\"hot_ms\": %.4f, \"hot_gbps\": %.3f, \"hot_pct_bw\": %.1f, \"hot_regime\": \"%s\", "
                           "\"bf16_cold_ms\": %.4f, \"bf16_cold_pct_bw\": %.1f, \"bf16_isa\": \"%s\"",
                           s.d, s.L, s.beam, H, Hkv, threads, attn_get_isa(), bytes, s.ncold, bw.gbps, cold * 1e3,
                           1.0 / cold, gc, 100 * gc / bw.gbps, hot * 1e3, gh, 100 * gh / bw.gbps, where, bcold * 1e3,
                           100 * gb / bw.gbps, attn_bf16_isa());
                    if (!no_paged)
                        printf(", \"paged_cold_ms\": %.4f, \"paged_cold_pct_bw\": %.1f", pcold * 1e3, 100 * gp / bw.gbps);
                    printf("}\n");
                } else {
                    char pm[32] = "-", pp[32] = "-";
                    if (!no_paged) snprintf(pm, sizeof pm, "%.3f", pcold * 1e3), snprintf(pp, sizeof pp, "%.1f", 100 * gp / bw.gbps);
                    printf("%4d %6d %4d %8.1f %6d | %9.3f %8.0f %7.2f %6.1f | %9.3f %7.2f %6.1f %-8s | %9.3f %6.1f | %9s %6s | %s\n",
                           s.d, s.L, s.beam, bytes / 1048576.0, s.ncold, cold * 1e3, 1.0 / cold, gc, 100 * gc / bw.gbps,
                           hot * 1e3, gh, 100 * gh / bw.gbps, where, bcold * 1e3, 100 * gb / bw.gbps, pm, pp, attn_bf16_isa());
                }
                fflush(stdout);
            }
    if (!json)
        printf("(%% bw: the K and V bytes a token needs over its time, against the read bandwidth above; "
               "bf16: half the bytes of fp32)\n");
    return CLI_OK;
}
