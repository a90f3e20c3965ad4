/* Atomic file writing for every writer of the library (not API; attn_write_file_atomic is the
 * public one-shot form). A writer streams into a temporary file beside the target, then
 * commits (close + rename over the target) or aborts (close + remove):
 *
 *   char tmp[ATTN__TMP_PATH_MAX];
 *   FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
 *   if (!f) return ATTN_EIO;                    // message already set
 *   if (fwrite(...) != n) { attn__atomic_abort(f, tmp); return attn__error(ATTN_EIO, ...); }
 *   return attn__atomic_commit(f, tmp, path);   // removes the temporary file on failure
 *
 * The temporary file is "TARGET.tmp.XXXXXX" (same directory, so rename is atomic), created
 * exclusively with the usual permissions (0666 less the umask, as fopen would give). TARGET
 * is PATH with symbolic links followed, so that a link stays a link and its target gets the
 * new contents. A TARGET that exists and is not a regular file (a device such as /dev/null or
 * /dev/full, a FIFO) is opened and written directly (tmp is then ""); a directory is refused.
 */
#ifndef ATTN_IO_ATOMIC_H
#define ATTN_IO_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

#define ATTN__TMP_PATH_MAX 4096

/* Creates the temporary file for `path` and opens it for binary writing; its name goes to
 * tmp_path_out (capacity cap). NULL on failure, with an ATTN_EIO message naming path
 * (callers check for a NULL or empty path themselves if they want ATTN_EINVAL for it). */
FILE *attn__atomic_open(const char *path, char *tmp_path_out, size_t cap);

/* Flushes, fsyncs and closes f, checking for write errors, then renames tmp over path. ATTN_OK, or
 * ATTN_EIO with a message (and tmp removed). f is closed in every case. */
int attn__atomic_commit(FILE *f, const char *tmp, const char *path);

/* Closes f (if not NULL) and removes tmp. Leaves the current error message as it is. */
void attn__atomic_abort(FILE *f, const char *tmp);
/* After a failed write: aborts, and returns ATTN_EIO with "PATH: write failed: <errno's reason>". */
int attn__atomic_fail(FILE *f, const char *tmp, const char *path);

/* fsync of a directory, so that renames in it survive a power loss (best effort: errors are
 * ignored, as a failure here leaves every file complete). */
void attn__sync_dir(const char *dir);

#endif
