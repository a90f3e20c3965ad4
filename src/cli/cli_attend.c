/* attn attend: the attention function (include/attn/attention.h) on arrays read from .npy
 * files, forward and, given the output's gradient, backward.
 *
 * Shapes: Q (B, H, Nq, dq), K (B, Hkv, Nk, dk), V (B, Hkv, Nk, dv), each also accepted as
 * 2-D (N, d) meaning B = H = 1, or 3-D (B, N, d) meaning H = 1. The output O has the rank of Q;
 * the weights P are always written as (B, H, Nq, Nk); dQ, dK, dV have the shapes of Q, K, V.
 * Everything is loaded and checked first, then computed, then written, so a failure at any point
 * leaves no output file behind.
 *
 * Not here: gradients of the score parameters (general W, additive Wa/Ua/Va) are computed by
 * the library but not written out.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char HELP[] =
    "usage: attn attend Q.npy K.npy V.npy -o OUT.npy [options]\n"
    "\n"
    "Attention of the queries Q over the keys K and values V:\n"
    "  1. scores    S = similarity(Q, K)            (B, H, Nq, Nk)\n"
    "  2. weights   P = softmax(S + masks)          each row sums to 1\n"
    "  3. output    O = P V                         (B, H, Nq, dv)\n"
    "\n"
    "arrays (.npy, float32; float64 is converted):\n"
    "  Q  (B, H, Nq, dq)   or (B, Nq, dq) meaning H = 1, or (Nq, dq) meaning B = H = 1\n"
    "  K  (B, Hkv, Nk, dk) likewise; H must be a multiple of Hkv (grouped heads: query head h\n"
    "                      uses key/value head h / (H / Hkv))\n"
    "  V  (B, Hkv, Nk, dv) likewise\n"
    "  The output has the rank of Q.\n"
    "\n"
    "similarity (step 1):\n"
    "  --score KIND        dot       q . k\n"
    "                      scaled    q . k / sqrt(dq)                         (default)\n"
    "                      cosine    q . k / (|q| |k|)\n"
    "                      general   q^T W k             (Luong; needs --params with W (dq, dk))\n"
    "                      additive  va . tanh(Wa q + Ua k) (Bahdanau; needs --params with\n"
    "                                Wa.weight (A, dq), Ua.weight (A, dk), Va.weight (1, A) and\n"
    "                                optionally Wa.bias (A), Ua.bias (A), Va.bias (1))\n"
    "  --scale S           the factor on the scores: replaces scaled's 1/sqrt(dq), multiplies\n"
    "                      the others (default 1); not for additive\n"
    "  --params P.safetensors   the learned parameters of general or additive\n"
    "\n"
    "masks (step 2; a key is seen only when every mask allows it):\n"
    "  --causal            query i sees keys j <= i\n"
    "  --window W          query i sees only the W keys i-W < j <= i (implies --causal)\n"
    "  --mask M.npy        bool: True = may attend; float: added to the scores (-inf hides);\n"
    "                      broadcast to (B, H, Nq, Nk) by numpy's rules\n"
    "  --key-lengths L.npy (B) int32 or int64: batch b sees keys j < L[b]\n"
    "  --causal-align A    top-left (default: j <= i) or bottom-right (j <= i + Nk - Nq: the\n"
    "                      last query sees every key, as chunked prefill against a KV cache)\n"
    "  --prefix P          prefix-LM (with --causal): keys j < P are seen by every query\n"
    "  --doc-lens L.npy    document packing: (n) or (B, n) int32 or int64 lengths summing to\n"
    "                      N (Nq == Nk): a query sees only its own document (causal inside it\n"
    "                      with --causal); no work is spent between documents\n"
    "  A query that sees no key gets zero weights and a zero output. NaN and infinity\n"
    "  propagate as in PyTorch (a row that sees a NaN key is NaN); an output holding NaN or\n"
    "  infinite values is written with a warning on stderr.\n"
    "\n"
    "score modifiers (in this order; see attn/attention.h, attn_mods):\n"
    "  --alibi             ALiBi: add slope_h (j - i), the paper's slopes for H heads\n"
    "  --alibi-slopes S.npy  ALiBi with these slopes (H) instead\n"
    "  --softcap C         soft-capping: s -> C tanh(s / C) (Gemma 2), C > 0\n"
    "  --sinks S.npy       attention sinks: one logit per head (H) added to the softmax's\n"
    "                      denominator only (the weights of a row then sum to less than 1)\n"
    "  --dropout P --seed S  dropout on the weights, P in [0, 1), the mask a hash of\n"
    "                      (S, b, h, i, j): the same for any thread count (--weights-out writes\n"
    "                      the weights before dropout)\n"
    "\n"
    "outputs:\n"
    "  -o, --out OUT.npy   the output O\n"
    "  --weights-out W.npy the attention weights P (B, H, Nq, Nk)\n"
    "  --dout DO.npy       backward: the gradient of a loss with respect to O (shape of O),\n"
    "  --dq DQ.npy         and where to write the gradients with respect to Q, K and V\n"
    "  --dk DK.npy         (shapes of Q, K, V; any subset)\n"
    "  --dv DV.npy\n"
    "\n"
    "several processes (mpirun -np P attn attend ... --ring):\n"
    "  --ring              ring attention (sequence-parallel): the sequence split over the P\n"
    "                      ranks, keys and values passed around the ring; rank 0 reads and\n"
    "                      writes the files, the results are those of one process (within\n"
    "                      float rounding). Self-attention only: Nq = Nk, a multiple of P (2P\n"
    "                      for zig-zag); dot, scaled or cosine scores; --causal or no mask\n"
    "  --ring-layout L     contiguous (rank r holds rows r N/P ..) or zigzag (2 chunks per rank,\n"
    "                      r and 2P-1-r: equal work under --causal); default zigzag with\n"
    "                      --causal, else contiguous\n"
    "\n"
    "other:\n"
    "  --compute T         f32 (default) or bf16: the arrays (float32) are rounded to bfloat16\n"
    "                      once, multiplied in bf16 with sums, softmax and log-sum-exp in fp32\n"
    "                      (AMX, AVX512-BF16 or fp32 kernels, see ATTN_BF16_ISA); dot and\n"
    "                      scaled scores, the masks above but no modifiers, --weights-out or\n"
    "                      --ring\n"
    "  --threads N         threads to use (default: all cores; results do not depend on it)\n"
    "  -h, --help          this help\n"
    "\n"
    "example:\n"
    "  attn attend q.npy k.npy v.npy -o o.npy --causal --weights-out p.npy\n"
    "  attn attend q.npy k.npy v.npy -o o.npy --causal --compute bf16\n";

typedef struct {
    const char *q, *k, *v;
    const char *out, *weights_out, *dout, *dq, *dk, *dv;
    const char *score, *params, *mask, *key_lengths;
    const char *doc_lens, *align, *sinks, *alibi_slopes, *compute;
    float scale, softcap, dropout;
    int has_scale, causal, window, threads, prefix, alibi, seed, has_softcap, has_dropout;
    int ring, ring_layout; /* ring_layout -1: the default */
} attend_opts;

