/* attn/dist.h in a library built without MPI: one process, and every call that needs other
 * processes fails with a message that says why. No MPI symbol is referenced. */
#include "attn/dist.h"
#include "core/internal.h"

static int no_mpi(const char *what) {
    return attn__error(ATTN_EINVAL, "%s: attn was built without MPI (install OpenMPI's libopenmpi-dev and rebuild)", what);
}

int attn_dist_available(void) { return 0; }
int attn_dist_launched(void) { return 0; }
int attn_dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return no_mpi("attn_dist_init");
}
int attn_dist_rank(void) { return 0; }
int attn_dist_size(void) { return 1; }
void attn_dist_set_timeout(double seconds) { (void)seconds; }
double attn_dist_timeout(void) { return 0.0; }
void attn_dist_finalize(void) {}
int attn_dist_failed(void) { return 0; }
void attn_dist_abort(int code) { (void)code; }
int attn_dist_sum(float *x, int64_t n) {
    (void)x, (void)n;
    return no_mpi("attn_dist_sum");
}
int attn_dist_sum_f64(double *x, int n) {
    (void)x, (void)n;
    return no_mpi("attn_dist_sum_f64");
}
int attn_dist_trainer(attn_trainer_config *c) {
    (void)c;
    return no_mpi("attn_dist_trainer");
}
int attn_ring_forward(const attn_desc *a, attn_ring_layout layout, const float *Q, const float *K, const float *V, float *O,
                      float *lse) {
    (void)a, (void)layout, (void)Q, (void)K, (void)V, (void)O, (void)lse;
    return no_mpi("attn_ring_forward");
}
int attn_ring_backward(const attn_desc *a, attn_ring_layout layout, const float *Q, const float *K, const float *V,
                       const float *O, const float *lse, const float *dO, float *dQ, float *dK, float *dV) {
    (void)a, (void)layout, (void)Q, (void)K, (void)V, (void)O, (void)lse, (void)dO, (void)dQ, (void)dK, (void)dV;
    return no_mpi("attn_ring_backward");
}
int attn_dist_bcast(void *buf, int64_t bytes) {
    (void)buf, (void)bytes;
    return no_mpi("attn_dist_bcast");
}
int attn_ring_scatter(const float *full, float *local, int B, int heads, int64_t N, int d, attn_ring_layout layout) {
    (void)full, (void)local, (void)B, (void)heads, (void)N, (void)d, (void)layout;
    return no_mpi("attn_ring_scatter");
}
int attn_ring_gather(const float *local, float *full, int B, int heads, int64_t N, int d, attn_ring_layout layout) {
    (void)full, (void)local, (void)B, (void)heads, (void)N, (void)d, (void)layout;
    return no_mpi("attn_ring_gather");
}
