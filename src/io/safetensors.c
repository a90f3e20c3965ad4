/* safetensors files: reading (whole file into memory, header validated as the reference
 * implementation does) and writing (float32 tensors, byte-identical to the reference writer's
 * layout). Not here: memory-mapping, lazy loading, writing dtypes other than F32.
 *
 * Layout: u64 little-endian N | N bytes of JSON header (UTF-8, space-padded) | data buffer.
 * Header: {"__metadata__": {str: str}, name: {"dtype": D, "shape": [..], "data_offsets": [b, e]}}
 * with offsets relative to the data buffer. The reference (huggingface/safetensors) requires
 * the tensors, sorted by offset, to tile the buffer exactly; so do we. */
#include <inttypes.h>
#include <stdlib.h>

#include "io/atomic.h"
#include "io/common.h"
#include "io/json.h"

#define ST_MAX_HEADER 100000000ull /* the reference implementation's limit */

/* Every dtype of the format, with its element size; `dt` is the attn_dtype it loads as, or -1
 * for those recognised but not loadable. */
static const struct {
    const char *name;
    size_t size;
    int dt;
} st_dtypes[] = {
    {"BOOL", 1, ATTN_BOOL}, {"U8", 1, ATTN_U8},       {"I8", 1, -1},   {"F8_E5M2", 1, -1},
    {"F8_E4M3", 1, -1},     {"I16", 2, -1},           {"U16", 2, -1},  {"F16", 2, ATTN_F16},
    {"BF16", 2, ATTN_BF16}, {"I32", 4, ATTN_I32},     {"U32", 4, -1},  {"F32", 4, ATTN_F32},
    {"F64", 8, ATTN_F64},   {"I64", 8, ATTN_I64},     {"U64", 8, -1},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

typedef struct {
    char *name;
    int dtype;     /* index into st_dtypes */
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
    uint64_t numel, begin, end;
} st_tensor;

typedef struct {
    const char *key;
    int index; /* tensor index, or metadata index */
} st_key;

struct attn_st {
    char *path;
    unsigned char *file; /* the whole file */
    const unsigned char *data; /* the data buffer inside it */
    size_t data_len;
    int n;
    st_tensor *t;        /* sorted by data offsets */
    st_key *by_name;     /* n, sorted by name */
    int nmeta;
    char **meta_key, **meta_val; /* sorted by key */
};

/* Messages about a tensor print its name safely (it comes from the file). */
#define NAMEBUF 96
static const char *pname(char *buf, const char *name) { return attn__printable(buf, NAMEBUF, name, strlen(name)); }

/* "(4, 8)", "(4,)", "()" as Python prints a shape. */
static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, ndim == 1 ? ",)" : ")");
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const st_key *)a)->key, ((const st_key *)b)->key);
}

static int cmp_offsets(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

void attn_st_free(attn_st *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) attn_free(st->t[i].name);
    for (int i = 0; i < st->nmeta; i++) {
        attn_free(st->meta_key[i]);
        attn_free(st->meta_val[i]);
    }
    attn_free(st->t);
    attn_free(st->by_name);
    attn_free(st->meta_key);
    attn_free(st->meta_val);
    attn_free(st->file);
    attn_free(st->path);
    attn_free(st);
}

