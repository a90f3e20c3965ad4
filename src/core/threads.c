/* The thread pool: a fixed set of pthreads that take tasks of one parallel call from an atomic
 * counter. Which thread runs which task varies; since tasks write disjoint outputs, results do
 * not. The caller's thread is thread 0 and works too. An error message a task records (on any
 * thread) is carried back to the caller: the lowest failing task's, so that it too does not
 * depend on the threads. */
#include "core/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 256

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t g_call_lock = PTHREAD_MUTEX_INITIALIZER; /* one parallel call at a time */
static int g_threads;         /* configured count, 0 = not yet decided */
static int g_workers;         /* pthreads started (thread ids 1..g_workers) */
static unsigned long g_generation;
static int g_active;          /* workers taking part in the current call */
static int g_finished;        /* workers done with the current call */
static attn__task_fn g_fn;
static void *g_ctx;
static int g_ntasks;
static atomic_int g_next;
static _Thread_local int t_in_parallel;

/* The first error of one call: the lowest index of a task that called attn__error (ntasks if
 * none did) and its message. */
typedef struct {
    int task;
    char msg[ATTN__MSG_MAX];
} first_error;
static pthread_mutex_t g_err_lock = PTHREAD_MUTEX_INITIALIZER;
static first_error g_err; /* of the current parallel call (guarded by g_err_lock) */

static int default_threads(void) {
    const char *e = getenv("ATTN_THREADS");
    if (e && atoi(e) > 0) return atoi(e) > MAX_THREADS ? MAX_THREADS : atoi(e);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : (int)n);
}

void attn_set_threads(int n) {
    pthread_mutex_lock(&g_lock);
    g_threads = n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n);
    pthread_mutex_unlock(&g_lock);
}

int attn_get_threads(void) {
    pthread_mutex_lock(&g_lock);
    if (!g_threads) g_threads = default_threads();
    int n = g_threads;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int attn__max_threads(void) { return attn_get_threads(); }

/* Runs one task and, if it recorded an error, keeps its message in *e when it is the lowest
 * failing task so far. */
static void run_task(attn__task_fn fn, void *ctx, int task, int thread, first_error *e) {
    unsigned long before = attn__error_count();
    fn(ctx, task, thread);
    if (attn__error_count() == before) return;
    pthread_mutex_lock(&g_err_lock);
    if (task < e->task) {
        e->task = task;
        memcpy(e->msg, attn_last_error(), sizeof e->msg);
    }
    pthread_mutex_unlock(&g_err_lock);
}

static void run_tasks(int thread) {
    int t;
    while ((t = atomic_fetch_add(&g_next, 1)) < g_ntasks) run_task(g_fn, g_ctx, t, thread, &g_err);
}

/* Makes the first error of a call the caller's message (the message of a failing task that ran
 * on this thread may have been overwritten by a later one). */
static void report(const first_error *e, int ntasks) {
    if (e->task < ntasks) attn__error(ATTN_EINVAL, "%s", e->msg);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seen = 0;
    t_in_parallel = 1;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        while (g_generation == seen) pthread_cond_wait(&g_wake, &g_lock);
        seen = g_generation;
        if (id > g_active) continue; /* not taking part in this call */
        pthread_mutex_unlock(&g_lock);
        run_tasks(id);
        pthread_mutex_lock(&g_lock);
        if (++g_finished == g_active) pthread_cond_signal(&g_done);
    }
    return NULL;
}

void attn__parallel(int ntasks, attn__task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    int n = attn_get_threads();
    if (n > ntasks) n = ntasks;
    if (n <= 1 || t_in_parallel) {
        first_error e;
        e.task = ntasks;
        for (int t = 0; t < ntasks; t++) run_task(fn, ctx, t, 0, &e);
        report(&e, ntasks);
        return;
    }
    pthread_mutex_lock(&g_call_lock);
    pthread_mutex_lock(&g_lock);
    while (g_workers < n - 1) {
        pthread_t th;
        if (pthread_create(&th, NULL, worker, (void *)(intptr_t)(g_workers + 1)) != 0) break;
        pthread_detach(th);
        g_workers++;
    }
    int helpers = n - 1 < g_workers ? n - 1 : g_workers;
    g_fn = fn;
    g_ctx = ctx;
    g_ntasks = ntasks;
    g_err.task = ntasks;
    atomic_store(&g_next, 0);
    g_active = helpers;
    g_finished = 0;
    g_generation++;
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);

    t_in_parallel = 1;
    run_tasks(0);
    t_in_parallel = 0;

    pthread_mutex_lock(&g_lock);
    while (g_finished < g_active) pthread_cond_wait(&g_done, &g_lock);
    g_active = 0;
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_lock(&g_err_lock);
    report(&g_err, ntasks);
    pthread_mutex_unlock(&g_err_lock);
    pthread_mutex_unlock(&g_call_lock);
}
