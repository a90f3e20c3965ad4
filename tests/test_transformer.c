/* Tests of the Transformer (attn/transformer.h):
 *  - forward, loss and every parameter's gradient against torch.nn.Transformer, from weights
 *    exported from PyTorch to safetensors (tools/gen_transformer_refs.py): post-LN and pre-LN,
 *    sinusoidal, learned and no positions, ReLU and GELU, tied and separate tables;
 *  - the key/value-cached decoder against the teacher-forced forward, for every position
 *    encoding, grouped key/value heads and both norm placements;
 *  - padding invariance; the seed's claim that attention without positions is blind to order;
 *  - finite differences through rope, alibi and grouped heads (no PyTorch equivalent);
 *  - greedy and beam search (scores recomputed), batched decoding, JSON and checkpoints;
 *  - a tiny model learns to reverse sequences;
 *  - attention dropout (attn_dropout) and learned ALiBi slopes (alibi_learn), both through
 *    attn_mods in the fused kernels: the config's JSON (old configs read with the defaults,
 *    bad values refused); learned slopes start at the paper's 2^(-8 (h + 1) / H), written out
 *    here, where the model computes what fixed ALiBi's bias mask computes; attention dropout
 *    off in evaluation, seeded and thread-count free; the slopes' gradients (the kernels'
 *    dSlopes) and those through dropped weights against finite differences; a model trains
 *    with each (the loss falls, the slopes move), and the trained learned-slope model decoded
 *    step by step with the cache (bottom-right offset positions) gives the teacher-forced
 *    forward's log-probabilities on every ISA path. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attn.h"
#include "attn/transformer.h"
#include "models/transformer_internal.h"
#include "testutil.h"

#define DATA "data/transformer/"

/* ---- PyTorch references ---------------------------------------------------------------- */

static int32_t *ids_of(const attn_st *st, const char *name, int64_t *n) {
    attn_array a = {0};
    if (attn_st_get_f32(st, name, &a) != ATTN_OK) return NULL;
    int64_t k = attn_array_numel(&a);
    int32_t *ids = malloc((size_t)k * sizeof(int32_t));
    for (int64_t i = 0; i < k; i++) ids[i] = (int32_t)((float *)a.data)[i];
    if (n) *n = k;
    attn_array_free(&a);
    return ids;
}

static void test_pytorch_case(const char *name) {
    char path[256], wpath[256];
    snprintf(path, sizeof path, DATA "%s.safetensors", name);
    snprintf(wpath, sizeof wpath, DATA "%s.weights.safetensors", name);
    attn_st *st = NULL;
    CHECK(attn_st_open(path, &st) == ATTN_OK, "%s: %s", path, attn_last_error());
    if (!st) return;
    attn_transformer_config cfg;
    const char *json = attn_st_metadata(st, "config");
    CHECK(json && attn_transformer_config_from_json(json, &cfg) == ATTN_OK, "%s config: %s", name, attn_last_error());
    attn_transformer *m = NULL;
    CHECK(attn_transformer_new(&cfg, 7, &m) == ATTN_OK, "%s new: %s", name, attn_last_error());
    if (!m) goto out;
    attn_params *ps = attn_transformer_params(m);
    CHECK(attn_params_load(ps, wpath, 0) == ATTN_OK, "%s load weights: %s", name, attn_last_error());
    int64_t n;
    int32_t *src = ids_of(st, "src", &n), *src_len = ids_of(st, "src_len", NULL);
    int32_t *tgt_in = ids_of(st, "tgt_in", NULL), *tgt_out = ids_of(st, "tgt_out", NULL);
    attn_array want = {0};
    attn_st_get_f32(st, "logits", &want);
    int B = (int)want.shape[0], T = (int)want.shape[1], V = (int)want.shape[2], S = (int)(n / B);
    attn_transformer_batch b = {.B = B, .S = S, .T = T, .src = src, .src_len = src_len, .tgt_in = tgt_in, .tgt_out = tgt_out};
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_params_zero_grad(ps);
    attn_var *logits = attn_transformer_forward(m, g, &b, NULL);
    attn_var *loss = attn_ag_cross_entropy(g, logits, tgt_out, ATTN_PAD, 0.1f);
    CHECK(attn_graph_backward(g, loss) == ATTN_OK, "%s backward: %s", name, attn_last_error());
    if (logits) {
        char what[128];
        snprintf(what, sizeof what, "%s logits", name);
        tu_close(what, logits->data, want.data, (size_t)B * T * V, 1e-4, 1e-4);
        attn_array wl = {0};
        attn_st_get_f32(st, "loss", &wl);
        snprintf(what, sizeof what, "%s loss", name);
        tu_close(what, loss->data, wl.data, 1, 1e-5, 1e-5);
        attn_array_free(&wl);
    }
    for (int i = 0; i < attn_params_count(ps); i++) {
        attn_param *p = attn_params_at(ps, i);
        char gname[200], what[240];
        snprintf(gname, sizeof gname, "grad.%s", p->name);
        attn_array ga = {0};
        CHECK(attn_st_get_f32(st, gname, &ga) == ATTN_OK, "%s: no %s", name, gname);
        if (ga.data && attn_array_numel(&ga) == p->numel) {
            snprintf(what, sizeof what, "%s %s", name, gname);
            tu_close(what, p->grad, ga.data, (size_t)p->numel, 2e-3, 2e-5);
        }
        attn_array_free(&ga);
    }
    attn_graph_free(g);
    attn_array_free(&want);
    free(src), free(src_len), free(tgt_in), free(tgt_out);
out:
    attn_transformer_free(m);
    attn_st_free(st);
}

/* ---- Helpers ----------------------------------------------------------------------------- */

static attn_transformer_config tiny(attn_pos_kind pos, int norm_first, int kv_heads) {
    attn_transformer_config c = attn_transformer_config_default();
    c.src_vocab = 12, c.tgt_vocab = 10;
    c.d_model = 16, c.heads = 4, c.kv_heads = kv_heads, c.d_ff = 20;
    c.enc_layers = 2, c.dec_layers = 2, c.max_len = 24;
    c.pos = pos, c.norm_first = norm_first, c.dropout = 0.0f;
    return c;
}

