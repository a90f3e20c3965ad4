/* Reading files: see core/file.h. Sizes come from fstat, so a file is read in one call into
 * a buffer of its size, whatever that size is. */
#define _POSIX_C_SOURCE 200809L
#include "core/file.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "core/internal.h"

int attn__file_open(const char *path, FILE **f, size_t *size) {
    *f = NULL;
    *size = 0;
    if (!path) return attn__error(ATTN_EINVAL, "NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return attn__error(ATTN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        return attn__error(ATTN_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(fp);
        return attn__error(ATTN_EIO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)(SIZE_MAX / 2)) {
        fclose(fp);
        return attn__error(ATTN_EIO, "%s: file too large", path);
    }
    *f = fp;
    *size = (size_t)st.st_size;
    return ATTN_OK;
}

int attn__file_read(FILE *f, const char *path, void *dst, size_t n) {
    if (n == 0) return ATTN_OK;
    errno = 0;
    size_t got = fread(dst, 1, n, f);
    if (got == n) return ATTN_OK;
    if (ferror(f)) return attn__error(ATTN_EIO, "%s: read error: %s", path, errno ? strerror(errno) : "unknown");
    return attn__error(ATTN_EIO, "%s: unexpected end of file (did it change while being read?)", path);
}

int attn__read_file(const char *path, size_t limit, char **out, size_t *size) {
    FILE *f;
    size_t n;
    *out = NULL;
    *size = 0;
    int st = attn__file_open(path, &f, &n);
    if (st) return st;
    if (n > limit) {
        fclose(f);
        return attn__error(ATTN_EFORMAT, "%s: %zu bytes is more than the %zu allowed", path, n, limit);
    }
    char *buf = attn_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return attn__error(ATTN_ENOMEM, "%s: out of memory", path);
    }
    st = attn__file_read(f, path, buf, n);
    fclose(f);
    if (st) {
        attn_free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    *size = n;
    return ATTN_OK;
}
