/* The paged key/value cache (attn/kvcache.h):
 *  - against PyTorch (tests/data/kvcache, tools/gen_kvcache_refs.py, float64): three
 *    sequences in blocks of 4 tokens, one forked from another and then written past the fork
 *    (copy-on-write), attended by 3 causal query rows each with grouped heads and a bias, on
 *    every instruction set, 1 and 2 threads bitwise alike;
 *  - against attn_forward over the same keys held contiguously: bitwise (the same kernel);
 *  - fork and copy-on-write: the blocks held and the bytes copied, counted by hand;
 *  - a pool exhausted (ATTN_ENOMEM with a message, the sequence unchanged), bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "attn/io.h"
#include "attn/kvcache.h"
#include "testutil.h"

#define DIR "data/kvcache/"
enum { HKV = 2, H = 6, DK = 5, DV = 7, NQ = 3, BS = 4 };

static attn_array load(const char *name) {
    attn_array a = {0};
    char path[256];
    snprintf(path, sizeof path, DIR "%s.npy", name);
    CHECK(attn_npy_load(path, &a) == ATTN_OK, "%s: %s", path, attn_last_error());
    return a;
}

/* The scenario of gen_kvcache_refs.py; the cache (10 blocks, 4 slots) or NULL. */
static attn_kvcache *replay(const attn_array *k, const attn_array *v) {
    attn_kvcache_config cfg = {.Hkv = HKV, .dk = DK, .dv = DV, .block_size = BS, .num_blocks = 16, .max_seqs = 4};
    attn_kvcache *c = NULL;
    CHECK(attn_kvcache_new(&cfg, &c) == ATTN_OK, "new: %s", attn_last_error());
    if (!c) return NULL;
    const float *k0 = k[0].data, *v0 = v[0].data;
    int ok = attn_kvcache_append(c, 0, 10, k0, 0, v0, 0) == ATTN_OK && attn_kvcache_fork(c, 0, 1) == ATTN_OK &&
             attn_kvcache_append(c, 0, 3, k0 + 10 * HKV * DK, 0, v0 + 10 * HKV * DV, 0) == ATTN_OK;
    /* seq 1 token by token, with explicit row strides */
    for (int i = 0; ok && i < 12; i++)
        ok = attn_kvcache_append(c, 1, 1, (const float *)k[1].data + i * HKV * DK, HKV * DK,
                                 (const float *)v[1].data + i * HKV * DV, HKV * DV) == ATTN_OK;
    ok = ok && attn_kvcache_append(c, 2, 9, k[2].data, 0, v[2].data, 0) == ATTN_OK;
    CHECK(ok, "the scenario's appends and fork: %s", attn_last_error());
    CHECK(attn_kvcache_len(c, 0) == 13 && attn_kvcache_len(c, 1) == 22 && attn_kvcache_len(c, 2) == 9, "lengths");
    /* Blocks: seq 0 [A B D E], seq 1 [A B C F G H], seq 2 three: 11; copied: the 2 tokens of C. */
    attn_kvcache_stats s;
    CHECK(attn_kvcache_get_stats(c, &s) == ATTN_OK && s.blocks_used == 11 && s.blocks_total == 16 &&
              s.bytes_copied == 2 * (HKV * DK + HKV * DV) * (int64_t)sizeof(float),
          "after the scenario: %d blocks used (want 11), %lld bytes copied (want 192)", s.blocks_used,
          (long long)s.bytes_copied);
    return c;
}

