/* attn mha: the multi-head attention layer (include/attn/mha.h) with PyTorch
 * nn.MultiheadAttention weights from a safetensors file, on arrays read from .npy files.
 *
 * Shapes: X (B, N, E) or (N, E) (unbatched, as PyTorch's 2-D input); for cross-attention
 * KEY (B, Nk, kdim) and VALUE (B, Nk, vdim) of the same rank. The output has the rank of X;
 * the weights are (B, Nq, Nk), or (B, H, Nq, Nk) with --per-head (without B when unbatched).
 * E comes from out_proj.weight, kdim and vdim from KEY and VALUE; a file without
 * in_proj_bias and out_proj.bias is PyTorch's bias=False.
 *
 * Not here: the backward (the library has it: attn_mha_backward), add_bias_kv, dropout.
 */
#include <stdio.h>
#include <string.h>

#include "attn/mha.h"
#include "cli.h"

static const char HELP[] =
    "usage: attn mha --params MHA.safetensors --heads H X.npy [KEY.npy VALUE.npy] -o OUT.npy [options]\n"
    "\n"
    "Multi-head attention as PyTorch's nn.MultiheadAttention(E, H, batch_first=True) computes it:\n"
    "  q = query Wq^T + bq,  k = key Wk^T + bk,  v = value Wv^T + bv   (projections)\n"
    "  head h: o_h = softmax(q_h k_h^T / sqrt(E/H) + masks) v_h        (H heads in parallel)\n"
    "  out = concat(o_1..o_H) Wout^T + bout\n"
    "With X alone it is self-attention (query = key = value = X): every position meets every\n"
    "other in one step. With KEY and VALUE it is cross-attention (queries from X).\n"
    "\n"
    "arrays (.npy, float32; float64 is converted):\n"
    "  X      (B, Nq, E) or (Nq, E) unbatched\n"
    "  KEY    (B, Nk, kdim),  VALUE (B, Nk, vdim)   (same rank as X)\n"
    "\n"
    "weights:\n"
    "  --params P.safetensors   a state_dict under PyTorch's names: in_proj_weight (3E, E)\n"
    "                 (or q_proj_weight, k_proj_weight, v_proj_weight when kdim or vdim != E),\n"
    "                 in_proj_bias (3E), out_proj.weight (E, E), out_proj.bias (E); without the\n"
    "                 biases the layer is bias=False\n"
    "  --prefix S     names start with S, e.g. 'encoder.layers.0.self_attn.'\n"
    "  --heads H      number of heads H; E must be a multiple of H\n"
    "\n"
    "masks (as PyTorch's):\n"
    "  --causal                   query i sees keys j <= i\n"
    "  --key-padding-mask M.npy   bool (B, Nk), True = the key is PADDING and is ignored\n"
    "  --attn-mask M.npy          bool (Nq, Nk) or (B*H, Nq, Nk) with True = NOT allowed, or\n"
    "                             float, added to the scores (-inf hides); also (H, Nq, Nk)\n"
    "  Note: True means the opposite in 'attn attend --mask' (True = may attend), as in\n"
    "  PyTorch's F.scaled_dot_product_attention. A query that sees no key gets zero attention\n"
    "  (PyTorch gives NaN). Otherwise NaN and infinity propagate as in PyTorch; an output\n"
    "  holding NaN or infinite values is written with a warning on stderr.\n"
    "\n"
    "outputs:\n"
    "  -o, --out OUT.npy     the output (B, Nq, E)\n"
    "  --weights-out W.npy   the attention weights, averaged over the heads (B, Nq, Nk)\n"
    "  --per-head            write them per head instead: (B, H, Nq, Nk)\n"
    "\n"
    "other:\n"
    "  --threads N    threads to use (default: all cores; results do not depend on it)\n"
    "  -h, --help     this help\n"
    "\n"
    "example (a layer saved from PyTorch with safetensors.torch.save_file(mha.state_dict(), ...)):\n"
    "  attn mha --params mha.safetensors --heads 4 x.npy -o y.npy --causal --weights-out w.npy\n";