/* The (B, H, N, d) view of a 2-, 3- or 4-D array. */
static void as4(const attn_array *a, int64_t s[4]) {
    s[0] = a->ndim >= 3 ? a->shape[0] : 1;
    s[1] = a->ndim == 4 ? a->shape[1] : 1;
    s[2] = a->shape[a->ndim - 2];
    s[3] = a->shape[a->ndim - 1];
}

/* Reads the additive score's parameters (Bahdanau: Wa, Ua, Va as nn.Linear layers). */
static int load_additive(const char *cmd, const char *path, attn_st *st, int dq, int dk, attn_array arr[6],
                         attn_score_params *p) {
    static const char *const names[6] = {"Wa.weight", "Ua.weight", "Va.weight", "Wa.bias", "Ua.bias", "Va.bias"};
    char sh[CLI_SHAPE_BUF];
    for (int i = 0; i < 6; i++) {
        if (i >= 3 && attn_st_find(st, names[i]) < 0) continue; /* biases are optional */
        int rc = attn_st_get_f32(st, names[i], &arr[i]);
        if (rc) return cli_fail_lib(cmd, rc, path);
    }
    if (arr[0].ndim != 2 || arr[0].shape[1] != dq || arr[0].shape[0] < 1 || arr[0].shape[0] > INT32_MAX)
        return cli_fail(cmd, "%s: tensor 'Wa.weight' has shape %s, expected (A, %d) for queries of size %d", path,
                        cli_shape_str(sh, arr[0].ndim, arr[0].shape), dq, dq);
    int64_t A = arr[0].shape[0];
    const int64_t want[6][2] = {{A, dq}, {A, dk}, {1, A}, {A, 0}, {A, 0}, {1, 0}};
    const int want_ndim[6] = {2, 2, 2, 1, 1, 1};
    for (int i = 1; i < 6; i++) {
        if (!arr[i].data) continue;
        int ok = arr[i].ndim == want_ndim[i];
        for (int d = 0; ok && d < want_ndim[i]; d++) ok = arr[i].shape[d] == want[i][d];
        if (i == 2 && arr[i].ndim == 1 && arr[i].shape[0] == A) ok = 1; /* Va as a vector (A) */
        if (!ok)
            return cli_fail(cmd, "%s: tensor '%s' has shape %s, expected %s", path, names[i],
                            cli_shape_str(sh, arr[i].ndim, arr[i].shape),
                            cli_shape_str(sh + CLI_SHAPE_BUF / 2, want_ndim[i], want[i]));
    }
    p->A = (int)A;
    p->Wa = arr[0].data, p->Ua = arr[1].data, p->va = arr[2].data;
    p->ba = arr[3].data, p->bu = arr[4].data, p->bv = arr[5].data;
    return CLI_OK;
}

