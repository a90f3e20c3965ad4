/* The encoder-decoder models (attn/seq2seq.h) on tiny configurations made on the fly:
 *  - the gradient of the whole training loss (encoder, attention, decoder, output layer,
 *    dropout and label smoothing) against central finite differences, for every attention
 *    kind, GRU and LSTM, one and two encoder directions;
 *  - step-by-step decoding gives the teacher-forced forward's logits (the two code paths of
 *    every model compute the same function);
 *  - greedy decoding == beam search with K = 1; beam hypotheses well formed;
 *  - checkpoints: save/load round trip (same weights, same translation), and a truncated,
 *    corrupted or missing checkpoint gives a clear error, never a crash;
 *  - text: unknown characters and invalid UTF-8 become <unk>; an empty or blank line gives
 *    an empty translation; the configuration's JSON round trip and its errors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/seq2seq.h"
#include "attn/translator.h"
#include "models/s2s_internal.h"
#include "testutil.h"

/* ---- Fixtures ------------------------------------------------------------------------------ */

static attn_s2s *tiny(attn_s2s_attention att, attn_s2s_rnn rnn, int bidir, float dropout, uint64_t seed) {
    attn_s2s_config c = attn_s2s_defaults();
    c.attention = att, c.rnn = rnn, c.bidirectional = bidir;
    c.src_vocab = 9, c.tgt_vocab = 8, c.emb = 5, c.hidden = 6, c.attn_size = 7, c.dropout = dropout;
    attn_s2s *m = NULL;
    CHECK(attn_s2s_new(&c, seed, &m) == ATTN_OK, "new: %s", attn_last_error());
    return m;
}

/* B = 3 sentences of source lengths 5, 3, 1 and target lengths 4, 2, 3, time-major. */
enum { B = 3, S = 5, T = 4 };
static int32_t SRC[S * B], SLEN[B] = {5, 3, 1}, TIN[T * B], TOUT[T * B];

static void make_batch(attn_s2s_batch *b) {
    const int tl[B] = {4, 2, 3};
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < S; j++) SRC[j * B + i] = j < SLEN[i] - 1 ? 4 + (i + 2 * j) % 5 : j == SLEN[i] - 1 ? ATTN_EOS : ATTN_PAD;
        for (int t = 0; t < T; t++) {
            int y = 4 + (3 * i + t) % 4;
            TOUT[t * B + i] = t < tl[i] - 1 ? y : t == tl[i] - 1 ? ATTN_EOS : ATTN_PAD;
            TIN[t * B + i] = t == 0 ? ATTN_BOS : t < tl[i] ? TOUT[(t - 1) * B + i] : ATTN_PAD;
        }
    }
    b->B = B, b->S = S, b->T = T;
    b->src = SRC, b->src_len = SLEN, b->tgt_in = TIN, b->tgt_out = TOUT;
}

static double loss_of(attn_s2s *m, attn_graph *g, const attn_s2s_batch *b) {
    attn_graph_reset(g);
    attn_graph_seed(g, 7); /* the same dropout masks every time */
    attn_var *l = attn_s2s_loss(m, g, b, 0.1f);
    return l ? (double)l->data[0] : NAN;
}

/* ---- Gradient check --------------------------------------------------------------------- */

