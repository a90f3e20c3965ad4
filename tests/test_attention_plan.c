/* Attention plans (attn_plan): results bitwise equal to the one-shot calls for every score,
 * on every ISA path, after reshapes to other sizes; a repeated call of a plan allocates nothing
 * (counted through the allocation hook); an unsupported element type is refused.
 * Letters as in attn/attention.h. */
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "testutil.h"

static size_t allocs;

static void *counting_malloc(size_t size, void *user) {
    (void)user;
    allocs++;
    return malloc(size);
}

static void counting_free(void *p, void *user) {
    (void)user;
    free(p);
}

enum { B = 2, H = 4, HKV = 2, D = 8, A = 6, NMAX = 600 };

static float Q[B * H * NMAX * D], K[B * HKV * NMAX * D], V[B * HKV * NMAX * D], dO[B * H * NMAX * D];
static float W[D * D], Wa[A * D], ba[A], Ua[A * D], bu[A], va[A], bv[1];

static attn_desc desc_of(attn_score score, int Nq, int Nk, const attn_score_params *p) {
    attn_desc a;
    memset(&a, 0, sizeof a);
    a.B = B, a.H = H, a.Hkv = HKV, a.Nq = Nq, a.Nk = Nk, a.dq = D, a.score = score, a.params = p;
    a.mask.causal = Nq == Nk;
    return a;
}

/* Forward and backward outputs of one call, for comparison. */
typedef struct {
    float O[B * H * NMAX * D], lse[B * H * NMAX], dQ[B * H * NMAX * D], dK[B * HKV * NMAX * D], dV[B * HKV * NMAX * D];
    float dW[D * D], dWa[A * D], dva[A];
} result;

static result one, planned;

static void clear_grads(result *r, attn_score_params *g) {
    memset(r->dW, 0, sizeof r->dW), memset(r->dWa, 0, sizeof r->dWa), memset(r->dva, 0, sizeof r->dva);
    memset(g, 0, sizeof *g);
    g->A = A, g->W = r->dW, g->Wa = r->dWa, g->va = r->dva;
}

static int same(const result *x, const result *y) { return memcmp(x, y, sizeof *x) == 0; }

static void test_same_as_one_shot(const char *isa, attn_score score) {
    attn_score_params p = {W, A, Wa, ba, Ua, bu, va, bv}, g;
    attn_plan *pl = NULL;
    attn_desc big = desc_of(score, NMAX, NMAX, &p);
    CHECK(attn_plan_new(&big, &pl) == ATTN_OK, "%s %s: plan_new: %s", isa, attn_score_name(score), attn_last_error());
    if (!pl) return;
    /* Sizes below and above a kernel block, and many keys against one query (the split path). */
    static const int sizes[][2] = {{1, 1}, {5, 5}, {33, 70}, {1, NMAX}, {64, 64}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        attn_desc a = desc_of(score, sizes[s][0], sizes[s][1], &p);
        memset(&one, 0, sizeof one), memset(&planned, 0, sizeof planned);
        clear_grads(&one, &g);
        int st = attn_forward(&a, Q, K, V, one.O, NULL, one.lse);
        st = st ? st : attn_backward(&a, Q, K, V, one.O, one.lse, dO, one.dQ, one.dK, one.dV, &g);
        CHECK(st == ATTN_OK, "%s %s: one-shot: %s", isa, attn_score_name(score), attn_last_error());
        CHECK(attn_plan_reshape(pl, &a) == ATTN_OK, "%s: reshape: %s", isa, attn_last_error());
        for (int rep = 0; rep < 2; rep++) { /* the second run reuses the workspace */
            clear_grads(&planned, &g);
            size_t before = allocs;
            st = attn_plan_forward(pl, Q, K, V, planned.O, NULL, planned.lse);
            st = st ? st : attn_plan_backward(pl, Q, K, V, planned.O, planned.lse, dO, planned.dQ, planned.dK, planned.dV, &g);
            CHECK(st == ATTN_OK, "%s %s: planned: %s", isa, attn_score_name(score), attn_last_error());
            CHECK(same(&one, &planned), "%s %s Nq %d Nk %d run %d: plan differs from the one-shot call", isa,
                  attn_score_name(score), a.Nq, a.Nk, rep);
            /* General and additive scores multiply by their weights with the fast sgemm,
             * which still packs into a buffer of its own on large products (a gemm matter). */
            if (rep == 1 && score <= ATTN_SCORE_COSINE)
                CHECK(allocs == before, "%s %s Nq %d Nk %d: a repeated call allocated %zu times", isa,
                      attn_score_name(score), a.Nq, a.Nk, allocs - before);
        }
    }
    attn_plan_free(pl);
}

