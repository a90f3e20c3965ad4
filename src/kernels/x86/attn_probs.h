/* The attention weights of the fast kernels recomputed from the forward's log-sum-exp
 * (attn__probs_fn, for attn_weights), included after x86/attn_fast.h by each x86 level.
 *
 * The forward of attn_fast.h writes its weights, when asked for them, in a second pass over
 * the keys: the scores again, p = 2^((s - lse) log2 e) with the final lse. This is that pass
 * alone, one query row at a time as the row path computes it (row_scores gives the bits of the
 * tile path's "ka"; the exponential is element-wise), so given the forward's lse the weights
 * are bitwise the forward's whichever path (row or tile) the forward took for the row. */

static void FN(probs)(const attn__head *h, const float *lse, int i0, int i1, float *p, int64_t p_rs, float *ws) {
    const int d = h->d, dp = rup(d, VL);
    float *q2 = ws, *tmp = q2 + dp;
    const vf l2e = vset1(LOG2E);
    for (int i = i0; i < i1; i++) {
        float *pr = p + (int64_t)(i - i0) * p_rs;
        memset(pr, 0, (size_t)h->Nk * sizeof *pr);
        if (lse[i] == -INFINITY) continue; /* no visible key: zeros, as the forward */
        const float *qi = h->q + (int64_t)i * h->q_rs;
        for (int c = 0; c < dp; c++) q2[c] = c < d ? qi[c] * h->scale : 0.0f;
        int js, je;
        key_range(h, i, i + 1, 0, h->Nk, &js, &je);
        const vf li = vset1(lse[i]);
        for (int jc = js; jc < je; jc += VL) {
            int nk = imin(VL, je - jc);
            vf sc = row_mask(h, i, jc, nk, row_scores(q2, h->k + (int64_t)jc * h->k_rs, h->k_rs, nk, d), tmp);
            vstoren(pr + jc, vexp2(vmul(vsub(sc, li), l2e)), nk);
        }
    }
}
