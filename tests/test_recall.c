/* Tests of associative recall (attn/recall.h) and the straight-through argmax
 * (attn_ag_hard_softmax, attn/autograd.h):
 *  - the generator is a function of its seed, and every sequence is valid, checked here
 *    independently: K distinct keys from the right alphabet (a-z up to 26 pairs, a-z A-Z
 *    above), digits, '?' '?', a query among the keys, the answer its digit; attn_recall_check
 *    rejects broken rows; bad pair counts are errors;
 *  - the hard op: the forward is the one-hot of the argmax (the first of equal maxima); the
 *    backward is the softmax's, against p (dy - p . dy) computed here in double, against
 *    central finite differences of dy . softmax(x) in double, and against attn_ag_softmax's
 *    own backward (the straight-through gradient is, by definition, not the gradient of the
 *    forward, so that is what is checked);
 *  - the gru, lstm and gru-attn models' gradients against finite differences; the soft and
 *    hard reads address the same step (the soft weights' argmax is the hard pick) with the
 *    same parameters; the straight-through model's gradient reaches every parameter, the
 *    plain argmax's never the query and key projections;
 *  - the configuration's JSON, save and load (bitwise the same logits), corrupt directories. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

/* ---- The generator ---------------------------------------------------------------------- */

/* Checks every row of d by hand; returns the number of bad rows. */
static int bad_rows(const attn_recall_data *d, int alphabet) {
    int bad = 0;
    for (int i = 0; i < d->n; i++) {
        const int32_t *r = d->ids + (size_t)i * d->T;
        int ok = d->T == 2 * d->K + 3 && r[2 * d->K] == 10 && r[2 * d->K + 1] == 10, found = 0;
        for (int k = 0; k < d->K; k++) {
            ok &= r[2 * k] >= 11 && r[2 * k] < 11 + alphabet && r[2 * k + 1] >= 0 && r[2 * k + 1] <= 9;
            for (int j = 0; j < k; j++) ok &= r[2 * j] != r[2 * k];
            if (r[2 * k] == r[2 * d->K + 2]) found++, ok &= d->answer[i] == r[2 * k + 1];
        }
        bad += !(ok && found == 1);
    }
    return bad;
}

