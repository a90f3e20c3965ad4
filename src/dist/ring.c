/* Ring attention (attn/dist.h): the sequence split over the ranks, keys and values passed
 * around the ring, the fused kernel (attn_forward / attn_backward) on each pair of local query
 * chunk and visiting key chunk.
 *
 * Forward. A query row's output over all keys is the merge of its outputs over disjoint key
 * blocks: with o_b, l_b the output and log-sum-exp over block b,
 *   l = log sum_b exp(l_b),   o = sum_b exp(l_b - l) o_b
 * (the online softmax). The running o and l are kept in double, so that the merge adds no
 * rounding of its own beyond the blocks' float results.
 * Backward. With the global O and lse, attn_backward on one block gives that block's exact
 * share of dQ (rows of this rank), dK and dV (rows of the visiting block): it computes
 * p_ij = exp(s_ij - lse_i) and delta_i = dO_i . O_i, which are the global ones. dQ sums the
 * shares here; dK and dV travel with K and V and come home after one more hop. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

enum { TAG_KV = 201, TAG_DKV = 202 };

/* The global chunk of rank s's local chunk k (chunks of N/(c P) rows). */
static int64_t gchunk(int P, int c, int s, int k) { return c == 1 ? s : k == 0 ? s : 2 * P - 1 - s; }

typedef struct {
    attn_desc a;  /* the local problem, checked */
    int P, rank, c;
    int64_t nloc, len; /* rows per rank, per chunk */
    size_t kn, vn;     /* floats of a rank's K and V */
} ring;

static int ring_setup(ring *r, const attn_desc *a, attn_ring_layout layout) {
    memset(r, 0, sizeof *r);
    if (!a) return attn__error(ATTN_EINVAL, "ring attention: NULL description");
    r->a = *a;
    int st = attn_desc_check(&r->a);
    if (st) return st;
    const attn_desc *d = &r->a;
    const attn_mask *m = &d->mask;
    if (d->score != ATTN_SCORE_DOT && d->score != ATTN_SCORE_SCALED && d->score != ATTN_SCORE_COSINE)
        return attn__error(ATTN_EINVAL, "ring attention: the %s score is not supported (dot, scaled or cosine)", attn_score_name(d->score));
    if (m->window || m->key_lengths || m->bool_mask || m->bias)
        return attn__error(ATTN_EINVAL, "ring attention: only the causal mask is supported");
    if (d->mods) /* the blocks' offsets would have to reach every modifier: not done */
        return attn__error(ATTN_EINVAL, "ring attention: attn_mods (documents, modifiers, sinks, dropout) are not supported");
    for (int i = 0; i < 3; i++)
        if (a->q_strides[i] || a->k_strides[i] || a->v_strides[i] || a->o_strides[i])
            return attn__error(ATTN_EINVAL, "ring attention: the local arrays must be contiguous (no strides)");
    if (d->Nq != d->Nk) return attn__error(ATTN_ESHAPE, "ring attention: Nq %d != Nk %d (each rank holds N/P rows of both)", d->Nq, d->Nk);
    if (layout != ATTN_RING_CONTIGUOUS && layout != ATTN_RING_ZIGZAG) return attn__error(ATTN_EINVAL, "ring attention: unknown layout");
    r->P = attn_dist_size(), r->rank = attn_dist_rank(), r->c = layout == ATTN_RING_ZIGZAG ? 2 : 1;
    r->nloc = d->Nq, r->len = d->Nq / r->c;
    if (d->Nq % r->c) return attn__error(ATTN_ESHAPE, "ring attention: zig-zag needs an even number of rows per rank (%d)", d->Nq);
    r->kn = (size_t)d->B * d->Hkv * r->nloc * d->dk, r->vn = (size_t)d->B * d->Hkv * r->nloc * d->dv;
    if (attn__dist_count((int64_t)(r->kn + r->vn), "ring attention") < 0) return ATTN_EINVAL;
    return ATTN_OK;
}

/* The description of one chunk pair: Q (and O, dO) rows of local chunk qk, K and V rows of chunk
 * kk of the block in hand, as views into the local (B, H, Nloc, d) arrays; the output
 * contiguous (B, H, len, dv) when o_view is 0. */