static attn_transformer *make(attn_transformer_config c, uint64_t seed) {
    attn_transformer *m = NULL;
    CHECK(attn_transformer_new(&c, seed, &m) == ATTN_OK, "new: %s", attn_last_error());
    return m;
}

/* Log-softmax rows of the teacher-forced forward (B = 1) into logp (T, V). */
static int forward_logp(attn_transformer *m, const int32_t *src, int S, const int32_t *tgt_in, int T, float *logp) {
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

/* ---- The cached decoder equals the teacher-forced forward -------------------------------- */

static void test_cache_consistency(void) {
    const int S = 7, T = 6;
    int32_t src[7] = {4, 5, 6, 7, 8, 9, 3}, tgt[6] = {2, 4, 5, 6, 7, 8};
    for (int pos = ATTN_POS_NONE; pos <= ATTN_POS_ALIBI; pos++)
        for (int nf = 0; nf < 2; nf++)
            for (int kv = 4; kv >= 2; kv -= 2) {
                attn_transformer_config c = tiny((attn_pos_kind)pos, nf, kv);
                if (pos == ATTN_POS_LEARNED && kv == 2) c.activation = ATTN_ACT_GELU, c.share = ATTN_SHARE_NONE;
                attn_transformer *m = make(c, 11 + pos);
                if (!m) continue;
                int V = c.tgt_vocab;
                float *a = malloc((size_t)T * V * sizeof(float)), *b = malloc((size_t)T * V * sizeof(float));
                CHECK(forward_logp(m, src, S, tgt, T, a) == ATTN_OK, "forward: %s", attn_last_error());
                CHECK(attn_transformer_step_logprobs(m, src, S, tgt, T, b) == ATTN_OK, "steps: %s", attn_last_error());
                char what[96];
                snprintf(what, sizeof what, "cached decoder, pos %s, %s-LN, kv_heads %d", attn_pos_name((attn_pos_kind)pos),
                         nf ? "pre" : "post", kv);
                tu_close(what, b, a, (size_t)T * V, 1e-4, 1e-4);
                free(a), free(b);
                attn_transformer_free(m);
            }
}

/* ---- Padding: a padded row gives what the row alone gives --------------------------------- */

static void test_padding(void) {
    for (int pos = ATTN_POS_NONE; pos <= ATTN_POS_ALIBI; pos++) {
        attn_transformer_config c = tiny((attn_pos_kind)pos, 1, 2);
        attn_transformer *m = make(c, 5);
        if (!m) continue;
        int V = c.tgt_vocab;
        /* Row 0: S = 6, T = 5; row 1: S = 3 (padded to 6), T = 3 (padded to 5). */
        int32_t src[12] = {4, 5, 6, 7, 8, 3, 9, 10, 3, 0, 0, 0}, len[2] = {6, 3};
        int32_t tgt[10] = {2, 4, 5, 6, 7, 2, 8, 9, 0, 0};
        attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
        attn_graph_set_grad(g, 0);
        attn_transformer_batch b = {.B = 2, .S = 6, .T = 5, .src = src, .src_len = len, .tgt_in = tgt};
        attn_var *lg = attn_ag_log_softmax(g, attn_transformer_forward(m, g, &b, NULL));
        CHECK(lg != NULL, "padded forward: %s", attn_last_error());
        float alone[3 * 10];
        CHECK(forward_logp(m, src + 6, 3, tgt + 5, 3, alone) == ATTN_OK, "alone");
        char what[64];
        snprintf(what, sizeof what, "padding invariance, pos %s", attn_pos_name((attn_pos_kind)pos));
        if (lg) tu_close(what, lg->data + 5 * V, alone, 3 * (size_t)V, 1e-5, 1e-5);
        attn_graph_free(g);
        attn_transformer_free(m);
    }
}

/* ---- Order: without positions the source is a bag of words -------------------------------- */

static void test_order_blindness(void) {
    int32_t src[6] = {4, 5, 6, 7, 8, 3}, perm[6] = {7, 3, 5, 8, 4, 6}, tgt[4] = {2, 4, 5, 6};
    for (int pos = ATTN_POS_NONE; pos <= ATTN_POS_ALIBI; pos++) {
        attn_transformer_config c = tiny((attn_pos_kind)pos, 0, 4);
        attn_transformer *m = make(c, 9);
        if (!m) continue;
        float a[4 * 10], b[4 * 10];
        forward_logp(m, src, 6, tgt, 4, a);
        forward_logp(m, perm, 6, tgt, 4, b);
        double diff = 0;
        for (int i = 0; i < 40; i++) diff = fmax(diff, fabs(a[i] - b[i]));
        if (pos == ATTN_POS_NONE)
            CHECK(diff < 1e-5, "without positions a permuted source must give the same output (diff %g)", diff);
        else
            CHECK(diff > 1e-3, "with %s positions a permuted source must change the output (diff %g)",
                  attn_pos_name((attn_pos_kind)pos), diff);
        attn_transformer_free(m);
    }
}

/* ---- Finite differences through rope, alibi and grouped heads ------------------------------ */

static double loss_of(attn_transformer *m, const attn_transformer_batch *b) {
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_set_grad(g, 0);
    attn_var *l = attn_transformer_loss(m, g, b, 0.1f, NULL);
    double v = l ? l->data[0] : NAN;
    attn_graph_free(g);
    return v;
}

static void test_finite_differences(void) {
    int32_t src[10] = {4, 5, 6, 7, 3, 8, 9, 3, 0, 0}, len[2] = {5, 3};
    int32_t tin[8] = {2, 4, 5, 6, 2, 7, 8, 0}, tout[8] = {4, 5, 6, 3, 7, 8, 3, 0};
    attn_transformer_batch b = {.B = 2, .S = 5, .T = 4, .src = src, .src_len = len, .tgt_in = tin, .tgt_out = tout};
    const char *names[] = {"encoder.layers.0.self_attn.in_proj_weight", "decoder.layers.1.self_attn.in_proj_weight",
                           "decoder.layers.0.multihead_attn.in_proj_weight", "decoder.layers.0.self_attn.in_proj_bias",
                           "src_embed.weight", "encoder.layers.1.linear1.weight"};
    attn_pos_kind kinds[] = {ATTN_POS_ROPE, ATTN_POS_ALIBI};
    for (int k = 0; k < 2; k++)
        for (int nf = 0; nf < 2; nf++) {
            attn_transformer_config c = tiny(kinds[k], nf, 2);
            c.share = ATTN_SHARE_NONE;
            attn_transformer *m = make(c, 21 + k);
            if (!m) continue;
            attn_params *ps = attn_transformer_params(m);
            attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
            attn_params_zero_grad(ps);
            attn_var *l = attn_transformer_loss(m, g, &b, 0.1f, NULL);
            CHECK(attn_graph_backward(g, l) == ATTN_OK, "backward: %s", attn_last_error());
            attn_graph_free(g);
            for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
                attn_param *p = attn_params_find(ps, names[i]);
                CHECK(p != NULL, "no %s", names[i]);
                if (!p) continue;
                /* entries in the q, k and v blocks of in_proj, or spread over the table */
                for (int e = 0; e < 3; e++) {
                    int64_t idx = (int64_t)(((double)e + 0.37) / 3.0 * (double)p->numel);
                    float keep = p->data[idx];
                    const float h = 1e-2f;
                    p->data[idx] = keep + h;
                    double up = loss_of(m, &b);
                    p->data[idx] = keep - h;
                    double dn = loss_of(m, &b);
                    p->data[idx] = keep;
                    double fd = (up - dn) / (2.0 * h), an = p->grad[idx];
                    CHECK(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd), "%s %s-LN %s[%lld]: finite difference %.6g, backward %.6g",
                          attn_pos_name(kinds[k]), nf ? "pre" : "post", names[i], (long long)idx, fd, an);
                }
            }
            attn_transformer_free(m);
        }
}

