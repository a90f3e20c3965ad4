/* Tests of the Transformer's use of programmable attention (attn/transformer.h): dropout on
 * the attention weights inside the fused kernels (attn_dropout) and learned ALiBi slopes
 * (alibi_learn), checked against independent things:
 *  - the config's JSON round trip, old configs read with the defaults, bad values refused;
 *  - learned slopes start at the paper's geometric slopes (2^(-8 (h + 1) / H), written out
 *    here) and then the model computes what the fixed-slope model computes (bias mask vs
 *    attn_mods' ALiBi); attention dropout is off in evaluation mode;
 *  - the slopes' gradients (dSlopes of the kernels) and the gradients through attention
 *    dropout against finite differences of the loss;
 *  - seeded attention dropout: the same for 1 and 2 threads, another seed another loss;
 *  - a tiny model trains with each option (the loss falls, the slopes move), and decoding the
 *    trained learned-slope model step by step with the key/value cache (bottom-right offset
 *    positions) gives the teacher-forced forward's log-probabilities, on every ISA path. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attn.h"
#include "attn/transformer.h"
#include "testutil.h"

/* A small model (E 16, H 4, 2 + 2 layers) with no other dropout, so that what differs is ours. */
static attn_transformer_config small(attn_pos_kind pos, int norm_first, int kv_heads) {
    attn_transformer_config c = attn_transformer_config_default();
    c.src_vocab = 12, c.tgt_vocab = 10, c.d_model = 16, c.heads = 4, c.kv_heads = kv_heads, c.d_ff = 20;
    c.enc_layers = c.dec_layers = 2, c.max_len = 24;
    c.pos = pos, c.norm_first = norm_first, c.dropout = 0.0f, c.share = ATTN_SHARE_NONE;
    return c;
}

static attn_transformer *model(attn_transformer_config c, uint64_t seed) {
    attn_transformer *m = NULL;
    CHECK(attn_transformer_new(&c, seed, &m) == ATTN_OK, "new: %s", attn_last_error());
    return m;
}

/* Two source rows (lengths 5 and 3) and their targets, as the other Transformer tests use. */
static int32_t SRC[10] = {4, 5, 6, 7, 3, 8, 9, 3, 0, 0}, LEN[2] = {5, 3};
static int32_t TIN[8] = {2, 4, 5, 6, 2, 7, 8, 0}, TOUT[8] = {4, 5, 6, 3, 7, 8, 3, 0};
static const attn_transformer_batch BATCH = {.B = 2, .S = 5, .T = 4, .src = SRC, .src_len = LEN, .tgt_in = TIN, .tgt_out = TOUT};

/* The loss of a training-mode graph seeded with `seed` (the attention dropout masks); with
 * backward, the parameters' gradients are accumulated. */
static double loss_at(attn_transformer *m, uint64_t seed, int backward) {
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_seed(g, seed);
    if (!backward) attn_graph_set_grad(g, 0);
    attn_var *l = attn_transformer_loss(m, g, &BATCH, 0.1f, NULL);
    double v = l ? l->data[0] : NAN;
    if (backward) CHECK(l && attn_graph_backward(g, l) == ATTN_OK, "backward: %s", attn_last_error());
    attn_graph_free(g);
    return v;
}

/* Log-probabilities (T, V) of one sentence by the teacher-forced forward in evaluation mode. */
static int eval_logp(attn_transformer *m, const int32_t *src, int S, const int32_t *tgt_in, int T, float *logp) {
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    int32_t len = S;
    attn_transformer_batch b = {.B = 1, .S = S, .T = T, .src = src, .src_len = &len, .tgt_in = tgt_in};
    attn_var *y = attn_ag_log_softmax(g, attn_transformer_forward(m, g, &b, NULL));
    int st = attn_graph_status(g);
    if (y) memcpy(logp, y->data, (size_t)y->numel * sizeof(float));
    attn_graph_free(g);
    return st;
}

/* Central differences of the loss at entries of parameter `name` against its gradient. */
static void finite_differences(attn_transformer *m, const char *name, uint64_t seed, const char *what) {
    attn_params *ps = attn_transformer_params(m);
    attn_param *p = attn_params_find(ps, name);
    CHECK(p != NULL, "%s: no parameter %s", what, name);
    if (!p) return;
    attn_params_zero_grad(ps);
    loss_at(m, seed, 1);
    for (int e = 0; e < 3; e++) {
        int64_t idx = (int64_t)(((double)e + 0.37) / 3.0 * (double)p->numel);
        float keep = p->data[idx];
        const float h = 3e-3f;
        p->data[idx] = keep + h;
        double up = loss_at(m, seed, 0);
        p->data[idx] = keep - h;
        double dn = loss_at(m, seed, 0);
        p->data[idx] = keep;
        double fd = (up - dn) / (2.0 * h), an = p->grad[idx];
        CHECK(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd), "%s %s[%lld]: finite difference %.6g, backward %.6g", what, name,
              (long long)idx, fd, an);
    }
}

