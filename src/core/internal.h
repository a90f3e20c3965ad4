/* Internal helpers shared across the library (not API): error reporting, the thread pool,
 * CPU feature detection. Internal names use the attn__ prefix. */
#ifndef ATTN_INTERNAL_H
#define ATTN_INTERNAL_H

#include "attn/core.h"

/* Record a formatted message for attn_last_error() and return `status` (for `return`). The
 * arguments may include attn_last_error() itself. */
#define ATTN__MSG_MAX 512
int attn__error(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* How many messages attn__error has recorded on the calling thread: a change across a call
 * tells that the call failed (the thread pool uses it to carry a task's error back). */
unsigned long attn__error_count(void);

/* Run fn(ctx, task, thread) for task in [0, ntasks) on the library's threads; the calling
 * thread works too. `thread` is in [0, attn__max_threads()) and is unique among concurrently
 * running calls, so it can index per-thread scratch. Tasks must write disjoint outputs; the
 * result then does not depend on the thread count. Nested calls run serially. If tasks call
 * attn__error, on whichever thread, the message of the lowest such task index is the
 * caller's attn_last_error() when attn__parallel returns (and it is untouched otherwise). */
typedef void (*attn__task_fn)(void *ctx, int task, int thread);
void attn__parallel(int ntasks, attn__task_fn fn, void *ctx);

/* Copies of a string (with attn_malloc; NULL if out of memory): all of s, or its first n bytes. */
char *attn__strdup(const char *s);
char *attn__strndup(const char *s, size_t n);
int attn__max_threads(void); /* the current thread count (attn_get_threads) */

/* CPU features, detected once. */
typedef struct { int avx2, fma, avx512f, avx512bw, avx512dq, avx512vl, avx512bf16, amx; } attn__cpu;
const attn__cpu *attn__cpu_features(void);

/* Size arithmetic that cannot overflow silently: returns 0 and sets *out, or ATTN_EINVAL. */
int attn__mul_size(size_t a, size_t b, size_t *out);

#endif
