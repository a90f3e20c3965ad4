/* Tests of the position encodings (attn/posenc.h) against tools/gen_mha_refs.py's files:
 * sinusoidal and ALiBi against their formulas (and ALiBi's slopes against the reference
 * implementation's get_slopes), RoPE against an explicit float64 rotate_half implementation
 * in torch with its autograd gradient, learned against nn.Embedding with the table's
 * gradient. Plus: RoPE on strided views, the adjoint identity <R x, y> = <x, R^T y> in double
 * (the exact check of a linear map's backward), finite differences of a double-precision loss
 * for the learned table, and the error paths.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

#define DATA "data/posenc/"

static attn_st *open_case(const char *name) {
    char path[256];
    snprintf(path, sizeof path, DATA "%s.safetensors", name);
    attn_st *st = NULL;
    int rc = attn_st_open(path, &st);
    CHECK(rc == ATTN_OK, "%s: %s", path, attn_last_error());
    return rc ? NULL : st;
}

static int meta(const attn_st *st, const char *key) {
    const char *v = attn_st_metadata(st, key);
    CHECK(v != NULL, "metadata %s", key);
    return v ? atoi(v) : 0;
}

static float *get(const attn_st *st, const char *name, attn_array *a) {
    int rc = attn_st_get_f32(st, name, a);
    CHECK(rc == ATTN_OK, "%s: %s", name, attn_last_error());
    return rc ? NULL : a->data;
}

static int msg_has(const char *s) { return strstr(attn_last_error(), s) != NULL; }

static void sinusoidal(const char *name) {
    attn_st *st = open_case(name);
    if (!st) return;
    int N = meta(st, "N"), d = meta(st, "d"), offset = meta(st, "offset"), B = 2;
    attn_array ape, ax, ay;
    float *pe = get(st, "pe", &ape), *x = get(st, "x", &ax), *y_want = get(st, "y", &ay);
    size_t n = (size_t)B * N * d;
    float *t = malloc((size_t)N * d * 4), *y = malloc(n * 4), *y2 = malloc(n * 4), *dx = malloc(n * 4);
    int32_t *pos = malloc((size_t)B * N * sizeof(int32_t));
    char what[128];
    CHECK(attn_sinusoidal_table(N, d, offset, t) == ATTN_OK, "%s", attn_last_error());
    snprintf(what, sizeof what, "%s table", name);
    tu_close(what, t, pe, (size_t)N * d, 1e-6, 1e-7);
    CHECK(attn_sinusoidal_forward(B, N, d, x, NULL, offset, y) == ATTN_OK, "%s", attn_last_error());
    snprintf(what, sizeof what, "%s forward", name);
    tu_close(what, y, y_want, n, 1e-6, 1e-6);
    /* Explicit positions equal to offset + n give the same bits; in place too. */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) pos[b * N + i] = offset + i;
    memcpy(y2, x, n * 4);
    CHECK(attn_sinusoidal_forward(B, N, d, y2, pos, 0, y2) == ATTN_OK, "%s", attn_last_error());
    CHECK(memcmp(y, y2, n * 4) == 0, "%s explicit positions in place", name);
    /* Backward: the identity. */
    CHECK(attn_sinusoidal_backward(B, N, d, y, dx) == ATTN_OK && memcmp(dx, y, n * 4) == 0, "%s backward", name);
    free(t), free(y), free(y2), free(dx), free(pos);
    attn_array_free(&ape), attn_array_free(&ax), attn_array_free(&ay);
    attn_st_free(st);
}

static void alibi(int H) {
    char name[32];
    snprintf(name, sizeof name, "alibi_h%d", H);
    attn_st *st = open_case(name);
    if (!st) return;
    int Nq = meta(st, "Nq"), Nk = meta(st, "Nk"), qo = meta(st, "q_offset");
    attn_array as, ac, asym;
    float *s_want = get(st, "slopes", &as), *c_want = get(st, "bias_causal", &ac), *y_want = get(st, "bias_symmetric", &asym);
    float *s = malloc((size_t)H * 4), *bias = malloc((size_t)H * Nq * Nk * 4);
    char what[64];
    CHECK(attn_alibi_slopes(H, s) == ATTN_OK, "%s", attn_last_error());
    snprintf(what, sizeof what, "alibi H=%d slopes", H);
    tu_close(what, s, s_want, (size_t)H, 1e-6, 0.0);
    CHECK(attn_alibi_bias(H, Nq, Nk, qo, 0, bias) == ATTN_OK, "%s", attn_last_error());
    snprintf(what, sizeof what, "alibi H=%d causal bias", H);
    tu_close(what, bias, c_want, (size_t)H * Nq * Nk, 1e-6, 1e-7);
    CHECK(attn_alibi_bias(H, Nq, Nk, qo, 1, bias) == ATTN_OK, "%s", attn_last_error());
    snprintf(what, sizeof what, "alibi H=%d symmetric bias", H);
    tu_close(what, bias, y_want, (size_t)H * Nq * Nk, 1e-6, 1e-7);
    free(s), free(bias);
    attn_array_free(&as), attn_array_free(&ac), attn_array_free(&asym);
    attn_st_free(st);
}