static void grad_check(attn_s2s_attention att, attn_s2s_rnn rnn, int bidir) {
    char what[128];
    snprintf(what, sizeof what, "%s %s%s", attn_s2s_attention_name(att), attn_s2s_rnn_name(rnn), bidir ? " bidirectional" : "");
    attn_s2s *m = tiny(att, rnn, bidir, 0.25f, 11);
    if (!m) return;
    attn_params *ps = attn_s2s_params(m);
    /* larger weights than the default init, so the attention is far from uniform */
    for (int i = 0; i < attn_params_count(ps); i++) {
        attn_param *p = attn_params_at(ps, i);
        for (int64_t k = 0; k < p->numel; k++) p->data[k] *= 2.0f;
    }
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_s2s_batch b;
    make_batch(&b);
    attn_params_zero_grad(ps);
    attn_graph_reset(g);
    attn_graph_seed(g, 7);
    attn_var *loss = attn_s2s_loss(m, g, &b, 0.1f);
    CHECK(loss && attn_graph_backward(g, loss) == ATTN_OK, "%s: backward: %s", what, attn_last_error());
    if (!loss) goto out;
    CHECK(isfinite(loss->data[0]) && loss->data[0] > 0.0f, "%s: loss %g", what, (double)loss->data[0]);
    int bad = 0, checked = 0;
    double worst = 0.0;
    const float eps = 1e-2f;
    for (int i = 0; i < attn_params_count(ps); i++) {
        attn_param *p = attn_params_at(ps, i);
        /* up to 8 elements of each tensor, spread over it */
        int64_t step = p->numel / 8 + 1;
        for (int64_t k = (i * 3) % step; k < p->numel; k += step) {
            float save = p->data[k];
            p->data[k] = save + eps;
            double lp = loss_of(m, g, &b);
            p->data[k] = save - eps;
            double lm = loss_of(m, g, &b);
            p->data[k] = save;
            double num = (lp - lm) / (2.0 * eps), got = p->grad[k];
            double err = fabs(got - num) / (2e-3 + 2e-2 * fabs(num));
            if (err > worst) worst = err;
            checked++;
            if (err > 1.0 && bad++ < 3)
                tu_msg("%s: d/d %s[%lld] = %.6g, finite differences %.6g", what, p->name, (long long)k, got, num);
        }
    }
    CHECK(bad == 0, "%s: %d of %d gradient elements off (worst %.2f of the tolerance)", what, bad, checked, worst);
out:
    attn_graph_free(g);
    attn_s2s_free(m);
}

/* ---- Step-by-step decoding == teacher-forced forward ----------------------------------------- */

static void step_matches_forward(attn_s2s_attention att, attn_s2s_rnn rnn, int bidir) {
    attn_s2s *m = tiny(att, rnn, bidir, 0.3f, 5);
    if (!m) return;
    attn_graph *g; CHECK(attn_graph_new(0, &g) == ATTN_OK, "%s", attn_last_error());
    attn_graph_set_training(g, 0);
    attn_graph_set_grad(g, 0);
    attn_s2s_batch b;
    make_batch(&b);
    attn_var *W = NULL;
    attn_var *logits = attn_s2s_forward(m, g, &b, &W);
    CHECK(logits && logits->ndim == 3 && logits->shape[0] == T && logits->shape[1] == B && logits->shape[2] == 8, "forward");
    CHECK((W != NULL) == (att != ATTN_S2S_NONE), "weights only with attention");
    attn_graph *g2; CHECK(attn_graph_new(0, &g2) == ATTN_OK, "%s", attn_last_error());
    attn_graph_set_training(g2, 0);
    attn_graph_set_grad(g2, 0);
    s2s_enc enc;
    CHECK(attn__s2s_encode(m, g2, SRC, SLEN, S, B, &enc), "encode");
    attn_var *s = enc.s0, *c = enc.c0;
    char what[96];
    snprintf(what, sizeof what, "step logits, %s %s%s", attn_s2s_attention_name(att), attn_s2s_rnn_name(rnn), bidir ? " bi" : "");
    for (int t = 0; t < T && logits; t++) {
        attn_var *s1, *c1 = NULL, *w = NULL;
        attn_var *lt = attn__s2s_step(m, g2, &enc, TIN + t * B, s, c, &s1, &c1, &w, NULL);
        CHECK(lt != NULL, "step %d: %s", t, attn_last_error());
        if (!lt) break;
        tu_close(what, lt->data, logits->data + (int64_t)t * B * 8, (size_t)B * 8, 1e-5, 1e-5);
        if (W && w) {
            tu_close("step weights", w->data, W->data + (int64_t)t * B * S, (size_t)B * S, 1e-5, 1e-6);
            /* rows sum to 1 over the visible keys, 0 on padding */
            for (int i = 0; i < B; i++) {
                double sum = 0.0;
                for (int j = 0; j < S; j++) {
                    sum += w->data[i * S + j];
                    if (j >= SLEN[i]) CHECK(w->data[i * S + j] == 0.0f, "padding key %d of row %d has weight", j, i);
                }
                CHECK(fabs(sum - 1.0) < 1e-5, "weights of row %d sum to %g", i, sum);
            }
        }
        s = s1, c = c1;
    }
    attn_graph_free(g);
    attn_graph_free(g2);
    attn_s2s_free(m);
}

