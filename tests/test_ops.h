/* The operation test registry's shared part (tests/test_ops.c, tests/ops_rnn_conv.c): a
 * problem, an operation's definition, a row of the table, and small helpers. */
#ifndef ATTN_TEST_OPS_H
#define ATTN_TEST_OPS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "attn/attention.h"
#include "attn/layers.h"
#include "nn/nn_internal.h"
#include "testutil.h"

enum { MAXT = 10, MAXO = 3 };

typedef struct row row;

/* One problem: float inputs (the differentiable ones get a gradient), float outputs (the
 * first nloss enter L), and what the op keeps besides (ids, masks, caches). */
typedef struct {
    const row *r;
    int nin, nout, nloss;
    const char *iname[MAXT];
    float *in[MAXT], *g[MAXT]; /* g NULL: no gradient for this input */
    size_t n_in[MAXT];
    int acc[MAXT]; /* 1: the backward adds into g */
    float *out[MAXO];
    size_t n_out[MAXO];
    int32_t *ids;
    uint8_t *mask;
    float *aux, *aux2;
    size_t n_aux;
    attn_desc a;
    attn_score_params prm, dprm;
    int32_t kl[4];
} prob;

typedef struct {
    const char *name;
    void (*init)(prob *p);
    int (*fwd)(prob *p);
    int (*bwd)(prob *p, float *const *dout);
    void (*ref)(const prob *p, double *const *out);
    double (*flops)(const prob *p); /* forward flops, or NULL: report GB/s */
} opdef;

/* A row: the op, up to six sizes (their meaning per op, see each op's init), a variant, and
 * the tolerances: forward relative (absolute 1e-6 x the same factor), backward relative
 * (absolute: that times the largest finite difference). perf 1: a timing row only. */
struct row {
    const opdef *op;
    int s[6];
    int v, m; /* variants (the op's init says which) */
    double ftol, btol;
    int perf;
};

/* ---- Helpers -------------------------------------------------------------------------------- */

static uint64_t g_seed = 1; /* each file its own stream */

static inline float *frand(size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    tu_randn(x, n, g_seed++);
    for (size_t i = 0; i < n; i++) x[i] *= scale;
    return x;
}

/* Adds an input of n floats, random with the given scale; grad: 0 none, 1 written, 2 added. */
static inline float *add_in(prob *p, const char *name, size_t n, float scale, int grad) {
    int t = p->nin++;
    p->iname[t] = name;
    p->in[t] = frand(n, scale);
    p->n_in[t] = n;
    p->g[t] = grad ? malloc((n ? n : 1) * sizeof(float)) : NULL;
    p->acc[t] = grad == 2;
    return p->in[t];
}

static inline void add_out(prob *p, size_t n) {
    p->n_out[p->nout] = n;
    p->out[p->nout++] = malloc((n ? n : 1) * sizeof(float));
}

static inline double dsig(double x) { return 1.0 / (1.0 + exp(-x)); }

static inline double ddot_ff(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* The operations defined in tests/ops_rnn_conv.c and tests/ops_vision.c. */
extern const opdef OP_RNN, OP_CONV, OP_POOL;
extern const opdef OP_CONV2D, OP_POOL2D, OP_GLIMPSE;

#endif