static void test_generator(void) {
    const int Ks[] = {1, 4, 16, 26, 27, 32, 52};
    for (int i = 0; i < 7; i++) {
        int K = Ks[i], A = K <= 26 ? 26 : 52;
        attn_recall_data a = {0}, b = {0}, c = {0};
        CHECK(attn_recall_generate(K, 300, 42, &a) == ATTN_OK && attn_recall_generate(K, 300, 42, &b) == ATTN_OK &&
                  attn_recall_generate(K, 300, 43, &c) == ATTN_OK,
              "K=%d: generate: %s", K, attn_last_error());
        if (!a.ids || !b.ids || !c.ids) continue;
        CHECK(a.T == 2 * K + 3 && attn_recall_alphabet(K) == A, "K=%d: T %d, alphabet %d", K, a.T, attn_recall_alphabet(K));
        size_t bytes = (size_t)a.n * a.T * sizeof(int32_t);
        CHECK(!memcmp(a.ids, b.ids, bytes) && !memcmp(a.answer, b.answer, (size_t)a.n * sizeof(int32_t)), "K=%d: same seed, other data", K);
        CHECK(memcmp(a.ids, c.ids, bytes) != 0, "K=%d: another seed, the same data", K);
        CHECK(bad_rows(&a, A) == 0, "K=%d: %d invalid rows", K, bad_rows(&a, A));
        CHECK(attn_recall_check(&a) == ATTN_OK, "K=%d: check: %s", K, attn_last_error());
        int upper = 0, digits[10] = {0};
        for (size_t t = 0; t < (size_t)a.n * a.T; t++) upper += a.ids[t] >= 11 + 26;
        for (int r = 0; r < a.n; r++) digits[a.answer[r]]++;
        CHECK(K > 26 ? upper > 0 : upper == 0, "K=%d: %d upper-case keys", K, upper);
        for (int dgt = 0; dgt < 10; dgt++) CHECK(digits[dgt] > 5, "K=%d: digit %d answers %d of 300", K, dgt, digits[dgt]);
        if (K == 4) {
            char s[16];
            attn_recall_format(&a, 0, s);
            CHECK(strlen(s) == 11 && s[8] == '?' && s[9] == '?' && s[10] >= 'a' && s[10] <= 'z', "format: %s", s);
            a.ids[2] = a.ids[0]; /* a repeated key */
            CHECK(attn_recall_check(&a) == ATTN_EFORMAT && tu_err_has("row 0"), "a repeated key passes: %s", attn_last_error());
            a.ids[2] = b.ids[2];
            a.answer[1] = (a.answer[1] + 1) % 10;
            CHECK(attn_recall_check(&a) == ATTN_EFORMAT && tu_err_has("row 1"), "a wrong answer passes: %s", attn_last_error());
        }
        attn_recall_data_free(&a), attn_recall_data_free(&b), attn_recall_data_free(&c);
    }
    attn_recall_data d = {0};
    CHECK(attn_recall_generate(0, 10, 1, &d) == ATTN_EINVAL && attn_recall_generate(53, 10, 1, &d) == ATTN_EINVAL &&
              attn_recall_generate(4, -1, 1, &d) == ATTN_EINVAL,
          "bad sizes accepted");
    CHECK(attn_recall_generate(4, 0, 1, &d) == ATTN_OK && d.n == 0, "no sequences: %s", attn_last_error());
    attn_recall_data_free(&d);
    CHECK(attn_recall_split_seed(1, 0) != attn_recall_split_seed(1, 1) && attn_recall_split_seed(1, 1) != attn_recall_split_seed(1, 2),
          "the splits share a seed");
}

/* ---- The straight-through argmax -------------------------------------------------------- */

static void test_hard_softmax(void) {
    enum { R = 4, C = 5 };
    float x[R * C], dy[R * C];
    tu_randn(x, R * C, 3), tu_randn(dy, R * C, 4);
    x[3 * C + 1] = x[3 * C + 3] = 9.0f; /* a tie: the first wins */
    attn_graph *g = NULL, *g2 = NULL; /* one graph each: a backward runs its whole tape */
    if (attn_graph_new(0, &g) || attn_graph_new(0, &g2)) {
        attn_graph_free(g);
        return;
    }
    float gx[R * C] = {0}, gs[R * C] = {0};
    attn_var *xv = attn_graph_leaf(g, 2, (int64_t[]){R, C}, x, gx), *xs = attn_graph_leaf(g2, 2, (int64_t[]){R, C}, x, gs);
    attn_var *y = attn_ag_hard_softmax(g, xv), *p = attn_ag_softmax(g2, xs);
    CHECK(y && p && attn_graph_backward_from(g, y, dy) == ATTN_OK && attn_graph_backward_from(g2, p, dy) == ATTN_OK, "ops: %s",
          attn_last_error());
    attn_graph_free(g2);
    if (!y || !p) {
        attn_graph_free(g);
        return;
    }
    for (int r = 0; r < R; r++) {
        int best = 0;
        for (int c = 1; c < C; c++) best = x[r * C + c] > x[r * C + best] ? c : best;
        for (int c = 0; c < C; c++) CHECK(y->data[r * C + c] == (c == best ? 1.0f : 0.0f), "row %d: y[%d] = %g, argmax %d", r, c, y->data[r * C + c], best);
    }
    CHECK(y->data[3 * C + 1] == 1.0f && y->data[3 * C + 3] == 0.0f, "a tie goes to the first maximum");
    double want[R * C], fd[R * C];
    for (int r = 0; r < R; r++) {
        double m = -INFINITY, s = 0, pd[C], dot = 0;
        for (int c = 0; c < C; c++) m = fmax(m, x[r * C + c]);
        for (int c = 0; c < C; c++) s += pd[c] = exp((double)x[r * C + c] - m);
        for (int c = 0; c < C; c++) pd[c] /= s, dot += pd[c] * dy[r * C + c];
        for (int c = 0; c < C; c++) want[r * C + c] = pd[c] * (dy[r * C + c] - dot);
        for (int c = 0; c < C; c++) { /* d/dx_c of f(x) = dy . softmax(x), central differences in double */
            double f[2];
            for (int side = 0; side < 2; side++) {
                double xs2[C], mm = -INFINITY, ss = 0, acc = 0;
                for (int k = 0; k < C; k++) xs2[k] = x[r * C + k] + (k == c ? (side ? -1e-6 : 1e-6) : 0), mm = fmax(mm, xs2[k]);
                for (int k = 0; k < C; k++) ss += exp(xs2[k] - mm);
                for (int k = 0; k < C; k++) acc += dy[r * C + k] * exp(xs2[k] - mm) / ss;
                f[side] = acc;
            }
            fd[r * C + c] = (f[0] - f[1]) / 2e-6;
        }
    }
    double got[R * C];
    for (int i = 0; i < R * C; i++) got[i] = gx[i];
    CHECK(tu_close_d("hard backward vs p (dy - p.dy)", got, want, R * C, 1e-5, 1e-6), "the straight-through gradient");
    CHECK(tu_close_d("hard backward vs finite differences of the softmax", got, fd, R * C, 1e-4, 1e-6), "finite differences");
    CHECK(tu_close("hard backward vs softmax backward", gx, gs, R * C, 1e-6, 1e-7), "the softmax's own backward");
    attn_graph_free(g);
}