/* ---- Greedy == beam 1 --------------------------------------------------------------------- */

static void greedy_is_beam1(attn_s2s_attention att) {
    attn_s2s *m = tiny(att, ATTN_S2S_GRU, att == ATTN_S2S_LUONG_DOT, 0.0f, 21);
    if (!m) return;
    attn_param *bs = attn_params_find(attn_s2s_params(m), "decoder.out.bias");
    enum { N = 6 };
    int32_t s0[] = {4, 5, 6, ATTN_EOS}, s1[] = {7, ATTN_EOS}, s2[] = {ATTN_EOS}, s3[] = {8, 8, 8, 8, 8, 8, 4, ATTN_EOS},
            s4[] = {ATTN_UNK, 5, ATTN_EOS}, s5[] = {6, 7, 4, 5, ATTN_EOS};
    const int32_t *src[N] = {s0, s1, s2, s3, s4, s5};
    int len[N] = {4, 2, 1, 8, 3, 5};
    for (int trial = 0; trial < 3; trial++) {
        /* trial 0: as initialised (rarely <eos>: runs into max_len); 1, 2: <eos> likelier */
        bs->data[ATTN_EOS] += trial ? 1.5f : 0.0f;
        attn_s2s_decode_opts o = attn_s2s_decode_defaults();
        o.max_len = trial == 2 ? 0 : 7;
        attn_s2s_hyp gh[N], bh[N];
        memset(gh, 0, sizeof gh), memset(bh, 0, sizeof bh);
        CHECK(attn_s2s_decode(m, N, src, len, &o, gh) == ATTN_OK, "greedy: %s", attn_last_error());
        o.beam = 1;
        CHECK(attn_s2s_decode(m, N, src, len, &o, bh) == ATTN_OK, "beam 1");
        attn_s2s_hyp kh[N];
        o.beam = 2; /* > 1: the beam search proper, one sentence at a time */
        memset(kh, 0, sizeof kh);
        int st = attn_s2s_decode(m, N, src, len, &o, kh);
        CHECK(st == ATTN_OK, "beam 2: %s", attn_last_error());
        /* beam search with K = 1, run through the beam code path */
        for (int i = 0; i < N; i++) {
            attn_s2s_hyp one;
            memset(&one, 0, sizeof one);
            attn_s2s_decode_opts o1 = o;
            o1.beam = 1;
            /* the beam search code path itself with K = 1 */
            CHECK(attn__s2s_beam(m, src[i], len[i], &o1, &one) == ATTN_OK, "beam path K=1");
            int same = one.n == gh[i].n && one.eos == gh[i].eos && !memcmp(one.ids, gh[i].ids, (size_t)one.n * sizeof(int32_t));
            CHECK(same, "trial %d sentence %d: greedy gives %d tokens (eos %d), beam K=1 %d (eos %d)", trial, i, gh[i].n, gh[i].eos,
                  one.n, one.eos);
            CHECK(fabs(one.logp - gh[i].logp) < 1e-4, "logp %g vs %g", one.logp, gh[i].logp);
            int rows = one.n + one.eos;
            if (same && one.align && gh[i].align)
                tu_close("beam K=1 alignment", one.align, gh[i].align, (size_t)rows * len[i], 1e-6, 1e-7);
            CHECK(bh[i].n == gh[i].n, "beam option 1 is greedy");
            int L = o.max_len ? o.max_len : 2 * len[i] + 10;
            CHECK(gh[i].n <= L && (gh[i].eos || gh[i].n == L), "greedy length %d (max %d, eos %d)", gh[i].n, L, gh[i].eos);
            CHECK(kh[i].n <= L && (kh[i].eos || kh[i].n == L), "beam length %d (max %d, eos %d)", kh[i].n, L, kh[i].eos);
            for (int r = 0; kh[i].align && r < kh[i].n + kh[i].eos; r++) {
                double sum = 0.0;
                for (int j = 0; j < len[i]; j++) sum += kh[i].align[r * len[i] + j];
                CHECK(fabs(sum - 1.0) < 1e-5, "beam alignment row %d sums to %g", r, sum);
            }
            attn_s2s_hyp_free(&one);
            attn_s2s_hyp_free(&gh[i]), attn_s2s_hyp_free(&bh[i]), attn_s2s_hyp_free(&kh[i]);
        }
    }
    attn_s2s_free(m);
}

