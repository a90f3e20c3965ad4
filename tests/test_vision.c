/* The vision operations of attn/layers.h (the Recurrent Attention Model's issue) against
 * PyTorch (tests/data/vision/, written by tools/gen_vision_refs.py): F.conv2d with padding,
 * strides, a rectangular filter, no bias and more than one backward group, on every ISA path,
 * its output and every gradient; F.max_pool2d with floor mode, overlapping windows and exact
 * ties, its output, indices and gradient; the glimpse sensor against F.pad + crop +
 * F.avg_pool2d, output and image gradient, and against a glimpse computed by hand (partly and
 * entirely outside the image). Then the same bits for 1 and 3 threads, the tape ops against
 * the raw functions, training steps that allocate nothing, and argument errors. (Finite differences of every backward are
 * test_ops.c's rows and test_autograd.c's.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/autograd.h"
#include "attn/io.h"
#include "attn/layers.h"
#include "testutil.h"

#define VDATA "data/vision/"

/* Loads VDATA<dir>/<name>.npy (float32, or int32 when i32) of n elements; NULL + failure if not. */
static void *ld(const char *dir, const char *name, size_t n, int i32) {
    char path[256];
    snprintf(path, sizeof path, VDATA "%s/%s.npy", dir, name);
    attn_array a;
    int st = i32 ? attn_npy_load(path, &a) : attn_npy_load_f32(path, &a);
    CHECK(st == ATTN_OK, "%s: %s", path, attn_last_error());
    if (st) return NULL;
    if ((i32 && a.dtype != ATTN_I32) || (size_t)attn_array_numel(&a) != n) {
        CHECK(0, "%s: %lld elements (dtype %s), expected %zu", path, (long long)attn_array_numel(&a),
              attn_dtype_name(a.dtype), n);
        attn_array_free(&a);
        return NULL;
    }
    return a.data;
}

static float *randn(size_t n, uint64_t seed) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    tu_randn(x, n, seed);
    return x;
}

/* ---- conv2d against F.conv2d ------------------------------------------------------------------- */

static void test_torch_conv2d(const char *dir) {
    int32_t *p = ld(dir, "params", 10, 1);
    if (!p) return;
    int B = p[0], Cin = p[1], H = p[2], W = p[3], Cout = p[4], KH = p[5], KW = p[6], S = p[7], P = p[8], bias = p[9];
    int Ho = attn_conv2d_out_size(H, KH, S, P), Wo = attn_conv2d_out_size(W, KW, S, P);
    size_t nx = (size_t)B * Cin * H * W, nw = (size_t)Cout * Cin * KH * KW, ny = (size_t)B * Cout * Ho * Wo;
    float *x = ld(dir, "x", nx, 0), *w = ld(dir, "weight", nw, 0), *b = ld(dir, "bias", Cout, 0);
    float *y = ld(dir, "y", ny, 0), *r = ld(dir, "r", ny, 0), *gx = ld(dir, "grad_x", nx, 0);
    float *gw = ld(dir, "grad_weight", nw, 0), *gb = ld(dir, "grad_bias", Cout, 0);
    if (x && w && b && y && r && gx && gw && gb) {
        float *my = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float)), *dw = malloc(nw * sizeof(float));
        float *db = malloc(Cout * sizeof(float));
        const char *isas[3] = {"ref", "avx2", "avx512"}, *isa0 = attn_get_isa();
        for (int i = 0; i < 3; i++) {
            if (attn_set_isa(isas[i]) != ATTN_OK) continue; /* reported by test_ops */
            char what[128];
            /* the gradients start at 1: the backward adds (1 is taken off below) */
            for (size_t e = 0; e < nx; e++) dx[e] = 1.0f;
            for (size_t e = 0; e < nw; e++) dw[e] = 1.0f;
            for (int e = 0; e < Cout; e++) db[e] = 1.0f;
            CHECK(attn_conv2d_forward(my, x, w, bias ? b : NULL, B, Cin, H, W, Cout, KH, KW, S, P) == ATTN_OK, "%s: %s",
                  dir, attn_last_error());
            CHECK(attn_conv2d_backward(dx, dw, bias ? db : NULL, r, x, w, B, Cin, H, W, Cout, KH, KW, S, P) == ATTN_OK,
                  "%s bwd: %s", dir, attn_last_error());
            for (size_t e = 0; e < nx; e++) dx[e] -= 1.0f;
            for (size_t e = 0; e < nw; e++) dw[e] -= 1.0f;
            for (int e = 0; e < Cout; e++) db[e] -= 1.0f;
            snprintf(what, sizeof what, "torch %s y %s", dir, isas[i]), tu_close(what, my, y, ny, 1e-5, 1e-5);
            snprintf(what, sizeof what, "torch %s grad_x %s", dir, isas[i]), tu_close(what, dx, gx, nx, 1e-5, 1e-5);
            snprintf(what, sizeof what, "torch %s grad_weight %s", dir, isas[i]), tu_close(what, dw, gw, nw, 1e-5, 1e-5);
            snprintf(what, sizeof what, "torch %s grad_bias %s", dir, isas[i]), tu_close(what, db, gb, Cout, 1e-5, 1e-5);
        }
        attn_set_isa(isa0);
        free(my), free(dx), free(dw), free(db);
    }
    attn_free(p), attn_free(x), attn_free(w), attn_free(b), attn_free(y), attn_free(r);
    attn_free(gx), attn_free(gw), attn_free(gb);
}