static int load_general(const char *cmd, const char *path, attn_st *st, int dq, int dk, attn_array *w,
                        attn_score_params *p) {
    char sh[CLI_SHAPE_BUF];
    int rc = attn_st_get_f32(st, "W", w);
    if (rc) return cli_fail_lib(cmd, rc, path);
    if (w->ndim != 2 || w->shape[0] != dq || w->shape[1] != dk)
        return cli_fail(cmd, "%s: tensor 'W' has shape %s, expected (%d, %d) = (dq, dk)", path,
                        cli_shape_str(sh, w->ndim, w->shape), dq, dk);
    p->W = w->data;
    return CLI_OK;
}

/* --mask: bool (may attend) or float (additive bias), broadcast to (B, H, Nq, Nk). */
static int load_mask(const char *cmd, const char *path, const int64_t target[4], attn_array *m, attn_mask *mask) {
    char sh[CLI_SHAPE_BUF], tg[CLI_SHAPE_BUF];
    if (cli_load_npy(cmd, path, m)) return CLI_EDATA;
    int is_bool = m->dtype == ATTN_BOOL;
    if (!is_bool && m->dtype != ATTN_F32 && m->dtype != ATTN_F64 && m->dtype != ATTN_F16)
        return cli_fail(cmd, "%s: a mask must be bool (True = may attend) or float (added to the scores), not %s",
                        path, attn_dtype_name(m->dtype));
    int64_t one = 1, strides[4];
    const int64_t *shape = m->ndim ? m->shape : &one;
    int ndim = m->ndim ? m->ndim : 1;
    if (ndim > 4 || attn_broadcast_strides(shape, ndim, target, strides))
        return cli_fail(cmd, "%s: mask of shape %s does not broadcast to (B, H, Nq, Nk) = %s", path,
                        cli_shape_str(sh, m->ndim, m->shape), cli_shape_str(tg, 4, target));
    if (is_bool) {
        mask->bool_mask = m->data;
        memcpy(mask->bool_strides, strides, sizeof strides);
    } else {
        int rc = attn_array_to_f32(m);
        if (rc) return cli_fail_lib(cmd, rc, path);
        mask->bias = m->data;
        memcpy(mask->bias_strides, strides, sizeof strides);
    }
    return CLI_OK;
}

