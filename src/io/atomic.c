/* Atomic file writes: temporary file in the target's directory, fsync, then rename(2). The
 * target is where symbolic links lead (the link stays); a target that exists and is not a
 * regular file (a device, a FIFO) is written directly, as no rename can replace it. */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
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

/* Where a write to path lands, into out (capacity cap): symbolic links followed (a relative
 * target is taken from the link's directory), up to 40 of them. 0, or an errno value. */
static int resolve(const char *path, char *out, size_t cap) {
    if (strlen(path) >= cap) return ENAMETOOLONG;
    strcpy(out, path);
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        char target[ATTN__TMP_PATH_MAX];
        if (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode)) return 0;
        ssize_t n = readlink(out, target, sizeof target - 1);
        if (n < 0) return errno;
        target[n] = '\0';
        char *slash = strrchr(out, '/');
        size_t keep = target[0] == '/' || !slash ? 0 : (size_t)(slash - out) + 1;
        if (keep + (size_t)n >= cap) return ENAMETOOLONG;
        memcpy(out + keep, target, (size_t)n + 1);
    }
    return ELOOP;
}

/* Like mkstemp, but the file gets 0666 less the umask (mkstemp forces 0600, which would make
 * every saved file private to its owner unlike any other program's output). tmp is the
 * resolved target + ".tmp.XXXXXX", or "" when the target is written directly. */
FILE *attn__atomic_open(const char *path, char *tmp, size_t cap) {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Thread_local uint64_t counter;
    if (!path || !*path || !tmp) {
        attn__error(ATTN_EIO, "atomic write: empty path");
        return NULL;
    }
    int fd = -1, err = cap < 12 ? ENAMETOOLONG : resolve(path, tmp, cap - 11);
    struct stat st;
    if (err) {
        attn__error(ATTN_EIO, "%s: cannot write: %s", path, strerror(err));
        return NULL;
    }
    size_t n = strlen(tmp);
    if (stat(tmp, &st) == 0 && S_ISDIR(st.st_mode)) {
        attn__error(ATTN_EIO, "%s: cannot write: it is a directory", path);
        return NULL;
    }
    if (stat(tmp, &st) == 0 && !S_ISREG(st.st_mode)) { /* a device or a FIFO: directly */
        fd = open(tmp, O_WRONLY);
        err = errno;
        tmp[0] = '\0';
    } else {
        memcpy(tmp + n, ".tmp.", 5);
        struct timespec ts;
        timespec_get(&ts, TIME_UTC);
        uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
                        (uint64_t)(uintptr_t)&counter;
        for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
            uint64_t r = mix64(seed + ++counter * 0x2545f4914f6cdd1dull);
            for (int i = 0; i < 6; i++, r /= 62) tmp[n + 5 + i] = chars[r % 62];
            tmp[n + 11] = '\0';
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
            err = errno;
            if (fd < 0 && err != EEXIST) break;
        }
    }
    if (fd < 0) {
        if (tmp[0]) attn__error(ATTN_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(err));
        else attn__error(ATTN_EIO, "%s: cannot write: %s", path, strerror(err));
        return NULL;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        err = errno;
        close(fd);
        if (tmp[0]) remove(tmp);
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
    if (!bad && tmp[0] && fsync(fileno(f)) != 0 && errno != EINVAL) bad = 1, err = errno;
    if (fclose(f) != 0 && !bad) bad = 1, err = errno;
    if (bad) {
        if (tmp[0]) remove(tmp);
        return attn__error(ATTN_EIO, "%s: write failed: %s", path, strerror(err));
    }
    /* the target: tmp without its ".tmp.XXXXXX" */
    char target[ATTN__TMP_PATH_MAX];
    size_t n = strlen(tmp);
    if (n > 11 && n - 11 < sizeof target) memcpy(target, tmp, n - 11), target[n - 11] = '\0';
    if (tmp[0] && rename(tmp, target) != 0) {
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

int attn__atomic_fail(FILE *f, const char *tmp, const char *path) {
    int err = errno;
    attn__atomic_abort(f, tmp);
    return attn__error(ATTN_EIO, "%s: write failed: %s", path, strerror(err ? err : EIO));
}

int attn_write_file_atomic(const char *path, const void *data, size_t n) {
    if (!path || !*path) return attn__error(ATTN_EINVAL, "attn_write_file_atomic: empty path");
    if (n && !data) return attn__error(ATTN_EINVAL, "attn_write_file_atomic: NULL data");
    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    if (n && fwrite(data, 1, n, f) != n) return attn__atomic_fail(f, tmp, path);
    return attn__atomic_commit(f, tmp, path);
}
