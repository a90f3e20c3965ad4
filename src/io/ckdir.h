/* The checkpoint directory as a file format (not API): named files and config.json, which
 * names the size and FNV-1a checksum of every other file beside JSON sections given by the
 * layers above:
 *   {"format": "attn-checkpoint", "version": 1, <sections>, "files": {name: {"bytes": n,
 *    "fnv1a64": "hex"}, ...}, "extra_files": [names of the model's own files]}
 * A directory whose writing was interrupted (an old config.json, some new files) is detected
 * on open instead of silently mixing two states. Models read and write their weights and
 * vocabularies through it (src/models/translator.c); training adds the optimiser state and
 * the training state (src/train/checkpoint.c). config.json is untrusted on open: strict JSON
 * parser, every field checked, names restricted to [A-Za-z0-9._-]. */
#ifndef ATTN_IO_CKDIR_H
#define ATTN_IO_CKDIR_H

#include <stddef.h>
#include <stdint.h>

#include "io/json.h"

/* Crash safety: a checkpoint is written whole into DIR/.ck-new (each file fsync'ed, then the
 * directory), committed by one rename of .ck-new to DIR/.ck-commit, then installed by moving
 * its files into DIR, config.json last, and removing .ck-commit. A kill at any instant leaves
 * either the previous checkpoint (no .ck-commit: a stale .ck-new and *.tmp.* files are
 * removed by the next write) or the new one (.ck-commit present: the next write or open
 * finishes the installation; until then a file is read from .ck-commit if it is still
 * there). Loaders therefore name a checkpoint's files with attn__ck_file_path, never by
 * joining DIR and the name. */
#define ATTN__CK_CONFIG "config.json"
#define ATTN__CK_MODEL "model.safetensors"
#define ATTN__CK_OPTIM "optim.safetensors"

/* FNV-1a 64 over bytes, continuing from h (start with ATTN__FNV_INIT). */
#define ATTN__FNV_INIT 0xcbf29ce484222325ull
uint64_t attn__fnv1a(uint64_t h, const void *data, size_t n);

/* One file of a checkpoint: written by write(ctx, path) (which must write atomically), else
 * copied from `path`, else data[0 .. size). `extra`: one of the model's own files (listed in
 * "extra_files"; a name other than config.json, model.safetensors and optim.safetensors). */
typedef struct {
    const char *name;
    int (*write)(const void *ctx, const char *path);
    const void *ctx;
    const char *path;
    const void *data;
    size_t size;
    int extra;
} attn__ck_file;

/* Writes the files, then config.json with the sections keys[i]: values[i] (JSON values, e.g.
 * objects; the first must be "model", an object). The directory is created if missing. */
int attn__ck_write(const char *dir, int n_sections, const char *const *keys, const char *const *values, int n_files,
                   const attn__ck_file *files);

/* An opened checkpoint: config.json parsed, every file it lists verified (size, checksum). */
typedef struct {
    char *dir;
    char *text;           /* config.json */
    size_t len;
    attn__json *root;
    int n_extra;          /* the model's own files */
    char **extra_names, **extra_paths;
} attn__ck;

/* Opens dir: config.json's format and version, a "model" object, model.safetensors and every
 * other listed file verified, "extra_files" a subset of "files". A missing directory or file
 * is ATTN_EIO, a malformed or inconsistent one ATTN_EFORMAT, with a message naming it. */
int attn__ck_open(const char *dir, attn__ck *ck);
void attn__ck_close(attn__ck *ck); /* accepts a zeroed struct */
/* A top-level member of config.json (NULL if absent). */
const attn__json *attn__ck_member(const attn__ck *ck, const char *key);
/* A copy of a member's JSON text (malloc'ed; NULL if out of memory). */
char *attn__ck_text(const attn__ck *ck, const attn__json *v);
/* dir/name (malloc'ed; NULL if out of memory); an extra file's path (NULL if not one). */
char *attn__ck_join(const char *dir, const char *name);
/* Where the checkpoint file `name` of dir is to be read: dir/.ck-commit/name while a commit is
 * being installed and the file is still there, else dir/name (malloc'ed; NULL if out of
 * memory). */
char *attn__ck_file_path(const char *dir, const char *name);
const char *attn__ck_extra(const attn__ck *ck, const char *name);
/* An ATTN_EFORMAT error "DIR/config.json: what". */
int attn__ck_bad(const attn__ck *ck, const char *what);
/* Typed members of obj, each ATTN_OK or an ATTN_EFORMAT error naming the key: a non-negative
 * integer; 16 lowercase hex digits (v is the member itself); a number, or "inf", "-inf", "nan". */
int attn__ck_u64(const attn__ck *ck, const attn__json *obj, const char *key, int64_t *out);
int attn__ck_hex64(const attn__ck *ck, const attn__json *v, const char *key, uint64_t *out);
int attn__ck_double(const attn__ck *ck, const attn__json *obj, const char *key, double *out);

#endif
