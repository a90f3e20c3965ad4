#define _GNU_SOURCE /* syscall */
/* The choice of bf16 attention kernels (kernels/attn_bf16.h): AMX tiles where the CPU has
 * them and the kernel grants the tile data permission, else AVX512-BF16 where VDPBF16PS pays
 * (see intel()), else the fp32 kernels on values widened once per call ("f32"); the portable
 * reference on request. ATTN_BF16_ISA (ref, f32, avx512bf16, amx) forces one where it runs;
 * attn_set_isa("ref") / ATTN_ISA=ref selects the reference for bf16 too. */
#include "core/internal.h"
#include "kernels/attn_bf16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(ATTN_HAVE_AVX512BF16)
#include <cpuid.h>
#endif

#if defined(ATTN_HAVE_AMX) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
/* Linux hands AMX's 8 KB of tile state to a process only on request (kernel 5.16+). */
static int amx_permitted(void) { return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0; }
/* AMX-BF16 (CPUID.(7,0):EDX[22]) beside AMX-TILE (core/cpu.c's amx). */
static int amx_bf16(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 22) & 1);
}
#endif

const attn__bf16_kernels attn__bf16_kernels_widen = {.name = "f32", .q_block = 32, .k_block = 32, .widen = 1};

static const attn__bf16_kernels *g_tabs[4];

#if defined(ATTN_HAVE_AVX512BF16)
/* Intel's VDPBF16PS does half the fp32 FMA's multiply-adds per cycle (measured on an Emerald
 * Rapids Xeon, family 6 model 207: 0.45 per cycle where FMA retires 2; Sapphire Rapids has the
 * same cores, assumed alike), so the fp32 kernels on widened values are faster there; AMD's
 * (Zen 4/5) is documented at the FMA's throughput, twice its multiply-adds. */
static int intel(void) {
    unsigned a, b, c, d;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu; /* GenuineIntel */
}
#endif
static const attn__bf16_kernels *g_best;
static int g_ntabs;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init(void) {
    const attn__cpu *c = attn__cpu_features();
    g_tabs[g_ntabs++] = &attn__bf16_kernels_ref;
    g_tabs[g_ntabs++] = g_best = &attn__bf16_kernels_widen;
#if defined(ATTN_HAVE_AVX512BF16)
    int avx512 = c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl;
    if (avx512 && c->avx512bf16) {
        g_tabs[g_ntabs++] = &attn__bf16_kernels_avx512;
        if (!intel()) g_best = &attn__bf16_kernels_avx512;
    }
#if defined(ATTN_HAVE_AMX) && defined(__linux__)
    if (avx512 && c->avx512bf16 && c->amx && amx_bf16() && amx_permitted())
        g_tabs[g_ntabs++] = g_best = &attn__bf16_kernels_amx;
#endif
#else
    (void)c;
#endif
}

const attn__bf16_kernels *attn__bf16_kern_named(const char *name) {
    pthread_once(&g_once, init);
    for (int i = 0; name && i < g_ntabs; i++)
        if (strcmp(g_tabs[i]->name, name) == 0) return g_tabs[i];
    return NULL;
}

const attn__bf16_kernels *attn__bf16_kern(void) {
    pthread_once(&g_once, init);
    const char *env = getenv("ATTN_BF16_ISA");
    const attn__bf16_kernels *k = env && *env ? attn__bf16_kern_named(env) : NULL;
    if (k) return k;
    if (strcmp(attn_get_isa(), "ref") == 0) return &attn__bf16_kernels_ref;
    return g_best;
}