static void test_torch(const char *isa) {
    attn_array k[3], v[3], q = load("q"), bias = load("bias"), o = load("o"), lse = load("lse");
    char name[8];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "k%d", i), k[i] = load(name);
        snprintf(name, sizeof name, "v%d", i), v[i] = load(name);
    }
    attn_kvcache *c = replay(k, v);
    int seqs[3] = {0, 1, 2};
    attn_kvcache_query qr = {.nseq = 3, .seqs = seqs, .H = H, .nq = NQ, .causal = 1, .bias = bias.data,
                             .bias_strides = {H * NQ * 22, NQ * 22, 22, 1}};
    float O[3 * H * NQ * DV], L[3 * H * NQ], O2[3 * H * NQ * DV], L2[3 * H * NQ];
    for (int threads = 1; c && threads <= 2; threads++) {
        attn_set_threads(threads);
        CHECK(attn_kvcache_attend(c, &qr, q.data, threads == 1 ? O : O2, threads == 1 ? L : L2) == ATTN_OK, "%s: attend: %s",
              isa, attn_last_error());
    }
    attn_set_threads(0);
    double Od[3 * H * NQ * DV], Ld[3 * H * NQ];
    for (int i = 0; i < 3 * H * NQ * DV; i++) Od[i] = O[i];
    for (int i = 0; i < 3 * H * NQ; i++) Ld[i] = L[i];
    tu_close_d(isa, Od, o.data, 3 * H * NQ * DV, 1e-5, 1e-6);
    tu_close_d(isa, Ld, lse.data, 3 * H * NQ, 1e-5, 1e-6);
    CHECK(!memcmp(O, O2, sizeof O) && !memcmp(L, L2, sizeof L), "%s: 1 and 2 threads differ", isa);
    /* One query row without masks: bitwise attn_forward over sequence 1's keys made contiguous. */
    int one = 1;
    attn_kvcache_query q1 = {.nseq = 1, .seqs = &one, .H = H, .nq = 1, .q_strides = {H * NQ * DK, NQ * DK, DK}};
    float kd[22 * HKV * DK], vd[22 * HKV * DV], o1[H * DV], of[H * DV], pf[H * 22], lf[H];
    for (int p = 0; p < 22; p++) {
        const float *ks = p < 10 ? (const float *)k[0].data + p * HKV * DK : (const float *)k[1].data + (p - 10) * HKV * DK;
        const float *vs = p < 10 ? (const float *)v[0].data + p * HKV * DV : (const float *)v[1].data + (p - 10) * HKV * DV;
        memcpy(kd + p * HKV * DK, ks, sizeof(float) * HKV * DK), memcpy(vd + p * HKV * DV, vs, sizeof(float) * HKV * DV);
    }
    attn_desc a = {.B = 1, .H = H, .Hkv = HKV, .Nq = 1, .Nk = 22, .dq = DK, .dv = DV, .score = ATTN_SCORE_SCALED};
    a.k_strides[0] = 22 * HKV * DK, a.k_strides[1] = DK, a.k_strides[2] = HKV * DK; /* (N, Hkv, d) rows */
    a.v_strides[0] = 22 * HKV * DV, a.v_strides[1] = DV, a.v_strides[2] = HKV * DV;
    CHECK(c && attn_kvcache_attend(c, &q1, q.data, o1, NULL) == ATTN_OK, "%s: attend one row", isa);
    /* Q rows of head h: row 0 of each (3, H, 3, dk) head of sequence 0 (strides over (B, H, N)). */
    a.q_strides[0] = H * NQ * DK, a.q_strides[1] = NQ * DK, a.q_strides[2] = DK;
    CHECK(attn_forward(&a, q.data, kd, vd, of, pf, lf) == ATTN_OK, "forward: %s", attn_last_error());
    CHECK(!memcmp(o1, of, sizeof of), "%s: attention through the block table is not bitwise attn_forward's", isa);
    attn_kvcache_free(c);
    for (int i = 0; i < 3; i++) attn_array_free(&k[i]), attn_array_free(&v[i]);
    attn_array_free(&q), attn_array_free(&bias), attn_array_free(&o), attn_array_free(&lse);
}

