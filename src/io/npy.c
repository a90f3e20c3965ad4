/* numpy .npy files, format versions 1.0, 2.0 and 3.0 (numpy/lib/format.py, NEP 1):
 *
 *   "\x93NUMPY" | major | minor | header length (u16 LE for 1.0, u32 LE for 2.0 and 3.0)
 *   | header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *     padded with spaces and a final '\n' | the data, C order.
 *
 * The header is parsed strictly as the subset of Python literal syntax numpy writes (strings
 * without escapes, True/False, tuples of non-negative ints); anything else is refused. Not
 * here: structured or object dtypes, Fortran order (unless it coincides with C order),
 * pickled arrays, .npz archives. */
#include <inttypes.h>

#include "io/atomic.h"
#include "io/common.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
#define NPY_MAX_HEADER (1u << 20) /* numpy itself refuses headers above 10000 bytes by default */

typedef struct {
    attn_dtype dtype;
    int big_endian; /* of the data in the file */
    int fortran;
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
} npy_header;

/* ---- Header parsing -------------------------------------------------------------------- */

typedef struct {
    const char *path;
    const char *s;
    size_t n, pos;
} lexer;

static int hdr_fail(const lexer *lx, const char *what) {
    return attn__error(ATTN_EFORMAT, "%s: invalid .npy header: %s at byte %zu of the header", lx->path, what, lx->pos);
}

static void skip_ws(lexer *lx) {
    while (lx->pos < lx->n) {
        char c = lx->s[lx->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        lx->pos++;
    }
}

static int peek(const lexer *lx) { return lx->pos < lx->n ? (unsigned char)lx->s[lx->pos] : -1; }

/* A Python string literal without escapes: 'abc' or "abc". Points *s into the header. */
static int py_string(lexer *lx, const char **s, size_t *len) {
    int q = peek(lx);
    if (q != '\'' && q != '"') return hdr_fail(lx, "expected a string");
    size_t start = ++lx->pos;
    while (lx->pos < lx->n && lx->s[lx->pos] != q) {
        char c = lx->s[lx->pos];
        if (c == '\\' || c == '\n' || c == '\r' || c == '\0') return hdr_fail(lx, "unsupported character in a string");
        lx->pos++;
    }
    if (lx->pos >= lx->n) return hdr_fail(lx, "unterminated string");
    *s = lx->s + start;
    *len = lx->pos - start;
    lx->pos++;
    return ATTN_OK;
}

static int py_bool(lexer *lx, int *v) {
    if (lx->n - lx->pos >= 4 && !memcmp(lx->s + lx->pos, "True", 4)) *v = 1, lx->pos += 4;
    else if (lx->n - lx->pos >= 5 && !memcmp(lx->s + lx->pos, "False", 5)) *v = 0, lx->pos += 5;
    else return hdr_fail(lx, "expected True or False");
    return ATTN_OK;
}

/* A tuple of non-negative decimal ints: (), (3,), (2, 3), (2, 3,). A Python 2 'L' suffix is
 * accepted (old numpy wrote it). (3) is an int, not a tuple, and is refused as numpy does. */
static int py_shape(lexer *lx, npy_header *h) {
    if (peek(lx) != '(') return hdr_fail(lx, "expected a tuple for 'shape'");
    lx->pos++;
    int n = 0, trailing_comma = 0;
    for (;;) {
        skip_ws(lx);
        if (peek(lx) == ')') break;
        int c = peek(lx);
        if (c < '0' || c > '9') return hdr_fail(lx, "expected a non-negative integer in 'shape'");
        if (c == '0' && lx->pos + 1 < lx->n && lx->s[lx->pos + 1] >= '0' && lx->s[lx->pos + 1] <= '9')
            return hdr_fail(lx, "integer with a leading zero in 'shape'");
        int64_t v = 0;
        while ((c = peek(lx)) >= '0' && c <= '9') {
            if (v > (INT64_MAX - (c - '0')) / 10) return hdr_fail(lx, "dimension too large in 'shape'");
            v = v * 10 + (c - '0');
            lx->pos++;
        }
        if (peek(lx) == 'L' || peek(lx) == 'l') lx->pos++;
        if (n == ATTN_MAX_DIMS)
            return attn__error(ATTN_EFORMAT, "%s: arrays of more than %d dimensions are not supported", lx->path,
                               ATTN_MAX_DIMS);
        h->shape[n++] = v;
        skip_ws(lx);
        trailing_comma = 0;
        if (peek(lx) == ',') {
            lx->pos++;
            trailing_comma = 1;
            continue;
        }
        if (peek(lx) != ')') return hdr_fail(lx, "expected ',' or ')' in 'shape'");
        break;
    }
    if (n == 1 && !trailing_comma) return hdr_fail(lx, "'shape' is an int, not a tuple");
    lx->pos++;
    h->ndim = n;
    return ATTN_OK;
}

/* '<f4', '>i8', '|b1', '=f2', ... */
static int parse_descr(const lexer *lx, const char *s, size_t len, npy_header *h) {
    static const struct {
        char kind;
        const char *size;
        attn_dtype dt;
    } map[] = {{'f', "4", ATTN_F32}, {'f', "8", ATTN_F64}, {'f', "2", ATTN_F16}, {'i', "4", ATTN_I32},
               {'i', "8", ATTN_I64}, {'u', "1", ATTN_U8},  {'b', "1", ATTN_BOOL}};
    char show[40];
    attn__printable(show, sizeof show, s, len);
    if (len >= 3 && strchr("<>=|", s[0]) && s[0] != '\0') {
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            if (s[1] != map[i].kind || len - 2 != strlen(map[i].size) || memcmp(s + 2, map[i].size, len - 2)) continue;
            h->dtype = map[i].dt;
            h->big_endian = s[0] == '>' || ((s[0] == '=' || s[0] == '|') && !attn__host_le());
            return ATTN_OK;
        }
    }
    return attn__error(ATTN_EDTYPE, "%s: unsupported .npy dtype '%s' (supported: f2 f4 f8 i4 i8 u1 b1)", lx->path, show);
}