/* ---- Vocabularies, text, checkpoints ------------------------------------------------------ */

static attn_vocab *vocab_of(const char *const *toks, int n) {
    attn_counter *c = NULL;
    attn_counter_new(&c);
    for (int i = 0; i < n; i++) attn_counter_add(c, toks[i], strlen(toks[i]), n - i, NULL);
    attn_vocab *v = NULL;
    attn_vocab_build(c, 1, 0, &v);
    attn_counter_free(c);
    return v;
}

static attn_s2s *with_vocabs(attn_s2s_attention att) {
    static const char *const zh[] = {"我", "你", "。", "他", "好"};   /* 爱 is unknown */
    static const char *const en[] = {"i", "you", ".", "love"};
    attn_s2s_config c = attn_s2s_defaults();
    c.attention = att;
    c.src_vocab = 9, c.tgt_vocab = 8, c.emb = 8, c.hidden = 8, c.dropout = 0.1f;
    attn_s2s *m = NULL;
    CHECK(attn_s2s_new(&c, 3, &m) == ATTN_OK, "new");
    attn_vocab *sv = vocab_of(zh, 5), *tv = vocab_of(en, 4);
    CHECK(sv && tv && attn_vocab_size(sv) == 9 && attn_vocab_size(tv) == 8, "vocabularies");
    CHECK(attn_s2s_set_vocabs(m, sv, tv) == ATTN_OK, "set vocabs: %s", attn_last_error());
    /* make "<eos>" likely so that translations are short */
    attn_params_find(attn_s2s_params(m), "decoder.out.bias")->data[ATTN_EOS] += 2.0f;
    return m;
}