/* Forks share, appends copy on write, resets give blocks back; a full pool refuses cleanly. */
static void test_blocks(void) {
    attn_kvcache_config cfg = {.Hkv = 1, .dk = 2, .block_size = 4, .num_blocks = 3, .max_seqs = 3};
    attn_kvcache *c = NULL;
    CHECK(attn_kvcache_new(&cfg, &c) == ATTN_OK, "new");
    if (!c) return;
    float kv[13 * 2];
    for (int i = 0; i < 26; i++) kv[i] = (float)i;
    attn_kvcache_stats s;
    CHECK(attn_kvcache_append(c, 0, 6, kv, 0, kv, 0) == ATTN_OK, "6 tokens");
    CHECK(attn_kvcache_fork(c, 0, 1) == ATTN_OK && attn_kvcache_fork(c, 0, 2) == ATTN_OK, "two forks");
    attn_kvcache_get_stats(c, &s);
    CHECK(s.blocks_used == 2 && s.bytes_copied == 0, "forks share: %d blocks, %lld bytes copied", s.blocks_used,
          (long long)s.bytes_copied);
    CHECK(attn_kvcache_append(c, 1, 1, kv, 0, kv, 0) == ATTN_OK, "append to a fork");
    attn_kvcache_get_stats(c, &s);
    CHECK(s.blocks_used == 3 && s.bytes_copied == 2 * 2 * 2 * (int64_t)sizeof(float), "copy-on-write of 2 tokens: %d, %lld",
          s.blocks_used, (long long)s.bytes_copied);
    /* The pool is full: sequence 2's shared half block cannot be copied. */
    CHECK(attn_kvcache_append(c, 2, 1, kv, 0, kv, 0) == ATTN_ENOMEM && tu_err_has("pool is exhausted"),
          "exhausted pool: %s", attn_last_error());
    CHECK(attn_kvcache_len(c, 2) == 6, "a refused append leaves the sequence as it was");
    CHECK(attn_kvcache_append(c, 0, 100, kv, 0, kv, 0) == ATTN_ENOMEM, "more tokens than the pool holds");
    CHECK(attn_kvcache_reset(c, 1) == ATTN_OK, "reset");
    attn_kvcache_get_stats(c, &s);
    CHECK(s.blocks_used == 2, "a reset gives its own block back (%d used)", s.blocks_used);
    CHECK(attn_kvcache_append(c, 2, 1, kv, 0, kv, 0) == ATTN_OK && attn_kvcache_len(c, 2) == 7, "room again");
    CHECK(attn_kvcache_reset(c, 0) == ATTN_OK && attn_kvcache_reset(c, 2) == ATTN_OK, "resets");
    attn_kvcache_get_stats(c, &s);
    CHECK(s.blocks_used == 0, "every block back (%d used)", s.blocks_used);
    /* Bad arguments. */
    int bad = 3, seq0 = 0;
    CHECK(attn_kvcache_append(c, 3, 1, kv, 0, kv, 0) == ATTN_EINVAL && tu_err_has("sequence 3"), "slot out of range");
    CHECK(attn_kvcache_fork(c, 0, -1) == ATTN_EINVAL, "fork to a bad slot");
    CHECK(attn_kvcache_len(c, 7) == -1, "len of a bad slot");
    float Q[4] = {0}, O[4];
    attn_kvcache_query q = {.nseq = 1, .seqs = &bad, .H = 1, .nq = 1};
    CHECK(attn_kvcache_attend(c, &q, Q, O, NULL) == ATTN_EINVAL, "attend a bad slot");
    q.seqs = &seq0;
    CHECK(attn_kvcache_attend(c, &q, Q, O, NULL) == ATTN_EINVAL && tu_err_has("fewer than"), "attend an empty sequence");
    attn_kvcache_append(c, 0, 1, kv, 0, kv, 0);
    q.H = 0;
    CHECK(attn_kvcache_attend(c, &q, Q, O, NULL) == ATTN_ESHAPE, "H = 0");
    attn_kvcache_free(c);
    attn_kvcache_config z = {.Hkv = 1, .dk = 0, .num_blocks = 1, .max_seqs = 1};
    CHECK(attn_kvcache_new(&z, &c) == ATTN_EINVAL && tu_err_has("positive"), "dk 0");
}

int main(void) {
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    const char *start = attn_get_isa();
    test_blocks();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (attn_set_isa(isas[i]) == ATTN_OK) test_torch(isas[i]);
    attn_set_isa(start);
    return tu_summary("test_kvcache");
}
