/* attn/machine.h: the limits of this machine, measured: the arithmetic peak of the library's
 * threads (fp32 FMA, bf16 dot products, AMX tiles) and the memory bandwidth, so that a
 * benchmark can give each figure as a fraction of what the machine does in the same run
 * (`attn bench peak`, `attn bench bandwidth`, the "% peak" of `attn bench attention`).
 *
 * Every measurement runs on the library's threads (attn_set_threads), each thread on its own
 * data, all of them started together; a run's time is from the first thread's start to the
 * last one's end, and the result is the median of several runs. On a machine shared with
 * other work the figures are what the threads got, not what the cores could do. */
#ifndef ATTN_MACHINE_H
#define ATTN_MACHINE_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

typedef enum {
    ATTN_PEAK_F32 = 0,  /* fp32 FMA on the instruction set in use (attn_get_isa): 12 chains of
                           512-bit FMAs (avx512), of 256-bit FMAs (avx2), or portable C (ref) */
    ATTN_PEAK_BF16 = 1, /* VDPBF16PS (AVX512-BF16): 4 flops per fp32 lane per instruction */
    ATTN_PEAK_AMX = 2   /* TDPBF16PS (AMX-BF16): 16 x 16 x 32 multiply-adds per instruction */
} attn_peak_kind;

typedef struct {
    double gflops;                 /* the median run, all threads together (1e9 flops / s) */
    double min_gflops, max_gflops; /* the slowest and fastest runs */
    int threads, runs;
    const char *how;               /* the loop and how its flops are counted (static text) */
} attn_peak_result;

/* Measures the peak of `kind` for about `seconds` in all (<= 0: 0.2), in `runs` timed runs
 * (<= 0: 5). ATTN_EINVAL with a message for an unknown kind or one this CPU (or this build)
 * does not have, or, for AMX, when the kernel refuses the tile state. */
int attn_measure_peak(attn_peak_kind kind, double seconds, int runs, attn_peak_result *out);

typedef enum {
    ATTN_BW_READ = 0,  /* s += a[i]: bytes read */
    ATTN_BW_COPY = 1,  /* b[i] = a[i]: bytes read + bytes written (STREAM's count) */
    ATTN_BW_TRIAD = 2  /* a[i] = b[i] + s c[i]: 2 arrays read + 1 written */
} attn_bw_kind;

typedef struct {
    double gbps;               /* the median run: 1e9 bytes / s, counted as the kind says */
    double min_gbps, max_gbps;
    int threads, runs;
    size_t bytes;              /* the arrays' footprint */
} attn_bw_result;

/* Streams over arrays of `bytes` in all (split between the kind's arrays; at least 1 MiB), each
 * thread over its own contiguous share, `runs` times (<= 0: 5) after one untimed pass that
 * also writes every page. Choose bytes well above the last-level cache for the memory's
 * bandwidth (e.g. 2 GiB), below it for the cache's. ATTN_ENOMEM when the arrays cannot be
 * allocated, ATTN_EINVAL for an unknown kind or bytes below 1 MiB. */
int attn_measure_bandwidth(attn_bw_kind kind, size_t bytes, int runs, attn_bw_result *out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
