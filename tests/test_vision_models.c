/* Tests of the visual-attention models (attn/vision.h):
 *  - REINFORCE on a problem with a known gradient: a Gaussian policy N(theta, std^2) in 2-D on
 *    a bandit with reward r(x) = -|x - c|^2, whose expected reward -(|theta - c|^2 + 2 std^2)
 *    has the gradient -2 (theta - c). The estimates (minus attn_vision_reinforce's gradient,
 *    batch after batch) must average to it within 4 standard errors, with a reward baseline
 *    too (unbiased, and of smaller variance), and the test would see a sign or scale error;
 *  - the fc, cnn, soft and (one-glimpse) ram models' gradients against central finite
 *    differences (with more glimpses the locations are samples, which finite differences
 *    cannot follow: the hybrid loss is checked through the bandit above);
 *  - ram: evaluation is deterministic, starts at the centre and stays in [-1, 1]; training
 *    samples other locations from the graph's generator; the locator and baseline get a
 *    gradient only from the REINFORCE and baseline terms;
 *  - multiply-adds: ram's do not grow with the image (centred28, cluttered60, cluttered100
 *    at the same glimpse settings), the cnn's grow with S^2; the counts of a tiny fc and cnn
 *    by hand;
 *  - the configuration's JSON, save and load (the same logits), a corrupt directory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

/* ---- REINFORCE on a Gaussian bandit ------------------------------------------------------- */

/* Batches of B samples; returns in mean[2], se[2] the mean and standard error of the
 * per-batch gradient estimates, with the reward baseline `base` subtracted. */
static void bandit(int batches, int B, float std, const float theta[2], const float c[2], float base, double mean[2], double se[2]) {
    attn_graph *g = NULL;
    double s[2] = {0, 0}, s2[2] = {0, 0};
    if (attn_graph_new(0, &g)) return;
    attn_rng r;
    attn_rng_seed(&r, 12345);
    float th[2] = {theta[0], theta[1]}, grad[2];
    float *x = malloc((size_t)B * 2 * sizeof(float)), *adv = malloc((size_t)B * sizeof(float));
    for (int it = 0; it < batches && x && adv; it++) {
        attn_graph_reset(g);
        grad[0] = grad[1] = 0;
        for (int b = 0; b < B; b++) {
            float d0 = (x[2 * b] = th[0] + std * attn_rng_normal(&r)) - c[0];
            float d1 = (x[2 * b + 1] = th[1] + std * attn_rng_normal(&r)) - c[1];
            adv[b] = -(d0 * d0 + d1 * d1) - base;
        }
        attn_var *t = attn_graph_leaf(g, 1, (int64_t[]){2}, th, grad);
        attn_var *mu = attn_ag_add(g, attn_graph_input(g, 2, (int64_t[]){B, 2}, NULL), t);
        attn_var *loss = attn_vision_reinforce(g, mu, x, adv, std);
        if (attn_graph_backward(g, loss)) {
            CHECK(0, "reinforce backward: %s", attn_last_error());
            break;
        }
        for (int j = 0; j < 2; j++) s[j] += -grad[j], s2[j] += (double)grad[j] * grad[j];
    }
    for (int j = 0; j < 2; j++) {
        mean[j] = s[j] / batches;
        se[j] = sqrt((s2[j] / batches - mean[j] * mean[j]) / batches);
    }
    free(x), free(adv);
    attn_graph_free(g);
}