/* --key-lengths: (B) int32 or int64, each in [0, Nk]; converted to int32 in place. */
static int load_key_lengths(const char *cmd, const char *path, int64_t B, int64_t Nk, attn_array *l) {
    char sh[CLI_SHAPE_BUF];
    if (cli_load_npy(cmd, path, l)) return CLI_EDATA;
    if (l->dtype != ATTN_I32 && l->dtype != ATTN_I64)
        return cli_fail(cmd, "%s: key lengths must be int32 or int64, not %s", path, attn_dtype_name(l->dtype));
    if (l->ndim > 1 || attn_array_numel(l) != B)
        return cli_fail(cmd, "%s: key lengths have shape %s, expected (%lld,): one per batch", path,
                        cli_shape_str(sh, l->ndim, l->shape), (long long)B);
    int32_t *dst = l->data;
    for (int64_t b = 0; b < B; b++) {
        int64_t v = l->dtype == ATTN_I64 ? ((const int64_t *)l->data)[b] : ((const int32_t *)l->data)[b];
        if (v < 0 || v > Nk)
            return cli_fail(cmd, "%s: key length %lld of batch %lld is outside [0, %lld]", path, (long long)v,
                            (long long)b, (long long)Nk);
        dst[b] = (int32_t)v; /* in place: element b of int32 never overtakes element b of int64 */
    }
    l->dtype = ATTN_I32;
    return CLI_OK;
}

/* A float array of H values (--sinks, --alibi-slopes). */
static int load_per_head(const char *cmd, const char *path, const char *what, int H, attn_array *a) {
    char sh[CLI_SHAPE_BUF];
    if (cli_load_float(cmd, path, what, 1, 1, a)) return CLI_EDATA;
    if (a->shape[0] != H)
        return cli_fail(cmd, "%s: %s have shape %s, expected (%d,): one per query head", path, what,
                        cli_shape_str(sh, a->ndim, a->shape), H);
    return CLI_OK;
}

/* --doc-lens: (n) for every batch row or (B, n), int32 or int64, >= 0, each row summing to N;
 * into offsets (B, n + 1). */
static int load_doc_lens(const char *cmd, const char *path, const attn_desc *d, attn_array *l, int32_t **offsets, int *n) {
    char sh[CLI_SHAPE_BUF];
    if (cli_load_npy(cmd, path, l)) return CLI_EDATA;
    if (l->dtype != ATTN_I32 && l->dtype != ATTN_I64)
        return cli_fail(cmd, "%s: document lengths must be int32 or int64, not %s", path, attn_dtype_name(l->dtype));
    if (l->ndim < 1 || l->ndim > 2 || (l->ndim == 2 && l->shape[0] != d->B) || l->shape[l->ndim - 1] < 1)
        return cli_fail(cmd, "%s: document lengths have shape %s, expected (n,) or (B, n) with B = %d", path,
                        cli_shape_str(sh, l->ndim, l->shape), d->B);
    if (d->Nq != d->Nk) return cli_fail(cmd, "--doc-lens needs as many queries as keys (Nq %d, Nk %d)", d->Nq, d->Nk);
    *n = (int)l->shape[l->ndim - 1];
    if (!(*offsets = attn_malloc((size_t)d->B * (*n + 1) * sizeof(int32_t)))) return cli_fail(cmd, "out of memory");
    for (int b = 0; b < d->B; b++) {
        int64_t at = 0;
        int32_t *o = *offsets + (size_t)b * (*n + 1);
        o[0] = 0;
        for (int k = 0; k < *n; k++) {
            size_t x = (size_t)(l->ndim == 2 ? b : 0) * *n + k;
            int64_t v = l->dtype == ATTN_I64 ? ((const int64_t *)l->data)[x] : ((const int32_t *)l->data)[x];
            if (v < 0 || v > d->Nk - at)
                return cli_fail(cmd, "%s: document length %lld (row %d, document %d) is negative or runs past N = %d",
                                path, (long long)v, b, k, d->Nk);
            at += v, o[k + 1] = (int32_t)at;
        }
        if (at != d->Nk)
            return cli_fail(cmd, "%s: the document lengths of row %d sum to %lld, not N = %d", path, b, (long long)at, d->Nk);
    }
    return CLI_OK;
}

