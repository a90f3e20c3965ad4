/* The translation memory of attn/knnmt.h (Khandelwal et al. 2021, kNN-MT): the store (keys,
 * values, settings), its file, the exact search with the gemm kernel and the mixture, and the
 * decoding hook. Not here: how a decoder calls the hook (s2s_decode.c, transformer_decode.c)
 * and the teacher-forced states (attn_translator_states, translator.c).
 * Letters: N entries, D state size, V target vocabulary, n queries, k neighbours, C entries of
 * one search block. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn/knnmt.h"
#include "core/file.h"
#include "core/internal.h"
#include "io/atomic.h"
#include "io/ckdir.h"
#include "io/common.h"
#include "kernels/kernels.h"

#define KNN_MAGIC "ATTNKNN"
#define KNN_VERSION 1u
#define KNN_HEADER 64
#define KNN_BLOCK 2048 /* entries per search task */

struct attn_knn_store {
    int64_t n, cap;
    int dim, vocab;
    uint64_t model_id;
    attn_knn_params p;
    int tuned;
    float *keys;    /* (cap, D) */
    float *norms;   /* (cap) ||k_j||^2 */
    int32_t *vals;  /* (cap) */
    float *scratch; /* search: per-thread distance blocks and per-task candidates */
    size_t scratch_cap;
    /* the approximate index (attn_knn_index), or nlist 0 */
    int nlist, nprobe;
    int64_t imax;    /* the longest list */
    float *cent;     /* (nlist, D) centroids, then (nlist) their squared norms */
    float *ikeys;    /* (N, D) the keys in list order, then (N) their squared norms */
    int32_t *iids;   /* (N) the entry of each row of ikeys */
    int64_t *ioff;   /* (nlist + 1) where each list starts in ikeys */
};

static void index_free(attn_knn_store *s) {
    attn_free(s->cent), attn_free(s->ikeys), attn_free(s->iids), attn_free(s->ioff);
    s->cent = s->ikeys = NULL, s->iids = NULL, s->ioff = NULL;
    s->nlist = s->nprobe = 0, s->imax = 0;
}

attn_knn_params attn_knn_defaults(void) {
    attn_knn_params p = {8, 10.0f, 0.25f};
    return p;
}

int attn_knn_params_check(const attn_knn_params *p) {
    if (!p) return attn__error(ATTN_EINVAL, "kNN settings: NULL");
    if (p->k < 1 || p->k > ATTN_KNN_MAX_K) return attn__error(ATTN_EINVAL, "kNN settings: k %d is outside [1, %d]", p->k, ATTN_KNN_MAX_K);
    if (!(p->temperature > 0.0f) || !isfinite(p->temperature))
        return attn__error(ATTN_EINVAL, "kNN settings: temperature %g is not a positive number", (double)p->temperature);
    if (!(p->lambda >= 0.0f && p->lambda < 1.0f)) return attn__error(ATTN_EINVAL, "kNN settings: lambda %g is outside [0, 1)", (double)p->lambda);
    return ATTN_OK;
}

int attn_knn_new(int dim, int vocab, uint64_t model_id, attn_knn_store **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_knn_new: NULL argument");
    *out = NULL;
    if (dim < 1 || vocab < 1) return attn__error(ATTN_EINVAL, "attn_knn_new: dim %d and vocab %d must be positive", dim, vocab);
    attn_knn_store *s = attn_calloc(1, sizeof *s);
    if (!s) return attn__error(ATTN_ENOMEM, "attn_knn_new: out of memory");
    s->dim = dim, s->vocab = vocab, s->model_id = model_id, s->p = attn_knn_defaults();
    *out = s;
    return ATTN_OK;
}

int attn_knn_new_for(const attn_translator *t, attn_knn_store **out) {
    if (!t || !out) return attn__error(ATTN_EINVAL, "attn_knn_new_for: NULL argument");
    uint64_t id;
    int st = attn_translator_identity(t, &id);
    if (st) return st;
    return attn_knn_new(attn_translator_state_dim(t), attn_vocab_size(attn_translator_tgt_vocab(t)), id, out);
}

void attn_knn_free(attn_knn_store *s) {
    if (!s) return;
    attn_free(s->keys), attn_free(s->norms), attn_free(s->vals), attn_free(s->scratch);
    index_free(s);
    attn_free(s);
}

