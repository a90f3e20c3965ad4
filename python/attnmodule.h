/* What python/attnmodule.c (the functions, the module) and python/attn_classes.c (the classes)
 * share: numpy's C API (one table, imported by the module's init) and the argument helpers. */
#ifndef ATTN_PYTHON_MODULE_H
#define ATTN_PYTHON_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL attn_ARRAY_API
#ifndef ATTN_PY_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

enum { CONTIG = 1, ANY_STRIDES = 0 };

/* Shared between the two files, not exported from the module. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* The library's status as a Python exception with attn's message (returns NULL). */
PyObject *attn_raise(int st);
/* o as a numpy array of `type`, native byte order, lo..hi dimensions, C-contiguous with
 * CONTIG (else a contiguous last dimension); NULL with the exception set. */
PyArrayObject *check_array(PyObject *o, const char *name, int type, int lo, int hi, int contig);
/* "(2, 3)" or the type's name, for messages. */
const char *shape_of(PyObject *o, char buf[96]);

extern PyTypeObject MHAType, TranslatorType; /* attn_classes.c */

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
