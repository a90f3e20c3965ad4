/* The row path of the fast forward (few query rows: decoding one token, a beam, a group's
 * folded heads), included by x86/attn_fast.h where it stood, with that file's macros and
 * helpers; not a header of its own. */

/* ------------------------------------------------------------------------------------------
 * Forward, row path (few query rows: decoding one token, or a beam of them): the rows [ib, ie)
 * (at most ROWS_MAX) go through the keys together, RK keys at a time, so that K and V are read
 * from memory once for all of them, not once per row. Each VL x VL block of a chunk of keys is
 * transposed once in registers and serves every row (chunk_scores: per row and VL keys one FMA
 * chain over the features, bitwise "ka"'s and row_scores'); then every row takes its
 * online-softmax update and its weighted values over the keys it sees. */

#define RK (4 * VL) /* keys per step of the row path */

/* Per row: the scaled query (dp), the output accumulator (dvp) and the chunk's scores (RK);
 * the probabilities of a chunk (RK) and a spare vector. */
ALWAYS_INLINE size_t fwd_rows_floats(int d, int dv) {
    return ((size_t)rup(d, VL) + (size_t)rup(dv, VL) + RK) * ROWS_MAX + RK + VL;
}

/* sc[r * RK + k] = the score of row r (queries q2 + r * dp, scaled, nr rows) against key k of
 * kr[0 .. nb) (rows at stride krs, nb <= RK), for d features; 0 past nb. */
static void chunk_scores(const float *kr, int64_t krs, int nb, int d, const float *q2, int dp, int nr, float *sc) {
    for (int c4 = 0; c4 < RK / VL; c4++) {
        int nk = imin(VL, nb - c4 * VL);
        for (int r = 0; r < nr; r++) vstore(sc + r * RK + c4 * VL, vzero());
        if (nk <= 0) continue;
        for (int cb = 0; cb < d; cb += VL) {
            int nc = imin(VL, d - cb);
            vf t[VL];
            if (nk == VL && nc == VL) {
                UNROLL for (int k = 0; k < VL; k++) t[k] = vload(kr + (int64_t)(c4 * VL + k) * krs + cb);
            } else {
                UNROLL for (int k = 0; k < VL; k++) t[k] = k < nk ? vloadn(kr + (int64_t)(c4 * VL + k) * krs + cb, nc) : vzero();
            }
            vtranspose(t);
            for (int r = 0; r < nr; r++) {
                const float *q = q2 + (size_t)r * dp + cb;
                vf acc = vload(sc + r * RK + c4 * VL);
                if (nc == VL) {
                    UNROLL for (int c = 0; c < VL; c++) acc = vfma(t[c], vbcast(q + c), acc);
                } else {
                    for (int c = 0; c < nc; c++) acc = vfma(t[c], vbcast(q + c), acc);
                }
                vstore(sc + r * RK + c4 * VL, acc);
            }
        }
    }
}

/* Scores of one query row q (scaled) against keys kr[0 .. nk) (rows at stride krs): lane k =
 * the FMA chain over c of q[c] k_k[c], bitwise what "ka" computes; lanes past nk are -inf. */
static inline vf row_scores(const float *q, const float *kr, int64_t krs, int nk, int d) {
    vf acc = vzero();
    for (int cb = 0; cb < d; cb += VL) {
        int nc = imin(VL, d - cb);
        vf t[VL];
        UNROLL for (int k = 0; k < VL; k++) t[k] = k < nk ? vloadn(kr + k * krs + cb, nc) : vzero();
        vtranspose(t);
        if (nc == VL) {
            UNROLL for (int c = 0; c < VL; c++) acc = vfma(t[c], vbcast(q + cb + c), acc);
        } else {
            for (int c = 0; c < nc; c++) acc = vfma(t[c], vbcast(q + cb + c), acc);
        }
    }
    return vkeep(acc, 0, 0, nk);
}

/* Element-wise masks of one row's chunk of keys [jc + k0, jc + nk) (tmp: VL floats); the lanes
 * below k0 are left as they are (the row path hides them: keys the row does not see). */
static inline vf row_mask_from(const attn__head *h, int i, int jc, int k0, int nk, vf s, float *tmp) {
    if (!h->bmask && !h->bias && !h->ew && !h->mask_mod) return s;
    vstore(tmp, s);
    for (int k = k0; k < nk; k++) tmp[k] = attn__score_elem(h, i, jc + k, tmp[k], 1, NULL);
    return vload(tmp);
}

static inline vf row_mask(const attn__head *h, int i, int jc, int nk, vf s, float *tmp) {
    return row_mask_from(h, i, jc, 0, nk, s, tmp);
}

