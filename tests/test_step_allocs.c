/* Repeated training steps allocate nothing: after a warm-up step, two more steps of the same
 * shapes (forward, backward, optimiser update) make no call to the allocation hook. Counted
 * from after attn_graph_reset, whose merge of the arena's chunks into one is the arena's own
 * growth; the arena then holds each step whole. Covers a small Transformer (encoder
 * self-attention, causal decoder self-attention and cross-attention of other shapes, grouped
 * heads, dropout) and small seq2seq models (additive attention over a GRU, the general score
 * over a bidirectional LSTM), on every instruction-set path this CPU runs. What it guards:
 * attention plans the graph keeps (autograd/ag.h, ag_plan) and the fast matrix product's
 * packing buffer kept per thread (kernels/x86/attn_fast.h), gradient clipping's partial sums
 * and the rotary encoding's tables on the stack. */
#include <stdio.h>
#include <stdlib.h>

#include "attn/seq2seq.h"
#include "attn/train.h"
#include "attn/transformer.h"
#include "testutil.h"

/* ---- The counting allocator ------------------------------------------------------------- */

static int counting;
static long n_allocs;
static size_t last_size;

static void *count_malloc(size_t n, void *user) {
    (void)user;
    if (counting) n_allocs++, last_size = n;
    return malloc(n);
}

static void count_free(void *p, void *user) {
    (void)user;
    free(p);
}

/* One step on a model: the loss of its batch on g, recorded and differentiated. */
typedef attn_var *(*loss_fn)(void *model, attn_graph *g, const void *batch);

/* Runs one warm-up step and then two counted steps, which must allocate nothing. */
static void check_steps(const char *what, void *model, attn_params *ps, loss_fn loss, const void *batch) {
    attn_optim_config oc = attn_optim_defaults(ATTN_OPTIM_ADAM);
    attn_optim *opt = NULL;
    attn_graph *g = NULL;
    CHECK(attn_optim_new(&oc, ps, &opt) == ATTN_OK, "%s: optimiser: %s", what, attn_last_error());
    CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s: graph: %s", what, attn_last_error());
    n_allocs = 0;
    for (int step = 0; opt && g && step < 3; step++) {
        attn_graph_reset(g);
        attn_graph_seed(g, 5 + (uint64_t)step);
        counting = step >= 1;
        attn_params_zero_grad(ps);
        attn_var *l = loss(model, g, batch);
        int st = attn_graph_backward(g, l);
        float norm;
        if (!st) st = attn_clip_grad_norm(ps, 1.0f, &norm);
        if (!st) st = attn_optim_step(opt, 1e-3);
        counting = 0;
        if (st) {
            CHECK(0, "%s: step %d: %s", what, step, attn_last_error());
            n_allocs = -1;
            break;
        }
    }
    attn_graph_free(g);
    attn_optim_free(opt);
    CHECK(n_allocs == 0, "%s on %s: %ld allocations in two training steps after the first (the last of %zu bytes)", what,
          attn_get_isa(), n_allocs, last_size);
}

/* A batch of B sentences: sources src (B, S) of lengths len (B) in [S - 3, S] ending in <eos>,
 * padded; targets tout (B, T) ending in <eos> and the decoder inputs tin (B, T) (<bos>, then
 * tout shifted). Time-major (S, B) and (T, B) when tm. */
static void fill_batch(int B, int S, int T, int tm, int32_t *src, int32_t *len, int32_t *tin, int32_t *tout) {
    for (int b = 0; b < B; b++) {
        len[b] = S - b % 4;
        for (int i = 0; i < S; i++)
            src[tm ? i * B + b : b * S + i] = i < len[b] - 1 ? 4 + (b + 3 * i) % 8 : i == len[b] - 1 ? ATTN_EOS : ATTN_PAD;
        for (int t = 0; t < T; t++) {
            int at = tm ? t * B + b : b * T + t, prev = tm ? at - B : at - 1;
            tout[at] = t < T - 1 ? 4 + (2 * b + t) % 8 : ATTN_EOS;
            tin[at] = t ? tout[prev] : ATTN_BOS;
        }
    }
}

