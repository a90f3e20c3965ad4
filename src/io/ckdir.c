/* The checkpoint directory format (io/ckdir.h): a complete checkpoint staged in DIR/.ck-new,
 * committed by one rename to DIR/.ck-commit, then installed file by file into DIR; on open,
 * every listed file verified. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn/io.h"
#include "core/file.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/atomic.h"
#include "io/ckdir.h"

#define FORMAT "attn-checkpoint"
#define VERSION 1
#define MAX_CONFIG (64u << 20)
#define STAGING ".ck-new"
#define PENDING ".ck-commit"

uint64_t attn__fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

char *attn__ck_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = attn_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

char *attn__ck_file_path(const char *dir, const char *name) {
    char *pending = attn__ck_join(dir, PENDING), *p = pending ? attn__ck_join(pending, name) : NULL;
    attn_free(pending);
    if (p && access(p, F_OK) != 0) attn_free(p), p = attn__ck_join(dir, name);
    return p;
}

/* Size and checksum of a file, streamed. */
static int file_sum(const char *path, uint64_t *bytes, uint64_t *sum) {
    FILE *f;
    size_t n;
    int st = attn__file_open(path, &f, &n);
    if (st) return st;
    unsigned char buf[1 << 16];
    uint64_t h = ATTN__FNV_INIT, total = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        h = attn__fnv1a(h, buf, k);
        total += k;
    }
    int err = ferror(f);
    fclose(f);
    if (err) return attn__error(ATTN_EIO, "%s: read error", path);
    *bytes = total;
    *sum = h;
    return ATTN_OK;
}

static int valid_name(const char *s) {
    if (!s || !*s || *s == '.' || strlen(s) > 200) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int reserved(const char *s) { return !strcmp(s, ATTN__CK_CONFIG) || !strcmp(s, ATTN__CK_MODEL) || !strcmp(s, ATTN__CK_OPTIM); }

/* ---- Write ------------------------------------------------------------------------------- */

static int check_files(int n_files, const attn__ck_file *files) {
    for (int i = 0; i < n_files; i++) {
        const attn__ck_file *f = &files[i];
        if (!valid_name(f->name) || (f->extra ? reserved(f->name) : strcmp(f->name, ATTN__CK_MODEL) && strcmp(f->name, ATTN__CK_OPTIM)))
            return attn__error(ATTN_EINVAL,
                               "attn_checkpoint_save: bad extra file name '%s' (letters, digits, '.', '_', '-'; not a checkpoint file)",
                               f->name ? f->name : "(null)");
        if (!f->write && !f->path && f->size && !f->data)
            return attn__error(ATTN_EINVAL, "attn_checkpoint_save: extra file '%s' has neither a path nor data", f->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(f->name, files[j].name)) return attn__error(ATTN_EINVAL, "attn_checkpoint_save: duplicate extra file '%s'", f->name);
    }
    return ATTN_OK;
}

static int write_one(const attn__ck_file *f, const char *path) {
    if (f->write) return f->write(f->ctx, path);
    if (!f->path) return attn_write_file_atomic(path, f->data ? f->data : "", f->size);
    char *data;
    size_t n;
    int st = attn__read_file(f->path, SIZE_MAX / 2, &data, &n);
    if (!st) st = attn_write_file_atomic(path, data, n);
    attn_free(data);
    return st;
}

/* ---- Commit ------------------------------------------------------------------------------ */

/* Removes the entries of dir that are plain files (a staging directory left by a killed write),
 * then dir itself. */
static void remove_staging(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        char *p = e->d_name[0] == '.' ? NULL : attn__ck_join(dir, e->d_name);
        if (p) unlink(p);
        attn_free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Removes dir's "NAME.tmp.XXXXXX" files, left by a write that was killed before its rename. */
static void remove_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *t = strstr(e->d_name, ".tmp.");
        char *p = t && t != e->d_name && strlen(t) == 11 ? attn__ck_join(dir, e->d_name) : NULL;
        if (p) unlink(p);
        attn_free(p);
    }
    closedir(d);
}

/* Installs a committed checkpoint: moves the files of dir/.ck-commit into dir, config.json
 * last, then removes the emptied .ck-commit. Idempotent, so that a write killed half-way
 * through is finished by the next write or open (a file already moved is skipped). */