/* Reads one tensor's description (a JSON object) into *t; the name is taken from the member. */
static int parse_tensor(attn_st *st, attn__json *m, st_tensor *t) {
    char nb[NAMEBUF];
    const char *path = st->path;
    if (m->type != ATTN__JSON_OBJECT)
        return attn__error(ATTN_EFORMAT, "%s: entry '%s' of the header is not an object", path, pname(nb, m->key));
    attn__json *dtype = NULL, *shape = NULL, *offs = NULL;
    for (attn__json *f = m->child; f; f = f->next) {
        attn__json **slot = !strcmp(f->key, "dtype") ? &dtype
                          : !strcmp(f->key, "shape") ? &shape
                          : !strcmp(f->key, "data_offsets") ? &offs : NULL;
        if (!slot) continue; /* unknown fields are ignored, as the reference does */
        if (*slot)
            return attn__error(ATTN_EFORMAT, "%s: tensor '%s' has a duplicate \"%s\" field", path, pname(nb, m->key), f->key);
        *slot = f;
    }
    if (!dtype || !shape || !offs)
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s' lacks \"%s\"", path, pname(nb, m->key),
                           !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (dtype->type != ATTN__JSON_STRING)
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s': dtype is not a string", path, pname(nb, m->key));
    t->dtype = -1;
    for (int i = 0; i < ST_NDTYPES; i++)
        if (!strcmp(dtype->str, st_dtypes[i].name)) t->dtype = i;
    if (t->dtype < 0) {
        char db[32];
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s' has unknown dtype '%s'", path, pname(nb, m->key),
                           attn__printable(db, sizeof db, dtype->str, dtype->len));
    }
    if (shape->type != ATTN__JSON_ARRAY)
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s': shape is not an array", path, pname(nb, m->key));
    if (shape->len > ATTN_MAX_DIMS)
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s' has %zu dimensions (at most %d are supported)", path,
                           pname(nb, m->key), shape->len, ATTN_MAX_DIMS);
    t->ndim = (int)shape->len;
    t->numel = 1;
    int overflow = 0;
    int k = 0;
    for (attn__json *d = shape->child; d; d = d->next, k++) {
        if (d->type != ATTN__JSON_NUMBER || !d->is_uint || d->u > (uint64_t)INT64_MAX)
            return attn__error(ATTN_EFORMAT, "%s: tensor '%s': shape holds something other than a non-negative integer",
                               path, pname(nb, m->key));
        t->shape[k] = (int64_t)d->u;
        if (d->u && t->numel > UINT64_MAX / d->u) overflow = 1;
        t->numel *= d->u;
    }
    if (overflow || t->numel > UINT64_MAX / st_dtypes[t->dtype].size)
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s': shape too large", path, pname(nb, m->key));
    if (offs->type != ATTN__JSON_ARRAY || offs->len != 2 || offs->child->type != ATTN__JSON_NUMBER ||
        !offs->child->is_uint || offs->child->next->type != ATTN__JSON_NUMBER || !offs->child->next->is_uint)
        return attn__error(ATTN_EFORMAT, "%s: tensor '%s': data_offsets is not a pair of non-negative integers", path,
                           pname(nb, m->key));
    t->begin = offs->child->u;
    t->end = offs->child->next->u;
    t->name = m->key; /* taken over from the JSON tree */
    m->key = NULL;
    return ATTN_OK;
}

static int parse_metadata(attn_st *st, attn__json *m) {
    if (m->type == ATTN__JSON_NULL) return ATTN_OK;
    if (m->type != ATTN__JSON_OBJECT)
        return attn__error(ATTN_EFORMAT, "%s: \"__metadata__\" is not an object", st->path);
    if (m->len > 0) {
        st->meta_key = attn_calloc(m->len, sizeof *st->meta_key);
        st->meta_val = attn_calloc(m->len, sizeof *st->meta_val);
        if (!st->meta_key || !st->meta_val) return ATTN_ENOMEM;
    }
    st_key *keys = attn_calloc(m->len ? m->len : 1, sizeof *keys);
    if (!keys) return ATTN_ENOMEM;
    int i = 0;
    for (attn__json *e = m->child; e; e = e->next, i++) {
        char nb[NAMEBUF];
        if (e->type != ATTN__JSON_STRING) {
            attn_free(keys);
            return attn__error(ATTN_EFORMAT, "%s: metadata value of '%s' is not a string", st->path, pname(nb, e->key));
        }
        keys[i].key = e->key;
        keys[i].index = i;
    }
    qsort(keys, m->len, sizeof *keys, cmp_key);
    for (size_t j = 1; j < m->len; j++)
        if (!strcmp(keys[j - 1].key, keys[j].key)) {
            char nb[NAMEBUF];
            int rc = attn__error(ATTN_EFORMAT, "%s: duplicate metadata key '%s'", st->path, pname(nb, keys[j].key));
            attn_free(keys);
            return rc;
        }
    /* Take the strings over in key order. */
    attn__json **nodes = attn_calloc(m->len ? m->len : 1, sizeof *nodes);
    if (!nodes) {
        attn_free(keys);
        return ATTN_ENOMEM;
    }
    i = 0;
    for (attn__json *e = m->child; e; e = e->next) nodes[i++] = e;
    for (size_t j = 0; j < m->len; j++) {
        attn__json *e = nodes[keys[j].index];
        st->meta_key[j] = e->key;
        st->meta_val[j] = e->str;
        e->key = e->str = NULL;
        st->nmeta++;
    }
    attn_free(nodes);
    attn_free(keys);
    return ATTN_OK;
}

