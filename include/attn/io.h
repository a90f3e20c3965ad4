/* attn/io.h: arrays in and out of files: numpy's .npy, safetensors, and atomic file writes.
 *
 * Every reader treats its file as untrusted input: sizes in headers are checked against the
 * file size before anything is allocated, every offset is bounds-checked, and a malformed file
 * gives ATTN_EFORMAT (or ATTN_EDTYPE for a valid file of an unsupported element type) with a
 * one-line message naming the file and what is wrong, never a crash. A missing or unreadable
 * file gives ATTN_EIO.
 *
 * Every writer is atomic: it writes a temporary file beside the target ("PATH.tmp.XXXXXX")
 * and renames it over the target only once everything was written, so a failure (full disk,
 * missing directory, out of memory) leaves the old file, if any, untouched and no temporary
 * file behind. (Not fsync'ed: atomic against crashes of this process, not of the machine.)
 *
 * Not here: memory-mapping (files are read into memory), Fortran-order arrays, numpy's
 * structured or object dtypes, safetensors' 8-bit float and unsigned 16/32/64-bit dtypes as
 * loadable arrays (they are recognised and listed, but attn_st_get* refuses them).
 */
#ifndef ATTN_IO_H
#define ATTN_IO_H

#include "attn/core.h"

#ifdef __cplusplus
extern "C" {
#endif
ATTN_API_BEGIN

/* ---- Owned arrays ------------------------------------------------------------------------ */

/* Element types. BOOL is one byte holding 0 or 1. F16 is IEEE half, BF16 bfloat16; both are
 * stored as their 16-bit patterns (uint16_t). Data is in the host's byte order. */
typedef enum { ATTN_F32, ATTN_F64, ATTN_BOOL, ATTN_I32, ATTN_I64, ATTN_U8, ATTN_F16, ATTN_BF16 } attn_dtype;

#define ATTN_MAX_DIMS 8

/* An n-dimensional array in C order that owns its data (allocated with attn_malloc).
 * ndim 0 is a scalar (numel 1). nbytes == numel * attn_dtype_size(dtype). A zeroed struct is
 * a valid empty value that attn_array_free accepts. */
typedef struct {
    attn_dtype dtype;
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
    void *data;
    size_t nbytes;
} attn_array;

size_t attn_dtype_size(attn_dtype dt);        /* bytes per element; 0 for an unknown value */
const char *attn_dtype_name(attn_dtype dt);   /* "f32", "f64", "bool", ...; "?" if unknown */

void attn_array_free(attn_array *a);          /* frees data and zeroes *a; accepts NULL */
int64_t attn_array_numel(const attn_array *a); /* product of the shape (1 for ndim 0) */

/* Converts the data in place to ATTN_F32 (a new buffer replaces the old one): F64 rounds,
 * F16/BF16 widen exactly, I32/I64 round to the nearest float, BOOL/U8 give 0..255.
 * F32 input is left as it is. ATTN_ENOMEM leaves *a unchanged. */
int attn_array_to_f32(attn_array *a);

/* ---- numpy .npy -------------------------------------------------------------------------- */

/* Loads a .npy file (format versions 1.0, 2.0 and 3.0) into *out, which the caller frees with
 * attn_array_free. Accepted dtypes: '<f4' '<f8' '<f2' '<i4' '<i8' '|u1' '|b1', any byte order
 * ('<' '>' '=' '|'; big-endian data is byte-swapped to the host's order). C order only: a
 * Fortran-order file whose layout differs from C order gives ATTN_EFORMAT. Up to 8 dims;
 * 0-d arrays have ndim 0. The header (a Python dict literal with exactly the keys 'descr',
 * 'fortran_order' and 'shape', in any order) is parsed strictly, and the data must fill the
 * rest of the file exactly. On failure *out is zeroed. */
int attn_npy_load(const char *path, attn_array *out);

/* attn_npy_load, then attn_array_to_f32: any numeric .npy as float32. */
int attn_npy_load_f32(const char *path, attn_array *out);

/* Writes data, (shape[0], ..., shape[ndim-1]) in C order of dtype dt, as a version 1.0 .npy
 * file byte-identical to numpy.save's. ndim in [0, 8]; data may be NULL only if the array is
 * empty. ATTN_EDTYPE for ATTN_BF16 (numpy has no bfloat16). Atomic (see the top). */
int attn_npy_save(const char *path, attn_dtype dt, int ndim, const int64_t *shape, const void *data);

/* ---- safetensors ------------------------------------------------------------------------- */

/* The format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * (padded with spaces), then the data buffer; offsets are relative to the buffer, data is
 * little-endian, C order. Validated as the reference implementation does: known dtype,
 * numel * size == end - begin, the tensors tile the buffer exactly (sorted by offset, no gap,
 * no overlap, nothing after the last), no duplicate names, header at most 100 MB. */
typedef struct attn_st attn_st; /* an opened file, read whole into memory; read-only after open */

int attn_st_open(const char *path, attn_st **out);
void attn_st_free(attn_st *st); /* accepts NULL */

/* Tensors are numbered 0..count-1 in the order of their data offsets. */
int attn_st_count(const attn_st *st);
const char *attn_st_name(const attn_st *st, int i);       /* NULL if i is out of range */
int attn_st_find(const attn_st *st, const char *name);    /* index, or -1 */
/* The safetensors dtype name ("F32", "BF16", "I64", ...) and the shape of tensor i: fills
 * shape[0..ndim-1] (room for ATTN_MAX_DIMS) and returns ndim, or -1 if i is out of range. */
const char *attn_st_dtype(const attn_st *st, int i);
int attn_st_shape(const attn_st *st, int i, int64_t *shape);

/* Copies tensor `name` as float32 (F32, F64, F16, BF16, and the integer kinds BOOL, U8, I32,
 * I64 converted) into a new array *out. ATTN_ENOTFOUND naming the tensor and the file if it is
 * missing; ATTN_EDTYPE for a dtype that cannot be converted. */
int attn_st_get_f32(const attn_st *st, const char *name, attn_array *out);

/* Same, but checks that the tensor's shape equals (shape[0], ..., shape[ndim-1]) and writes
 * into caller memory dst (numel floats); ATTN_ESHAPE otherwise, with a message like
 * "tensor 'out_proj.weight' in model.safetensors has shape (4, 8), expected (8, 8)". */
int attn_st_read_f32(const attn_st *st, const char *name, int ndim, const int64_t *shape, float *dst);

/* The value of a "__metadata__" entry, or NULL. Valid until attn_st_free. */
const char *attn_st_metadata(const attn_st *st, const char *key);

/* Writing: collect tensors (copied), then save. The file is what the reference implementation
 * writes: tensors as F32, sorted by name (bytewise), contiguous offsets from 0, metadata first
 * (keys sorted), header JSON without spaces padded with spaces to a multiple of 8 bytes. */
typedef struct attn_st_writer attn_st_writer;
int attn_st_writer_new(attn_st_writer **out); /* an empty writer in *out; ATTN_ENOMEM */
/* data: (shape[0], ..., shape[ndim-1]) floats, ndim in [0, 8]. ATTN_EINVAL for a duplicate
 * name, the reserved name "__metadata__", or a name that is not valid UTF-8. */
int attn_st_writer_add_f32(attn_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data);
/* Sets (or replaces) a metadata entry; key and value must be valid UTF-8. */
int attn_st_writer_set_metadata(attn_st_writer *w, const char *key, const char *value);
int attn_st_writer_save(attn_st_writer *w, const char *path); /* atomic; the writer stays usable */
void attn_st_writer_free(attn_st_writer *w); /* accepts NULL */

/* ---- Atomic writes ----------------------------------------------------------------------- */

/* Writes n bytes to path atomically (temporary file in the same directory, then rename).
 * ATTN_EIO with the reason if the file cannot be created, written or renamed. */
int attn_write_file_atomic(const char *path, const void *data, size_t n);

/* An extra file stored in the checkpoint as an opaque blob (a vocabulary, a tokenizer):
 * `name` is its file name inside the checkpoint (letters, digits, '.', '_', '-'; not one of
 * the checkpoint's own names), copied from `path` or from data[0..size) when path is NULL. */
typedef struct {
    const char *name;
    const char *path;
    const void *data;
    size_t size;
} attn_ckpt_file;

ATTN_API_END
#ifdef __cplusplus
}
#endif
#endif