/* ---- A small Transformer ----------------------------------------------------------------- */

enum { TB = 6, TS = 7, TT = 5 };

static attn_var *transformer_loss(void *model, attn_graph *g, const void *batch) {
    return attn_transformer_loss(model, g, batch, 0.1f, NULL);
}

static void test_transformer(attn_pos_kind pos) {
    attn_transformer_config c = attn_transformer_config_default();
    c.pos = pos;
    c.src_vocab = 14, c.tgt_vocab = 12;
    c.d_model = 32, c.heads = 4, c.kv_heads = 2, c.d_ff = 48;
    c.enc_layers = 2, c.dec_layers = 2, c.max_len = 16, c.dropout = 0.1f;
    attn_transformer *m = NULL;
    CHECK(attn_transformer_new(&c, 3, &m) == ATTN_OK, "transformer: %s", attn_last_error());
    if (!m) return;
    int32_t src[TB * TS], len[TB], tin[TB * TT], tout[TB * TT];
    fill_batch(TB, TS, TT, 0, src, len, tin, tout);
    attn_transformer_batch bt = {.B = TB, .S = TS, .T = TT, .src = src, .src_len = len, .tgt_in = tin, .tgt_out = tout};
    char what[64];
    snprintf(what, sizeof what, "transformer, %s positions", attn_pos_name(pos));
    check_steps(what, m, attn_transformer_params(m), transformer_loss, &bt);
    attn_transformer_free(m);
}

/* ---- Small seq2seq models --------------------------------------------------------------- */

enum { SB = 8, SS = 6, ST = 5 };

static attn_var *s2s_loss(void *model, attn_graph *g, const void *batch) {
    return attn_s2s_loss(model, g, batch, 0.1f);
}

static void test_s2s(attn_s2s_attention att, attn_s2s_rnn rnn, int bidir) {
    attn_s2s_config c = attn_s2s_defaults();
    c.attention = att, c.rnn = rnn, c.bidirectional = bidir;
    c.src_vocab = 14, c.tgt_vocab = 12, c.emb = 16, c.hidden = 16, c.attn_size = 16, c.dropout = 0.2f;
    attn_s2s *m = NULL;
    CHECK(attn_s2s_new(&c, 4, &m) == ATTN_OK, "seq2seq: %s", attn_last_error());
    if (!m) return;
    int32_t src[SS * SB], len[SB], tin[ST * SB], tout[ST * SB];
    fill_batch(SB, SS, ST, 1, src, len, tin, tout);
    attn_s2s_batch bt = {.B = SB, .S = SS, .T = ST, .src = src, .src_len = len, .tgt_in = tin, .tgt_out = tout};
    char what[64];
    snprintf(what, sizeof what, "seq2seq %s %s", attn_s2s_attention_name(att), attn_s2s_rnn_name(rnn));
    check_steps(what, m, attn_s2s_params(m), s2s_loss, &bt);
    attn_s2s_free(m);
}

int main(void) {
    static const char *const ISAS[] = {"ref", "avx2", "avx512"};
    attn_set_threads(2);
    attn_set_allocator(count_malloc, count_free, NULL);
    for (int i = 0; i < 3; i++) {
        if (attn_set_isa(ISAS[i]) != ATTN_OK) {
            printf("SKIP %s: this CPU does not run it\n", ISAS[i]);
            continue;
        }
        test_transformer(ATTN_POS_SINUSOIDAL);
        test_transformer(ATTN_POS_ROPE);
        test_s2s(ATTN_S2S_BAHDANAU, ATTN_S2S_GRU, 0);
        test_s2s(ATTN_S2S_LUONG_GENERAL, ATTN_S2S_LSTM, 1);
    }
    attn_set_allocator(NULL, NULL, NULL);
    return tu_summary("test_step_allocs");
}