static int install(const char *dir) {
    char *pending = attn__ck_join(dir, PENDING);
    DIR *d = pending ? opendir(pending) : NULL;
    int st = ATTN_OK;
    if (!pending) st = attn__error(ATTN_ENOMEM, "out of memory");
    else if (!d && errno != ENOENT) st = attn__error(ATTN_EIO, "%s: cannot read: %s", pending, strerror(errno));
    for (int pass = 0; d && pass < 2 && !st; pass++) {
        rewinddir(d);
        for (struct dirent *e; !st && (e = readdir(d));) {
            if (e->d_name[0] == '.' || (strcmp(e->d_name, ATTN__CK_CONFIG) == 0) != pass) continue;
            char *from = attn__ck_join(pending, e->d_name), *to = attn__ck_join(dir, e->d_name);
            if (!from || !to) st = attn__error(ATTN_ENOMEM, "out of memory");
            else if (rename(from, to) != 0 && errno != ENOENT)
                st = attn__error(ATTN_EIO, "%s: cannot move it into the checkpoint: %s", from, strerror(errno));
            attn_free(from), attn_free(to);
        }
    }
    if (d) {
        closedir(d);
        attn__sync_dir(dir);
        if (!st && rmdir(pending) != 0 && errno != ENOENT && errno != ENOTEMPTY)
            st = attn__error(ATTN_EIO, "%s: cannot remove: %s", pending, strerror(errno));
    }
    attn_free(pending);
    return st;
}

int attn__ck_write(const char *dir, int n_sections, const char *const *keys, const char *const *values, int n_files,
                   const attn__ck_file *files) {
    if (!dir || !*dir || n_sections < 1 || !keys || !values || strcmp(keys[0], "model") || n_files < 0 || (n_files && !files))
        return attn__error(ATTN_EINVAL, "attn_checkpoint_save: NULL or empty argument");
    {
        attn__json *v = NULL;
        char err[128];
        int st = attn__json_parse(values[0], strlen(values[0]), &v, err, sizeof err);
        int obj = st == ATTN_OK && v->type == ATTN__JSON_OBJECT;
        attn__json_free(v);
        if (st == ATTN_ENOMEM) return attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
        if (!obj) return attn__error(ATTN_EINVAL, "attn_checkpoint_save: the model config is not a JSON object%s%s", st ? ": " : "", st ? err : "");
    }
    int st = check_files(n_files, files);
    if (st) return st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return attn__error(ATTN_EIO, "%s: cannot create the directory: %s", dir, strerror(errno));
    struct stat sdir;
    if (stat(dir, &sdir) != 0 || !S_ISDIR(sdir.st_mode)) return attn__error(ATTN_EIO, "%s: not a directory", dir);
    /* 0. Finish a commit that a killed run left half-installed; clear what it left behind. */
    if ((st = install(dir))) return st;
    char *staging = attn__ck_join(dir, STAGING), *pending = attn__ck_join(dir, PENDING);
    if (staging) remove_staging(staging), remove_temporaries(dir);
    if (!staging || !pending) st = attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
    else if (mkdir(staging, 0777) != 0) st = attn__error(ATTN_EIO, "%s: cannot create the directory: %s", staging, strerror(errno));
    if (st) return attn_free(staging), attn_free(pending), st;

    attn__sb b = {0};
    attn__jw w;
    char hex[20];
    attn__jw_init(&w, &b, 1, 2);
    attn__jw_object(&w, 1);
    attn__jw_key(&w, "format"), attn__jw_str(&w, FORMAT);
    attn__jw_key(&w, "version"), attn__jw_i64(&w, VERSION);
    for (int i = 0; i < n_sections; i++) attn__jw_key(&w, keys[i]), attn__jw_raw(&w, values[i]);
    /* 1. The files, into the staging directory; their sizes and checksums into config.json. */
    attn__jw_key(&w, "files"), attn__jw_object(&w, 1);
    for (int i = 0; i < n_files && !st; i++) {
        char *path = attn__ck_join(staging, files[i].name);
        uint64_t bytes = 0, sum = 0;
        st = path ? write_one(&files[i], path) : ATTN_ENOMEM;
        if (!st) st = file_sum(path, &bytes, &sum);
        attn_free(path);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
        attn__jw_key(&w, files[i].name), attn__jw_object(&w, 0);
        attn__jw_key(&w, "bytes"), attn__jw_u64(&w, bytes);
        attn__jw_key(&w, "fnv1a64"), attn__jw_str(&w, hex);
        attn__jw_end(&w, '}');
    }
    attn__jw_end(&w, '}');
    attn__jw_key(&w, "extra_files"), attn__jw_array(&w, 0);
    for (int i = 0; i < n_files; i++)
        if (files[i].extra) attn__jw_str(&w, files[i].name);
    attn__jw_end(&w, ']');
    attn__jw_end(&w, '}');
    attn__sb_str(&b, "\n");
    /* 2. config.json; then the commit: one rename of the complete staging directory. */
    if (!st && b.failed) st = ATTN_ENOMEM;
    if (!st) {
        char *path = attn__ck_join(staging, ATTN__CK_CONFIG);
        st = path ? attn_write_file_atomic(path, b.buf, b.len) : ATTN_ENOMEM;
        attn_free(path);
    }
    if (st == ATTN_ENOMEM) attn__error(ATTN_ENOMEM, "attn_checkpoint_save: out of memory");
    if (!st) {
        attn__sync_dir(staging);
        if (rename(staging, pending) != 0) st = attn__error(ATTN_EIO, "%s: cannot commit the checkpoint: %s", staging, strerror(errno));
    }
    if (st) remove_staging(staging);
    /* 3. The files into place (a kill from here on leaves the new checkpoint to open). */
    if (!st) attn__sync_dir(dir), st = install(dir);
    attn__sb_free(&b);
    attn_free(staging), attn_free(pending);
    return st;
}