static attn_desc pair_desc(const ring *r, int causal, int o_view) {
    attn_desc s = r->a;
    const int64_t n = r->nloc;
    s.Nq = s.Nk = (int)r->len;
    s.mask.causal = causal;
    s.q_strides[0] = (int64_t)s.H * n * s.dq, s.q_strides[1] = n * s.dq, s.q_strides[2] = s.dq;
    s.k_strides[0] = (int64_t)s.Hkv * n * s.dk, s.k_strides[1] = n * s.dk, s.k_strides[2] = s.dk;
    s.v_strides[0] = (int64_t)s.Hkv * n * s.dv, s.v_strides[1] = n * s.dv, s.v_strides[2] = s.dv;
    if (o_view) s.o_strides[0] = (int64_t)s.H * n * s.dv, s.o_strides[1] = n * s.dv, s.o_strides[2] = s.dv;
    else s.o_strides[0] = (int64_t)s.H * r->len * s.dv, s.o_strides[1] = r->len * s.dv, s.o_strides[2] = s.dv;
    return s;
}

/* Whether local query chunk qk sees chunk kk of rank src's block: 0 no, 1 all, 2 causally
 * (the same chunk: the diagonal). */
static int visible(const ring *r, int qk, int src, int kk) {
    if (!r->a.mask.causal) return 1;
    int64_t gi = gchunk(r->P, r->c, r->rank, qk), gj = gchunk(r->P, r->c, src, kk);
    return gj < gi ? 1 : gj == gi ? 2 : 0;
}

/* Posts the send of `n` floats to the next rank and the receive from the previous one. */
static void pass(const float *out, float *in, int n, int tag, int P, int rank, MPI_Request req[2]) {
    MPI_Isend(out, n, MPI_FLOAT, (rank + 1) % P, tag, MPI_COMM_WORLD, &req[0]);
    MPI_Irecv(in, n, MPI_FLOAT, (rank + P - 1) % P, tag, MPI_COMM_WORLD, &req[1]);
}

int attn_ring_forward(const attn_desc *a, attn_ring_layout layout, const float *Q, const float *K, const float *V, float *O,
                      float *lse) {
    ring r;
    int st = ring_setup(&r, a, layout);
    if (st) return st;
    if (!Q || !K || !V || !O) return attn__error(ATTN_EINVAL, "attn_ring_forward: NULL array");
    const attn_desc *d = &r.a;
    const size_t rows = (size_t)d->B * d->H * r.nloc, lrows = (size_t)d->B * d->H * r.len;
    float *buf[2] = {malloc((r.kn + r.vn) * sizeof(float)), malloc((r.kn + r.vn) * sizeof(float))};
    float *bo = malloc(lrows * d->dv * sizeof(float)), *bl = malloc(lrows * sizeof(float));
    double *acc = malloc(rows * d->dv * sizeof(double)), *accl = malloc(rows * sizeof(double));
    if (!buf[0] || !buf[1] || !bo || !bl || !acc || !accl) {
        st = attn__error(ATTN_ENOMEM, "attn_ring_forward: out of memory");
        goto done;
    }
    memcpy(buf[0], K, r.kn * sizeof(float)), memcpy(buf[0] + r.kn, V, r.vn * sizeof(float));
    memset(acc, 0, rows * d->dv * sizeof(double));
    for (size_t i = 0; i < rows; i++) accl[i] = -INFINITY;
    for (int t = 0; t < r.P && !st; t++) {
        int src = (r.rank - t + r.P) % r.P;
        float *cur = buf[t & 1], *next = buf[(t + 1) & 1];
        MPI_Request req[2];
        /* the next block travels while this one is computed */
        if (t < r.P - 1) pass(cur, next, (int)(r.kn + r.vn), TAG_KV, r.P, r.rank, req);
        for (int qk = 0; qk < r.c && !st; qk++)
            for (int kk = 0; kk < r.c && !st; kk++) {
                int vis = visible(&r, qk, src, kk);
                if (!vis) continue;
                attn_desc s = pair_desc(&r, vis == 2, 0);
                st = attn_forward(&s, Q + qk * r.len * d->dq, cur + kk * r.len * d->dk, cur + r.kn + kk * r.len * d->dv, bo, NULL, bl);
                /* merge the block's rows into the running output (online softmax) */
                for (size_t bh = 0; bh < (size_t)d->B * d->H && !st; bh++)
                    for (int64_t i = 0; i < r.len; i++) {
                        size_t row = bh * r.nloc + qk * r.len + i;
                        double lb = bl[bh * r.len + i], la = accl[row];
                        if (lb == -INFINITY) continue; /* no visible key in this block */
                        double m = la > lb ? la : lb, l = m + log(exp(la - m) + exp(lb - m));
                        double wa = exp(la - l), wb = exp(lb - l);
                        double *o = acc + row * d->dv;
                        const float *ob = bo + (bh * r.len + i) * d->dv;
                        for (int k = 0; k < d->dv; k++) o[k] = o[k] * wa + ob[k] * wb;
                        accl[row] = l;
                    }
            }
        if (t < r.P - 1) {
            int w = attn__dist_wait(2, req, "ring attention forward: passing keys and values");
            if (!st) st = w;
        }
    }
    if (!st) {
        for (size_t i = 0; i < rows * d->dv; i++) O[i] = (float)acc[i];
        if (lse)
            for (size_t i = 0; i < rows; i++) lse[i] = (float)accl[i];
    }
done:
    free(buf[0]), free(buf[1]), free(bo), free(bl), free(acc), free(accl);
    return st;
}

