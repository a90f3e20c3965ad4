/* Status codes and the per-thread error message. */
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[ATTN__MSG_MAX];
static _Thread_local unsigned long g_count; /* errors recorded on this thread so far */

const char *attn_strerror(int status) {
    switch (status) {
    case ATTN_OK: return "ok";
    case ATTN_EINVAL: return "invalid argument";
    case ATTN_ESHAPE: return "shape mismatch";
    case ATTN_ENOMEM: return "out of memory";
    case ATTN_EIO: return "input/output error";
    case ATTN_EFORMAT: return "malformed file";
    case ATTN_EDTYPE: return "unsupported dtype";
    case ATTN_ENOTFOUND: return "not found";
    default: return "unknown error";
    }
}

const char *attn_last_error(void) { return g_msg; }

/* The message is formatted into a temporary first: an argument may be attn_last_error()
 * itself (a caller prefixing context to the message of a call that failed). */
int attn__error(int status, const char *fmt, ...) {
    char tmp[ATTN__MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(g_msg, tmp, sizeof g_msg);
    g_count++;
    return status;
}

unsigned long attn__error_count(void) { return g_count; }

int attn__mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return attn__error(ATTN_EINVAL, "size overflow (%zu x %zu)", a, b);
    *out = a * b;
    return ATTN_OK;
}
