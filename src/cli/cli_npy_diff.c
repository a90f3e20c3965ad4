/* attn npy-diff: compares two .npy arrays elementwise with numpy.allclose's rule,
 *   |a - b| <= atol + rtol * |b|      (b is the reference)
 * and reports the largest differences. For scripts and the CLI's own tests: exit 0 if close,
 * 1 if not (or if the shapes differ or a file cannot be read), 2 for a usage error.
 * Values are compared as float32 (float64 input is rounded first); NaN equals nothing unless
 * --equal-nan is given. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char HELP[] =
    "usage: attn npy-diff A.npy B.npy [--rtol R] [--atol A] [--equal-nan] [--quiet]\n"
    "\n"
    "Compares two arrays elementwise as numpy.allclose(A, B) does, B being the reference:\n"
    "  |a - b| <= atol + rtol * |b|\n"
    "prints the largest absolute and relative differences and where they are, and exits\n"
    "0 if every element passes, 1 if one does not or the shapes differ.\n"
    "\n"
    "  --rtol R      relative tolerance (default 1e-5)\n"
    "  --atol A      absolute tolerance (default 1e-8)\n"
    "  --equal-nan   NaN in both arrays at one place counts as equal\n"
    "  --quiet       print nothing when the arrays are close\n"
    "  -h, --help    this help\n";

/* The multi-index of flat index i in shape, as "[1, 0, 3]". */
static void index_str(char *buf, size_t cap, int ndim, const int64_t *shape, int64_t i) {
    int64_t idx[ATTN_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++) n += (size_t)snprintf(buf + n, cap - n, d ? ", %lld" : "%lld", (long long)idx[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

int cli_npy_diff(int argc, char **argv) {
    const char *cmd = "npy-diff";
    float rtol = 1e-5f, atol = 1e-8f;
    int equal_nan = 0, quiet = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_float(&p, "--rtol", &rtol) || cli_float(&p, "--atol", &atol)) {
            if (!p.status && (rtol < 0 || atol < 0)) p.status = cli_usage(cmd, "tolerances must be >= 0");
        } else if (cli_flag(&p, "--equal-nan")) {
            equal_nan = 1;
        } else if (cli_flag(&p, "--quiet")) {
            quiet = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    int rc = cli_positionals(&p, 2, 2, "the two arrays A.npy B.npy");
    if (rc) return rc;
    const char *pa = p.pos[0], *pb = p.pos[1];

    attn_array A = {0}, B = {0};
    rc = CLI_EDATA;
    if (cli_load_npy(cmd, pa, &A) || cli_load_npy(cmd, pb, &B)) goto done;
    char sa[CLI_SHAPE_BUF], sb[CLI_SHAPE_BUF];
    if (A.ndim != B.ndim || memcmp(A.shape, B.shape, (size_t)A.ndim * sizeof(int64_t)) != 0) {
        cli_fail(cmd, "shapes differ: %s %s and %s %s", pa, cli_shape_str(sa, A.ndim, A.shape), pb,
                 cli_shape_str(sb, B.ndim, B.shape));
        goto done;
    }
    int st = attn_array_to_f32(&A);
    if (!st) st = attn_array_to_f32(&B);
    if (st) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    const float *a = A.data, *b = B.data;
    int64_t n = attn_array_numel(&A), bad = 0, worst_abs = -1, worst_rel = -1, first_bad = -1;
    double max_abs = 0, max_rel = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        int ok;
        double diff;
        if (isnan(x) || isnan(y)) {
            ok = equal_nan && isnan(x) && isnan(y);
            diff = ok ? 0.0 : INFINITY;
        } else if (isinf(x) || isinf(y)) {
            ok = x == y;
            diff = ok ? 0.0 : INFINITY;
        } else {
            diff = fabs(x - y);
            ok = diff <= (double)atol + (double)rtol * fabs(y);
        }
        double rel = diff == 0.0 ? 0.0 : diff / fabs(y);
        if (worst_abs < 0 || diff > max_abs) max_abs = diff, worst_abs = i;
        if (worst_rel < 0 || rel > max_rel) max_rel = rel, worst_rel = i;
        if (!ok && bad++ == 0) first_bad = i;
    }
    char ia[64] = "", ir[64] = "", ib[64] = "";
    if (n > 0) {
        index_str(ia, sizeof ia, A.ndim, A.shape, worst_abs);
        index_str(ir, sizeof ir, A.ndim, A.shape, worst_rel);
    }
    if (bad || !quiet)
        printf("%s vs %s: shape %s, max abs diff %.3g at %s, max rel diff %.3g at %s\n", pa, pb,
               cli_shape_str(sa, A.ndim, A.shape), max_abs, ia, max_rel, ir);
    if (bad) {
        index_str(ib, sizeof ib, A.ndim, A.shape, first_bad);
        cli_fail(cmd, "%lld of %lld elements differ beyond atol %g + rtol %g * |b| (first at %s: %.9g vs %.9g)",
                 (long long)bad, (long long)n, (double)atol, (double)rtol, ib, (double)a[first_bad],
                 (double)b[first_bad]);
        goto done;
    }
    rc = CLI_OK;
done:
    attn_array_free(&A);
    attn_array_free(&B);
    return rc;
}
