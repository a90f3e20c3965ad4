/* Decoding of the encoder-decoder models (attn/seq2seq.h): greedy (a batch of sentences at
 * once) and beam search (one sentence at a time, its K hypotheses as the batch), both step by
 * step on the model's own graph without gradients; and the text-level calls.
 *
 * Beam search keeps K live hypotheses. At each step every live one is extended by every
 * token; of the 2K best extensions (by summed log-probability) those ending in <eos> are
 * finished, scored logp / len^alpha (len counting <eos>), and the best others stay live, up
 * to K. Search stops once K hypotheses have finished or at max_len (the live ones are then
 * finished without <eos>); the best score wins. With K = 1 this is exactly greedy decoding.
 *
 * Letters: B batch (sentences or beams), S source positions, V target vocabulary, K beam.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/seq2seq.h"
#include "attn/layers.h"
#include "core/internal.h"
#include "models/s2s_internal.h"

attn_s2s_decode_opts attn_s2s_decode_defaults(void) {
    attn_s2s_decode_opts o;
    memset(&o, 0, sizeof o);
    o.beam = 1;
    o.len_alpha = 1.0f;
    return o;
}

void attn_s2s_hyp_free(attn_s2s_hyp *h) {
    if (!h) return;
    attn_free(h->ids);
    attn_free(h->align);
    memset(h, 0, sizeof *h);
}

void attn_s2s_translation_free(attn_s2s_translation *t) {
    if (!t) return;
    attn_tokens_free(&t->src);
    attn_tokens_free(&t->out);
    attn_s2s_hyp_free(&t->hyp);
    attn_free(t->text);
    memset(t, 0, sizeof *t);
}

static int max_len_for(const attn_s2s_decode_opts *o, int S) {
    int L = o->max_len > 0 ? o->max_len : 2 * S + 10;
    return L;
}

static double norm_score(double logp, int len, double alpha) {
    return alpha != 0.0 && len > 0 ? logp / pow((double)len, alpha) : logp;
}

/* A copy of rows of x (B, C) picked by idx (B), as a new input node. */
static attn_var *gather_rows(attn_graph *g, attn_var *x, const int *idx, int B) {
    if (!x) return NULL;
    int64_t C = x->numel / x->shape[0];
    attn_var *y = attn_graph_input(g, 2, (int64_t[]){B, C}, NULL);
    if (!y) return NULL;
    for (int i = 0; i < B; i++) memcpy(y->data + i * C, x->data + idx[i] * C, (size_t)C * sizeof(float));
    return y;
}

static int check_src(const attn_s2s *m, const int32_t *src, int n) {
    for (int i = 0; i < n; i++)
        if (src[i] < 0 || src[i] >= m->cfg.src_vocab)
            return attn__error(ATTN_EINVAL, "seq2seq decode: source id %d at position %d is outside [0, %d)", (int)src[i], i,
                               m->cfg.src_vocab);
    if (n > ATTN_S2S_MAX_SRC) return attn__error(ATTN_EINVAL, "seq2seq decode: %d source tokens (at most %d)", n, ATTN_S2S_MAX_SRC);
    return ATTN_OK;
}

/* ---- Greedy, a batch of sentences --------------------------------------------------------- */