/* ---- max_pool2d against F.max_pool2d ---------------------------------------------------------- */

static void test_torch_pool2d(const char *dir) {
    int32_t *p = ld(dir, "params", 6, 1);
    if (!p) return;
    int B = p[0], C = p[1], H = p[2], W = p[3], k = p[4], S = p[5];
    int Ho = attn_conv2d_out_size(H, k, S, 0), Wo = attn_conv2d_out_size(W, k, S, 0);
    size_t nx = (size_t)B * C * H * W, ny = (size_t)B * C * Ho * Wo;
    float *x = ld(dir, "x", nx, 0), *y = ld(dir, "y", ny, 0), *r = ld(dir, "r", ny, 0), *gx = ld(dir, "grad_x", nx, 0);
    int32_t *targ = ld(dir, "argmax", ny, 1);
    if (x && y && r && gx && targ) {
        float *my = malloc(ny * sizeof(float)), *dx = calloc(nx, sizeof(float));
        int32_t *arg = malloc(ny * sizeof(int32_t));
        CHECK(attn_max_pool2d_forward(my, arg, x, B, C, H, W, k, S) == ATTN_OK, "%s: %s", dir, attn_last_error());
        CHECK(!memcmp(my, y, ny * sizeof(float)), "torch %s: not the same maxima", dir);
        CHECK(!memcmp(arg, targ, ny * sizeof(int32_t)), "torch %s: not PyTorch's indices (first of ties)", dir);
        CHECK(attn_max_pool2d_backward(dx, r, arg, B, C, H, W, k, S) == ATTN_OK, "%s bwd: %s", dir, attn_last_error());
        tu_close(dir, dx, gx, nx, 1e-6, 1e-7);
        free(my), free(dx), free(arg);
    }
    attn_free(p), attn_free(x), attn_free(y), attn_free(r), attn_free(gx), attn_free(targ);
}

/* ---- The glimpse sensor ------------------------------------------------------------------------ */

