/* Multi-head attention weights in safetensors files, under PyTorch's state_dict names
 * (nn.MultiheadAttention): reading from an open file or a path, writing to a writer or a path.
 * The layer itself is nn/mha.c; this file is what joins it to the file format (io), so that nn
 * stays below io. See attn/mha.h for the names and checks.
 * Letters: E embed_dim, kdim/vdim key/value input features.
 */
#include <string.h>

#include "attn/mha.h"
#include "core/internal.h"
#include "nn/mha_internal.h"

/* The tensors of one config under PyTorch's names. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[2];
    float *data;
} named;

static int tensors_of(const attn_mha_weights *w, const attn_mha_config *cfg, named t[6]) {
    int n = 0;
    int64_t E = cfg->embed_dim;
    if (cfg->kdim == cfg->embed_dim && cfg->vdim == cfg->embed_dim) {
        t[n++] = (named){"in_proj_weight", 2, {3 * E, E}, w->q_w};
    } else {
        t[n++] = (named){"q_proj_weight", 2, {E, E}, w->q_w};
        t[n++] = (named){"k_proj_weight", 2, {E, cfg->kdim}, w->k_w};
        t[n++] = (named){"v_proj_weight", 2, {E, cfg->vdim}, w->v_w};
    }
    if (!cfg->no_bias) t[n++] = (named){"in_proj_bias", 1, {3 * E, 0}, w->q_b};
    t[n++] = (named){"out_proj.weight", 2, {E, E}, w->out_w};
    if (!cfg->no_bias) t[n++] = (named){"out_proj.bias", 1, {E, 0}, w->out_b};
    return n;
}

/* prefix + name in a new buffer (attn_free it). */
static char *full_name(const char *prefix, const char *name) {
    size_t lp = prefix ? strlen(prefix) : 0, ln = strlen(name);
    char *s = attn_malloc(lp + ln + 1);
    if (!s) return NULL;
    if (lp) memcpy(s, prefix, lp);
    memcpy(s + lp, name, ln + 1);
    return s;
}

static int has_tensor(const attn_st *st, const char *prefix, const char *name) {
    char *s = full_name(prefix, name);
    int found = s && attn_st_find(st, s) >= 0;
    attn_free(s);
    return found;
}

int attn_mha_weights_read(attn_mha_weights *w, const attn_mha_config *config, const attn_st *st, const char *prefix) {
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int s = attn__mha_check_weights(w, config ? &cfg : NULL);
    if (s) return s;
    if (!st) return attn__error(ATTN_EINVAL, "multi-head attention: safetensors file is NULL");
    const char *pre = prefix ? prefix : "";
    if (has_tensor(st, pre, "bias_k") || has_tensor(st, pre, "bias_v"))
        return attn__error(ATTN_EINVAL, "multi-head attention: '%sbias_k'/'%sbias_v' found: add_bias_kv is not supported",
                           pre, pre);
    if (cfg.no_bias && (has_tensor(st, pre, "in_proj_bias") || has_tensor(st, pre, "out_proj.bias")))
        return attn__error(ATTN_EINVAL, "multi-head attention: the file has '%sin_proj_bias'/'%sout_proj.bias' but the config says no_bias",
                           pre, pre);
    named t[6];
    int n = tensors_of(w, &cfg, t);
    for (int i = 0; i < n; i++) {
        char *name = full_name(pre, t[i].name);
        if (!name) return ATTN_ENOMEM;
        if (attn_st_find(st, name) < 0) {
            if (strcmp(t[i].name, "in_proj_weight") == 0 && has_tensor(st, pre, "q_proj_weight"))
                s = attn__error(ATTN_ENOTFOUND, "multi-head attention: tensor '%s' is missing; the file has '%sq_proj_weight' "
                                "instead: was it saved with kdim or vdim different from embed_dim (%d)?",
                                name, pre, cfg.embed_dim);
            else if (strcmp(t[i].name, "q_proj_weight") == 0 && has_tensor(st, pre, "in_proj_weight"))
                s = attn__error(ATTN_ENOTFOUND, "multi-head attention: tensor '%s' is missing; the file has '%sin_proj_weight' "
                                "instead: was it saved with kdim = vdim = embed_dim?", name, pre);
            else
                s = attn__error(ATTN_ENOTFOUND, "multi-head attention: tensor '%s' is missing (embed_dim %d, kdim %d, vdim %d%s)",
                                name, cfg.embed_dim, cfg.kdim, cfg.vdim, cfg.no_bias ? ", no bias" : "");
        } else {
            s = attn_st_read_f32(st, name, t[i].ndim, t[i].shape, t[i].data);
        }
        attn_free(name);
        if (s) return s;
    }
    return ATTN_OK;
}

int attn_mha_weights_write(const attn_mha_weights *w, const attn_mha_config *config, attn_st_writer *wr,
                           const char *prefix) {
    attn_mha_config cfg = config ? *config : (attn_mha_config){0};
    int s = attn__mha_check_weights(w, config ? &cfg : NULL);
    if (s) return s;
    if (!wr) return attn__error(ATTN_EINVAL, "multi-head attention: safetensors writer is NULL");
    named t[6];
    int n = tensors_of(w, &cfg, t);
    for (int i = 0; i < n && !s; i++) {
        char *name = full_name(prefix, t[i].name);
        if (!name) return ATTN_ENOMEM;
        s = attn_st_writer_add_f32(wr, name, t[i].ndim, t[i].shape, t[i].data);
        attn_free(name);
    }
    return s;
}

int attn_mha_load(attn_mha_weights *w, const attn_mha_config *cfg, const char *path, const char *prefix) {
    if (!w) return attn__error(ATTN_EINVAL, "multi-head attention: weights struct is NULL");
    memset(w, 0, sizeof *w);
    attn_st *st = NULL;
    int s = attn_mha_weights_init(w, cfg);
    if (!s) s = attn_st_open(path, &st);
    if (!s) s = attn_mha_weights_read(w, cfg, st, prefix);
    attn_st_free(st);
    if (s) attn_mha_weights_free(w);
    return s;
}

int attn_mha_save(const attn_mha_weights *w, const attn_mha_config *cfg, const char *path, const char *prefix) {
    attn_st_writer *wr = NULL;
    int s = attn_st_writer_new(&wr);
    if (s) return s;
    s = attn_mha_weights_write(w, cfg, wr, prefix);
    if (!s) s = attn_st_writer_save(wr, path);
    attn_st_writer_free(wr);
    return s;
}
