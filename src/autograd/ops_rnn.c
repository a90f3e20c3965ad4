/* Recurrent layers on the tape: GRU and LSTM, one step (cell) or a whole time-major sequence,
 * each one tape entry around the forward/backward pairs of attn/layers.h (PyTorch's weight
 * layout; the forward's cache lives in the arena). Letters: T steps, B batch, I input
 * features, Hd hidden size, G gates (GRU 3, LSTM 4). */
#include <string.h>

#include "attn/layers.h"
#include "autograd/ag.h"
#include "nn/nn_internal.h"

/* Checks x (..., B, I), h (B, Hd) and the weights; fills I, Hd. */
static int rnn_check(attn_graph *g, const char *op, int G, attn_var *x, int xdims, attn_var *W_ih, attn_var *W_hh,
                     attn_var *b_ih, attn_var *b_hh, int64_t *I, int64_t *Hd) {
    char s1[64], s2[64];
    if (x->ndim != xdims) {
        ag_fail(g, ATTN_ESHAPE, "%s: x %s must have %d dimensions", op, ag_shape_str(x, s1, sizeof s1), xdims);
        return 0;
    }
    if (W_hh->ndim != 2 || W_hh->shape[0] % G || W_hh->shape[0] != G * W_hh->shape[1]) {
        ag_fail(g, ATTN_ESHAPE, "%s: W_hh %s must be (%d*Hd, Hd)", op, ag_shape_str(W_hh, s1, sizeof s1), G);
        return 0;
    }
    *Hd = W_hh->shape[1];
    *I = x->shape[xdims - 1];
    if (W_ih->ndim != 2 || W_ih->shape[0] != G * *Hd || W_ih->shape[1] != *I) {
        ag_fail(g, ATTN_ESHAPE, "%s: W_ih %s does not fit x %s and Hd = %lld", op, ag_shape_str(W_ih, s1, sizeof s1),
                ag_shape_str(x, s2, sizeof s2), (long long)*Hd);
        return 0;
    }
    for (int k = 0; k < 2; k++) {
        attn_var *b = k ? b_hh : b_ih;
        if (b && (b->ndim != 1 || b->numel != G * *Hd)) {
            ag_fail(g, ATTN_ESHAPE, "%s: %s %s, expected (%lld)", op, k ? "b_hh" : "b_ih", ag_shape_str(b, s1, sizeof s1), (long long)(G * *Hd));
            return 0;
        }
    }
    return 1;
}

static int state_check(attn_graph *g, const char *op, const char *name, attn_var *h, int64_t B, int64_t Hd) {
    if (h && (h->ndim != 2 || h->shape[0] != B || h->shape[1] != Hd)) {
        char s1[64];
        ag_fail(g, ATTN_ESHAPE, "%s: %s %s, expected (%lld, %lld)", op, name, ag_shape_str(h, s1, sizeof s1), (long long)B, (long long)Hd);
        return 0;
    }
    return 1;
}

static int any_grad(attn_var *const *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i] && v[i]->requires_grad) return 1;
    return 0;
}

static const float *dat(attn_var *v) { return v ? v->data : NULL; }

/* Gradient buffer (zeroed when new) of v if it wants one, else NULL; *bad on failure. */
static float *want(attn_graph *g, attn_var *v, int *bad) {
    if (!v || !v->requires_grad) return NULL;
    float *d = ag_grad_zeroed(g, v);
    if (!d) *bad = 1;
    return d;
}

static int check_lengths(attn_graph *g, const char *op, const int32_t *lengths, int64_t B, int64_t T) {
    if (!lengths) return 1;
    for (int64_t b = 0; b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T) {
            ag_fail(g, ATTN_EINVAL, "%s: lengths[%lld] = %d is outside [0, %lld]", op, (long long)b, (int)lengths[b], (long long)T);
            return 0;
        }
    return 1;
}

/* ---- GRU ------------------------------------------------------------------------------- */

typedef struct {
    ag_entry e;
    attn_var *x, *h0, *W_ih, *W_hh, *b_ih, *b_hh;
    attn_gru m;
    int T, B, reverse, cell;
    int32_t *lengths;
    float *cache;
} gru_entry;

static void gru_backward(attn_graph *g, ag_entry *base) {
    gru_entry *e = (gru_entry *)base;
    int bad = 0;
    float *dx = want(g, e->x, &bad), *dh0 = want(g, e->h0, &bad);
    attn_gru_grad gg = {want(g, e->W_ih, &bad), want(g, e->W_hh, &bad), want(g, e->b_ih, &bad), want(g, e->b_hh, &bad)};
    float *work = bad ? NULL : ag_calloc(g, attn__gru_backward_floats(&e->m, e->T, e->B) * sizeof(float));
    if (!work) return;
    int st;
    /* A cell is the sequence of one step whose gradient comes in as dh_n. */
    if (e->cell) st = attn__gru_backward_ws(&e->m, 1, e->B, 0, NULL, e->x->data, e->cache, NULL, ag_dy(e->e.out), dx, dh0, &gg, work);
    else
        st = attn__gru_backward_ws(&e->m, e->T, e->B, e->reverse, e->lengths, e->x->data, e->cache, ag_dy(e->e.out),
                                   e->e.out2 ? ag_dy(e->e.out2) : NULL, dx, dh0, &gg, work);
    if (st != ATTN_OK) ag_fail_last(g, st);
}

