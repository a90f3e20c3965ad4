/* cli_s2s.h: what the translation subcommands (attn train seq2seq, attn train transformer,
 * attn translate, attn eval) share, for any model family through attn/translator.h:
 * sentence pairs encoded for a model, the text BLEU compares, evaluation by source length
 * bucket, and small file-system helpers. Bodies in cli_s2s.c. Uses only the public
 * headers. */
#ifndef ATTN_CLI_S2S_H
#define ATTN_CLI_S2S_H

#include <stdint.h>

#include "attn/attn.h"
#include "attn/seq2seq.h"
#include "attn/translator.h"
#include "attn/knnmt.h"
#include "cli.h"

/* Pairs encoded with a model's vocabularies. Each pair i has
 *   src[i]: n_src[i] ids, the source tokens then <eos>;
 *   tgt[i]: n_tgt[i] + 2 ids, <bos> y_1 .. y_n <eos> (decoder input = tgt[i][0 .. n],
 *           targets = tgt[i][1 .. n + 1]);
 *   ref[i]: the reference sentence as written (a pointer into the pairs). */
typedef struct {
    int n;
    int32_t **src, **tgt;
    int *n_src, *n_tgt;    /* n_src counts <eos>; n_tgt counts neither <bos> nor <eos> */
    int *src_tokens;       /* source tokens without <eos> (for length buckets) */
    const char **ref;      /* references */
    const char **src_text; /* sources */
    int64_t unk_src, unk_tgt, tok_src, tok_tgt;
    int dropped;           /* pairs left out: empty source, over max_len or ATTN_S2S_MAX_SRC */
    int empty;             /* of which with an empty source */
} s2s_data;

/* Encodes pairs with m's vocabularies (and tokenisers): the source from column src_col, the
 * target from the other. Pairs with more than max_len tokens on either side are left out when
 * max_len > 0; pairs whose source has no token are always left out. */
int s2s_data_encode(attn_translator *m, const attn_pairs *p, int src_col, int max_len, s2s_data *out);
void s2s_data_free(s2s_data *d);

/* `attn train ARGS...` shell-quoted, for a checkpoint's record (malloc'ed; NULL on failure). */
char *s2s_command_line(int argc, char **argv);

/* Vocabularies built from the training pairs (tokens seen at least min_count times, at most
 * max_size ids; 0: no limit): one per side, or with `joint` one from both sides, given to both. */
int s2s_build_vocabs(const attn_pairs *train, int src_col, attn_tok_kind src_tok, attn_tok_kind tgt_tok, int min_count,
                     int max_size, int joint, attn_vocab **src, attn_vocab **tgt);

/* Hypothesis text for BLEU (detokenised, not capitalised; freed with attn_free) and the
 * reference normalised the same way (tokenised, then detokenised). */
int s2s_hyp_text(const attn_translator *m, const attn_s2s_hyp *h, char **out);
int s2s_ref_text(const attn_translator *m, const char *ref, char **out);
/* The BLEU options for the model's target language (13a for English, zh for Chinese). */
attn_bleu_opts s2s_bleu_opts(const attn_translator *m);

/* Evaluation: decodes every pair of d, scores corpus BLEU-4 and exact match, overall and per
 * bucket of source length (bucket b holds the sources of edges[b-1]+1 .. edges[b] tokens;
 * the last is open). hyps (optional, d->n strings, freed by the caller with attn_free) get
 * the translations. progress (optional) is called after each chunk of sentences. */
#define S2S_MAX_BUCKETS 16
typedef struct {
    int n_buckets;
    int edges[S2S_MAX_BUCKETS];      /* upper edges of buckets 0 .. n_buckets - 2 */
    int count[S2S_MAX_BUCKETS];
    attn_bleu_score bleu[S2S_MAX_BUCKETS];
    double exact[S2S_MAX_BUCKETS];
    attn_bleu_score total;
    double total_exact;
    int n;
    double seconds;
    int64_t tokens; /* target tokens decoded (<eos> counted) */
} s2s_eval_result;

int s2s_evaluate(attn_translator *m, const s2s_data *d, const attn_s2s_decode_opts *opts, const int *edges, int n_edges,
                 char **hyps, void (*progress)(int done, int total), s2s_eval_result *out);

/* ---- A translation memory (attn/knnmt.h) for translate and eval ------------------------- */

/* --memory STORE [--k N] [--temperature T] [--lambda L]: the store's own (tuned) settings,
 * each overridable. */
typedef struct {
    const char *path;
    int k, have_k, have_t, have_l, nlist, nprobe;
    float temperature, lambda;
    attn_knn_store *store;
    attn_knn_hook hook;
} s2s_memory;

#define S2S_MEMORY_HELP                                                                          \
    "  --memory STORE      a translation memory ('attn memory build'; kNN-MT, Khandelwal et al.\n" \
    "                      2021): at every step the k stored decoder states nearest to the\n"    \
    "                      current one vote for the tokens that followed them, softmax(-d/T),\n" \
    "                      mixed in: p = lambda p_memory + (1 - lambda) p_model. The store must\n" \
    "                      have been built for this very model. It uses the k, T and lambda in\n" \
    "                      its header (tuned by 'attn memory tune'); these override them:\n"      \
    "  --k N               neighbours (1-1024)   --temperature T   --lambda L (0 <= L < 1;\n"     \
    "                      0 gives exactly the model's own translation)\n"                     \
    "  --nprobe N          approximate search: k-means splits the store into --nlist lists\n"   \
    "                      (default 256) and each query scans its N nearest lists only\n"       \
    "                      (default: exact search over the whole store)\n"

/* 1 if the current option is one of the above (parsed into m). */
int s2s_memory_option(cli_args *p, s2s_memory *m);
/* Loads m->path (if set), checks it against the model, installs the hook in d. CLI_OK or a
 * printed error (CLI_EDATA, or CLI_EUSAGE for a bad override). */
int s2s_memory_open(const char *cmd, attn_translator *t, s2s_memory *m, attn_s2s_decode_opts *d, int quiet);
void s2s_memory_close(s2s_memory *m);

/* Bucket label "1-5", "21+" into buf. */
const char *s2s_bucket_label(const s2s_eval_result *r, int b, char *buf, size_t cap);

/* mkdir -p; 0 on success, -1 (errno set) otherwise. */
int s2s_mkdirs(const char *path);

/* Parses "5,10,15,20" into edges (ascending, positive); returns the count or -1. */
int s2s_parse_edges(const char *s, int *edges, int cap);

#endif
