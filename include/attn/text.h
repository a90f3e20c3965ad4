/* attn/text.h: text data for the sequence models: UTF-8, tokenisers, vocabularies, sentence
 * pair data sets (Tatoeba's cmn.txt and the like), and BLEU as sacreBLEU computes it.
 *
 * Conventions of this header:
 *  - Strings are UTF-8 and NUL-terminated unless a length is given. Input text is untrusted:
 *    invalid UTF-8 never crashes anything; the tokenisers and BLEU read each invalid sequence
 *    as U+FFFD (one per "maximal subpart", as Python's decode(errors="replace") does).
 *  - Calls that can fail return ATTN_OK or a negative ATTN_E* status and leave a message
 *    (attn_last_error()). Strings and objects returned to the caller are freed with the
 *    matching free function (attn_free for plain strings); every free function accepts NULL.
 *  - Output structs (attn_tokens, attn_pairs) start zeroed: `attn_tokens t = {0};`.
 *
 * Tokenisation conventions (chosen for the Chinese-English experiments):
 *  - Chinese (ATTN_TOK_ZH): one token per character. Each CJK ideograph, each punctuation mark
 *    or symbol, each kana or hangul syllable is its own token; a run of letters and digits
 *    (ASCII, fullwidth, Latin with diacritics, Greek, Cyrillic) is one token ("Tom", "30",
 *    "DJ"), kept as written; white space (Unicode White_Space, the ideographic space U+3000)
 *    and the invisible U+200B..U+200D, U+2060 and U+FEFF are dropped. No other normalisation:
 *    fullwidth punctuation (，。！？) stays fullwidth. "我爱你。" -> 我 爱 你 。
 *  - English (ATTN_TOK_EN): lower-cased (ASCII and Latin-1 letters); a word is a run of
 *    letters and digits; an apostrophe between two letters stays inside the word, so
 *    contractions and possessives are one token ("i'm", "don't", "tom's", "o'clock"); a '.'
 *    or ',' between two digits stays inside a number ("3.5", "1,000"); every other non-space
 *    character is a token of its own ('.', '?', '"', '-', '$', ...). Curly quotes are read
 *    as straight ones (’ -> ', “ ” -> "). "Tom's here." -> tom's here .
 *    This keeps digits and contractions, unlike the PyTorch tutorial, so that a translation
 *    can be shown without losing words.
 *  - ATTN_TOK_EN_TUTORIAL: exactly the normalizeString of the PyTorch seq2seq tutorial
 *    ("NLP From Scratch: Translation with a Sequence to Sequence Network and Attention", as
 *    revised in 2023), for comparisons with it: lower-cased, accents stripped (Latin-1 and
 *    Latin Extended-A letters to their base letter), " " inserted before each of .!?, then
 *    every run of characters other than a-z ! ? becomes one space (so '.', digits,
 *    apostrophes and non-Latin text disappear), split on spaces.
 *    "I'm fine." -> i m fine;  "Wait!" -> wait !   (Older versions of the tutorial kept '.'.)
 *    A line with nothing left gives no token (Python's split would give one empty string).
 *  - ATTN_TOK_SPACE: split on white space, nothing else (SST-2 is already tokenised).
 *  - Detokenisation for display: attn_detokenize (see there). For BLEU on English output the
 *    intended use is attn_detokenize(EN) of the model's tokens as the hypothesis and
 *    attn_detokenize(EN) of attn_tokenize(EN) of the reference as the reference, so both sides
 *    are normalised alike (in effect lower-cased BLEU); BLEU then tokenises both with 13a
 *    (see the BLEU section).
 */
#ifndef ATTN_TEXT_H
#define ATTN_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* ---- UTF-8 ------------------------------------------------------------------------------- */

#define ATTN_UTF8_REPLACEMENT 0xFFFDu