/* ---- Dropout: seeded, thread-count independent, and its backward right --------------------- */

static double loss_seeded(attn_transformer *m, const attn_transformer_batch *b, uint64_t seed, int backward) {
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_seed(g, seed);
    if (!backward) attn_graph_set_grad(g, 0);
    attn_var *l = attn_transformer_loss(m, g, b, 0.1f, NULL);
    double v = l ? l->data[0] : NAN;
    if (backward) CHECK(attn_graph_backward(g, l) == ATTN_OK, "backward: %s", attn_last_error());
    attn_graph_free(g);
    return v;
}

static void test_dropout(void) {
    int32_t src[10] = {4, 5, 6, 7, 3, 8, 9, 3, 0, 0}, len[2] = {5, 3};
    int32_t tin[8] = {2, 4, 5, 6, 2, 7, 8, 0}, tout[8] = {4, 5, 6, 3, 7, 8, 3, 0};
    attn_transformer_batch b = {.B = 2, .S = 5, .T = 4, .src = src, .src_len = len, .tgt_in = tin, .tgt_out = tout};
    for (int act = 0; act < 2; act++) {
        attn_transformer_config c = tiny(ATTN_POS_SINUSOIDAL, act, 4);
        c.dropout = 0.3f, c.activation = (attn_act_kind)act, c.share = ATTN_SHARE_NONE;
        attn_transformer *m = make(c, 31);
        if (!m) continue;
        double a = loss_seeded(m, &b, 1, 0), a2 = loss_seeded(m, &b, 1, 0), d = loss_seeded(m, &b, 2, 0);
        attn_set_threads(1);
        double a1 = loss_seeded(m, &b, 1, 0);
        attn_set_threads(2);
        CHECK(a == a2 && a == a1, "dropout: the same seed gives the same loss for any thread count (%.9g %.9g %.9g)", a, a2, a1);
        CHECK(a != d, "dropout: another seed drops other units (%.9g %.9g)", a, d);
        attn_params *ps = attn_transformer_params(m);
        attn_params_zero_grad(ps);
        loss_seeded(m, &b, 1, 1);
        const char *names[] = {"encoder.layers.0.linear1.weight", "decoder.layers.1.linear2.weight", "tgt_embed.weight",
                               "decoder.layers.0.self_attn.out_proj.weight"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            attn_param *p = attn_params_find(ps, names[i]);
            if (!p) continue;
            for (int e = 0; e < 3; e++) {
                int64_t idx = (int64_t)(((double)e + 0.41) / 3.0 * (double)p->numel);
                float keepv = p->data[idx];
                const float h = 3e-3f; /* small: ReLU kinks sit closer with dropout's scaling */
                p->data[idx] = keepv + h;
                double up = loss_seeded(m, &b, 1, 0);
                p->data[idx] = keepv - h;
                double dn = loss_seeded(m, &b, 1, 0);
                p->data[idx] = keepv;
                double fd = (up - dn) / (2.0 * h), an = p->grad[idx];
                CHECK(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd), "dropout (%s) %s[%lld]: finite difference %.6g, backward %.6g",
                      act ? "gelu" : "relu", names[i], (long long)idx, fd, an);
            }
        }
        attn_transformer_free(m);
    }
}

/* ---- Decoding ------------------------------------------------------------------------------ */

