/* Matrix products on the tape: the linear layer (x W^T + b over all rows at once: one GEMM
 * forward, three products backward) and the batched matmul. All products go through the
 * kernel table's sgemm, which is deterministic for any thread count. The linear layer's
 * forward and backward are nn/linear.c's; the tape only records and adapts them.
 * Letters: R rows (the leading dimensions flattened), I input features, O output features;
 * for matmul Bt batches, M x K times K x N. */
#include <string.h>

#include "autograd/ag.h"
#include "nn/nn_internal.h"

typedef struct {
    ag_entry e;
    attn_var *x, *W, *b;
    int64_t R, I, O;
} linear_entry;

static void linear_backward(attn_graph *g, ag_entry *base) {
    linear_entry *e = (linear_entry *)base;
    const float *dy = ag_dy(e->e.out); /* (R, O) */
    int fresh_x = 1, fresh_W = 1, fresh_b = 1;
    float *dx = NULL, *dW = NULL, *db = NULL;
    /* Fresh gradient buffers are written, the others added to: nn/linear.c's backward. */
    if (e->x->requires_grad && !(dx = ag_grad(g, e->x, &fresh_x))) return; /* (R, I) */
    if (e->W->requires_grad && !(dW = ag_grad(g, e->W, &fresh_W))) return; /* (O, I) */
    if (e->b && e->b->requires_grad && !(db = ag_grad(g, e->b, &fresh_b))) return; /* (O) */
    attn__linear_backward(dx, !fresh_x, dW, !fresh_W, db, !fresh_b, dy, e->x->data, 0, e->W->data, (int)e->R,
                          (int)e->I, (int)e->O);
}

attn_var *attn_ag_linear(attn_graph *g, attn_var *x, attn_var *W, attn_var *b) {
    if (!ag_ok2(g, "attn_ag_linear", x, W)) return NULL;
    char s1[64], s2[64], s3[64];
    if (x->ndim < 1 || W->ndim != 2 || W->shape[1] != x->shape[x->ndim - 1])
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_linear: x %s and W %s do not fit (W must be (out, in) with in = x's last dimension)",
                       ag_shape_str(x, s1, sizeof s1), ag_shape_str(W, s2, sizeof s2));
    int64_t O = W->shape[0], I = W->shape[1], R = x->numel / I;
    if (b && (b->numel != O || b->ndim != 1))
        return ag_fail(g, ATTN_ESHAPE, "attn_ag_linear: bias %s, expected (%lld)", ag_shape_str(b, s3, sizeof s3), (long long)O);
    int64_t shape[ATTN_AG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = O;
    attn_var *y = ag_new(g, x->ndim, shape, x->requires_grad || W->requires_grad || (b && b->requires_grad));
    if (!y) return NULL;
    /* y (R, O) = x (R, I) W^T + b: nn/linear.c's forward */
    attn__linear_forward(y->data, x->data, 0, W->data, b ? b->data : NULL, (int)R, (int)I, (int)O);
    if (y->requires_grad) {
        linear_entry *e = ag_record(g, sizeof *e, linear_backward, y, NULL);
        if (!e) return NULL;
        e->x = x, e->W = W, e->b = b;
        e->R = R, e->I = I, e->O = O;
    }
    return y;
}

/* ---- Batched matmul -------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *a, *b;
    int ta, tb, shared;
    int64_t Bt, M, N, K, lda, ldb;
} matmul_entry;

static void matmul_backward(attn_graph *g, ag_entry *base) {
    matmul_entry *e = (matmul_entry *)base;
    const float *dC = ag_dy(e->e.out); /* (Bt, M, N) */
    int64_t M = e->M, N = e->N, K = e->K, lda = e->lda, ldb = e->ldb;
    int ta = e->ta, tb = e->tb;
    int64_t sa = M * K, sb = e->shared ? 0 : K * N, sc = M * N;
    int fresh;
    if (e->a->requires_grad) {
        float *dA = ag_grad(g, e->a, &fresh);
        if (!dA) return;
        float beta = fresh ? 0.0f : 1.0f;
        if (!ta && e->shared) /* all batches' rows at once: dA (Bt*M, K) = dC op(B)^T */
            ag_sgemm(0, !tb, e->Bt * M, K, N, 1.0f, dC, N, e->b->data, ldb, beta, dA, lda);
        else
            for (int64_t i = 0; i < e->Bt; i++) {
                const float *Bi = e->b->data + i * sb, *dCi = dC + i * sc;
                if (!ta) ag_sgemm(0, !tb, M, K, N, 1.0f, dCi, N, Bi, ldb, beta, dA + i * sa, lda);
                else ag_sgemm(tb, 1, K, M, N, 1.0f, Bi, ldb, dCi, N, beta, dA + i * sa, lda);
            }
    }
    if (e->b->requires_grad) {
        float *dB = ag_grad(g, e->b, &fresh);
        if (!dB) return;
        if (!ta && e->shared) {
            float beta = fresh ? 0.0f : 1.0f;
            if (!tb) ag_sgemm(1, 0, K, N, e->Bt * M, 1.0f, e->a->data, lda, dC, N, beta, dB, ldb);
            else ag_sgemm(1, 0, N, K, e->Bt * M, 1.0f, dC, N, e->a->data, lda, beta, dB, ldb);
        } else
            for (int64_t i = 0; i < e->Bt; i++) {
                const float *Ai = e->a->data + i * sa, *dCi = dC + i * sc;
                float *dBi = dB + i * sb;
                float beta = (fresh && (i == 0 || !e->shared)) ? 0.0f : 1.0f;
                if (!tb) ag_sgemm(!ta, 0, K, N, M, 1.0f, Ai, lda, dCi, N, beta, dBi, ldb);
                else ag_sgemm(1, ta, N, K, M, 1.0f, dCi, N, Ai, lda, beta, dBi, ldb);
            }
    }
}

