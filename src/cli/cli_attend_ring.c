/* attn attend --ring: the attention of cli_attend.c as ring attention over the ranks of mpirun
 * (attn/dist.h). Rank 0 reads and checks the files (cli_attend.c), sends every rank the job and
 * its rows of Q, K, V (and dO), all ranks run the ring, and rank 0 gathers the results and
 * writes them: the same files as one process writes. The other ranks read and write nothing. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* What rank 0 sends before the rows: the sizes, the score and mask, which outputs are wanted;
 * rc non-zero says that rank 0 failed (and printed why): the others return it too. */
typedef struct {
    int32_t rc, B, H, Hkv, N, dq, dv, score, causal, layout, dout, want[4]; /* want: O, dQ, dK, dV */
    float scale;
} ring_job;

/* Every rank's part: scatter, ring forward (and backward), gather. The whole arrays are rank 0's
 * (NULL elsewhere). */
static int run(const ring_job *j, const float *Q, const float *K, const float *V, const float *dO, float *O, float *dQ,
               float *dK, float *dV) {
    int P = attn_dist_size(), st = ATTN_OK;
    attn_ring_layout lay = (attn_ring_layout)j->layout;
    int64_t nl = j->N / P;
    size_t nq = (size_t)j->B * j->H * nl * j->dq, nk = (size_t)j->B * j->Hkv * nl * j->dq, nv = (size_t)j->B * j->Hkv * nl * j->dv;
    size_t no = (size_t)j->B * j->H * nl * j->dv, nr = (size_t)j->B * j->H * nl;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4), *o = malloc(no * 4), *l = malloc(nr * 4);
    float *g = j->dout ? malloc(no * 4) : NULL, *gq = j->dout ? malloc(nq * 4) : NULL, *gk = j->dout ? malloc(nk * 4) : NULL;
    float *gv = j->dout ? malloc(nv * 4) : NULL;
    if (!q || !k || !v || !o || !l || (j->dout && (!g || !gq || !gk || !gv))) {
        st = ATTN_ENOMEM;
        goto done;
    }
    attn_desc d = {0};
    d.B = j->B, d.H = j->H, d.Hkv = j->Hkv, d.Nq = d.Nk = (int)nl, d.dq = j->dq, d.dv = j->dv;
    d.score = (attn_score)j->score, d.scale = j->scale, d.mask.causal = j->causal;
    if ((st = attn_ring_scatter(Q, q, j->B, j->H, j->N, j->dq, lay)) || (st = attn_ring_scatter(K, k, j->B, j->Hkv, j->N, j->dq, lay)) ||
        (st = attn_ring_scatter(V, v, j->B, j->Hkv, j->N, j->dv, lay)) ||
        (j->dout && (st = attn_ring_scatter(dO, g, j->B, j->H, j->N, j->dv, lay))))
        goto done;
    if ((st = attn_ring_forward(&d, lay, q, k, v, o, l))) goto done;
    if (j->dout && (st = attn_ring_backward(&d, lay, q, k, v, o, l, g, gq, gk, gv))) goto done;
    if (j->want[0] && (st = attn_ring_gather(o, O, j->B, j->H, j->N, j->dv, lay))) goto done;
    if (j->want[1] && (st = attn_ring_gather(gq, dQ, j->B, j->H, j->N, j->dq, lay))) goto done;
    if (j->want[2] && (st = attn_ring_gather(gk, dK, j->B, j->Hkv, j->N, j->dq, lay))) goto done;
    if (j->want[3]) st = attn_ring_gather(gv, dV, j->B, j->Hkv, j->N, j->dv, lay);
done:
    free(q), free(k), free(v), free(o), free(l), free(g), free(gq), free(gk), free(gv);
    return st;
}

/* Rank 0: the job to the others, then its part. A description the ring cannot take is
 * refused here, before anything is sent but the refusal. */
int cli_attend_ring(const char *cmd, const attn_desc *d, int layout, const float *Q, const float *K, const float *V,
                    const float *dO, float *O, float *dQ, float *dK, float *dV) {
    int P = attn_dist_size(), c = layout == ATTN_RING_ZIGZAG ? 2 : 1;
    ring_job j = {0};
    if (d->Nq != d->Nk) j.rc = cli_fail(cmd, "--ring: queries and keys must have the same length (Nq %d, Nk %d)", d->Nq, d->Nk);
    else if (d->dq != d->dk) j.rc = cli_fail(cmd, "--ring: queries and keys must have the same size");
    else if (d->Nq % (P * c))
        j.rc = cli_fail(cmd, "--ring: the sequence length %d must be a multiple of %d (%d ranks%s)", d->Nq, P * c, P,
                        c == 2 ? ", 2 chunks each for the zig-zag layout" : "");
    j.B = d->B, j.H = d->H, j.Hkv = d->Hkv ? d->Hkv : d->H, j.N = d->Nq, j.dq = d->dq, j.dv = d->dv ? d->dv : d->dq;
    j.score = (int32_t)d->score, j.causal = d->mask.causal, j.layout = layout, j.dout = dO != NULL, j.scale = d->scale;
    j.want[0] = O != NULL, j.want[1] = dQ != NULL, j.want[2] = dK != NULL, j.want[3] = dV != NULL;
    int st = attn_dist_bcast(&j, sizeof j);
    if (st) return cli_fail_lib(cmd, st, NULL);
    if (j.rc) return j.rc;
    if ((st = run(&j, Q, K, V, dO, O, dQ, dK, dV))) return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}

/* Rank 0 failed before the job was sent: tell the others (they return rc). */
void cli_attend_ring_cancel(int rc) {
    ring_job j = {0};
    j.rc = rc ? rc : CLI_EDATA;
    attn_dist_bcast(&j, sizeof j);
}

/* Ranks 1 .. P-1: wait for the job, run their part. */
int cli_attend_ring_worker(const char *cmd) {
    ring_job j;
    memset(&j, 0, sizeof j);
    int st = attn_dist_bcast(&j, sizeof j);
    if (st) return cli_fail_lib(cmd, st, NULL);
    if (j.rc) return j.rc;
    if ((st = run(&j, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL))) return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}