/* Checks the tensors, sorted by offsets, tile the data buffer exactly. */
static int check_layout(attn_st *st) {
    char nb[NAMEBUF], sb[160];
    uint64_t pos = 0;
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_offsets);
    for (int i = 0; i < st->n; i++) {
        const st_tensor *t = &st->t[i];
        if (t->begin > t->end || t->end > st->data_len)
            return attn__error(ATTN_EFORMAT,
                               "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are outside the data buffer (%zu bytes; truncated?)",
                               st->path, pname(nb, t->name), t->begin, t->end, st->data_len);
        uint64_t need = t->numel * st_dtypes[t->dtype].size;
        if (t->end - t->begin != need) {
            format_shape(sb, sizeof sb, t->ndim, t->shape);
            return attn__error(ATTN_EFORMAT,
                               "%s: tensor '%s': dtype %s and shape %s need %" PRIu64 " bytes, but data_offsets [%" PRIu64
                               ", %" PRIu64 "] hold %" PRIu64,
                               st->path, pname(nb, t->name), st_dtypes[t->dtype].name, sb, need, t->begin, t->end,
                               t->end - t->begin);
        }
        if (t->begin != pos)
            return attn__error(ATTN_EFORMAT,
                               "%s: tensor '%s': data starts at byte %" PRIu64 " of the buffer, expected %" PRIu64
                               " (tensors must be contiguous, without gaps or overlap)",
                               st->path, pname(nb, t->name), t->begin, pos);
        pos = t->end;
    }
    if (pos != st->data_len)
        return attn__error(ATTN_EFORMAT, "%s: the tensors end at byte %" PRIu64 " of the data buffer, but it has %zu bytes",
                           st->path, pos, st->data_len);
    return ATTN_OK;
}

static int build(attn_st *st, size_t header_len) {
    char err[128];
    attn__json *root = NULL;
    int rc = attn__json_parse((const char *)st->file + 8, header_len, &root, err, sizeof err);
    if (rc == ATTN_ENOMEM) return rc;
    if (rc) return attn__error(ATTN_EFORMAT, "%s: invalid JSON header: %s", st->path, err);
    if (root->type != ATTN__JSON_OBJECT) {
        attn__json_free(root);
        return attn__error(ATTN_EFORMAT, "%s: the header is not a JSON object", st->path);
    }
    size_t ntensors = 0, nmeta = 0;
    for (attn__json *m = root->child; m; m = m->next) {
        if (!strcmp(m->key, "__metadata__")) nmeta++;
        else ntensors++;
    }
    if (nmeta > 1) {
        attn__json_free(root);
        return attn__error(ATTN_EFORMAT, "%s: duplicate \"__metadata__\" entry", st->path);
    }
    if (ntensors > (size_t)INT32_MAX) {
        attn__json_free(root);
        return attn__error(ATTN_EFORMAT, "%s: too many tensors", st->path);
    }
    st->t = attn_calloc(ntensors ? ntensors : 1, sizeof *st->t);
    st->by_name = attn_calloc(ntensors ? ntensors : 1, sizeof *st->by_name);
    if (!st->t || !st->by_name) {
        attn__json_free(root);
        return ATTN_ENOMEM;
    }
    for (attn__json *m = root->child; m && rc == ATTN_OK; m = m->next) {
        if (!strcmp(m->key, "__metadata__")) {
            rc = parse_metadata(st, m);
        } else {
            rc = parse_tensor(st, m, &st->t[st->n]);
            if (rc == ATTN_OK) st->n++;
        }
    }
    attn__json_free(root);
    if (rc) return rc;
    rc = check_layout(st);
    if (rc) return rc;
    for (int i = 0; i < st->n; i++) st->by_name[i] = (st_key){st->t[i].name, i};
    qsort(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_key);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->by_name[i - 1].key, st->by_name[i].key)) {
            char nb[NAMEBUF];
            return attn__error(ATTN_EFORMAT, "%s: duplicate tensor name '%s'", st->path, pname(nb, st->by_name[i].key));
        }
    return ATTN_OK;
}