/* ---- Open -------------------------------------------------------------------------------- */

static const attn__json *member(const attn__json *obj, const char *key) {
    if (!obj || obj->type != ATTN__JSON_OBJECT) return NULL;
    for (const attn__json *c = obj->child; c; c = c->next)
        if (!strcmp(c->key, key)) return c;
    return NULL;
}

const attn__json *attn__ck_member(const attn__ck *ck, const char *key) { return member(ck->root, key); }

int attn__ck_bad(const attn__ck *ck, const char *what) {
    return attn__error(ATTN_EFORMAT, "%s/" ATTN__CK_CONFIG ": %s", ck->dir, what);
}

/* The end of the JSON value starting at text[i] (validated JSON: only brackets and strings
 * need care). */
static size_t value_end(const char *text, size_t n, size_t i) {
    int depth = 0;
    for (; i < n; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < n && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
            if (depth == 0) return i + 1;
        } else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        } else if (depth == 0 && (c == ',' || c == '\n' || c == ' ' || c == '\r' || c == '\t')) return i;
    }
    return n;
}

char *attn__ck_text(const attn__ck *ck, const attn__json *v) { return attn__strndup(ck->text + v->offset, value_end(ck->text, ck->len, v->offset) - v->offset); }

const char *attn__ck_extra(const attn__ck *ck, const char *name) {
    for (int i = 0; i < ck->n_extra; i++)
        if (!strcmp(ck->extra_names[i], name)) return ck->extra_paths[i];
    return NULL;
}

static int verify_file(const attn__ck *ck, const attn__json *f) {
    char msg[512];
    int64_t bytes;
    uint64_t sum, got_bytes, got_sum;
    if (!valid_name(f->key) || !strcmp(f->key, ATTN__CK_CONFIG)) return attn__ck_bad(ck, "\"files\" holds a bad file name");
    snprintf(msg, sizeof msg, "\"files\": \"%s\"", f->key);
    if (f->type != ATTN__JSON_OBJECT) return attn__ck_bad(ck, msg);
    int st = attn__ck_u64(ck, f, "bytes", &bytes);
    if (!st) st = attn__ck_hex64(ck, member(f, "fnv1a64"), "fnv1a64", &sum);
    if (st) return st;
    char *p = attn__ck_file_path(ck->dir, f->key);
    if (!p) return attn__error(ATTN_ENOMEM, "out of memory");
    st = file_sum(p, &got_bytes, &got_sum);
    attn_free(p);
    if (st) return st;
    if (got_bytes != (uint64_t)bytes || got_sum != sum)
        return attn__error(ATTN_EFORMAT, "%s: %s has %llu bytes and checksum %016llx, config.json says %lld bytes and %016llx "
                                         "(a changed file, or a checkpoint whose writing was interrupted)",
                           ck->dir, f->key, (unsigned long long)got_bytes, (unsigned long long)got_sum, (long long)bytes,
                           (unsigned long long)sum);
    return ATTN_OK;
}