static int parse_header(const char *path, const char *s, size_t n, npy_header *h) {
    lexer lx = {path, s, n, 0};
    int have_descr = 0, have_fortran = 0, have_shape = 0, rc;
    const char *descr = NULL;
    size_t descr_len = 0;
    memset(h, 0, sizeof *h);
    skip_ws(&lx);
    if (peek(&lx) != '{') return hdr_fail(&lx, "expected '{'");
    lx.pos++;
    for (;;) {
        skip_ws(&lx);
        if (peek(&lx) == '}') break;
        const char *key;
        size_t klen;
        if ((rc = py_string(&lx, &key, &klen))) return rc;
        skip_ws(&lx);
        if (peek(&lx) != ':') return hdr_fail(&lx, "expected ':'");
        lx.pos++;
        skip_ws(&lx);
        int *seen;
        if (klen == 5 && !memcmp(key, "descr", 5)) {
            seen = &have_descr;
            if (peek(&lx) == '[')
                return attn__error(ATTN_EDTYPE, "%s: structured .npy dtypes are not supported", path);
            if ((rc = py_string(&lx, &descr, &descr_len))) return rc;
        } else if (klen == 13 && !memcmp(key, "fortran_order", 13)) {
            seen = &have_fortran;
            if ((rc = py_bool(&lx, &h->fortran))) return rc;
        } else if (klen == 5 && !memcmp(key, "shape", 5)) {
            seen = &have_shape;
            if ((rc = py_shape(&lx, h))) return rc;
        } else {
            char show[40];
            return attn__error(ATTN_EFORMAT, "%s: invalid .npy header: unexpected key '%s'", path,
                               attn__printable(show, sizeof show, key, klen));
        }
        if (*seen) return hdr_fail(&lx, "duplicate key");
        *seen = 1;
        skip_ws(&lx);
        if (peek(&lx) == ',') {
            lx.pos++;
            continue;
        }
        if (peek(&lx) != '}') return hdr_fail(&lx, "expected ',' or '}'");
        break;
    }
    lx.pos++;
    skip_ws(&lx);
    if (lx.pos != lx.n) return hdr_fail(&lx, "unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return attn__error(ATTN_EFORMAT, "%s: invalid .npy header: missing key '%s'", path,
                           !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    /* The dtype is interpreted only once the whole header parsed: syntax errors come first. */
    if ((rc = parse_descr(&lx, descr, descr_len, h))) return rc;
    if (h->fortran) {
        int big = 0; /* dims > 1: with at most one, Fortran and C order are the same layout */
        for (int i = 0; i < h->ndim; i++) big += h->shape[i] > 1;
        if (big > 1)
            return attn__error(ATTN_EFORMAT,
                               "%s: Fortran-order (column-major) arrays are not supported; save it in C order "
                               "(numpy.ascontiguousarray)", path);
    }
    return ATTN_OK;
}

/* ---- Loading --------------------------------------------------------------------------- */

static int load(const char *path, FILE *f, size_t size, attn_array *out) {
    unsigned char pre[12];
    if (size < 10)
        return attn__error(ATTN_EFORMAT, "%s: too short for a .npy file (%zu bytes)", path, size);
    int rc = attn__file_read(f, path, pre, 10);
    if (rc) return rc;
    if (memcmp(pre, npy_magic, 6) != 0) return attn__error(ATTN_EFORMAT, "%s: not a .npy file (bad magic)", path);
    int major = pre[6], minor = pre[7];
    if (!((major == 1 || major == 2 || major == 3) && minor == 0))
        return attn__error(ATTN_EFORMAT, "%s: unsupported .npy format version %d.%d", path, major, minor);
    size_t start = 10, hlen;
    if (major == 1) {
        hlen = attn__le16(pre + 8);
    } else {
        if (size < 12) return attn__error(ATTN_EFORMAT, "%s: truncated .npy header (%zu bytes)", path, size);
        if ((rc = attn__file_read(f, path, pre + 10, 2))) return rc;
        hlen = attn__le32(pre + 8);
        start = 12;
    }
    if (hlen > size - start)
        return attn__error(ATTN_EFORMAT, "%s: header length %zu is larger than the file allows (%zu bytes)", path, hlen,
                           size);
    if (hlen > NPY_MAX_HEADER) return attn__error(ATTN_EFORMAT, "%s: header length %zu is implausibly large", path, hlen);
    char *hdr = attn_malloc(hlen + 1);
    if (!hdr) return ATTN_ENOMEM;
    npy_header h;
    rc = attn__file_read(f, path, hdr, hlen);
    if (rc == ATTN_OK) rc = parse_header(path, hdr, hlen, &h);
    attn_free(hdr);
    if (rc) return rc;

    size_t es = attn_dtype_size(h.dtype), numel = 1, nbytes, avail = size - start - hlen;
    int overflow = 0;
    for (int i = 0; i < h.ndim; i++) overflow |= attn__mul_size(numel, (size_t)h.shape[i], &numel) != 0;
    if (overflow || attn__mul_size(numel, es, &nbytes))
        return attn__error(ATTN_EFORMAT, "%s: shape too large", path);
    if (nbytes != avail) {
        char sb[200];
        size_t o = (size_t)snprintf(sb, sizeof sb, "(");
        for (int i = 0; i < h.ndim && o < sizeof sb; i++)
            o += (size_t)snprintf(sb + o, sizeof sb - o, "%s%" PRId64, i ? ", " : "", h.shape[i]);
        if (o < sizeof sb) snprintf(sb + o, sizeof sb - o, h.ndim == 1 ? ",)" : ")");
        return attn__error(ATTN_EFORMAT, "%s: %s data of shape %s needs %zu bytes but the file holds %zu (%s)", path,
                           attn_dtype_name(h.dtype), sb, nbytes, avail, nbytes > avail ? "truncated" : "trailing bytes");
    }
    void *data = attn_malloc(nbytes);
    if (!data) return ATTN_ENOMEM;
    if ((rc = attn__file_read(f, path, data, nbytes))) {
        attn_free(data);
        return rc;
    }
    if (h.big_endian == attn__host_le()) attn__byteswap(data, numel, es);
    if (h.dtype == ATTN_BOOL) {
        unsigned char *b = data;
        for (size_t i = 0; i < numel; i++) b[i] = b[i] != 0;
    }
    out->dtype = h.dtype;
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof out->shape);
    out->data = data;
    out->nbytes = nbytes;
    return ATTN_OK;
}