int attn_st_open(const char *path, attn_st **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_st_open: NULL output");
    *out = NULL;
    FILE *f;
    size_t size;
    int rc = attn__file_open(path, &f, &size);
    if (rc) return rc;
    unsigned char head[8];
    if (size < 8) {
        fclose(f);
        return attn__error(ATTN_EFORMAT, "%s: too short for a safetensors file (%zu bytes)", path, size);
    }
    rc = attn__file_read(f, path, head, 8);
    if (rc) {
        fclose(f);
        return rc;
    }
    uint64_t n = attn__le64(head);
    if (n > ST_MAX_HEADER || n > size - 8) {
        fclose(f);
        if (n > ST_MAX_HEADER)
            return attn__error(ATTN_EFORMAT, "%s: header length %" PRIu64 " exceeds the 100 MB limit (not a safetensors file?)",
                               path, n);
        return attn__error(ATTN_EFORMAT, "%s: header length %" PRIu64 " is larger than the file allows (%zu bytes; truncated?)",
                           path, n, size);
    }
    attn_st *st = attn_calloc(1, sizeof *st);
    size_t plen = strlen(path);
    if (!st || !(st->path = attn_malloc(plen + 1)) || !(st->file = attn_malloc(size))) {
        fclose(f);
        attn_st_free(st);
        return ATTN_ENOMEM;
    }
    memcpy(st->path, path, plen + 1);
    memcpy(st->file, head, 8);
    rc = attn__file_read(f, path, st->file + 8, size - 8);
    fclose(f);
    if (rc == ATTN_OK) {
        st->data = st->file + 8 + n;
        st->data_len = size - 8 - (size_t)n;
        rc = build(st, (size_t)n);
    }
    if (rc) {
        attn_st_free(st);
        return rc;
    }
    *out = st;
    return ATTN_OK;
}

int attn_st_count(const attn_st *st) { return st ? st->n : 0; }

const char *attn_st_name(const attn_st *st, int i) { return st && i >= 0 && i < st->n ? st->t[i].name : NULL; }

const char *attn_st_dtype(const attn_st *st, int i) {
    return st && i >= 0 && i < st->n ? st_dtypes[st->t[i].dtype].name : NULL;
}

int attn_st_shape(const attn_st *st, int i, int64_t *shape) {
    if (!st || i < 0 || i >= st->n) return -1;
    if (shape) memcpy(shape, st->t[i].shape, (size_t)st->t[i].ndim * sizeof *shape);
    return st->t[i].ndim;
}

int attn_st_find(const attn_st *st, const char *name) {
    if (!st || !name || st->n == 0) return -1;
    st_key k = {name, 0};
    const st_key *hit = bsearch(&k, st->by_name, (size_t)st->n, sizeof k, cmp_key);
    return hit ? hit->index : -1;
}