/* Room for `need` entries: the capacity doubles from `first` (a growing store starts at 1024;
 * a loaded one at exactly what its file holds, so that a header cannot ask for more). */
static int reserve_from(attn_knn_store *s, int64_t need, int64_t first) {
    if (need <= s->cap) return ATTN_OK;
    int64_t cap = s->cap ? s->cap : first;
    while (cap < need) cap *= 2;
    size_t bytes;
    if (attn__mul_size((size_t)cap, (size_t)s->dim * sizeof(float), &bytes)) return attn__error(ATTN_ENOMEM, "kNN store: too large");
    float *k = attn_malloc(bytes), *nr = attn_malloc((size_t)cap * sizeof(float));
    int32_t *v = attn_malloc((size_t)cap * sizeof(int32_t));
    if (!k || !nr || !v) {
        attn_free(k), attn_free(nr), attn_free(v);
        return attn__error(ATTN_ENOMEM, "kNN store: out of memory for %lld entries", (long long)cap);
    }
    if (s->n) {
        memcpy(k, s->keys, (size_t)s->n * s->dim * sizeof(float));
        memcpy(nr, s->norms, (size_t)s->n * sizeof(float));
        memcpy(v, s->vals, (size_t)s->n * sizeof(int32_t));
    }
    attn_free(s->keys), attn_free(s->norms), attn_free(s->vals);
    s->keys = k, s->norms = nr, s->vals = v, s->cap = cap;
    return ATTN_OK;
}

static int reserve(attn_knn_store *s, int64_t need) { return reserve_from(s, need, 1024); }

static float sq_norm(const float *x, int D) {
    float a = 0.0f;
    for (int i = 0; i < D; i++) a += x[i] * x[i];
    return a;
}

int attn_knn_append(attn_knn_store *s, int64_t n, const float *keys, const int32_t *values) {
    if (!s || n < 0 || (n && (!keys || !values))) return attn__error(ATTN_EINVAL, "attn_knn_append: NULL argument");
    for (int64_t i = 0; i < n; i++)
        if (values[i] < 0 || values[i] >= s->vocab)
            return attn__error(ATTN_EINVAL, "attn_knn_append: value %d is outside [0, %d)", (int)values[i], s->vocab);
    int st = reserve(s, s->n + n);
    if (st) return st;
    index_free(s); /* an index describes the entries it was built on */
    memcpy(s->keys + (size_t)s->n * s->dim, keys, (size_t)n * s->dim * sizeof(float));
    memcpy(s->vals + s->n, values, (size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) s->norms[s->n + i] = sq_norm(keys + (size_t)i * s->dim, s->dim);
    s->n += n;
    return ATTN_OK;
}

int attn_knn_check(const attn_knn_store *s, const attn_translator *t) {
    if (!s || !t) return attn__error(ATTN_EINVAL, "attn_knn_check: NULL argument");
    int D = attn_translator_state_dim(t), V = attn_vocab_size(attn_translator_tgt_vocab(t));
    if (s->dim != D)
        return attn__error(ATTN_EINVAL, "the memory holds decoder states of size %d, this model's are of size %d: it was built for another model",
                           s->dim, D);
    if (s->vocab != V)
        return attn__error(ATTN_EINVAL, "the memory was built for a target vocabulary of %d tokens, this model has %d: it was built for another model",
                           s->vocab, V);
    uint64_t id;
    int st = attn_translator_identity(t, &id);
    if (st) return st;
    if (id != s->model_id)
        return attn__error(ATTN_EINVAL, "the memory was built for another model (identity %016llx, this model's is %016llx): rebuild it with this model",
                           (unsigned long long)s->model_id, (unsigned long long)id);
    return ATTN_OK;
}

int attn_knn_add_pairs(attn_knn_store *s, attn_translator *t, int n, const int32_t *const *src, const int *src_len,
                       const int32_t *const *tgt, const int *tgt_len) {
    if (!s || !t || n < 0 || (n && (!src || !src_len || !tgt || !tgt_len)))
        return attn__error(ATTN_EINVAL, "attn_knn_add_pairs: NULL argument");
    int st = attn_knn_check(s, t);
    if (st) return st;
    int64_t rows = 0;
    for (int i = 0; i < n; i++) rows += tgt_len[i] >= 0 ? tgt_len[i] + 1 : 0;
    float *keys = attn_malloc((size_t)(rows ? rows : 1) * s->dim * sizeof(float));
    int32_t *vals = attn_malloc((size_t)(rows ? rows : 1) * sizeof(int32_t));
    if (!keys || !vals) st = attn__error(ATTN_ENOMEM, "attn_knn_add_pairs: out of memory");
    if (!st) st = attn_translator_states(t, n, src, src_len, tgt, tgt_len, keys);
    if (!st) {
        int64_t r = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < tgt_len[i]; j++) vals[r++] = tgt[i][j];
            vals[r++] = ATTN_EOS;
        }
        st = attn_knn_append(s, rows, keys, vals);
    }
    attn_free(keys), attn_free(vals);
    return st;
}

