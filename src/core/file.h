/* Reading files (not API): opening a regular file, exact reads, and the library's one
 * whole-file reader. Every message names the file. */
#ifndef ATTN_CORE_FILE_H
#define ATTN_CORE_FILE_H

#include <stddef.h>
#include <stdio.h>

/* Opens a regular file for reading and returns its size. ATTN_EIO with a message naming the
 * file if it cannot be opened or is not a regular file. */
int attn__file_open(const char *path, FILE **f, size_t *size);
/* Reads exactly n bytes; ATTN_EIO ("unexpected end of file" or the system's reason). */
int attn__file_read(FILE *f, const char *path, void *dst, size_t n);

/* Reads the whole file at path into *out (freed with attn_free; a NUL is added after the last
 * byte, not counted in *size). ATTN_EIO if it cannot be opened or read (or is not a regular
 * file), ATTN_EFORMAT if it holds more than `limit` bytes, ATTN_ENOMEM. */
int attn__read_file(const char *path, size_t limit, char **out, size_t *size);

#endif