static void test_reinforce(void) {
    const float theta[2] = {0.5f, -0.25f}, c[2] = {-0.5f, 0.25f}, std = 0.3f;
    const double want[2] = {-2.0 * (theta[0] - c[0]), -2.0 * (theta[1] - c[1])}; /* (2, -1) */
    double m0[2] = {0}, se0[2] = {0}, m1[2] = {0}, se1[2] = {0};
    bandit(4000, 16, std, theta, c, 0.0f, m0, se0);
    /* The baseline: the expected reward, a constant (unbiased). */
    float er = -((theta[0] - c[0]) * (theta[0] - c[0]) + (theta[1] - c[1]) * (theta[1] - c[1]) + 2 * std * std);
    bandit(4000, 16, std, theta, c, er, m1, se1);
    for (int j = 0; j < 2; j++) {
        CHECK(fabs(m0[j] - want[j]) <= 4 * se0[j], "no baseline: component %d: %.4f, analytic %.4f (SE %.4f)", j, m0[j], want[j], se0[j]);
        CHECK(fabs(m1[j] - want[j]) <= 4 * se1[j], "baseline: component %d: %.4f, analytic %.4f (SE %.4f)", j, m1[j], want[j], se1[j]);
        /* The test can fail: a sign error (off by 2 |want|) or a factor 2 would be many SEs away. */
        CHECK(se0[j] > 0 && 4 * se0[j] < 0.25 * fabs(want[j]), "component %d: SE %.4f too large to tell", j, se0[j]);
        CHECK(se1[j] < se0[j], "component %d: the baseline does not reduce the variance (SE %.4f vs %.4f)", j, se1[j], se0[j]);
    }
}

/* ---- Models ------------------------------------------------------------------------------ */

/* A tiny model; ram with an LSTM core if lstm, a locator hidden layer of lq units if lq > 0. */
static attn_vision *make(attn_vision_kind kind, attn_vision_task task, int glimpses, int lstm, int lq, uint64_t seed) {
    attn_vision_config c = attn_vision_config_default(kind, task);
    c.hidden = 6, c.c1 = 2, c.c2 = 3, c.kernel = 3, c.attn_dim = 4;
    c.glimpses = glimpses, c.patch = 4, c.scales = 2, c.glimpse_hidden = 5, c.lstm = lstm, c.loc_hidden = lq;
    attn_vision *m = NULL;
    CHECK(attn_vision_new(&c, seed, &m) == ATTN_OK, "new %s: %s", attn_vision_kind_name(kind), attn_last_error());
    return m;
}

static double loss_of(attn_vision *m, attn_graph *g, int B, const float *img, const int32_t *labels) {
    attn_graph_reset(g);
    attn_graph_seed(g, 7);
    int64_t S = attn_vision_task_size(attn_vision_get_config(m)->task);
    attn_var *l = attn_vision_loss(m, g, attn_graph_input(g, 4, (int64_t[]){B, 1, S, S}, img), labels);
    return l ? l->data[0] : NAN;
}

static void test_gradients(void) {
    enum { B = 3 };
    static float img[B * 28 * 28];
    tu_randn(img, B * 28 * 28, 3);
    for (int i = 0; i < B * 28 * 28; i++) img[i] = fabsf(img[i]) * 0.4f;
    const int32_t labels[B] = {1, 7, 3};
    for (int kind = 0; kind < 5; kind++) {
        attn_vision *m = make(kind < 4 ? kind : ATTN_VISION_RAM, ATTN_TASK_CENTRED28, 1, kind == 4, 0, 5);
        const char *name = kind == 4 ? "ram-lstm" : attn_vision_kind_name(kind);
        attn_graph *g = NULL;
        if (!m || attn_graph_new(0, &g)) {
            attn_vision_free(m);
            continue;
        }
        attn_params *ps = attn_vision_params(m);
        attn_params_zero_grad(ps);
        loss_of(m, g, B, img, labels);
        attn_graph_reset(g);
        attn_graph_seed(g, 7);
        attn_var *loss = attn_vision_loss(m, g, attn_graph_input(g, 4, (int64_t[]){B, 1, 28, 28}, img), labels);
        CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "%s: backward: %s", name, attn_last_error());
        int bad = 0, checked = 0;
        for (int i = 0; loss && i < attn_params_count(ps); i++) {
            attn_param *p = attn_params_at(ps, i);
            for (int64_t k = i % 3, step = p->numel / 5 + 1; k < p->numel; k += step) {
                double fd = 0, an = p->grad[k];
                /* A step of 1e-3, and 1e-4 where the first crosses a ReLU or max-pool kink. */
                for (float eps = 1e-3f; eps > 5e-5f && (eps == 1e-3f || !(fabs(fd - an) <= 3e-3 + 3e-2 * fabs(fd))); eps /= 10) {
                    float save = p->data[k];
                    p->data[k] = save + eps;
                    double up = loss_of(m, g, B, img, labels);
                    p->data[k] = save - eps;
                    double dn = loss_of(m, g, B, img, labels);
                    p->data[k] = save;
                    fd = (up - dn) / (2.0 * eps);
                }
                checked++;
                if (!(fabs(fd - an) <= 3e-3 + 3e-2 * fabs(fd)) && bad++ < 3)
                    tu_msg("%s: d/d %s[%lld] = %.6g, finite differences %.6g", name, p->name, (long long)k, an, fd);
            }
        }
        CHECK(loss && bad == 0 && checked >= 10, "%s: %d of %d gradient elements off", name, bad, checked);
        attn_graph_free(g);
        attn_vision_free(m);
    }
}