/* The masks and modifiers of attn_mods, into d->mods when any is asked for. */
static int load_mods(const char *cmd, const attend_opts *o, attn_desc *d, attn_mods *m, attn_array arr[3],
                     int32_t **offsets, float **slopes) {
    if (!o->doc_lens && !o->align && !o->prefix && !o->sinks && !o->alibi && !o->alibi_slopes && !o->has_softcap &&
        !o->has_dropout)
        return CLI_OK;
    m->causal_align = o->align && strcmp(o->align, "bottom-right") == 0 ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    m->prefix = o->prefix, m->softcap = o->softcap, m->dropout = o->dropout, m->seed = (uint64_t)o->seed;
    if (o->prefix > d->Nk) return cli_fail(cmd, "--prefix %d is longer than the %d keys", o->prefix, d->Nk);
    if (o->doc_lens && load_doc_lens(cmd, o->doc_lens, d, &arr[0], offsets, &m->n_docs)) return CLI_EDATA;
    m->doc_offsets = *offsets;
    if (o->sinks && load_per_head(cmd, o->sinks, "sinks", d->H, &arr[1])) return CLI_EDATA;
    m->sinks = arr[1].data;
    if (o->alibi_slopes && load_per_head(cmd, o->alibi_slopes, "ALiBi slopes", d->H, &arr[2])) return CLI_EDATA;
    m->alibi_slopes = arr[2].data;
    if (o->alibi) {
        if (!(*slopes = attn_malloc((size_t)d->H * sizeof(float)))) return cli_fail(cmd, "out of memory");
        int rc = attn_alibi_slopes(d->H, *slopes);
        if (rc) return cli_fail_lib(cmd, rc, NULL);
        m->alibi_slopes = *slopes;
    }
    d->mods = m;
    return CLI_OK;
}

