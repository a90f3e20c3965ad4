/* Internals of the TF-IDF features shared with the classifiers (not API): the features file
 * (tfidf.tsv) of a checkpoint directory, written and read. Format, UTF-8 text:
 *   attn-tfidf 1 TOK NMIN NMAX SUBLINEAR NDOCS      (TOK: attn_tok_kind as a number)
 *   DF<TAB>NGRAM                                    (one line per feature, in column order)
 * idf is recomputed from DF and NDOCS on load, by the same expression as the fit. */
#ifndef ATTN_MODELS_TFIDF_INTERNAL_H
#define ATTN_MODELS_TFIDF_INTERNAL_H

#include <stddef.h>

#include "attn/tfidf.h"
#include "core/strbuf.h"

/* Appends the features file of f to sb (errors are sticky in sb). */
void attn__tfidf_write(const attn_tfidf *f, attn__sb *sb);
/* Parses a features file (untrusted): ATTN_EFORMAT naming `path` and the line. */
int attn__tfidf_read(const char *text, size_t n, const char *path, attn_tfidf **out);

#endif