static int open_checked(const char *dir, attn__ck *ck) {
    char *cpath = attn__ck_file_path(dir, ATTN__CK_CONFIG);
    if (!cpath || !(ck->dir = attn__strndup(dir, strlen(dir)))) return attn_free(cpath), attn__error(ATTN_ENOMEM, "out of memory");
    int st = attn__read_file(cpath, MAX_CONFIG, &ck->text, &ck->len);
    char err[128];
    if (!st && (st = attn__json_parse(ck->text, ck->len, &ck->root, err, sizeof err)))
        st = st == ATTN_ENOMEM ? attn__error(ATTN_ENOMEM, "%s: out of memory", cpath) : attn__error(ATTN_EFORMAT, "%s: %s", cpath, err);
    attn_free(cpath);
    if (st) return st;
    if (ck->root->type != ATTN__JSON_OBJECT) return attn__ck_bad(ck, "not a JSON object");
    const attn__json *fmt = member(ck->root, "format"), *ver = member(ck->root, "version"), *model = member(ck->root, "model");
    if (!fmt || fmt->type != ATTN__JSON_STRING || strcmp(fmt->str, FORMAT))
        return attn__ck_bad(ck, "not an attn checkpoint (\"format\" is not \"" FORMAT "\")");
    if (!ver || ver->type != ATTN__JSON_NUMBER || !ver->is_uint || ver->u != VERSION)
        return attn__ck_bad(ck, "unsupported checkpoint version (this library reads version 1)");
    if (!model || model->type != ATTN__JSON_OBJECT) return attn__ck_bad(ck, "\"model\" is missing or not an object");
    const attn__json *files = member(ck->root, "files"), *extra = member(ck->root, "extra_files");
    if (!files || files->type != ATTN__JSON_OBJECT || !extra || extra->type != ATTN__JSON_ARRAY)
        return attn__ck_bad(ck, "\"files\" (object) or \"extra_files\" (array) is missing");
    if (!member(files, ATTN__CK_MODEL)) return attn__ck_bad(ck, "\"files\" lists no \"" ATTN__CK_MODEL "\"");
    for (const attn__json *f = files->child; f; f = f->next)
        if ((st = verify_file(ck, f))) return st;
    ck->extra_names = attn_calloc(extra->len + 1, sizeof(char *));
    ck->extra_paths = attn_calloc(extra->len + 1, sizeof(char *));
    if (!ck->extra_names || !ck->extra_paths) return attn__error(ATTN_ENOMEM, "out of memory");
    for (const attn__json *e = extra->child; e; e = e->next) {
        if (e->type != ATTN__JSON_STRING || !valid_name(e->str) || reserved(e->str)) return attn__ck_bad(ck, "\"extra_files\" holds a bad file name");
        if (!member(files, e->str)) return attn__ck_bad(ck, "\"extra_files\" names a file that \"files\" does not list");
        int i = ck->n_extra++;
        if (!(ck->extra_names[i] = attn__strndup(e->str, strlen(e->str))) || !(ck->extra_paths[i] = attn__ck_file_path(dir, e->str)))
            return attn__error(ATTN_ENOMEM, "out of memory");
    }
    return ATTN_OK;
}

int attn__ck_open(const char *dir, attn__ck *ck) {
    memset(ck, 0, sizeof *ck);
    if (!dir || !*dir) return attn__error(ATTN_EINVAL, "attn_checkpoint_open: empty directory name");
    /* a commit that a killed writer left half-installed is finished here when the directory
     * is writable; else its files are read where they are (attn__ck_file_path) */
    (void)install(dir);
    int st = open_checked(dir, ck);
    if (st) attn__ck_close(ck);
    return st;
}

void attn__ck_close(attn__ck *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->n_extra; i++) {
        if (ck->extra_names) attn_free(ck->extra_names[i]);
        if (ck->extra_paths) attn_free(ck->extra_paths[i]);
    }
    attn_free(ck->extra_names), attn_free(ck->extra_paths);
    attn__json_free(ck->root);
    attn_free(ck->text), attn_free(ck->dir);
    memset(ck, 0, sizeof *ck);
}

/* ---- Typed members ----------------------------------------------------------------------- */

int attn__ck_u64(const attn__ck *ck, const attn__json *obj, const char *key, int64_t *out) {
    const attn__json *v = member(obj, key);
    char msg[128];
    if (!v || v->type != ATTN__JSON_NUMBER || !v->is_uint || v->u > (uint64_t)INT64_MAX) {
        snprintf(msg, sizeof msg, "\"%s\" is missing or not a non-negative integer", key);
        return attn__ck_bad(ck, msg);
    }
    *out = (int64_t)v->u;
    return ATTN_OK;
}

int attn__ck_hex64(const attn__ck *ck, const attn__json *v, const char *key, uint64_t *out) {
    char msg[128];
    uint64_t x = 0;
    int ok = v && v->type == ATTN__JSON_STRING && strlen(v->str) == 16;
    for (int i = 0; ok && i < 16; i++) {
        char c = v->str[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        ok = d >= 0;
        x = x << 4 | (uint64_t)(d & 15);
    }
    if (!ok) {
        snprintf(msg, sizeof msg, "\"%s\" is missing or not 16 lowercase hex digits", key);
        return attn__ck_bad(ck, msg);
    }
    *out = x;
    return ATTN_OK;
}

int attn__ck_double(const attn__ck *ck, const attn__json *obj, const char *key, double *out) {
    const attn__json *v = member(obj, key);
    char msg[128];
    if (v && v->type == ATTN__JSON_NUMBER) return *out = strtod(ck->text + v->offset, NULL), ATTN_OK;
    if (v && v->type == ATTN__JSON_STRING) {
        if (!strcmp(v->str, "inf")) return *out = INFINITY, ATTN_OK;
        if (!strcmp(v->str, "-inf")) return *out = -INFINITY, ATTN_OK;
        if (!strcmp(v->str, "nan")) return *out = NAN, ATTN_OK;
    }
    snprintf(msg, sizeof msg, "\"%s\" is missing or not a number", key);
    return attn__ck_bad(ck, msg);
}