static int greedy_batch(attn_s2s *m, int n, const int32_t *const *src, const int *len, const attn_s2s_decode_opts *o,
                        attn_s2s_hyp *hyps) {
    attn_graph *g = m->g;
    const int V = m->cfg.tgt_vocab, has_w = m->cfg.attention != ATTN_S2S_NONE;
    int S = 1, Lmax = 0;
    for (int i = 0; i < n; i++) {
        if (len[i] > S) S = len[i];
        int L = max_len_for(o, len[i]);
        if (L > Lmax) Lmax = L;
    }
    int st = ATTN_OK;
    int32_t *ids = attn_calloc((size_t)S * n + 3 * (size_t)n, sizeof(int32_t));
    int32_t *lens = ids + (size_t)S * n, *y = lens + n, *done = y + n;
    int32_t *toks = attn_malloc(((size_t)Lmax + 1) * n * sizeof(int32_t));
    float *W = has_w ? attn_malloc(((size_t)Lmax + 1) * n * S * sizeof(float)) : NULL;
    float *lp = attn_malloc((size_t)n * V * sizeof(float)); /* (n, V) */
    double *logp = attn_calloc((size_t)n, sizeof(double));
    int *live = attn_malloc((size_t)n * sizeof(int));
    if (!ids || !toks || (has_w && !W) || !lp || !logp || !live) {
        st = ATTN_ENOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        lens[i] = len[i];
        for (int j = 0; j < len[i]; j++) ids[(size_t)j * n + i] = src[i][j];
        y[i] = ATTN_BOS;
    }
    attn_graph_reset(g);
    s2s_enc enc;
    if (!attn__s2s_encode(m, g, ids, lens, S, n, &enc)) goto fail;
    attn_var *s = enc.s0, *c = enc.c0;
    int left = n;
    for (int t = 0; t <= Lmax && left > 0; t++) {
        for (int i = 0; i < n; i++)
            if (!done[i] && t == max_len_for(o, len[i])) { /* max_len reached: no <eos> */
                done[i] = 1, left--;
                hyps[i].n = t, hyps[i].eos = 0;
            }
        if (!left) break;
        attn_var *s1 = NULL, *c1 = NULL, *w = NULL, *hid = NULL;
        attn_var *logits = attn__s2s_step(m, g, &enc, y, s, c, &s1, &c1, &w, &hid);
        if (!logits) goto fail;
        int nl = 0;
        for (int i = 0; i < n; i++)
            if (!done[i]) {
                attn_log_softmax_forward(lp + (size_t)i * V, logits->data + (int64_t)i * V, 1, V);
                live[nl++] = i;
            }
        if (o->hook && (st = o->hook->fn(o->hook->ctx, nl, live, hid->data, (int)(hid->numel / n), lp, V))) goto done;
        for (int k = 0; k < nl; k++) {
            int i = live[k];
            const float *lpi = lp + (size_t)i * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (lpi[v] > lpi[best]) best = v;
            toks[(size_t)t * n + i] = best;
            if (has_w) memcpy(W + ((size_t)t * n + i) * S, w->data + (int64_t)i * S, (size_t)S * sizeof(float));
            logp[i] += lpi[best];
            y[i] = best;
            if (best == ATTN_EOS) {
                done[i] = 1, left--;
                hyps[i].n = t, hyps[i].eos = 1;
            }
        }
        s = s1, c = c1;
    }
    for (int i = 0; i < n; i++) {
        attn_s2s_hyp *h = &hyps[i];
        int rows = h->n + h->eos;
        h->S = len[i];
        h->logp = logp[i];
        h->score = norm_score(logp[i], rows, o->len_alpha);
        h->ids = attn_malloc((size_t)(h->n ? h->n : 1) * sizeof(int32_t));
        h->align = has_w ? attn_malloc((size_t)(rows ? rows : 1) * len[i] * sizeof(float)) : NULL;
        if (!h->ids || (has_w && !h->align)) {
            st = ATTN_ENOMEM;
            goto done;
        }
        for (int t = 0; t < h->n; t++) h->ids[t] = toks[(size_t)t * n + i];
        for (int t = 0; has_w && t < rows; t++) memcpy(h->align + (size_t)t * len[i], W + ((size_t)t * n + i) * S, (size_t)len[i] * sizeof(float));
    }
    goto done;
fail:
    st = attn_graph_status(g);
    if (!st) st = attn__error(ATTN_EINVAL, "seq2seq decode failed");
done:
    attn_graph_reset(g);
    attn_free(ids), attn_free(toks), attn_free(W), attn_free(lp), attn_free(logp), attn_free(live);
    return st;
}

/* ---- Beam search, one sentence ------------------------------------------------------------- */

typedef struct {
    double score; /* summed log-probability */
    int k, v;     /* parent row, token */
} cand;

typedef struct {
    int t, k, eos; /* the step of its last token (or <eos>), its row at that step */
    double logp, score;
} fin;