static void rope(const char *name) {
    attn_st *st = open_case(name);
    if (!st) return;
    attn_rope_desc r = {0};
    r.B = meta(st, "B"), r.H = meta(st, "H"), r.N = meta(st, "N"), r.dh = meta(st, "dh");
    r.rot_dim = meta(st, "rot_dim"), r.offset = meta(st, "offset");
    r.base = (float)atof(attn_st_metadata(st, "base"));
    int B = r.B, H = r.H, N = r.N, dh = r.dh;
    size_t n = (size_t)B * H * N * dh;
    attn_array ax, ay, ady, adx, apos = {0};
    float *x = get(st, "x", &ax), *y_want = get(st, "y", &ay), *dy = get(st, "dy", &ady), *dx_want = get(st, "dx", &adx);
    int32_t *pos = NULL;
    if (meta(st, "explicit")) {
        float *pf = get(st, "pos", &apos);
        pos = malloc((size_t)B * N * sizeof(int32_t));
        for (int i = 0; i < B * N; i++) pos[i] = (int32_t)pf[i];
        r.pos = pos;
    }
    float *y = malloc(n * 4), *dx = malloc(n * 4), *big = calloc(n + 16, 4);
    char what[128];
    memcpy(y, x, n * 4);
    CHECK(attn_rope_forward(&r, y) == ATTN_OK, "%s: %s", name, attn_last_error());
    snprintf(what, sizeof what, "%s forward", name);
    tu_close(what, y, y_want, n, 1e-5, 1e-6);
    memcpy(dx, dy, n * 4);
    CHECK(attn_rope_backward(&r, dx) == ATTN_OK, "%s: %s", name, attn_last_error());
    snprintf(what, sizeof what, "%s backward", name);
    tu_close(what, dx, dx_want, n, 1e-5, 1e-6);

    /* The same on a (B, N, H*dh) layout through strides: identical bits. */
    attn_rope_desc rs = r;
    int64_t s[3] = {(int64_t)N * H * dh, dh, (int64_t)H * dh};
    memcpy(rs.strides, s, sizeof s);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++)
                memcpy(big + b * s[0] + h * s[1] + i * s[2], x + (((size_t)b * H + h) * N + i) * dh, (size_t)dh * 4);
    CHECK(attn_rope_forward(&rs, big) == ATTN_OK, "%s strided: %s", name, attn_last_error());
    int same = 1;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++)
                same &= memcmp(big + b * s[0] + h * s[1] + i * s[2], y + (((size_t)b * H + h) * N + i) * dh, (size_t)dh * 4) == 0;
    CHECK(same, "%s strided differs from contiguous", name);

    /* Adjoint identity in double: <R x, dy> = <x, R^T dy>. */
    double lhs = 0.0, rhs = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        lhs += (double)y[i] * dy[i];
        rhs += (double)x[i] * dx[i];
        scale += fabs((double)x[i] * dx[i]);
    }
    CHECK(fabs(lhs - rhs) <= 1e-6 * scale, "%s adjoint: %g vs %g", name, lhs, rhs);
    /* Backward undoes forward. */
    CHECK(attn_rope_backward(&r, y) == ATTN_OK, "backward");
    snprintf(what, sizeof what, "%s inverse", name);
    tu_close(what, y, x, n, 1e-5, 1e-5);

    free(y), free(dx), free(big), free(pos);
    attn_array_free(&ax), attn_array_free(&ay), attn_array_free(&ady), attn_array_free(&adx), attn_array_free(&apos);
    attn_st_free(st);
}