const char *attn_st_metadata(const attn_st *st, const char *key) {
    if (!st || !key) return NULL;
    int lo = 0, hi = st->nmeta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(key, st->meta_key[mid]);
        if (c == 0) return st->meta_val[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

/* The tensor called name, checked convertible to float; NULL with an error set. */
static const st_tensor *lookup(const attn_st *st, const char *name, int *rc) {
    char nb[NAMEBUF];
    if (!st || !name) {
        *rc = attn__error(ATTN_EINVAL, "attn_st: NULL file or name");
        return NULL;
    }
    int i = attn_st_find(st, name);
    if (i < 0) {
        *rc = attn__error(ATTN_ENOTFOUND, "tensor '%s' not found in %s", pname(nb, name), st->path);
        return NULL;
    }
    const st_tensor *t = &st->t[i];
    if (st_dtypes[t->dtype].dt < 0) {
        *rc = attn__error(ATTN_EDTYPE, "tensor '%s' in %s has dtype %s, which cannot be read as float32", pname(nb, name),
                          st->path, st_dtypes[t->dtype].name);
        return NULL;
    }
    return t;
}

/* Converts the tensor's little-endian data to float32 in dst (numel floats). */
static void to_f32(const attn_st *st, const st_tensor *t, float *dst) {
    const unsigned char *p = st->data + t->begin;
    size_t n = (size_t)t->numel;
    switch ((attn_dtype)st_dtypes[t->dtype].dt) {
    case ATTN_F32:
        if (attn__host_le()) {
            memcpy(dst, p, n * 4);
        } else {
            for (size_t i = 0; i < n; i++) {
                uint32_t b = attn__le32(p + 4 * i);
                memcpy(&dst[i], &b, 4);
            }
        }
        break;
    case ATTN_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t b = attn__le64(p + 8 * i);
            double d;
            memcpy(&d, &b, 8);
            dst[i] = (float)d;
        }
        break;
    case ATTN_F16: for (size_t i = 0; i < n; i++) dst[i] = attn__f16_to_f32(attn__le16(p + 2 * i)); break;
    case ATTN_BF16: for (size_t i = 0; i < n; i++) dst[i] = attn__bf16_to_f32(attn__le16(p + 2 * i)); break;
    case ATTN_I32: for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)attn__le32(p + 4 * i); break;
    case ATTN_I64: for (size_t i = 0; i < n; i++) dst[i] = (float)(int64_t)attn__le64(p + 8 * i); break;
    case ATTN_BOOL: for (size_t i = 0; i < n; i++) dst[i] = p[i] ? 1.0f : 0.0f; break;
    case ATTN_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)p[i]; break;
    }
}

int attn_st_get_f32(const attn_st *st, const char *name, attn_array *out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_st_get_f32: NULL output");
    memset(out, 0, sizeof *out);
    int rc = ATTN_OK;
    const st_tensor *t = lookup(st, name, &rc);
    if (!t) return rc;
    /* numel <= the data bytes (checked at open), so this is at most 4 times the file size. */
    size_t nbytes;
    if (attn__mul_size((size_t)t->numel, sizeof(float), &nbytes)) return ATTN_ENOMEM;
    float *dst = attn_malloc(nbytes);
    if (!dst) return ATTN_ENOMEM;
    to_f32(st, t, dst);
    out->dtype = ATTN_F32;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->data = dst;
    out->nbytes = nbytes;
    return ATTN_OK;
}

int attn_st_read_f32(const attn_st *st, const char *name, int ndim, const int64_t *shape, float *dst) {
    int rc = ATTN_OK;
    const st_tensor *t = lookup(st, name, &rc);
    if (!t) return rc;
    if (ndim < 0 || ndim > ATTN_MAX_DIMS || (ndim > 0 && !shape))
        return attn__error(ATTN_EINVAL, "attn_st_read_f32: invalid expected shape (ndim %d)", ndim);
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same) {
        char nb[NAMEBUF], have[160], want[160];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return attn__error(ATTN_ESHAPE, "tensor '%s' in %s has shape %s, expected %s", pname(nb, name), st->path, have,
                           want);
    }
    if (!dst && t->numel) return attn__error(ATTN_EINVAL, "attn_st_read_f32: NULL destination");
    to_f32(st, t, dst);
    return ATTN_OK;
}

/* ---- Writer ---------------------------------------------------------------------------- */

typedef struct {
    char *name;
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
    size_t numel;
    float *data;
} wt;

struct attn_st_writer {
    int n, cap, nmeta, metacap;
    wt *t;
    char **mkey, **mval;
};

