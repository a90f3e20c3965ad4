/* The loops that measure the machine's arithmetic peak (attn/machine.h, src/core/machine.c):
 * one per instruction set, each in its ISA's folder so that only that file gets the ISA's
 * compiler flags. A loop runs `iters` iterations of independent dependency chains on the
 * calling thread and returns a value computed from every chain (so that no chain is dead code);
 * `flops_per_iter` says how many floating-point operations one iteration does, counted as the
 * `how` line says. Not API. */
#ifndef ATTN_KERNELS_PEAK_H
#define ATTN_KERNELS_PEAK_H

typedef struct {
    float (*loop)(long iters);
    double flops_per_iter;
    const char *how;        /* what the loop runs and how its flops are counted */
    int (*prepare)(void);   /* or NULL: per-process set-up (AMX's permission); 0 = ready */
} attn__peak_loop;

/* The body every FMA-style loop shares: CHAINS independent chains of vector type VT started
 * at INIT(c), each stepped as a = STEP(a) per iteration, then summed with ADD and reduced to
 * one float with HSUM, so that no chain is dead code. Expands to `static float NAME(long)`. */
#define ATTN__PEAK_CHAINS 12
#define ATTN__PEAK_LOOP(NAME, VT, INIT, STEP, ADD, HSUM)                                 \
    static float NAME(long iters) {                                                     \
        VT a[ATTN__PEAK_CHAINS];                                                        \
        for (int c = 0; c < ATTN__PEAK_CHAINS; c++) a[c] = INIT(c);                     \
        for (long i = 0; i < iters; i++)                                                \
            _Pragma("GCC unroll 12") for (int c = 0; c < ATTN__PEAK_CHAINS; c++) a[c] = STEP(a[c]); \
        VT s = a[0];                                                                    \
        for (int c = 1; c < ATTN__PEAK_CHAINS; c++) s = ADD(s, a[c]);                   \
        return HSUM(s);                                                                 \
    }

#if defined(ATTN_HAVE_X86)
extern const attn__peak_loop attn__peak_f32_avx2;    /* x86/avx2/peak_avx2.c */
extern const attn__peak_loop attn__peak_f32_avx512;  /* x86/avx512/peak_avx512.c */
extern const attn__peak_loop attn__peak_bf16_avx512; /* x86/avx512bf16/peak_bf16.c */
extern const attn__peak_loop attn__peak_bf16_amx;    /* x86/amx/peak_amx.c */
int attn__cpu_amx_bf16(void);                        /* x86/amx/peak_amx.c: AMX-BF16 and AMX-TILE */
#endif

#endif