static void test_text(void) {
    attn_s2s *m = with_vocabs(ATTN_S2S_BAHDANAU);
    if (!m) return;
    attn_s2s_decode_opts o = attn_s2s_decode_defaults();
    attn_s2s_translation t;
    /* unknown characters, and invalid UTF-8, are <unk> */
    CHECK(attn_s2s_translate(m, "我爱你。", &o, &t) == ATTN_OK, "translate: %s", attn_last_error());
    CHECK(t.src.n == 5 && !strcmp(t.src.tok[1], "爱") && !strcmp(t.src.tok[4], "<eos>"), "source tokens");
    CHECK(t.n_unk == 1, "one unknown character, got %d", t.n_unk);
    CHECK(t.text != NULL && t.hyp.S == 5, "a translation");
    CHECK(t.hyp.align != NULL, "alignment");
    attn_s2s_translation_free(&t);
    int32_t *ids = NULL;
    int n = 0, nu = 0;
    CHECK(attn_s2s_encode_source(m, "我\xff\xfe😀你", &ids, &n, &nu) == ATTN_OK, "encode invalid UTF-8");
    /* 我 U+FFFD U+FFFD (one per invalid byte) 😀 你 <eos> */
    CHECK(n == 6 && nu == 3 && ids[1] == ATTN_UNK && ids[2] == ATTN_UNK && ids[3] == ATTN_UNK && ids[5] == ATTN_EOS,
          "n %d, unknown %d", n, nu);
    attn_free(ids);
    /* an empty or blank line: an empty translation, no model run */
    const char *blank[] = {"", "   ", "\t\u3000 "};
    for (int i = 0; i < 3; i++) {
        CHECK(attn_s2s_translate(m, blank[i], &o, &t) == ATTN_OK, "blank line %d: %s", i, attn_last_error());
        CHECK(t.src.n == 0 && t.hyp.n == 0 && t.text && t.text[0] == 0, "blank line %d gives an empty translation", i);
        attn_s2s_translation_free(&t);
    }
    o.beam = 3;
    CHECK(attn_s2s_translate(m, "", &o, &t) == ATTN_OK && t.hyp.n == 0, "blank line, beam");
    attn_s2s_translation_free(&t);
    CHECK(attn_s2s_translate(m, "你好", &o, &t) == ATTN_OK, "beam translate");
    attn_s2s_translation_free(&t);
    /* out-of-range ids are refused */
    int32_t badid[] = {4, 99, ATTN_EOS};
    const int32_t *bp[1] = {badid};
    int bl[1] = {3};
    attn_s2s_hyp h;
    CHECK(attn_s2s_decode(m, 1, bp, bl, &o, &h) == ATTN_EINVAL, "id out of range");
    /* too long a sentence is refused with a message */
    char *longs = malloc(3 * (ATTN_S2S_MAX_SRC + 5) + 1);
    longs[0] = 0;
    for (int i = 0; i < ATTN_S2S_MAX_SRC + 5; i++) strcat(longs, "我");
    CHECK(attn_s2s_translate(m, longs, &o, &t) == ATTN_EINVAL && strstr(attn_last_error(), "tokens"), "too long");
    free(longs);
    attn_s2s_free(m);
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(data, 1, n, f);
    return fclose(f);
}

/* Loads a checkpoint through the translator interface: *t owns the model, *m is it (NULL on
 * failure or for another family). */
static int load_s2s(const char *dir, attn_translator **t, attn_s2s **m) {
    *m = NULL;
    int st = attn_translator_load(dir, t);
    if (!st) *m = attn_translator_seq2seq(*t);
    return st;
}