typedef struct {
    const char *params, *prefix, *x, *key, *value, *out, *weights_out, *kpm, *attn_mask;
    int heads, causal, per_head, threads;
} mha_opts;

static int parse_args(int argc, char **argv, mha_opts *o) {
    const char *cmd = "mha";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    memset(o, 0, sizeof *o);
    o->prefix = "";
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) cli_help(HELP);
            return p.status ? p.status : -1;
        } else if (cli_str(&p, "-o", &o->out) || cli_str(&p, "--out", &o->out)) {
        } else if (cli_str(&p, "--params", &o->params)) {
        } else if (cli_str(&p, "--prefix", &o->prefix)) {
        } else if (cli_int(&p, "--heads", 1, INT32_MAX, &o->heads)) {
        } else if (cli_flag(&p, "--causal")) {
            o->causal = 1;
        } else if (cli_str(&p, "--key-padding-mask", &o->kpm)) {
        } else if (cli_str(&p, "--attn-mask", &o->attn_mask)) {
        } else if (cli_str(&p, "--weights-out", &o->weights_out)) {
        } else if (cli_flag(&p, "--per-head")) {
            o->per_head = 1;
        } else if (cli_int(&p, "--threads", 1, 4096, &o->threads)) {
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    int rc = cli_positionals(&p, 1, 3, "the input X.npy");
    if (rc) return rc;
    if (p.npos == 2) return cli_usage(cmd, "cross-attention needs both KEY.npy and VALUE.npy after X.npy");
    o->x = p.pos[0];
    if (p.npos == 3) o->key = p.pos[1], o->value = p.pos[2];
    if (!o->params) return cli_usage(cmd, "missing the weights: --params MHA.safetensors");
    if (!o->heads) return cli_usage(cmd, "missing the number of heads: --heads H");
    if (o->per_head && !o->weights_out) return cli_usage(cmd, "--per-head needs --weights-out W.npy");
    if (!o->out && !o->weights_out) return cli_usage(cmd, "nothing to write: give -o OUT.npy");
    cli_output outs[2] = {{.path = o->out}, {.path = o->weights_out}};
    const char *ins[] = {o->params, o->x, o->key, o->value, o->kpm, o->attn_mask};
    return cli_check_io(cmd, outs, 2, ins, 6);
}

/* A bool .npy, or with allow_float also a float one (converted to float32). */
static int load_mask(const char *cmd, const char *path, const char *what, int allow_float, attn_array *m) {
    if (cli_load_npy(cmd, path, m)) return CLI_EDATA;
    if (m->dtype == ATTN_BOOL) return CLI_OK;
    if (allow_float && (m->dtype == ATTN_F32 || m->dtype == ATTN_F64 || m->dtype == ATTN_F16)) {
        int rc = attn_array_to_f32(m);
        return rc ? cli_fail_lib(cmd, rc, path) : CLI_OK;
    }
    return cli_fail(cmd, "%s: %s must be %s, not %s", path, what,
                    allow_float ? "bool (True = NOT allowed) or float (added to the scores)" : "bool (True = padding)",
                    attn_dtype_name(m->dtype));
}

