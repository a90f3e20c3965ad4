/* attn bench attention --mods LIST / --doc-lens LENS: what programmable attention costs.
 *
 *   --mods softcap,alibi,t5,sinks,dropout: the forward (and with --backward the backward too)
 *     with each built-in modifier, beside the same problem with the modifier written as a
 *     score_mod callback (softcap, alibi, t5: the callback computes what the built-in does),
 *     beside the same as a score_mod_tile callback (one call per tile of scores; soft-capping
 *     twice: with tanhf, and with a rational tanh that vectorises) and beside no modifier at
 *     all. The target: a callback within 1.3x of the built-in.
 *   --doc-lens LENS: documents packed in each row (comma-separated lengths, or one length
 *     repeated to fill N), as attn_mods.doc_offsets, beside the same mask given as a dense bool
 *     mask (N, N). The target: 8 documents in N = 4096 at least 5x faster than the dense mask.
 * Medians of --repeat runs after one warm-up, wall clock; the variants of a modifier (none,
 * built-in, callbacks) take turns run by run, so that a shared machine's load hits them alike.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench_mods.h"

#define SOFTCAP 30.0f
#define T5_BUCKETS 32
#define T5_MAXD 128

typedef struct {
    const float *slopes, *table;
    const int *bucket; /* T5: the bucket of j - i at bucket[j - i], as a user would precompute it */
    const float *rel;  /* T5 for the tile callback: head h's bias of j - i at rel[h * rs + j - i] */
    int H, rs;
} cb_ctx;

static float cb_softcap(float s, int b, int h, int i, int j, void *ctx) {
    (void)b, (void)h, (void)i, (void)j, (void)ctx;
    return SOFTCAP * tanhf(s / SOFTCAP);
}
static float cb_softcap_bwd(float s, float g, int b, int h, int i, int j, void *ctx, float *dp) {
    (void)b, (void)h, (void)i, (void)j, (void)ctx, (void)dp;
    float t = tanhf(s / SOFTCAP);
    return g * (1.0f - t * t);
}
static float cb_alibi(float s, int b, int h, int i, int j, void *ctx) {
    (void)b;
    return s + ((const cb_ctx *)ctx)->slopes[h] * (float)(j - i);
}
static float cb_alibi_bwd(float s, float g, int b, int h, int i, int j, void *ctx, float *dp) {
    (void)s, (void)b;
    if (dp) dp[h] += g * (float)(j - i);
    (void)ctx;
    return g;
}
static float cb_t5(float s, int b, int h, int i, int j, void *ctx) {
    (void)b;
    const cb_ctx *c = ctx;
    return s + c->table[c->bucket[j - i] * c->H + h];
}
static float cb_t5_bwd(float s, float g, int b, int h, int i, int j, void *ctx, float *dp) {
    (void)s, (void)b;
    const cb_ctx *c = ctx;
    if (dp) dp[c->bucket[j - i] * c->H + h] += g;
    return g;
}

/* The same modifiers as tile callbacks (attn_score_mod_tile_fn), written as a user would:
 * plain C loops over the kernel's tile, score (i0 + l, j0 + jj) at s[jj * ld + l], that the
 * compiler vectorises. This file is built for the baseline x86-64 (SSE2, 4 floats a vector)
 * while the kernels run AVX-512 (16), so each callback (its body always inlined) is built
 * three times: for AVX-512 (x86-64-v4), for AVX2 + FMA (v3) and for the baseline, and
 * tile_fns() picks the one of the library's instruction-set path (attn_get_isa(), which
 * follows ATTN_ISA). No intrinsics and no -march flag: the same C. Chosen in plain code, not
 * by target_clones: the loader's ifunc resolvers run before a sanitizer's runtime is up, and
 * crashed the ThreadSanitizer build at start. GCC turns the compares of a clamp into vector
 * selects only where they may not trap, hence -fno-trapping-math on the functions that clamp
 * (NO_TRAP; clang does it anyway). */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_TRAP __attribute__((optimize("no-trapping-math")))
