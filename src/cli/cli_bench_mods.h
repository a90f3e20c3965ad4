/* attn bench attention --mods / --doc-lens (cli_bench_mods.c), called by cli_bench.c. */
#ifndef ATTN_CLI_BENCH_MODS_H
#define ATTN_CLI_BENCH_MODS_H

typedef struct {
    const int *ns; /* the lengths N (self-attention, Nq = Nk = N) */
    int nn, B, H, d, causal, backward, repeat;
    const char *mods;     /* "softcap,alibi,..." or NULL */
    const char *doc_lens; /* or NULL */
} bench_mods_opts;

int cli_bench_mods(const char *cmd, const bench_mods_opts *o);

#endif
