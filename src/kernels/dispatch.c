/* The dispatch table, the one place that decides which kernels run. For every instruction-set
 * level the CPU runs (core/cpu.c), a table is filled with the reference kernels first and then
 * overridden by each level up to that one (ref, then avx2, then avx512), BLIS style; the
 * fastest is used unless ATTN_ISA (or attn_set_isa) names another, for every operation family
 * at once. A new ISA adds a line to `levels` (its override table and its CPU test). */
#include "core/internal.h"
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const attn__kernels *ov;         /* the entries this level overrides */
    int (*runs)(const attn__cpu *c); /* does this CPU run it? */
} level;

static int runs_always(const attn__cpu *c) { return (void)c, 1; }

#if defined(ATTN_HAVE_X86)
static int runs_avx2(const attn__cpu *c) { return c->avx2 && c->fma; }
static int runs_avx512(const attn__cpu *c) {
    return c->avx512f && c->avx512dq && c->avx512bw && c->avx512vl && runs_avx2(c);
}
#endif

/* In order: each level inherits every entry of the ones before it and runs where they run. */
static const level levels[] = {
    {&attn__kernels_ref, runs_always},
#if defined(ATTN_HAVE_X86)
    {&attn__kernels_avx2, runs_avx2},
    {&attn__kernels_avx512, runs_avx512},
#endif
};
#define NLEVELS ((int)(sizeof levels / sizeof levels[0]))

static attn__kernels g_tables[NLEVELS];
static int g_ntables; /* the levels this CPU runs: tables [0, g_ntables) are filled */
static const attn__kernels *g_kern;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Copy into t every entry that o sets. */
static void override(attn__kernels *t, const attn__kernels *o) {
#define OV(f) if (o->f) t->f = o->f
    OV(name);
    OV(q_block);
    OV(k_block);
    OV(rows_max);
    OV(scratch_floats);
    OV(fwd);
    OV(bwd_dq);
    OV(bwd_dkv);
    OV(fwd_part);
    OV(bwd);
    OV(bwd_scratch_floats);
    OV(sgemm);
    OV(rowdot);
    OV(row_max);
    OV(sum_f64);
    OV(dot_f64);
    OV(exp_sum);
    OV(logsm_bwd_row);
    OV(ce_bwd_row);
    OV(tanh_fwd);
    OV(tanh_bwd);
    OV(sigmoid_fwd);
    OV(sigmoid_bwd);
    OV(relu_fwd);
    OV(bf16_widen);
    OV(relu_bwd);
    OV(gelu_fwd);
    OV(gelu_bwd);
    OV(sgd);
    OV(adam);
    OV(probs);
#undef OV
}

static const attn__kernels *named(const char *name) {
    for (int i = 0; i < g_ntables; i++)
        if (strcmp(g_tables[i].name, name) == 0) return &g_tables[i];
    return NULL;
}

static void init(void) {
    const attn__cpu *c = attn__cpu_features();
    attn__kernels t = {0};
    for (int i = 0; i < NLEVELS && levels[i].runs(c); i++) {
        override(&t, levels[i].ov);
        g_tables[g_ntables++] = t;
    }
    const char *env = getenv("ATTN_ISA");
    const attn__kernels *k = env && *env ? named(env) : NULL;
    g_kern = k ? k : &g_tables[g_ntables - 1];
}

const attn__kernels *attn__kern(void) {
    pthread_once(&g_once, init);
    return g_kern;
}

const attn__kernels *attn__kern_named(const char *name) {
    pthread_once(&g_once, init);
    return name ? named(name) : NULL;
}

const char *attn_get_isa(void) { return attn__kern()->name; }

int attn_set_isa(const char *name) {
    const attn__kernels *k = attn__kern_named(name);
    if (!k) return attn__error(ATTN_EINVAL, "instruction set '%s' is unknown or not supported by this CPU", name ? name : "(null)");
    g_kern = k;
    return ATTN_OK;
}

int attn__head_check(const attn__head *h) {
    if (h->dtype != ATTN__F32)
        return attn__error(ATTN_EINVAL, "attention kernels: element type %d has no kernels (only f32)", (int)h->dtype);
    if (h->Nq < 1 || h->Nk < 1 || h->d < 1 || h->dv < 1 || h->key_len < 0 || h->key_len > h->Nk)
        return attn__error(ATTN_EINVAL, "attention kernels: bad head (Nq %d, Nk %d, d %d, dv %d, key_len %d)", h->Nq,
                           h->Nk, h->d, h->dv, h->key_len);
    return ATTN_OK;
}
