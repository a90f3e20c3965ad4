/* Tests of the images of the visual-attention models (attn/vision_data.h):
 *  - IDX files crafted here, plain and gzip-compressed: a good one reads back its sizes and
 *    bytes; a bad magic, a wrong number of dimensions, a zero size, a truncated header, a
 *    truncated body (plain and gzip), bytes after the body, and labels that do not match the
 *    images each fail with ATTN_EFORMAT and a message naming the file;
 *  - a missing Fashion-MNIST folder is ATTN_EIO with a message that says how to install it;
 *  - the task variants: the same (seed, index) gives the same pixels, another seed others;
 *    the object's 28x28 pixels are where `place` says (centred: the image itself); the
 *    canvas outside the object and the distractors is blank; a cluttered image holds pixels
 *    outside the object (its distractors); the canvas sizes;
 *  - with "real" and the Debian package installed: the three splits' sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "testutil.h"

#ifdef ATTN_HAVE_ZLIB
#include <zlib.h>
#endif

/* An IDX file of bytes: magic 00 00 08 ndim, the sizes big-endian, then n bytes of body. */
static size_t idx_bytes(unsigned char *buf, int ndim, const int *dims, const unsigned char *body, size_t n) {
    size_t k = 0;
    buf[k++] = 0, buf[k++] = 0, buf[k++] = 8, buf[k++] = (unsigned char)ndim;
    for (int d = 0; d < ndim; d++)
        for (int s = 24; s >= 0; s -= 8) buf[k++] = (unsigned char)(dims[d] >> s);
    memcpy(buf + k, body, n);
    return k + n;
}