static void test_decoding(void) {
    attn_transformer_config c = tiny(ATTN_POS_SINUSOIDAL, 1, 2);
    attn_transformer *m = make(c, 3);
    if (!m) return;
    int V = c.tgt_vocab;
    /* Make <eos> likely enough that outputs end. */
    attn_params_find(attn_transformer_params(m), "generator.bias")->data[ATTN_EOS] += 1.5f;
    int32_t src[3 * 6] = {4, 5, 6, 7, 8, 3, 9, 10, 3, 0, 0, 0, 11, 3, 0, 0, 0, 0}, len[3] = {6, 3, 2};
    enum { CAP = 32 };
    int32_t out[3 * CAP], olen[3], out1[CAP], olen1;
    attn_transformer_result res[3], res1;
    /* Greedy: the argmax rollout of the step log-probabilities. */
    attn_decode_opts greedy = {1, 0.0f, 12, NULL};
    CHECK(attn_transformer_translate(m, 3, 6, src, len, &greedy, CAP, out, olen, res) == ATTN_OK, "greedy: %s",
          attn_last_error());
    for (int b = 0; b < 3; b++) {
        int32_t tin[CAP + 1];
        tin[0] = ATTN_BOS;
        for (int i = 0; i < olen[b]; i++) tin[i + 1] = out[b * CAP + i];
        int T = olen[b] + 1;
        float *lp = malloc((size_t)T * V * sizeof(float));
        CHECK(attn_transformer_step_logprobs(m, src + b * 6, len[b], tin, T, lp) == ATTN_OK, "steps");
        double total = 0;
        for (int t = 0; t < T; t++) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (lp[t * V + v] > lp[t * V + best]) best = v;
            int want = t < olen[b] ? out[b * CAP + t] : ATTN_EOS;
            if (t == 12) want = best; /* the length limit: no <eos> needed */
            CHECK(best == want, "greedy sentence %d step %d: argmax %d, decoded %d", b, t, best, want);
            total += lp[t * V + want];
        }
        if (olen[b] < 12) CHECK(res[b].eos && fabs(total - res[b].logp) < 1e-4 && res[b].score == res[b].logp,
                                "greedy score %g, recomputed %g", res[b].logp, total);
        free(lp);
        /* Alone, the same output (batched decoding does not mix sentences). */
        CHECK(attn_transformer_translate(m, 1, len[b], src + b * 6, &len[b], &greedy, CAP, out1, &olen1, &res1) == ATTN_OK,
              "alone");
        CHECK(olen1 == olen[b] && !memcmp(out1, out + b * CAP, (size_t)olen1 * sizeof(int32_t)),
              "sentence %d decoded alone differs", b);
    }
    /* Beam search: scores are log p / n^alpha of the hypotheses returned. */
    attn_decode_opts beam = {4, 0.7f, 12, NULL};
    CHECK(attn_transformer_translate(m, 3, 6, src, len, &beam, CAP, out, olen, res) == ATTN_OK, "beam: %s", attn_last_error());
    for (int b = 0; b < 3; b++) {
        int32_t tin[CAP + 1];
        tin[0] = ATTN_BOS;
        for (int i = 0; i < olen[b]; i++) tin[i + 1] = out[b * CAP + i];
        int T = olen[b] + 1;
        float *lp = malloc((size_t)T * V * sizeof(float));
        attn_transformer_step_logprobs(m, src + b * 6, len[b], tin, T, lp);
        double total = 0;
        int Tn = res[b].eos ? T : T - 1;
        for (int t = 0; t < Tn; t++) total += lp[t * V + (t < olen[b] ? out[b * CAP + t] : ATTN_EOS)];
        double want = total / pow(Tn, 0.7);
        CHECK(fabs(want - res[b].score) < 1e-4 && fabs(total - res[b].logp) < 1e-4, "beam sentence %d: score %g, recomputed %g", b,
              res[b].score, want);
        free(lp);
        CHECK(attn_transformer_translate(m, 1, len[b], src + b * 6, &len[b], &beam, CAP, out1, &olen1, &res1) == ATTN_OK,
              "beam alone");
        CHECK(olen1 == olen[b] && !memcmp(out1, out + b * CAP, (size_t)olen1 * sizeof(int32_t)) && fabs(res1.score - res[b].score) < 1e-5,
              "beam sentence %d decoded alone differs", b);
    }
    /* Beam 1 is greedy. */
    attn_decode_opts b1 = {1, 0.0f, 12, NULL};
    int32_t out2[3 * CAP], olen2[3];
    attn_transformer_translate(m, 3, 6, src, len, &greedy, CAP, out, olen, NULL);
    attn_transformer_translate(m, 3, 6, src, len, &b1, CAP, out2, olen2, NULL);
    int same = !memcmp(olen, olen2, sizeof olen);
    for (int b = 0; b < 3 && same; b++) same = !memcmp(out + b * CAP, out2 + b * CAP, (size_t)olen[b] * sizeof(int32_t));
    CHECK(same, "beam 1 must be greedy");
    /* Errors. */
    int32_t bad[2] = {99, 3}, blen = 2;
    CHECK(attn_transformer_translate(m, 1, 2, bad, &blen, &greedy, CAP, out, olen, NULL) == ATTN_EINVAL, "bad id");
    blen = 0;
    CHECK(attn_transformer_translate(m, 1, 2, src, &blen, &greedy, CAP, out, olen, NULL) == ATTN_EINVAL, "bad length");
    attn_transformer_free(m);
}

/* ---- The paged key/value cache ------------------------------------------------------------ */

/* Beam search and greedy decoding with the paged cache give the dense cache's translations and
 * scores bit for bit (the same attention kernel over the same keys), while copying fewer bytes
 * of keys and values: the beams share their prefix blocks and copy at most one block on write,
 * where the dense cache copies every reordered row's whole prefix. RoPE with grouped heads,
 * ALiBi, and one key/value head; hypotheses past 16 tokens cross a block. */
static void test_paged_kv(void) {
    static const attn_pos_kind pos[3] = {ATTN_POS_ROPE, ATTN_POS_ALIBI, ATTN_POS_SINUSOIDAL};
    static const int kvh[3] = {2, 4, 1};
    int32_t src[3 * 6] = {4, 5, 6, 7, 8, 3, 9, 4, 3, 0, 0, 0, 5, 5, 6, 11, 3, 0}, len[3] = {6, 3, 5};
    for (int c = 0; c < 3; c++) {
        attn_transformer *m = make(tiny(pos[c], c == 1, kvh[c]), 11 + c);
        if (!m) return;
        for (int K = 1; K <= 4; K += 3) {
            attn_decode_opts o = {K, 0.7f, 20, NULL};
            int32_t out[2][3 * 20], olen[2][3];
            attn_transformer_result res[2][3];
            int64_t bytes[2];
            for (int paged = 0; paged < 2; paged++) {
                tr_paged_kv = paged;
                int64_t b0 = tr_kv_bytes_copied;
                CHECK(attn_transformer_translate(m, 3, 6, src, len, &o, 20, out[paged], olen[paged], res[paged]) == ATTN_OK,
                      "decode (paged %d): %s", paged, attn_last_error());
                bytes[paged] = tr_kv_bytes_copied - b0;
            }
            tr_paged_kv = 1;
            int same = !memcmp(olen[0], olen[1], sizeof olen[0]);
            for (int b = 0; b < 3 && same; b++)
                same = !memcmp(out[0] + b * 20, out[1] + b * 20, (size_t)olen[0][b] * sizeof(int32_t)) &&
                       res[0][b].logp == res[1][b].logp && res[0][b].score == res[1][b].score && res[0][b].eos == res[1][b].eos;
            CHECK(same, "position kind %d, beam %d: the paged cache decodes otherwise than the dense one", c, K);
            if (K == 1) CHECK(bytes[0] == 0 && bytes[1] == 0, "greedy decoding copies no keys (%lld, %lld bytes)",
                              (long long)bytes[0], (long long)bytes[1]);
            else CHECK(bytes[0] > 0 && bytes[1] < bytes[0] / 2, "beam search: %lld bytes copied by the paged cache, %lld by "
                       "the dense one", (long long)bytes[1], (long long)bytes[0]);
        }
        attn_transformer_free(m);
    }
}