/* o (VL-vector cv of the output) += sum_k p[k] v_k over nk keys: four independent chains. */
ALWAYS_INLINE vf row_pv(vf o, const float *p, const float *v, int64_t vrs, int nk, int n) {
    vf a1 = vzero(), a2 = vzero(), a3 = vzero();
    int k = 0;
    if (n == VL) {
        for (; k + 4 <= nk; k += 4) {
            o = vfma(vbcast(p + k), vload(v + k * vrs), o);
            a1 = vfma(vbcast(p + k + 1), vload(v + (k + 1) * vrs), a1);
            a2 = vfma(vbcast(p + k + 2), vload(v + (k + 2) * vrs), a2);
            a3 = vfma(vbcast(p + k + 3), vload(v + (k + 3) * vrs), a3);
        }
    }
    for (; k < nk; k++) o = vfma(vbcast(p + k), vloadn(v + k * vrs, n), o);
    return vadd(vadd(o, a1), vadd(a2, a3));
}

/* oa[r] (rows of dvp floats) += sum_k p[r * RK + k] v_k over keys k in [0, nk) of vr (rows vrs
 * apart; dv features, nvv vectors, the last vtail lanes), for nr rows: MB rows x NB vectors of
 * accumulators in registers, so that each vector of V is loaded once per MB rows (not once per
 * row: a chunk of V does not stay in L1 beside K's when d = 128). */
ALWAYS_INLINE void rows_pv_tile(const int R, const int NVB, float *oa, int dvp, const float *p, const float *vr, int64_t vrs,
                                int nk, int n) {
    vf acc[MB][NB];
    UNROLL for (int i = 0; i < R; i++) UNROLL for (int j = 0; j < NVB; j++) acc[i][j] = vload(oa + (size_t)i * dvp + j * VL);
    for (int k = 0; k < nk; k++) {
        vf vv[NB];
        UNROLL for (int j = 0; j < NVB; j++) vv[j] = n == VL ? vload(vr + k * vrs + j * VL) : vloadn(vr + k * vrs + j * VL, n);
        UNROLL for (int i = 0; i < R; i++) {
            vf pb = vbcast(p + i * RK + k);
            UNROLL for (int j = 0; j < NVB; j++) acc[i][j] = vfma(pb, vv[j], acc[i][j]);
        }
    }
    UNROLL for (int i = 0; i < R; i++) UNROLL for (int j = 0; j < NVB; j++) vstore(oa + (size_t)i * dvp + j * VL, acc[i][j]);
}

/* Whole blocks of NB vectors, then the vectors left one at a time (the last one n lanes). */
static void rows_pv(float *oa, int dvp, int nr, const float *p, const float *vr, int64_t vrs, int nk, int dv) {
    const int nvv = dvp / VL, vtail = dv - (nvv - 1) * VL, nfull = vtail == VL ? nvv : nvv - 1;
    int cv = 0;
    for (; cv + NB <= nfull; cv += NB) {
        int r = 0;
        for (; r + MB <= nr; r += MB) rows_pv_tile(MB, NB, oa + (size_t)r * dvp + cv * VL, dvp, p + r * RK, vr + cv * VL, vrs, nk, VL);
        for (; r < nr; r++) rows_pv_tile(1, NB, oa + (size_t)r * dvp + cv * VL, dvp, p + r * RK, vr + cv * VL, vrs, nk, VL);
    }
    for (; cv < nvv; cv++) {
        int n = cv == nvv - 1 ? vtail : VL, r = 0;
        for (; r + MB <= nr; r += MB) rows_pv_tile(MB, 1, oa + (size_t)r * dvp + cv * VL, dvp, p + r * RK, vr + cv * VL, vrs, nk, n);
        for (; r < nr; r++) rows_pv_tile(1, 1, oa + (size_t)r * dvp + cv * VL, dvp, p + r * RK, vr + cv * VL, vrs, nk, n);
    }
}

