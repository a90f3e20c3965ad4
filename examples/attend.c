/* The README's example: scaled dot-product attention with a causal mask, forward and backward. */
#include <stdio.h>
#include "attn/attn.h"

int main(void) {
    enum { N = 3, D = 4 };                      /* 3 tokens, 4 features, one head */
    float Q[N * D], K[N * D], V[N * D], O[N * D], P[N * N];
    for (int i = 0; i < N * D; i++) Q[i] = K[i] = V[i] = (float)((i * 7) % 5) - 2.0f;
    attn_desc a = {.B = 1, .H = 1, .Nq = N, .Nk = N, .dq = D, .score = ATTN_SCORE_SCALED};
    a.mask.causal = 1;                          /* token i sees tokens 0..i */
    if (attn_forward(&a, Q, K, V, O, P, NULL) != ATTN_OK) {
        fprintf(stderr, "attn: %s\n", attn_last_error());
        return 1;
    }
    for (int i = 0; i < N; i++)                 /* the attention distribution */
        printf("token %d attends: %.3f %.3f %.3f\n", i, P[i * N], P[i * N + 1], P[i * N + 2]);
    float dO[N * D] = {1}, dQ[N * D], dK[N * D], dV[N * D];
    attn_backward(&a, Q, K, V, O, NULL, dO, dQ, dK, dV, NULL);
    printf("dQ[0] = %.4f\n", dQ[0]);
    return 0;
}