/* ---- Attention maps ------------------------------------------------------------------------ */

static void test_maps(void) {
    attn_transformer_config c = tiny(ATTN_POS_ROPE, 0, 2);
    attn_transformer *m = make(c, 4);
    if (!m) return;
    int32_t src[5] = {4, 5, 6, 7, 3}, tgt[3] = {2, 4, 5};
    attn_transformer_maps mp = {0};
    CHECK(attn_transformer_attention_maps(m, src, 5, tgt, 3, &mp) == ATTN_OK, "maps: %s", attn_last_error());
    CHECK(mp.enc_layers == 2 && mp.dec_layers == 2 && mp.heads == 4 && mp.S == 5 && mp.T == 3, "map sizes");
    if (mp.cross) {
        int ok = 1;
        for (int r = 0; r < 2 * 4 * 3; r++) {
            double s = 0;
            for (int j = 0; j < 5; j++) s += mp.cross[r * 5 + j];
            ok &= fabs(s - 1.0) < 1e-5;
        }
        CHECK(ok, "cross-attention rows sum to 1");
        /* decoder self-attention is causal */
        CHECK(mp.dec_self[1] == 0.0f && mp.dec_self[2] == 0.0f && mp.dec_self[5] == 0.0f, "causal decoder map");
    }
    /* The alignment's forward recomputes the last layer's cross-attention alone: the same bits. */
    attn_graph *g = NULL;
    attn_transformer_maps last = {0};
    int32_t len = 5;
    attn_transformer_batch b = {.B = 1, .S = 5, .T = 3, .src = src, .src_len = &len, .tgt_in = tgt};
    CHECK(attn_graph_new(0, &g) == ATTN_OK, "graph");
    if (g) {
        attn_graph_set_training(g, 0), attn_graph_set_grad(g, 0);
        CHECK(tr_forward(m, g, &b, &last, 1) != NULL, "cross_last forward: %s", attn_last_error());
        CHECK(last.cross && !last.enc_self && !last.dec_self, "cross_last keeps the cross-attention alone");
        if (last.cross && mp.cross)
            CHECK(memcmp(last.cross, mp.cross + 4 * 3 * 5, 4 * 3 * 5 * sizeof(float)) == 0,
                  "the last layer's cross-attention differs from the full maps'");
    }
    attn_graph_free(g);
    attn_transformer_maps_free(&last);
    attn_transformer_maps_free(&mp);
    attn_transformer_free(m);
}

/* ---- Config, JSON, checkpoints --------------------------------------------------------------- */

static attn_vocab *vocab_n(int n_extra, const char *prefix) {
    attn_counter *c = NULL;
    attn_counter_new(&c);
    for (int i = 0; i < n_extra; i++) {
        char t[16];
        snprintf(t, sizeof t, "%s%d", prefix, i);
        attn_counter_add(c, t, strlen(t), 100 - i, NULL);
    }
    attn_vocab *v = NULL;
    attn_vocab_build(c, 1, 0, &v);
    attn_counter_free(c);
    return v;
}

static void test_config_and_checkpoint(void) {
    attn_transformer_config c = tiny(ATTN_POS_LEARNED, 1, 2);
    c.activation = ATTN_ACT_GELU, c.share = ATTN_SHARE_NONE, c.src_tok = ATTN_TOK_SPACE;
    char *json = NULL;
    CHECK(attn_transformer_config_to_json(&c, &json) == ATTN_OK, "to json");
    attn_transformer_config d;
    CHECK(json && attn_transformer_config_from_json(json, &d) == ATTN_OK, "from json: %s", attn_last_error());
    CHECK(!memcmp(&c, &d, sizeof c), "JSON round trip");
    attn_free(json);
    CHECK(attn_transformer_config_from_json("{\"kind\": \"seq2seq\"}", &d) == ATTN_EFORMAT, "wrong kind");
    CHECK(attn_transformer_config_from_json("{\"kind\": \"transformer\", \"src_vocab\": 10, \"tgt_vocab\": 10, \"heads\": 3}", &d) ==
              ATTN_EINVAL, "d_model not a multiple of heads");
    CHECK(attn_transformer_config_from_json("{\"kind\": \"transformer\", \"src_vocab\": 10, \"tgt_vocab\": 10, \"pos\": \"x\"}", &d) ==
              ATTN_EFORMAT, "unknown pos");
    attn_transformer_config e = c;
    e.kv_heads = 3;
    CHECK(attn_transformer_config_check(&e) == ATTN_EINVAL, "kv_heads must divide heads");
    e = c, e.share = ATTN_SHARE_ALL;
    CHECK(attn_transformer_config_check(&e) == ATTN_EINVAL, "share all needs one vocabulary");
    /* The parameter names of nn.Transformer. */
    attn_transformer *m = make(c, 1);
    if (!m) return;
    attn_params *ps = attn_transformer_params(m);
    CHECK(attn_params_find(ps, "encoder.layers.1.self_attn.out_proj.weight") && attn_params_find(ps, "decoder.norm.bias") &&
              attn_params_find(ps, "decoder.layers.0.norm3.weight") && !attn_params_find(ps, "encoder.layers.0.norm3.weight"),
          "state_dict names");
    attn_param *inw = attn_params_find(ps, "decoder.layers.0.multihead_attn.in_proj_weight");
    CHECK(inw && inw->shape[0] == 16 + 2 * 8 && inw->shape[1] == 16, "grouped in_proj shape");
    /* Checkpoint round trip. */
    attn_translator *tw = NULL, *t2 = NULL;
    CHECK(attn_translator_wrap_transformer(m, &tw) == ATTN_OK, "wrap");
    CHECK(attn_translator_save(tw, "/nonexistent-dir/x", NULL) != ATTN_OK, "save without vocabularies");
    CHECK(attn_transformer_set_vocabs(m, vocab_n(8, "s"), vocab_n(6, "t")) == ATTN_OK, "vocabs: %s", attn_last_error());
    char dir[] = "/tmp/attn_tr_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char ck[64];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(attn_translator_save(tw, ck, "attn train transformer \"x\"") == ATTN_OK, "save: %s", attn_last_error());
    attn_translator_free(tw);
    CHECK(attn_translator_load(ck, &t2) == ATTN_OK, "load: %s", attn_last_error());
    attn_transformer *m2 = attn_translator_transformer(t2);
    if (m2) {
        CHECK(!memcmp(attn_transformer_get_config(m2), &c, sizeof c), "config after load");
        attn_params *p2 = attn_transformer_params(m2);
        CHECK(attn_params_numel(p2) == attn_params_numel(ps) &&
                  !memcmp(attn_params_data(p2), attn_params_data(ps), (size_t)attn_params_numel(ps) * sizeof(float)),
              "weights after load");
        CHECK(attn_vocab_size(attn_transformer_tgt_vocab(m2)) == 10 &&
                  !strcmp(attn_vocab_token(attn_transformer_src_vocab(m2), 4), "s0"),
              "vocabularies after load");
    }
    attn_translator_free(t2);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    attn_transformer_free(m);
}