/* Sum of |gradient| of the parameters whose name starts with prefix. */
static double grad_mass(attn_params *ps, const char *prefix) {
    double s = 0;
    for (int i = 0; i < attn_params_count(ps); i++) {
        attn_param *p = attn_params_at(ps, i);
        if (!strncmp(p->name, prefix, strlen(prefix)))
            for (int64_t k = 0; k < p->numel; k++) s += fabs(p->grad[k]);
    }
    return s;
}

static void test_ram(void) {
    enum { B = 4, S = 60, N = 5 };
    static float img[B * S * S], locs[B * N * 2], locs2[B * N * 2];
    tu_randn(img, B * S * S, 4);
    for (int i = 0; i < B * S * S; i++) img[i] = fabsf(img[i]) * 0.5f;
    attn_vision *m = make(ATTN_VISION_RAM, ATTN_TASK_CLUTTERED60, N, 1, 3, 9);
    if (!m) return;
    attn_vision_trace tr = {locs, NULL}, tr2 = {locs2, NULL};
    int32_t p1[B], p2[B];
    CHECK(attn_vision_predict(m, B, img, p1, NULL, &tr) == ATTN_OK && attn_vision_predict(m, B, img, p2, NULL, &tr2) == ATTN_OK,
          "predict: %s", attn_last_error());
    CHECK(!memcmp(locs, locs2, sizeof locs) && !memcmp(p1, p2, sizeof p1), "evaluation is not deterministic");
    int inside = 1, moved = 0;
    for (int b = 0; b < B; b++) {
        CHECK(locs[b * N * 2] == 0 && locs[b * N * 2 + 1] == 0, "image %d: the first glimpse is not at the centre", b);
        for (int t = 0; t < 2 * N; t++) inside &= fabsf(locs[b * N * 2 + t]) <= 1.0f;
        moved += locs[b * N * 2 + 2] != 0;
    }
    CHECK(inside && moved == B, "locations outside [-1, 1] or not moving (%d of %d)", moved, B);
    /* Training: sampled locations, and every part gets a gradient. */
    attn_graph *g = NULL;
    if (attn_graph_new(0, &g)) return;
    attn_params *ps = attn_vision_params(m);
    attn_params_zero_grad(ps);
    attn_graph_seed(g, 1);
    const int32_t labels[B] = {0, 1, 2, 3};
    attn_var *x = attn_graph_input(g, 4, (int64_t[]){B, 1, S, S}, img);
    attn_var *loss = attn_vision_loss(m, g, x, labels);
    CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "ram loss: %s", attn_last_error());
    const char *parts[] = {"glimpse.", "core.", "locator.", "baseline.", "action.", "locator.hidden."};
    for (int i = 0; i < 6; i++) CHECK(grad_mass(ps, parts[i]) > 0, "no gradient reaches %s", parts[i]);
    attn_graph_reset(g);
    attn_graph_seed(g, 2);
    x = attn_graph_input(g, 4, (int64_t[]){B, 1, S, S}, img);
    CHECK(attn_vision_forward(m, g, x, &tr2) != NULL, "forward: %s", attn_last_error());
    CHECK(memcmp(locs, locs2, sizeof locs) != 0, "training samples the same locations as evaluation");
    /* Evaluation mode: the policy terms vanish (x = mu), so the locator gets no gradient. */
    attn_params_zero_grad(ps);
    attn_graph_reset(g);
    attn_graph_set_training(g, 0);
    x = attn_graph_input(g, 4, (int64_t[]){B, 1, S, S}, img);
    loss = attn_vision_loss(m, g, x, labels);
    CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "ram eval loss: %s", attn_last_error());
    CHECK(grad_mass(ps, "locator.") == 0 && grad_mass(ps, "action.") > 0, "evaluation: locator %g, action %g",
          grad_mass(ps, "locator."), grad_mass(ps, "action."));
    attn_graph_free(g);
    attn_vision_free(m);
}

