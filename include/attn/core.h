/* attn/core.h: status codes, error messages, allocation hook, threads, CPU paths, random
 * numbers. Every other public header includes this one.
 *
 * Conventions used by the whole API:
 *  - Public calls that can fail return an int status: ATTN_OK (0) or a negative ATTN_E* code.
 *    On failure a one-line message is left in a per-thread buffer: attn_last_error().
 *  - Arrays are plain float pointers in C order; every argument documents its shape,
 *    e.g. Q (B, H, Nq, d). Letters: B batch, H query heads, Hkv key/value heads, Nq query
 *    length, Nk key length, d feature size of queries and keys, dv of values, E embedding.
 *  - The library never prints and never exits; only the attn command does.
 */
#ifndef ATTN_CORE_H
#define ATTN_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Exports. The library is built with -fvisibility=hidden, so only what the public headers
 * declare is exported: every public header wraps its declarations in ATTN_API_BEGIN and
 * ATTN_API_END, and internal functions (attn__*, declared under src/) stay hidden. One pair per
 * header rather than a macro on each declaration, so that a new declaration cannot be
 * forgotten; tests/exports.sh checks the result with nm. */
#if defined(__GNUC__) && !defined(_WIN32)
#define ATTN_API_BEGIN _Pragma("GCC visibility push(default)")
#define ATTN_API_END _Pragma("GCC visibility pop")
#else
#define ATTN_API_BEGIN
#define ATTN_API_END
#endif

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

#define ATTN_VERSION_STRING "0.1.0"

enum {
    ATTN_OK = 0,
    ATTN_EINVAL = -1,  /* an argument is invalid: a NULL pointer, a size <= 0, an unknown kind */
    ATTN_ESHAPE = -2,  /* shapes do not fit together */
    ATTN_ENOMEM = -3,  /* an allocation failed */
    ATTN_EIO = -4,     /* a file could not be opened, read or written */
    ATTN_EFORMAT = -5, /* a file is malformed, truncated or of an unsupported kind */
    ATTN_EDTYPE = -6,  /* an array has a dtype this call does not accept */
    ATTN_ENOTFOUND = -7 /* a named tensor or key is missing */
};

/* The name of a status code ("invalid argument", ...). Never NULL. */
const char *attn_strerror(int status);

/* The message left by the last failing call on this thread ("" if none). */
const char *attn_last_error(void);

/* Allocation hook: all library memory goes through these, so out-of-memory paths can be
 * tested. Passing NULLs restores malloc/free. Not thread-safe: set it before other calls. */
typedef void *(*attn_malloc_fn)(size_t size, void *user);
typedef void (*attn_free_fn)(void *ptr, void *user);
void attn_set_allocator(attn_malloc_fn m, attn_free_fn f, void *user);
void *attn_malloc(size_t size);          /* NULL on failure (and sets the error message) */
void *attn_calloc(size_t n, size_t size); /* zeroed; NULL on failure or overflow */
void attn_free(void *ptr);               /* accepts NULL */

/* Threads used by the library's parallel work (default: the number of online CPUs, or the
 * ATTN_THREADS environment variable). Results are bitwise identical for any count. */
void attn_set_threads(int n);
int attn_get_threads(void);

/* The instruction-set path in use: "ref" (portable C), "avx2", "avx512". Chosen at first use
 * from CPU detection, overridden by the ATTN_ISA environment variable or attn_set_isa().
 * attn_set_isa returns ATTN_EINVAL for an unknown name or one this CPU cannot run. */
const char *attn_get_isa(void);
int attn_set_isa(const char *name);

/* Seeded, reproducible random numbers (xoshiro128+ style; the same on every platform). */
typedef struct { uint64_t s[2]; } attn_rng;
void attn_rng_seed(attn_rng *r, uint64_t seed);
uint32_t attn_rng_u32(attn_rng *r);
float attn_rng_uniform(attn_rng *r);  /* in [0, 1) */
float attn_rng_normal(attn_rng *r);   /* standard normal */
/* A seed for (seed, k), e.g. the data order of epoch k or a parameter's generator:
 * splitmix64 of both. */
uint64_t attn_seed_mix(uint64_t seed, uint64_t k);

/* A hook on every step of a decoder's search (greedy or beam, both translator families; used
 * by the translation memory of attn/knnmt.h). The decoder calls fn once per step, after it has
 * computed the model's log-probabilities of the next token and before the search reads them:
 *   rows (n): the indices of the rows still searching (sentences or beam hypotheses) in the
 *             step's arrays of R rows;
 *   state (R, dim): each row's final decoder state, the vector the output projection reads;
 *   logp (R, V): the model's log-probabilities, which fn may rewrite in place for the listed
 *             rows (e.g. mix in another distribution).
 * A non-zero return (a status, with its message set) stops decoding with that status. */
typedef struct {
    int (*fn)(void *ctx, int n, const int *rows, const float *state, int dim, float *logp, int V);
    void *ctx;
} attn_decode_hook;

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
