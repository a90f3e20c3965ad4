/* Atomic file writes: temporary file in the target's directory, fsync, then rename(2). */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attn/io.h"
#include "core/internal.h"

/* A splitmix64 step: spreads the seed bits over the suffix characters. */
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Like mkstemp, but the file gets 0666 less the umask (mkstemp forces 0600, which would make
 * every saved file private to its owner unlike any other program's output). */
FILE *attn__atomic_open(const char *path, char *tmp, size_t cap) {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Thread_local uint64_t counter;
    if (!path || !*path || !tmp) {
        attn__error(ATTN_EIO, "atomic write: empty path");
        return NULL;
    }
    size_t n = strlen(path);
    if (cap < n + 12) {
        attn__error(ATTN_EIO, "%s: path too long", path);
        return NULL;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.", 5);
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
                    (uint64_t)(uintptr_t)&counter;
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        uint64_t r = mix64(seed + ++counter * 0x2545f4914f6cdd1dull);
        for (int i = 0; i < 6; i++, r /= 62) tmp[n + 5 + i] = chars[r % 62];
        tmp[n + 11] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        err = errno;
        if (fd < 0 && err != EEXIST) break;
    }
    if (fd < 0) {
        attn__error(ATTN_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(err));
        return NULL;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        err = errno;
        close(fd);
        remove(tmp);
        attn__error(ATTN_EIO, "%s: cannot open a stream: %s", path, strerror(err));
        return NULL;
    }
    return f;
}

void attn__sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) fsync(fd), close(fd);
}

int attn__atomic_commit(FILE *f, const char *tmp, const char *path) {
    int bad = fflush(f) != 0 || ferror(f);
    int err = errno;
    /* the data on disk before the name points at it (EINVAL: a file that cannot be synced) */
    if (!bad && fsync(fileno(f)) != 0 && errno != EINVAL) bad = 1, err = errno;
    if (fclose(f) != 0 && !bad) bad = 1, err = errno;
    if (bad) {
        remove(tmp);
        return attn__error(ATTN_EIO, "%s: write failed: %s", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        remove(tmp);
        return attn__error(ATTN_EIO, "%s: cannot rename the temporary file over it: %s", path, strerror(err));
    }
    return ATTN_OK;
}

void attn__atomic_abort(FILE *f, const char *tmp) {
    if (f) fclose(f);
    if (tmp && *tmp) remove(tmp);
}

int attn_write_file_atomic(const char *path, const void *data, size_t n) {
    if (!path || !*path) return attn__error(ATTN_EINVAL, "attn_write_file_atomic: empty path");
    if (n && !data) return attn__error(ATTN_EINVAL, "attn_write_file_atomic: NULL data");
    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    if (n && fwrite(data, 1, n, f) != n) {
        int err = errno;
        attn__atomic_abort(f, tmp);
        return attn__error(ATTN_EIO, "%s: write failed: %s", path, strerror(err));
    }
    return attn__atomic_commit(f, tmp, path);
}