static void test_madds(void) {
    attn_vision_config r[3], c[3];
    const attn_vision_task tasks[3] = {ATTN_TASK_CENTRED28, ATTN_TASK_CLUTTERED60, ATTN_TASK_CLUTTERED100};
    for (int i = 0; i < 3; i++) {
        r[i] = attn_vision_config_default(ATTN_VISION_RAM, tasks[i]);
        r[i].scales = 3, r[i].patch = 12, r[i].lstm = 1;
        c[i] = attn_vision_config_default(ATTN_VISION_CNN, tasks[i]);
    }
    CHECK(attn_vision_madds(&r[0]) == attn_vision_madds(&r[1]) && attn_vision_madds(&r[1]) == attn_vision_madds(&r[2]),
          "ram's cost depends on the image: %lld %lld %lld", (long long)attn_vision_madds(&r[0]), (long long)attn_vision_madds(&r[1]),
          (long long)attn_vision_madds(&r[2]));
    CHECK(attn_vision_madds(&c[0]) < attn_vision_madds(&c[1]) && attn_vision_madds(&c[1]) < attn_vision_madds(&c[2]), "cnn's cost does not grow");
    /* By hand: fc 28x28 -> 6 -> 6 -> 10; cnn 28x28, 3x3, 2 and 3 filters -> 7x7x3 -> 10. */
    attn_vision_config f = attn_vision_config_default(ATTN_VISION_FC, ATTN_TASK_CENTRED28);
    f.hidden = 6;
    CHECK(attn_vision_madds(&f) == 784 * 6 + 36 + 60, "fc madds %lld", (long long)attn_vision_madds(&f));
    attn_vision_config k = c[0];
    k.c1 = 2, k.c2 = 3, k.kernel = 3;
    CHECK(attn_vision_madds(&k) == 784 * 2 * 9 + 196 * 3 * 2 * 9 + 49 * 3 * 10, "cnn madds %lld", (long long)attn_vision_madds(&k));
    /* ram by hand: 1 scale of 2x2, glimpse net 3, core 4 (ReLU RNN), 3 glimpses; the locator
     * one layer (4 -> 2) or with a hidden layer of 5 (4 -> 5 -> 2), run after glimpses 1 and 2. */
    attn_vision_config q = r[0];
    q.patch = 2, q.scales = 1, q.glimpse_hidden = 3, q.hidden = 4, q.lstm = 0, q.glimpses = 3;
    int64_t per = 4 + 4 * 3 + 2 * 3 + 2 * 3 * 4 + 2 * 4 * 4;
    CHECK(attn_vision_madds(&q) == 3 * per + 2 * (4 * 2) + 4 * 10, "ram madds %lld", (long long)attn_vision_madds(&q));
    q.loc_hidden = 5;
    CHECK(attn_vision_madds(&q) == 3 * per + 2 * (4 * 5 + 5 * 2) + 4 * 10, "ram madds with a locator hidden layer %lld",
          (long long)attn_vision_madds(&q));
    attn_vision *m = NULL;
    CHECK(attn_vision_new(&q, 1, &m) == ATTN_OK && attn_vision_num_params(m) == 4 * 3 + 3 + 2 * 3 + 3 + 3 * 4 + 4 + 3 * 4 + 4 + 2 * (4 * 4 + 4) +
                                                                                 (5 * 4 + 5) + (2 * 5 + 2) + (4 + 1) + (10 * 4 + 10),
          "ram parameters %lld", (long long)attn_vision_num_params(m));
    attn_vision_free(m);
}