static int parse_args(int argc, char **argv, attend_opts *o) {
    cli_args p;
    cli_args_init(&p, "attend", argc, argv);
    memset(o, 0, sizeof *o);
    o->score = "scaled";
    o->ring_layout = -1;
    const char *layout = NULL;
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) cli_help(HELP);
            return p.status ? p.status : -1;
        } else if (cli_str(&p, "-o", &o->out) || cli_str(&p, "--out", &o->out)) {
        } else if (cli_str(&p, "--score", &o->score)) {
        } else if (cli_float(&p, "--scale", &o->scale)) {
            o->has_scale = 1;
        } else if (cli_str(&p, "--params", &o->params)) {
        } else if (cli_flag(&p, "--causal")) {
            o->causal = 1;
        } else if (cli_int(&p, "--window", 0, INT32_MAX, &o->window)) {
        } else if (cli_str(&p, "--mask", &o->mask)) {
        } else if (cli_str(&p, "--key-lengths", &o->key_lengths)) {
        } else if (cli_str(&p, "--doc-lens", &o->doc_lens)) {
        } else if (cli_str(&p, "--causal-align", &o->align)) {
        } else if (cli_int(&p, "--prefix", 1, INT32_MAX, &o->prefix)) {
        } else if (cli_str(&p, "--sinks", &o->sinks)) {
        } else if (cli_flag(&p, "--alibi")) {
            o->alibi = 1;
        } else if (cli_str(&p, "--alibi-slopes", &o->alibi_slopes)) {
        } else if (cli_float(&p, "--softcap", &o->softcap)) {
            o->has_softcap = 1;
        } else if (cli_float(&p, "--dropout", &o->dropout)) {
            o->has_dropout = 1;
        } else if (cli_int(&p, "--seed", 0, INT32_MAX, &o->seed)) {
        } else if (cli_str(&p, "--weights-out", &o->weights_out)) {
        } else if (cli_str(&p, "--dout", &o->dout)) {
        } else if (cli_str(&p, "--dq", &o->dq)) {
        } else if (cli_str(&p, "--dk", &o->dk)) {
        } else if (cli_str(&p, "--dv", &o->dv)) {
        } else if (cli_str(&p, "--compute", &o->compute)) {
        } else if (cli_int(&p, "--threads", 1, 4096, &o->threads)) {
        } else if (cli_flag(&p, "--ring")) {
            o->ring = 1;
        } else if (cli_str(&p, "--ring-layout", &layout)) {
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    int rc = cli_positionals(&p, 3, 3, "the inputs Q.npy K.npy V.npy");
    if (rc) return rc;
    o->q = p.pos[0], o->k = p.pos[1], o->v = p.pos[2];

    const char *cmd = "attend";
    if (o->compute && strcmp(o->compute, "f32") && strcmp(o->compute, "bf16"))
        return cli_usage(cmd, "--compute takes f32 or bf16, not '%s'", o->compute);
    if (o->compute && !strcmp(o->compute, "bf16") && o->ring) return cli_usage(cmd, "--compute bf16 has no --ring");
    int score = attn_score_parse(o->score);
    if (score < 0)
        return cli_usage(cmd, "unknown score '%s' (dot, scaled, cosine, general or additive)", o->score);
    int learned = score == ATTN_SCORE_GENERAL || score == ATTN_SCORE_ADDITIVE;
    if (learned && !o->params)
        return cli_usage(cmd, "--score %s needs its parameters: --params P.safetensors", o->score);
    if (!learned && o->params)
        return cli_usage(cmd, "--params is used only by --score general or additive, not %s", o->score);
    if (o->has_scale && o->scale == 0.0f) return cli_usage(cmd, "--scale 0 would make every score 0");
    if (score == ATTN_SCORE_ADDITIVE && o->has_scale)
        return cli_usage(cmd, "--scale has no effect on the additive score");
    if (o->has_softcap && !(o->softcap > 0.0f)) return cli_usage(cmd, "--softcap must be > 0, not %g", (double)o->softcap);
    if (o->has_dropout && !(o->dropout >= 0.0f && o->dropout < 1.0f))
        return cli_usage(cmd, "--dropout must be in [0, 1), not %g", (double)o->dropout);
    if (o->align && strcmp(o->align, "top-left") != 0 && strcmp(o->align, "bottom-right") != 0)
        return cli_usage(cmd, "--causal-align must be top-left or bottom-right, not '%s'", o->align);
    if (o->prefix && !o->causal) return cli_usage(cmd, "--prefix needs --causal (bidirectional prefix, causal after)");
    if (o->alibi && o->alibi_slopes) return cli_usage(cmd, "give --alibi or --alibi-slopes, not both");
    if ((o->doc_lens || o->align || o->prefix || o->sinks || o->alibi || o->alibi_slopes || o->has_softcap ||
         o->has_dropout) && score == ATTN_SCORE_ADDITIVE)
        return cli_usage(cmd, "the masks and modifiers of --doc-lens ... --dropout need a dot-product score, not additive");
    if (!o->dout && (o->dq || o->dk || o->dv))
        return cli_usage(cmd, "--dq, --dk and --dv need the output's gradient: --dout DO.npy");
    if (o->dout && !o->dq && !o->dk && !o->dv)
        return cli_usage(cmd, "--dout needs at least one gradient to write: --dq, --dk or --dv");
    if (!o->out && !o->weights_out && !o->dout)
        return cli_usage(cmd, "nothing to write: give -o OUT.npy");
    if (layout && !o->ring) return cli_usage(cmd, "--ring-layout is for --ring");
    if (layout && strcmp(layout, "contiguous") && strcmp(layout, "zigzag"))
        return cli_usage(cmd, "unknown --ring-layout '%s' (contiguous or zigzag)", layout);
    if (o->ring) {
        const char *no = o->weights_out ? "--weights-out" : o->mask ? "--mask" : o->key_lengths ? "--key-lengths"
                         : o->window ? "--window" : learned ? "--score general/additive"
                         : o->doc_lens || o->align || o->prefix || o->sinks || o->alibi || o->alibi_slopes ||
                                   o->has_softcap || o->has_dropout ? "the masks and modifiers of --doc-lens ... --dropout"
                                                                    : NULL;
        if (no) return cli_usage(cmd, "--ring does not support %s (no (Nq, Nk) matrix, only the causal mask)", no);
        o->ring_layout = layout ? !strcmp(layout, "zigzag") : o->causal;
    }
    return CLI_OK;
}