int attn__s2s_beam(attn_s2s *m, const int32_t *src, int len, const attn_s2s_decode_opts *o, attn_s2s_hyp *h) {
    attn_graph *g = m->g;
    const int V = m->cfg.tgt_vocab, K = o->beam, has_w = m->cfg.attention != ATTN_S2S_NONE;
    const int L = max_len_for(o, len), S = len;
    const double alpha = o->len_alpha;
    int st = ATTN_OK, nfin = 0, t = 0;
    int32_t *ids = attn_malloc(((size_t)S + 2) * K * sizeof(int32_t));
    int32_t *lens = ids ? ids + (size_t)S * K : NULL, *y = lens ? lens + K : NULL;
    /* tok[t][k]: the token chosen at step t for row k (of the rows after step t), par[t][k]
     * the row it extends; W[t][k] the weights row k used at step t */
    int *tok = attn_malloc((size_t)L * K * sizeof(int)), *par = attn_malloc((size_t)L * K * sizeof(int));
    float *W = has_w ? attn_malloc(((size_t)L + 1) * K * S * sizeof(float)) : NULL;
    float *lp = attn_malloc((size_t)K * V * sizeof(float)); /* (K, V) */
    double *sc = attn_malloc((size_t)K * sizeof(double));
    cand *cs = attn_malloc((size_t)2 * K * sizeof(cand));
    fin *fs = attn_malloc((size_t)2 * K * sizeof(fin));
    int *pidx = attn_malloc((size_t)K * sizeof(int)), *live = attn_malloc((size_t)K * sizeof(int));
    if (!ids || !tok || !par || (has_w && !W) || !lp || !sc || !cs || !fs || !pidx || !live) {
        st = ATTN_ENOMEM;
        goto done;
    }
    /* the source repeated K times: (S, K); only row 0 is live at first */
    for (int j = 0; j < S; j++)
        for (int k = 0; k < K; k++) ids[(size_t)j * K + k] = src[j];
    for (int k = 0; k < K; k++) lens[k] = S, y[k] = ATTN_BOS, sc[k] = k ? -INFINITY : 0.0;
    attn_graph_reset(g);
    s2s_enc enc;
    if (!attn__s2s_encode(m, g, ids, lens, S, K, &enc)) goto fail;
    attn_var *s = enc.s0, *c = enc.c0;
    int alive = 1;
    for (t = 0; t < L && alive > 0 && nfin < K; t++) {
        attn_var *s1 = NULL, *c1 = NULL, *w = NULL, *hid = NULL;
        attn_var *logits = attn__s2s_step(m, g, &enc, y, s, c, &s1, &c1, &w, &hid);
        if (!logits) goto fail;
        if (has_w) memcpy(W + (size_t)t * K * S, w->data, (size_t)K * S * sizeof(float));
        int nl = 0;
        for (int k = 0; k < K; k++)
            if (sc[k] != -INFINITY) {
                attn_log_softmax_forward(lp + (size_t)k * V, logits->data + (int64_t)k * V, 1, V);
                live[nl++] = k;
            }
        if (o->hook && (st = o->hook->fn(o->hook->ctx, nl, live, hid->data, (int)(hid->numel / K), lp, V))) goto done;
        /* the 2K best extensions, sorted by score (ties: lower row, then lower token) */
        int nc = 0, cap = 2 * K;
        for (int kk = 0; kk < nl; kk++) {
            int k = live[kk];
            const float *lpk = lp + (size_t)k * V;
            for (int v = 0; v < V; v++) {
                double f = sc[k] + lpk[v];
                if (nc == cap && !(f > cs[nc - 1].score)) continue;
                int i = nc < cap ? nc++ : nc - 1;
                while (i > 0 && f > cs[i - 1].score) {
                    cs[i] = cs[i - 1];
                    i--;
                }
                cs[i].score = f, cs[i].k = k, cs[i].v = v;
            }
        }
        int na = 0;
        for (int i = 0; i < nc && na < K && nfin < K; i++) {
            if (cs[i].v == ATTN_EOS) {
                fin *f = &fs[nfin++];
                f->t = t, f->k = cs[i].k, f->eos = 1, f->logp = cs[i].score;
                f->score = norm_score(f->logp, t + 1, alpha);
            } else {
                tok[(size_t)t * K + na] = cs[i].v;
                par[(size_t)t * K + na] = cs[i].k;
                pidx[na] = cs[i].k;
                sc[na] = cs[i].score;
                y[na] = cs[i].v;
                na++;
            }
        }
        for (int k = na; k < K; k++) pidx[k] = 0, sc[k] = -INFINITY, y[k] = ATTN_PAD;
        alive = na;
        if (nfin >= K || alive == 0) break;
        s = gather_rows(g, s1, pidx, K);
        if (c1) c = gather_rows(g, c1, pidx, K);
        if (!s || (c1 && !c)) goto fail;
    }
    if (nfin < K && t == L)
        /* out of steps: the live hypotheses (L tokens each) end without <eos> */
        for (int k = 0; k < K && nfin < 2 * K; k++) {
            if (sc[k] == -INFINITY) continue;
            fin *f = &fs[nfin++];
            f->t = L - 1, f->k = k, f->eos = 0, f->logp = sc[k];
            f->score = norm_score(f->logp, L, alpha);
        }
    int best = -1;
    for (int i = 0; i < nfin; i++)
        if (best < 0 || fs[i].score > fs[best].score) best = i;
    h->S = S;
    if (best < 0) { /* cannot happen with L >= 1; an empty hypothesis */
        if (!(h->ids = attn_malloc(sizeof(int32_t)))) st = ATTN_ENOMEM;
        goto done;
    }
    {
        fin *f = &fs[best];
        int n = f->eos ? f->t : f->t + 1, rows = n + f->eos;
        h->n = n, h->eos = f->eos, h->logp = f->logp, h->score = f->score;
        h->ids = attn_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        h->align = has_w ? attn_malloc((size_t)(rows ? rows : 1) * S * sizeof(float)) : NULL;
        if (!h->ids || (has_w && !h->align)) {
            st = ATTN_ENOMEM;
            goto done;
        }
        int k = f->k, tt = f->t;
        if (f->eos) {
            /* <eos> was chosen at step t from row k (numbered as before step t) */
            if (has_w) memcpy(h->align + (size_t)n * S, W + ((size_t)tt * K + k) * S, (size_t)S * sizeof(float));
            tt--;
        }
        for (; tt >= 0; tt--) {
            int p = par[(size_t)tt * K + k];
            h->ids[tt] = tok[(size_t)tt * K + k];
            if (has_w) memcpy(h->align + (size_t)tt * S, W + ((size_t)tt * K + p) * S, (size_t)S * sizeof(float));
            k = p;
        }
    }
    goto done;
fail:
    st = attn_graph_status(g);
    if (!st) st = attn__error(ATTN_EINVAL, "seq2seq beam search failed");
done:
    attn_graph_reset(g);
    attn_free(ids), attn_free(tok), attn_free(par), attn_free(W), attn_free(lp), attn_free(sc), attn_free(cs), attn_free(fs);
    attn_free(pidx), attn_free(live);
    return st;
}