/* Decodes the code point at the start of s[0, n) into *cp and returns the number of bytes it
 * used (0 only when n == 0). An invalid or truncated sequence gives *cp = U+FFFD and uses
 * its maximal valid prefix, at least one byte (Unicode 15, section 3.9, "U+FFFD Substitution
 * of Maximal Subparts"): overlong forms, surrogates (U+D800..DFFF) and values above U+10FFFF
 * are invalid. Never reads s[n] or beyond. */
size_t attn_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Iteration: reads the code point at s[*pos] (pos < n), advances *pos, returns 1; returns 0
 * at the end.   size_t pos = 0; uint32_t c; while (attn_utf8_next(s, n, &pos, &c)) ...  */
int attn_utf8_next(const char *s, size_t n, size_t *pos, uint32_t *cp);

/* Writes the UTF-8 form of cp (1 to 4 bytes) to out and returns its length. A surrogate or a
 * value above U+10FFFF is written as U+FFFD. */
size_t attn_utf8_encode(uint32_t cp, char out[4]);

/* 1 if s[0, n) is valid UTF-8, else 0; *bad_offset (optional) gets the offset of the first
 * invalid byte. */
int attn_utf8_valid(const char *s, size_t n, size_t *bad_offset);

/* Number of code points in s[0, n), each invalid sequence counting as one (as decoded). */
size_t attn_utf8_length(const char *s, size_t n);

/* A copy of s[0, n) with each invalid sequence replaced by U+FFFD, NUL-terminated, in *out
 * (freed with attn_free); its byte length in *out_len (optional). */
int attn_utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len);

/* Character classes. */
int attn_is_cjk(uint32_t cp);        /* a Han ideograph: CJK Unified Ideographs U+4E00..9FFF,
                                        Extension A U+3400..4DBF, Extensions B..I (U+20000..
                                        323AF), Compatibility Ideographs U+F900..FAFF and
                                        U+2F800..2FA1F, radicals U+2E80..2FDF, 〇 U+3007 */
int attn_is_cjk_punct(uint32_t cp);  /* CJK or fullwidth punctuation and symbols: U+3000..303F
                                        but the space U+3000, 々 U+3005 and 〇 U+3007; U+FF01..
                                        FF0F, FF1A..FF20, FF3B..FF40, FF5B..FF65, FFE0..FFEE
                                        (fullwidth and halfwidth signs); vertical, compatibility
                                        and small forms U+FE10..FE1F, FE30..FE6F */
int attn_is_space(uint32_t cp);      /* Python's str.isspace(): U+0009..000D, 001C..0020, 0085,
                                        00A0, 1680, 2000..200A, 2028, 2029, 202F, 205F, 3000 */

/* ---- Tokenisers -------------------------------------------------------------------------- */

typedef enum {
    ATTN_TOK_SPACE = 0,       /* split on white space */
    ATTN_TOK_EN = 1,          /* English words and punctuation, lower-cased (see the top) */
    ATTN_TOK_EN_TUTORIAL = 2, /* the PyTorch tutorial's normalizeString */
    ATTN_TOK_ZH = 3           /* Chinese, one token per character (see the top) */
} attn_tok_kind;

/* A list of tokens that owns its storage and can be reused by later calls (each call replaces
 * the contents and keeps the buffers). Start zeroed; free with attn_tokens_free. */
typedef struct {
    int n;             /* number of tokens */
    const char **tok;  /* tok[i]: token i, NUL-terminated UTF-8 (never empty, no white space
                          except in tokens that were given to attn_tokens_set as they are) */
    int *len;          /* len[i]: byte length of tok[i] */
    /* private */
    char *buf_;
    size_t buf_len_, buf_cap_;
    size_t *off_;
    int cap_;
} attn_tokens;

void attn_tokens_free(attn_tokens *t); /* frees and zeroes *t; accepts NULL */

/* Tokenises the NUL-terminated text with the given kind into *out (replacing its contents).
 * Invalid UTF-8 is read as U+FFFD. ATTN_EINVAL for an unknown kind or a NULL argument. */