static attn_var *gru_op(attn_graph *g, const char *op, int cell, attn_var *x, attn_var *h0, attn_var *W_ih, attn_var *W_hh,
                        attn_var *b_ih, attn_var *b_hh, const int32_t *lengths, int reverse, attn_var **h_n) {
    if (h_n) *h_n = NULL;
    if (!ag_ok(g, op, 3, (attn_var *const[]){x, W_ih, W_hh})) return NULL;
    int64_t I, Hd;
    if (!rnn_check(g, op, 3, x, cell ? 2 : 3, W_ih, W_hh, b_ih, b_hh, &I, &Hd)) return NULL;
    int64_t T = cell ? 1 : x->shape[0], B = x->shape[cell ? 0 : 1];
    if (!state_check(g, op, "h", h0, B, Hd) || !check_lengths(g, op, lengths, B, T)) return NULL;
    attn_gru m = {(int)I, (int)Hd, 1, W_ih->data, W_hh->data, dat(b_ih), dat(b_hh)};
    int rg = any_grad((attn_var *const[]){x, h0, W_ih, W_hh, b_ih, b_hh}, 6) && g->grad_enabled;
    attn_var *y = ag_new(g, cell ? 2 : 3, cell ? (int64_t[]){B, Hd} : (int64_t[]){T, B, Hd}, rg);
    attn_var *hn = (!cell && h_n) ? ag_new(g, 2, (int64_t[]){B, Hd}, rg) : NULL;
    if (!y || (!cell && h_n && !hn)) return NULL;
    size_t csize = attn_gru_cache_size(&m, (int)T, (int)B);
    float *cache = ag_floats(g, (int64_t)csize);
    if (!cache) return NULL;
    int32_t *len = NULL;
    if (lengths) {
        if (!(len = ag_alloc(g, (size_t)B * sizeof(int32_t)))) return NULL;
        memcpy(len, lengths, (size_t)B * sizeof(int32_t));
    }
    int st = cell ? attn_gru_cell_forward(&m, (int)B, x->data, dat(h0), y->data, cache)
                  : attn_gru_forward(&m, (int)T, (int)B, reverse, len, x->data, dat(h0), y->data, hn ? hn->data : NULL, cache);
    if (st != ATTN_OK) return ag_fail_last(g, st);
    if (rg) {
        gru_entry *e = ag_record(g, sizeof *e, gru_backward, y, hn);
        if (!e) return NULL;
        e->x = x, e->h0 = h0, e->W_ih = W_ih, e->W_hh = W_hh, e->b_ih = b_ih, e->b_hh = b_hh;
        e->m = m, e->T = (int)T, e->B = (int)B, e->reverse = reverse, e->cell = cell, e->lengths = len, e->cache = cache;
    }
    if (h_n) *h_n = cell ? y : hn;
    return y;
}

attn_var *attn_ag_gru_cell(attn_graph *g, attn_var *x, attn_var *h, attn_var *W_ih, attn_var *W_hh, attn_var *b_ih, attn_var *b_hh) {
    return gru_op(g, "attn_ag_gru_cell", 1, x, h, W_ih, W_hh, b_ih, b_hh, NULL, 0, NULL);
}

attn_var *attn_ag_gru(attn_graph *g, attn_var *x, attn_var *h0, attn_var *W_ih, attn_var *W_hh, attn_var *b_ih, attn_var *b_hh,
                      const int32_t *lengths, int reverse, attn_var **h_n) {
    return gru_op(g, "attn_ag_gru", 0, x, h0, W_ih, W_hh, b_ih, b_hh, lengths, reverse, h_n);
}

/* ---- LSTM ------------------------------------------------------------------------------ */

typedef struct {
    ag_entry e;
    attn_var *x, *h0, *c0, *W_ih, *W_hh, *b_ih, *b_hh;
    attn_var *hn, *cn; /* sequence: the final states (or NULL); cell: e.out and e.out2 */
    attn_lstm m;
    int T, B, reverse, cell;
    int32_t *lengths;
    float *cache;
} lstm_entry;

