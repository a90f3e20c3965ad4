/* Images for the visual-attention models (attn/vision_data.h): IDX files read through zlib
 * (gzip or plain: gzread reads both), Fashion-MNIST's splits, and the task variants of Mnih
 * et al. 2014 rendered from a seed. Not here: the models (src/models/vision.c) and pictures.
 * Letters: N images, H x W pixels, S the canvas side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/vision_data.h"
#include "core/internal.h"

#ifdef ATTN_HAVE_ZLIB
#include <zlib.h>
#endif

void attn_images_free(attn_images *im) {
    if (!im) return;
    attn_free(im->pixels), attn_free(im->labels);
    memset(im, 0, sizeof *im);
}

#ifndef ATTN_HAVE_ZLIB
int attn_idx_read(const char *path, int want_ndim, int dims[4], uint8_t **data) {
    (void)want_ndim, (void)dims;
    if (data) *data = NULL;
    return attn__error(ATTN_EIO, "%s: reading IDX files needs zlib, which this build of attn lacks (Debian: zlib1g-dev)",
                       path ? path : "(null)");
}
#else
/* Reads exactly n bytes; 0 if the file ended first (or the gzip stream is broken). */
static int read_all(gzFile f, void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0) return 0;
        p += got, n -= (size_t)got;
    }
    return 1;
}

int attn_idx_read(const char *path, int want_ndim, int dims[4], uint8_t **data) {
    if (data) *data = NULL;
    if (!path || !dims || !data || want_ndim < 1 || want_ndim > 4) return attn__error(ATTN_EINVAL, "attn_idx_read: bad argument");
    gzFile f = gzopen(path, "rb");
    if (!f) return attn__error(ATTN_EIO, "%s: cannot open", path);
    unsigned char head[4 + 16];
    int st = ATTN_OK;
    size_t total = 1;
    if (!read_all(f, head, 4)) st = attn__error(ATTN_EFORMAT, "%s: not an IDX file (shorter than its 4-byte magic)", path);
    else if (head[0] || head[1] || head[2] != 0x08 || head[3] != want_ndim)
        st = attn__error(ATTN_EFORMAT, "%s: bad IDX magic %02x %02x %02x %02x (want 00 00 08 %02x: unsigned bytes, %d dimensions)", path,
                         head[0], head[1], head[2], head[3], want_ndim, want_ndim);
    else if (!read_all(f, head + 4, 4 * (size_t)want_ndim))
        st = attn__error(ATTN_EFORMAT, "%s: truncated IDX header (%d sizes expected)", path, want_ndim);
    for (int d = 0; d < want_ndim && !st; d++) {
        const unsigned char *p = head + 4 + 4 * d;
        uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (v == 0 || v > 0x7fffffffu || (total *= v) > 0x7fffffffu)
            st = attn__error(ATTN_EFORMAT, "%s: IDX size %u of dimension %d is zero or too large", path, v, d);
        else dims[d] = (int)v;
    }
    /* The buffer grows (doubling, from 1 MiB) as the data comes, so that a short file whose
     * header promises 2 GiB is refused without allocating them. */
    uint8_t *buf = NULL;
    for (size_t have = 0, cap = 0; !st && have < total;) {
        size_t grow = cap ? cap : (size_t)1 << 20;
        size_t ncap = total - cap < grow ? total : cap + grow;
        uint8_t *nbuf = attn_malloc(ncap);
        if (!nbuf) {
            st = attn__error(ATTN_ENOMEM, "%s: out of memory for %zu bytes", path, ncap);
            break;
        }
        if (have) memcpy(nbuf, buf, have);
        attn_free(buf);
        buf = nbuf, cap = ncap;
        if (!read_all(f, buf + have, cap - have))
            st = attn__error(ATTN_EFORMAT, "%s: truncated: the header promises %zu bytes of data, the file ends before", path, total);
        have = cap;
    }
    unsigned char extra;
    if (!st && gzread(f, &extra, 1) != 0)
        st = attn__error(ATTN_EFORMAT, "%s: bytes after the %zu the header promises", path, total);
    gzclose(f);
    if (st) {
        attn_free(buf);
        return st;
    }
    *data = buf;
    return ATTN_OK;
}
#endif

int attn_images_read_idx(const char *images_path, const char *labels_path, int n_classes, attn_images *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!images_path || !labels_path || !out || n_classes < 1 || n_classes > 256)
        return attn__error(ATTN_EINVAL, "attn_images_read_idx: bad argument");
    int di[4], dl[4];
    uint8_t *px = NULL, *lab = NULL;
    int st = attn_idx_read(images_path, 3, di, &px);
    if (!st) st = attn_idx_read(labels_path, 1, dl, &lab);
    if (!st && dl[0] != di[0])
        st = attn__error(ATTN_EFORMAT, "%s holds %d labels, %s %d images", labels_path, dl[0], images_path, di[0]);
    for (int i = 0; !st && i < dl[0]; i++)
        if (lab[i] >= n_classes) st = attn__error(ATTN_EFORMAT, "%s: label %d of image %d is not below %d", labels_path, lab[i], i, n_classes);
    if (st) {
        attn_free(px), attn_free(lab);
        return st;
    }
    out->n = di[0], out->h = di[1], out->w = di[2], out->pixels = px, out->labels = lab;
    return ATTN_OK;
}