int attn_npy_load(const char *path, attn_array *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_npy_load: NULL output");
    memset(out, 0, sizeof *out);
    FILE *f;
    size_t size;
    int rc = attn__file_open(path, &f, &size);
    if (rc) return rc;
    rc = load(path, f, size, out);
    fclose(f);
    return rc;
}

int attn_npy_load_f32(const char *path, attn_array *out) {
    int rc = attn_npy_load(path, out);
    if (rc) return rc;
    rc = attn_array_to_f32(out);
    if (rc) attn_array_free(out);
    return rc;
}

/* ---- Saving ---------------------------------------------------------------------------- */

int attn_npy_save(const char *path, attn_dtype dt, int ndim, const int64_t *shape, const void *data) {
    static const char *descr[] = {[ATTN_F32] = "f4", [ATTN_F64] = "f8", [ATTN_BOOL] = "b1", [ATTN_I32] = "i4",
                                  [ATTN_I64] = "i8", [ATTN_U8] = "u1",  [ATTN_F16] = "f2"};
    if (!path || !*path) return attn__error(ATTN_EINVAL, "attn_npy_save: empty path");
    size_t es = attn_dtype_size(dt);
    if (es == 0) return attn__error(ATTN_EDTYPE, "attn_npy_save: unknown dtype %d", (int)dt);
    if (dt == ATTN_BF16) return attn__error(ATTN_EDTYPE, "%s: .npy has no bfloat16 dtype (convert to f32 first)", path);
    if (ndim < 0 || ndim > ATTN_MAX_DIMS || (ndim > 0 && !shape))
        return attn__error(ATTN_EINVAL, "attn_npy_save: ndim %d not in [0, %d]", ndim, ATTN_MAX_DIMS);
    size_t numel = 1, nbytes;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return attn__error(ATTN_EINVAL, "attn_npy_save: negative dimension %" PRId64, shape[i]);
        if (attn__mul_size(numel, (size_t)shape[i], &numel)) return ATTN_EINVAL;
    }
    if (attn__mul_size(numel, es, &nbytes)) return ATTN_EINVAL;
    if (nbytes && !data) return attn__error(ATTN_EINVAL, "attn_npy_save: NULL data");

    /* The header exactly as numpy.save writes it (numpy/lib/format.py, _write_array_header):
     * keys sorted, repr() values, 21 - len(repr(shape[0])) spare spaces for growing the first
     * axis, then spaces and '\n' so that magic + length + header is a multiple of 64. */
    char hdr[512], sb[256];
    size_t o = (size_t)snprintf(sb, sizeof sb, "(");
    for (int i = 0; i < ndim; i++) o += (size_t)snprintf(sb + o, sizeof sb - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    snprintf(sb + o, sizeof sb - o, ndim == 1 ? ",)" : ")");
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%c%s', 'fortran_order': False, 'shape': %s, }",
                       es == 1 ? '|' : attn__host_le() ? '<' : '>', descr[dt], sb);
    if (ndim > 0) {
        char d0[32];
        int grow = 21 - snprintf(d0, sizeof d0, "%" PRId64, shape[0]);
        while (grow-- > 0) hdr[len++] = ' ';
    }
    size_t hlen = (size_t)len + 1, pad = 64 - (10 + hlen) % 64;
    memset(hdr + len, ' ', pad);
    hdr[len + pad] = '\n';
    hlen += pad;
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);

    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) return ATTN_EIO;
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(hdr, 1, hlen, f) != hlen || (nbytes && fwrite(data, 1, nbytes, f) != nbytes)) {
        return attn__atomic_fail(f, tmp, path);
    }
    return attn__atomic_commit(f, tmp, path);
}