/* Learned: reference file, finite differences of a double loss, errors. */
static void learned(void) {
    attn_st *st = open_case("learned");
    if (!st) return;
    int B = meta(st, "B"), N = meta(st, "N"), d = meta(st, "d"), L = meta(st, "max_len");
    attn_array at, ax, ap, ay, ady, adt;
    float *table = get(st, "table", &at), *x = get(st, "x", &ax), *pf = get(st, "pos", &ap), *y_want = get(st, "y", &ay);
    float *dy = get(st, "dy", &ady), *dt_want = get(st, "dtable", &adt);
    size_t n = (size_t)B * N * d;
    int32_t *pos = malloc((size_t)B * N * sizeof(int32_t));
    for (int i = 0; i < B * N; i++) pos[i] = (int32_t)pf[i];
    float *y = malloc(n * 4), *dx = malloc(n * 4), *dt = calloc((size_t)L * d, 4);
    CHECK(attn_learned_pos_forward(B, N, d, L, table, x, pos, 0, y) == ATTN_OK, "%s", attn_last_error());
    tu_close("learned forward", y, y_want, n, 1e-6, 1e-7);
    CHECK(attn_learned_pos_backward(B, N, d, L, dy, pos, 0, dx, dt) == ATTN_OK, "%s", attn_last_error());
    tu_close("learned dtable", dt, dt_want, (size_t)L * d, 1e-6, 1e-7);
    CHECK(memcmp(dx, dy, n * 4) == 0, "learned dx = dy");

    /* Finite differences of loss(table) = sum((x + table[pos]) * dy) in double. */
    double *fd = malloc((size_t)L * d * sizeof(double)), *got = malloc((size_t)L * d * sizeof(double));
    for (int t = 0; t < L * d; t++) {
        double h = 1e-3, l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            double acc = 0.0;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < N; i++)
                    for (int c = 0; c < d; c++) {
                        int ti = pos[b * N + i] * d + c;
                        double tv = table[ti] + (ti == t ? (sgn ? -h : h) : 0.0);
                        acc += ((double)x[((size_t)b * N + i) * d + c] + tv) * dy[((size_t)b * N + i) * d + c];
                    }
            l[sgn] = acc;
        }
        fd[t] = (l[0] - l[1]) / (2 * h);
        got[t] = dt[t];
    }
    tu_close_d("learned dtable vs fd", got, fd, (size_t)L * d, 1e-5, 1e-6);

    /* Offset form and range errors. */
    CHECK(attn_learned_pos_forward(1, 3, d, L, table, x, NULL, 7, y) == ATTN_OK, "offset 7..9 in range");
    int ok = 1;
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < d; c++) ok &= y[i * d + c] == x[i * d + c] + table[(7 + i) * d + c];
    CHECK(ok, "offset rows");
    CHECK(attn_learned_pos_forward(1, 3, d, L, table, x, NULL, 8, y) == ATTN_EINVAL && msg_has("outside"), "offset past max_len");
    pos[3] = L;
    CHECK(attn_learned_pos_forward(B, N, d, L, table, x, pos, 0, y) == ATTN_EINVAL && msg_has("position 10"), "%s",
          attn_last_error());
    pos[3] = -1;
    CHECK(attn_learned_pos_backward(B, N, d, L, dy, pos, 0, dx, dt) == ATTN_EINVAL, "negative position");
    free(pos), free(y), free(dx), free(dt), free(fd), free(got);
    attn_array_free(&at), attn_array_free(&ax), attn_array_free(&ap), attn_array_free(&ay), attn_array_free(&ady),
        attn_array_free(&adt);
    attn_st_free(st);
}

static void errors(void) {
    float x[64] = {0};
    attn_rope_desc r = {.B = 1, .H = 1, .N = 2, .dh = 7};
    CHECK(attn_rope_forward(&r, x) == ATTN_EINVAL && msg_has("even"), "odd dh: %s", attn_last_error());
    r.dh = 8, r.rot_dim = 10;
    CHECK(attn_rope_forward(&r, x) == ATTN_EINVAL, "rot_dim > dh");
    r.rot_dim = 3;
    CHECK(attn_rope_forward(&r, x) == ATTN_EINVAL, "odd rot_dim");
    r.rot_dim = 0, r.base = -1.0f;
    CHECK(attn_rope_forward(&r, x) == ATTN_EINVAL, "negative base");
    r.base = 0.0f;
    CHECK(attn_rope_forward(NULL, x) == ATTN_EINVAL && attn_rope_forward(&r, NULL) == ATTN_EINVAL, "NULLs");
    /* Position 0 is the identity; odd dh is fine with an even rot_dim. */
    tu_randn(x, 16, 1);
    float y[16];
    memcpy(y, x, sizeof y);
    r.N = 1;
    CHECK(attn_rope_forward(&r, y) == ATTN_OK && memcmp(x, y, 8 * 4) == 0, "position 0");
    attn_rope_desc partial = {.B = 1, .H = 1, .N = 2, .dh = 7, .rot_dim = 4, .offset = 3};
    memcpy(y, x, sizeof y);
    CHECK(attn_rope_forward(&partial, y) == ATTN_OK, "%s", attn_last_error());
    CHECK(memcmp(x + 4, y + 4, 3 * 4) == 0 && memcmp(x + 11, y + 11, 3 * 4) == 0, "features past rot_dim unchanged");
    CHECK(attn_sinusoidal_table(0, 4, 0, x) == ATTN_EINVAL, "N = 0");
    CHECK(attn_sinusoidal_forward(1, 1, 4, NULL, NULL, 0, x) == ATTN_EINVAL, "NULL x");
    CHECK(attn_alibi_slopes(0, x) == ATTN_EINVAL && attn_alibi_bias(2, 0, 3, 0, 0, x) == ATTN_EINVAL, "alibi sizes");
    /* The paper's slopes for 8 heads: 1/2, 1/4, ..., 1/256. */
    attn_alibi_slopes(8, x);
    for (int h = 0; h < 8; h++) CHECK(x[h] == ldexpf(1.0f, -(h + 1)), "slope %d = %g", h, x[h]);
}

int main(void) {
    sinusoidal("sinusoidal_d16_n33");
    sinusoidal("sinusoidal_d13_n7");
    sinusoidal("sinusoidal_d1_n3");
    int heads[] = {1, 2, 3, 5, 6, 8, 12, 16, 24};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) alibi(heads[i]);
    rope("rope_dh8_n7");
    rope("rope_dh6_n33_off");
    rope("rope_dh12_rot8_pos");
    rope("rope_dh64_n3_off");
    learned();
    errors();
    return tu_summary("test_posenc");
}
