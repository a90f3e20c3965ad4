/* attn/params.h: named parameters for models that train: a store with PyTorch-style names
 * ("encoder.gru.weight_ih_l0") carved out of one allocation for the data and one for the
 * gradients (so optimisers and clipping run over flat arrays), PyTorch's initialisers, and
 * safetensors save/load by name with shape checks. Below the autograd tape (attn_param_var in
 * attn/autograd.h makes a parameter a leaf of a graph) and the optimisers (attn/train.h).
 */
#ifndef ATTN_PARAMS_H
#define ATTN_PARAMS_H

#include <stdint.h>

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

#define ATTN_PARAM_MAX_DIMS 4

/* ---- Initialisers ------------------------------------------------------------------------ */

typedef enum {
    ATTN_INIT_ZEROS = 0,
    ATTN_INIT_CONSTANT,       /* a */
    ATTN_INIT_UNIFORM,        /* uniform(a, b) */
    ATTN_INIT_NORMAL,         /* normal(mean a, std b) */
    ATTN_INIT_XAVIER_UNIFORM, /* uniform(-k, k), k = a * sqrt(6 / (fan_in + fan_out)), a = gain */
    ATTN_INIT_XAVIER_NORMAL   /* normal(0, a * sqrt(2 / (fan_in + fan_out))) */
} attn_init_kind;

/* fan_in = shape[1] * prod(shape[2:]), fan_out = shape[0] * prod(shape[2:]) (PyTorch's rule;
 * Xavier needs 2 or more dimensions). */
typedef struct {
    attn_init_kind kind;
    float a, b;
} attn_init;

static inline attn_init attn_init_zeros(void) { attn_init i = {ATTN_INIT_ZEROS, 0.0f, 0.0f}; return i; }
static inline attn_init attn_init_constant(float c) { attn_init i = {ATTN_INIT_CONSTANT, c, 0.0f}; return i; }
static inline attn_init attn_init_uniform(float lo, float hi) { attn_init i = {ATTN_INIT_UNIFORM, lo, hi}; return i; }
static inline attn_init attn_init_normal(float mean, float std) { attn_init i = {ATTN_INIT_NORMAL, mean, std}; return i; }
static inline attn_init attn_init_xavier_uniform(float gain) { attn_init i = {ATTN_INIT_XAVIER_UNIFORM, gain, 0.0f}; return i; }
static inline attn_init attn_init_xavier_normal(float gain) { attn_init i = {ATTN_INIT_XAVIER_NORMAL, gain, 0.0f}; return i; }
/* PyTorch's defaults: nn.Linear weight and bias, and every nn.GRU / nn.LSTM / nn.RNN
 * parameter, are uniform(-1/sqrt(fan), 1/sqrt(fan)) with fan = in_features (Linear) or
 * hidden_size (recurrent); nn.Embedding is normal(0, 1); nn.LayerNorm is ones and zeros. */
attn_init attn_init_fan(int64_t fan);

/* ---- Parameter store ------------------------------------------------------------------- */

typedef struct {
    char *name;                      /* e.g. "encoder.gru.weight_ih_l0" */
    int ndim;                        /* 0..4 */
    int64_t shape[ATTN_PARAM_MAX_DIMS];
    int64_t numel;
    int64_t offset;                  /* in floats, into the store's allocations */
    float *data, *grad;              /* (shape); NULL until attn_params_alloc */
    attn_init init;
    int frozen;                      /* 1: no gradient, optimisers leave it alone */
    int no_decay;                    /* 1: weight decay skips it (e.g. biases, norms) */
    int optional;                    /* 1: attn_params_load keeps its values when the file lacks
                                        it (a parameter added after such files were saved) */
} attn_param;

typedef struct attn_params attn_params;

int attn_params_new(attn_params **out); /* an empty set in *out; ATTN_ENOMEM */
void attn_params_free(attn_params *ps); /* accepts NULL */

/* Declares a parameter; NULL (with ATTN_EINVAL) for a duplicate or empty name, a bad shape,
 * or after attn_params_alloc. The returned pointer stays valid until attn_params_free; its
 * data and grad are set by attn_params_alloc. */
attn_param *attn_params_add(attn_params *ps, const char *name, int ndim, const int64_t *shape, attn_init init);

/* One allocation for all data and one for all gradients (64-byte aligned), carved into the
 * parameters in declaration order; both zeroed. Idempotent. */
int attn_params_alloc(attn_params *ps);
/* Allocates if needed, then runs every parameter's initialiser. Each parameter draws from
 * its own generator, seeded from `seed` and its name, so adding a parameter does not change
 * the others' values. */
int attn_params_init(attn_params *ps, uint64_t seed);

int attn_params_count(const attn_params *ps);
attn_param *attn_params_at(const attn_params *ps, int i);          /* NULL if out of range */
attn_param *attn_params_find(const attn_params *ps, const char *name); /* NULL if absent */
int64_t attn_params_numel(const attn_params *ps);                  /* all parameters */
/* The whole allocations, attn_params_numel floats each (NULL before attn_params_alloc). */
float *attn_params_data(const attn_params *ps);
float *attn_params_grads(const attn_params *ps);

void attn_params_zero_grad(attn_params *ps);

/* Weights as safetensors (F32, under the parameters' names); metadata may be NULL or a list
 * of n_meta key/value pairs. Atomic. */
int attn_params_save(const attn_params *ps, const char *path, int n_meta, const char *const *meta_kv);
/* Loads every parameter by name with its shape checked (ATTN_ENOTFOUND for a missing one,
 * unless it is optional: it then keeps its values; ATTN_ESHAPE for a mis-shaped one). A tensor in the file that matches no parameter is an
 * error (ATTN_EINVAL) unless allow_extra. */
int attn_params_load(attn_params *ps, const char *path, int allow_extra);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
