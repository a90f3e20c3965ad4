/* attn bench peak and attn bench bandwidth: the machine's limits (attn/machine.h), measured on
 * the library's threads, to which the other benchmarks compare their figures (the "% peak" of
 * attn bench attention, the "% bw" of attn bench decode). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char PEAK_HELP[] =
    "usage: attn bench peak [options]\n"
    "\n"
    "Measures the arithmetic peak of this machine with the library's threads: each thread runs\n"
    "its own independent dependency chains (enough of them to hide the latency), all threads\n"
    "start together, and the figure is the median run in GFLOP/s (1e9 floating-point operations\n"
    "per second). The attention benchmarks give their figures as a percentage of the fp32 one.\n"
    "\n"
    "kinds:\n"
    "  fp32   FMA on the instruction set in use (see ATTN_ISA): avx512 runs 12 chains of 512-bit\n"
    "         FMAs, avx2 12 chains of 256-bit FMAs, ref portable C (a multiply and an add, 4\n"
    "         lanes); an FMA counts 2 flops per lane\n"
    "  bf16   VDPBF16PS (AVX512-BF16), 12 chains: each fp32 lane adds two bf16 products, counted\n"
    "         as 4 flops per lane (2 multiplies + 2 adds), 64 per 512-bit instruction\n"
    "  amx    TDPBF16PS (AMX-BF16) on 4 accumulator tiles: 16 x 16 x 32 multiply-adds, 16384\n"
    "         flops per instruction; asks Linux for the tile state (arch_prctl) first\n"
    "  A kind this CPU lacks is reported as not run, with the reason.\n"
    "\n"
    "options:\n"
    "  --kinds LIST      comma-separated kinds                      (default fp32,bf16,amx)\n"
    "  --seconds S       time per kind, all runs together           (default 1)\n"
    "  --repeat R        timed runs per kind                        (default 5)\n"
    "  --threads N       library threads                 (default: ATTN_THREADS or all CPUs)\n"
    "  --json            one JSON object per kind instead of the table\n"
    "\n"
    "example:\n"
    "  attn bench peak --threads 2\n"
    "  attn bench peak --kinds fp32 --threads 1 --json\n";

static const char BW_HELP[] =
    "usage: attn bench bandwidth [options]\n"
    "\n"
    "Measures the memory bandwidth with the library's threads, STREAM-like: each thread streams\n"
    "over its own contiguous share of the arrays, all threads start together, and the figure is\n"
    "the median run in GB/s (1e9 bytes per second). Arrays well above the last-level cache\n"
    "measure the memory (the default, 2 GiB; see lscpu for the cache), small ones the cache.\n"
    "\n"
    "kinds (the bytes counted, as STREAM counts them: no write-allocate traffic):\n"
    "  read   s += a[i]            the array's bytes, read (the traffic of decoding's K and V)\n"
    "  copy   b[i] = a[i]          bytes read + bytes written\n"
    "  triad  a[i] = b[i] + s c[i] two arrays read + one written\n"
    "\n"
    "options:\n"
    "  --kinds LIST      comma-separated kinds                      (default read,copy,triad)\n"
    "  --size MIB        the arrays' footprint in MiB, split between a kind's arrays (default 2048)\n"
    "  --repeat R        timed runs per kind, after one untimed pass (default 5)\n"
    "  --threads N       library threads                 (default: ATTN_THREADS or all CPUs)\n"
    "  --json            one JSON object per kind instead of the table\n"
    "\n"
    "example:\n"
    "  attn bench bandwidth --threads 2\n"
    "  attn bench bandwidth --kinds read --size 64 --json     # a cache-resident read\n";

/* Is `name` an item of the comma-separated `list`? */
static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p += len + (e ? 1 : 0);
    }
    return 0;
}

/* Every item of `list` one of the names (NULL-terminated)? Else a usage error. */
static int check_list(const char *cmd, const char *opt, const char *list, const char *const *names) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        int len = e ? (int)(e - p) : (int)strlen(p), ok = 0;
        for (int k = 0; names[k]; k++) ok |= (int)strlen(names[k]) == len && !strncmp(p, names[k], (size_t)len);
        if (!ok) return cli_usage(cmd, "%s: unknown kind '%.*s'", opt, len, p);
        p += len + (e ? 1 : 0);
    }
    return *list ? CLI_OK : cli_usage(cmd, "%s: empty list", opt);
}

int cli_bench_peak_f32(double seconds, double *gflops) {
    attn_peak_result r;
    int st = attn_measure_peak(ATTN_PEAK_F32, seconds, 5, &r);
    *gflops = st ? 0 : r.gflops;
    return st;
}

