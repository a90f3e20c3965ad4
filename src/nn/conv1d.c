/* The 1-D convolution over a batch of token sequences (Kim 2014's CNN over word vectors): its
 * one forward and one backward (llm.c style, raw pointers), as torch.nn.functional.conv1d with
 * stride 1, dilation 1, one group and zero padding `pad` on both sides, but with the input
 * channels last (x (B, T, Cin), as the embedding gives it) and per-sequence lengths, so that a
 * padded position never reaches an output. The weights keep PyTorch's Conv1d layout
 * (Cout, Cin, K), so state_dicts carry over. The public attn_conv1d_* (attn/layers.h) and the
 * autograd tape (autograd/ops_conv.c) run this code. Not here: strides, dilation, groups.
 *
 * Letters: B sequences, T positions, Cin input and Cout output channels, K the filter width,
 * P the padding, L_b = lengths[b] the real positions of sequence b, To = T + 2P - K + 1 the
 * outputs (none when T + 2P < K), Lo_b = max(0, L_b + 2P - K + 1) the real ones of b.
 *
 * The math, for t < Lo_b (outputs at t >= Lo_b are 0):
 *   y[b, t, o] = bias[o] + sum_k sum_c W[o, c, k] x[b, t + k - P, c]   (x = 0 outside [0, L_b))
 * computed as K matrix products per sequence ("K-step accumulation"): for each tap k, the rows
 * t whose input s = t + k - P lies in [0, L_b) form one contiguous block, so
 *   y_b[t0:t1] += x_b[t0+k-P : t1+k-P] (M, Cin) W_k^T,  W_k (Cout, Cin) = W[:, :, k],
 * on the kernel table's sgemm. W_k is strided in W's layout, so the weights are repacked first
 * (forward (K, Cin, Cout), backward (Cout, K, Cin)) into caller-given work memory. Sequences
 * run in parallel, one task each, whose products run serially on that thread; the weight
 * gradient runs in fixed blocks of output channels; so the bits do not depend on the thread
 * count (each output element is the same chain of operations whichever thread runs it). */
#include <string.h>

#include "attn/layers.h"
#include "core/internal.h"
#include "kernels/kernels.h"
#include "nn/nn_internal.h"

int attn_conv1d_out_length(int T, int K, int pad) { return T + 2 * pad - K + 1 > 0 ? T + 2 * pad - K + 1 : 0; }

size_t attn__conv1d_work_floats(int Cin, int Cout, int K) { return 2 * (size_t)Cin * Cout * K; }

/* Tap k of a sequence of L real positions with Lo outputs: the outputs [*t0, *t1) that read an
 * input, at s = t + k - P. Empty when *t1 <= *t0. */
static void tap_rows(int L, int Lo, int k, int P, int *t0, int *t1) {
    *t0 = P - k > 0 ? P - k : 0;
    *t1 = L + P - k < Lo ? L + P - k : Lo;
}

typedef struct {
    float *y, *dx, *dW, *db;
    const float *x, *dy, *W, *b, *Wp; /* Wp: the repacked weights */
    const int32_t *lengths;
    int B, T, Cin, Cout, K, P, To, acc;
} conv_job;

static int seq_len(const conv_job *j, int b) { return j->lengths ? j->lengths[b] : j->T; }

/* Forward of sequence b; Wp (K, Cin, Cout). */
static void fwd_task(void *ctx, int b, int thread) {
    (void)thread;
    const conv_job *j = ctx;
    int L = seq_len(j, b), Lo = attn_conv1d_out_length(L, j->K, j->P), Cin = j->Cin, Cout = j->Cout;
    const float *x = j->x + (size_t)b * j->T * Cin; /* (T, Cin) */
    float *y = j->y + (size_t)b * j->To * Cout;     /* (To, Cout) */
    for (int t = 0; t < j->To; t++)
        if (t < Lo && j->b) memcpy(y + (size_t)t * Cout, j->b, (size_t)Cout * sizeof(float));
        else memset(y + (size_t)t * Cout, 0, (size_t)Cout * sizeof(float));
    for (int k = 0; k < j->K; k++) {
        int t0, t1;
        tap_rows(L, Lo, k, j->P, &t0, &t1);
        if (t1 <= t0) continue;
        /* y[t0:t1] (M, Cout) += x[t0+k-P : t1+k-P] (M, Cin) W_k^T (Cin, Cout) */
        attn__kern()->sgemm(0, 0, t1 - t0, Cout, Cin, 1.0f, x + (size_t)(t0 + k - j->P) * Cin, Cin,
                            j->Wp + (size_t)k * Cin * Cout, Cout, 1.0f, y + (size_t)t0 * Cout, Cout);
    }
}