int cli_mha(int argc, char **argv) {
    const char *cmd = "mha";
    mha_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (o.threads) attn_set_threads(o.threads);

    attn_array X = {0}, Kx = {0}, Vx = {0}, KPM = {0}, AM = {0};
    attn_st *st = NULL;
    attn_mha_weights w = {0};
    attn_mha_cache cache = {0};
    float *out = NULL, *weights = NULL;
    char a[CLI_SHAPE_BUF], b[CLI_SHAPE_BUF];
    rc = CLI_EDATA;

    if (cli_load_float(cmd, o.x, "the input X", 2, 3, &X)) goto done;
    if (o.key && (cli_load_float(cmd, o.key, "the keys KEY", 2, 3, &Kx) ||
                  cli_load_float(cmd, o.value, "the values VALUE", 2, 3, &Vx)))
        goto done;
    const attn_array *K = o.key ? &Kx : &X, *V = o.key ? &Vx : &X;
    const char *kpath = o.key ? o.key : o.x, *vpath = o.key ? o.value : o.x;
    int batched = X.ndim == 3;
    if (K->ndim != X.ndim || V->ndim != X.ndim) {
        cli_fail(cmd, "X %s %s, KEY %s %s and VALUE %s %s must all be batched (3-D) or all unbatched (2-D)", o.x,
                 cli_shape_str(a, X.ndim, X.shape), kpath, cli_shape_str(b, K->ndim, K->shape), vpath,
                 cli_shape_str(b + CLI_SHAPE_BUF / 2, V->ndim, V->shape));
        goto done;
    }
    int64_t B = batched ? X.shape[0] : 1, Nq = X.shape[X.ndim - 2], E = X.shape[X.ndim - 1];
    int64_t Nk = K->shape[K->ndim - 2];
    if ((batched && (K->shape[0] != B || V->shape[0] != B)) || V->shape[V->ndim - 2] != Nk) {
        cli_fail(cmd, "X %s, KEY %s and VALUE %s must agree in the batch size, and KEY and VALUE in the length",
                 cli_shape_str(a, X.ndim, X.shape), cli_shape_str(b, K->ndim, K->shape),
                 cli_shape_str(b + CLI_SHAPE_BUF / 2, V->ndim, V->shape));
        goto done;
    }

    /* The layer: E from out_proj.weight, kdim and vdim from the inputs, biases if present. */
    int st_rc = attn_st_open(o.params, &st);
    if (st_rc) {
        cli_fail_lib(cmd, st_rc, o.params);
        goto done;
    }
    char name[512];
    snprintf(name, sizeof name, "%sout_proj.weight", o.prefix);
    int idx = attn_st_find(st, name);
    int64_t ws[ATTN_MAX_DIMS];
    if (idx < 0) {
        /* A layer inside a larger state_dict: suggest the prefix of the first one found. */
        const char *hint = NULL, *suffix = "out_proj.weight";
        for (int i = 0; i < attn_st_count(st) && !hint; i++) {
            const char *n = attn_st_name(st, i);
            size_t len = strlen(n), sl = strlen(suffix);
            if (len > sl && strcmp(n + len - sl, suffix) == 0) hint = n;
        }
        if (hint)
            cli_fail(cmd, "%s: no tensor '%s'; the file has '%s': try --prefix '%.*s'", o.params, name, hint,
                     (int)(strlen(hint) - strlen(suffix)), hint);
        else
            cli_fail(cmd, "%s: no tensor '%s': not an nn.MultiheadAttention state_dict", o.params, name);
        goto done;
    }
    int wn = attn_st_shape(st, idx, ws);
    if (wn != 2 || ws[0] != ws[1] || ws[0] != E) {
        cli_fail(cmd, "%s: '%s' has shape %s, but X %s has E = %lld features", o.params, name,
                 cli_shape_str(a, wn, ws), o.x, (long long)E);
        goto done;
    }
    attn_mha_config cfg = {0};
    cfg.embed_dim = (int)E;
    cfg.num_heads = o.heads;
    cfg.kdim = (int)K->shape[K->ndim - 1];
    cfg.vdim = (int)V->shape[V->ndim - 1];
    char bias_name[512];
    snprintf(bias_name, sizeof bias_name, "%sin_proj_bias", o.prefix);
    snprintf(name, sizeof name, "%sout_proj.bias", o.prefix);
    cfg.no_bias = attn_st_find(st, bias_name) < 0 && attn_st_find(st, name) < 0;
    if ((st_rc = attn_mha_config_check(&cfg))) {
        cli_fail(cmd, "--heads %d: %s", o.heads, attn_last_error());
        goto done;
    }
    if ((st_rc = attn_mha_weights_init(&w, &cfg)) || (st_rc = attn_mha_weights_read(&w, &cfg, st, o.prefix))) {
        cli_fail_lib(cmd, st_rc, o.params);
        goto done;
    }

    attn_mha_masks masks = {0};
    masks.is_causal = o.causal;
    if (o.kpm) {
        if (load_mask(cmd, o.kpm, "a key padding mask", 0, &KPM)) goto done;
        int64_t want[2] = {B, Nk};
        if (KPM.ndim != X.ndim - 1 || memcmp(KPM.shape, want + (batched ? 0 : 1), (size_t)KPM.ndim * 8) != 0) {
            cli_fail(cmd, "%s: the key padding mask has shape %s, expected %s", o.kpm,
                     cli_shape_str(a, KPM.ndim, KPM.shape), cli_shape_str(b, X.ndim - 1, want + (batched ? 0 : 1)));
            goto done;
        }
        masks.key_padding_mask = KPM.data;
    }
    if (o.attn_mask) {
        if (load_mask(cmd, o.attn_mask, "an attention mask", 1, &AM)) goto done;
        int ok = (AM.ndim == 2 || AM.ndim == 3) && AM.shape[AM.ndim - 2] == Nq && AM.shape[AM.ndim - 1] == Nk &&
                 (AM.ndim == 2 || AM.shape[0] == B * o.heads || AM.shape[0] == o.heads);
        if (!ok) {
            cli_fail(cmd, "%s: the attention mask has shape %s, expected (Nq, Nk) = (%lld, %lld), or (B*H, Nq, Nk) or "
                     "(H, Nq, Nk) with B*H = %lld, H = %d",
                     o.attn_mask, cli_shape_str(a, AM.ndim, AM.shape), (long long)Nq, (long long)Nk,
                     (long long)(B * o.heads), o.heads);
            goto done;
        }
        if (AM.dtype == ATTN_BOOL) masks.attn_mask_bool = AM.data;
        else masks.attn_mask_float = AM.data;
        masks.attn_mask_ndim = AM.ndim;
        memcpy(masks.attn_mask_shape, AM.shape, (size_t)AM.ndim * sizeof(int64_t));
    }

    if ((st_rc = attn_mha_cache_init(&cache, &cfg, (int)B, (int)Nq, (int)Nk))) {
        cli_fail_lib(cmd, st_rc, NULL);
        goto done;
    }
    int64_t H = o.heads, nw = o.per_head ? B * H * Nq * Nk : B * Nq * Nk;
    out = attn_malloc((size_t)(B * Nq * E) * sizeof(float));
    if (o.weights_out) weights = attn_malloc((size_t)nw * sizeof(float));
    if (!out || (o.weights_out && !weights)) {
        cli_fail(cmd, "out of memory");
        goto done;
    }
    st_rc = attn_mha_forward(&cfg, &w, &cache, X.data, K->data, V->data, &masks, out, weights, !o.per_head);
    if (st_rc) {
        cli_fail_lib(cmd, st_rc, NULL);
        goto done;
    }

    /* PyTorch's shapes: the output has X's rank; the weights drop B when unbatched. */
    cli_output outs[2] = {{o.out, ATTN_F32, X.ndim, {0}, out}, {o.weights_out, ATTN_F32, 0, {0}, weights}};
    memcpy(outs[0].shape, X.shape, sizeof X.shape);
    int64_t wshape[4] = {B, H, Nq, Nk}, *ws4 = wshape;
    int wnd = 4;
    if (!o.per_head) wshape[1] = wshape[0], ws4++, wnd--;
    if (!batched) ws4++, wnd--;
    outs[1].ndim = wnd;
    memcpy(outs[1].shape, ws4, (size_t)wnd * sizeof(int64_t));
    rc = cli_save_all(cmd, outs, 2);

done:
    attn_array_free(&X), attn_array_free(&Kx), attn_array_free(&Vx), attn_array_free(&KPM), attn_array_free(&AM);
    attn_st_free(st);
    attn_mha_weights_free(&w);
    attn_mha_cache_free(&cache);
    attn_free(out), attn_free(weights);
    return rc;
}
