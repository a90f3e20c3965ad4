/* Concurrent use of the library from several caller threads: four threads call attn_forward
 * and attn_backward at once (each on its own arrays, large enough to use the thread pool,
 * which serialises parallel calls), and every result must equal, bit for bit, the same call
 * made alone beforehand. Run under ThreadSanitizer by CI (.ci/run) to find data races. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attention.h"
#include "attn/core.h"
#include "testutil.h"

enum { CALLERS = 4, ROUNDS = 5, B = 2, H = 2, N = 96, D = 32 };
#define NQ ((size_t)B * H * N * D)

typedef struct {
    float *Q, *K, *V, *dO;      /* inputs */
    float *O, *dQ, *dK, *dV;     /* this thread's results */
    float *O0, *dQ0, *dK0, *dV0; /* the results computed alone */
    int causal, same;
} job;

static int run(job *j, float *O, float *dQ, float *dK, float *dV) {
    attn_desc a = {.B = B, .H = H, .Nq = N, .Nk = N, .dq = D, .score = ATTN_SCORE_SCALED};
    a.mask.causal = j->causal;
    return attn_forward(&a, j->Q, j->K, j->V, O, NULL, NULL) ||
           attn_backward(&a, j->Q, j->K, j->V, O, NULL, j->dO, dQ, dK, dV, NULL);
}

static void *caller(void *arg) {
    job *j = arg;
    j->same = 1;
    for (int r = 0; r < ROUNDS; r++) {
        if (run(j, j->O, j->dQ, j->dK, j->dV)) j->same = 0;
        j->same &= !memcmp(j->O, j->O0, NQ * sizeof(float)) && !memcmp(j->dQ, j->dQ0, NQ * sizeof(float)) &&
                   !memcmp(j->dK, j->dK0, NQ * sizeof(float)) && !memcmp(j->dV, j->dV0, NQ * sizeof(float));
    }
    return NULL;
}

int main(void) {
    attn_set_threads(2);
    job jobs[CALLERS];
    float *mem = malloc(NQ * sizeof(float) * 12 * CALLERS);
    if (!mem) return 1;
    for (int t = 0; t < CALLERS; t++) {
        job *j = &jobs[t];
        float **f[] = {&j->Q, &j->K, &j->V, &j->dO, &j->O, &j->dQ, &j->dK, &j->dV, &j->O0, &j->dQ0, &j->dK0, &j->dV0};
        for (int k = 0; k < 12; k++) *f[k] = mem + ((size_t)t * 12 + k) * NQ;
        tu_randn(j->Q, NQ, 10 * t + 1), tu_randn(j->K, NQ, 10 * t + 2), tu_randn(j->V, NQ, 10 * t + 3), tu_randn(j->dO, NQ, 10 * t + 4);
        j->causal = t % 2;
        CHECK(run(j, j->O0, j->dQ0, j->dK0, j->dV0) == ATTN_OK, "caller %d alone: %s", t, attn_last_error());
    }
    pthread_t th[CALLERS];
    for (int t = 0; t < CALLERS; t++) CHECK(pthread_create(&th[t], NULL, caller, &jobs[t]) == 0, "pthread_create");
    for (int t = 0; t < CALLERS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < CALLERS; t++) CHECK(jobs[t].same, "caller %d: results differ from the same call made alone", t);
    free(mem);
    return tu_summary("test_concurrent");
}