void attn__conv1d_forward(float *y, const float *x, const int32_t *lengths, const float *W, const float *b, int B,
                          int T, int Cin, int Cout, int K, int pad, float *work) {
    int To = attn_conv1d_out_length(T, K, pad);
    if (B < 1 || To < 1) return;
    /* work (K, Cin, Cout) = W (Cout, Cin, K) with its axes reversed */
    for (int o = 0; o < Cout; o++)
        for (int c = 0; c < Cin; c++)
            for (int k = 0; k < K; k++) work[((size_t)k * Cin + c) * Cout + o] = W[((size_t)o * Cin + c) * K + k];
    conv_job j = {.y = y, .x = x, .W = W, .b = b, .Wp = work, .lengths = lengths, .B = B, .T = T, .Cin = Cin,
                  .Cout = Cout, .K = K, .P = pad, .To = To};
    attn__parallel(B, fwd_task, &j);
}

/* Input gradient of sequence b; Wp (Cout, K, Cin). Positions past L_b get 0 (or keep their
 * value when accumulating). */
static void dx_task(void *ctx, int b, int thread) {
    (void)thread;
    const conv_job *j = ctx;
    int L = seq_len(j, b), Lo = attn_conv1d_out_length(L, j->K, j->P), Cin = j->Cin, Cout = j->Cout;
    const float *dy = j->dy + (size_t)b * j->To * Cout; /* (To, Cout) */
    float *dx = j->dx + (size_t)b * j->T * Cin;         /* (T, Cin) */
    if (!j->acc) memset(dx, 0, (size_t)j->T * Cin * sizeof(float));
    for (int k = 0; k < j->K; k++) {
        int t0, t1;
        tap_rows(L, Lo, k, j->P, &t0, &t1);
        if (t1 <= t0) continue;
        /* forward: y[t0:t1] += x[t0+k-P : t1+k-P] W_k^T  =>  dx[t0+k-P : t1+k-P] (M, Cin) += dy[t0:t1] (M, Cout) W_k */
        attn__kern()->sgemm(0, 0, t1 - t0, Cin, Cout, 1.0f, dy + (size_t)t0 * Cout, Cout, j->Wp + (size_t)k * Cin,
                            (int64_t)j->K * Cin, 1.0f, dx + (size_t)(t0 + k - j->P) * Cin, Cin);
    }
}

/* Weight and bias gradients of output channels [o0, o1) (block `task`), summed over the
 * sequences in order; dWp (Cout, K, Cin) is the work rows of these channels. */
enum { CONV_DW_BLOCK = 16 };

static void dw_task(void *ctx, int task, int thread) {
    (void)thread;
    const conv_job *j = ctx;
    int Cin = j->Cin, Cout = j->Cout, K = j->K, o0 = task * CONV_DW_BLOCK;
    int o1 = o0 + CONV_DW_BLOCK < Cout ? o0 + CONV_DW_BLOCK : Cout;
    float *dWp = (float *)j->Wp + (size_t)o0 * K * Cin; /* rows [o0, o1) of (Cout, K, Cin) */
    if (j->dW) memset(dWp, 0, (size_t)(o1 - o0) * K * Cin * sizeof(float));
    if (j->db && !j->acc)
        for (int o = o0; o < o1; o++) j->db[o] = 0.0f;
    for (int b = 0; b < j->B; b++) {
        int L = seq_len(j, b), Lo = attn_conv1d_out_length(L, K, j->P);
        const float *dy = j->dy + (size_t)b * j->To * Cout, *x = j->x + (size_t)b * j->T * Cin;
        if (j->db) /* forward: y[t, o] = bias[o] + ...  =>  db[o] += dy[t, o] for t < Lo */
            for (int t = 0; t < Lo; t++)
                for (int o = o0; o < o1; o++) j->db[o] += dy[(size_t)t * Cout + o];
        for (int k = 0; j->dW && k < K; k++) {
            int t0, t1;
            tap_rows(L, Lo, k, j->P, &t0, &t1);
            if (t1 <= t0) continue;
            /* forward: y[t0:t1] += x[s0:s1] W_k^T  =>  dW_k[o0:o1] (Mo, Cin) += dy[t0:t1, o0:o1]^T (Mo, M) x[s0:s1] (M, Cin) */
            attn__kern()->sgemm(1, 0, o1 - o0, Cin, t1 - t0, 1.0f, dy + (size_t)t0 * Cout + o0, Cout,
                                x + (size_t)(t0 + k - j->P) * Cin, Cin, 1.0f, dWp + (size_t)k * Cin, (int64_t)K * Cin);
        }
    }
    /* dW (Cout, Cin, K) (+)= dWp (Cout, K, Cin) with its last two axes swapped */
    for (int o = o0; j->dW && o < o1; o++)
        for (int c = 0; c < Cin; c++)
            for (int k = 0; k < K; k++) {
                float v = dWp[((size_t)(o - o0) * K + k) * Cin + c], *d = j->dW + ((size_t)o * Cin + c) * K + k;
                *d = j->acc ? *d + v : v;
            }
}