/* Additive scores on projected queries and keys (Wa and Ua NULL, as the seq2seq decoder
 * calls them) equal the same scores with identity projections, bitwise: multiplying by an
 * identity matrix adds exact zeros. */
static void test_additive_projected(void) {
    enum { N = 9 };
    static float I[D * D], dI[2][D * D], vb[D], dvb[2][D];
    for (int i = 0; i < D; i++) I[i * D + i] = 1.0f;
    memcpy(vb, W, sizeof vb);
    attn_score_params full = {NULL, D, I, NULL, I, NULL, vb, bv}, proj = {NULL, D, NULL, NULL, NULL, NULL, vb, bv};
    attn_score_params gf = {NULL, D, dI[0], NULL, dI[1], NULL, dvb[0], NULL}, gp = {NULL, D, NULL, NULL, NULL, NULL, dvb[1], NULL};
    attn_desc a = desc_of(ATTN_SCORE_ADDITIVE, N, N, &full), b = desc_of(ATTN_SCORE_ADDITIVE, N, N, &proj);
    int st = attn_forward(&a, Q, K, V, one.O, NULL, one.lse);
    st = st ? st : attn_backward(&a, Q, K, V, one.O, one.lse, dO, one.dQ, one.dK, one.dV, &gf);
    st = st ? st : attn_forward(&b, Q, K, V, planned.O, NULL, planned.lse);
    st = st ? st : attn_backward(&b, Q, K, V, planned.O, planned.lse, dO, planned.dQ, planned.dK, planned.dV, &gp);
    CHECK(st == ATTN_OK, "additive on projections: %s", attn_last_error());
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * HKV * N * D;
    CHECK(!memcmp(one.O, planned.O, nq * sizeof(float)) && !memcmp(one.dQ, planned.dQ, nq * sizeof(float)) &&
              !memcmp(one.dK, planned.dK, nk * sizeof(float)) && !memcmp(one.dV, planned.dV, nk * sizeof(float)) &&
              !memcmp(dvb[0], dvb[1], sizeof dvb[0]),
          "additive scores on projected q and k differ from identity projections");
    proj.ba = vb;
    CHECK(attn_forward(&b, Q, K, V, planned.O, NULL, NULL) == ATTN_EINVAL, "a bias without projections was accepted");
}

static void test_dtype(void) {
    attn_desc a = desc_of(ATTN_SCORE_SCALED, 4, 4, NULL);
    a.dtype = ATTN_F16; /* no f16 path (ATTN_BF16 has one: test_attention_bf16.c) */
    attn_plan *pl = (attn_plan *)&a; /* must be reset to NULL on failure */
    CHECK(attn_plan_new(&a, &pl) == ATTN_EINVAL && pl == NULL, "plan_new accepted element type f16");
    CHECK(strstr(attn_last_error(), "element type") != NULL, "message: %s", attn_last_error());
    CHECK(attn_forward(&a, Q, K, V, one.O, NULL, NULL) == ATTN_EINVAL, "attn_forward accepted element type f16");
    CHECK(attn_plan_forward(NULL, Q, K, V, one.O, NULL, NULL) == ATTN_EINVAL, "NULL plan accepted");
    attn_plan_free(NULL);
}

int main(void) {
    static const char *const isas[] = {"ref", "avx2", "avx512"};
    static const attn_score scores[] = {ATTN_SCORE_SCALED, ATTN_SCORE_COSINE, ATTN_SCORE_GENERAL, ATTN_SCORE_ADDITIVE};
    tu_randn(Q, sizeof Q / sizeof *Q, 1), tu_randn(K, sizeof K / sizeof *K, 2), tu_randn(V, sizeof V / sizeof *V, 3);
    tu_randn(dO, sizeof dO / sizeof *dO, 4), tu_randn(W, D * D, 5), tu_randn(Wa, A * D, 6), tu_randn(ba, A, 7);
    tu_randn(Ua, A * D, 8), tu_randn(bu, A, 9), tu_randn(va, A, 10), tu_randn(bv, 1, 11);
    attn_set_allocator(counting_malloc, counting_free, NULL);
    const char *start = attn_get_isa();
    test_dtype();
    test_additive_projected();
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (attn_set_isa(isas[i]) != ATTN_OK) continue;
        for (size_t s = 0; s < sizeof scores / sizeof *scores; s++) test_same_as_one_shot(isas[i], scores[s]);
    }
    attn_set_isa(start);
    attn_set_allocator(NULL, NULL, NULL);
    return tu_summary("test_attention_plan");
}