static void fwd_rows(const attn__head *h, int ib, int ie, int j0, int j1, float *o, int64_t o_rs, float *lse,
                     float *p, int64_t p_rs, float *ws) {
    const int d = h->d, dv = h->dv, dp = rup(d, VL), dvp = rup(dv, VL), nvv = dvp / VL, nr = ie - ib;
    const int vtail = dv - (nvv - 1) * VL;
    float *q2 = ws, *oa = q2 + (size_t)dp * ROWS_MAX, *sc = oa + (size_t)dvp * ROWS_MAX, *pk = sc + (size_t)RK * ROWS_MAX;
    float *tmp = pk + RK;
    const vf l2e = vset1(LOG2E);
    float m[ROWS_MAX];
    vf lv[ROWS_MAX];
    int js[ROWS_MAX], je[ROWS_MAX], ju0 = j1, ju1 = j0; /* each row's keys, and their union */
    for (int r = 0; r < nr; r++) {
        const float *qi = h->q + (int64_t)(ib + r) * h->q_rs;
        for (int c = 0; c < dp; c++) q2[r * dp + c] = c < d ? qi[c] * h->scale : 0.0f;
        memset(oa + (size_t)r * dvp, 0, (size_t)dvp * sizeof *oa);
        m[r] = -INFINITY, lv[r] = vzero();
        key_range(h, ib + r, ib + r + 1, j0, j1, &js[r], &je[r]); /* exact for one row: causal and window */
        if (js[r] < je[r]) ju0 = imin(ju0, js[r]), ju1 = imax(ju1, je[r]);
    }
    /* Rows that see the same keys, unmasked (decoding: a beam, or a group's heads folded): their
     * weights go back into sc and the weighted values are summed for all rows at once. */
    int uniform = !h->bmask && !h->bias && !h->ew && !h->mask_mod && h->drop <= 0.0f;
    for (int r = 1; r < nr; r++) uniform &= js[r] == js[0] && je[r] == je[0];
    /* RK keys at a time: every row's scores; then per row one maximum, one rescale, and the
     * weighted values of the keys it sees. */
    for (int jb = ju0; jb < ju1; jb += RK) {
        int nb = imin(RK, ju1 - jb);
        chunk_scores(h->k + (int64_t)jb * h->k_rs, h->k_rs, nb, d, q2, dp, nr, sc);
        for (int r = 0; r < nr; r++) {
            int i = ib + r, a = imax(js[r], jb) - jb, b = imin(je[r], jb + nb) - jb; /* its keys [a, b) */
            if (a >= b) continue;
            vf s[RK / VL], mx = vset1(-INFINITY);
            UNROLL for (int c4 = 0; c4 < RK / VL; c4++) {
                int jc = jb + c4 * VL, k0 = imax(0, a - c4 * VL), nk = imin(VL, b - c4 * VL);
                s[c4] = nk > k0 ? vkeep(row_mask_from(h, i, jc, k0, nk, vload(sc + r * RK + c4 * VL), tmp), jc, jb + a, jb + b)
                                : vset1(-INFINITY);
                mx = vmax(mx, s[c4]);
            }
            float cm = vhmax(mx);
            if (cm == -INFINITY) { /* every key hidden; or only NaN scores, which vhmax drops */
                vf t = s[0];
                UNROLL for (int c4 = 1; c4 < RK / VL; c4++) t = vadd(t, s[c4]);
                if (!isnan(vhsum(t))) {
                    if (uniform) memset(sc + r * RK, 0, RK * sizeof *sc); /* no weight in this chunk */
                    continue;
                }
            }
            float *oar = oa + (size_t)r * dvp;
            if (cm > m[r]) {
                vf av = vset1(m[r] == -INFINITY ? 0.0f : exp2f((m[r] - cm) * LOG2E));
                lv[r] = vmul(lv[r], av);
                for (int cv = 0; cv < nvv; cv++) vstore(oar + cv * VL, vmul(vload(oar + cv * VL), av));
                m[r] = cm;
            }
            vf mv = vset1(m[r]);
            UNROLL for (int c4 = 0; c4 < RK / VL; c4++) {
                vf pv = vexp2(vmul(vsub(s[c4], mv), l2e));
                lv[r] = vadd(lv[r], pv);
                vstore((uniform ? sc + r * RK : pk) + c4 * VL, pv);
            }
            if (uniform) continue; /* the weighted values below, for all rows */
            if (h->drop > 0.0f)
                for (int k = a; k < b; k++) pk[k] *= attn__drop_factor(h, i, jb + k);
            const float *vr = h->v + (int64_t)(jb + a) * h->v_rs;
            for (int cv = 0; cv < nvv; cv++)
                vstore(oar + cv * VL, row_pv(vload(oar + cv * VL), pk + a, vr + cv * VL, h->v_rs, b - a, cv == nvv - 1 ? vtail : VL));
        }
        int a = imax(js[0], jb) - jb, b = imin(je[0], jb + nb) - jb; /* every row's keys, when uniform */
        if (uniform && a < b) {
            for (int r = 0; r < nr; r++)
                if (a > 0) memmove(sc + r * RK, sc + r * RK + a, (size_t)(b - a) * sizeof *sc);
            rows_pv(oa, dvp, nr, sc, h->v + (int64_t)(jb + a) * h->v_rs, h->v_rs, b - a, dv);
        }
    }
    for (int r = 0; r < nr; r++) {
        int i = ib + r;
        float l = vhsum(lv[r]), *oi = o + (int64_t)i * o_rs, *oar = oa + (size_t)r * dvp;
        int some = l > 0.0f || isnan(l); /* a NaN or +inf score makes l NaN: NaN out */
        float li = some ? m[r] + logf(l) : INFINITY;
        if (some) {
            float inv = 1.0f / l;
            for (int c = 0; c < dv; c++) oi[c] = oar[c] * inv;
            lse[i] = li;
        } else {
            memset(oi, 0, (size_t)dv * sizeof *oi);
            lse[i] = -INFINITY;
        }
        if (p) {
            /* The weights: the same scores again, normalised with the final lse. */
            const float *qr = q2 + (size_t)r * dp;
            float *pr = p + (int64_t)i * p_rs;
            memset(pr + j0, 0, (size_t)(j1 - j0) * sizeof *pr);
            for (int jc = js[r]; some && jc < je[r]; jc += VL) {
                int nk = imin(VL, je[r] - jc);
                vf sc = row_mask(h, i, jc, nk, row_scores(qr, h->k + (int64_t)jc * h->k_rs, h->k_rs, nk, d), tmp);
                vstoren(pr + jc, vexp2(vmul(vsub(sc, vset1(li)), l2e)), nk);
            }
        }
    }
}