/* ---- Teacher forcing, for the translation memory ------------------------------------------- */

static int forced_batch(attn_s2s *m, int n, const int32_t *const *src, const int *len, const int32_t *const *tgt,
                        const int *tgt_len, float *out) {
    attn_graph *g = m->g;
    const int H = m->cfg.hidden;
    int S = 1, T = 0;
    size_t *off = attn_malloc((size_t)n * sizeof(size_t)); /* each pair's first row in out */
    for (int i = 0; i < n; i++) {
        if (len[i] > S) S = len[i];
        if (tgt_len[i] + 1 > T) T = tgt_len[i] + 1;
    }
    int32_t *ids = attn_calloc((size_t)S * n + 2 * (size_t)n, sizeof(int32_t));
    if (!ids || !off) {
        attn_free(ids), attn_free(off);
        return ATTN_ENOMEM;
    }
    int32_t *lens = ids + (size_t)S * n, *y = lens + n;
    for (int i = 0; i < n; i++) {
        off[i] = i ? off[i - 1] + (size_t)tgt_len[i - 1] + 1 : 0;
        lens[i] = len[i];
        for (int j = 0; j < len[i]; j++) ids[(size_t)j * n + i] = src[i][j];
    }
    int st = ATTN_OK;
    attn_graph_reset(g);
    s2s_enc enc;
    if (!attn__s2s_encode(m, g, ids, lens, S, n, &enc)) goto fail;
    attn_var *s = enc.s0, *c = enc.c0;
    for (int t = 0; t < T; t++) {
        /* step t reads <bos> (t = 0) or y_t, as greedy decoding would had it chosen them */
        for (int i = 0; i < n; i++) y[i] = t == 0 ? ATTN_BOS : t <= tgt_len[i] ? tgt[i][t - 1] : ATTN_PAD;
        attn_var *s1 = NULL, *c1 = NULL, *hid = NULL;
        if (!attn__s2s_step(m, g, &enc, y, s, c, &s1, &c1, NULL, &hid)) goto fail;
        for (int i = 0; i < n; i++)
            if (t <= tgt_len[i]) memcpy(out + (off[i] + (size_t)t) * H, hid->data + (size_t)i * H, (size_t)H * sizeof(float));
        s = s1, c = c1;
    }
    goto done;
fail:
    st = attn_graph_status(g);
    if (!st) st = attn__error(ATTN_EINVAL, "seq2seq teacher forcing failed");
done:
    attn_graph_reset(g);
    attn_free(ids), attn_free(off);
    return st;
}