static void test_files(void) {
    enum { B = 3 };
    static float img[B * 60 * 60];
    tu_randn(img, B * 60 * 60, 8);
    for (int kind = 0; kind < 4; kind++) {
        attn_vision *m = make(kind, ATTN_TASK_TRANSLATED60, 3, 0, kind == ATTN_VISION_RAM ? 7 : 0, 11), *l = NULL;
        if (!m) continue;
        char *json = NULL;
        attn_vision_config back;
        CHECK(attn_vision_config_to_json(attn_vision_get_config(m), &json) == ATTN_OK && attn_vision_config_from_json(json, &back) == ATTN_OK &&
                  !memcmp(&back, attn_vision_get_config(m), sizeof back),
              "%s: the config does not survive JSON: %s", attn_vision_kind_name(kind), json ? json : attn_last_error());
        attn_free(json);
        const char *dir = tu_path("model");
        float p1[B * 10], p2[B * 10];
        CHECK(attn_vision_save(m, dir, "test") == ATTN_OK && attn_vision_load(dir, &l) == ATTN_OK, "save/load: %s", attn_last_error());
        if (l) {
            CHECK(attn_vision_predict(m, B, img, NULL, p1, NULL) == ATTN_OK && attn_vision_predict(l, B, img, NULL, p2, NULL) == ATTN_OK &&
                      !memcmp(p1, p2, sizeof p1),
                  "%s: the loaded model predicts otherwise", attn_vision_kind_name(kind));
            CHECK(attn_vision_set_task(l, ATTN_TASK_CLUTTERED60) == ATTN_OK && attn_vision_set_task(l, ATTN_TASK_CENTRED28) == ATTN_EINVAL &&
                      tu_err_has("60x60"),
                  "set_task: %s", attn_last_error());
            attn_vision_free(l), l = NULL;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        tu_write_file(path, "garbage", 7);
        CHECK(attn_vision_load(dir, &l) != ATTN_OK && !l && tu_err_has("model.safetensors"), "a corrupt directory loads: %s", attn_last_error());
        attn_vision_free(m);
    }
    CHECK(attn_vision_config_from_json("{\"kind\": \"vision\", \"model\": \"rnn\", \"task\": \"centred28\"}", &(attn_vision_config){0}) ==
              ATTN_EFORMAT,
          "an unknown model accepted");
    attn_vision_config c = attn_vision_config_default(ATTN_VISION_RAM, ATTN_TASK_CENTRED28);
    c.glimpses = 0;
    CHECK(attn_vision_config_check(&c) == ATTN_EINVAL && tu_err_has("glimpses"), "0 glimpses: %s", attn_last_error());
    c.glimpses = 6, c.loc_hidden = -1;
    CHECK(attn_vision_config_check(&c) == ATTN_EINVAL && tu_err_has("loc_hidden"), "loc_hidden -1: %s", attn_last_error());
    /* A config written before loc_hidden existed reads as the one-layer locator. */
    CHECK(attn_vision_config_from_json("{\"kind\": \"vision\", \"model\": \"ram\", \"task\": \"centred28\", \"glimpses\": 4}", &c) == ATTN_OK &&
              c.loc_hidden == 0 && c.glimpses == 4,
          "an old config: %s", attn_last_error());
}

int main(void) {
    if (!tu_scratch_new("test_vision_models")) return 1;
    test_reinforce();
    test_gradients();
    test_ram();
    test_madds();
    test_files();
    tu_scratch_remove();
    return tu_summary("test_vision_models");
}