/* Against PyTorch's pad + crop + avg_pool2d: output and image gradient. */
static void test_torch_glimpse(const char *dir) {
    int32_t *p = ld(dir, "params", 6, 1);
    if (!p) return;
    int B = p[0], C = p[1], H = p[2], W = p[3], g = p[4], k = p[5];
    size_t nx = (size_t)B * C * H * W, ny = (size_t)B * k * C * g * g;
    float *x = ld(dir, "x", nx, 0), *loc = ld(dir, "loc", 2 * (size_t)B, 0), *y = ld(dir, "y", ny, 0);
    float *r = ld(dir, "r", ny, 0), *gx = ld(dir, "grad_x", nx, 0);
    if (x && loc && y && r && gx) {
        float *my = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float));
        for (size_t e = 0; e < nx; e++) dx[e] = 1.0f;
        CHECK(attn_glimpse_forward(my, x, loc, B, C, H, W, g, k) == ATTN_OK, "%s: %s", dir, attn_last_error());
        CHECK(attn_glimpse_backward(dx, r, loc, B, C, H, W, g, k) == ATTN_OK, "%s bwd: %s", dir, attn_last_error());
        for (size_t e = 0; e < nx; e++) dx[e] -= 1.0f;
        char what[128];
        snprintf(what, sizeof what, "torch %s y", dir), tu_close(what, my, y, ny, 1e-6, 1e-6);
        snprintf(what, sizeof what, "torch %s grad_x", dir), tu_close(what, dx, gx, nx, 1e-5, 1e-6);
        free(my), free(dx);
    }
    attn_free(p), attn_free(x), attn_free(loc), attn_free(y), attn_free(r), attn_free(gx);
}

/* By hand, on the 4 x 4 image 1..16 (row-major), size 2, two scales (2 x 2 and 4 x 4 patches):
 *   (0, 0):   centre pixel (2, 2); scale 0 rows/cols 1..2 = [6 7; 10 11]; scale 1 rows/cols
 *             0..3, 2 x 2 means = [3.5 5.5; 11.5 13.5]
 *   (-1, -1): centre (0, 0); scale 0 rows/cols -1..0 = [0 0; 0 1]; scale 1 rows/cols -2..1 =
 *             [0 0; 0 (1+2+5+6)/4 = 3.5]                      (partly outside: zero pad)
 *   (1, 1):   centre (4, 4), just past the corner; scale 0 = [16 0; 0 0]; scale 1 rows/cols
 *             2..5 = [(11+12+15+16)/4 = 13.5 0; 0 0]
 *   (0.5, -3): centre (3, -4); scale 0 columns -5..-4, scale 1 columns -6..-3: all outside, 0
 * and the image gradient of sum(y) at (0, 0): 1/4 everywhere (scale 1) plus 1 on the middle
 * 2 x 2 (scale 0). */