/* ---- Models ----------------------------------------------------------------------------- */

static attn_recall *make(attn_recall_kind kind, int K, int H, uint64_t seed) {
    attn_recall_config c = attn_recall_config_default();
    c.kind = kind, c.pairs = K, c.hidden = H, c.embed = 5;
    attn_recall *m = NULL;
    CHECK(attn_recall_new(&c, seed, &m) == ATTN_OK, "new %s: %s", attn_recall_kind_name(kind), attn_last_error());
    return m;
}

static double loss_of(attn_recall *m, attn_graph *g, const attn_recall_data *d) {
    attn_graph_reset(g);
    attn_var *l = attn_recall_loss(m, g, d->n, d->ids, d->answer);
    return l ? (double)l->data[0] : NAN;
}

static void test_gradients(void) {
    attn_recall_data d = {0};
    if (attn_recall_generate(3, 4, 9, &d)) return;
    for (int kind = ATTN_RECALL_GRU; kind <= ATTN_RECALL_GRU_ATTN; kind++) {
        const char *name = attn_recall_kind_name((attn_recall_kind)kind);
        attn_recall *m = make((attn_recall_kind)kind, 3, 4, 5);
        attn_graph *g = NULL;
        if (!m || attn_graph_new(0, &g)) {
            attn_recall_free(m);
            continue;
        }
        attn_params *ps = attn_recall_params(m);
        for (int64_t k = 0; k < attn_params_numel(ps); k++) attn_params_data(ps)[k] *= 2.0f;
        attn_params_zero_grad(ps);
        attn_var *loss = attn_recall_loss(m, g, d.n, d.ids, d.answer);
        CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "%s: backward: %s", name, attn_last_error());
        int bad = 0, checked = 0;
        const float eps = 1e-3f;
        for (int i = 0; loss && i < attn_params_count(ps); i++) {
            attn_param *p = attn_params_at(ps, i);
            for (int64_t k = i % 3, step = p->numel / 6 + 1; k < p->numel; k += step) {
                float save = p->data[k];
                p->data[k] = save + eps;
                double up = loss_of(m, g, &d);
                p->data[k] = save - eps;
                double dn = loss_of(m, g, &d);
                p->data[k] = save;
                double fd = (up - dn) / (2.0 * eps), an = p->grad[k];
                checked++;
                if (!(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd)) && bad++ < 3)
                    tu_msg("%s: d/d %s[%lld] = %.6g, finite differences %.6g", name, p->name, (long long)k, an, fd);
            }
        }
        CHECK(loss && bad == 0 && checked >= 10, "%s: %d of %d gradient elements off", name, bad, checked);
        attn_graph_free(g);
        attn_recall_free(m);
    }
    attn_recall_data_free(&d);
}

