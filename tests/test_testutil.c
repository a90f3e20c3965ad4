/* Tests of the test helpers themselves (testutil.h): each comparison accepts the right values
 * and rejects wrong ones: a finite value or the other infinity where an infinity is expected,
 * NaN (also against NaN: no test expects NaN), and values just outside the tolerance. */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

/* Runs one comparison of one element with both helpers (float and double) and checks that it
 * passes or fails as `pass` says; the comparison's own count and failure are taken back. */
static void expect(int pass, double got, double want, double rtol, double atol) {
    float gf = (float)got, wf = (float)want;
    int checks = tu_checks, failures = tu_failures;
    int f = tu_close("expected failure (float)", &gf, &wf, 1, rtol, atol);
    int d = tu_close_d("expected failure (double)", &got, &want, 1, rtol, atol);
    tu_checks = checks, tu_failures = failures;
    CHECK(f == pass, "tu_close(got %g, want %g, rtol %g, atol %g) = %d", got, want, rtol, atol, f);
    CHECK(d == pass, "tu_close_d(got %g, want %g, rtol %g, atol %g) = %d", got, want, rtol, atol, d);
}

static void test_infinities(void) {
    for (int rtol = 0; rtol < 2; rtol++) { /* rtol 0 once: 0 * inf is NaN */
        double r = rtol ? 1e-3 : 0.0;
        expect(1, -INFINITY, -INFINITY, r, 1e-3);
        expect(1, INFINITY, INFINITY, r, 1e-3);
        expect(0, -1e30, -INFINITY, r, 1e-3);
        expect(0, 0.0, -INFINITY, r, 1e-3);
        expect(0, 5.0, INFINITY, r, 1e-3);
        expect(0, INFINITY, -INFINITY, r, 1e-3);
        expect(0, -INFINITY, INFINITY, r, 1e-3);
        expect(0, -INFINITY, -1e30, r, 1e-3);
        expect(0, INFINITY, 1.0, r, 1e-3);
    }
}

static void test_nan(void) {
    expect(0, NAN, NAN, 1e-3, 1e-3);
    expect(0, NAN, 1.0, 1e-3, 1e-3);
    expect(0, 1.0, NAN, 1e-3, 1e-3);
    expect(0, NAN, -INFINITY, 1e-3, 1e-3);
    expect(0, -INFINITY, NAN, 1e-3, 1e-3);
}

static void test_tolerance(void) {
    /* |got - want| <= atol + rtol * |want|: here 0.1 + 0.01 * 10 = 0.2. */
    expect(1, 10.0, 10.0, 0.01, 0.1);
    expect(1, 10.19, 10.0, 0.01, 0.1);
    expect(1, 9.81, 10.0, 0.01, 0.1);
    expect(0, 10.21, 10.0, 0.01, 0.1);
    expect(0, 9.79, 10.0, 0.01, 0.1);
    expect(0, -10.0, 10.0, 0.01, 0.1);
    /* atol alone, and exact equality */
    expect(1, 1e-6, 0.0, 0.0, 2e-6);
    expect(0, 3e-6, 0.0, 0.0, 2e-6);
    expect(1, 0.5, 0.5, 0.0, 0.0);
    expect(0, 0.5000001, 0.5, 0.0, 0.0);
    /* The worst element decides, wherever it is. */
    float got[4] = {1, 2, 3, 4}, want[4] = {1, 2, 3.5f, 4};
    int checks = tu_checks, failures = tu_failures;
    int r = tu_close("expected failure (third element)", got, want, 4, 0.0, 0.1);
    tu_checks = checks, tu_failures = failures;
    CHECK(r == 0, "one bad element of four fails the array");
    CHECK(tu_close("four equal elements", got, got, 4, 0.0, 0.0), "equal arrays pass");
}

int main(void) {
    fprintf(stderr, "(the FAIL lines below that say \"expected failure\" are the helpers rejecting on purpose)\n");
    test_infinities();
    test_nan();
    test_tolerance();
    return tu_summary("test_testutil");
}