/* ---- Training: a tiny model learns to reverse ------------------------------------------- */

static void test_learns_reversal(void) {
    attn_transformer_config c = attn_transformer_config_default();
    c.src_vocab = c.tgt_vocab = 10;
    c.d_model = 32, c.heads = 4, c.d_ff = 64, c.enc_layers = 1, c.dec_layers = 1, c.max_len = 16;
    c.dropout = 0.0f, c.share = ATTN_SHARE_ALL, c.norm_first = 1;
    attn_transformer *m = make(c, 2);
    if (!m) return;
    attn_params *ps = attn_transformer_params(m);
    attn_optim_config oc = attn_optim_defaults(ATTN_OPTIM_ADAM);
    oc.beta2 = 0.98;
    attn_optim *opt; CHECK(attn_optim_new(&oc, ps, &opt) == ATTN_OK, "%s", attn_last_error());
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    enum { B = 32, N = 5 };
    int32_t src[B * (N + 1)], len[B], tin[B * (N + 1)], tout[B * (N + 1)];
    attn_rng r;
    attn_rng_seed(&r, 1);
    double first = 0, last = 0;
    const int steps = 250;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            len[b] = N + 1;
            tin[b * (N + 1)] = ATTN_BOS;
            for (int i = 0; i < N; i++) src[b * (N + 1) + i] = 4 + (int32_t)(attn_rng_u32(&r) % 6);
            src[b * (N + 1) + N] = ATTN_EOS;
            for (int i = 0; i < N; i++) {
                tout[b * (N + 1) + i] = src[b * (N + 1) + N - 1 - i];
                tin[b * (N + 1) + i + 1] = tout[b * (N + 1) + i];
            }
            tout[b * (N + 1) + N] = ATTN_EOS;
        }
        attn_transformer_batch bt = {.B = B, .S = N + 1, .T = N + 1, .src = src, .src_len = len, .tgt_in = tin, .tgt_out = tout};
        attn_graph_reset(g);
        attn_params_zero_grad(ps);
        attn_var *l = attn_transformer_loss(m, g, &bt, 0.0f, NULL);
        if (attn_graph_backward(g, l) != ATTN_OK) {
            CHECK(0, "training step: %s", attn_last_error());
            break;
        }
        if (s == 0) first = l->data[0];
        last = l->data[0];
        attn_optim_step(opt, 3e-3 * fmin(1.0, (s + 1) / 30.0));
    }
    CHECK(last < 0.25 * first && last < 0.5, "reversal: loss %g -> %g after %d steps", first, last, steps);
    attn_graph_free(g);
    attn_optim_free(opt);
    attn_transformer_free(m);
}

/* ---- Attention dropout and learned ALiBi slopes (attn_mods in the fused kernels) ----------- */

/* tiny() with separate tables and no other dropout: what differs is the attention's. */
static attn_transformer_config tiny_mods(attn_pos_kind pos, int norm_first, int kv_heads) {
    attn_transformer_config c = tiny(pos, norm_first, kv_heads);
    c.share = ATTN_SHARE_NONE;
    return c;
}

/* Two source rows (lengths 5 and 3) and their targets, as the other Transformer tests use. */
static int32_t SRC[10] = {4, 5, 6, 7, 3, 8, 9, 3, 0, 0}, LEN[2] = {5, 3};
static int32_t TIN[8] = {2, 4, 5, 6, 2, 7, 8, 0}, TOUT[8] = {4, 5, 6, 3, 7, 8, 3, 0};
static const attn_transformer_batch BATCH = {.B = 2, .S = 5, .T = 4, .src = SRC, .src_len = LEN, .tgt_in = TIN, .tgt_out = TOUT};

/* Central differences of the loss at entries of parameter `name` against its gradient. */
static void finite_differences(attn_transformer *m, const char *name, uint64_t seed, const char *what) {
    attn_params *ps = attn_transformer_params(m);
    attn_param *p = attn_params_find(ps, name);
    CHECK(p != NULL, "%s: no parameter %s", what, name);
    if (!p) return;
    attn_params_zero_grad(ps);
    loss_seeded(m, &BATCH, seed, 1);
    for (int e = 0; e < 3; e++) {
        int64_t idx = (int64_t)(((double)e + 0.37) / 3.0 * (double)p->numel);
        float keep = p->data[idx];
        const float h = 3e-3f;
        p->data[idx] = keep + h;
        double up = loss_seeded(m, &BATCH, seed, 0);
        p->data[idx] = keep - h;
        double dn = loss_seeded(m, &BATCH, seed, 0);
        p->data[idx] = keep;
        double fd = (up - dn) / (2.0 * h), an = p->grad[idx];
        CHECK(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd), "%s %s[%lld]: finite difference %.6g, backward %.6g", what, name,
              (long long)idx, fd, an);
    }
}

