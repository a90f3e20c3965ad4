/* How many VDPBF16PS and VFMADD231PS (zmm) one core retires per second: 12 independent
 * accumulator chains of each in an inline-assembly loop, then one chain of each (the latency).
 * The ratio says whether bf16 dot products (two multiply-adds per lane) can beat fp32 FMA on
 * this CPU: bf16 / fp32 multiply-add rate = 2 x dpbf16 rate / FMA rate.
 * Compile: cc -O2 bench/dpbf16_rate.c -o dpbf16_rate   (x86-64, GCC or Clang; runs only on a
 * CPU with AVX512-BF16)
 * usage: dpbf16_rate [ROUNDS=5] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define Z(i) "vpxord %%zmm" #i ",%%zmm" #i ",%%zmm" #i "\n"
#define ZERO Z(0) Z(1) Z(2) Z(3) Z(4) Z(5) Z(6) Z(7) Z(8) Z(9) Z(10) Z(11) Z(30) Z(31)
#define I(op, i) op " %%zmm30,%%zmm31,%%zmm" #i "\n"
#define R12(op) I(op, 0) I(op, 1) I(op, 2) I(op, 3) I(op, 4) I(op, 5) I(op, 6) I(op, 7) I(op, 8) I(op, 9) I(op, 10) I(op, 11)
#define LOOP(body, n) __asm__ volatile(ZERO "mov %0,%%rcx\n1:\n" body "dec %%rcx\njnz 1b\n" ::"r"(n) : "rcx", "memory")

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    long n = 20000000;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        LOOP(R12("vfmadd231ps"), n);
        double t1 = now();
        LOOP(R12("vdpbf16ps"), n);
        double t2 = now();
        LOOP(I("vfmadd231ps", 0), n);
        double t3 = now();
        LOOP(I("vdpbf16ps", 0), n);
        double t4 = now();
        double fma = 12.0 * n / (t1 - t0), dp = 12.0 * n / (t2 - t1);
        printf("FMA %.2f G/s (%.0f GFLOP/s), VDPBF16PS %.2f G/s (%.0f GFLOP/s): bf16/fp32 %.2f; latency ratio dp/fma %.2f\n",
               fma * 1e-9, fma * 32e-9, dp * 1e-9, dp * 64e-9, 2 * dp / fma, (t4 - t3) / (t3 - t2));
    }
    return 0;
}