int attn__s2s_forced_states(attn_s2s *m, int n, const int32_t *const *src, const int *len, const int32_t *const *tgt,
                            const int *tgt_len, float *out) {
    for (int i = 0; i < n; i++) {
        if (len[i] < 1 || tgt_len[i] < 0) return attn__error(ATTN_EINVAL, "seq2seq teacher forcing: empty source %d", i);
        int st = check_src(m, src[i], len[i]);
        if (st) return st;
        for (int j = 0; j < tgt_len[i]; j++)
            if (tgt[i][j] < 0 || tgt[i][j] >= m->cfg.tgt_vocab)
                return attn__error(ATTN_EINVAL, "seq2seq teacher forcing: target id %d is outside [0, %d)", (int)tgt[i][j],
                                   m->cfg.tgt_vocab);
    }
    /* batches of 64 pairs, in order */
    int st = ATTN_OK;
    for (int i0 = 0; i0 < n && !st; i0 += 64) {
        int k = n - i0 < 64 ? n - i0 : 64;
        st = forced_batch(m, k, src + i0, len + i0, tgt + i0, tgt_len + i0, out);
        for (int i = i0; i < i0 + k; i++) out += (size_t)(tgt_len[i] + 1) * m->cfg.hidden;
    }
    return st;
}

int attn_s2s_decode(attn_s2s *m, int n, const int32_t *const *src, const int *src_len, const attn_s2s_decode_opts *opts,
                    attn_s2s_hyp *hyps) {
    if (!m || n < 0 || (n > 0 && (!src || !src_len || !hyps))) return attn__error(ATTN_EINVAL, "attn_s2s_decode: NULL argument");
    attn_s2s_decode_opts o = opts ? *opts : attn_s2s_decode_defaults();
    if (o.max_len < 0 || o.max_len > 100000) return attn__error(ATTN_EINVAL, "attn_s2s_decode: max_len %d", o.max_len);
    if (o.beam > 1000) return attn__error(ATTN_EINVAL, "attn_s2s_decode: beam %d is too wide", o.beam);
    if (!isfinite(o.len_alpha)) return attn__error(ATTN_EINVAL, "attn_s2s_decode: bad len_alpha");
    for (int i = 0; i < n; i++) {
        memset(&hyps[i], 0, sizeof hyps[i]);
        if (src_len[i] < 0 || (src_len[i] > 0 && !src[i])) return attn__error(ATTN_EINVAL, "attn_s2s_decode: bad source %d", i);
        int st = check_src(m, src[i], src_len[i]);
        if (st) return st;
    }
    int st = ATTN_OK;
    if (o.beam <= 1) {
        /* batches of up to 64 non-empty sentences, in order */
        enum { CHUNK = 64 };
        const int32_t *bs[CHUNK];
        int bl[CHUNK], bi[CHUNK];
        attn_s2s_hyp bh[CHUNK];
        int k = 0;
        for (int i = 0; i <= n && !st; i++) {
            if (i < n && src_len[i] > 0) {
                bs[k] = src[i], bl[k] = src_len[i], bi[k] = i;
                k++;
            }
            if ((k == CHUNK || i == n) && k > 0) {
                memset(bh, 0, sizeof bh);
                st = greedy_batch(m, k, bs, bl, &o, bh);
                for (int j = 0; j < k; j++) hyps[bi[j]] = bh[j];
                k = 0;
            }
        }
    } else {
        for (int i = 0; i < n && !st; i++)
            if (src_len[i] > 0) st = attn__s2s_beam(m, src[i], src_len[i], &o, &hyps[i]);
    }
    for (int i = 0; i < n && !st; i++)
        if (src_len[i] == 0 && !(hyps[i].ids = attn_malloc(sizeof(int32_t)))) st = ATTN_ENOMEM;
    if (st)
        for (int i = 0; i < n; i++) attn_s2s_hyp_free(&hyps[i]);
    return st;
}