int attn_tokenize(attn_tok_kind kind, const char *text, attn_tokens *out);

/* Replaces the contents of *out by copies of the n strings tok[0..n) (any bytes). */
int attn_tokens_set(attn_tokens *out, const char *const *tok, int n);

/* Joins tokens into display text, in *out (freed with attn_free).
 *  ATTN_TOK_ZH: concatenated, with one space only between two tokens that would otherwise run
 *    into one word (both sides letters or digits): 他 是 DJ 。 -> 他是DJ。
 *  ATTN_TOK_EN, ATTN_TOK_EN_TUTORIAL: separated by spaces, except none before . , ! ? ; : %
 *    ) ] } and none after ( [ { $ #, a hyphen joins its neighbours (well-known), straight
 *    double quotes alternate opening and closing, and CJK characters are not spaced.
 *    With ATTN_DETOK_CAPITALIZE the first letter of each sentence and the pronoun "i" (also in
 *    i'm, i'll, i've, i'd) are upper-cased: i'm fine . -> "I'm fine."
 *  ATTN_TOK_SPACE: separated by single spaces.
 * Flags other than ATTN_DETOK_CAPITALIZE are reserved (pass 0). */
#define ATTN_DETOK_CAPITALIZE 1
int attn_detokenize(attn_tok_kind kind, const char *const *tok, int n, int flags, char **out);

/* ---- Token counts and vocabularies ------------------------------------------------------- */

/* Special tokens, always the first four ids of a vocabulary, in this order. */
enum { ATTN_PAD = 0, ATTN_UNK = 1, ATTN_BOS = 2, ATTN_EOS = 3, ATTN_NSPECIAL = 4 };
#define ATTN_PAD_TOKEN "<pad>"
#define ATTN_UNK_TOKEN "<unk>"
#define ATTN_BOS_TOKEN "<bos>"
#define ATTN_EOS_TOKEN "<eos>"

/* A multiset of tokens (a hash map token -> count). Each distinct token gets an index, 0, 1,
 * 2, ... in order of first appearance, so a counter also interns strings. */
typedef struct attn_counter attn_counter;
int attn_counter_new(attn_counter **out);
void attn_counter_free(attn_counter *c);
/* Adds `count` (>= 0) occurrences of tok[0, len); *index (optional) gets its index. A token
 * must be non-empty valid UTF-8 without '\n', '\r' or NUL (ATTN_EINVAL otherwise), so that
 * every vocabulary can be saved one token per line. */
int attn_counter_add(attn_counter *c, const char *tok, size_t len, int64_t count, int *index);
int attn_counter_add_tokens(attn_counter *c, const attn_tokens *t); /* each token once */
int attn_counter_size(const attn_counter *c);                 /* number of distinct tokens */
int attn_counter_find(const attn_counter *c, const char *tok, size_t len); /* index or -1 */
/* The token of an index: NULL if out of range; valid until the next attn_counter_add. */
const char *attn_counter_token(const attn_counter *c, int index);
int64_t attn_counter_count(const attn_counter *c, int index);     /* 0 if out of range */
int64_t attn_counter_total(const attn_counter *c);                /* sum of all counts */

/* A vocabulary: ids 0..size-1, ids 0..3 the special tokens, the others ordered by count
 * (descending), ties by their UTF-8 bytes (ascending, as memcmp; a prefix first), so the
 * same counts give the same vocabulary on every run and platform. */
typedef struct attn_vocab attn_vocab;

/* Builds a vocabulary from the tokens of c with count >= min_count (min_count <= 1 keeps all),
 * at most max_size ids in all, the four specials included (max_size 0: no limit; otherwise it
 * must be >= 4). Tokens spelled like a special ("<unk>", ...) in the counter are left out. */