int cli_attend(int argc, char **argv) {
    const char *cmd = "attend";
    attend_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (o.threads) attn_set_threads(o.threads);
    /* --ring: the ranks but 0 only compute (cli_attend_ring.c) */
    if (o.ring && attn_dist_rank() != 0) return cli_attend_ring_worker(cmd);
    int ring_sent = 0; /* rank 0 has sent the job (or the refusal) */
    {
        cli_output outs[5] = {{.path = o.out}, {.path = o.weights_out}, {.path = o.dq}, {.path = o.dk}, {.path = o.dv}};
        const char *ins[] = {o.q, o.k, o.v, o.dout, o.params, o.mask, o.key_lengths, o.doc_lens, o.sinks, o.alibi_slopes};
        if ((rc = cli_check_io(cmd, outs, 5, ins, 10))) {
            if (o.ring) cli_attend_ring_cancel(rc);
            return rc;
        }
    }

    attn_array Q = {0}, K = {0}, V = {0}, dO = {0}, M = {0}, L = {0}, Wg = {0}, add[6] = {{0}}, mods_arr[3] = {{0}};
    attn_mods mods = {0};
    int32_t *doc_offsets = NULL;
    float *slopes = NULL;
    attn_st *st = NULL;
    float *O = NULL, *P = NULL, *lse = NULL, *dQ = NULL, *dK = NULL, *dV = NULL;
    attn_score_params params = {0};
    char a[CLI_SHAPE_BUF], b[CLI_SHAPE_BUF];
    rc = CLI_EDATA;

    if (cli_load_float(cmd, o.q, "queries Q", 2, 4, &Q) || cli_load_float(cmd, o.k, "keys K", 2, 4, &K) ||
        cli_load_float(cmd, o.v, "values V", 2, 4, &V))
        goto done;
    int64_t q4[4], k4[4], v4[4];
    as4(&Q, q4), as4(&K, k4), as4(&V, v4);
    if (k4[0] != v4[0] || k4[1] != v4[1] || k4[2] != v4[2]) {
        cli_fail(cmd, "keys %s %s and values %s %s must agree in (B, Hkv, Nk)", o.k, cli_shape_str(a, K.ndim, K.shape),
                 o.v, cli_shape_str(b, V.ndim, V.shape));
        goto done;
    }
    if (q4[0] != k4[0]) {
        cli_fail(cmd, "queries %s %s and keys %s %s have different batch sizes (%lld and %lld)", o.q,
                 cli_shape_str(a, Q.ndim, Q.shape), o.k, cli_shape_str(b, K.ndim, K.shape), (long long)q4[0],
                 (long long)k4[0]);
        goto done;
    }
    if (q4[1] % k4[1] != 0) {
        cli_fail(cmd, "queries %s have %lld heads and keys %s %lld: query heads must be a multiple of key/value heads",
                 o.q, (long long)q4[1], o.k, (long long)k4[1]);
        goto done;
    }
    attn_desc d = {0};
    d.B = (int)q4[0], d.H = (int)q4[1], d.Hkv = (int)k4[1], d.Nq = (int)q4[2], d.Nk = (int)k4[2];
    d.dq = (int)q4[3], d.dk = (int)k4[3], d.dv = (int)v4[3];
    d.score = (attn_score)attn_score_parse(o.score);
    d.scale = o.scale;
    if (o.compute && !strcmp(o.compute, "bf16")) d.compute = ATTN_BF16;
    if (d.score <= ATTN_SCORE_COSINE && d.dq != d.dk) {
        cli_fail(cmd, "queries %s have size %d and keys %s size %d: the %s score needs equal sizes "
                 "(general and additive scores allow different ones)", o.q, d.dq, o.k, d.dk, o.score);
        goto done;
    }
    if (o.params) {
        int st_rc = attn_st_open(o.params, &st);
        if (st_rc) {
            cli_fail_lib(cmd, st_rc, o.params);
            goto done;
        }
        if (d.score == ATTN_SCORE_GENERAL ? load_general(cmd, o.params, st, d.dq, d.dk, &Wg, &params)
                                          : load_additive(cmd, o.params, st, d.dq, d.dk, add, &params))
            goto done;
        d.params = &params;
    }
    const int64_t target[4] = {d.B, d.H, d.Nq, d.Nk};
    d.mask.causal = o.causal;
    d.mask.window = o.window;
    if (o.mask && load_mask(cmd, o.mask, target, &M, &d.mask)) goto done;
    if (o.key_lengths) {
        if (load_key_lengths(cmd, o.key_lengths, d.B, d.Nk, &L)) goto done;
        d.mask.key_lengths = L.data;
    }
    if (load_mods(cmd, &o, &d, &mods, mods_arr, &doc_offsets, &slopes)) goto done;
    const int64_t o4[4] = {d.B, d.H, d.Nq, d.dv};
    if (o.dout) {
        if (cli_load_float(cmd, o.dout, "the output's gradient dO", 2, 4, &dO)) goto done;
        int64_t g4[4];
        as4(&dO, g4);
        if (memcmp(g4, o4, sizeof g4) != 0) {
            cli_fail(cmd, "%s: the output's gradient has shape %s, expected that of the output, (B, H, Nq, dv) = %s",
                     o.dout, cli_shape_str(a, dO.ndim, dO.shape), cli_shape_str(b, 4, o4));
            goto done;
        }
    }

    size_t no = (size_t)d.B * d.H * d.Nq * d.dv, np = (size_t)d.B * d.H * d.Nq * d.Nk;
    O = attn_malloc(no * sizeof(float));
    if (o.weights_out) P = attn_malloc(np * sizeof(float));
    if (o.dout) lse = attn_malloc((size_t)d.B * d.H * d.Nq * sizeof(float));
    if (o.dq) dQ = attn_malloc((size_t)attn_array_numel(&Q) * sizeof(float));
    if (o.dk) dK = attn_malloc((size_t)attn_array_numel(&K) * sizeof(float));
    if (o.dv) dV = attn_malloc((size_t)attn_array_numel(&V) * sizeof(float));
    if (!O || (o.weights_out && !P) || (o.dout && !lse) || (o.dq && !dQ) || (o.dk && !dK) || (o.dv && !dV)) {
        cli_fail(cmd, "out of memory");
        goto done;
    }
    if (o.ring) {
        ring_sent = 1;
        if ((rc = cli_attend_ring(cmd, &d, o.ring_layout, Q.data, K.data, V.data, o.dout ? dO.data : NULL, O, dQ, dK, dV))) goto done;
        rc = CLI_EDATA;
    }
    int st_rc = o.ring ? ATTN_OK : attn_forward(&d, Q.data, K.data, V.data, O, P, lse);
    if (!st_rc && o.dout && !o.ring) st_rc = attn_backward(&d, Q.data, K.data, V.data, O, lse, dO.data, dQ, dK, dV, NULL);
    if (st_rc) {
        cli_fail_lib(cmd, st_rc, NULL);
        goto done;
    }

    /* The output has Q's rank: (Nq, dv), (B, Nq, dv) or (B, H, Nq, dv). */
    cli_output outs[5] = {
        {o.out, ATTN_F32, Q.ndim, {0}, O},
        {o.weights_out, ATTN_F32, 4, {d.B, d.H, d.Nq, d.Nk}, P},
        {o.dq, ATTN_F32, Q.ndim, {0}, dQ},
        {o.dk, ATTN_F32, K.ndim, {0}, dK},
        {o.dv, ATTN_F32, V.ndim, {0}, dV},
    };
    if (Q.ndim == 3) outs[0].shape[0] = d.B, outs[0].shape[1] = d.Nq, outs[0].shape[2] = d.dv;
    else memcpy(outs[0].shape, o4 + (4 - Q.ndim), (size_t)Q.ndim * sizeof(int64_t));
    memcpy(outs[2].shape, Q.shape, sizeof Q.shape);
    memcpy(outs[3].shape, K.shape, sizeof K.shape);
    memcpy(outs[4].shape, V.shape, sizeof V.shape);
    rc = cli_save_all(cmd, outs, 5);

done:
    if (o.ring && !ring_sent) cli_attend_ring_cancel(rc);
    attn_array_free(&Q), attn_array_free(&K), attn_array_free(&V), attn_array_free(&dO);
    attn_array_free(&M), attn_array_free(&L), attn_array_free(&Wg);
    for (int i = 0; i < 3; i++) attn_array_free(&mods_arr[i]);
    attn_free(doc_offsets), attn_free(slopes);
    for (int i = 0; i < 6; i++) attn_array_free(&add[i]);
    attn_st_free(st);
    attn_free(O), attn_free(P), attn_free(lse), attn_free(dQ), attn_free(dK), attn_free(dV);
    return rc;
}