int attn_st_writer_new(attn_st_writer **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_st_writer_new: NULL argument");
    if (!(*out = attn_calloc(1, sizeof(attn_st_writer)))) return attn__error(ATTN_ENOMEM, "attn_st_writer_new: out of memory");
    return ATTN_OK;
}

void attn_st_writer_free(attn_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        attn_free(w->t[i].name);
        attn_free(w->t[i].data);
    }
    for (int i = 0; i < w->nmeta; i++) {
        attn_free(w->mkey[i]);
        attn_free(w->mval[i]);
    }
    attn_free(w->t);
    attn_free(w->mkey);
    attn_free(w->mval);
    attn_free(w);
}

/* Grows *arr (elements of `size` bytes, *cap of them) to hold at least need. */
static int grow(void **arr, int *cap, int need, size_t size) {
    if (need <= *cap) return ATTN_OK;
    int nc = *cap ? *cap * 2 : 8;
    if (nc < need) nc = need;
    void *p = attn_calloc((size_t)nc, size);
    if (!p) return ATTN_ENOMEM;
    if (*arr) memcpy(p, *arr, (size_t)*cap * size);
    attn_free(*arr);
    *arr = p;
    *cap = nc;
    return ATTN_OK;
}

int attn_st_writer_add_f32(attn_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data) {
    char nb[NAMEBUF];
    if (!w || !name) return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: NULL writer or name");
    if (!attn__utf8_valid(name, strlen(name)))
        return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: name '%s' is not valid UTF-8", pname(nb, name));
    if (!strcmp(name, "__metadata__"))
        return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: the name \"__metadata__\" is reserved");
    if (ndim < 0 || ndim > ATTN_MAX_DIMS || (ndim > 0 && !shape))
        return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: tensor '%s': ndim %d not in [0, %d]", pname(nb, name),
                           ndim, ATTN_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX)
            return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: tensor '%s': negative dimension", pname(nb, name));
        if (attn__mul_size(numel, (size_t)shape[i], &numel)) return ATTN_EINVAL;
    }
    size_t nbytes;
    if (attn__mul_size(numel, sizeof(float), &nbytes)) return ATTN_EINVAL;
    if (numel && !data) return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: tensor '%s': NULL data", pname(nb, name));
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return attn__error(ATTN_EINVAL, "attn_st_writer_add_f32: duplicate tensor name '%s'", pname(nb, name));
    if (grow((void **)&w->t, &w->cap, w->n + 1, sizeof *w->t)) return ATTN_ENOMEM;
    wt *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = attn__strdup(name);
    t->data = attn_malloc(nbytes);
    if (!t->name || !t->data) {
        attn_free(t->name);
        attn_free(t->data);
        t->name = NULL;
        t->data = NULL;
        return ATTN_ENOMEM;
    }
    if (nbytes) memcpy(t->data, data, nbytes);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    w->n++;
    return ATTN_OK;
}

int attn_st_writer_set_metadata(attn_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return attn__error(ATTN_EINVAL, "attn_st_writer_set_metadata: NULL argument");
    if (!attn__utf8_valid(key, strlen(key)) || !attn__utf8_valid(value, strlen(value)))
        return attn__error(ATTN_EINVAL, "attn_st_writer_set_metadata: key or value is not valid UTF-8");
    char *v = attn__strdup(value);
    if (!v) return ATTN_ENOMEM;
    for (int i = 0; i < w->nmeta; i++)
        if (!strcmp(w->mkey[i], key)) {
            attn_free(w->mval[i]);
            w->mval[i] = v;
            return ATTN_OK;
        }
    int kc = w->metacap, vc = w->metacap;
    char *k = attn__strdup(key);
    if (!k || grow((void **)&w->mkey, &kc, w->nmeta + 1, sizeof *w->mkey) ||
        grow((void **)&w->mval, &vc, w->nmeta + 1, sizeof *w->mval)) {
        /* Both arrays grow together; keep the smaller capacity if only one grew. */
        w->metacap = kc < vc ? kc : vc;
        attn_free(k);
        attn_free(v);
        return ATTN_ENOMEM;
    }
    w->metacap = kc;
    w->mkey[w->nmeta] = k;
    w->mval[w->nmeta] = v;
    w->nmeta++;
    return ATTN_OK;
}

