/* Helpers of the seq2seq subcommands (see cli_s2s.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli_s2s.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attn/attn.h"

void s2s_data_free(s2s_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        if (d->src) free(d->src[i]);
        if (d->tgt) free(d->tgt[i]);
    }
    free(d->src), free(d->tgt), free(d->n_src), free(d->n_tgt), free(d->src_tokens);
    free((void *)d->ref), free((void *)d->src_text);
    memset(d, 0, sizeof *d);
}

int s2s_data_encode(attn_translator *m, const attn_pairs *p, int src_col, int max_len, s2s_data *out) {
    memset(out, 0, sizeof *out);
    const attn_vocab *sv = attn_translator_src_vocab(m), *tv = attn_translator_tgt_vocab(m);
    attn_tok_kind src_tok = attn_translator_src_tok(m), tgt_tok = attn_translator_tgt_tok(m);
    int n = p->n;
    out->src = calloc((size_t)n + 1, sizeof *out->src);
    out->tgt = calloc((size_t)n + 1, sizeof *out->tgt);
    out->n_src = calloc((size_t)n + 1, sizeof(int));
    out->n_tgt = calloc((size_t)n + 1, sizeof(int));
    out->src_tokens = calloc((size_t)n + 1, sizeof(int));
    out->ref = calloc((size_t)n + 1, sizeof(char *));
    out->src_text = calloc((size_t)n + 1, sizeof(char *));
    if (!out->src || !out->tgt || !out->n_src || !out->n_tgt || !out->src_tokens || !out->ref || !out->src_text) {
        s2s_data_free(out);
        return ATTN_ENOMEM;
    }
    attn_tokens ts = {0}, tt = {0};
    int st = ATTN_OK;
    for (int i = 0; i < n && !st; i++) {
        const char *s = p->pair[i].side[src_col], *t = p->pair[i].side[1 - src_col];
        if ((st = attn_tokenize(src_tok, s, &ts)) || (st = attn_tokenize(tgt_tok, t, &tt))) break;
        if (ts.n == 0 || (max_len > 0 && (ts.n > max_len || tt.n > max_len)) || ts.n > ATTN_S2S_MAX_SRC) {
            out->dropped++;
            out->empty += ts.n == 0;
            continue;
        }
        int k = out->n;
        int32_t *si = malloc(((size_t)ts.n + 1) * sizeof(int32_t)), *ti = malloc(((size_t)tt.n + 2) * sizeof(int32_t));
        if (!si || !ti) {
            free(si), free(ti);
            st = ATTN_ENOMEM;
            break;
        }
        int ns = 0, nt = 0, us = 0, ut = 0;
        st = attn_vocab_encode(sv, &ts, ATTN_ENC_EOS, si, ts.n + 1, &ns, &us);
        if (!st) st = attn_vocab_encode(tv, &tt, ATTN_ENC_BOS | ATTN_ENC_EOS, ti, tt.n + 2, &nt, &ut);
        out->src[k] = si, out->tgt[k] = ti;
        out->n++;
        if (st) break;
        out->n_src[k] = ns, out->n_tgt[k] = nt - 2, out->src_tokens[k] = ts.n;
        out->ref[k] = t, out->src_text[k] = s;
        out->unk_src += us, out->unk_tgt += ut, out->tok_src += ts.n, out->tok_tgt += tt.n;
    }
    attn_tokens_free(&ts), attn_tokens_free(&tt);
    if (st) s2s_data_free(out);
    return st;
}

int s2s_build_vocabs(const attn_pairs *train, int src_col, attn_tok_kind src_tok, attn_tok_kind tgt_tok, int min_count,
                     int max_size, int joint, attn_vocab **src, attn_vocab **tgt) {
    *src = *tgt = NULL;
    attn_counter *cs = NULL, *ct = NULL;
    attn_tokens t = {0};
    int st = attn_counter_new(&cs);
    if (!st && !joint) st = attn_counter_new(&ct);
    for (int i = 0; i < train->n && !st; i++) {
        st = attn_tokenize(src_tok, train->pair[i].side[src_col], &t);
        if (!st) st = attn_counter_add_tokens(cs, &t);
        if (!st) st = attn_tokenize(tgt_tok, train->pair[i].side[1 - src_col], &t);
        if (!st) st = attn_counter_add_tokens(joint ? cs : ct, &t);
    }
    if (!st) st = attn_vocab_build(cs, min_count, max_size, src);
    if (!st) st = attn_vocab_build(joint ? cs : ct, min_count, max_size, tgt);
    attn_tokens_free(&t);
    attn_counter_free(cs), attn_counter_free(ct);
    if (st) {
        attn_vocab_free(*src), attn_vocab_free(*tgt);
        *src = *tgt = NULL;
    }
    return st;
}

int s2s_hyp_text(const attn_translator *m, const attn_s2s_hyp *h, char **out) {
    attn_tokens t = {0};
    int st = attn_vocab_decode(attn_translator_tgt_vocab(m), h->ids, h->n, 0, &t);
    if (!st) st = attn_detokenize(attn_translator_tgt_tok(m), t.tok, t.n, 0, out);
    attn_tokens_free(&t);
    return st;
}

int s2s_ref_text(const attn_translator *m, const char *ref, char **out) {
    attn_tokens t = {0};
    attn_tok_kind k = attn_translator_tgt_tok(m);
    int st = attn_tokenize(k, ref, &t);
    if (!st) st = attn_detokenize(k, t.tok, t.n, 0, out);
    attn_tokens_free(&t);
    return st;
}

attn_bleu_opts s2s_bleu_opts(const attn_translator *m) {
    attn_bleu_opts o;
    memset(&o, 0, sizeof o);
    o.tokenize = attn_translator_tgt_tok(m) == ATTN_TOK_ZH ? ATTN_BLEU_TOK_ZH : ATTN_BLEU_TOK_13A;
    return o;
}

static int bucket_of(const s2s_eval_result *r, int len) {
    for (int b = 0; b < r->n_buckets - 1; b++)
        if (len <= r->edges[b]) return b;
    return r->n_buckets - 1;
}

int s2s_evaluate(attn_translator *m, const s2s_data *d, const attn_s2s_decode_opts *opts, const int *edges, int n_edges,
                 char **hyps, void (*progress)(int done, int total), s2s_eval_result *out) {
    memset(out, 0, sizeof *out);
    if (n_edges < 0 || n_edges > S2S_MAX_BUCKETS - 1) return ATTN_EINVAL;
    out->n_buckets = n_edges + 1;
    for (int b = 0; b < n_edges; b++) out->edges[b] = edges[b];
    attn_bleu_opts bo = s2s_bleu_opts(m);
    attn_bleu_stats acc[S2S_MAX_BUCKETS], all;
    int hits[S2S_MAX_BUCKETS], all_hits = 0;
    memset(acc, 0, sizeof acc), memset(&all, 0, sizeof all), memset(hits, 0, sizeof hits);
    double t0 = attn_time_now();
    enum { CHUNK = 256 };
    attn_s2s_hyp *hs = calloc(CHUNK, sizeof *hs);
    if (!hs) return ATTN_ENOMEM;
    int st = ATTN_OK;
    for (int i0 = 0; i0 < d->n && !st; i0 += CHUNK) {
        int k = d->n - i0 < CHUNK ? d->n - i0 : CHUNK;
        st = attn_translator_decode(m, k, (const int32_t *const *)(d->src + i0), d->n_src + i0, opts, hs);
        for (int j = 0; j < k && !st; j++) {
            int i = i0 + j;
            char *h = NULL, *r = NULL;
            st = s2s_hyp_text(m, &hs[j], &h);
            if (!st) st = s2s_ref_text(m, d->ref[i], &r);
            int b = bucket_of(out, d->src_tokens[i]);
            if (!st) st = attn_bleu_add(h, r, &bo, &acc[b]);
            if (!st) st = attn_bleu_add(h, r, &bo, &all);
            double em = 0.0;
            const char *hp[1] = {h}, *rp[1] = {r};
            if (!st) st = attn_exact_match(hp, rp, 1, &bo, &em);
            if (!st) {
                hits[b] += em > 0.0, all_hits += em > 0.0;
                out->count[b]++;
            }
            if (hyps && !st) hyps[i] = h;
            else attn_free(h);
            attn_free(r);
        }
        for (int j = 0; j < k; j++) out->tokens += hs[j].n + hs[j].eos, attn_s2s_hyp_free(&hs[j]);
        if (progress && !st) progress(i0 + k, d->n);
    }
    free(hs);
    if (st) return st;
    for (int b = 0; b < out->n_buckets; b++) {
        attn_bleu_compute(&acc[b], &bo, &out->bleu[b]);
        out->exact[b] = out->count[b] ? 100.0 * hits[b] / out->count[b] : 0.0;
    }
    attn_bleu_compute(&all, &bo, &out->total);
    out->n = d->n;
    out->total_exact = d->n ? 100.0 * all_hits / d->n : 0.0;
    out->seconds = attn_time_now() - t0;
    return ATTN_OK;
}

const char *s2s_bucket_label(const s2s_eval_result *r, int b, char *buf, size_t cap) {
    int lo = b == 0 ? 1 : r->edges[b - 1] + 1;
    if (b == r->n_buckets - 1) snprintf(buf, cap, "%d+", lo);
    else snprintf(buf, cap, "%d-%d", lo, r->edges[b]);
    return buf;
}

int s2s_mkdirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char save = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            buf[i] = save;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int s2s_parse_edges(const char *s, int *edges, int cap) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || n >= cap || (n > 0 && v <= edges[n - 1])) return -1;
        edges[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end) return -1;
        p = end;
    }
    return n;
}

/* The command line, for the checkpoint's record. */
char *s2s_command_line(int argc, char **argv) {
    size_t n = 32;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) * 4 + 3;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "attn train");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != 0;
        for (const char *c = a; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:+", *c) && !((unsigned char)*c & 0x80))
                plain = 0;
        if (plain) p += sprintf(p, " %s", a);
        else {
            p += sprintf(p, " '");
            for (const char *c = a; *c; c++) {
                if (*c == '\'') p += sprintf(p, "'\\''");
                else *p++ = *c;
            }
            *p++ = '\'';
            *p = 0;
        }
    }
    return s;
}