static void test_idx(void) {
    unsigned char body[3 * 4 * 5], labels[3] = {2, 9, 0}, buf[4096];
    for (int i = 0; i < 60; i++) body[i] = (unsigned char)(i * 7);
    char good[512], lab[512], lab2[512], gz[512]; /* tu_path's buffers rotate */
    snprintf(good, sizeof good, "%s", tu_path("good.idx")), snprintf(lab, sizeof lab, "%s", tu_path("lab.idx"));
    snprintf(lab2, sizeof lab2, "%s", tu_path("lab2.idx")), snprintf(gz, sizeof gz, "%s", tu_path("good.idx.gz"));
    tu_write_file(good, buf, idx_bytes(buf, 3, (int[]){3, 4, 5}, body, 60));
    tu_write_file(lab, buf, idx_bytes(buf, 1, (int[]){3}, labels, 3));
    attn_images im = {0};
    int st = attn_images_read_idx(good, lab, 10, &im);
    if (st == ATTN_EIO && tu_err_has("zlib")) {
        printf("SKIP-part: built without zlib (%s)\n", attn_last_error());
        return;
    }
    CHECK(st == ATTN_OK && im.n == 3 && im.h == 4 && im.w == 5 && !memcmp(im.pixels, body, 60) && !memcmp(im.labels, labels, 3),
          "good file: %s", attn_last_error());
    attn_images_free(&im);
    /* Each bad file, and a word its message must contain. */
    struct {
        const char *what, *word;
        size_t n;
    } bad[7];
    unsigned char files[7][256];
    size_t k = idx_bytes(files[0], 3, (int[]){3, 4, 5}, body, 60);
    files[0][2] = 9, bad[0].what = "bad magic", bad[0].word = "magic", bad[0].n = k;
    bad[1].n = idx_bytes(files[1], 2, (int[]){3, 20}, body, 60), bad[1].what = "2 dimensions", bad[1].word = "magic";
    bad[2].n = idx_bytes(files[2], 3, (int[]){3, 0, 5}, body, 0), bad[2].what = "zero size", bad[2].word = "zero";
    bad[3].n = 9, memcpy(files[3], files[0], 9), files[3][2] = 8, bad[3].what = "truncated header", bad[3].word = "header";
    bad[4].n = idx_bytes(files[4], 3, (int[]){3, 4, 5}, body, 59), bad[4].what = "truncated body", bad[4].word = "truncated";
    bad[5].n = idx_bytes(files[5], 3, (int[]){3, 4, 5}, body, 60) + 1, bad[5].what = "extra byte", bad[5].word = "after";
    bad[6].n = 2, bad[6].what = "2 bytes", bad[6].word = "magic";
    for (int i = 0; i < 7; i++) {
        const char *p = tu_path("bad.idx");
        tu_write_file(p, files[i], bad[i].n);
        st = attn_images_read_idx(p, lab, 10, &im);
        CHECK(st == ATTN_EFORMAT && tu_err_has(p) && tu_err_has(bad[i].word) && !im.pixels, "%s: status %d, message %s", bad[i].what,
              st, attn_last_error());
    }
    /* Labels that do not fit the images, or a class out of range. */
    tu_write_file(lab2, buf, idx_bytes(buf, 1, (int[]){2}, labels, 2));
    CHECK(attn_images_read_idx(good, lab2, 10, &im) == ATTN_EFORMAT && tu_err_has("labels"), "count mismatch: %s", attn_last_error());
    CHECK(attn_images_read_idx(good, lab, 5, &im) == ATTN_EFORMAT && tu_err_has("label 9"), "label out of range: %s", attn_last_error());
    CHECK(attn_images_read_idx(tu_path("none.idx"), lab, 10, &im) == ATTN_EIO && tu_err_has("none.idx"), "missing: %s",
          attn_last_error());
#ifdef ATTN_HAVE_ZLIB
    /* gzip: the good file compressed reads the same; the compressed stream cut short fails. */
    gzFile f = gzopen(gz, "wb");
    size_t n = idx_bytes(buf, 3, (int[]){3, 4, 5}, body, 60);
    CHECK(f && gzwrite(f, buf, (unsigned)n) == (int)n && gzclose(f) == Z_OK, "cannot write %s", gz);
    CHECK(attn_images_read_idx(gz, lab, 10, &im) == ATTN_OK && !memcmp(im.pixels, body, 60), "gzip: %s", attn_last_error());
    attn_images_free(&im);
    size_t zn = 0;
    unsigned char *z = tu_read_file(gz, &zn);
    if (z && zn > 20) {
        tu_write_file(gz, z, zn - 12); /* the deflate end and the trailer lost */
        CHECK(attn_images_read_idx(gz, lab, 10, &im) == ATTN_EFORMAT && tu_err_has(gz), "truncated gzip: %s", attn_last_error());
    }
    free(z);
#endif
    /* Bodies over the reader's first 1 MiB read back whole (its buffer grows as the data
     * comes); one byte short is truncated; a 16-byte file whose header promises 2^31 - 1 bytes
     * is truncated too (and read without allocating them). */
    {
        int big[3] = {3, 700, 701};
        size_t nb = (size_t)3 * 700 * 701;
        unsigned char *bb = malloc(nb + 64), *bodyb = malloc(nb);
        for (size_t i = 0; i < nb; i++) bodyb[i] = (unsigned char)(i * 2654435761u >> 13);
        char bigp[512];
        snprintf(bigp, sizeof bigp, "%s", tu_path("big.idx"));
        size_t m = idx_bytes(bb, 3, big, bodyb, nb);
        int dims[4];
        uint8_t *got = NULL;
        tu_write_file(bigp, bb, m);
        CHECK(attn_idx_read(bigp, 3, dims, &got) == ATTN_OK && dims[0] == 3 && dims[1] == 700 && dims[2] == 701 && got &&
                  !memcmp(got, bodyb, nb),
              "a 1.5 MB body: %s", attn_last_error());
        attn_free(got), got = NULL;
        tu_write_file(bigp, bb, m - 1);
        CHECK(attn_idx_read(bigp, 3, dims, &got) == ATTN_EFORMAT && tu_err_has("truncated") && !got, "1.5 MB less a byte: %s",
              attn_last_error());
        tu_write_file(bigp, bb, idx_bytes(bb, 3, (int[]){1, 46340, 46340}, bodyb, 0));
        CHECK(attn_idx_read(bigp, 3, dims, &got) == ATTN_EFORMAT && tu_err_has("truncated") && !got, "2 GiB promised: %s",
              attn_last_error());
        free(bb), free(bodyb);
    }
    CHECK(attn_fashion_load(tu_path("nowhere"), &im, NULL, NULL) == ATTN_EIO && tu_err_has("dataset-fashion-mnist"), "missing data: %s",
          attn_last_error());
}

