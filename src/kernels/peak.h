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

#if defined(ATTN_HAVE_X86)
extern const attn__peak_loop attn__peak_f32_avx2;    /* x86/avx2/peak_avx2.c */
extern const attn__peak_loop attn__peak_f32_avx512;  /* x86/avx512/peak_avx512.c */
extern const attn__peak_loop attn__peak_bf16_avx512; /* x86/avx512bf16/peak_bf16.c */
extern const attn__peak_loop attn__peak_bf16_amx;    /* x86/amx/peak_amx.c */
int attn__cpu_amx_bf16(void);                        /* x86/amx/peak_amx.c: AMX-BF16 and AMX-TILE */
#endif

#endif
