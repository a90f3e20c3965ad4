/* The bf16 peak loop for AMX (see kernels/peak.h), built with -mamx-tile -mamx-bf16 (this
 * folder alone); run only where the CPU has AMX-TILE and AMX-BF16 and Linux grants the process
 * the tile data state (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), `prepare` below).
 *
 * Four independent accumulator tiles C0..C3 (16 rows x 16 fp32) each take TDPBF16PS with the
 * same A (16 rows x 32 bf16) and B (16 rows x 32 bf16, i.e. 32 x 16 in pairs): one instruction
 * is 16 x 16 x 32 multiply-adds = 16384 flops (a multiply and an add each), 4 x 16384 per
 * iteration. Every thread loads its own tile configuration and releases the tiles at the end. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/peak.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int attn__cpu_amx_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ((d >> 22) & 1) && ((d >> 24) & 1); /* AMX-BF16, AMX-TILE */
}

static int prepare(void) {
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : -1;
}

typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} tile_config;

static float loop(long iters) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 6; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    unsigned short a[16 * 32];  /* bf16 0.0078125 (2^-7): products of 2^-14 */
    float c[16 * 16];
    for (int i = 0; i < 16 * 32; i++) a[i] = 0x3c00;
    _tile_loadd(4, a, 64);
    _tile_loadd(5, a, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 5);
        _tile_dpbf16ps(2, 4, 5);
        _tile_dpbf16ps(3, 4, 5);
    }
    float s = 0;
    _tile_stored(0, c, 64);
    s += c[0];
    _tile_stored(1, c, 64);
    s += c[1];
    _tile_stored(2, c, 64);
    s += c[2];
    _tile_stored(3, c, 64);
    s += c[3];
    _tile_release();
    return s;
}

const attn__peak_loop attn__peak_bf16_amx = {
    loop, 4 * 16 * 16 * 32 * 2.0,
    "amx-bf16: 4 accumulator tiles of TDPBF16PS (16x16 fp32 += 16x32 bf16 . 32x16 bf16), 2 flops per multiply-add",
    prepare};
