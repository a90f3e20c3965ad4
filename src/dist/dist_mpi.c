/* attn/dist.h over MPI: start and end, waits with a deadline, the sum over the ranks in a
 * fixed order, and the trainer's data-parallel hook. Ring attention is in ring.c. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

static int g_inited;        /* attn_dist_init called MPI_Init (or found it done) */
static double g_timeout = -1; /* seconds; < 0: not read from the environment yet */
static int g_failed;          /* a wait failed */

int attn_dist_available(void) { return 1; }

int attn_dist_launched(void) {
    /* OpenMPI's mpirun, PMIx launchers (srun, prterun), MPICH's hydra */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

int attn_dist_init(int *argc, char ***argv) {
    if (g_inited) return ATTN_OK;
    int done = 0;
    MPI_Initialized(&done);
    if (!done) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return attn__error(ATTN_EIO, "MPI_Init failed");
    }
    /* errors come back as codes (and become messages here) rather than ending the program */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    g_inited = 1;
    return ATTN_OK;
}

int attn_dist_rank(void) {
    int r = 0;
    if (g_inited) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int attn_dist_size(void) {
    int n = 1;
    if (g_inited) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

void attn_dist_set_timeout(double seconds) {
    if (seconds > 0) g_timeout = seconds;
}

double attn_dist_timeout(void) {
    if (g_timeout < 0) {
        const char *e = getenv("ATTN_DIST_TIMEOUT");
        double t = e ? strtod(e, NULL) : 0.0;
        g_timeout = t > 0 ? t : 300.0;
    }
    return g_timeout;
}

void attn_dist_finalize(void) {
    int done = 0;
    if (!g_inited) return;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
    g_inited = 0;
}

void attn_dist_abort(int code) {
    if (g_inited) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

int attn_dist_failed(void) { return g_failed; }

int attn__dist_count(int64_t n, const char *what) {
    if (n < 0 || n > INT_MAX) return attn__error(ATTN_EINVAL, "%s: %lld values are too many for one MPI message", what, (long long)n), -1;
    return (int)n;
}

int attn__dist_wait(int n, MPI_Request *req, const char *what) {
    double start = attn_time_now(), deadline = start + attn_dist_timeout();
    int yielding = 0;
    for (long spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            char msg[MPI_MAX_ERROR_STRING];
            int len = 0;
            MPI_Error_string(rc, msg, &len);
            g_failed = 1;
            return attn__error(ATTN_EIO, "rank %d of %d: %s: MPI failed: %s", attn_dist_rank(), attn_dist_size(), what, msg);
        }
        if (done) return ATTN_OK;
        if ((spins & 1023) == 0 && attn_time_now() > deadline)
            return g_failed = 1, attn__error(ATTN_EIO,
                               "rank %d of %d: %s: no answer from the other ranks for %g s: a rank died or hangs "
                               "(ATTN_DIST_TIMEOUT sets the limit)",
                               attn_dist_rank(), attn_dist_size(), what, attn_dist_timeout());
        /* poll as MPI_Wait does (a large message moves in fragments, each needing both ranks
         * to call MPI): spin for the first 10 ms, then give the core to others between polls,
         * as ranks may share cores (mpirun --oversubscribe) and a long wait is for a rank that
         * is still computing. No sleep: it would stall every fragment. */
        if (spins > 4096 && (spins & 63) == 0 && attn_time_now() > start + 0.01) yielding = 1;
        if (yielding) sched_yield();
    }
}

/* ---- The sum over the ranks, in rank order --------------------------------------------------- */

enum { BUCKET = 1 << 20, TAG_SCATTER = 101, TAG_GATHER = 102 };

/* One bucket of n values of `type` (float or double), as a reduce-scatter then an all-gather,
 * both in one fixed order: the bucket is cut into P slices; rank k receives slice k of every
 * other rank and adds the P of them in rank order (slice of rank 0 + rank 1 + rank 2 + ...:
 * the same rounding on every run, whatever the arrival order), then sends its summed slice to
 * all. Each rank sends and receives 2 (P-1)/P of the bucket, as a ring all-reduce does. */
static int sum_bucket(void *x, int n, MPI_Datatype type, size_t esize, void *tmp, MPI_Request *req) {
    int k = attn_dist_rank(), P = attn_dist_size(), nr = 0, st;
    int lo = (int)((int64_t)n * k / P), len = (int)((int64_t)n * (k + 1) / P) - lo, cap = n / P + 1;
    char *xb = x, *tb = tmp;
    for (int r = 0; r < P; r++) {
        if (r == k) continue;
        int rlo = (int)((int64_t)n * r / P), rlen = (int)((int64_t)n * (r + 1) / P) - rlo;
        MPI_Irecv(tb + (size_t)r * cap * esize, len, type, r, TAG_SCATTER, MPI_COMM_WORLD, &req[nr++]);
        MPI_Isend(xb + (size_t)rlo * esize, rlen, type, r, TAG_SCATTER, MPI_COMM_WORLD, &req[nr++]);
    }
    if ((st = attn__dist_wait(nr, req, "sum: exchanging slices"))) return st;
    memcpy(tb + (size_t)k * cap * esize, xb + (size_t)lo * esize, (size_t)len * esize); /* this rank's own, in its place */
    for (int r = 1; r < P; r++) {
        if (type == MPI_FLOAT) {
            float *a = (float *)tmp, *b = (float *)tmp + (size_t)r * cap;
            for (int i = 0; i < len; i++) a[i] += b[i];
        } else {
            double *a = (double *)tmp, *b = (double *)tmp + (size_t)r * cap;
            for (int i = 0; i < len; i++) a[i] += b[i];
        }
    }
    memcpy(xb + (size_t)lo * esize, tb, (size_t)len * esize);
    nr = 0;
    for (int r = 0; r < P; r++) {
        if (r == k) continue;
        int rlo = (int)((int64_t)n * r / P), rlen = (int)((int64_t)n * (r + 1) / P) - rlo;
        MPI_Irecv(xb + (size_t)rlo * esize, rlen, type, r, TAG_GATHER, MPI_COMM_WORLD, &req[nr++]);
        MPI_Isend(xb + (size_t)lo * esize, len, type, r, TAG_GATHER, MPI_COMM_WORLD, &req[nr++]);
    }
    return attn__dist_wait(nr, req, "sum: gathering the summed slices");
}

static int sum_any(void *x, int64_t n, MPI_Datatype type, size_t esize) {
    int P = attn_dist_size(), st = ATTN_OK;
    if (!x && n) return attn__error(ATTN_EINVAL, "attn_dist_sum: NULL array");
    if (P == 1 || n == 0) return ATTN_OK;
    int64_t b = n < BUCKET ? n : BUCKET;
    void *tmp = malloc((size_t)P * (size_t)(b / P + 1) * esize);
    MPI_Request *req = malloc(2 * (size_t)P * sizeof *req);
    if (!tmp || !req) st = attn__error(ATTN_ENOMEM, "attn_dist_sum: out of memory");
    for (int64_t i = 0; i < n && !st; i += b)
        st = sum_bucket((char *)x + (size_t)i * esize, (int)(n - i < b ? n - i : b), type, esize, tmp, req);
    free(tmp), free(req);
    return st;
}

int attn_dist_sum(float *x, int64_t n) { return sum_any(x, n, MPI_FLOAT, sizeof(float)); }
int attn_dist_sum_f64(double *x, int n) { return sum_any(x, n, MPI_DOUBLE, sizeof(double)); }

int attn_dist_bcast(void *buf, int64_t bytes) {
    if (attn_dist_size() == 1) return ATTN_OK;
    if (!buf && bytes) return attn__error(ATTN_EINVAL, "attn_dist_bcast: NULL buffer");
    if (attn__dist_count(bytes, "attn_dist_bcast") < 0) return ATTN_EINVAL;
    MPI_Request req;
    MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    return attn__dist_wait(1, &req, "broadcast from rank 0");
}

/* ---- Data-parallel training ------------------------------------------------------------------ */

static attn_train_dist g_dist;

int attn_dist_trainer(attn_trainer_config *c) {
    if (!c) return attn__error(ATTN_EINVAL, "attn_dist_trainer: NULL configuration");
    if (attn_dist_size() == 1) return ATTN_OK;
    g_dist.rank = attn_dist_rank(), g_dist.size = attn_dist_size();
    g_dist.sum = attn_dist_sum, g_dist.sum_f64 = attn_dist_sum_f64;
    c->dist = &g_dist;
    return ATTN_OK;
}
