/* Internal helpers of the file-format layer (not API): byte order, half-precision floats,
 * and printable excerpts of untrusted strings for messages. */
#ifndef ATTN_IO_COMMON_H
#define ATTN_IO_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "attn/io.h"
#include "attn/text.h"
#include "core/file.h"
#include "core/internal.h"

/* 1 on a little-endian host. */
static inline int attn__host_le(void) {
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* Little-endian loads and stores at any alignment, independent of the host's byte order. */
static inline uint16_t attn__le16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t attn__le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t attn__le64(const unsigned char *p) {
    return (uint64_t)attn__le32(p) | ((uint64_t)attn__le32(p + 4) << 32);
}
static inline void attn__put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Reverses the bytes of each of n elements of `size` bytes, in place. */
void attn__byteswap(void *data, size_t n, size_t size);

/* IEEE half and bfloat16 bit patterns to float (exact, including subnormals, inf and NaN). */
float attn__f16_to_f32(uint16_t h);
static inline float attn__bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}


/* Copies at most n bytes of an untrusted string into dst (capacity cap >= 8) for a message:
 * bytes outside printable ASCII become '?', and a long string is cut with "...". Returns dst. */
char *attn__printable(char *dst, size_t cap, const char *src, size_t n);

/* 1 if s[0, n) holds only white space (attn_is_space), U+200B and U+FEFF; invalid UTF-8
 * is not blank. */
int attn__blank(const char *s, size_t n);

/* Shuffles a[0, n) in place (Fisher-Yates, from the last element down), each swap partner an
 * unbiased integer drawn from r (rejection, as OpenBSD's arc4random_uniform). */
void attn__shuffle(int *a, int n, attn_rng *r);

/* The one line of a reader about the records it skipped, "N malformed NOUNs skipped (line L:
 * WHY; ...)" with "; ..." when more were skipped than reported, or "" when none; into buf
 * (capacity cap, always NUL-terminated, cut if too long). line[i] and why[i] for i <
 * n_reported. Returns buf. */
char *attn__skip_report(char *buf, size_t cap, const char *noun, int skipped, int n_reported, const int *line,
                        const char *const *why);

/* The path of a split's part in dir: DIR/train.tsv, DIR/valid.tsv or DIR/test.tsv for part 0,
 * 1 or 2, into path (capacity ATTN__TMP_PATH_MAX of io/atomic.h, with room left for the
 * temporary suffix of an atomic write). ATTN_EINVAL if dir is too long. */
int attn__split_path(char *path, const char *dir, int part);

/* A translation model's vocabularies (owned; NULL until set). */
typedef struct {
    attn_vocab *src, *tgt;
} attn__vocab_pair;
/* Replaced by src and tgt (taken, also on failure), which must hold want_src and want_tgt
 * tokens; `who` names the model in the message. */
int attn__vocabs_replace(const char *who, attn__vocab_pair *pair, attn_vocab *src, attn_vocab *tgt, int want_src, int want_tgt);
void attn__vocab_pair_free(attn__vocab_pair *pair); /* frees both, sets them to NULL */

#endif
