/* attn/vision.h: where attention began: image classifiers that look (Mnih, Heess, Graves and
 * Kavukcuoglu 2014, "Recurrent Models of Visual Attention"), the baselines of its tables, and
 * soft spatial attention, on the tasks of attn/vision_data.h. Four models:
 *
 *   fc    the image's S*S pixels -> 2 hidden layers of `hidden` units (ReLU) -> 10 logits;
 *   cnn   conv (c1 filters k x k, pad k/2) -> ReLU -> 2x2 max pool -> conv (c2 filters) ->
 *         ReLU -> 2x2 max pool -> linear -> 10 logits: its cost grows with S^2;
 *   soft  the cnn's two conv layers; their (S/4)^2 feature vectors f_i (c2 channels) are the
 *         keys and values of additive attention with a learned query (Xu et al. 2015's soft
 *         attention, for classification): k_i = tanh(U f_i + b_U), a = softmax_i(w . k_i),
 *         logits = fc(sum_i a_i f_i); trained by backpropagation alone;
 *   ram   the Recurrent Attention Model: for t = 1 .. n (glimpses):
 *           rho   = the glimpse sensor at l_{t-1}: `scales` patches of g x g around l, each
 *                   twice as large as the one before, downscaled to g x g (attn_ag_glimpse);
 *           g_t   = ReLU(W2 ReLU(W1 rho + b1) + b2 + L2 ReLU(L1 l + c1) + c2)   (glimpse net)
 *           h_t   = ReLU(Wh h_{t-1} + Wg g_t + b) (simple tasks) or an LSTM (cluttered ones)
 *           mu_t  = tanh(Wl h_t + bl), or with loc_hidden > 0 tanh(Wl ReLU(Wq h_t + bq) + bl);
 *                   l_t ~ N(mu_t, std^2) clipped to [-1, 1] (location net; training samples,
 *                   evaluation takes mu); l_0 = (0, 0) the centre
 *           b_t   = Wb h_t + bb (the baseline)
 *         logits = the action net (linear) on h_n. The loss is the hybrid one: cross-entropy
 *         of the logits + REINFORCE with reward R = 1 for a right class (the policy's term
 *         -mean_b sum_t (R - b_t) log N(l_t; mu_t, std^2), with (R - b_t) a constant) + the
 *         baselines' squared error (b_t - R)^2. The location and baseline nets read h_t as a
 *         constant (their gradient trains them alone, as most reimplementations do: the
 *         policy's noisy gradient does not disturb the classifier's features).
 *
 * Locations are (row, col) in [-1, 1]: (-1, -1) the top-left corner, (1, 1) the bottom-right.
 * Parameters have PyTorch-like names (fc1.weight, conv1.weight (c1, 1, k, k), glimpse.*,
 * core.*, locator.*, locator.hidden.*, baseline.*, action.*). Letters: B a batch, S the image side, n glimpses,
 * g the patch side, H the core size, N = (S/4)^2 feature locations.
 */
#ifndef ATTN_VISION_H
#define ATTN_VISION_H

#include <stdint.h>

#include "attn/autograd.h"
#include "attn/core.h"
#include "attn/params.h"
#include "attn/vision_data.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

#define ATTN_VISION_CLASSES 10
#define ATTN_VISION_MAX_GLIMPSES 16

typedef enum { ATTN_VISION_FC = 0, ATTN_VISION_CNN = 1, ATTN_VISION_SOFT = 2, ATTN_VISION_RAM = 3 } attn_vision_kind;
const char *attn_vision_kind_name(attn_vision_kind k); /* "fc", "cnn", "soft", "ram" */
int attn_vision_kind_parse(const char *name);          /* -1 if unknown */

typedef struct {
    attn_vision_kind kind;  /* ram */
    attn_vision_task task;  /* the images it reads (S): centred28 */
    int hidden;             /* fc: units per hidden layer (256); ram: the core's size H (256) */
    int c1, c2, kernel;     /* cnn, soft: filters of the two conv layers (16, 32), their side (5) */
    int attn_dim;           /* soft: A, the attention's hidden size (64) */
    int glimpses;           /* ram: n in [1, 16] (6) */
    int patch;              /* ram: g (8 for centred28, 12 for the larger images: the paper's) */
    int scales;             /* ram: k in [1, 4] (1 for centred28, 3 for 60x60, 4 for 100x100) */
    int glimpse_hidden;     /* ram: the glimpse net's patch and location layers (128) */
    int lstm;               /* ram: 1 an LSTM core, 0 the ReLU RNN (-1 at parse: the paper's
                               choice, an LSTM for the cluttered tasks) */
    int loc_hidden;         /* ram: the location net's hidden ReLU layer (0: none, one linear
                               layer, the paper's) */
    float std;              /* ram: the policy's standard deviation (0.1) */
    uint64_t data_seed;     /* the seed its task images came from (1) */
} attn_vision_config;