/* The soft and the hard read with the same parameters address the same step, the soft
 * weights are a distribution, the hard ones one-hot; the plain models give zero weights. */
static void test_addresses(void) {
    enum { K = 6, T = 2 * K + 3, N = 8 };
    attn_recall_data d = {0};
    if (attn_recall_generate(K, N, 11, &d)) return;
    attn_recall *soft = make(ATTN_RECALL_GRU_ATTN, K, 8, 21), *hard = make(ATTN_RECALL_GRU_HARD, K, 8, 21), *gru = make(ATTN_RECALL_GRU, K, 8, 21);
    float ws[N * T], wh[N * T], wg[N * T];
    int32_t ps[N], ph[N];
    if (soft && hard && gru) {
        CHECK(attn_recall_num_params(soft) == attn_recall_num_params(hard), "soft and hard differ in size");
        for (int64_t k = 0; k < attn_params_numel(attn_recall_params(soft)); k++)
            attn_params_data(attn_recall_params(soft))[k] *= 3.0f, attn_params_data(attn_recall_params(hard))[k] *= 3.0f;
        CHECK(attn_recall_predict(soft, N, d.ids, ps, ws) == ATTN_OK && attn_recall_predict(hard, N, d.ids, ph, wh) == ATTN_OK &&
                  attn_recall_predict(gru, N, d.ids, NULL, wg) == ATTN_OK,
              "predict: %s", attn_last_error());
        for (int i = 0; i < N; i++) {
            int best = 0, ones = 0;
            double sum = 0;
            for (int t = 0; t < T; t++) {
                sum += ws[i * T + t], ones += wh[i * T + t] == 1.0f;
                best = ws[i * T + t] > ws[i * T + best] ? t : best;
                CHECK(wg[i * T + t] == 0.0f, "gru: weight %g", wg[i * T + t]);
            }
            CHECK(fabs(sum - 1.0) < 1e-5 && ones == 1 && wh[i * T + best] == 1.0f, "row %d: soft sum %g, hard ones %d, soft argmax %d", i,
                  sum, ones, best);
            CHECK(ps[i] >= 0 && ps[i] <= 9 && ph[i] >= 0 && ph[i] <= 9, "predictions %d %d", ps[i], ph[i]);
        }
        /* gru-hard's gradient reaches every parameter; gru-argmax (the same forward: the same
         * predictions) gives the query and key projections none. */
        attn_recall *am = make(ATTN_RECALL_GRU_ARGMAX, K, 8, 21);
        int32_t pa[N];
        if (am) {
            memcpy(attn_params_data(attn_recall_params(am)), attn_params_data(attn_recall_params(hard)),
                   (size_t)attn_params_numel(attn_recall_params(am)) * sizeof(float));
            CHECK(attn_recall_predict(am, N, d.ids, pa, NULL) == ATTN_OK && !memcmp(pa, ph, sizeof pa), "argmax predicts otherwise");
        }
        for (int which = 0; which < 2 && am; which++) {
            attn_recall *mm = which ? am : hard;
            attn_graph *g = NULL;
            if (attn_graph_new(0, &g)) break;
            attn_params *pp = attn_recall_params(mm);
            attn_params_zero_grad(pp);
            attn_var *l = attn_recall_loss(mm, g, N, d.ids, d.answer);
            CHECK(l && attn_graph_backward(g, l) == ATTN_OK, "hard backward: %s", attn_last_error());
            for (int i = 0; l && i < attn_params_count(pp); i++) {
                attn_param *p = attn_params_at(pp, i);
                double s = 0;
                for (int64_t k = 0; k < p->numel; k++) s += fabs(p->grad[k]);
                int none = which && (strstr(p->name, "query") || strstr(p->name, "key"));
                CHECK(none ? s == 0 : s > 0, "%s: gradient %g reaches %s", which ? "gru-argmax" : "gru-hard", s, p->name);
            }
            attn_graph_free(g);
        }
        attn_recall_free(am);
    }
    attn_recall_free(soft), attn_recall_free(hard), attn_recall_free(gru);
    attn_recall_data_free(&d);
}