/* ---- Config ---------------------------------------------------------------------------- */

static void test_mods_config(void) {
    attn_transformer_config c = tiny_mods(ATTN_POS_ALIBI, 1, 2), d;
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
        attn_transformer_config e = tiny_mods(ATTN_POS_SINUSOIDAL, 0, 4);
        e.attn_dropout = bad[i];
        CHECK(attn_transformer_config_check(&e) == ATTN_EINVAL, "attn_dropout %g refused", (double)bad[i]);
    }
    attn_transformer_config e = tiny_mods(ATTN_POS_SINUSOIDAL, 0, 4);
    e.alibi_learn = 1;
    CHECK(attn_transformer_config_check(&e) == ATTN_EINVAL && strstr(attn_last_error(), "alibi"),
          "alibi_learn without ALiBi refused: %s", attn_last_error());
}

/* The evaluation-mode log-probabilities (6, 10) of one sentence by two models. */
static void both_logp(attn_transformer *m1, attn_transformer *m2, float *a, float *b) {
    int32_t src[7] = {4, 5, 6, 7, 8, 9, 3}, tgt[6] = {2, 4, 5, 6, 7, 8};
    CHECK(forward_logp(m1, src, 7, tgt, 6, a) == ATTN_OK && forward_logp(m2, src, 7, tgt, 6, b) == ATTN_OK, "forward: %s",
          attn_last_error());
}

/* ---- Learned slopes start as the fixed ones ------------------------------------------------ */

static void test_slopes_start_fixed(void) {
    attn_transformer_config cf = tiny_mods(ATTN_POS_ALIBI, 0, 4), cl = cf;
    cl.alibi_learn = 1;
    attn_transformer *mf = make(cf, 7), *ml = make(cl, 7);
    if (!mf || !ml) goto done;
    attn_params *pl = attn_transformer_params(ml);
    for (int l = 0; l < 4; l++) { /* every self-attention's: the decoder's and the encoder's */
        char name[64];
        snprintf(name, sizeof name, "%s.layers.%d.self_attn.alibi_slopes", l < 2 ? "decoder" : "encoder", l % 2);
        attn_param *p = attn_params_find(pl, name);
        CHECK(p && p->numel == 4, "%s (4)", name);
        for (int h = 0; p && h < 4; h++)
            CHECK(p->data[h] == (float)exp2(-8.0 * (h + 1) / 4), "%s[%d] = %g, the paper's 2^-%d", name, h, (double)p->data[h], 2 * (h + 1));
    }
    CHECK(!attn_params_find(pl, "decoder.layers.0.multihead_attn.alibi_slopes"), "no ALiBi in cross-attention");
    CHECK(attn_params_numel(pl) == attn_params_numel(attn_transformer_params(mf)) + 16, "16 more parameters");
    float a[6 * 10], b[6 * 10];
    both_logp(mf, ml, a, b);
    tu_close("learned slopes at their start = fixed ALiBi", b, a, 6 * 10, 1e-5, 1e-5);
done:
    attn_transformer_free(mf);
    attn_transformer_free(ml);
}

/* ---- Attention dropout ----------------------------------------------------------------- */

static void test_attn_dropout(void) {
    attn_transformer_config c0 = tiny_mods(ATTN_POS_SINUSOIDAL, 1, 2), c = c0;
    c.attn_dropout = 0.3f;
    attn_transformer *m0 = make(c0, 31), *m = make(c, 31);
    if (!m0 || !m) goto done;
    float a[6 * 10], b[6 * 10];
    both_logp(m0, m, a, b);
    CHECK(!memcmp(a, b, sizeof a), "evaluation mode: no attention dropout");
    double l0 = loss_seeded(m0, &BATCH, 1, 0), l1 = loss_seeded(m, &BATCH, 1, 0);
    double l1b = loss_seeded(m, &BATCH, 1, 0), l2 = loss_seeded(m, &BATCH, 2, 0);
    attn_set_threads(1);
    double l1t = loss_seeded(m, &BATCH, 1, 0);
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
        attn_transformer_config c = tiny_mods(ATTN_POS_ALIBI, nf, 2);
        c.alibi_learn = 1, c.attn_dropout = nf ? 0.2f : 0.0f; /* pre-LN also through dropped weights */
        attn_transformer *m = make(c, 41 + nf);
        if (!m) continue;
        finite_differences(m, "decoder.layers.0.self_attn.alibi_slopes", 3, nf ? "pre-LN" : "post-LN");
        finite_differences(m, "decoder.layers.1.self_attn.alibi_slopes", 3, nf ? "pre-LN" : "post-LN");
        /* the encoder's (bidirectional: keys on both sides, padded rows of the batch) */
        finite_differences(m, "encoder.layers.0.self_attn.alibi_slopes", 3, nf ? "pre-LN" : "post-LN");
        finite_differences(m, "encoder.layers.1.self_attn.alibi_slopes", 3, nf ? "pre-LN" : "post-LN");
        attn_transformer_free(m);
    }
}

/* ---- The slopes in a file ------------------------------------------------------------------ */

/* Writes every parameter of ps to path but those whose name contains both `a` and `b`. */
static int save_without(attn_params *ps, const char *a, const char *b, const char *path) {
    attn_st_writer *w;
    int st = attn_st_writer_new(&w);
    for (int i = 0; !st && i < attn_params_count(ps); i++) {
        const attn_param *p = attn_params_at(ps, i);
        if (!strstr(p->name, a) || !strstr(p->name, b)) st = attn_st_writer_add_f32(w, p->name, p->ndim, p->shape, p->data);
    }
    if (!st) st = attn_st_writer_save(w, path);
    attn_st_writer_free(w);
    return st;
}