/* ---- Text ---------------------------------------------------------------------------------- */

int attn_s2s_encode_source(attn_s2s *m, const char *sentence, int32_t **ids, int *n, int *n_unk) {
    if (!m || !sentence || !ids || !n) return attn__error(ATTN_EINVAL, "attn_s2s_encode_source: NULL argument");
    *ids = NULL, *n = 0;
    if (n_unk) *n_unk = 0;
    if (!m->voc.src) return attn__error(ATTN_EINVAL, "attn_s2s_encode_source: the model has no vocabularies");
    int st = attn_tokenize(m->cfg.src_tok, sentence, &m->tok);
    if (st) return st;
    if (m->tok.n == 0) return ATTN_OK;
    if (m->tok.n > ATTN_S2S_MAX_SRC)
        return attn__error(ATTN_EINVAL, "the sentence has %d tokens (at most %d)", m->tok.n, ATTN_S2S_MAX_SRC);
    int cap = m->tok.n + 1;
    if (!(*ids = attn_malloc((size_t)cap * sizeof(int32_t)))) return ATTN_ENOMEM;
    st = attn_vocab_encode(m->voc.src, &m->tok, ATTN_ENC_EOS, *ids, cap, n, n_unk);
    if (st) {
        attn_free(*ids);
        *ids = NULL, *n = 0;
    }
    return st;
}

int attn_s2s_translate(attn_s2s *m, const char *sentence, const attn_s2s_decode_opts *opts, attn_s2s_translation *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_s2s_translate: NULL output");
    memset(out, 0, sizeof *out);
    if (!m || !sentence) return attn__error(ATTN_EINVAL, "attn_s2s_translate: NULL argument");
    if (!m->voc.src || !m->voc.tgt) return attn__error(ATTN_EINVAL, "attn_s2s_translate: the model has no vocabularies");
    int32_t *ids = NULL;
    int n = 0, st = attn_s2s_encode_source(m, sentence, &ids, &n, &out->n_unk);
    const char **toks = NULL;
    if (!st && n > 0) {
        /* the source tokens as written, then <eos> */
        if (!(toks = attn_malloc((size_t)n * sizeof(char *)))) st = ATTN_ENOMEM;
        else {
            for (int i = 0; i < n - 1; i++) toks[i] = m->tok.tok[i];
            toks[n - 1] = ATTN_EOS_TOKEN;
            st = attn_tokens_set(&out->src, toks, n);
        }
    }
    if (!st) {
        const int32_t *src[1] = {ids};
        int len[1] = {n};
        st = attn_s2s_decode(m, 1, src, len, opts, &out->hyp);
    }
    if (!st) st = attn_vocab_decode(m->voc.tgt, out->hyp.ids, out->hyp.n, 0, &out->out);
    if (!st) st = attn_detokenize(m->cfg.tgt_tok, out->out.tok, out->out.n, ATTN_DETOK_CAPITALIZE, &out->text);
    attn_free(ids);
    attn_free((void *)toks);
    if (st) attn_s2s_translation_free(out);
    return st;
}