static void test_files(void) {
    attn_recall_config c = attn_recall_config_default(), back;
    c.kind = ATTN_RECALL_GRU_HARD, c.pairs = 30, c.hidden = 7, c.embed = 3, c.data_seed = 123456789012ull, c.n_train = 5;
    char *json = NULL;
    CHECK(attn_recall_config_to_json(&c, &json) == ATTN_OK && attn_recall_config_from_json(json, &back) == ATTN_OK &&
              !memcmp(&c, &back, sizeof c),
          "json round trip: %s", json ? json : attn_last_error());
    attn_free(json);
    CHECK(attn_recall_config_from_json("{\"kind\": \"recall\", \"model\": \"rnn\"}", &back) == ATTN_EFORMAT, "unknown model accepted");
    CHECK(attn_recall_config_from_json("{\"kind\": \"recall\", \"model\": \"gru\", \"pairs\": 0}", &back) == ATTN_EINVAL, "0 pairs accepted");
    CHECK(attn_recall_config_from_json("{\"kind\": \"classifier\"}", &back) == ATTN_EFORMAT, "another kind accepted");
    attn_recall_data d = {0};
    attn_recall *m = make(ATTN_RECALL_LSTM, 5, 6, 2), *l = NULL;
    if (!m || attn_recall_generate(5, 7, 3, &d)) {
        attn_recall_free(m);
        return;
    }
    const char *dir = tu_path("lstm");
    float w1[7 * 13], w2[7 * 13];
    int32_t p1[7], p2[7];
    CHECK(attn_recall_save(m, dir, "test") == ATTN_OK && attn_recall_load(dir, &l) == ATTN_OK, "save/load: %s", attn_last_error());
    if (l) {
        CHECK(attn_recall_get_config(l)->kind == ATTN_RECALL_LSTM && attn_recall_get_config(l)->pairs == 5, "the config changed");
        CHECK(attn_recall_predict(m, 7, d.ids, p1, w1) == ATTN_OK && attn_recall_predict(l, 7, d.ids, p2, w2) == ATTN_OK &&
                  !memcmp(p1, p2, sizeof p1),
              "the loaded model predicts otherwise");
        attn_recall_free(l);
        l = NULL;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_write_file(path, "garbage", 7);
    CHECK(attn_recall_load(dir, &l) != ATTN_OK && !l && tu_err_has("model.safetensors"), "a corrupt directory loads: %s", attn_last_error());
    CHECK(attn_recall_load(tu_path("none"), &l) == ATTN_EIO, "a missing directory: %s", attn_last_error());
    d.ids[3] = 99; /* an id outside the vocabulary */
    CHECK(attn_recall_predict(m, 7, d.ids, p1, NULL) == ATTN_EINVAL && tu_err_has("outside"), "a bad id: %s", attn_last_error());
    attn_recall_data other = {0};
    double acc;
    if (!attn_recall_generate(4, 3, 1, &other))
        CHECK(attn_recall_accuracy(m, &other, &acc) == ATTN_EINVAL, "data of another K accepted");
    attn_recall_data_free(&other), attn_recall_data_free(&d);
    attn_recall_free(m);
}

int main(void) {
    if (!tu_scratch_new("test_recall")) return 1;
    test_generator();
    test_hard_softmax();
    test_gradients();
    test_addresses();
    test_files();
    tu_scratch_remove();
    return tu_summary("test_recall");
}
