/* The attention orchestrator's side of attn_mods (nn/attention_mods.c), for nn/attention.c. */
#ifndef ATTN_NN_ATTENTION_MODS_H
#define ATTN_NN_ATTENTION_MODS_H

#include "attn/attention.h"
#include "kernels/kernels.h"

/* What a plan keeps for its mods: the block mask and the gradients' partial sums. */
typedef struct attn__mods_state attn__mods_state;

/* The checks of a->mods (ATTN_OK when NULL). */
int attn__mods_check(const attn_desc *a);
/* What the backward needs beyond attn__mods_check: score_mod_tile's backward, and the scalar
 * score_mod_bwd for the gradients of its parameters (g may be NULL). */
int attn__mods_check_backward(const attn_desc *a, const attn_mods_grad *g);
/* The block mask of mask_mod for the kernels in use (*tiles NULL when none is needed), made
 * once and kept in *s (allocated on first use) until attn__mods_reset. */
int attn__mods_tiles(attn__mods_state **s, const attn_desc *a, const uint8_t **tiles);
void attn__mods_reset(attn__mods_state *s);
void attn__mods_free(attn__mods_state *s);
/* Fills head (b, h)'s fields of the mods (b and h always). */
void attn__mods_head(attn__head *hd, const attn_desc *a, int b, int h, const attn__mods_state *s, const uint8_t *tiles);
/* The sinks' rescaling of the forward's O, P (may be NULL) and lse, in place. */
void attn__mods_sinks(const attn_desc *a, float *O, float *P, float *lse);
/* The gradients of g (see attn_mods_grad) from the forward's lse (with sinks), delta = dO . O
 * and dO; head(hctx, b, h) gives the kernels' view of a head. */
typedef attn__head (*attn__head_fn)(const void *hctx, int b, int h);
int attn__mods_backward(attn__mods_state **s, const attn_desc *a, attn__head_fn head, const void *hctx,
                        const float *lse, const float *delta, const float *dO, attn_mods_grad *g);

#endif