#else
#define NO_TRAP
#endif
#define INLINE __attribute__((always_inline)) static inline
INLINE void tl_alibi_body(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b;
    const float slope = ((const cb_ctx *)ctx)->slopes[h];
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] += slope * (float)(j0 + jj - i0 - l);
}
INLINE void tl_t5_body(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b;
    const cb_ctx *c = ctx;
    const float *rel = c->rel + (size_t)h * c->rs + (j0 - i0); /* the bias of jj - l: consecutive along l */
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] += rel[jj - l];
}
/* d/ds of ALiBi and T5: 1. */
INLINE void tl_one_bwd_body(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)s, (void)b, (void)h, (void)i0, (void)j0, (void)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) g[jj * ld + l] = 1.0f;
}
static void tl_softcap(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b, (void)h, (void)i0, (void)j0, (void)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] = SOFTCAP * tanhf(s[jj * ld + l] / SOFTCAP);
}
static void tl_softcap_bwd(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b, (void)h, (void)i0, (void)j0, (void)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) {
            float t = tanhf(s[jj * ld + l] / SOFTCAP);
            g[jj * ld + l] = 1.0f - t * t;
        }
}
/* tanh as a rational function, Eigen's float tanh (odd degree 13 over even degree 6, x
 * clamped to +-7.9 where it rounds to +-1): a few ulp, and a loop of it vectorises (inlined
 * into each clone, hence always_inline). */
INLINE NO_TRAP float tanh_rational(float x) {
    const float c = 7.90531110763549805f;
    x = x < c ? x : c;
    x = x > -c ? x : -c;
    float x2 = x * x, p = -2.76076847742355e-16f, q = 1.19825839466702e-06f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}
INLINE NO_TRAP void tl_softcap_r_body(float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx) {
    (void)b, (void)h, (void)i0, (void)j0, (void)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) s[jj * ld + l] = SOFTCAP * tanh_rational(s[jj * ld + l] * (1.0f / SOFTCAP));
}
INLINE NO_TRAP void tl_softcap_r_bwd_body(const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0,
                             void *ctx) {
    (void)b, (void)h, (void)i0, (void)j0, (void)ctx;
    for (int jj = 0; jj < nk; jj++)
        for (int l = 0; l < nq; l++) {
            float t = tanh_rational(s[jj * ld + l] * (1.0f / SOFTCAP));
            g[jj * ld + l] = 1.0f - t * t;
        }
}

/* Each tile callback built for one target: T = the target attribute, X = the name's suffix. */
#define FWD_ARGS float *s, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx
#define BWD_ARGS const float *s, float *g, int64_t ld, int nq, int nk, int b, int h, int i0, int j0, void *ctx
#define TILE_FNS(T, X)                                                                                              \
    T static void tl_alibi##X(FWD_ARGS) { tl_alibi_body(s, ld, nq, nk, b, h, i0, j0, ctx); }                         \
    T static void tl_t5##X(FWD_ARGS) { tl_t5_body(s, ld, nq, nk, b, h, i0, j0, ctx); }                               \
    T static void tl_one_bwd##X(BWD_ARGS) { tl_one_bwd_body(s, g, ld, nq, nk, b, h, i0, j0, ctx); }                  \
    T NO_TRAP static void tl_softcap_r##X(FWD_ARGS) { tl_softcap_r_body(s, ld, nq, nk, b, h, i0, j0, ctx); }         \
    T NO_TRAP static void tl_softcap_r_bwd##X(BWD_ARGS) { tl_softcap_r_bwd_body(s, g, ld, nq, nk, b, h, i0, j0, ctx); }
typedef struct {
    attn_score_mod_tile_fn alibi, t5, softcap_r;
    attn_score_mod_tile_bwd_fn one_bwd, softcap_r_bwd;
} tile_set;
#define TILE_SET(X) {tl_alibi##X, tl_t5##X, tl_softcap_r##X, tl_one_bwd##X, tl_softcap_r_bwd##X}
TILE_FNS(, _base)
#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 11)
#define TILE_X86 1
TILE_FNS(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))), _v4)
TILE_FNS(__attribute__((target("avx2,fma"))), _v3)
#endif
static tile_set tile_fns(void) {
#ifdef TILE_X86
    if (!strcmp(attn_get_isa(), "avx512")) return (tile_set)TILE_SET(_v4);
    if (!strcmp(attn_get_isa(), "avx2")) return (tile_set)TILE_SET(_v3);
#endif
    return (tile_set)TILE_SET(_base);
}