static void test_checkpoint(void) {
    attn_s2s *m = with_vocabs(ATTN_S2S_LUONG_GENERAL);
    if (!m) return;
    char dir[] = "/tmp/attn_s2s_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char ck[300], path[400];
    snprintf(ck, sizeof ck, "%s/model", dir);
    attn_translator *tl = NULL, *tl2 = NULL;
    CHECK(attn_translator_wrap_seq2seq(m, &tl) == ATTN_OK, "wrap");
    CHECK(attn_translator_save(tl, ck, "attn train seq2seq \"quoted\"\n") == ATTN_OK, "save: %s", attn_last_error());
    attn_translator_free(tl);
    attn_s2s *m2 = NULL;
    CHECK(load_s2s(ck, &tl2, &m2) == ATTN_OK && m2, "load: %s", attn_last_error());
    if (m2) {
        attn_params *a = attn_s2s_params(m), *b = attn_s2s_params(m2);
        CHECK(attn_params_numel(a) == attn_params_numel(b) && attn_params_count(a) == attn_params_count(b), "same parameters");
        for (int i = 0; i < attn_params_count(a); i++) {
            attn_param *p = attn_params_at(a, i), *q = attn_params_find(b, p->name);
            CHECK(q && q->numel == p->numel && !memcmp(p->data, q->data, (size_t)p->numel * sizeof(float)), "%s round trip", p->name);
        }
        CHECK(attn_s2s_get_config(m2)->attention == ATTN_S2S_LUONG_GENERAL && attn_s2s_get_config(m2)->hidden == 8, "config");
        attn_s2s_decode_opts o = attn_s2s_decode_defaults();
        attn_s2s_translation t1, t2;
        CHECK(attn_s2s_translate(m, "我你好。", &o, &t1) == ATTN_OK && attn_s2s_translate(m2, "我你好。", &o, &t2) == ATTN_OK, "translate");
        CHECK(t1.text && t2.text && !strcmp(t1.text, t2.text) && t1.hyp.logp == t2.hyp.logp, "same translation after loading");
        attn_s2s_translation_free(&t1), attn_s2s_translation_free(&t2);
        attn_translator_free(tl2);
        tl2 = NULL;
    }
    /* a missing directory */
    m2 = NULL;
    snprintf(path, sizeof path, "%s/nothing", dir);
    int st = load_s2s(path, &tl2, &m2);
    CHECK(st == ATTN_EIO && m2 == NULL, "missing checkpoint: %d %s", st, attn_last_error());
    /* a truncated model.safetensors */
    size_t n = 0;
    snprintf(path, sizeof path, "%s/model.safetensors", ck);
    char *weights = (char *)tu_read_file(path, &n);
    CHECK(weights && n > 100, "read weights");
    if (weights) {
        write_file(path, weights, n / 2);
        st = load_s2s(ck, &tl2, &m2);
        CHECK(st == ATTN_EFORMAT && m2 == NULL && strstr(attn_last_error(), "model.safetensors"), "truncated: %d %s", st, attn_last_error());
        /* same size, one byte flipped */
        weights[n - 3] ^= 0x40;
        write_file(path, weights, n);
        st = load_s2s(ck, &tl2, &m2);
        CHECK(st == ATTN_EFORMAT && m2 == NULL, "corrupted: %d %s", st, attn_last_error());
        weights[n - 3] ^= 0x40;
        write_file(path, weights, n);
        st = load_s2s(ck, &tl2, &m2);
        CHECK(st == ATTN_OK && m2, "restored: %s", attn_last_error());
        attn_translator_free(tl2);
        tl2 = NULL, m2 = NULL;
        free(weights);
    }
    /* a vocabulary changed behind the checksum's back */
    snprintf(path, sizeof path, "%s/src_vocab.txt", ck);
    char *voc = (char *)tu_read_file(path, &n);
    if (voc) {
        write_file(path, voc, n - 2);
        st = load_s2s(ck, &tl2, &m2);
        CHECK(st == ATTN_EFORMAT && m2 == NULL && strstr(attn_last_error(), "src_vocab.txt"), "vocabulary: %d %s", st, attn_last_error());
        write_file(path, voc, n);
        free(voc);
    }
    /* garbage config.json, and an empty one */
    snprintf(path, sizeof path, "%s/config.json", ck);
    char *cfg = (char *)tu_read_file(path, &n);
    write_file(path, "{\"format\": \"attn-checkpoint\", \"version\": 1, \"model\": [", 52);
    st = load_s2s(ck, &tl2, &m2);
    CHECK(st == ATTN_EFORMAT && m2 == NULL, "garbage config: %d %s", st, attn_last_error());
    write_file(path, "", 0);
    st = load_s2s(ck, &tl2, &m2);
    CHECK(st == ATTN_EFORMAT && m2 == NULL, "empty config: %d %s", st, attn_last_error());
    /* a model kind this loader does not know */
    if (cfg) {
        char *k = strstr(cfg, "\"seq2seq\"");
        if (k) memcpy(k, "\"seq2sez\"", 9);
        write_file(path, cfg, n);
        st = load_s2s(ck, &tl2, &m2);
        CHECK(st == ATTN_EFORMAT && m2 == NULL && strstr(attn_last_error(), "seq2seq"), "wrong kind: %d %s", st, attn_last_error());
        free(cfg);
    }
    /* clean up */
    const char *names[] = {"model.safetensors", "config.json", "src_vocab.txt", "tgt_vocab.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", ck, names[i]);
        unlink(path);
    }
    rmdir(ck);
    rmdir(dir);
    attn_s2s_free(m);
}