int cli_bench_peak(int argc, char **argv) {
    const char *cmd = "bench peak", *kinds = "fp32,bf16,amx";
    int threads = 0, repeat = 5, json = 0;
    float seconds = 1.0f;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) return cli_help(PEAK_HELP);
        else if (cli_str(&p, "--kinds", &kinds)) {}
        else if (cli_float(&p, "--seconds", &seconds)) {}
        else if (cli_int(&p, "--repeat", 1, 1000, &repeat)) {}
        else if (cli_int(&p, "--threads", 1, 256, &threads)) {}
        else if (cli_flag(&p, "--json")) json = 1;
        else cli_unknown(&p);
    }
    if (p.status) return p.status;
    if (cli_positionals(&p, 0, 0, "attn bench peak [options]")) return CLI_EUSAGE;
    static const char *const names[] = {"fp32", "bf16", "amx", NULL};
    if (check_list(cmd, "--kinds", kinds, names)) return CLI_EUSAGE;
    if (!(seconds > 0 && seconds <= 600)) return cli_usage(cmd, "--seconds must be in (0, 600]");
    if (threads) attn_set_threads(threads);
    threads = attn_get_threads();
    if (!json)
        printf("peak: %d threads, path %s, median of %d runs, %.2g s per kind\n%-5s %10s %19s %11s  %s\n", threads,
               attn_get_isa(), repeat, seconds, "kind", "GFLOP/s", "(min - max)", "per thread", "loop");
    static const attn_peak_kind kind_of[] = {ATTN_PEAK_F32, ATTN_PEAK_BF16, ATTN_PEAK_AMX};
    for (int k = 0; names[k]; k++) {
        if (!in_list(kinds, names[k])) continue;
        attn_peak_result r;
        int st = attn_measure_peak(kind_of[k], seconds, repeat, &r);
        if (st == ATTN_ENOMEM) return cli_fail_lib(cmd, st, NULL);
        if (st && json)
            printf("{\"bench\": \"peak\", \"kind\": \"%s\", \"threads\": %d, \"not_run\": \"%s\"}\n", names[k], threads,
                   attn_last_error());
        else if (st)
            printf("%-5s %10s %19s %11s  not run: %s\n", names[k], "-", "", "", attn_last_error());
        else if (json)
            printf("{\"bench\": \"peak\", \"kind\": \"%s\", \"threads\": %d, \"isa\": \"%s\", \"runs\": %d, "
                   "\"gflops\": %.2f, \"min_gflops\": %.2f, \"max_gflops\": %.2f, \"how\": \"%s\"}\n",
                   names[k], r.threads, attn_get_isa(), r.runs, r.gflops, r.min_gflops, r.max_gflops, r.how);
        else {
            char range[40];
            snprintf(range, sizeof range, "(%.1f - %.1f)", r.min_gflops, r.max_gflops);
            printf("%-5s %10.1f %19s %11.1f  %s\n", names[k], r.gflops, range, r.gflops / r.threads, r.how);
        }
        fflush(stdout);
    }
    return CLI_OK;
}

int cli_bench_bandwidth(int argc, char **argv) {
    const char *cmd = "bench bandwidth", *kinds = "read,copy,triad";
    int threads = 0, repeat = 5, json = 0, mib = 2048;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) return cli_help(BW_HELP);
        else if (cli_str(&p, "--kinds", &kinds)) {}
        else if (cli_int(&p, "--size", 1, 1 << 20, &mib)) {}
        else if (cli_int(&p, "--repeat", 1, 1000, &repeat)) {}
        else if (cli_int(&p, "--threads", 1, 256, &threads)) {}
        else if (cli_flag(&p, "--json")) json = 1;
        else cli_unknown(&p);
    }
    if (p.status) return p.status;
    if (cli_positionals(&p, 0, 0, "attn bench bandwidth [options]")) return CLI_EUSAGE;
    static const char *const names[] = {"read", "copy", "triad", NULL};
    if (check_list(cmd, "--kinds", kinds, names)) return CLI_EUSAGE;
    if (threads) attn_set_threads(threads);
    threads = attn_get_threads();
    if (!json)
        printf("bandwidth: %d threads, %d MiB of arrays, median of %d runs\n%-6s %9s %19s %11s\n", threads, mib, repeat,
               "kind", "GB/s", "(min - max)", "per thread");
    static const attn_bw_kind kind_of[] = {ATTN_BW_READ, ATTN_BW_COPY, ATTN_BW_TRIAD};
    for (int k = 0; names[k]; k++) {
        if (!in_list(kinds, names[k])) continue;
        attn_bw_result r;
        int st = attn_measure_bandwidth(kind_of[k], (size_t)mib << 20, repeat, &r);
        if (st) return cli_fail_lib(cmd, st, NULL);
        if (json)
            printf("{\"bench\": \"bandwidth\", \"kind\": \"%s\", \"threads\": %d, \"mib\": %d, \"runs\": %d, "
                   "\"gbps\": %.3f, \"min_gbps\": %.3f, \"max_gbps\": %.3f}\n",
                   names[k], r.threads, mib, r.runs, r.gbps, r.min_gbps, r.max_gbps);
        else {
            char range[40];
            snprintf(range, sizeof range, "(%.1f - %.1f)", r.min_gbps, r.max_gbps);
            printf("%-6s %9.2f %19s %11.2f\n", names[k], r.gbps, range, r.gbps / r.threads);
        }
        fflush(stdout);
    }
    return CLI_OK;
}
