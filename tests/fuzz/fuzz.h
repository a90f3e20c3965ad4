/* Shared by the libFuzzer targets of tests/fuzz/ (see README.md there): the readers take
 * paths, so each input is written to a scratch file of this process first (in $TMPDIR, else
 * /dev/shm, else /tmp). Include it first. */
#ifndef ATTN_FUZZ_H
#define ATTN_FUZZ_H
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* dir/NAME in a scratch directory of this process (made on the first call), holding data. */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t n) {
    static char dir[256], path[512];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/attn-fuzz.XXXXXX", t);
        if (!mkdtemp(dir)) abort();
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) abort();
    return path;
}

/* The directory fuzz_file writes into (after a first call). */
static inline const char *fuzz_dir(void) {
    static char d[512];
    const char *p = fuzz_file(".probe", (const uint8_t *)"", 0);
    snprintf(d, sizeof d, "%.*s", (int)(strrchr(p, '/') - p), p);
    return d;
}

/* A NUL-terminated copy of data (malloc'ed). */
static inline char *fuzz_text(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