/* ---- Config ---------------------------------------------------------------------------- */

static void test_config(void) {
    attn_transformer_config c = small(ATTN_POS_ALIBI, 1, 2), d;
    c.attn_dropout = 0.25f, c.alibi_learn = 1;
    char *json = NULL;
    CHECK(attn_transformer_config_to_json(&c, &json) == ATTN_OK, "to json");
    CHECK(json && strstr(json, "\"attn_dropout\": 0.25") && strstr(json, "\"alibi_learn\": true"), "json fields: %s", json);
    CHECK(json && attn_transformer_config_from_json(json, &d) == ATTN_OK, "from json: %s", attn_last_error());
    CHECK(!memcmp(&c, &d, sizeof c), "JSON round trip");
    attn_free(json);
    /* A model saved before these fields existed loads as it was trained. */
    CHECK(attn_transformer_config_from_json("{\"kind\": \"transformer\", \"src_vocab\": 10, \"tgt_vocab\": 10, \"pos\": \"alibi\"}",
                                            &d) == ATTN_OK && d.attn_dropout == 0.0f && d.alibi_learn == 0,
          "old config: attn_dropout 0, fixed slopes");
    CHECK(attn_transformer_config_from_json("{\"kind\": \"transformer\", \"src_vocab\": 10, \"tgt_vocab\": 10, \"attn_dropout\": 1.5}",
                                            &d) == ATTN_EINVAL, "attn_dropout 1.5 refused");
    CHECK(attn_transformer_config_from_json("{\"kind\": \"transformer\", \"src_vocab\": 10, \"tgt_vocab\": 10, \"pos\": \"alibi\", "
                                            "\"alibi_learn\": 1}", &d) == ATTN_EFORMAT, "alibi_learn must be a boolean");
    float bad[] = {-0.1f, 1.0f, NAN};
    for (int i = 0; i < 3; i++) {
        attn_transformer_config e = small(ATTN_POS_SINUSOIDAL, 0, 4);
        e.attn_dropout = bad[i];
        CHECK(attn_transformer_config_check(&e) == ATTN_EINVAL, "attn_dropout %g refused", (double)bad[i]);
    }
    attn_transformer_config e = small(ATTN_POS_SINUSOIDAL, 0, 4);
    e.alibi_learn = 1;
    CHECK(attn_transformer_config_check(&e) == ATTN_EINVAL && strstr(attn_last_error(), "alibi"),
          "alibi_learn without ALiBi refused: %s", attn_last_error());
}

/* ---- Learned slopes start as the fixed ones ------------------------------------------------ */

static void test_slopes_start_fixed(void) {
    const int S = 7, T = 6;
    int32_t src[7] = {4, 5, 6, 7, 8, 9, 3}, tgt[6] = {2, 4, 5, 6, 7, 8};
    attn_transformer_config cf = small(ATTN_POS_ALIBI, 0, 4), cl = cf;
    cl.alibi_learn = 1;
    attn_transformer *mf = model(cf, 7), *ml = model(cl, 7);
    if (!mf || !ml) goto done;
    attn_params *pl = attn_transformer_params(ml);
    for (int l = 0; l < 2; l++) {
        char name[64];
        snprintf(name, sizeof name, "decoder.layers.%d.self_attn.alibi_slopes", l);
        attn_param *p = attn_params_find(pl, name);
        CHECK(p && p->numel == 4, "%s (4)", name);
        for (int h = 0; p && h < 4; h++)
            CHECK(p->data[h] == (float)exp2(-8.0 * (h + 1) / 4), "%s[%d] = %g, the paper's 2^-%d", name, h, (double)p->data[h], 2 * (h + 1));
    }
    CHECK(!attn_params_find(pl, "encoder.layers.0.self_attn.alibi_slopes"), "the encoder's slopes stay fixed");
    CHECK(attn_params_numel(pl) == attn_params_numel(attn_transformer_params(mf)) + 8, "8 more parameters");
    float a[6 * 10], b[6 * 10];
    CHECK(eval_logp(mf, src, S, tgt, T, a) == ATTN_OK && eval_logp(ml, src, S, tgt, T, b) == ATTN_OK, "forward: %s", attn_last_error());
    tu_close("learned slopes at their start = fixed ALiBi", b, a, (size_t)T * 10, 1e-5, 1e-5);
done:
    attn_transformer_free(mf);
    attn_transformer_free(ml);
}