static void lstm_backward(attn_graph *g, ag_entry *base) {
    lstm_entry *e = (lstm_entry *)base;
    int bad = 0;
    float *dx = want(g, e->x, &bad), *dh0 = want(g, e->h0, &bad), *dc0 = want(g, e->c0, &bad);
    attn_lstm_grad gg = {want(g, e->W_ih, &bad), want(g, e->W_hh, &bad), want(g, e->b_ih, &bad), want(g, e->b_hh, &bad), NULL};
    float *work = bad ? NULL : ag_calloc(g, attn__lstm_backward_floats(&e->m, e->T, e->B) * sizeof(float));
    if (!work) return;
    int st;
    if (e->cell)
        st = attn__lstm_backward_ws(&e->m, 1, e->B, 0, NULL, e->x->data, e->cache, NULL, ag_dy(e->e.out), ag_dy(e->e.out2), dx,
                                    dh0, dc0, &gg, work);
    else
        st = attn__lstm_backward_ws(&e->m, e->T, e->B, e->reverse, e->lengths, e->x->data, e->cache, ag_dy(e->e.out),
                                    e->hn ? ag_dy(e->hn) : NULL, e->cn ? ag_dy(e->cn) : NULL, dx, dh0, dc0, &gg, work);
    if (st != ATTN_OK) ag_fail_last(g, st);
}

static attn_var *lstm_op(attn_graph *g, const char *op, int cell, attn_var *x, attn_var *h0, attn_var *c0, attn_var *W_ih,
                         attn_var *W_hh, attn_var *b_ih, attn_var *b_hh, const int32_t *lengths, int reverse, attn_var **h_n,
                         attn_var **c_n) {
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    if (!ag_ok(g, op, 3, (attn_var *const[]){x, W_ih, W_hh})) return NULL;
    int64_t I, Hd;
    if (!rnn_check(g, op, 4, x, cell ? 2 : 3, W_ih, W_hh, b_ih, b_hh, &I, &Hd)) return NULL;
    int64_t T = cell ? 1 : x->shape[0], B = x->shape[cell ? 0 : 1];
    if (!state_check(g, op, "h", h0, B, Hd) || !state_check(g, op, "c", c0, B, Hd) || !check_lengths(g, op, lengths, B, T))
        return NULL;
    attn_lstm m = {(int)I, (int)Hd, W_ih->data, W_hh->data, dat(b_ih), dat(b_hh), NULL};
    int rg = any_grad((attn_var *const[]){x, h0, c0, W_ih, W_hh, b_ih, b_hh}, 7) && g->grad_enabled;
    int64_t sh[2] = {B, Hd};
    attn_var *y = ag_new(g, cell ? 2 : 3, cell ? sh : (int64_t[]){T, B, Hd}, rg);
    attn_var *hn = (!cell && h_n) ? ag_new(g, 2, sh, rg) : NULL;
    attn_var *cn = (cell || c_n) ? ag_new(g, 2, sh, rg) : NULL;
    if (!y || (!cell && h_n && !hn) || ((cell || c_n) && !cn)) return NULL;
    size_t csize = attn_lstm_cache_size(&m, (int)T, (int)B);
    float *cache = ag_floats(g, (int64_t)csize);
    if (!cache) return NULL;
    int32_t *len = NULL;
    if (lengths) {
        if (!(len = ag_alloc(g, (size_t)B * sizeof(int32_t)))) return NULL;
        memcpy(len, lengths, (size_t)B * sizeof(int32_t));
    }
    int st = cell ? attn_lstm_cell_forward(&m, (int)B, x->data, dat(h0), dat(c0), y->data, cn->data, cache)
                  : attn_lstm_forward(&m, (int)T, (int)B, reverse, len, x->data, dat(h0), dat(c0), y->data,
                                      hn ? hn->data : NULL, cn ? cn->data : NULL, cache);
    if (st != ATTN_OK) return ag_fail_last(g, st);
    if (rg) {
        lstm_entry *e = ag_record(g, sizeof *e, lstm_backward, y, cell ? cn : hn);
        if (!e) return NULL;
        if (!cell) e->e.out3 = cn;
        e->x = x, e->h0 = h0, e->c0 = c0, e->W_ih = W_ih, e->W_hh = W_hh, e->b_ih = b_ih, e->b_hh = b_hh;
        e->m = m, e->T = (int)T, e->B = (int)B, e->reverse = reverse, e->cell = cell, e->lengths = len, e->cache = cache;
        e->hn = hn, e->cn = cn;
    }
    if (h_n) *h_n = hn;
    if (c_n) *c_n = cn;
    return y;
}

attn_var *attn_ag_lstm_cell(attn_graph *g, attn_var *x, attn_var *h, attn_var *c, attn_var *W_ih, attn_var *W_hh,
                            attn_var *b_ih, attn_var *b_hh, attn_var **c_out) {
    attn_var *cn = NULL;
    attn_var *y = lstm_op(g, "attn_ag_lstm_cell", 1, x, h, c, W_ih, W_hh, b_ih, b_hh, NULL, 0, NULL, &cn);
    if (c_out) *c_out = y ? cn : NULL;
    return y;
}

attn_var *attn_ag_lstm(attn_graph *g, attn_var *x, attn_var *h0, attn_var *c0, attn_var *W_ih, attn_var *W_hh,
                       attn_var *b_ih, attn_var *b_hh, const int32_t *lengths, int reverse, attn_var **h_n, attn_var **c_n) {
    return lstm_op(g, "attn_ag_lstm", 0, x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths, reverse, h_n, c_n);
}