int attn_ring_backward(const attn_desc *a, attn_ring_layout layout, const float *Q, const float *K, const float *V,
                       const float *O, const float *lse, const float *dO, float *dQ, float *dK, float *dV) {
    ring r;
    int st = ring_setup(&r, a, layout);
    if (st) return st;
    if (!Q || !K || !V || !O || !lse || !dO || !dQ || !dK || !dV)
        return attn__error(ATTN_EINVAL, "attn_ring_backward: NULL array (all are required)");
    const attn_desc *d = &r.a;
    const size_t qn = (size_t)d->B * d->H * r.nloc * d->dq, lrows = (size_t)d->B * d->H * r.len, kvn = r.kn + r.vn;
    /* buf: the K, V in hand and the next; g: their dK, dV (accumulating) and the next */
    float *buf[2] = {malloc(kvn * sizeof(float)), malloc(kvn * sizeof(float))};
    float *g[2] = {calloc(kvn, sizeof(float)), malloc(kvn * sizeof(float))};
    float *tq = malloc(qn * sizeof(float)), *tkv = malloc(kvn * sizeof(float)), *bl = malloc(lrows * sizeof(float));
    double *accq = calloc(qn, sizeof(double));
    if (!buf[0] || !buf[1] || !g[0] || !g[1] || !tq || !tkv || !bl || !accq) {
        st = attn__error(ATTN_ENOMEM, "attn_ring_backward: out of memory");
        goto done;
    }
    memcpy(buf[0], K, r.kn * sizeof(float)), memcpy(buf[0] + r.kn, V, r.vn * sizeof(float));
    for (int t = 0; t < r.P && !st; t++) {
        int src = (r.rank - t + r.P) % r.P, cb = t & 1;
        float *cur = buf[cb], *gc = g[cb];
        MPI_Request req[2];
        if (t < r.P - 1) pass(cur, buf[cb ^ 1], (int)kvn, TAG_KV, r.P, r.rank, req);
        for (int qk = 0; qk < r.c && !st; qk++) {
            /* the chunk's lse rows, contiguous (B, H, len) as attn_backward takes them */
            for (size_t bh = 0; bh < (size_t)d->B * d->H; bh++)
                memcpy(bl + bh * r.len, lse + bh * r.nloc + qk * r.len, (size_t)r.len * sizeof(float));
            for (int kk = 0; kk < r.c && !st; kk++) {
                int vis = visible(&r, qk, src, kk);
                if (!vis) continue;
                attn_desc s = pair_desc(&r, vis == 2, 1);
                size_t qo = (size_t)qk * r.len, ko = (size_t)kk * r.len;
                st = attn_backward(&s, Q + qo * d->dq, cur + ko * d->dk, cur + r.kn + ko * d->dv, O + qo * d->dv, bl, dO + qo * d->dv,
                                   tq + qo * d->dq, tkv + ko * d->dk, tkv + r.kn + ko * d->dv, NULL);
                if (st) break;
                /* add the shares: dQ rows of chunk qk, dK and dV rows of chunk kk */
                for (size_t bh = 0; bh < (size_t)d->B * d->H; bh++) {
                    size_t o = (bh * r.nloc + qo) * d->dq;
                    for (size_t i = 0; i < (size_t)r.len * d->dq; i++) accq[o + i] += tq[o + i];
                }
                for (size_t bh = 0; bh < (size_t)d->B * d->Hkv; bh++) {
                    size_t ok = (bh * r.nloc + ko) * d->dk, ov = r.kn + (bh * r.nloc + ko) * d->dv;
                    for (size_t i = 0; i < (size_t)r.len * d->dk; i++) gc[ok + i] += tkv[ok + i];
                    for (size_t i = 0; i < (size_t)r.len * d->dv; i++) gc[ov + i] += tkv[ov + i];
                }
            }
        }
        if (t < r.P - 1) {
            int w = attn__dist_wait(2, req, "ring attention backward: passing keys and values");
            if (!st) st = w;
        }
        /* this block's gradients go on with it (after the last block: home, to its owner) */
        if (r.P > 1 && !st) {
            pass(gc, g[cb ^ 1], (int)kvn, TAG_DKV, r.P, r.rank, req);
            st = attn__dist_wait(2, req, "ring attention backward: passing the key and value gradients");
        }
    }
    if (!st) {
        /* after P hops the gradients of this rank's own K and V are in hand (g[P & 1]); one
         * rank never passes them */
        const float *home = r.P > 1 ? g[r.P & 1] : g[0];
        memcpy(dK, home, r.kn * sizeof(float)), memcpy(dV, home + r.kn, r.vn * sizeof(float));
        for (size_t i = 0; i < qn; i++) dQ[i] = (float)accq[i];
    }
done:
    free(buf[0]), free(buf[1]), free(g[0]), free(g[1]), free(tq), free(tkv), free(bl), free(accq);
    return st;
}

