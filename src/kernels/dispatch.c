/* The dispatch table: the reference kernels first, then the fastest table this CPU runs,
 * unless ATTN_ISA (or attn_set_isa) names another. */
#include "core/internal.h"
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

/* The fast tables (attn_avx2.c, attn_avx512.c: the kernels of attn_fast.h) are built on
 * x86-64; each checks the CPU before it lets itself be picked. */
#if defined(ATTN_HAVE_X86) && !defined(ATTN_HAVE_FAST_KERNELS)
#define ATTN_HAVE_FAST_KERNELS 1
#endif

static const attn__kernels *g_kern;

typedef struct {
    const char *name;
    const attn__kernels *(*get)(void); /* NULL when not built or not supported */
} isa_entry;

static const isa_entry *entries(int *n);

static const attn__kernels *get_ref(void) { return &attn__kernels_ref; }

#if defined(ATTN_HAVE_X86)
const attn__kernels *attn__kernels_avx2(void);   /* NULL if the CPU lacks AVX2/FMA */
const attn__kernels *attn__kernels_avx512(void); /* NULL if the CPU lacks AVX-512 */
#endif

static const isa_entry *entries(int *n) {
    static const isa_entry e[] = {
#if defined(ATTN_HAVE_X86) && defined(ATTN_HAVE_FAST_KERNELS)
        {"avx512", attn__kernels_avx512},
        {"avx2", attn__kernels_avx2},
#endif
        {"ref", get_ref},
    };
    *n = (int)(sizeof e / sizeof e[0]);
    return e;
}

static const attn__kernels *pick(const char *name) {
    int n;
    const isa_entry *e = entries(&n);
    for (int i = 0; i < n; i++) {
        if (name && strcmp(name, e[i].name) != 0) continue;
        const attn__kernels *k = e[i].get();
        if (k) return k;
        if (name) return NULL;
    }
    return name ? NULL : &attn__kernels_ref;
}

const attn__kernels *attn__kern(void) {
    if (!g_kern) {
        const char *env = getenv("ATTN_ISA");
        const attn__kernels *k = env && *env ? pick(env) : NULL;
        g_kern = k ? k : pick(NULL);
    }
    return g_kern;
}

const attn__kernels *attn__kern_named(const char *name) { return name ? pick(name) : NULL; }

const char *attn_get_isa(void) { return attn__kern()->name; }

int attn_set_isa(const char *name) {
    const attn__kernels *k = name ? pick(name) : NULL;
    if (!k) return attn__error(ATTN_EINVAL, "instruction set '%s' is unknown or not supported by this CPU", name ? name : "(null)");
    g_kern = k;
    return ATTN_OK;
}
