/* The attention weights of the fast kernels recomputed from the forward's log-sum-exp
 * (attn__probs_fn, for attn_weights), included after x86/attn_fast.h by each x86 level.
 *
 * The forward of attn_fast.h writes its weights, when asked for them, in a second pass over
 * the keys: the scores again, p = 2^((s - lse) log2 e) with the final lse. This is that pass
 * alone, by tiles of query rows or one row at a time as the forward's two paths compute it.
 * A weight's bits depend on neither: each score is one FMA chain over the features (row_scores
 * gives the bits of the tile path's "ka") and the exponential is element-wise, so given the
 * forward's lse the weights are bitwise the forward's however the rows are grouped. */

/* Rows [ib, ie) (ie - ib <= BR) as fwd_tile's second pass: P row i at p + (i - i0) * p_rs. */
static void probs_tile(const attn__head *h, const float *lse, int ib, int ie, int i0, float *p, int64_t p_rs, float *ws) {
    const int d = h->d, nr = ie - ib;
    float *qt = ws, *st = qt + (size_t)d * BR, *lse2 = st + (size_t)BC * BR;
    pack_t(h->q, h->q_rs, ib, nr, d, h->scale, qt);
    for (int r = 0; r < BR; r++) lse2[r] = r < nr && lse[ib + r] != -INFINITY ? lse[ib + r] : INFINITY; /* +inf: zeros */
    for (int r = 0; r < nr; r++) memset(p + (int64_t)(ib - i0 + r) * p_rs, 0, (size_t)h->Nk * sizeof *p);
    int js, je;
    key_range(h, ib, ie, 0, h->Nk, &js, &je);
    probs_blocks(h, qt, st, lse2, ib, nr, js, je, p + (int64_t)(ib - i0) * p_rs, p_rs);
}

/* One row as fwd_rows' second pass. */
static void probs_row(const attn__head *h, float lse, int i, float *pr, float *ws) {
    const int d = h->d, dp = rup(d, VL);
    float *q2 = ws, *tmp = q2 + dp;
    memset(pr, 0, (size_t)h->Nk * sizeof *pr);
    if (lse == -INFINITY) return; /* no visible key: zeros, as the forward */
    const float *qi = h->q + (int64_t)i * h->q_rs;
    for (int c = 0; c < dp; c++) q2[c] = c < d ? qi[c] * h->scale : 0.0f;
    int js, je;
    key_range(h, i, i + 1, 0, h->Nk, &js, &je);
    const vf li = vset1(lse), l2e = vset1(LOG2E);
    for (int jc = js; jc < je; jc += VL) {
        int nk = imin(VL, je - jc);
        vf sc = row_mask(h, i, jc, nk, row_scores(q2, h->k + (int64_t)jc * h->k_rs, h->k_rs, nk, d), tmp);
        vstoren(pr + jc, vexp2(vmul(vsub(sc, li), l2e)), nk);
    }
}

/* Tiles of BR rows as the forward takes them (the row path for short ones); each row's
 * weights have the same bits whichever path computes them. */
static void FN(probs)(const attn__head *h, const float *lse, int i0, int i1, float *p, int64_t p_rs, float *ws) {
    for (int ib = i0; ib < i1; ib += BR) {
        int ie = imin(i1, ib + BR);
        if (ie - ib > ROWS_MAX) {
            probs_tile(h, lse, ib, ie, i0, p, p_rs, ws);
            continue;
        }
        for (int i = ib; i < ie; i++) probs_row(h, lse[i], i, p + (int64_t)(i - i0) * p_rs, ws);
    }
}