int attn_vocab_build(const attn_counter *c, int64_t min_count, int max_size, attn_vocab **out);
void attn_vocab_free(attn_vocab *v);
int attn_vocab_size(const attn_vocab *v);
const char *attn_vocab_token(const attn_vocab *v, int id); /* NULL if id is out of range */
int attn_vocab_find(const attn_vocab *v, const char *tok, size_t len); /* id, or -1 */
int attn_vocab_id(const attn_vocab *v, const char *tok);   /* id, or ATTN_UNK if absent */

/* Encodes t's tokens as ids (unknown -> ATTN_UNK), with ATTN_BOS first and/or ATTN_EOS last
 * as the flags ask. ids has room for cap ids; *n_out gets the number written and *n_unk
 * (optional) the number of unknown tokens. ATTN_ESHAPE if cap is too small. */
#define ATTN_ENC_BOS 1
#define ATTN_ENC_EOS 2
int attn_vocab_encode(const attn_vocab *v, const attn_tokens *t, int flags, int32_t *ids, int cap,
                      int *n_out, int *n_unk);

/* Decodes n ids into tokens (replacing out's contents). ATTN_DEC_STOP_AT_EOS stops at the
 * first ATTN_EOS; ATTN_DEC_SKIP_SPECIAL leaves out <pad>, <bos> and <eos> (<unk> stays,
 * spelled "<unk>"). ATTN_EINVAL for an id outside [0, size). */
#define ATTN_DEC_STOP_AT_EOS 1
#define ATTN_DEC_SKIP_SPECIAL 2
int attn_vocab_decode(const attn_vocab *v, const int32_t *ids, int n, int flags, attn_tokens *out);

/* Saves as UTF-8 text, the token of id i on line i+1, each line ending in '\n'. Atomic. */
int attn_vocab_save(const attn_vocab *v, const char *path);
/* Loads a saved vocabulary. ATTN_EFORMAT, naming the line, for: invalid UTF-8, an empty line,
 * a carriage return, a NUL byte, a duplicate token (both lines named), the first four lines
 * not being <pad> <unk> <bos> <eos>. The last line's '\n' may be missing. ATTN_EIO if the
 * file cannot be read. */
int attn_vocab_load(const char *path, attn_vocab **out);

/* ---- Sentence pairs ---------------------------------------------------------------------- */

/* One line of a pairs file: "side0 TAB side1 [TAB extra]". For cmn.txt side 0 is English,
 * side 1 Chinese and extra the attribution (kept, written back, otherwise unused). */
typedef struct {
    char *side[2]; /* NUL-terminated UTF-8, non-empty, no tab or newline */
    char *extra;   /* the rest of the line after the second tab, "" if none */
    int line;      /* 1-based line number in the file it was read from */
} attn_pair;

/* Why a line was skipped. */
typedef enum {
    ATTN_PAIR_OK = 0,
    ATTN_PAIR_NO_TAB,     /* fewer than two columns (an empty line included) */
    ATTN_PAIR_EMPTY_SIDE, /* a side is empty or white space only */
    ATTN_PAIR_BAD_UTF8,   /* invalid UTF-8 somewhere in the line */
    ATTN_PAIR_NUL_BYTE    /* a NUL byte in the line */
} attn_pair_problem;
const char *attn_pair_problem_name(attn_pair_problem p); /* "no tab", "empty side", ... */

#define ATTN_PAIRS_REPORT 8

/* A list of pairs with what reading (and filtering) left out. Start zeroed; attn_pairs_free. */
typedef struct {
    attn_pair *pair;
    int n;
    int lines;          /* lines read (a last line without '\n' counts; a final empty one not) */
    int malformed;      /* lines skipped as malformed */
    int n_reported;     /* min(malformed, ATTN_PAIRS_REPORT) */
    int bad_line[ATTN_PAIRS_REPORT];            /* the first malformed lines' numbers */
    attn_pair_problem bad_why[ATTN_PAIRS_REPORT]; /* and why */
    int filtered;       /* valid pairs removed by attn_pairs_filter_length */
    int cap_;           /* private */
} attn_pairs;