static void test_slopes_checkpoint(void) {
    attn_transformer_config c = tiny_mods(ATTN_POS_ALIBI, 1, 2);
    c.alibi_learn = 1;
    attn_transformer *m = make(c, 5), *m2 = make(c, 6), *m3 = make(c, 7);
    char path[] = "/tmp/attn_slopes_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (!m || !m2 || !m3 || fd < 0) goto done;
    close(fd);
    attn_params *ps = attn_transformer_params(m), *p2 = attn_transformer_params(m2), *p3 = attn_transformer_params(m3);
    for (int i = 0; i < attn_params_count(ps); i++) { /* slopes unlike the paper's */
        attn_param *p = attn_params_at(ps, i);
        for (int h = 0; strstr(p->name, "alibi_slopes") && h < 4; h++) p->data[h] = 0.1f * (float)(i + h + 1);
    }
    /* Every slope saved and loaded. */
    CHECK(save_without(ps, "none", "none", path) == ATTN_OK && attn_params_load(p2, path, 0) == ATTN_OK, "round trip: %s",
          attn_last_error());
    for (int i = 0; i < attn_params_count(ps); i++) {
        const attn_param *a = attn_params_at(ps, i), *b = attn_params_at(p2, i);
        CHECK(!strcmp(a->name, b->name) && !memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)), "%s after load",
              a->name);
    }
    /* A file without any slopes: the decoder's are not optional. */
    CHECK(save_without(ps, "self_attn", "alibi_slopes", path) == ATTN_OK, "write: %s", attn_last_error());
    CHECK(attn_params_load(p3, path, 0) == ATTN_ENOTFOUND, "a file without the decoder's slopes is refused");
    /* A file of a model that learned the decoder's slopes only: the encoder's stay as they are
     * (the paper's in a new model: the fixed ALiBi that model was trained with). */
    CHECK(save_without(ps, "encoder.layers", "alibi_slopes", path) == ATTN_OK, "write: %s", attn_last_error());
    CHECK(attn_params_load(p3, path, 0) == ATTN_OK, "decoder-only slopes file: %s", attn_last_error());
    attn_param *e = attn_params_find(p3, "encoder.layers.1.self_attn.alibi_slopes"),
               *d = attn_params_find(p3, "decoder.layers.1.self_attn.alibi_slopes"),
               *dw = attn_params_find(ps, "decoder.layers.1.self_attn.alibi_slopes");
    CHECK(e && e->data[0] == (float)exp2(-2.0) && e->data[3] == (float)exp2(-8.0), "the encoder's slopes stay the paper's");
    CHECK(d && dw && !memcmp(d->data, dw->data, 4 * sizeof(float)), "the decoder's slopes from the file");
done:
    if (fd >= 0) unlink(path);
    attn_transformer_free(m);
    attn_transformer_free(m2);
    attn_transformer_free(m3);
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
        CHECK(forward_logp(m, src, S, tgt, T, a) == ATTN_OK, "forward: %s", attn_last_error());
        CHECK(attn_transformer_step_logprobs(m, src, S, tgt, T, b) == ATTN_OK, "steps: %s", attn_last_error());
        char tag[128];
        snprintf(tag, sizeof tag, "%s: cached decoder = forward (%s)", what, isas[s]);
        tu_close(tag, b, a, (size_t)T * V, 1e-4, 1e-4);
    }
    attn_set_isa(start);
    free(a), free(b);
}

static void test_mods_training(void) {
    for (int k = 0; k < 2; k++) {
        attn_transformer_config c = tiny_mods(k ? ATTN_POS_ALIBI : ATTN_POS_SINUSOIDAL, 1, k ? 2 : 4);
        c.src_vocab = c.tgt_vocab = 10;
        if (k) c.alibi_learn = 1;
        else c.attn_dropout = 0.1f;
        const char *what = k ? "learned slopes" : "attention dropout";
        attn_transformer *m = make(c, 2);
        if (!m) continue;
        float s0[4][4] = {{0}};
        attn_params *ps = attn_transformer_params(m);
        attn_param *sl[4] = {attn_params_find(ps, "decoder.layers.0.self_attn.alibi_slopes"),
                             attn_params_find(ps, "decoder.layers.1.self_attn.alibi_slopes"),
                             attn_params_find(ps, "encoder.layers.0.self_attn.alibi_slopes"),
                             attn_params_find(ps, "encoder.layers.1.self_attn.alibi_slopes")};
        for (int l = 0; k && l < 4; l++)
            if (sl[l]) memcpy(s0[l], sl[l]->data, sizeof s0[l]);
        double first, last;
        train_reversal(m, 150, &first, &last);
        CHECK(last < 0.5 * first, "%s: the loss falls (%.4g -> %.4g over 150 steps)", what, first, last);
        if (k) {
            for (int s = 0; s < 2; s++) { /* each stack's slopes move */
                double moved = 0;
                for (int l = 2 * s; l < 2 * s + 2; l++)
                    for (int h = 0; sl[l] && h < 4; h++) moved = fmax(moved, fabs(sl[l]->data[h] - s0[l][h]));
                CHECK(sl[2 * s] && sl[2 * s + 1] && moved > 1e-3, "learned %s slopes move from the paper's (by at most %g)",
                      s ? "encoder" : "decoder", moved);
            }
            check_cache(m, "trained learned slopes, pre-LN, grouped heads");
        }
        attn_transformer_free(m);
    }
    /* Post-LN, all heads, slopes of either sign (negative: attention to far keys grows). */
    attn_transformer_config c = tiny_mods(ATTN_POS_ALIBI, 0, 4);
    c.alibi_learn = 1;
    attn_transformer *m = make(c, 9);
    if (!m) return;
    float set[4] = {0.7f, -0.3f, 0.05f, 1.5f};
    attn_param *p = attn_params_find(attn_transformer_params(m), "decoder.layers.1.self_attn.alibi_slopes");
    if (p) memcpy(p->data, set, sizeof set);
    check_cache(m, "post-LN, slopes of either sign");
    attn_transformer_free(m);
}

int main(void) {
    attn_set_threads(2);
    test_pytorch_case("post_sin_tgt_relu");
    test_pytorch_case("pre_learned_none_gelu");
    test_pytorch_case("post_none_all_relu");
    test_cache_consistency();
    test_padding();
    test_order_blindness();
    test_finite_differences();
    test_dropout();
    test_decoding();
    test_paged_kv();
    test_maps();
    test_config_and_checkpoint();
    test_learns_reversal();
    test_mods_config();
    test_slopes_start_fixed();
    test_attn_dropout();
    test_slope_gradients();
    test_slopes_checkpoint();
    test_mods_training();
    return tu_summary("test_transformer");
}