attn_var *attn_ag_matmul(attn_graph *g, attn_var *a, attn_var *b, int trans_a, int trans_b) {
    if (!ag_ok2(g, "attn_ag_matmul", a, b)) return NULL;
    char s1[64], s2[64];
    int na = a->ndim, nb = b->ndim;
    if (na < 2 || nb < 2 || (nb != 2 && nb != na)) goto bad;
    int shared = nb == 2 && na > 2;
    for (int i = 0; i < na - 2 && !shared; i++)
        if (a->shape[i] != b->shape[i]) goto bad;
    int64_t ra = a->shape[na - 2], ca = a->shape[na - 1], rb = b->shape[nb - 2], cb = b->shape[nb - 1];
    int64_t M = trans_a ? ca : ra, K = trans_a ? ra : ca, Kb = trans_b ? cb : rb, N = trans_b ? rb : cb;
    if (K != Kb) goto bad;
    int64_t Bt = a->numel / (ra * ca);
    int64_t shape[ATTN_AG_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[na - 2] = M;
    shape[na - 1] = N;
    attn_var *y = ag_new(g, na, shape, a->requires_grad || b->requires_grad);
    if (!y) return NULL;
    if (!trans_a && shared)
        ag_sgemm(0, trans_b, Bt * M, N, K, 1.0f, a->data, ca, b->data, cb, 0.0f, y->data, N);
    else
        for (int64_t i = 0; i < Bt; i++)
            ag_sgemm(trans_a, trans_b, M, N, K, 1.0f, a->data + i * M * K, ca, b->data + (shared ? 0 : i * K * N), cb,
                     0.0f, y->data + i * M * N, N);
    if (y->requires_grad) {
        matmul_entry *e = ag_record(g, sizeof *e, matmul_backward, y, NULL);
        if (!e) return NULL;
        e->a = a, e->b = b;
        e->ta = trans_a != 0, e->tb = trans_b != 0, e->shared = shared;
        e->Bt = Bt, e->M = M, e->N = N, e->K = K, e->lda = ca, e->ldb = cb;
    }
    return y;
bad:
    return ag_fail(g, ATTN_ESHAPE, "attn_ag_matmul: %s%s and %s%s do not multiply", ag_shape_str(a, s1, sizeof s1),
                   trans_a ? "^T" : "", ag_shape_str(b, s2, sizeof s2), trans_b ? "^T" : "");
}