int64_t attn_knn_count(const attn_knn_store *s) { return s ? s->n : 0; }
int attn_knn_dim(const attn_knn_store *s) { return s ? s->dim : 0; }
int attn_knn_vocab(const attn_knn_store *s) { return s ? s->vocab : 0; }
uint64_t attn_knn_model_id(const attn_knn_store *s) { return s ? s->model_id : 0; }

attn_knn_params attn_knn_get_params(const attn_knn_store *s, int *tuned) {
    if (tuned) *tuned = s ? s->tuned : 0;
    return s ? s->p : attn_knn_defaults();
}

int attn_knn_set_params(attn_knn_store *s, const attn_knn_params *p, int tuned) {
    if (!s) return attn__error(ATTN_EINVAL, "attn_knn_set_params: NULL store");
    int st = attn_knn_params_check(p);
    if (st) return st;
    s->p = *p, s->tuned = tuned != 0;
    return ATTN_OK;
}

/* ---- The file ------------------------------------------------------------------------------ */

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void header(const attn_knn_store *s, unsigned char h[KNN_HEADER]) {
    memset(h, 0, KNN_HEADER);
    memcpy(h, KNN_MAGIC, 8);
    put32(h + 8, KNN_VERSION), put32(h + 12, KNN_HEADER);
    attn__put_le64(h + 16, (uint64_t)s->n);
    put32(h + 24, (uint32_t)s->dim), put32(h + 28, (uint32_t)s->vocab);
    attn__put_le64(h + 32, s->model_id);
    put32(h + 40, (uint32_t)s->p.k), put32(h + 44, f2u(s->p.temperature)), put32(h + 48, f2u(s->p.lambda));
    put32(h + 52, (uint32_t)s->tuned);
}

/* The checksum: FNV-1a 64 of the header's first 56 bytes, then keys, then values (as stored). */
static uint64_t checksum(const unsigned char *h, const float *keys, const int32_t *vals, int64_t n, int D) {
    uint64_t c = attn__fnv1a(ATTN__FNV_INIT, h, 56);
    c = attn__fnv1a(c, keys, (size_t)n * D * sizeof(float));
    return attn__fnv1a(c, vals, (size_t)n * sizeof(int32_t));
}

int attn_knn_save(const attn_knn_store *s, const char *path) {
    if (!s || !path || !*path) return attn__error(ATTN_EINVAL, "attn_knn_save: NULL argument");
    if (!attn__host_le()) return attn__error(ATTN_EINVAL, "attn_knn_save: big-endian hosts are not supported");
    unsigned char h[KNN_HEADER];
    header(s, h);
    attn__put_le64(h + 56, checksum(h, s->keys, s->vals, s->n, s->dim));
    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    size_t nk = (size_t)s->n * s->dim, nv = (size_t)s->n;
    if (fwrite(h, 1, KNN_HEADER, f) != KNN_HEADER || (nk && fwrite(s->keys, sizeof(float), nk, f) != nk) ||
        (nv && fwrite(s->vals, sizeof(int32_t), nv, f) != nv)) {
        return attn__atomic_fail(f, tmp, path);
    }
    return attn__atomic_commit(f, tmp, path);
}