/* ---- Attention dropout ----------------------------------------------------------------- */

static void test_attn_dropout(void) {
    const int S = 7, T = 6;
    int32_t src[7] = {4, 5, 6, 7, 8, 9, 3}, tgt[6] = {2, 4, 5, 6, 7, 8};
    attn_transformer_config c0 = small(ATTN_POS_SINUSOIDAL, 1, 2), c = c0;
    c.attn_dropout = 0.3f;
    attn_transformer *m0 = model(c0, 31), *m = model(c, 31);
    if (!m0 || !m) goto done;
    float a[6 * 10], b[6 * 10];
    CHECK(eval_logp(m0, src, S, tgt, T, a) == ATTN_OK && eval_logp(m, src, S, tgt, T, b) == ATTN_OK, "forward: %s", attn_last_error());
    CHECK(!memcmp(a, b, sizeof a), "evaluation mode: no attention dropout");
    double l0 = loss_at(m0, 1, 0), l1 = loss_at(m, 1, 0), l1b = loss_at(m, 1, 0), l2 = loss_at(m, 2, 0);
    attn_set_threads(1);
    double l1t = loss_at(m, 1, 0);
    attn_set_threads(2);
    CHECK(l1 == l1b && l1 == l1t, "attention dropout: one seed, one loss for any thread count (%.9g %.9g %.9g)", l1, l1b, l1t);
    CHECK(l1 != l2 && l1 != l0, "attention dropout: masks follow the seed and change the loss (%.9g %.9g %.9g)", l1, l2, l0);
    /* The backward drops what the forward dropped, in each attention kind. */
    finite_differences(m, "encoder.layers.0.self_attn.in_proj_weight", 5, "attention dropout");
    finite_differences(m, "decoder.layers.1.self_attn.in_proj_weight", 5, "attention dropout");
    finite_differences(m, "decoder.layers.0.multihead_attn.in_proj_weight", 5, "attention dropout");
done:
    attn_transformer_free(m0);
    attn_transformer_free(m);
}

/* ---- The slopes' gradients ---------------------------------------------------------------- */

static void test_slope_gradients(void) {
    for (int nf = 0; nf < 2; nf++) {
        attn_transformer_config c = small(ATTN_POS_ALIBI, nf, 2);
        c.alibi_learn = 1, c.attn_dropout = nf ? 0.2f : 0.0f; /* pre-LN also through dropped weights */
        attn_transformer *m = model(c, 41 + nf);
        if (!m) continue;
        finite_differences(m, "decoder.layers.0.self_attn.alibi_slopes", 3, nf ? "pre-LN" : "post-LN");
        finite_differences(m, "decoder.layers.1.self_attn.alibi_slopes", 3, nf ? "pre-LN" : "post-LN");
        attn_transformer_free(m);
    }
}

/* ---- Training, then decoding the trained model ------------------------------------------- */

/* Trains m for `steps` Adam steps on reversing 5 random tokens; returns the mean loss of the
 * first and last 10 steps. */
static void train_reversal(attn_transformer *m, int steps, double *first, double *last) {
    attn_params *ps = attn_transformer_params(m);
    attn_optim_config oc = attn_optim_defaults(ATTN_OPTIM_ADAM);
    oc.beta2 = 0.98;
    attn_optim *opt; CHECK(attn_optim_new(&oc, ps, &opt) == ATTN_OK, "%s", attn_last_error());
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_seed(g, 3);
    enum { B = 16, N = 5, W = N + 1 };
    int32_t src[B * W], len[B], tin[B * W], tout[B * W];
    attn_rng r;
    attn_rng_seed(&r, 1);
    *first = *last = 0;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            len[b] = W;
            int32_t *x = src + b * W, *yi = tin + b * W, *yo = tout + b * W;
            for (int i = 0; i < N; i++) x[i] = 4 + (int32_t)(attn_rng_u32(&r) % 6);
            x[N] = ATTN_EOS, yi[0] = ATTN_BOS, yo[N] = ATTN_EOS;
            for (int i = 0; i < N; i++) yo[i] = yi[i + 1] = x[N - 1 - i];
        }
        attn_transformer_batch bt = {.B = B, .S = W, .T = W, .src = src, .src_len = len, .tgt_in = tin, .tgt_out = tout};
        attn_graph_reset(g);
        attn_params_zero_grad(ps);
        attn_var *l = attn_transformer_loss(m, g, &bt, 0.0f, NULL);
        if (!l || attn_graph_backward(g, l) != ATTN_OK) {
            CHECK(0, "training step: %s", attn_last_error());
            break;
        }
        if (s < 10) *first += l->data[0] / 10;
        if (s >= steps - 10) *last += l->data[0] / 10;
        attn_optim_step(opt, 3e-3 * fmin(1.0, (s + 1) / 20.0));
    }
    attn_graph_free(g);
    attn_optim_free(opt);
}