static void test_glimpse_by_hand(void) {
    float img[64], loc[8] = {0, 0, -1, -1, 1, 1, 0.5f, -3}, y[32], dimg[16] = {0}, ones[8];
    for (int i = 0; i < 64; i++) img[i] = (float)(i % 16 + 1); /* four copies, one per location */
    const float want[32] = {6, 7, 10, 11, 3.5f, 5.5f, 11.5f, 13.5f, 0, 0, 0, 1, 0, 0, 0, 3.5f,
                            16, 0, 0, 0, 13.5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(attn_glimpse_forward(y, img, loc, 4, 1, 4, 4, 2, 2) == ATTN_OK, "glimpse: %s", attn_last_error());
    CHECK(!memcmp(y, want, sizeof y), "glimpse by hand: got %g %g %g %g | %g %g %g %g ...", y[0], y[1], y[2], y[3], y[4],
          y[5], y[6], y[7]);
    for (int i = 0; i < 8; i++) ones[i] = 1.0f;
    CHECK(attn_glimpse_backward(dimg, ones, loc, 1, 1, 4, 4, 2, 2) == ATTN_OK, "glimpse bwd: %s", attn_last_error());
    int ok = 1;
    for (int i = 0; i < 16; i++) {
        int h = i / 4, w = i % 4;
        ok &= dimg[i] == (h >= 1 && h <= 2 && w >= 1 && w <= 2 ? 1.25f : 0.25f);
    }
    CHECK(ok, "glimpse backward by hand: dimg[0] %g, dimg[5] %g", dimg[0], dimg[5]);
    int top, left, side;
    attn_glimpse_box((const float[]){0, 0}, 28, 28, 8, 1, &top, &left, &side);
    CHECK(top == 6 && left == 6 && side == 16, "glimpse box (0, 0) on 28 x 28, size 8, scale 1: %d %d %d", top, left, side);
    attn_glimpse_box((const float[]){0, 0}, 28, 28, 5, 0, &top, &left, &side);
    CHECK(top == 12 && left == 12 && side == 5, "glimpse box, odd size: %d %d %d", top, left, side);
    attn_glimpse_box((const float[]){-1, 1}, 60, 100, 12, 2, &top, &left, &side);
    CHECK(top == -24 && left == 76 && side == 48, "glimpse box (-1, 1) on 60 x 100: %d %d %d", top, left, side);
}

/* ---- Threads, the tape, errors ---------------------------------------------------------------- */

/* conv2d forward and backward: the same bits for 1 and 3 threads (9 images: three backward
 * groups, the last one short). */
static void test_conv2d_threads(void) {
    const int B = 9, Cin = 5, H = 13, W = 10, Cout = 19, K = 3, S = 2, P = 1;
    const int Ho = attn_conv2d_out_size(H, K, S, P), Wo = attn_conv2d_out_size(W, K, S, P);
    const size_t n[4] = {(size_t)B * Cout * Ho * Wo, (size_t)B * Cin * H * W, (size_t)Cout * Cin * K * K, (size_t)Cout};
    float *x = randn(n[1], 1), *w = randn(n[2], 2), *b = randn(n[3], 3), *r = randn(n[0], 4), *out[2][4];
    int threads0 = attn_get_threads();
    for (int k = 0; k < 2; k++) {
        attn_set_threads(k ? 3 : 1);
        for (int i = 0; i < 4; i++) out[k][i] = calloc(n[i], sizeof(float));
        CHECK(attn_conv2d_forward(out[k][0], x, w, b, B, Cin, H, W, Cout, K, K, S, P) == ATTN_OK, "conv2d fwd");
        CHECK(attn_conv2d_backward(out[k][1], out[k][2], out[k][3], r, x, w, B, Cin, H, W, Cout, K, K, S, P) == ATTN_OK,
              "conv2d bwd");
    }
    attn_set_threads(threads0);
    for (int i = 0; i < 4; i++) {
        CHECK(!memcmp(out[0][i], out[1][i], n[i] * sizeof(float)), "conv2d output %d differs between 1 and 3 threads", i);
        free(out[0][i]), free(out[1][i]);
    }
    free(x), free(w), free(b), free(r);
}

/* The glimpse on the tape: the raw functions' bits, the gradient to the image only, the same
 * bits for 1 and 3 threads; a location that is not finite is an error. */
static void test_glimpse_tape(void) {
    enum { B = 5, C = 2, H = 21, W = 17, G = 4, K = 3, NX = B * C * H * W, NY = B * K * C * G * G };
    const float loc[2 * B] = {0, 0, -0.8f, 0.9f, 1, -1, 0.31f, 0.47f, -2, 0.2f};
    float *x = randn(NX, 11), *r = randn(NY, 12), *gx = calloc(NX, 4), *y = malloc(NY * 4), *dx = calloc(NX, 4);
    float *y3 = malloc(NY * 4), *dx3 = calloc(NX, 4);
    attn_graph *g = NULL;
    CHECK(attn_graph_new(0, &g) == ATTN_OK, "graph: %s", attn_last_error());
    if (g) {
        attn_var *vx = attn_graph_leaf(g, 4, (int64_t[]){B, C, H, W}, x, gx);
        attn_var *vy = attn_ag_glimpse(g, vx, loc, G, K);
        CHECK(vy && vy->shape[1] == K * C && vy->shape[2] == G && vy->shape[3] == G, "tape glimpse shape");
        CHECK(vy && attn_graph_backward_from(g, vy, r) == ATTN_OK, "tape glimpse: %s", attn_last_error());
        attn_glimpse_forward(y, x, loc, B, C, H, W, G, K);
        attn_glimpse_backward(dx, r, loc, B, C, H, W, G, K);
        CHECK(vy && !memcmp(vy->data, y, NY * 4) && !memcmp(gx, dx, NX * 4), "tape glimpse differs from the layer");
        int threads0 = attn_get_threads();
        attn_set_threads(3);
        attn_glimpse_forward(y3, x, loc, B, C, H, W, G, K);
        attn_glimpse_backward(dx3, r, loc, B, C, H, W, G, K);
        attn_set_threads(threads0);
        CHECK(!memcmp(y3, y, NY * 4) && !memcmp(dx3, dx, NX * 4), "glimpse differs between threads");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, C, H, W}, x, NULL);
        float bad[2 * B];
        memcpy(bad, loc, sizeof bad);
        bad[3] = NAN;
        CHECK(!attn_ag_glimpse(g, vx, bad, G, K) && attn_graph_status(g) == ATTN_EINVAL, "tape glimpse: NaN location accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, C, H, W}, x, NULL);
        CHECK(!attn_ag_glimpse(g, vx, loc, 0, K), "tape glimpse: size 0 accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 3, (int64_t[]){B, H, W}, x, NULL);
        CHECK(!attn_ag_glimpse(g, vx, loc, G, K) && attn_graph_status(g) == ATTN_ESHAPE, "tape glimpse: 3-D image accepted");
        attn_graph_free(g);
    }
    float z[4] = {0}, l2[2] = {0, INFINITY};
    CHECK(attn_glimpse_forward(z, z, l2, 1, 1, 2, 2, 1, 1) == ATTN_EINVAL && tu_err_has("not finite"),
          "glimpse: an infinite location accepted");
    CHECK(attn_glimpse_forward(z, z, (float[]){0, 0}, 1, 1, 2, 2, 1, 17) == ATTN_EINVAL, "glimpse: 17 scales accepted");
    CHECK(attn_glimpse_forward(z, z, (float[]){0, 0}, 1, 1, 2, 2, 4096, 6) == ATTN_EINVAL, "glimpse: a 2^17 patch accepted");
    CHECK(attn_glimpse_backward(NULL, z, (float[]){0, 0}, 1, 1, 2, 2, 1, 1) == ATTN_EINVAL, "glimpse: NULL dimg accepted");
    free(x), free(r), free(gx), free(y), free(dx), free(y3), free(dx3);
}

/* max_pool2d(relu(conv2d(x))) on the tape: the same bits as the raw functions, forward and
 * backward, with gradients reaching x, W and b. */
static void test_vision_tape(void) {
    enum { B = 3, Cin = 2, H = 9, W = 8, Cout = 4, K = 3, S = 1, P = 1, Ho = 9, Wo = 8, k = 2, Hp = 4, Wp = 4 };
    enum { NX = B * Cin * H * W, NW = Cout * Cin * K * K, NY = B * Cout * Ho * Wo, NP = B * Cout * Hp * Wp };
    float *x = randn(NX, 5), *w = randn(NW, 6), *bias = randn(Cout, 7), *r = randn(NP, 8);
    float *gx = calloc(NX, 4), *gw = calloc(NW, 4), *gb = calloc(Cout, 4), *y = malloc(NY * 4), *p = malloc(NP * 4);
    float *dp = calloc(NY, 4), *dy = calloc(NY, 4), *dx = calloc(NX, 4), *dw = calloc(NW, 4), *db = calloc(Cout, 4);
    int32_t *arg = malloc(NP * sizeof(int32_t));
    attn_graph *g = NULL;
    CHECK(attn_graph_new(0, &g) == ATTN_OK, "graph: %s", attn_last_error());
    if (g) {
        attn_var *vx = attn_graph_leaf(g, 4, (int64_t[]){B, Cin, H, W}, x, gx);
        attn_var *vw = attn_graph_leaf(g, 4, (int64_t[]){Cout, Cin, K, K}, w, gw);
        attn_var *vb = attn_graph_leaf(g, 1, (int64_t[]){Cout}, bias, gb);
        attn_var *vp = attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, vx, vw, vb, S, P)), k, k);
        CHECK(vp && vp->ndim == 4 && vp->shape[2] == Hp && vp->shape[3] == Wp, "tape pool2d shape");
        CHECK(vp && attn_graph_backward_from(g, vp, r) == ATTN_OK, "tape conv2d + pool2d: %s", attn_last_error());
        attn_conv2d_forward(y, x, w, bias, B, Cin, H, W, Cout, K, K, S, P);
        attn_relu_forward(y, y, NY);
        attn_max_pool2d_forward(p, arg, y, B, Cout, Ho, Wo, k, k);
        attn_max_pool2d_backward(dp, r, arg, B, Cout, Ho, Wo, k, k);
        attn_relu_backward(dy, y, dp, NY);
        attn_conv2d_backward(dx, dw, db, dy, x, w, B, Cin, H, W, Cout, K, K, S, P);
        CHECK(vp && !memcmp(vp->data, p, NP * 4), "tape max_pool2d(relu(conv2d)) forward differs");
        CHECK(!memcmp(gx, dx, NX * 4) && !memcmp(gw, dw, NW * 4) && !memcmp(gb, db, Cout * 4), "tape conv2d backward differs");
        double s = 0;
        for (int i = 0; i < NW; i++) s += fabs(gw[i]);
        CHECK(s > 0, "tape conv2d: no gradient reached W");
        /* Errors: no output, a channel mismatch, a wrong bias, a window larger than the image. */
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, Cin, 2, W}, x, NULL);
        CHECK(!attn_ag_conv2d(g, vx, attn_graph_leaf(g, 4, (int64_t[]){Cout, Cin, 5, 3}, w, NULL), NULL, 1, 1) &&
                  attn_graph_status(g) == ATTN_ESHAPE, "tape conv2d: H + 2 pad < KH accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, Cin, H, W}, x, NULL);
        CHECK(!attn_ag_conv2d(g, vx, attn_graph_leaf(g, 4, (int64_t[]){Cout, Cin + 1, 1, 1}, w, NULL), NULL, 1, 0) &&
                  attn_graph_status(g) == ATTN_ESHAPE, "tape conv2d: Cin mismatch accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, Cin, H, W}, x, NULL);
        vw = attn_graph_leaf(g, 4, (int64_t[]){Cout, Cin, K, K}, w, NULL);
        CHECK(!attn_ag_conv2d(g, vx, vw, attn_graph_leaf(g, 1, (int64_t[]){Cout + 1}, bias, NULL), 1, 0) &&
                  attn_graph_status(g) == ATTN_ESHAPE, "tape conv2d: a bias of the wrong size accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, Cin, H, W}, x, NULL);
        vw = attn_graph_leaf(g, 4, (int64_t[]){Cout, Cin, K, K}, w, NULL);
        CHECK(!attn_ag_conv2d(g, vx, vw, NULL, 0, 0), "tape conv2d: stride 0 accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 3, (int64_t[]){B, H, W}, x, NULL);
        CHECK(!attn_ag_max_pool2d(g, vx, 2, 2) && attn_graph_status(g) == ATTN_ESHAPE, "tape pool2d: 3-D x accepted");
        attn_graph_reset(g);
        vx = attn_graph_leaf(g, 4, (int64_t[]){B, Cin, H, W}, x, NULL);
        CHECK(!attn_ag_max_pool2d(g, vx, W + 1, 1), "tape pool2d: a window wider than the image accepted");
        attn_graph_free(g);
    }
    free(x), free(w), free(bias), free(r), free(gx), free(gw), free(gb), free(y), free(p), free(dp), free(dy), free(dx);
    free(dw), free(db), free(arg);
}

/* Training steps of the vision ops allocate nothing once the graph's arena has grown: a small
 * CNN (conv2d, relu, max_pool2d twice, linear, cross-entropy) and a glimpse, three steps, the
 * last two counted by the allocation hook. One thread, so that the product's packing buffer
 * (one per thread) is the same thread's at every step. */
static long g_allocs;
static int g_counting;
static void *count_malloc(size_t n, void *user) {
    (void)user;
    g_allocs += g_counting;
    return malloc(n);
}
static void count_free(void *p, void *user) {
    (void)user;
    free(p);
}

static void test_step_allocs(void) {
    enum { B = 5, H = 20, W = 18, C1 = 6, C2 = 9, K = 3, F = C2 * 5 * 4 };
    float *x = randn(B * H * W, 21), *w1 = randn(C1 * K * K, 22), *w2 = randn(C2 * C1 * K * K, 23), *w3 = randn(10 * F, 24);
    float *w4 = randn(10 * 2 * 4 * 4, 25), *g1 = calloc(C1 * K * K, 4), *g2 = calloc(C2 * C1 * K * K, 4), *g3 = calloc(10 * F, 4);
    float *g4 = calloc(10 * 2 * 4 * 4, 4), loc[2 * B];
    int32_t t[B];
    for (int b = 0; b < B; b++) t[b] = b % 10, loc[2 * b] = 0.2f * (float)b - 0.5f, loc[2 * b + 1] = 0.3f - 0.1f * (float)b;
    int threads0 = attn_get_threads();
    attn_set_threads(1);
    attn_set_allocator(count_malloc, count_free, NULL);
    attn_graph *g = NULL;
    CHECK(attn_graph_new(0, &g) == ATTN_OK, "graph: %s", attn_last_error());
    g_allocs = 0;
    for (int step = 0; g && step < 3; step++) {
        attn_graph_reset(g);
        g_counting = step >= 1;
        attn_var *vx = attn_graph_leaf(g, 4, (int64_t[]){B, 1, H, W}, x, NULL);
        attn_var *v1 = attn_graph_leaf(g, 4, (int64_t[]){C1, 1, K, K}, w1, g1);
        attn_var *v2 = attn_graph_leaf(g, 4, (int64_t[]){C2, C1, K, K}, w2, g2);
        attn_var *v3 = attn_graph_leaf(g, 2, (int64_t[]){10, F}, w3, g3), *v4 = attn_graph_leaf(g, 2, (int64_t[]){10, 32}, w4, g4);
        attn_var *h = attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, vx, v1, NULL, 1, 1)), 2, 2);
        h = attn_ag_max_pool2d(g, attn_ag_relu(g, attn_ag_conv2d(g, h, v2, NULL, 1, 1)), 2, 2); /* (B, C2, 5, 4) */
        attn_var *l1 = attn_ag_cross_entropy(g, attn_ag_linear(g, attn_ag_reshape(g, h, 2, (int64_t[]){B, F}), v3, NULL), t, -100, 0.0f);
        attn_var *gl = attn_ag_reshape(g, attn_ag_glimpse(g, vx, loc, 4, 2), 2, (int64_t[]){B, 32});
        attn_var *l2 = attn_ag_cross_entropy(g, attn_ag_linear(g, gl, v4, NULL), t, -100, 0.0f);
        int st = attn_graph_backward(g, attn_ag_add(g, l1, l2));
        g_counting = 0;
        CHECK(st == ATTN_OK, "vision step %d: %s", step, attn_last_error());
    }
    attn_graph_free(g);
    attn_set_allocator(NULL, NULL, NULL);
    attn_set_threads(threads0);
    CHECK(g_allocs == 0, "vision ops: %ld allocations in two training steps after the first", g_allocs);
    free(x), free(w1), free(w2), free(w3), free(w4), free(g1), free(g2), free(g3), free(g4);
}