int attn_knn_load(const char *path, attn_knn_store **out) {
    if (!path || !out) return attn__error(ATTN_EINVAL, "attn_knn_load: NULL argument");
    *out = NULL;
    if (!attn__host_le()) return attn__error(ATTN_EINVAL, "attn_knn_load: big-endian hosts are not supported");
    FILE *f = NULL;
    size_t size = 0;
    int st = attn__file_open(path, &f, &size);
    if (st) return st;
    unsigned char h[KNN_HEADER];
    attn_knn_store *s = NULL;
    if (size < KNN_HEADER) {
        st = attn__error(ATTN_EFORMAT, "%s: not a kNN memory (%zu bytes, shorter than its %d-byte header)", path, size, KNN_HEADER);
        goto done;
    }
    if ((st = attn__file_read(f, path, h, KNN_HEADER))) goto done;
    if (memcmp(h, KNN_MAGIC, 8)) {
        st = attn__error(ATTN_EFORMAT, "%s: not a kNN memory (no \"ATTNKNN\" magic; build one with 'attn memory build')", path);
        goto done;
    }
    uint32_t ver = attn__le32(h + 8), hs = attn__le32(h + 12), D = attn__le32(h + 24), V = attn__le32(h + 28);
    uint64_t n = attn__le64(h + 16);
    if (ver != KNN_VERSION || hs != KNN_HEADER) {
        st = attn__error(ATTN_EFORMAT, "%s: kNN memory version %u (header %u bytes); this build reads version %u", path, ver, hs, KNN_VERSION);
        goto done;
    }
    if (D < 1 || D > (1u << 20) || V < 1 || V > (1u << 30)) {
        st = attn__error(ATTN_EFORMAT, "%s: bad sizes in the header (dim %u, vocab %u)", path, D, V);
        goto done;
    }
    /* the file's length must be exactly the header plus n (D + 1) 4-byte words */
    uint64_t words = (uint64_t)(size - KNN_HEADER) / 4;
    if ((size - KNN_HEADER) % 4 || n > words / (D + 1ull) || n * (D + 1ull) != words) {
        st = attn__error(ATTN_EFORMAT, "%s: truncated or damaged: the header says %llu entries of %u floats (%llu bytes), the file has %zu",
                         path, (unsigned long long)n, D,
                         (unsigned long long)(n <= UINT64_MAX / 4 / (D + 1ull) ? KNN_HEADER + 4 * n * (D + 1ull) : 0), size);
        goto done;
    }
    attn_knn_params p = {(int)attn__le32(h + 40), u2f(attn__le32(h + 44)), u2f(attn__le32(h + 48))};
    if (attn__le32(h + 40) > ATTN_KNN_MAX_K || attn_knn_params_check(&p)) {
        st = attn__error(ATTN_EFORMAT, "%s: bad settings in the header (k %u, temperature %g, lambda %g)", path, attn__le32(h + 40),
                         (double)p.temperature, (double)p.lambda);
        goto done;
    }
    if ((st = attn_knn_new((int)D, (int)V, attn__le64(h + 32), &s))) goto done;
    s->p = p, s->tuned = attn__le32(h + 52) != 0;
    if ((st = reserve_from(s, n ? (int64_t)n : 1, 1))) goto done;
    if ((n && (st = attn__file_read(f, path, s->keys, (size_t)n * D * sizeof(float)))) ||
        (n && (st = attn__file_read(f, path, s->vals, (size_t)n * sizeof(int32_t)))))
        goto done;
    if (checksum(h, s->keys, s->vals, (int64_t)n, (int)D) != attn__le64(h + 56)) {
        st = attn__error(ATTN_EFORMAT, "%s: checksum mismatch: the file is damaged", path);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++)
        if (s->vals[i] < 0 || (uint32_t)s->vals[i] >= V) {
            st = attn__error(ATTN_EFORMAT, "%s: entry %llu has value %d outside the vocabulary [0, %u)", path, (unsigned long long)i,
                             (int)s->vals[i], V);
            goto done;
        }
    s->n = (int64_t)n;
    for (uint64_t i = 0; i < n; i++) s->norms[i] = sq_norm(s->keys + i * D, (int)D);
done:
    if (f) fclose(f);
    if (st) {
        attn_knn_free(s);
        return st;
    }
    *out = s;
    return ATTN_OK;
}

/* ---- Exact search -------------------------------------------------------------------------- */