typedef struct {
    const bench_mods_opts *o;
    float *Q, *K, *V, *O, *lse, *dO, *dQ, *dK, *dV;
} bufs;

/* Median seconds of the forward (+ backward) of desc a with each of the nv modifiers mods[v]
 * (NULL: none) into sec[v], and of the process's CPU time (all threads) into cpu[v] if not
 * NULL, the variants taking turns run by run so that all of them see the same load of a
 * shared machine. The library's threads sleep while they wait, so the CPU time is the work
 * done, without the time other processes held the cores. */
static int time_mods(const bufs *b, attn_desc *a, const attn_mods *const *mods, int nv, double *sec, double *cpu) {
    int R = b->o->repeat, st = ATTN_OK;
    double t[8][101], c[8][101];
    if (R > 100) R = 100;
    for (int r = -1; r < R && !st; r++)
        for (int v = 0; v < nv && !st; v++) {
            a->mods = mods[v];
            double t0 = cli_bench_now(), c0 = cli_bench_cpu_now();
            st = attn_forward(a, b->Q, b->K, b->V, b->O, NULL, b->lse);
            if (!st && b->o->backward)
                st = attn_backward(a, b->Q, b->K, b->V, b->O, b->lse, b->dO, b->dQ, b->dK, b->dV, NULL);
            if (r >= 0) t[v][r] = cli_bench_now() - t0, c[v][r] = cli_bench_cpu_now() - c0;
        }
    a->mods = NULL;
    for (int v = 0; v < nv && !st; v++) {
        sec[v] = cli_bench_median(t[v], R);
        if (cpu) cpu[v] = cli_bench_median(c[v], R);
    }
    return st;
}
static int time_desc(const bufs *b, attn_desc *a, double *sec) {
    const attn_mods *m = a->mods;
    int st = time_mods(b, a, &m, 1, sec, NULL);
    a->mods = m;
    return st;
}

/* The largest |O - O_built-in| of the forward with callback modifiers cb (into *diff), so that
 * a timing never stands for a wrong result. */
static int max_diff(const bufs *b, attn_desc *a, const attn_mods *bi, const attn_mods *cb, size_t n, double *diff) {
    float *ref = malloc(n * sizeof *ref);
    if (!ref) return ATTN_ENOMEM;
    a->mods = bi;
    int st = attn_forward(a, b->Q, b->K, b->V, ref, NULL, b->lse);
    a->mods = cb;
    if (!st) st = attn_forward(a, b->Q, b->K, b->V, b->O, NULL, b->lse);
    a->mods = NULL;
    *diff = 0;
    for (size_t x = 0; !st && x < n; x++) *diff = fmax(*diff, fabs((double)b->O[x] - ref[x]));
    free(ref);
    return st;
}

static float *randn(size_t n, uint64_t seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (size_t i = 0; x && i < n; i++) x[i] = attn_rng_normal(&r);
    return x;
}

/* The document offsets of LENS over n positions (one length repeats to fill n), or NULL. */
static int32_t *doc_offsets(const char *lens, int n, int *ndoc) {
    int32_t *o = malloc(((size_t)n + 1) * sizeof *o);
    if (!o) return NULL;
    int k = 0, at = 0, single = strchr(lens, ',') == NULL;
    const char *p = lens;
    o[0] = 0;
    while (at < n) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || (*end && *end != ',') || (!single && v > n - at)) break;
        at = at + v > n ? n : at + (int)v, o[++k] = at;
        if (!single) {
            if (!*end) break;
            p = end + 1;
        }
    }
    if (at != n) {
        free(o);
        return NULL;
    }
    *ndoc = k;
    return o;
}