/* A copy of images [i0, i0 + n) of src. */
static int slice(const attn_images *src, int i0, int n, attn_images *out) {
    size_t px = (size_t)src->h * src->w;
    out->pixels = attn_malloc((size_t)(n ? n : 1) * px), out->labels = attn_malloc((size_t)(n ? n : 1));
    if (!out->pixels || !out->labels) {
        attn_images_free(out);
        return attn__error(ATTN_ENOMEM, "Fashion-MNIST: out of memory");
    }
    out->n = n, out->h = src->h, out->w = src->w;
    memcpy(out->pixels, src->pixels + (size_t)i0 * px, (size_t)n * px);
    memcpy(out->labels, src->labels + i0, (size_t)n);
    return ATTN_OK;
}

static int load_pair(const char *dir, const char *images, const char *labels, int want_n, attn_images *out) {
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/%s", dir, images);
    snprintf(lp, sizeof lp, "%s/%s", dir, labels);
    FILE *f = fopen(ip, "rb");
    if (!f)
        return attn__error(ATTN_EIO,
                           "%s: not found. Fashion-MNIST comes from Debian's package dataset-fashion-mnist "
                           "(sudo apt-get install dataset-fashion-mnist, or tools/install-experiment-deps.sh); "
                           "ATTN_FASHION_DIR names another folder",
                           ip);
    fclose(f);
    int st = attn_images_read_idx(ip, lp, 10, out);
    if (!st && (out->n != want_n || out->h != 28 || out->w != 28)) {
        st = attn__error(ATTN_EFORMAT, "%s: %d images of %dx%d, Fashion-MNIST has %d of 28x28", ip, out->n, out->h, out->w, want_n);
        attn_images_free(out);
    }
    return st;
}

int attn_fashion_load(const char *dir, attn_images *train, attn_images *valid, attn_images *test) {
    attn_images *outs[3] = {train, valid, test};
    for (int i = 0; i < 3; i++)
        if (outs[i]) memset(outs[i], 0, sizeof *outs[i]);
    if (!dir) dir = getenv("ATTN_FASHION_DIR");
    if (!dir || !*dir) dir = ATTN_FASHION_DEFAULT_DIR;
    int st = ATTN_OK;
    if (train || valid) {
        attn_images all;
        if ((st = load_pair(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000, &all))) return st;
        int nt = all.n - ATTN_FASHION_VALID;
        if (train) st = slice(&all, 0, nt, train);
        if (!st && valid) st = slice(&all, nt, ATTN_FASHION_VALID, valid);
        attn_images_free(&all);
    }
    if (!st && test) st = load_pair(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000, test);
    if (st)
        for (int i = 0; i < 3; i++) attn_images_free(outs[i]);
    return st;
}

static const char *const CLASSES[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

const char *attn_fashion_class_name(int c) { return c >= 0 && c < 10 ? CLASSES[c] : "?"; }

/* ---- Task variants ---------------------------------------------------------------------- */

static const char *const TASKS[4] = {"centred28", "translated60", "cluttered60", "cluttered100"};

const char *attn_vision_task_name(attn_vision_task t) { return (unsigned)t < 4 ? TASKS[t] : "?"; }

int attn_vision_task_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, TASKS[i])) return i;
    return -1;
}

int attn_vision_task_size(attn_vision_task t) { return t == ATTN_TASK_CENTRED28 ? 28 : t == ATTN_TASK_CLUTTERED100 ? 100 : 60; }
int attn_vision_task_distractors(attn_vision_task t) { return t == ATTN_TASK_CLUTTERED60 ? 4 : t == ATTN_TASK_CLUTTERED100 ? 8 : 0; }

uint64_t attn_vision_split_seed(uint64_t seed, int split) { return attn_seed_mix(seed, 0x7669730000u + (uint64_t)split); }

/* A uniform integer in [0, n) (n <= 2^16 here: the modulo bias is below 2^-16). */
static int below(attn_rng *r, int n) { return (int)(attn_rng_u32(r) % (uint32_t)n); }

int attn_vision_render(const attn_images *src, attn_vision_task task, uint64_t seed, int i, float *out,
                       attn_vision_place *place) {
    if (!src || !out || (unsigned)task > ATTN_TASK_CLUTTERED100 || i < 0 || i >= src->n || src->h != 28 || src->w != 28 ||
        !src->pixels)
        return attn__error(ATTN_EINVAL, "attn_vision_render: bad argument (image %d of %d, 28x28 sources)", i, src ? src->n : 0);
    enum { P = 8 }; /* distractor side */
    int S = attn_vision_task_size(task), H = src->h, W = src->w;
    attn_rng r;
    attn_rng_seed(&r, attn_seed_mix(seed, (uint64_t)i));
    int r0 = 0, c0 = 0;
    if (S > H) r0 = below(&r, S - H + 1), c0 = below(&r, S - W + 1);
    memset(out, 0, (size_t)S * S * sizeof(float));
    const uint8_t *im = src->pixels + (size_t)i * H * W;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) out[(size_t)(r0 + y) * S + c0 + x] = im[y * W + x] / 255.0f;
    for (int d = 0; d < attn_vision_task_distractors(task); d++) {
        int j = src->n > 1 ? below(&r, src->n - 1) : 0;
        j += j >= i && src->n > 1; /* another image */
        int pr = below(&r, H - P + 1), pc = below(&r, W - P + 1), qr = below(&r, S - P + 1), qc = below(&r, S - P + 1);
        const uint8_t *o = src->pixels + (size_t)j * H * W;
        for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++) {
                float v = o[(pr + y) * W + pc + x] / 255.0f, *p = out + (size_t)(qr + y) * S + qc + x;
                *p = v > *p ? v : *p;
            }
    }
    if (place) place->row = r0, place->col = c0;
    return ATTN_OK;
}
