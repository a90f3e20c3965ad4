/* The row-op and activation entries of the kernel table (kernels/row_kernels.h): every fast
 * path this CPU runs (avx2, avx512) against the reference, bit for bit, at every row length
 * 1..70 (around the 8- and 16-float steps) and a few large ones (around the 512-float chunk of
 * exp_sum), on inputs that mix normal values with -inf, +-0, values beyond the exponential's
 * clamps (+-88, +-1e30) and denormals. Equal bits also show that no multiply-add was fused
 * (contracted) in a vector kernel. The activations that call libm have no fast version, so
 * their entries are the reference's on every path; that is checked too.
 * Exits 77 (skipped) when the CPU runs no fast path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testutil.h"

static const int64_t LARGE[] = {127, 511, 512, 513, 1000, 1031, 4099};

/* n values: standard normals times scale, and every seventh one of the special values. */
static float *inputs(int64_t n, float scale, uint64_t seed) {
    static const float special[] = {-INFINITY, 0.0f, -0.0f, 1e-40f, -1e-40f, 88.5f,
                                    -88.5f,    -87.5f, 1e30f, -1e30f, 100.0f, -103.0f};
    float *x = malloc((size_t)n * sizeof(float));
    tu_randn(x, (size_t)n, seed);
    for (int64_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (i % 7 == 3) x[i] = special[(seed + (uint64_t)i) % (sizeof special / sizeof special[0])];
    }
    return x;
}

static int same(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* One row length n on path k against the reference r. */
static void check_len(const attn__kernels *r, const attn__kernels *k, int64_t n) {
    size_t B = (size_t)n * sizeof(float);
    float *x = inputs(n, 4.0f, (uint64_t)n), *y = inputs(n, 0.5f, (uint64_t)n + 1000);
    float *d0 = inputs(n, 1.0f, (uint64_t)n + 2000);
    float *a = malloc(B), *b = malloc(B);
    const char *isa = k->name;

    float ma = r->row_max(x, n), mb = k->row_max(x, n);
    CHECK(same(&ma, &mb, 4), "%s row_max n=%lld: %g vs %g", isa, (long long)n, (double)mb, (double)ma);
    x[n / 2] = NAN; /* a NaN anywhere gives NaN */
    CHECK(isnan(k->row_max(x, n)), "%s row_max n=%lld with a NaN", isa, (long long)n);
    x[n / 2] = 1.5f;

    double sa = r->sum_f64(x, n), sb = k->sum_f64(x, n);
    CHECK(same(&sa, &sb, 8) || (isnan(sa) && isnan(sb)), "%s sum_f64 n=%lld", isa, (long long)n);
    sa = r->dot_f64(y, d0, n), sb = k->dot_f64(y, d0, n);
    CHECK(same(&sa, &sb, 8), "%s dot_f64 n=%lld", isa, (long long)n);

    /* exp_sum with the row's maximum subtracted (as the layers call it), and with shifts that
     * leave arguments above 88, over a wide range, and with denormal results. */
    float shifts[3] = {r->row_max(y, n), -40.0f, 0.0f};
    for (int t = 0; t < 3; t++) {
        const float *in = t == 2 ? x : y;
        sa = r->exp_sum(a, in, shifts[t], n), sb = k->exp_sum(b, in, shifts[t], n);
        CHECK(same(&sa, &sb, 8) && same(a, b, B), "%s exp_sum n=%lld shift %g", isa, (long long)n, (double)shifts[t]);
        sb = k->exp_sum(NULL, in, shifts[t], n);
        CHECK(same(&sa, &sb, 8), "%s exp_sum without y n=%lld", isa, (long long)n);
    }
    for (int acc = 0; acc < 2; acc++) {
        memcpy(a, d0, B), memcpy(b, d0, B);
        r->logsm_bwd_row(a, x, y, 0.75f, n, acc), k->logsm_bwd_row(b, x, y, 0.75f, n, acc);
        CHECK(same(a, b, B), "%s logsm_bwd_row n=%lld acc %d", isa, (long long)n, acc);
        memcpy(a, d0, B), memcpy(b, d0, B);
        r->ce_bwd_row(a, x, 2.5f, 0.125f, 0.01f, n, acc), k->ce_bwd_row(b, x, 2.5f, 0.125f, 0.01f, n, acc);
        CHECK(same(a, b, B), "%s ce_bwd_row n=%lld acc %d", isa, (long long)n, acc);
    }
    r->relu_fwd(a, x, n), k->relu_fwd(b, x, n);
    CHECK(same(a, b, B), "%s relu_fwd n=%lld", isa, (long long)n);
    memcpy(a, d0, B), memcpy(b, d0, B);
    a[0] = b[0] = -0.0f, x[0] = -1.0f; /* -0 stays -0 where inp <= 0 */
    r->relu_bwd(a, x, y, n), k->relu_bwd(b, x, y, n);
    CHECK(same(a, b, B) && signbit(b[0]), "%s relu_bwd n=%lld", isa, (long long)n);
    /* bf16_widen: every 16-bit pattern's fp32 is that pattern on top of 16 zero bits (the
     * definition, checked here bit for bit), nothing written past n. */
    uint16_t *h = malloc((size_t)n * sizeof *h);
    float *w = malloc(B + sizeof(float));
    for (int64_t j = 0; j < n; j++) h[j] = (uint16_t)((uint64_t)(j * 40503 + n * 977) & 0xffff);
    w[n] = 12345.0f;
    k->bf16_widen(h, w, n);
    int ok = w[n] == 12345.0f;
    for (int64_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, w + j, 4);
        ok &= u == (uint32_t)h[j] << 16;
    }
    CHECK(ok, "%s bf16_widen n=%lld", isa, (long long)n);
    free(h), free(w);
    free(x), free(y), free(d0), free(a), free(b);
}

int main(void) {
    const attn__kernels *r = attn__kern_named("ref");
    CHECK(r != NULL, "no reference table");
    if (!r) return tu_summary("test_rowkern");
    int paths = 0;
    const char *fast[] = {"avx2", "avx512"};
    for (int i = 0; i < 2; i++) {
        const attn__kernels *k = attn__kern_named(fast[i]);
        if (!k) {
            printf("SKIP %s: this CPU cannot run it\n", fast[i]);
            continue;
        }
        paths++;
        for (int64_t n = 1; n <= 70; n++) check_len(r, k, n);
        for (size_t j = 0; j < sizeof LARGE / sizeof LARGE[0]; j++) check_len(r, k, LARGE[j]);
        /* The libm activations: the reference's entries on every path. */
        CHECK(k->tanh_fwd == r->tanh_fwd && k->tanh_bwd == r->tanh_bwd && k->sigmoid_fwd == r->sigmoid_fwd &&
                  k->sigmoid_bwd == r->sigmoid_bwd && k->gelu_fwd == r->gelu_fwd && k->gelu_bwd == r->gelu_bwd,
              "%s: a libm activation has a fast version", fast[i]);
    }
    if (!paths) {
        printf("test_rowkern: no fast path on this CPU: skipped\n");
        return 77;
    }
    return tu_summary("test_rowkern");
}