/* The key/value-cached decoder's log-probabilities against the teacher-forced forward's, on
 * every ISA path this CPU runs. */
static void check_cache(attn_transformer *m, const char *what) {
    const int S = 7, T = 6, V = attn_transformer_get_config(m)->tgt_vocab;
    int32_t src[7] = {4, 5, 6, 7, 8, 9, 3}, tgt[6] = {2, 8, 9, 7, 6, 5};
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    float *a = malloc((size_t)T * V * sizeof(float)), *b = malloc((size_t)T * V * sizeof(float));
    for (int s = 0; s < 3 && a && b; s++) {
        if (attn_set_isa(isas[s]) != ATTN_OK) continue;
        CHECK(eval_logp(m, src, S, tgt, T, a) == ATTN_OK, "forward: %s", attn_last_error());
        CHECK(attn_transformer_step_logprobs(m, src, S, tgt, T, b) == ATTN_OK, "steps: %s", attn_last_error());
        char tag[128];
        snprintf(tag, sizeof tag, "%s: cached decoder = forward (%s)", what, isas[s]);
        tu_close(tag, b, a, (size_t)T * V, 1e-4, 1e-4);
    }
    attn_set_isa(start);
    free(a), free(b);
}

static void test_training(void) {
    for (int k = 0; k < 2; k++) {
        attn_transformer_config c = small(k ? ATTN_POS_ALIBI : ATTN_POS_SINUSOIDAL, 1, k ? 2 : 4);
        c.src_vocab = c.tgt_vocab = 10;
        if (k) c.alibi_learn = 1;
        else c.attn_dropout = 0.1f;
        const char *what = k ? "learned slopes" : "attention dropout";
        attn_transformer *m = model(c, 2);
        if (!m) continue;
        float s0[2][4] = {{0}};
        attn_params *ps = attn_transformer_params(m);
        attn_param *sl[2] = {attn_params_find(ps, "decoder.layers.0.self_attn.alibi_slopes"),
                             attn_params_find(ps, "decoder.layers.1.self_attn.alibi_slopes")};
        for (int l = 0; k && l < 2; l++)
            if (sl[l]) memcpy(s0[l], sl[l]->data, sizeof s0[l]);
        double first, last;
        train_reversal(m, 150, &first, &last);
        CHECK(last < 0.5 * first, "%s: the loss falls (%.4g -> %.4g over 150 steps)", what, first, last);
        if (k) {
            double moved = 0;
            for (int l = 0; l < 2; l++)
                for (int h = 0; sl[l] && h < 4; h++) moved = fmax(moved, fabs(sl[l]->data[h] - s0[l][h]));
            CHECK(sl[0] && sl[1] && moved > 1e-3, "learned slopes move from the paper's (by at most %g)", moved);
            check_cache(m, "trained learned slopes, pre-LN, grouped heads");
        }
        attn_transformer_free(m);
    }
    /* Post-LN, all heads, slopes of either sign (negative: attention to far keys grows). */
    attn_transformer_config c = small(ATTN_POS_ALIBI, 0, 4);
    c.alibi_learn = 1;
    attn_transformer *m = model(c, 9);
    if (!m) return;
    float set[4] = {0.7f, -0.3f, 0.05f, 1.5f};
    attn_param *p = attn_params_find(attn_transformer_params(m), "decoder.layers.1.self_attn.alibi_slopes");
    if (p) memcpy(p->data, set, sizeof set);
    check_cache(m, "post-LN, slopes of either sign");
    attn_transformer_free(m);
}

int main(void) {
    attn_set_threads(2);
    test_config();
    test_slopes_start_fixed();
    test_attn_dropout();
    test_slope_gradients();
    test_training();
    return tu_summary("test_transformer_mods");
}
