/* The thread pool: a fixed set of pthreads that take tasks of one parallel call from an atomic
 * counter. Which thread runs which task varies; since tasks write disjoint outputs, results do
 * not. The caller's thread is thread 0 and works too. */
#include "core/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
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

static void run_tasks(int thread) {
    int t;
    while ((t = atomic_fetch_add(&g_next, 1)) < g_ntasks) g_fn(g_ctx, t, thread);
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
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
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
    pthread_mutex_unlock(&g_call_lock);
}
