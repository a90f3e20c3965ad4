#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/core.h"

int tu_checks, tu_failures;

void tu_fail(const char *file, int line, const char *cond) {
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, cond);
}

void tu_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* How far got is outside the tolerance of want (> 0: it fails). An infinity matches only the
 * same infinity; NaN always fails. */
static double excess(double g, double w, double rtol, double atol) {
    if (isnan(g) || isnan(w)) return INFINITY;
    if (isinf(g) || isinf(w)) return g == w ? -1.0 : INFINITY;
    return fabs(g - w) - (atol + rtol * fabs(w));
}

/* Compares n elements (of float or double arrays) and reports the worst one. */
#define CLOSE_BODY                                                                          \
    size_t worst = 0;                                                                       \
    double worst_ex = -INFINITY;                                                            \
    for (size_t i = 0; i < n; i++) {                                                        \
        double ex = excess(got[i], want[i], rtol, atol);                                    \
        if (ex > worst_ex) worst_ex = ex, worst = i;                                        \
    }                                                                                       \
    int ok = !(worst_ex > 0);                                                               \
    tu_checks++;                                                                            \
    if (!ok) {                                                                              \
        tu_failures++;                                                                      \
        fprintf(stderr, "FAIL %s: element %zu of %zu: got %.9g want %.9g\n", what, worst, n, \
                (double)got[worst], (double)want[worst]);                                   \
    }                                                                                       \
    return ok;

int tu_close(const char *what, const float *got, const float *want, size_t n, double rtol, double atol) { CLOSE_BODY }
int tu_close_d(const char *what, const double *got, const double *want, size_t n, double rtol, double atol) { CLOSE_BODY }

/* ---- Scratch files ---- */

static char g_dir[256];

int tu_scratch_new(const char *prefix) {
    const char *base = getenv("TMPDIR");
    struct stat sb;
    if (!base || !*base) base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/%s.XXXXXX", base, prefix);
    if (mkdtemp(g_dir)) return 1;
    perror("mkdtemp");
    return 0;
}

const char *tu_scratch_dir(void) { return g_dir; }

const char *tu_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

unsigned char *tu_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    if (b) b[sz] = 0;
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* Removes the old file first: on ext4, truncating and rewriting a file forces a flush to disk
 * on close (auto_da_alloc), which would make the thousands of writes below take seconds. */
void tu_write_file(const char *path, const void *data, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

int tu_count_tmp_files(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

int tu_err_has(const char *s) { return strstr(attn_last_error(), s) != NULL; }

double tu_fixture_value(attn_dtype dt, int64_t i) {
    switch (dt) {
    case ATTN_F32: case ATTN_F64: case ATTN_F16: case ATTN_BF16: return (double)(i - 2) * 0.5;
    case ATTN_I32: case ATTN_I64: return (double)(i - 2);
    case ATTN_U8: return (double)i;
    case ATTN_BOOL: return i % 3 == 0;
    }
    return 0;
}

void tu_fixture_fill(attn_dtype dt, void *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = tu_fixture_value(dt, i);
        switch (dt) {
        case ATTN_F32: ((float *)p)[i] = (float)v; break;
        case ATTN_F64: ((double *)p)[i] = v; break;
        case ATTN_I32: ((int32_t *)p)[i] = (int32_t)v; break;
        case ATTN_I64: ((int64_t *)p)[i] = (int64_t)v; break;
        case ATTN_U8: case ATTN_BOOL: ((uint8_t *)p)[i] = (uint8_t)v; break;
        case ATTN_F16: {
            /* v in {-1, -0.5, 0, 0.5, 1, 1.5}: sign, exponent, one mantissa bit */
            static const uint16_t h[] = {0xbc00, 0xb800, 0x0000, 0x3800, 0x3c00, 0x3e00};
            ((uint16_t *)p)[i] = h[i % 6];
            break;
        }
        case ATTN_BF16: break;
        }
    }
}

void tu_fixture_check_f32(const char *what, const attn_array *a, attn_dtype src) {
    CHECK(a->dtype == ATTN_F32, "%s: dtype %d", what, (int)a->dtype);
    int64_t n = attn_array_numel(a);
    CHECK(a->nbytes == (size_t)n * 4, "%s: nbytes %zu", what, a->nbytes);
    for (int64_t i = 0; i < n; i++)
        if (((const float *)a->data)[i] != (float)tu_fixture_value(src, i)) {
            CHECK(0, "%s: element %" PRId64 " is %g, want %g", what, i, ((const float *)a->data)[i], tu_fixture_value(src, i));
            return;
        }
}
int tu_file_equals(const char *path, const unsigned char *want, size_t n) {
    size_t m = 0;
    unsigned char *got = tu_read_file(path, &m);
    int eq = got && m == n && !memcmp(got, want, n);
    if (!eq && got) {
        fprintf(stderr, "  got %zu bytes:", m);
        for (size_t i = 0; i < m; i++) fprintf(stderr, "%s%d", i ? "," : " ", got[i]);
        fprintf(stderr, "\n");
    }
    free(got);
    return eq;
}

void tu_fuzz_file(const char *fixture, tu_load_fn load, const char *ext) {
    size_t n = 0;
    unsigned char *good = tu_read_file(fixture, &n);
    CHECK(good != NULL, "read %s", fixture);
    if (!good) return;
    char name[64];
    snprintf(name, sizeof name, "fuzz.%s", ext);
    const char *p = tu_path(name);
    int fails = 0;
    for (size_t len = 0; len < n; len++) {
        tu_write_file(p, good, len);
        int rc = load(p);
        fails += rc < 0;
        if (rc >= 0) CHECK(0, "%s truncated to %zu of %zu bytes was accepted", fixture, len, n);
    }
    CHECK(fails == (int)n, "%s: %d of %zu truncations failed", fixture, fails, n);
    tu_write_file(p, good, n);
    CHECK(load(p) == ATTN_OK, "%s intact: %s", fixture, attn_last_error());
    static const unsigned char masks[] = {0x01, 0x02, 0x10, 0x80, 0xff};
    unsigned char *bad = malloc(n);
    for (size_t i = 0; i < n && bad; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(bad, good, n);
            bad[i] ^= masks[k];
            tu_write_file(p, bad, n);
            (void)load(p);
        }
    free(bad);
    free(good);
}
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void tu_scratch_remove(void) { remove_tree(g_dir); }


void tu_randn(float *x, size_t n, uint64_t seed) {
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = attn_rng_normal(&r);
}

int tu_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, tu_checks - tu_failures, tu_failures);
    return tu_failures ? 1 : 0;
}