typedef struct {
    const attn_knn_store *s;
    int n, k, nb;
    const float *q, *qn; /* (n, D), (n) */
    float *dist_blk;     /* per thread: (n, C) */
    float *cd;           /* per block: (n, k) candidate distances */
    int32_t *ci;         /* per block: (n, k) candidate indices */
} search_ctx;

/* Inserts (d, j) into the ascending list (dd, ii) of length k; ties keep the earlier entry. */
static void push(float *dd, int32_t *ii, int k, float d, int32_t j) {
    if (!(d < dd[k - 1])) return;
    int i = k - 1;
    while (i > 0 && d < dd[i - 1]) {
        dd[i] = dd[i - 1], ii[i] = ii[i - 1];
        i--;
    }
    dd[i] = d, ii[i] = j;
}

/* Block b: entries [b C, (b + 1) C): D (n, c) = -2 Q K_b^T by the gemm kernel, plus the
 * norms, then each query's k best of the block. */
static void search_task(void *vctx, int b, int thread) {
    search_ctx *x = vctx;
    const attn_knn_store *s = x->s;
    int64_t j0 = (int64_t)b * KNN_BLOCK, c = s->n - j0 < KNN_BLOCK ? s->n - j0 : KNN_BLOCK;
    int n = x->n, k = x->k, D = s->dim;
    float *d = x->dist_blk + (size_t)thread * n * KNN_BLOCK;
    attn__kern()->sgemm(0, 1, n, (int)c, D, -2.0f, x->q, D, s->keys + (size_t)j0 * D, D, 0.0f, d, c);
    for (int i = 0; i < n; i++) {
        float *dd = x->cd + ((size_t)b * n + i) * k;
        int32_t *ii = x->ci + ((size_t)b * n + i) * k;
        for (int t = 0; t < k; t++) dd[t] = INFINITY, ii[t] = -1;
        const float *row = d + (size_t)i * c;
        for (int64_t j = 0; j < c; j++) {
            float v = row[j] + x->qn[i] + s->norms[j0 + j];
            push(dd, ii, k, v > 0.0f ? v : 0.0f, (int32_t)(j0 + j));
        }
    }
}

/* ---- The approximate index ---------------------------------------------------------------- */

/* The nearest centroid of each of m rows X (m, D): -2 X C^T + ||c||^2 by the gemm kernel,
 * in blocks of 256 rows (buf (256, nlist)); ties: the lower list. */
static void nearest_list(const attn_knn_store *s, const float *X, int64_t m, int32_t *assign, float *buf) {
    const int D = s->dim, L = s->nlist;
    const float *cn = s->cent + (size_t)L * D;
    for (int64_t r0 = 0; r0 < m; r0 += 256) {
        int b = m - r0 < 256 ? (int)(m - r0) : 256;
        attn__kern()->sgemm(0, 1, b, L, D, -2.0f, X + (size_t)r0 * D, D, s->cent, D, 0.0f, buf, L);
        for (int i = 0; i < b; i++) {
            const float *row = buf + (size_t)i * L;
            int best = 0;
            for (int j = 1; j < L; j++)
                if (row[j] + cn[j] < row[best] + cn[best]) best = j;
            assign[r0 + i] = best;
        }
    }
}