void attn_pairs_free(attn_pairs *p); /* frees and zeroes; accepts NULL */

/* Reads a TSV file of pairs into *out (replacing its contents). Lines may end in "\n" or
 * "\r\n"; a UTF-8 byte-order mark at the start is ignored. Malformed lines are counted and
 * skipped (see attn_pairs). ATTN_EIO if the file cannot be read, ATTN_EFORMAT if it holds no
 * valid pair (the message says how many lines were malformed, and the first's number). */
int attn_pairs_read(const char *path, attn_pairs *out);

/* One line for people about the skipped lines, e.g. "3 malformed lines skipped (line 4: no
 * tab; line 9: empty side; line 12: invalid UTF-8)", or "" if none; into buf (capacity cap,
 * always NUL-terminated, cut if too long). Returns buf. */
char *attn_pairs_report(const attn_pairs *p, char *buf, size_t cap);

/* Removes, in place, the pairs in which side s has more than max_tokens[s] tokens when
 * tokenised with kind[s] (max_tokens[s] <= 0: no limit on that side), keeping the order, and
 * adds their number to p->filtered. */
int attn_pairs_filter_length(attn_pairs *p, const attn_tok_kind kind[2], const int max_tokens[2]);

/* The default split: 80% train, 10% valid, 10% test, seed 1. */
#define ATTN_SPLIT_VALID 0.1
#define ATTN_SPLIT_TEST 0.1
#define ATTN_SPLIT_SEED 1

/* Splits `all` at random into train, valid and test: a Fisher-Yates shuffle of the indices
 * driven by attn_rng seeded with `seed` (unbiased bounded integers by rejection), so the split
 * is the same on every run and platform. n_valid = floor(frac_valid * n + 0.5), n_test =
 * floor(frac_test * n + 0.5) (less if the two would exceed n), train gets the rest; fractions
 * in [0, 1] with frac_valid + frac_test <= 1. Each part keeps the file's order and line
 * numbers. The outputs (zeroed, or holding earlier results, which are replaced) get copies;
 * `all` is unchanged; each output may be NULL; no two may be the same struct. */
int attn_pairs_split(const attn_pairs *all, uint64_t seed, double frac_valid, double frac_test,
                     attn_pairs *train, attn_pairs *valid, attn_pairs *test);

/* attn_pairs_split, then the three parts written to DIR/train.tsv, DIR/valid.tsv and
 * DIR/test.tsv (each file atomic; the directory must exist). */
int attn_pairs_split_save(const attn_pairs *all, uint64_t seed, double frac_valid, double frac_test,
                          const char *dir);

/* Writes the pairs as TSV ("side0\tside1\textra\n"; "side0\tside1\n" when extra is empty),
 * atomically. attn_pairs_read gives the same pairs back (with new line numbers). */
int attn_pairs_write(const attn_pairs *p, const char *path);

/* ---- BLEU -------------------------------------------------------------------------------- */

/* Corpus BLEU-4 as sacreBLEU 2.x computes it (Post 2018, "A Call for Clarity in Reporting
 * BLEU Scores"; Papineni et al. 2002), one reference per sentence:
 *  - tokenisation: "13a" (mteval-v13a, sacreBLEU's default) of hypotheses and references:
 *    <skipped> removed, &quot; &amp; &lt; &gt; unescaped, the ASCII symbols
 *    { | } ~ [ \ ] ^ _ ` ! " # $ % & ( ) * + : ; < = > ? @ / split off, '.' and ',' split off
 *    unless between digits, '-' split off after a digit; or "zh" (sacreBLEU's tokenizer for
 *    Chinese output: each character in its table, bugs included, spaced, then the same four
 *    regular expressions, without the unescaping);
 *    or "none" (split on white space only). Case is kept (no lowercasing option here).
 *  - n-gram precisions from corpus-level counts, each hypothesis n-gram count clipped by the
 *    reference's; brevity penalty exp(1 - r/c) when c < r (c, r: total hypothesis and
 *    reference lengths), 0 when c = 0.
 *  - smoothing: sacreBLEU's corpus_bleu default is smooth_method='exp' (NIST: the k-th n-gram
 *    order with no match counts as 1 / (2^k total_n) instead of 0), and that is the default
 *    here; 'none' gives 0 whenever an order has no match (as NLTK's corpus_bleu without
 *    smoothing); 'floor' and 'add-k' as sacreBLEU. On real corpora every order matches and
 *    the methods agree. If no unigram matches, BLEU is 0 whatever the method.
 *  - scores on sacreBLEU's 0..100 scale.
 */