/* Source images whose pixels are all > 0 inside (so the object's footprint is known). */
static void make_sources(attn_images *s, int n) {
    s->n = n, s->h = s->w = 28;
    s->pixels = malloc((size_t)n * 784), s->labels = malloc((size_t)n);
    for (int i = 0; i < n * 784; i++) s->pixels[i] = (unsigned char)(1 + (i * 37) % 255);
    for (int i = 0; i < n; i++) s->labels[i] = (unsigned char)(i % 10);
}

static void test_tasks(void) {
    attn_images src;
    make_sources(&src, 20);
    CHECK(attn_vision_task_parse("cluttered60") == ATTN_TASK_CLUTTERED60 && attn_vision_task_parse("x") == -1, "task names");
    static float a[100 * 100], b[100 * 100];
    for (int t = 0; t < 4; t++) {
        int S = attn_vision_task_size(t), D = attn_vision_task_distractors(t);
        CHECK(S == (t == 0 ? 28 : t == 3 ? 100 : 60) && D == (t == 2 ? 4 : t == 3 ? 8 : 0), "%s: size %d, %d distractors",
              attn_vision_task_name(t), S, D);
        int moved = 0;
        for (int i = 0; i < 20; i++) {
            attn_vision_place p, q;
            CHECK(attn_vision_render(&src, t, 5, i, a, &p) == ATTN_OK && attn_vision_render(&src, t, 5, i, b, &q) == ATTN_OK,
                  "render: %s", attn_last_error());
            CHECK(!memcmp(a, b, (size_t)S * S * sizeof(float)) && p.row == q.row && p.col == q.col, "%s %d: not deterministic",
                  attn_vision_task_name(t), i);
            CHECK(p.row >= 0 && p.col >= 0 && p.row + 28 <= S && p.col + 28 <= S, "place (%d, %d) off the canvas", p.row, p.col);
            int obj = 1, outside = 0;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    float v = a[y * S + x];
                    int in = y >= p.row && y < p.row + 28 && x >= p.col && x < p.col + 28;
                    if (in) obj &= v >= src.pixels[(size_t)i * 784 + (y - p.row) * 28 + x - p.col] / 255.0f;
                    else outside += v > 0;
                }
            CHECK(obj, "%s %d: the object is not at its place", attn_vision_task_name(t), i);
            /* No distractor: a blank canvas around the object; distractors: some ink outside it
             * (an 8x8 patch may fall inside the object, so not every time), at most D * 64 pixels. */
            if (!D) CHECK(outside == 0, "%s %d: %d pixels outside the object", attn_vision_task_name(t), i, outside);
            else CHECK(outside <= D * 64, "%s %d: %d pixels outside the object", attn_vision_task_name(t), i, outside);
            moved += D && outside > 0;
            CHECK(attn_vision_render(&src, t, 6, i, b, NULL) == ATTN_OK, "render");
            if (t) CHECK(memcmp(a, b, (size_t)S * S * sizeof(float)) != 0, "%s %d: seed 6 gives seed 5's image", attn_vision_task_name(t), i);
        }
        if (D) CHECK(moved >= 15, "%s: distractors outside the object in only %d of 20 images", attn_vision_task_name(t), moved);
    }
    CHECK(attn_vision_render(&src, 0, 5, 20, a, NULL) == ATTN_EINVAL, "image 20 of 20 rendered");
    attn_images_free(&src);
}

static int test_real(void) {
    attn_images tr, va, te;
    int st = attn_fashion_load(NULL, &tr, &va, &te);
    if (st == ATTN_EIO) {
        printf("SKIP: %s\n", attn_last_error());
        return TU_SKIP;
    }
    CHECK(st == ATTN_OK && tr.n == 55000 && va.n == 5000 && te.n == 10000, "Fashion-MNIST: %s", attn_last_error());
    int counts[10] = {0};
    for (int i = 0; i < te.n; i++) counts[te.labels[i]]++;
    CHECK(counts[0] == 1000 && counts[9] == 1000, "test classes: %d %d", counts[0], counts[9]);
    attn_images_free(&tr), attn_images_free(&va), attn_images_free(&te);
    return tu_summary("test_vision_data real");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "real")) return test_real();
    if (!tu_scratch_new("test_vision_data")) return 1;
    test_idx();
    test_tasks();
    tu_scratch_remove();
    return tu_summary("test_vision_data");
}