int attn_knn_index(attn_knn_store *s, int nlist, int nprobe) {
    if (!s) return attn__error(ATTN_EINVAL, "attn_knn_index: NULL store");
    index_free(s);
    if (nlist == 0) return ATTN_OK;
    if (nlist < 1 || nlist > 65536 || nlist > s->n || nprobe < 1)
        return attn__error(ATTN_EINVAL, "kNN index: %d lists for %lld entries (1 to min(entries, 65536)) with nprobe %d (>= 1)", nlist,
                           (long long)s->n, nprobe);
    const int D = s->dim, L = nlist;
    const int64_t N = s->n, ns = N < 32768 ? N : 32768;
    s->nlist = L, s->nprobe = nprobe;
    s->cent = attn_malloc((size_t)L * (D + 1) * sizeof(float));
    s->ikeys = attn_malloc((size_t)N * (D + 1) * sizeof(float));
    s->iids = attn_malloc((size_t)N * sizeof(int32_t));
    s->ioff = attn_calloc((size_t)L + 1, sizeof(int64_t));
    float *X = attn_malloc((size_t)ns * D * sizeof(float)), *buf = attn_malloc((size_t)256 * L * sizeof(float));
    int32_t *as = attn_malloc((size_t)N * sizeof(int32_t));
    double *sum = attn_malloc((size_t)L * D * sizeof(double));
    int64_t *cnt = attn_malloc((size_t)L * sizeof(int64_t));
    int st = ATTN_OK;
    if (!s->cent || !s->ikeys || !s->iids || !s->ioff || !X || !buf || !as || !sum || !cnt) {
        st = attn__error(ATTN_ENOMEM, "kNN index: out of memory");
        goto done;
    }
    float *cn = s->cent + (size_t)L * D;
    for (int64_t i = 0; i < ns; i++) memcpy(X + (size_t)i * D, s->keys + (size_t)(i * N / ns) * D, (size_t)D * sizeof(float));
    for (int j = 0; j < L; j++) memcpy(s->cent + (size_t)j * D, s->keys + (size_t)((int64_t)j * N / L) * D, (size_t)D * sizeof(float));
    /* Lloyd's iterations on the sample (an empty list keeps its centroid) */
    for (int it = 0; it < 8; it++) {
        for (int j = 0; j < L; j++) cn[j] = sq_norm(s->cent + (size_t)j * D, D);
        nearest_list(s, X, ns, as, buf);
        memset(sum, 0, (size_t)L * D * sizeof(double));
        memset(cnt, 0, (size_t)L * sizeof(int64_t));
        for (int64_t i = 0; i < ns; i++) {
            cnt[as[i]]++;
            for (int d = 0; d < D; d++) sum[(size_t)as[i] * D + d] += X[(size_t)i * D + d];
        }
        for (int j = 0; j < L; j++)
            if (cnt[j])
                for (int d = 0; d < D; d++) s->cent[(size_t)j * D + d] = (float)(sum[(size_t)j * D + d] / (double)cnt[j]);
    }
    for (int j = 0; j < L; j++) cn[j] = sq_norm(s->cent + (size_t)j * D, D);
    /* every entry into its list, in entry order within each list */
    nearest_list(s, s->keys, N, as, buf);
    for (int64_t i = 0; i < N; i++) s->ioff[as[i] + 1]++;
    for (int j = 0; j < L; j++) {
        if (s->ioff[j + 1] > s->imax) s->imax = s->ioff[j + 1];
        s->ioff[j + 1] += s->ioff[j];
    }
    memcpy(cnt, s->ioff, (size_t)L * sizeof(int64_t));
    float *inorm = s->ikeys + (size_t)N * D;
    for (int64_t i = 0; i < N; i++) {
        int64_t r = cnt[as[i]]++;
        memcpy(s->ikeys + (size_t)r * D, s->keys + (size_t)i * D, (size_t)D * sizeof(float));
        inorm[r] = s->norms[i];
        s->iids[r] = (int32_t)i;
    }
done:
    attn_free(X), attn_free(buf), attn_free(as), attn_free(sum), attn_free(cnt);
    if (st) index_free(s);
    return st;
}

