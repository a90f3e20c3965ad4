/* Decoding with the paged key/value cache against the dense one: a Transformer checkpoint
 * translates the first N source sentences of a test split (tab-separated: target, source)
 * with beam search, ROUNDS times alternating dense and paged, and reports per cache the median
 * time per sentence (attn_translator_translate: the decoding and the alignment's forward) and
 * the keys and values copied per decoder step to keep the beams' caches. Checks that both
 * give the same translations.
 * Compile: cc -O2 -Iinclude bench/kv_decode.c build/libattn.a -lm -lpthread -lz -o kv_decode
 * usage: kv_decode MODEL_DIR TEST_TSV [N=50 BEAM=5 ROUNDS=3] */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"

#include "bench_time.h"

/* The library's internal switch and counters (src/models/transformer_internal.h), reachable
 * when linking the static library. */
extern _Atomic int tr_paged_kv;
extern _Atomic int64_t tr_kv_bytes_copied, tr_decode_steps;

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s MODEL_DIR TEST_TSV [N BEAM ROUNDS]\n", argv[0]), 2;
    int N = argc > 3 ? atoi(argv[3]) : 50, beam = argc > 4 ? atoi(argv[4]) : 5, R = argc > 5 ? atoi(argv[5]) : 3;
    if (N < 1 || beam < 1 || R < 1 || R > 99) return fprintf(stderr, "bad N, BEAM or ROUNDS\n"), 2;
    attn_translator *m;
    if (attn_translator_load(argv[1], &m)) return fprintf(stderr, "%s\n", attn_last_error()), 1;
    FILE *f = fopen(argv[2], "r");
    if (!f) return perror(argv[2]), 1;
    char **src = calloc(N, sizeof *src), line[4096];
    int n = 0;
    while (n < N && fgets(line, sizeof line, f)) {
        char *a = strchr(line, '\t'), *b = a ? strchr(a + 1, '\t') : NULL;
        if (!a) continue;
        if (b) *b = 0;
        a[strcspn(a, "\r\n")] = 0;
        src[n++] = strdup(a + 1);
    }
    fclose(f);
    attn_s2s_decode_opts o = attn_s2s_decode_defaults();
    o.beam = beam;
    double t[2][99];
    int64_t bytes[2] = {0}, steps[2] = {0}, same = 1;
    char **out = calloc(n, sizeof *out);
    for (int r = 0; r < R; r++)
        for (int paged = 0; paged < 2; paged++) {
            tr_paged_kv = paged;
            int64_t b0 = tr_kv_bytes_copied, s0 = tr_decode_steps;
            double t0 = bench_now();
            for (int i = 0; i < n; i++) {
                attn_s2s_translation tr;
                if (attn_translator_translate(m, src[i], &o, &tr)) return fprintf(stderr, "%s\n", attn_last_error()), 1;
                if (!out[i]) out[i] = strdup(tr.text);
                else same &= !strcmp(out[i], tr.text);
                attn_s2s_translation_free(&tr);
            }
            t[paged][r] = (bench_now() - t0) / n;
            bytes[paged] = tr_kv_bytes_copied - b0, steps[paged] = tr_decode_steps - s0;
        }
    printf("%d sentences, beam %d, %d threads, path %s, median of %d rounds; translations %s\n", n, beam,
           attn_get_threads(), attn_get_isa(), R, same ? "identical" : "DIFFER");
    for (int paged = 0; paged < 2; paged++) {
        qsort(t[paged], R, sizeof(double), bench_cmp);
        printf("%-6s cache: %7.2f ms per sentence, %9.0f KV bytes copied per decoder step (%lld steps)\n",
               paged ? "paged" : "dense", t[paged][R / 2] * 1e3, (double)bytes[paged] / steps[paged], (long long)steps[paged]);
    }
    for (int i = 0; i < n; i++) free(src[i]), free(out[i]);
    free(src), free(out);
    attn_translator_free(m);
    return same ? 0 : 1;
}