/* The defaults above for a kind and task. */
attn_vision_config attn_vision_config_default(attn_vision_kind kind, attn_vision_task task);
int attn_vision_config_check(const attn_vision_config *c); /* ATTN_EINVAL naming the bad field */
/* {"kind": "vision", "model": "ram", "task": "cluttered60", ...} (attn_free), and back (strict
 * about names and types; defaults for missing fields; checked). */
int attn_vision_config_to_json(const attn_vision_config *c, char **json);
int attn_vision_config_from_json(const char *json, attn_vision_config *c);

/* Multiply-adds of one image's forward pass (the glimpse sensor counted as one per source
 * pixel it reads), and the image side S the config reads. */
int64_t attn_vision_madds(const attn_vision_config *c);

typedef struct attn_vision attn_vision;

int attn_vision_new(const attn_vision_config *c, uint64_t seed, attn_vision **out);
void attn_vision_free(attn_vision *m); /* accepts NULL */
const attn_vision_config *attn_vision_get_config(const attn_vision *m);
/* Reads images of another task of the same size from now on (e.g. a model trained on
 * translated60 scored on cluttered60); ATTN_EINVAL, naming both sizes, for another size. */
int attn_vision_set_task(attn_vision *m, attn_vision_task task);
attn_params *attn_vision_params(attn_vision *m);
int64_t attn_vision_num_params(const attn_vision *m);

/* What a forward pass shows: ram's locations, the soft model's attention. */
typedef struct {
    float *locs;    /* ram: (B, n, 2) the location of each glimpse (row, col) in [-1, 1] */
    float *weights; /* soft: (B, N) the attention over the feature grid (row-major (S/4, S/4)) */
} attn_vision_trace;

/* The logits (B, 10) of images (B, 1, S, S) (an input node) on g. ram samples its locations
 * from the graph's generator when g is training, and takes the means otherwise. trace (may be
 * NULL, or hold NULL buffers) gets what it asks for. NULL on failure (sticky error in g). */
attn_var *attn_vision_forward(attn_vision *m, attn_graph *g, attn_var *images, attn_vision_trace *trace);
/* The training loss of images with labels (B) in [0, 10): cross-entropy, plus for ram the
 * REINFORCE and baseline terms (above). A scalar node. */
attn_var *attn_vision_loss(attn_vision *m, attn_graph *g, attn_var *images, const int32_t *labels);

/* REINFORCE for a Gaussian policy with fixed std (Williams 1992): the scalar
 *   -mean_b adv_b * sum_j log N(x_bj; mu_bj, std^2)
 * of mu (B, D) and the constants x (B, D) (the samples) and adv (B) (reward minus baseline):
 * its gradient with respect to mu, -adv (x - mu) / (B std^2), is minus the likelihood-ratio
 * estimate of the gradient of the expected reward. */
attn_var *attn_vision_reinforce(attn_graph *g, attn_var *mu, const float *x, const float *adv, float std);

/* Inference on a graph of its own for B images (B, S, S) floats: pred (B) the class, probs
 * (B, 10), trace; any may be NULL. */
int attn_vision_predict(attn_vision *m, int B, const float *images, int32_t *pred, float *probs, attn_vision_trace *trace);
/* The accuracy on images of `src` rendered for the model's task with seed `seed` (batches of
 * 128); confusion (10 x 10, true class by row) if not NULL gets the counts. n_max > 0 reads
 * only the first n_max images. */
int attn_vision_accuracy(attn_vision *m, const attn_images *src, uint64_t seed, int n_max, double *accuracy,
                         int64_t *confusion);

/* The "model" object of a checkpoint (with "command", may be NULL), and the model alone as a
 * checkpoint directory and back (a missing or corrupt file ATTN_EIO or ATTN_EFORMAT naming
 * it; another kind of checkpoint ATTN_EFORMAT). */
int attn_vision_model_json(const attn_vision *m, const char *command, char **json);
int attn_vision_save(const attn_vision *m, const char *dir, const char *command);
int attn_vision_load(const char *dir, attn_vision **out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