void attn__conv1d_backward(float *dx, int dx_acc, float *dW, int dW_acc, float *db, int db_acc, const float *dy,
                           const float *x, const int32_t *lengths, const float *W, int B, int T, int Cin, int Cout,
                           int K, int pad, float *work) {
    int To = attn_conv1d_out_length(T, K, pad);
    size_t n = (size_t)Cout * K * Cin;
    conv_job j = {.dy = dy, .x = x, .W = W, .lengths = lengths, .B = B, .T = T, .Cin = Cin, .Cout = Cout, .K = K,
                  .P = pad, .To = To};
    if (dx && B > 0) {
        /* work (Cout, K, Cin) = W (Cout, Cin, K) with its last two axes swapped */
        for (int o = 0; o < Cout; o++)
            for (int c = 0; c < Cin; c++)
                for (int k = 0; k < K; k++) work[((size_t)o * K + k) * Cin + c] = W[((size_t)o * Cin + c) * K + k];
        if (To < 1) { /* no outputs: nothing reaches x */
            if (!dx_acc) memset(dx, 0, (size_t)B * T * Cin * sizeof(float));
        } else {
            j.dx = dx, j.Wp = work, j.acc = dx_acc;
            attn__parallel(B, dx_task, &j);
        }
    }
    if (dW || db) {
        if (dW_acc != db_acc && dW && db) { /* one flag per call of the task: run them apart */
            attn__conv1d_backward(NULL, 0, dW, dW_acc, NULL, 0, dy, x, lengths, W, B, T, Cin, Cout, K, pad, work);
            attn__conv1d_backward(NULL, 0, NULL, 0, db, db_acc, dy, x, lengths, W, B, T, Cin, Cout, K, pad, work);
            return;
        }
        j.dx = NULL, j.dW = dW, j.db = db, j.Wp = work + n, j.acc = dW ? dW_acc : db_acc;
        if (To < 1) j.B = 0; /* no outputs: the gradients are 0 */
        attn__parallel((Cout + CONV_DW_BLOCK - 1) / CONV_DW_BLOCK, dw_task, &j);
    }
}

/* ---- Public entry points (attn/layers.h) ----------------------------------------------------- */

static int check_args(const char *what, const int32_t *lengths, int B, int T, int Cin, int Cout, int K, int pad) {
    if (B < 0 || T < 1 || Cin < 1 || Cout < 1 || K < 1 || pad < 0 || pad >= K)
        return attn__error(ATTN_EINVAL, "%s: bad shape B %d, T %d, Cin %d, Cout %d, K %d, pad %d (0 <= pad < K)", what, B,
                           T, Cin, Cout, K, pad);
    for (int b = 0; lengths && b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T)
            return attn__error(ATTN_EINVAL, "%s: lengths[%d] = %d is outside [0, %d]", what, b, (int)lengths[b], T);
    return ATTN_OK;
}

int attn_conv1d_forward(float *y, const float *x, const int32_t *lengths, const float *W, const float *b, int B, int T,
                        int Cin, int Cout, int K, int pad) {
    if (!y || !x || !W) return attn__error(ATTN_EINVAL, "conv1d: NULL y, x or W");
    int st = check_args("conv1d", lengths, B, T, Cin, Cout, K, pad);
    if (st) return st;
    float *work = attn_malloc(attn__conv1d_work_floats(Cin, Cout, K) * sizeof(float));
    if (!work) return attn__error(ATTN_ENOMEM, "conv1d: out of memory");
    attn__conv1d_forward(y, x, lengths, W, b, B, T, Cin, Cout, K, pad, work);
    attn_free(work);
    return ATTN_OK;
}

int attn_conv1d_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const int32_t *lengths,
                         const float *W, int B, int T, int Cin, int Cout, int K, int pad) {
    if (!dy || (dx && !W) || (dW && !x)) return attn__error(ATTN_EINVAL, "conv1d backward: NULL dy, x or W");
    int st = check_args("conv1d backward", lengths, B, T, Cin, Cout, K, pad);
    if (st) return st;
    float *work = attn_malloc(attn__conv1d_work_floats(Cin, Cout, K) * sizeof(float));
    if (!work) return attn__error(ATTN_ENOMEM, "conv1d backward: out of memory");
    attn__conv1d_backward(dx, 1, dW, 1, db, 1, dy, x, lengths, W, B, T, Cin, Cout, K, pad, work);
    attn_free(work);
    return ATTN_OK;
}