typedef enum { ATTN_BLEU_TOK_13A = 0, ATTN_BLEU_TOK_ZH = 1, ATTN_BLEU_TOK_NONE = 2 } attn_bleu_tok;
typedef enum {
    ATTN_BLEU_SMOOTH_EXP = 0,   /* sacreBLEU's default */
    ATTN_BLEU_SMOOTH_NONE = 1,
    ATTN_BLEU_SMOOTH_FLOOR = 2, /* zero precisions become smooth_value / total (default 0.1) */
    ATTN_BLEU_SMOOTH_ADDK = 3   /* add smooth_value (default 1) to counts and totals, n >= 2 */
} attn_bleu_smooth;

/* Options; a zeroed struct (or NULL where accepted) is sacreBLEU's corpus_bleu default. */
typedef struct {
    attn_bleu_tok tokenize;
    attn_bleu_smooth smooth;
    double smooth_value;  /* for FLOOR and ADDK; 0 means the default */
    int effective_order;  /* 1: average only the orders that have n-grams (sentence BLEU) */
} attn_bleu_opts;

/* Sufficient statistics: sums over segments. */
typedef struct {
    int64_t sys_len, ref_len;  /* hypothesis and reference tokens */
    int64_t correct[4];        /* clipped matching n-grams, n = 1..4 */
    int64_t total[4];          /* hypothesis n-grams, n = 1..4 */
} attn_bleu_stats;

typedef struct {
    double bleu;          /* 0..100 */
    double precision[4];  /* percent, after smoothing */
    double bp;            /* brevity penalty */
    double ratio;         /* sys_len / ref_len (0 if ref_len is 0) */
    attn_bleu_stats stats;
} attn_bleu_score;

/* Tokenises one hypothesis and its reference as opts says and adds their statistics to *acc
 * (so per-bucket BLEU is a sum of segment statistics). opts NULL: the default. */
int attn_bleu_add(const char *hyp, const char *ref, const attn_bleu_opts *opts, attn_bleu_stats *acc);

/* The score from statistics (sacreBLEU's compute_bleu). opts NULL: the default. */
void attn_bleu_compute(const attn_bleu_stats *s, const attn_bleu_opts *opts, attn_bleu_score *out);

/* Corpus BLEU of n hypotheses against their references (n >= 0). opts NULL: the default. */
int attn_bleu_corpus(const char *const *hyps, const char *const *refs, int n, const attn_bleu_opts *opts,
                     attn_bleu_score *out);

/* Sentence BLEU; opts NULL means sacreBLEU's sentence_bleu defaults (13a, 'exp' smoothing,
 * effective order). */
int attn_bleu_sentence(const char *hyp, const char *ref, const attn_bleu_opts *opts, attn_bleu_score *out);

/* Exact-match rate in percent: the share of pairs whose hypothesis and reference give the
 * same token sequence under opts' BLEU tokenisation (so spacing does not matter). n = 0: 0. */
int attn_exact_match(const char *const *hyps, const char *const *refs, int n, const attn_bleu_opts *opts,
                     double *out);

/* The tokens BLEU sees (for display and tests): tokenises text as opts says into *out. */
int attn_bleu_tokenize(const char *text, const attn_bleu_opts *opts, attn_tokens *out);

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