/* attn_knn_search through the index: each query scans its nprobe nearest lists. */
static int index_search(attn_knn_store *s, int n, const float *q, int k, int32_t *idx, float *dist) {
    const int D = s->dim, L = s->nlist, P = s->nprobe;
    const float *cn = s->cent + (size_t)L * D, *inorm = s->ikeys + (size_t)s->n * D;
    float *cd = attn_malloc((size_t)L * sizeof(float) + (size_t)P * sizeof(float)), *tmp = attn_malloc((size_t)s->imax * sizeof(float));
    int32_t *lists = attn_malloc((size_t)P * sizeof(int32_t));
    float dd[ATTN_KNN_MAX_K];
    int32_t ii[ATTN_KNN_MAX_K];
    if (!cd || !tmp || !lists) {
        attn_free(cd), attn_free(tmp), attn_free(lists);
        return attn__error(ATTN_ENOMEM, "attn_knn_search: out of memory");
    }
    float *pd = cd + L;
    int kk = s->n < k ? (int)s->n : k;
    for (int i = 0; i < n; i++) {
        const float *qi = q + (size_t)i * D;
        float qn = sq_norm(qi, D);
        /* the nprobe nearest centroids (ties: the lower list) */
        attn__kern()->sgemm(0, 1, 1, L, D, -2.0f, qi, D, s->cent, D, 0.0f, cd, L);
        for (int t = 0; t < P; t++) pd[t] = INFINITY, lists[t] = -1;
        for (int j = 0; j < L; j++) push(pd, lists, P, cd[j] + cn[j], j);
        for (int t = 0; t < kk; t++) dd[t] = INFINITY, ii[t] = -1;
        for (int t = 0; t < P && lists[t] >= 0; t++) {
            int64_t o = s->ioff[lists[t]], len = s->ioff[lists[t] + 1] - o;
            if (!len) continue;
            /* one query against a list: row dot products (the kernel's rowdot with the query's
             * row stride 0), or the gemm where a path has none */
            const attn__kernels *K = attn__kern();
            float two = 2.0f;
            if (K->rowdot) K->rowdot((int)len, D, qi, 0, s->ikeys + (size_t)o * D, D, tmp);
            else K->sgemm(0, 1, 1, (int)len, D, 1.0f, qi, D, s->ikeys + (size_t)o * D, D, 0.0f, tmp, len);
            for (int64_t j = 0; j < len; j++) {
                float v = qn + inorm[o + j] - two * tmp[j];
                push(dd, ii, kk, v > 0.0f ? v : 0.0f, s->iids[o + j]);
            }
        }
        for (int t = 0; t < k; t++) {
            if (idx) idx[(size_t)i * k + t] = t < kk ? ii[t] : -1;
            if (dist) dist[(size_t)i * k + t] = t < kk ? dd[t] : INFINITY;
        }
    }
    attn_free(cd), attn_free(tmp), attn_free(lists);
    return ATTN_OK;
}

int attn_knn_search(attn_knn_store *s, int n, const float *q, int k, int32_t *idx, float *dist) {
    if (!s || n < 0 || (n && !q) || k < 1 || k > ATTN_KNN_MAX_K) return attn__error(ATTN_EINVAL, "attn_knn_search: bad argument");
    if (n == 0) return ATTN_OK;
    if (s->nlist > 0 && s->nprobe < s->nlist && s->n > 0) return index_search(s, n, q, k, idx, dist);
    int kk = s->n < k ? (int)s->n : k, nb = (int)((s->n + KNN_BLOCK - 1) / KNN_BLOCK), T = attn__max_threads();
    if (kk == 0) {
        for (size_t i = 0; i < (size_t)n * k; i++) {
            if (idx) idx[i] = -1;
            if (dist) dist[i] = INFINITY;
        }
        return ATTN_OK;
    }
    /* scratch: n norms, T distance blocks (n, C), nb candidate lists (n, kk) of distances and indices */
    size_t need = (size_t)n + (size_t)T * n * KNN_BLOCK + 2 * (size_t)nb * n * kk;
    if (need > s->scratch_cap) {
        attn_free(s->scratch);
        s->scratch_cap = 0;
        if (!(s->scratch = attn_malloc(need * sizeof(float)))) return attn__error(ATTN_ENOMEM, "attn_knn_search: out of memory");
        s->scratch_cap = need;
    }
    search_ctx x = {s, n, kk, nb, q, s->scratch, s->scratch + n, NULL, NULL};
    x.cd = x.dist_blk + (size_t)T * n * KNN_BLOCK;
    x.ci = (int32_t *)(x.cd + (size_t)nb * n * kk);
    for (int i = 0; i < n; i++) s->scratch[i] = sq_norm(q + (size_t)i * s->dim, s->dim);
    unsigned long errs = attn__error_count();
    attn__parallel(nb, search_task, &x);
    if (attn__error_count() != errs) return ATTN_EINVAL;
    /* merge the blocks in order: ties keep the lower entry index */
    float dd[ATTN_KNN_MAX_K];
    int32_t ii[ATTN_KNN_MAX_K];
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < kk; t++) dd[t] = INFINITY, ii[t] = -1;
        for (int b = 0; b < nb; b++) {
            const float *cd = x.cd + ((size_t)b * n + i) * kk;
            const int32_t *ci = x.ci + ((size_t)b * n + i) * kk;
            for (int t = 0; t < kk && ci[t] >= 0; t++) push(dd, ii, kk, cd[t], ci[t]);
        }
        for (int t = 0; t < k; t++) {
            if (idx) idx[(size_t)i * k + t] = t < kk ? ii[t] : -1;
            if (dist) dist[(size_t)i * k + t] = t < kk ? dd[t] : INFINITY;
        }
    }
    return ATTN_OK;
}

