/* Owned arrays (attn_array), dtype conversions, and the helpers shared by the file readers:
 * byte order, half floats, printable excerpts. Not here: any file format. */
#define _POSIX_C_SOURCE 200809L
#include "io/common.h"
#include "io/atomic.h"


size_t attn_dtype_size(attn_dtype dt) {
    switch (dt) {
    case ATTN_F32: case ATTN_I32: return 4;
    case ATTN_F64: case ATTN_I64: return 8;
    case ATTN_BOOL: case ATTN_U8: return 1;
    case ATTN_F16: case ATTN_BF16: return 2;
    }
    return 0;
}

const char *attn_dtype_name(attn_dtype dt) {
    switch (dt) {
    case ATTN_F32: return "f32";
    case ATTN_F64: return "f64";
    case ATTN_BOOL: return "bool";
    case ATTN_I32: return "i32";
    case ATTN_I64: return "i64";
    case ATTN_U8: return "u8";
    case ATTN_F16: return "f16";
    case ATTN_BF16: return "bf16";
    }
    return "?";
}

void attn_array_free(attn_array *a) {
    if (!a) return;
    attn_free(a->data);
    memset(a, 0, sizeof *a);
}

int64_t attn_array_numel(const attn_array *a) {
    if (!a) return 0;
    int64_t n = 1;
    for (int i = 0; i < a->ndim && i < ATTN_MAX_DIMS; i++) n *= a->shape[i];
    return n;
}

float attn__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        /* Zero or subnormal: man * 2^-24, exact in float. */
        float f = (float)man * 5.9604644775390625e-8f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13); /* inf or NaN (payload kept) */
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void attn__byteswap(void *data, size_t n, size_t size) {
    unsigned char *p = data;
    if (size < 2) return;
    for (size_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

int attn_array_to_f32(attn_array *a) {
    if (!a) return attn__error(ATTN_EINVAL, "attn_array_to_f32: NULL array");
    if (a->dtype == ATTN_F32) return ATTN_OK;
    size_t es = attn_dtype_size(a->dtype);
    if (es == 0) return attn__error(ATTN_EDTYPE, "attn_array_to_f32: unknown dtype %d", (int)a->dtype);
    if (a->nbytes % es != 0 || (a->nbytes && !a->data))
        return attn__error(ATTN_EINVAL, "attn_array_to_f32: %zu bytes is not a whole number of %s elements",
                           a->nbytes, attn_dtype_name(a->dtype));
    size_t n = a->nbytes / es, nbytes;
    if (attn__mul_size(n, sizeof(float), &nbytes)) return ATTN_ENOMEM;
    float *dst = attn_malloc(nbytes);
    if (!dst) return ATTN_ENOMEM;
    const void *src = a->data;
    switch (a->dtype) {
    case ATTN_F64: for (size_t i = 0; i < n; i++) dst[i] = (float)((const double *)src)[i]; break;
    case ATTN_I32: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)src)[i]; break;
    case ATTN_I64: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int64_t *)src)[i]; break;
    case ATTN_BOOL:
    case ATTN_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)((const uint8_t *)src)[i]; break;
    case ATTN_F16: for (size_t i = 0; i < n; i++) dst[i] = attn__f16_to_f32(((const uint16_t *)src)[i]); break;
    case ATTN_BF16: for (size_t i = 0; i < n; i++) dst[i] = attn__bf16_to_f32(((const uint16_t *)src)[i]); break;
    case ATTN_F32: break;
    }
    attn_free(a->data);
    a->data = dst;
    a->nbytes = nbytes;
    a->dtype = ATTN_F32;
    return ATTN_OK;
}

char *attn__printable(char *dst, size_t cap, const char *src, size_t n) {
    size_t room = cap - 1, i = 0;
    int cut = n > room;
    if (cut) room -= 3;
    for (; i < n && i < room; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (cut) memcpy(dst + i, "...", 3), i += 3;
    dst[i] = '\0';
    return dst;
}

int attn__blank(const char *s, size_t n) {
    size_t pos = 0;
    uint32_t c;
    while (attn_utf8_next(s, n, &pos, &c))
        if (!attn_is_space(c) && c != 0x200B && c != 0xFEFF) return 0;
    return 1;
}

/* A uniform integer in [0, m), m >= 1, without modulo bias: rejection of the low values
 * that would make the last partial block (as in OpenBSD's arc4random_uniform). */
static uint32_t rng_below(attn_rng *r, uint32_t m) {
    uint32_t threshold = (uint32_t)(-m) % m; /* 2^32 mod m */
    for (;;) {
        uint32_t x = attn_rng_u32(r);
        if (x >= threshold) return x % m;
    }
}

void attn__shuffle(int *a, int n, attn_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

char *attn__skip_report(char *buf, size_t cap, const char *noun, int skipped, int n_reported, const int *line,
                        const char *const *why) {
    if (!buf || cap == 0) return buf;
    buf[0] = '\0';
    if (skipped <= 0) return buf;
    size_t len = 0;
    int w = snprintf(buf, cap, "%d malformed %s%s skipped (", skipped, noun, skipped == 1 ? "" : "s");
    for (int i = 0; w >= 0 && i < n_reported; i++) {
        len += (size_t)w;
        if (len >= cap) break;
        w = snprintf(buf + len, cap - len, "%sline %d: %s", i ? "; " : "", line[i], why[i]);
    }
    if (w >= 0) len += (size_t)w;
    if (len < cap) snprintf(buf + len, cap - len, "%s)", skipped > n_reported ? "; ..." : "");
    return buf;
}

int attn__split_path(char *path, const char *dir, int part) {
    static const char *const names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    int w = snprintf(path, ATTN__TMP_PATH_MAX, "%s/%s", dir, names[part]);
    if (w < 0 || (size_t)w >= ATTN__TMP_PATH_MAX - 16) return attn__error(ATTN_EINVAL, "%s: directory name too long", dir);
    return ATTN_OK;
}