/* ---- A translation memory ------------------------------------------------------------------ */

int s2s_memory_option(cli_args *p, s2s_memory *m) {
    if (cli_str(p, "--memory", &m->path)) return 1;
    if (cli_int(p, "--k", 1, ATTN_KNN_MAX_K, &m->k)) return m->have_k = 1;
    if (cli_float(p, "--temperature", &m->temperature)) return m->have_t = 1;
    if (cli_float(p, "--lambda", &m->lambda)) return m->have_l = 1;
    if (cli_int(p, "--nprobe", 1, 65536, &m->nprobe) || cli_int(p, "--nlist", 1, 65536, &m->nlist)) return 1;
    return 0;
}

int s2s_memory_open(const char *cmd, attn_translator *t, s2s_memory *m, attn_s2s_decode_opts *d, int quiet) {
    if (!m->path) {
        if (m->have_k || m->have_t || m->have_l || m->nprobe || m->nlist)
            return cli_usage(cmd, "--k, --temperature, --lambda, --nprobe and --nlist need --memory STORE");
        return CLI_OK;
    }
    int st = attn_knn_load(m->path, &m->store);
    if (st) return cli_fail_lib(cmd, st, m->path);
    if ((st = attn_knn_check(m->store, t))) return cli_fail(cmd, "%s: %s", m->path, attn_last_error());
    int tuned = 0;
    attn_knn_params kp = attn_knn_get_params(m->store, &tuned);
    if (m->have_k) kp.k = m->k;
    if (m->have_t) kp.temperature = m->temperature;
    if (m->have_l) kp.lambda = m->lambda;
    if (attn_knn_params_check(&kp)) return cli_usage(cmd, "%s", attn_last_error());
    if (m->nlist && !m->nprobe) return cli_usage(cmd, "--nlist needs --nprobe N");
    if (m->nprobe) {
        int64_t nl = m->nlist ? m->nlist : 256, n = attn_knn_count(m->store);
        if (nl > n) nl = n > 0 ? n : 1;
        double t0 = attn_time_now();
        if ((st = attn_knn_index(m->store, (int)nl, m->nprobe))) return cli_fail(cmd, "%s: %s", m->path, attn_last_error());
        if (!quiet)
            fprintf(stderr, "memory %s: index of %lld lists built in %.1f s; each query scans %d of them\n", m->path, (long long)nl,
                    attn_time_now() - t0, m->nprobe);
    }
    attn_knn_hook_init(&m->hook, m->store, &kp);
    d->hook = &m->hook.hook;
    if (!quiet)
        fprintf(stderr, "memory %s: %lld entries of %d floats; k %d, temperature %g, lambda %g (%s)\n", m->path,
                (long long)attn_knn_count(m->store), attn_knn_dim(m->store), kp.k, (double)kp.temperature, (double)kp.lambda,
                m->have_k || m->have_t || m->have_l ? "options" : tuned ? "tuned, from the store" : "defaults, not tuned");
    return CLI_OK;
}

void s2s_memory_close(s2s_memory *m) {
    attn_knn_free(m->store);
    m->store = NULL;
}