int cli_bench_mods(const char *cmd, const bench_mods_opts *o) {
    int rc = CLI_OK;
    for (int k = 0; k < o->nn && rc == CLI_OK; k++) {
        int n = o->ns[k], H = o->H, B = o->B, d = o->d;
        size_t nq = (size_t)B * H * n * d;
        bufs b = {o, randn(nq, 1), randn(nq, 2), randn(nq, 3), malloc(nq * 4), malloc((size_t)B * H * n * 4), randn(nq, 4),
                  malloc(nq * 4), malloc(nq * 4), malloc(nq * 4)};
        float *slopes = malloc((size_t)H * 4), *table = randn((size_t)T5_BUCKETS * H, 5), *sinks = randn((size_t)H, 6);
        int *bucket = malloc((size_t)2 * n * sizeof *bucket);
        float *rel = malloc((size_t)H * (2 * n - 1) * sizeof *rel);
        uint8_t *dense = NULL;
        int32_t *offs = NULL;
        if (!b.Q || !b.K || !b.V || !b.O || !b.lse || !b.dO || !b.dQ || !b.dK || !b.dV || !slopes || !table || !sinks ||
            !bucket || !rel) {
            rc = cli_fail(cmd, "out of memory");
            goto next;
        }
        attn_alibi_slopes(H, slopes);
        for (int r = -(n - 1); r < n; r++) bucket[r + n - 1] = attn_t5_bucket(r, 1, T5_BUCKETS, T5_MAXD);
        for (int h = 0; h < H; h++)
            for (int r = -(n - 1); r < n; r++) rel[(size_t)h * (2 * n - 1) + r + n - 1] = table[bucket[r + n - 1] * H + h];
        cb_ctx ctx = {slopes, table, bucket + (n - 1), rel + (n - 1), H, 2 * n - 1};
        attn_desc a = {0};
        a.B = B, a.H = H, a.Nq = n, a.Nk = n, a.dq = d, a.score = ATTN_SCORE_SCALED;
        a.mask.causal = o->causal;
        double base = 0;
        int st = time_desc(&b, &a, &base);
        const char *what = o->backward ? "forward+backward" : "forward";
        if (!st) printf("n=%d B=%d H=%d d=%d%s, %s, %d threads, path %s, median of %d: no modifier %.3f ms\n", n, B, H, d,
                        o->causal ? " causal" : "", what, attn_get_threads(), attn_get_isa(), o->repeat, base * 1e3);
        /* Each modifier: built in, then as a score_mod callback, then as score_mod_tile
         * callbacks (soft-capping twice: tanhf, and a rational tanh that vectorises). */
        char list[256];
        snprintf(list, sizeof list, "%s", o->mods ? o->mods : "");
        const tile_set tf = tile_fns();
        for (char *save = NULL, *m = strtok_r(list, ",", &save); !st && m; m = strtok_r(NULL, ",", &save)) {
            attn_mods bi = {0}, cb = {0}, tl[2] = {{0}, {0}};
            cb.ctx = tl[0].ctx = tl[1].ctx = &ctx;
            tl[0].score_mod_tile_bwd = tf.one_bwd;
            int has_cb = 1, ntl = 1;
            if (!strcmp(m, "softcap")) {
                bi.softcap = SOFTCAP, cb.score_mod = cb_softcap, cb.score_mod_bwd = cb_softcap_bwd;
                tl[0].score_mod_tile = tl_softcap, tl[0].score_mod_tile_bwd = tl_softcap_bwd;
                tl[1].score_mod_tile = tf.softcap_r, tl[1].score_mod_tile_bwd = tf.softcap_r_bwd, ntl = 2;
            } else if (!strcmp(m, "alibi")) {
                bi.alibi_slopes = slopes, cb.score_mod = cb_alibi, cb.score_mod_bwd = cb_alibi_bwd;
                tl[0].score_mod_tile = tf.alibi;
            } else if (!strcmp(m, "t5")) {
                bi.t5_table = table, bi.t5_buckets = T5_BUCKETS, bi.t5_max_distance = T5_MAXD, bi.t5_bidirectional = 1;
                cb.score_mod = cb_t5, cb.score_mod_bwd = cb_t5_bwd;
                tl[0].score_mod_tile = tf.t5;
            } else if (!strcmp(m, "sinks")) bi.sinks = sinks, has_cb = 0;
            else if (!strcmp(m, "dropout")) bi.dropout = 0.1f, bi.seed = 1, has_cb = 0;
            else {
                rc = cli_usage(cmd, "unknown modifier '%s' in --mods (softcap, alibi, t5, sinks or dropout)", m);
                goto next;
            }
            /* none, built-in, scalar callback, tile callbacks: taking turns */
            const attn_mods *vars[5] = {NULL, &bi, &cb, &tl[0], &tl[1]};
            double tv[5] = {0}, cv[5] = {0}, none = 0, tb = 0, tc = 0, *tt = tv + 3;
            st = time_mods(&b, &a, vars, has_cb ? 3 + ntl : 2, tv, cv);
            if (st) break;
            none = tv[0], tb = tv[1], tc = tv[2];
            if (has_cb) {
                printf("  %-8s built-in %10.3f ms (%.2fx none)   score_mod %10.3f ms (%.2fx built-in)", m, tb * 1e3,
                       tb / none, tc * 1e3, tc / tb);
                double worst = 0;
                for (int x = 0; x < ntl; x++) {
                    double diff = 0;
                    if ((st = max_diff(&b, &a, &bi, &tl[x], nq, &diff))) break;
                    worst = fmax(worst, diff);
                    printf("   score_mod_tile%s %10.3f ms (%.2fx built-in%s; CPU time %.2fx)",
                           ntl > 1 ? (x ? " rational" : " tanhf") : "", tt[x] * 1e3, tt[x] / tb,
                           tt[x] / tb <= 1.3 ? ", within 1.3x" : ", NOT within 1.3x", cv[3 + x] / cv[1]);
                }
                printf("   max |O - built-in| of the tile callbacks %.1e\n", worst);
                if (!st && !(worst <= 1e-4)) {
                    rc = cli_fail(cmd, "the %s tile callback's output differs from the built-in's by %.1e", m, worst);
                    goto next;
                }
            } else
                printf("  %-8s built-in %10.3f ms (%.2fx none)\n", m, tb * 1e3, tb / none);
            fflush(stdout);
        }
        if (!st && o->doc_lens) {
            int ndoc = 0;
            if (!(offs = doc_offsets(o->doc_lens, n, &ndoc))) {
                rc = cli_usage(cmd, "--doc-lens '%s': positive lengths, comma-separated (or one repeated), summing to n = %d",
                               o->doc_lens, n);
                goto next;
            }
            int32_t *all = malloc((size_t)B * (ndoc + 1) * sizeof *all);
            dense = malloc((size_t)n * n);
            if (!all || !dense) {
                free(all);
                rc = cli_fail(cmd, "out of memory");
                goto next;
            }
            for (int r = 0; r < B; r++) memcpy(all + (size_t)r * (ndoc + 1), offs, (size_t)(ndoc + 1) * sizeof *all);
            for (int di = 0; di < ndoc; di++)
                for (int i = offs[di]; i < offs[di + 1]; i++)
                    for (int j = 0; j < n; j++) dense[(size_t)i * n + j] = j >= offs[di] && j < offs[di + 1];
            attn_mods dm = {0};
            dm.doc_offsets = all, dm.n_docs = ndoc;
            double td = 0, tm = 0;
            a.mods = &dm;
            st = time_desc(&b, &a, &td);
            a.mods = NULL;
            const int64_t shape[2] = {n, n}, target[4] = {B, H, n, n};
            if (!st) st = attn_broadcast_strides(shape, 2, target, a.mask.bool_strides);
            a.mask.bool_mask = dense;
            if (!st) st = time_desc(&b, &a, &tm);
            a.mask.bool_mask = NULL;
            free(all);
            if (!st)
                printf("  %d documents: --doc-lens %10.3f ms   dense bool mask %10.3f ms   speedup %.1fx\n", ndoc, td * 1e3,
                       tm * 1e3, tm / td);
        }
        if (st) rc = cli_fail_lib(cmd, st, NULL);
    next:
        free(b.Q), free(b.K), free(b.V), free(b.O), free(b.lse), free(b.dO), free(b.dQ), free(b.dK), free(b.dV);
        free(slopes), free(table), free(sinks), free(bucket), free(rel), free(dense), free(offs);
    }
    return rc;
}