/* ---- The mixture --------------------------------------------------------------------------- */

int attn_knn_mix(attn_knn_store *s, const attn_knn_params *p, int n, const int *rows, const float *q, float *logp) {
    if (!s || !p || n < 0 || (n && (!rows || !q || !logp))) return attn__error(ATTN_EINVAL, "attn_knn_mix: NULL argument");
    int st = attn_knn_params_check(p);
    if (st) return st;
    if (p->lambda == 0.0f || n == 0 || s->n == 0) return ATTN_OK;
    const int D = s->dim, V = s->vocab, k = p->k;
    enum { QB = 64 };
    float *Q = attn_malloc((size_t)QB * D * sizeof(float)), *dist = attn_malloc((size_t)QB * k * sizeof(float));
    int32_t *idx = attn_malloc((size_t)QB * k * sizeof(int32_t)), *tok = attn_malloc((size_t)k * sizeof(int32_t));
    double *w = attn_malloc((size_t)k * sizeof(double)), *pm = attn_malloc((size_t)k * sizeof(double));
    if (!Q || !dist || !idx || !tok || !w || !pm) st = attn__error(ATTN_ENOMEM, "attn_knn_mix: out of memory");
    const double lam = p->lambda, l1 = log1p(-lam), T = p->temperature;
    for (int i0 = 0; i0 < n && !st; i0 += QB) {
        int m = n - i0 < QB ? n - i0 : QB;
        for (int i = 0; i < m; i++) memcpy(Q + (size_t)i * D, q + (size_t)rows[i0 + i] * D, (size_t)D * sizeof(float));
        if ((st = attn_knn_search(s, m, Q, k, idx, dist))) break;
        for (int i = 0; i < m; i++) {
            const int32_t *ii = idx + (size_t)i * k;
            const float *dd = dist + (size_t)i * k;
            float *lp = logp + (size_t)rows[i0 + i] * V;
            /* w_j = softmax(-d_j / T) over the neighbours found (the nearest first) */
            int kk = 0;
            double z = 0.0;
            while (kk < k && ii[kk] >= 0) {
                w[kk] = exp(-((double)dd[kk] - (double)dd[0]) / T);
                z += w[kk++];
            }
            /* p_mem over the distinct values, in the order first met */
            int nt = 0;
            for (int j = 0; j < kk; j++) {
                int32_t v = s->vals[ii[j]];
                int t = 0;
                while (t < nt && tok[t] != v) t++;
                if (t == nt) tok[nt] = v, pm[nt++] = 0.0;
                pm[t] += w[j] / z;
            }
            /* log(lambda p_mem + (1 - lambda) p_model): the tokens with memory first (from
             * the model's values), then the others, log(1 - lambda) + log p_model */
            for (int t = 0; t < nt; t++) pm[t] = log(lam * pm[t] + (1.0 - lam) * exp((double)lp[tok[t]]));
            for (int v = 0; v < V; v++) lp[v] = (float)((double)lp[v] + l1);
            for (int t = 0; t < nt; t++) lp[tok[t]] = (float)pm[t];
        }
    }
    attn_free(Q), attn_free(dist), attn_free(idx), attn_free(tok), attn_free(w), attn_free(pm);
    return st;
}

static int hook_fn(void *ctx, int n, const int *rows, const float *state, int dim, float *logp, int V) {
    attn_knn_hook *h = ctx;
    if (dim != h->store->dim || V != h->store->vocab)
        return attn__error(ATTN_EINVAL, "kNN memory: a decoder step of states of size %d and %d tokens, the memory has %d and %d", dim, V,
                           h->store->dim, h->store->vocab);
    h->queries += n;
    return attn_knn_mix(h->store, &h->params, n, rows, state, logp);
}

void attn_knn_hook_init(attn_knn_hook *h, attn_knn_store *s, const attn_knn_params *p) {
    if (!h) return;
    memset(h, 0, sizeof *h);
    h->store = s;
    h->params = p ? *p : attn_knn_get_params(s, NULL);
    h->hook.fn = hook_fn;
    h->hook.ctx = h;
}
