/* The allocation hook: every allocation of the library goes through attn_malloc. */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

static void *default_malloc(size_t n, void *u) { (void)u; return malloc(n); }
static void default_free(void *p, void *u) { (void)u; free(p); }

static attn_malloc_fn g_malloc = default_malloc;
static attn_free_fn g_free = default_free;
static void *g_user;

void attn_set_allocator(attn_malloc_fn m, attn_free_fn f, void *user) {
    g_malloc = m ? m : default_malloc;
    g_free = f ? f : default_free;
    g_user = user;
}

void *attn_malloc(size_t size) {
    void *p = g_malloc(size ? size : 1, g_user);
    if (!p) attn__error(ATTN_ENOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *attn_calloc(size_t n, size_t size) {
    size_t total;
    if (attn__mul_size(n, size, &total)) return NULL;
    void *p = attn_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void attn_free(void *ptr) {
    if (ptr) g_free(ptr, g_user);
}

char *attn__strndup(const char *s, size_t n) {
    char *d = attn_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *attn__strdup(const char *s) { return attn__strndup(s, strlen(s)); }