static void test_config(void) {
    attn_s2s_config c = attn_s2s_defaults(), d;
    c.src_vocab = 100, c.tgt_vocab = 50, c.attention = ATTN_S2S_LUONG_DOT, c.rnn = ATTN_S2S_LSTM, c.bidirectional = 1;
    c.dropout = 0.3f;
    char *js = NULL;
    CHECK(attn_s2s_config_to_json(&c, &js) == ATTN_OK, "to json");
    CHECK(js && attn_s2s_config_from_json(js, &d) == ATTN_OK, "from json: %s", attn_last_error());
    CHECK(d.src_vocab == 100 && d.tgt_vocab == 50 && d.attention == ATTN_S2S_LUONG_DOT && d.rnn == ATTN_S2S_LSTM &&
              d.bidirectional == 1 && d.dropout == 0.3f && d.emb == 256 && d.src_tok == ATTN_TOK_ZH,
          "config round trip");
    attn_free(js);
    const char *bad[] = {"[]", "{\"kind\": \"seq2seq\", \"attention\": \"magic\"}", "{\"kind\": \"seq2seq\", \"hidden\": -3}",
                         "{\"kind\": \"seq2seq\", \"src_vocab\": 3, \"tgt_vocab\": 10}", "{\"kind\": \"x\"}", "{", "",
                         "{\"kind\": \"seq2seq\", \"src_vocab\": 10, \"tgt_vocab\": 10, \"dropout\": 1.5}"};
    for (int i = 0; i < 8; i++) CHECK(attn_s2s_config_from_json(bad[i], &d) == ATTN_EFORMAT, "bad config %d accepted", i);
    attn_s2s *m = NULL;
    c.hidden = 7; /* odd with two directions */
    CHECK(attn_s2s_new(&c, 1, &m) == ATTN_EINVAL && !m && strstr(attn_last_error(), "even"), "odd bidirectional hidden");
    c.hidden = 8, c.src_vocab = 2;
    CHECK(attn_s2s_new(&c, 1, &m) == ATTN_EINVAL && !m, "tiny vocabulary");
    CHECK(attn_s2s_attention_parse("luong-general") == ATTN_S2S_LUONG_GENERAL && attn_s2s_attention_parse("x") == -1, "parse");
    /* parameter names as PyTorch's */
    m = tiny(ATTN_S2S_BAHDANAU, ATTN_S2S_GRU, 1, 0.0f, 1);
    if (m) {
        attn_params *ps = attn_s2s_params(m);
        const char *names[] = {"encoder.embedding.weight", "encoder.gru.weight_ih_l0", "encoder.gru.bias_hh_l0_reverse",
                               "decoder.gru.weight_ih_l0", "decoder.attention.Va.weight", "decoder.out.bias"};
        for (int i = 0; i < 6; i++) CHECK(attn_params_find(ps, names[i]) != NULL, "parameter %s", names[i]);
        CHECK(attn_params_find(ps, "decoder.gru.weight_ih_l0")->shape[1] == 5 + 6, "decoder input [emb; ctx]");
        CHECK(attn_params_find(ps, "encoder.gru.weight_hh_l0")->shape[1] == 3, "H/2 per direction");
        attn_s2s_free(m);
    }
}

int main(void) {
    test_config();
    for (int att = 0; att < 4; att++)
        for (int rnn = 0; rnn < 2; rnn++)
            for (int bi = 0; bi < 2; bi++) {
                grad_check((attn_s2s_attention)att, (attn_s2s_rnn)rnn, bi);
                step_matches_forward((attn_s2s_attention)att, (attn_s2s_rnn)rnn, bi);
            }
    for (int att = 0; att < 4; att++) greedy_is_beam1((attn_s2s_attention)att);
    test_text();
    test_checkpoint();
    return tu_summary("test_seq2seq");
}