/* ---- Rank 0's whole arrays <-> the ranks' rows --------------------------------------------------- */

/* Copies rank r's rows between a whole (B, heads, N, d) array and a packed (B, heads, N/P, d) one:
 * to_local 1 packs, 0 unpacks. */
static void rows(float *full, float *local, int B, int heads, int64_t N, int d, attn_ring_layout layout, int P, int r, int to_local) {
    int64_t nl = N / P;
    for (int64_t bh = 0; bh < (int64_t)B * heads; bh++)
        for (int64_t i = 0; i < nl; i++) {
            float *f = full + (bh * N + attn_ring_row(N, P, r, layout, i)) * d, *l = local + (bh * nl + i) * d;
            memcpy(to_local ? l : f, to_local ? f : l, (size_t)d * sizeof(float));
        }
}

static int move_rows(float *full, float *local, int B, int heads, int64_t N, int d, attn_ring_layout layout, int scatter) {
    int P = attn_dist_size(), rank = attn_dist_rank(), st = ATTN_OK;
    const char *what = scatter ? "attn_ring_scatter" : "attn_ring_gather";
    if (!local || (rank == 0 && !full) || B < 1 || heads < 1 || d < 1 || attn_ring_row(N, P, 0, layout, 0) < 0)
        return attn__error(ATTN_EINVAL, "%s: NULL array, or %lld rows do not split over %d ranks", what, (long long)N, P);
    size_t n = (size_t)B * heads * (N / P) * d;
    if (attn__dist_count((int64_t)n, what) < 0) return ATTN_EINVAL;
    if (rank != 0) {
        MPI_Request req;
        if (scatter) MPI_Irecv(local, (int)n, MPI_FLOAT, 0, 301, MPI_COMM_WORLD, &req);
        else MPI_Isend(local, (int)n, MPI_FLOAT, 0, 302, MPI_COMM_WORLD, &req);
        return attn__dist_wait(1, &req, scatter ? "ring attention: receiving rows from rank 0" : "ring attention: sending rows to rank 0");
    }
    float *buf = P > 1 ? malloc(n * sizeof(float)) : NULL;
    if (P > 1 && !buf) return attn__error(ATTN_ENOMEM, "%s: out of memory", what);
    for (int r = 1; r < P && !st; r++) { /* one rank at a time: one packed block in memory */
        MPI_Request req;
        if (scatter) {
            rows(full, buf, B, heads, N, d, layout, P, r, 1);
            MPI_Isend(buf, (int)n, MPI_FLOAT, r, 301, MPI_COMM_WORLD, &req);
        } else {
            MPI_Irecv(buf, (int)n, MPI_FLOAT, r, 302, MPI_COMM_WORLD, &req);
        }
        st = attn__dist_wait(1, &req, scatter ? "ring attention: sending rows" : "ring attention: receiving rows");
        if (!st && !scatter) rows(full, buf, B, heads, N, d, layout, P, r, 0);
    }
    rows(full, local, B, heads, N, d, layout, P, 0, scatter);
    free(buf);
    return st;
}

int attn_ring_scatter(const float *full, float *local, int B, int heads, int64_t N, int d, attn_ring_layout layout) {
    return move_rows((float *)full, local, B, heads, N, d, layout, 1); /* full is only read */
}

int attn_ring_gather(const float *local, float *full, int B, int heads, int64_t N, int d, attn_ring_layout layout) {
    return move_rows(full, (float *)local, B, heads, N, d, layout, 0); /* local is only read */
}
