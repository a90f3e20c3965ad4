/* CPU feature detection and the choice of instruction-set path (ATTN_ISA overrides). */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(ATTN_HAVE_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
static unsigned long long xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static attn__cpu g_cpu;
static int g_cpu_done;

const attn__cpu *attn__cpu_features(void) {
    if (g_cpu_done) return &g_cpu;
    attn__cpu c = {0};
#if defined(ATTN_HAVE_X86) && (defined(__GNUC__) || defined(__clang__))
    unsigned int a, b, cx, d;
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        int osxsave = (cx >> 27) & 1;
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        int ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
        c.fma = ((cx >> 12) & 1) && ymm;
        if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
            c.avx2 = ((b >> 5) & 1) && ymm;
            c.avx512f = ((b >> 16) & 1) && zmm;
            c.avx512dq = ((b >> 17) & 1) && zmm;
            c.avx512bw = ((b >> 30) & 1) && zmm;
            c.avx512vl = ((b >> 31) & 1) && zmm;
            c.amx = (d >> 24) & 1;
        }
        if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512bf16 = ((a >> 5) & 1) && zmm;
    }
#endif
    g_cpu = c;
    g_cpu_done = 1;
    return &g_cpu;
}