/* Bad arguments are errors with a message, not crashes; a NaN propagates through the pooling. */
static void test_errors(void) {
    float x[64] = {0}, w[64] = {0}, y[64], dx[64];
    int32_t arg[16];
    CHECK(attn_conv2d_out_size(5, 3, 1, 0) == 3 && attn_conv2d_out_size(5, 3, 2, 1) == 3 &&
              attn_conv2d_out_size(2, 3, 1, 0) == 0 && attn_conv2d_out_size(7, 2, 2, 0) == 3 &&
              attn_conv2d_out_size(5, 3, 0, 0) == 0, "conv2d_out_size");
    CHECK(attn_conv2d_forward(y, x, w, NULL, 1, 1, 2, 2, 1, 3, 3, 1, 0) == ATTN_ESHAPE && tu_err_has("no output"),
          "conv2d: a filter larger than the image accepted");
    CHECK(attn_conv2d_forward(y, x, w, NULL, 1, 1, 4, 4, 1, 3, 3, 0, 0) == ATTN_EINVAL, "conv2d: stride 0 accepted");
    CHECK(attn_conv2d_forward(y, x, w, NULL, 1, 1, 4, 4, 1, 3, 3, 1, -1) == ATTN_EINVAL, "conv2d: negative pad accepted");
    CHECK(attn_conv2d_forward(y, x, w, NULL, 1, 1, 4, 4, 1, 3, 3, 1, 2000000000) == ATTN_EINVAL && tu_err_has("too large"),
          "conv2d: a padding that overflows accepted");
    CHECK(attn_conv2d_forward(y, x, w, NULL, 1, 0, 4, 4, 1, 3, 3, 1, 0) == ATTN_EINVAL, "conv2d: Cin = 0 accepted");
    CHECK(attn_conv2d_forward(NULL, x, w, NULL, 1, 1, 4, 4, 1, 3, 3, 1, 0) == ATTN_EINVAL, "conv2d: NULL y accepted");
    CHECK(attn_conv2d_backward(dx, w, NULL, y, NULL, w, 1, 1, 4, 4, 1, 3, 3, 1, 0) == ATTN_EINVAL,
          "conv2d backward: dW without x accepted");
    CHECK(attn_conv2d_forward(y, x, w, NULL, 0, 1, 4, 4, 1, 3, 3, 1, 0) == ATTN_OK, "conv2d: B = 0 is not an error");
    CHECK(attn_max_pool2d_forward(y, arg, x, 1, 1, 4, 4, 5, 1) == ATTN_EINVAL, "pool2d: window > image accepted");
    CHECK(attn_max_pool2d_forward(y, arg, x, 1, 1, 4, 4, 2, 0) == ATTN_EINVAL, "pool2d: stride 0 accepted");
    CHECK(attn_max_pool2d_forward(y, NULL, x, 1, 1, 4, 4, 2, 2) == ATTN_EINVAL, "pool2d: NULL argmax accepted");
    for (int i = 0; i < 4; i++) arg[i] = i == 2 ? 16 : i;
    CHECK(attn_max_pool2d_backward(dx, y, arg, 1, 1, 4, 4, 2, 2) == ATTN_EINVAL && tu_err_has("outside"),
          "pool2d backward: argmax past the plane accepted");
    float nx[16] = {1, 2, 3, 4, 5, NAN, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    CHECK(attn_max_pool2d_forward(y, arg, nx, 1, 1, 4, 4, 2, 2) == ATTN_OK && isnan(y[0]) && arg[0] == 5 &&
              y[1] == 8.0f && arg[1] == 7, "pool2d: a NaN propagates (as PyTorch's)");
}

int main(void) {
    test_torch_conv2d("conv2d_pad");
    test_torch_conv2d("conv2d_rect_stride2");
    test_torch_conv2d("conv2d_nobias");
    test_torch_conv2d("conv2d_wide");
    test_torch_pool2d("pool2d_2x2");
    test_torch_pool2d("pool2d_3s2");
    test_torch_pool2d("pool2d_3s1");
    test_torch_glimpse("glimpse_28");
    test_torch_glimpse("glimpse_odd");
    test_torch_glimpse("glimpse_60");
    test_glimpse_by_hand();
    test_conv2d_threads();
    test_glimpse_tape();
    test_vision_tape();
    test_step_allocs();
    test_errors();
    return tu_summary("test_vision");
}