static int cmp_wt_ptr(const void *a, const void *b) {
    return strcmp((*(const wt *const *)a)->name, (*(const wt *const *)b)->name);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* Writes n floats little-endian. */
static int write_f32(FILE *f, const float *x, size_t n) {
    if (attn__host_le()) return fwrite(x, sizeof(float), n, f) == n ? 0 : -1;
    unsigned char buf[4096];
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m + 4 <= sizeof buf; i++, m += 4) {
            uint32_t b;
            memcpy(&b, &x[i], 4);
            for (int k = 0; k < 4; k++) buf[m + k] = (unsigned char)(b >> (8 * k));
        }
        if (fwrite(buf, 1, m, f) != m) return -1;
    }
    return 0;
}

int attn_st_writer_save(attn_st_writer *w, const char *path) {
    if (!w || !path || !*path) return attn__error(ATTN_EINVAL, "attn_st_writer_save: NULL writer or empty path");
    int rc = ATTN_OK;
    attn__sb h = {0};
    const wt **order = attn_calloc(w->n ? (size_t)w->n : 1, sizeof *order);
    char ***mk = attn_calloc(w->nmeta ? (size_t)w->nmeta : 1, sizeof *mk);
    if (!order || !mk) {
        attn_free(order);
        attn_free(mk);
        return ATTN_ENOMEM;
    }
    for (int i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, (size_t)w->n, sizeof *order, cmp_wt_ptr);
    for (int i = 0; i < w->nmeta; i++) mk[i] = &w->mkey[i];
    qsort(mk, (size_t)w->nmeta, sizeof *mk, cmp_str_ptr);

    attn__jw j;
    attn__jw_init(&j, &h, 0, 0);
    attn__jw_object(&j, 0);
    if (w->nmeta) {
        attn__jw_key(&j, "__metadata__");
        attn__jw_object(&j, 0);
        for (int i = 0; i < w->nmeta; i++) {
            size_t k = (size_t)(mk[i] - w->mkey);
            attn__jw_key(&j, w->mkey[k]);
            attn__jw_str(&j, w->mval[k]);
        }
        attn__jw_end(&j, '}');
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wt *t = order[i];
        uint64_t end = off + (uint64_t)t->numel * 4;
        attn__jw_key(&j, t->name);
        attn__jw_object(&j, 0);
        attn__jw_key(&j, "dtype");
        attn__jw_str(&j, "F32");
        attn__jw_key(&j, "shape");
        attn__jw_array(&j, 0);
        for (int d = 0; d < t->ndim; d++) attn__jw_i64(&j, t->shape[d]);
        attn__jw_end(&j, ']');
        attn__jw_key(&j, "data_offsets");
        attn__jw_array(&j, 0);
        attn__jw_u64(&j, off);
        attn__jw_u64(&j, end);
        attn__jw_end(&j, ']');
        attn__jw_end(&j, '}');
        off = end;
    }
    attn__jw_end(&j, '}');
    while (!h.failed && h.len % 8) attn__sb_put(&h, " ", 1);
    attn_free(mk);
    if (h.failed) {
        attn_free(order);
        attn__sb_free(&h);
        return ATTN_ENOMEM;
    }

    char tmp[ATTN__TMP_PATH_MAX];
    FILE *f = attn__atomic_open(path, tmp, sizeof tmp);
    if (!f) {
        rc = ATTN_EIO;
    } else {
        unsigned char len8[8];
        attn__put_le64(len8, h.len);
        int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(h.buf, 1, h.len, f) != h.len;
        for (int i = 0; i < w->n && !bad; i++) bad = write_f32(f, order[i]->data, order[i]->numel) != 0;
        if (bad) {
            rc = attn__atomic_fail(f, tmp, path);
        } else {
            rc = attn__atomic_commit(f, tmp, path);
        }
    }
    attn_free(order);
    attn__sb_free(&h);
    return rc;
}
