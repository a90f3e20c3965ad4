/* attn._attn: the CPython extension module over libattn (the package attn re-exports it).
 *
 * Arrays cross as numpy arrays, without copies: a float32 input whose last dimension is
 * contiguous is read where it lies (the library takes strides over its other dimensions), and
 * outputs are new C-contiguous float32 arrays the kernels write into. Anything else is refused
 * before the library sees it, with a TypeError (not a numpy array, wrong dtype, byte-swapped)
 * or a ValueError (shape, strides, non-contiguous where contiguity is needed); nothing here
 * converts float64 to float32 behind the caller's back. The GIL is released around every
 * kernel call; a library error becomes a Python exception carrying attn_last_error().
 * This file: the errors, the arrays, the attention functions and the module; the classes
 * MultiheadAttention and Translator are in attn_classes.c.
 */
#define ATTN_PY_MAIN
#include "attnmodule.h"

#include <limits.h>
#include <string.h>
#include <time.h>

#include "attn/attn.h"

/* ---- Errors ------------------------------------------------------------------------------- */

/* The library's status as a Python exception with attn's message. */
PyObject *attn_raise(int st) {
    PyObject *exc = PyExc_ValueError;
    if (st == ATTN_EDTYPE) exc = PyExc_TypeError;
    else if (st == ATTN_ENOMEM) exc = PyExc_MemoryError;
    else if (st == ATTN_EIO) exc = PyExc_OSError;
    else if (st == ATTN_ENOTFOUND) exc = PyExc_KeyError;
    const char *m = attn_last_error();
    PyErr_Format(exc, "attn: %s", m && *m ? m : attn_strerror(st));
    return NULL;
}

/* ---- Arrays ------------------------------------------------------------------------------- */

/* Checks that o is a numpy array of `type` in native byte order with lo..hi dimensions, each
 * at most INT_MAX long; C-contiguous with CONTIG, else with a contiguous last dimension and
 * non-negative strides that are multiples of the item size. Returns o as an array (borrowed)
 * or NULL with the exception set. */
PyArrayObject *check_array(PyObject *o, const char *name, int type, int lo, int hi, int contig) {
    if (!PyArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, not %.100s", name, Py_TYPE(o)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)o;
    if (PyArray_TYPE(a) != type || !PyArray_ISNOTSWAPPED(a)) {
        PyArray_Descr *want = PyArray_DescrFromType(type);
        PyErr_Format(PyExc_TypeError, "%s must be %S in native byte order, not %S (convert with .astype(numpy.%S))",
                     name, (PyObject *)want, (PyObject *)PyArray_DESCR(a), (PyObject *)want);
        Py_DECREF(want);
        return NULL;
    }
    int nd = PyArray_NDIM(a);
    if (nd < lo || nd > hi) {
        if (lo == hi) PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, not %d", name, lo, nd);
        else PyErr_Format(PyExc_ValueError, "%s must have %d to %d dimensions, not %d", name, lo, hi, nd);
        return NULL;
    }
    npy_intp item = PyArray_ITEMSIZE(a);
    for (int i = 0; i < nd; i++) {
        npy_intp n = PyArray_DIM(a, i), s = PyArray_STRIDE(a, i);
        if (n > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "%s is too large: dimension %d has %zd elements", name, i, (Py_ssize_t)n);
            return NULL;
        }
        if (n > 1 && (s < 0 || s % item != 0 || (i == nd - 1 && s != item))) {
            PyErr_Format(PyExc_ValueError,
                         "%s has strides the kernels cannot read (the last dimension must be contiguous, the others "
                         "non-negative multiples of the item size); pass numpy.ascontiguousarray(%s)", name, name);
            return NULL;
        }
    }
    if (contig && !PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous; pass numpy.ascontiguousarray(%s)", name, name);
        return NULL;
    }
    if (!PyArray_ISALIGNED(a)) {
        PyErr_Format(PyExc_ValueError, "%s is not aligned; pass a copy (numpy.array(%s))", name, name);
        return NULL;
    }
    return a;
}

/* Where the dimensions of a 2-, 3- or 4-D array go in (B, H, N, d): (N, d) is one batch of
 * one head, (B, N, d) a batch of one head each (-1: a dimension of 1 added). */
static const int DIM_OF[5][4] = {{0}, {0}, {-1, -1, 0, 1}, {0, -1, 1, 2}, {0, 1, 2, 3}};

/* The shape of a (2 to 4 dimensions) as (B, H, N, d), ones for missing dimensions, and
 * the element strides over (B, H, N). A dimension of size 1 gets a nonzero stride (it is never
 * stepped over), so that strides that are all zero (which the library reads as "contiguous")
 * only happen for an array broadcast along every dimension, which is refused. */
static int dims4(PyArrayObject *a, const char *name, int64_t shape[4], int64_t strides[3]) {
    int nd = PyArray_NDIM(a);
    int64_t st[4];
    for (int i = 0; i < 4; i++) {
        int j = DIM_OF[nd][i];
        shape[i] = j >= 0 ? PyArray_DIM(a, j) : 1;
        st[i] = j >= 0 ? PyArray_STRIDE(a, j) / (npy_intp)sizeof(float) : 0;
    }
    for (int i = 0; i < 4; i++)
        if (shape[i] == 0) { /* never to the library, where a size of 0 means "the default" */
            PyErr_Format(PyExc_ValueError, "%s has a dimension of size 0", name);
            return -1;
        }
    st[3] = 1;
    for (int i = 2; i >= 0; i--)
        if (shape[i] == 1) st[i] = st[i + 1] * shape[i + 1] != 0 ? st[i + 1] * shape[i + 1] : 1;
    if (!st[0] && !st[1] && !st[2]) {
        PyErr_Format(PyExc_ValueError, "%s is broadcast (zero strides) along every dimension; pass "
                     "numpy.ascontiguousarray(%s)", name, name);
        return -1;
    }
    memcpy(strides, st, 3 * sizeof(int64_t));
    return 0;
}

/* A new C-contiguous float32 array: `lead` leading dimensions of like (0, 1 or 2: those before
 * (N, d)), then the trailing dimensions given. */
static PyArrayObject *new_array(PyArrayObject *like, int lead, int ntrail, npy_intp t0, npy_intp t1) {
    npy_intp shape[4];
    int nd = 0;
    for (int i = 0; i < lead; i++) shape[nd++] = PyArray_DIM(like, i);
    shape[nd++] = t0;
    if (ntrail > 1) shape[nd++] = t1;
    return (PyArrayObject *)PyArray_SimpleNew(nd, shape, NPY_FLOAT32);
}

/* The shape of an array as text, "(2, 3, 4)", in buf. */
const char *shape_of(PyObject *o, char buf[96]) {
    if (!PyArray_Check(o)) return "(not an array)";
    PyArrayObject *a = (PyArrayObject *)o;
    int n = snprintf(buf, 96, "(");
    for (int i = 0; i < PyArray_NDIM(a) && n < 80; i++)
        n += snprintf(buf + n, (size_t)(96 - n), "%s%zd", i ? ", " : "", (Py_ssize_t)PyArray_DIM(a, i));
    snprintf(buf + n, (size_t)(96 - n), PyArray_NDIM(a) == 1 ? ",)" : ")");
    return buf;
}

/* Element strides over (B, H, Nq, Nk) of a mask (bool or float) broadcast, by numpy's rules, to
 * the scores' shape as the caller sees it: q's leading dimensions (snd - 2 of them), Nq, Nk. */
static int mask_strides(PyArrayObject *m, const char *name, const int64_t target[4], int snd, int64_t out[4]) {
    int nd = PyArray_NDIM(m);
    npy_intp item = PyArray_ITEMSIZE(m);
    int64_t user[4];
    for (int i = 0; i < 4; i++) {
        out[i] = 0;
        if (DIM_OF[snd][i] >= 0) user[DIM_OF[snd][i]] = target[i];
    }
    for (int u = 0; u < snd; u++) {
        int s = u - (snd - nd), t = 0;
        while (DIM_OF[snd][t] != u) t++;
        npy_intp n = s >= 0 ? PyArray_DIM(m, s) : 1;
        if (n == user[u]) {
            out[t] = n == 1 ? 0 : PyArray_STRIDE(m, s) / item;
        } else if (n != 1) {
            nd = snd + 1; /* reported below */
            break;
        }
    }
    if (nd > snd) {
        char b[96];
        PyErr_Format(PyExc_ValueError, "%s of shape %s does not broadcast to the scores' shape (..., Nq, Nk) = "
                     "(..., %lld, %lld)", name, shape_of((PyObject *)m, b), (long long)target[2], (long long)target[3]);
        return -1;
    }
    return 0;
}

/* ---- One attention call: its description, built from the Python arguments ----------------- */

typedef struct {
    attn_desc d;
    attn_score_params p;
    PyArrayObject *params[8]; /* checked arrays of p (owned: the dict may change while the GIL is released) */
    PyArrayObject *key_lengths; /* int32 copy (owned) */
    int lead;                   /* leading dimensions of q kept in outputs (ndim - 2) */
} call;

static void call_clear(call *c) {
    Py_CLEAR(c->key_lengths);
    for (int i = 0; i < 8; i++) Py_CLEAR(c->params[i]);
}

static const char *const PARAM_NAMES[] = {"W", "Wa", "ba", "Ua", "bu", "va", "bv"};

/* The score parameters from a dict of float32 arrays, their shapes checked against the sizes
 * (dq, dk) so that the kernels never read past them. */
static int parse_params(call *c, PyObject *params) {
    if (params == Py_None) return 0;
    if (!PyDict_Check(params)) {
        PyErr_Format(PyExc_TypeError, "params must be a dict of numpy arrays, not %.100s", Py_TYPE(params)->tp_name);
        return -1;
    }
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(params, &pos, &key, &val)) {
        const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        int i = 0;
        while (k && i < 7 && strcmp(k, PARAM_NAMES[i])) i++;
        if (!k || i == 7) {
            PyErr_Format(PyExc_ValueError, "unknown score parameter %R (expected W, Wa, ba, Ua, bu, va, bv)", key);
            return -1;
        }
    }
    float **slot[7] = {&c->p.W, &c->p.Wa, &c->p.ba, &c->p.Ua, &c->p.bu, &c->p.va, &c->p.bv};
    PyObject *va = PyDict_GetItemString(params, "va");
    int A = 0;
    if (va) {
        PyArrayObject *a = check_array(va, "params['va']", NPY_FLOAT32, 1, 1, CONTIG);
        if (!a) return -1;
        A = (int)PyArray_DIM(a, 0);
    }
    c->p.A = A;
    int64_t want[7][2] = {{c->d.dq, c->d.dk}, {A, c->d.dq}, {A, -1}, {A, c->d.dk}, {A, -1}, {A, -1}, {1, -1}};
    for (int i = 0; i < 7; i++) {
        PyObject *o = PyDict_GetItemString(params, PARAM_NAMES[i]);
        if (!o || o == Py_None) continue;
        char name[32];
        snprintf(name, sizeof name, "params['%s']", PARAM_NAMES[i]);
        int nd = want[i][1] < 0 ? 1 : 2;
        PyArrayObject *a = check_array(o, name, NPY_FLOAT32, nd, nd, CONTIG);
        if (!a) return -1;
        if (PyArray_DIM(a, 0) != want[i][0] || (nd == 2 && PyArray_DIM(a, 1) != want[i][1])) {
            char b[96];
            if (nd == 2)
                PyErr_Format(PyExc_ValueError, "%s must have shape (%lld, %lld), not %s", name, (long long)want[i][0],
                             (long long)want[i][1], shape_of(o, b));
            else
                PyErr_Format(PyExc_ValueError, "%s must have shape (%lld,), not %s", name, (long long)want[i][0],
                             shape_of(o, b));
            return -1;
        }
        *slot[i] = (float *)PyArray_DATA(a);
        Py_INCREF(a);
        c->params[i] = a;
    }
    c->d.params = &c->p;
    return 0;
}

/* Masks: a bool (or uint8) array, nonzero = may attend; a float32 bias; causal; window; key
 * lengths (B) of any integer type (copied to int32). */
static int parse_masks(call *c, PyObject *mask, PyObject *bias, int causal, int window, PyObject *key_lengths) {
    int64_t target[4] = {c->d.B, c->d.H, c->d.Nq, c->d.Nk};
    c->d.mask.causal = causal;
    c->d.mask.window = window;
    if (mask != Py_None) {
        if (PyArray_Check(mask) && PyArray_TYPE((PyArrayObject *)mask) == NPY_FLOAT32) {
            PyErr_SetString(PyExc_TypeError, "mask must be bool (True = may attend); pass a float mask as bias=");
            return -1;
        }
        PyArrayObject *m = NULL;
        if (PyArray_Check(mask) && PyArray_TYPE((PyArrayObject *)mask) == NPY_UINT8)
            m = check_array(mask, "mask", NPY_UINT8, 1, 4, ANY_STRIDES);
        else
            m = check_array(mask, "mask", NPY_BOOL, 1, 4, ANY_STRIDES);
        if (!m || mask_strides(m, "mask", target, c->lead + 2, c->d.mask.bool_strides) < 0) return -1;
        c->d.mask.bool_mask = (const uint8_t *)PyArray_DATA(m);
    }
    if (bias != Py_None) {
        PyArrayObject *b = check_array(bias, "bias", NPY_FLOAT32, 1, 4, ANY_STRIDES);
        if (!b || mask_strides(b, "bias", target, c->lead + 2, c->d.mask.bias_strides) < 0) return -1;
        c->d.mask.bias = (const float *)PyArray_DATA(b);
    }
    if (key_lengths != Py_None) {
        PyArrayObject *in = (PyArrayObject *)PyArray_FROMANY(key_lengths, NPY_NOTYPE, 0, 0, 0);
        if (!in) return -1;
        int ok = PyArray_ISINTEGER(in) && PyArray_NDIM(in) == 1;
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "key_lengths must be a 1-D array of integers (B,), got %S of %d dimensions",
                         (PyObject *)PyArray_DESCR(in), PyArray_NDIM(in));
            Py_DECREF(in);
            return -1;
        }
        if (PyArray_DIM(in, 0) != c->d.B) {
            PyErr_Format(PyExc_ValueError, "key_lengths must have B = %d entries, not %zd", c->d.B,
                         (Py_ssize_t)PyArray_DIM(in, 0));
            Py_DECREF(in);
            return -1;
        }
        /* Range first: a cast to int32 must not wrap a huge length into a valid one. */
        PyObject *lo = PyArray_Min(in, NPY_MAXDIMS, NULL), *hi = PyArray_Max(in, NPY_MAXDIMS, NULL);
        long long l = lo ? PyLong_AsLongLong(lo) : 0, h = hi ? PyLong_AsLongLong(hi) : 0;
        Py_XDECREF(lo);
        Py_XDECREF(hi);
        if (PyErr_Occurred() || l < 0 || h > c->d.Nk) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "key_lengths must lie in [0, Nk = %d]", c->d.Nk);
            Py_DECREF(in);
            return -1;
        }
        c->key_lengths = (PyArrayObject *)PyArray_FROMANY((PyObject *)in, NPY_INT32, 1, 1, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
        Py_DECREF(in);
        if (!c->key_lengths) return -1;
        c->d.mask.key_lengths = (const int32_t *)PyArray_DATA(c->key_lengths);
    }
    return 0;
}

static int parse_score(call *c, const char *score, PyObject *scale) {
    int s = attn_score_parse(score);
    if (s < 0) {
        PyErr_Format(PyExc_ValueError, "unknown score '%s' (expected dot, scaled, cosine, general or additive)", score);
        return -1;
    }
    c->d.score = (attn_score)s;
    if (scale != Py_None) {
        double v = PyFloat_AsDouble(scale);
        if (v == -1.0 && PyErr_Occurred()) return -1;
        if (v == 0.0) {
            PyErr_SetString(PyExc_ValueError, "scale must be nonzero (None for the score's default)");
            return -1;
        }
        c->d.scale = (float)v;
    }
    return 0;
}

/* q (..., Nq, dq), k (..., Nk, dk), v (..., Nk, dv), all with 2 to 4 dimensions, the same
 * number: sizes and strides into c->d. v may be NULL (scores alone). */
static int parse_qkv(call *c, PyArrayObject *q, PyArrayObject *k, PyArrayObject *v) {
    int64_t qs[4], ks[4], vs[4];
    if (PyArray_NDIM(k) != PyArray_NDIM(q) || (v && PyArray_NDIM(v) != PyArray_NDIM(q))) {
        PyErr_SetString(PyExc_ValueError, "q, k and v must have the same number of dimensions");
        return -1;
    }
    if (dims4(q, "q", qs, c->d.q_strides) < 0 || dims4(k, "k", ks, c->d.k_strides) < 0) return -1;
    if (v && dims4(v, "v", vs, c->d.v_strides) < 0) return -1;
    if (ks[0] != qs[0] || (v && (vs[0] != qs[0] || vs[1] != ks[1] || vs[2] != ks[2]))) {
        char b1[96], b2[96], b3[96];
        PyErr_Format(PyExc_ValueError, "shapes do not fit: q %s, k %s%s%s (want q (B, H, Nq, dq), k (B, Hkv, Nk, dk), "
                     "v (B, Hkv, Nk, dv))", shape_of((PyObject *)q, b1), shape_of((PyObject *)k, b2), v ? ", v " : "",
                     v ? shape_of((PyObject *)v, b3) : "");
        return -1;
    }
    c->d.B = (int)qs[0];
    c->d.H = (int)qs[1];
    c->d.Hkv = (int)ks[1];
    c->d.Nq = (int)qs[2];
    c->d.Nk = (int)ks[2];
    c->d.dq = (int)qs[3];
    c->d.dk = (int)ks[3];
    c->d.dv = v ? (int)vs[3] : (int)ks[3];
    c->lead = PyArray_NDIM(q) - 2;
    return 0;
}

/* Everything of an attention call: sizes, score, masks; the description checked. */
static int parse_call(call *c, PyArrayObject *q, PyArrayObject *k, PyArrayObject *v, const char *score, PyObject *scale,
                      PyObject *mask, PyObject *bias, int causal, int window, PyObject *key_lengths, PyObject *params) {
    if (parse_qkv(c, q, k, v) < 0 || parse_score(c, score, scale) < 0 || parse_params(c, params) < 0 ||
        parse_masks(c, mask, bias, causal, window, key_lengths) < 0)
        return -1;
    int st = attn_desc_check(&c->d);
    if (st != ATTN_OK) {
        attn_raise(st);
        return -1;
    }
    return 0;
}

#define ATTN_KWLIST_COMMON "score", "scale", "mask", "bias", "causal", "window", "key_lengths", "params"

/* ---- attention, attention_backward -------------------------------------------------------- */

static PyObject *py_attention(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"q", "k", "v", ATTN_KWLIST_COMMON, "return_weights", "return_lse", NULL};
    PyObject *qo, *ko, *vo, *scale = Py_None, *mask = Py_None, *bias = Py_None, *kl = Py_None, *params = Py_None;
    const char *score = "scaled";
    int causal = 0, window = 0, rw = 0, rl = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|$sOOOpiOOpp", kwlist, &qo, &ko, &vo, &score, &scale, &mask, &bias,
                                     &causal, &window, &kl, &params, &rw, &rl))
        return NULL;
    PyArrayObject *q = check_array(qo, "q", NPY_FLOAT32, 2, 4, ANY_STRIDES);
    PyArrayObject *k = q ? check_array(ko, "k", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    PyArrayObject *v = k ? check_array(vo, "v", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    call c = {0};
    if (!v || parse_call(&c, q, k, v, score, scale, mask, bias, causal, window, kl, params) < 0) {
        call_clear(&c);
        return NULL;
    }
    PyArrayObject *o = new_array(q, c.lead, 2, c.d.Nq, c.d.dv);
    PyArrayObject *p = rw ? new_array(q, c.lead, 2, c.d.Nq, c.d.Nk) : NULL;
    PyArrayObject *lse = rl ? new_array(q, c.lead, 1, c.d.Nq, 0) : NULL;
    if (!o || (rw && !p) || (rl && !lse)) {
        Py_XDECREF(o);
        Py_XDECREF(p);
        Py_XDECREF(lse);
        call_clear(&c);
        return NULL;
    }
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = attn_forward(&c.d, PyArray_DATA(q), PyArray_DATA(k), PyArray_DATA(v), PyArray_DATA(o),
                      p ? PyArray_DATA(p) : NULL, lse ? PyArray_DATA(lse) : NULL);
    Py_END_ALLOW_THREADS
    call_clear(&c);
    if (st != ATTN_OK) {
        Py_DECREF(o);
        Py_XDECREF(p);
        Py_XDECREF(lse);
        return attn_raise(st);
    }
    if (!rw && !rl) return (PyObject *)o;
    PyObject *t = PyTuple_New(1 + rw + rl);
    if (!t) {
        Py_DECREF(o);
        Py_XDECREF(p);
        Py_XDECREF(lse);
        return NULL;
    }
    int i = 0;
    PyTuple_SET_ITEM(t, i++, (PyObject *)o);
    if (p) PyTuple_SET_ITEM(t, i++, (PyObject *)p);
    if (lse) PyTuple_SET_ITEM(t, i++, (PyObject *)lse);
    return t;
}

static int same_strides(PyArrayObject *a, PyArrayObject *b) {
    if (PyArray_NDIM(a) != PyArray_NDIM(b)) return 0;
    for (int i = 0; i < PyArray_NDIM(a); i++)
        if (PyArray_DIM(a, i) > 1 && PyArray_STRIDE(a, i) != PyArray_STRIDE(b, i)) return 0;
    return 1;
}

/* The gradient of *x, which the library writes with x's strides: a new array laid out as x
 * (same dimension order, compact). When x has gaps (a slice of a larger array) the new array
 * cannot share its strides: then *x is replaced by a C-contiguous copy (a new reference in
 * *owned) and the gradient is C-contiguous too. */
static PyArrayObject *grad_like(PyArrayObject **x, PyArrayObject **owned) {
    PyArrayObject *g = (PyArrayObject *)PyArray_NewLikeArray(*x, NPY_KEEPORDER, NULL, 0);
    if (!g || same_strides(g, *x)) return g;
    Py_DECREF(g);
    *owned = (PyArrayObject *)PyArray_NewCopy(*x, NPY_CORDER);
    if (!*owned) return NULL;
    *x = *owned;
    return (PyArrayObject *)PyArray_NewLikeArray(*x, NPY_CORDER, NULL, 0);
}

static PyObject *py_attention_backward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"q", "k", "v", "o", "grad_o", "lse", ATTN_KWLIST_COMMON, NULL};
    PyObject *qo, *ko, *vo, *oo, *go, *lo = Py_None, *scale = Py_None, *mask = Py_None, *bias = Py_None, *kl = Py_None,
                                      *params = Py_None;
    const char *score = "scaled";
    int causal = 0, window = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO|$OsOOOpiOO", kwlist, &qo, &ko, &vo, &oo, &go, &lo, &score, &scale,
                                     &mask, &bias, &causal, &window, &kl, &params))
        return NULL;
    PyArrayObject *q = check_array(qo, "q", NPY_FLOAT32, 2, 4, ANY_STRIDES);
    PyArrayObject *k = q ? check_array(ko, "k", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    PyArrayObject *v = k ? check_array(vo, "v", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    PyArrayObject *o = v ? check_array(oo, "o", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    PyArrayObject *dout = o ? check_array(go, "grad_o", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    PyArrayObject *lse = NULL;
    if (dout && lo != Py_None) lse = check_array(lo, "lse", NPY_FLOAT32, 1, 3, CONTIG);
    call c = {0};
    PyArrayObject *own[5] = {0}, *g[3] = {0};
    PyObject *dparams = NULL, *ret = NULL;
    attn_score_params dp = {0};
    if (!dout || (lo != Py_None && !lse)) goto done;
    if (parse_call(&c, q, k, v, score, scale, mask, bias, causal, window, kl, params) < 0) goto done;
    npy_intp want_o[4], want_l[3];
    int nd = PyArray_NDIM(q);
    for (int i = 0; i < nd - 1; i++) want_o[i] = want_l[i] = PyArray_DIM(q, i);
    want_o[nd - 1] = c.d.dv;
    if (PyArray_NDIM(o) != nd || PyArray_NDIM(dout) != nd || !PyArray_CompareLists(PyArray_DIMS(o), want_o, nd) ||
        !PyArray_CompareLists(PyArray_DIMS(dout), want_o, nd)) {
        PyErr_SetString(PyExc_ValueError, "o and grad_o must have the output's shape (..., Nq, dv)");
        goto done;
    }
    if (lse && (PyArray_NDIM(lse) != nd - 1 || !PyArray_CompareLists(PyArray_DIMS(lse), want_l, nd - 1))) {
        PyErr_SetString(PyExc_ValueError, "lse must have shape (..., Nq), as attention(..., return_lse=True) gives it");
        goto done;
    }
    /* dO is read with O's strides: when they differ, both become C-contiguous copies. */
    if (!same_strides(o, dout) || dims4(o, "o", (int64_t[4]){0}, c.d.o_strides) < 0) {
        PyErr_Clear();
        if (!(own[3] = (PyArrayObject *)PyArray_NewCopy(o, NPY_CORDER))) goto done;
        if (!(own[4] = (PyArrayObject *)PyArray_NewCopy(dout, NPY_CORDER))) goto done;
        o = own[3];
        dout = own[4];
        dims4(o, "o", (int64_t[4]){0}, c.d.o_strides);
    }
    PyArrayObject **x[3] = {&q, &k, &v};
    for (int i = 0; i < 3; i++)
        if (!(g[i] = grad_like(x[i], &own[i]))) goto done;
    dims4(q, "q", (int64_t[4]){0}, c.d.q_strides);
    dims4(k, "k", (int64_t[4]){0}, c.d.k_strides);
    dims4(v, "v", (int64_t[4]){0}, c.d.v_strides);
    if (params != Py_None) {
        dparams = PyDict_New();
        if (!dparams) goto done;
        float **src[7] = {&c.p.W, &c.p.Wa, &c.p.ba, &c.p.Ua, &c.p.bu, &c.p.va, &c.p.bv};
        float **dst[7] = {&dp.W, &dp.Wa, &dp.ba, &dp.Ua, &dp.bu, &dp.va, &dp.bv};
        dp.A = c.p.A;
        for (int i = 0; i < 7; i++) {
            if (!*src[i]) continue;
            PyObject *z = PyArray_ZEROS(PyArray_NDIM(c.params[i]), PyArray_DIMS(c.params[i]), NPY_FLOAT32, 0);
            if (!z || PyDict_SetItemString(dparams, PARAM_NAMES[i], z) < 0) {
                Py_XDECREF(z);
                goto done;
            }
            *dst[i] = (float *)PyArray_DATA((PyArrayObject *)z);
            Py_DECREF(z);
        }
    }
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = attn_backward(&c.d, PyArray_DATA(q), PyArray_DATA(k), PyArray_DATA(v), PyArray_DATA(o),
                       lse ? PyArray_DATA(lse) : NULL, PyArray_DATA(dout), PyArray_DATA(g[0]), PyArray_DATA(g[1]),
                       PyArray_DATA(g[2]), dparams ? &dp : NULL);
    Py_END_ALLOW_THREADS
    if (st != ATTN_OK) {
        attn_raise(st);
        goto done;
    }
    ret = dparams ? PyTuple_Pack(4, g[0], g[1], g[2], dparams) : PyTuple_Pack(3, g[0], g[1], g[2]);
done:
    call_clear(&c);
    for (int i = 0; i < 5; i++) Py_XDECREF(own[i]);
    for (int i = 0; i < 3; i++) Py_XDECREF(g[i]);
    Py_XDECREF(dparams);
    return ret;
}

/* ---- The three steps ---------------------------------------------------------------------- */

static PyObject *py_scores(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"q", "k", "score", "scale", "params", NULL};
    PyObject *qo, *ko, *scale = Py_None, *params = Py_None;
    const char *score = "scaled";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$sOO", kwlist, &qo, &ko, &score, &scale, &params)) return NULL;
    PyArrayObject *q = check_array(qo, "q", NPY_FLOAT32, 2, 4, ANY_STRIDES);
    PyArrayObject *k = q ? check_array(ko, "k", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    call c = {0};
    if (!k || parse_call(&c, q, k, NULL, score, scale, Py_None, Py_None, 0, 0, Py_None, params) < 0) {
        call_clear(&c);
        return NULL;
    }
    PyArrayObject *s = new_array(q, c.lead, 2, c.d.Nq, c.d.Nk);
    int st = ATTN_OK;
    if (s) {
        Py_BEGIN_ALLOW_THREADS
        st = attn_scores(&c.d, PyArray_DATA(q), PyArray_DATA(k), PyArray_DATA(s));
        Py_END_ALLOW_THREADS
    }
    call_clear(&c);
    if (!s) return NULL;
    if (st != ATTN_OK) {
        Py_DECREF(s);
        return attn_raise(st);
    }
    return (PyObject *)s;
}

/* Sizes from a (..., Nq, Nk) array of scores or weights: B, H, Nq, Nk. */
static int parse_weights(call *c, PyArrayObject *s) {
    int64_t sh[4], st[3];
    if (dims4(s, "scores", sh, st) < 0) return -1;
    c->d.B = (int)sh[0];
    c->d.H = c->d.Hkv = (int)sh[1];
    c->d.Nq = (int)sh[2];
    c->d.Nk = (int)sh[3];
    c->d.dq = c->d.dk = c->d.dv = 1;
    c->lead = PyArray_NDIM(s) - 2;
    return 0;
}

static PyObject *py_normalize(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"s", "mask", "bias", "causal", "window", "key_lengths", NULL};
    PyObject *so, *mask = Py_None, *bias = Py_None, *kl = Py_None;
    int causal = 0, window = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OOpiO", kwlist, &so, &mask, &bias, &causal, &window, &kl)) return NULL;
    PyArrayObject *s = check_array(so, "s", NPY_FLOAT32, 2, 4, CONTIG);
    call c = {0};
    if (!s || parse_weights(&c, s) < 0) return NULL;
    int st = parse_masks(&c, mask, bias, causal, window, kl) < 0 ? 1 : attn_desc_check(&c.d);
    if (st != ATTN_OK) {
        call_clear(&c);
        return st == 1 ? NULL : attn_raise(st);
    }
    PyArrayObject *p = (PyArrayObject *)PyArray_NewLikeArray(s, NPY_CORDER, NULL, 0);
    if (!p) {
        call_clear(&c);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = attn_normalize(&c.d, PyArray_DATA(s), PyArray_DATA(p));
    Py_END_ALLOW_THREADS
    call_clear(&c);
    if (st != ATTN_OK) {
        Py_DECREF(p);
        return attn_raise(st);
    }
    return (PyObject *)p;
}

static PyObject *py_weighted_sum(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *po, *vo;
    if (!PyArg_ParseTuple(args, "OO", &po, &vo)) return NULL;
    PyArrayObject *p = check_array(po, "p", NPY_FLOAT32, 2, 4, CONTIG);
    PyArrayObject *v = p ? check_array(vo, "v", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    call c = {0};
    if (!v || parse_weights(&c, p) < 0) return NULL;
    int64_t vs[4];
    if (dims4(v, "v", vs, c.d.v_strides) < 0) return NULL;
    if (PyArray_NDIM(v) != PyArray_NDIM(p) || vs[0] != c.d.B || vs[2] != c.d.Nk) {
        char b1[96], b2[96];
        PyErr_Format(PyExc_ValueError, "shapes do not fit: p %s, v %s (want p (B, H, Nq, Nk), v (B, Hkv, Nk, dv))",
                     shape_of(po, b1), shape_of(vo, b2));
        return NULL;
    }
    c.d.Hkv = (int)vs[1];
    c.d.dv = (int)vs[3];
    int st = attn_desc_check(&c.d);
    if (st != ATTN_OK) return attn_raise(st);
    PyArrayObject *o = new_array(p, c.lead, 2, c.d.Nq, c.d.dv);
    if (!o) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = attn_weighted_sum(&c.d, PyArray_DATA(p), PyArray_DATA(v), PyArray_DATA(o));
    Py_END_ALLOW_THREADS
    if (st != ATTN_OK) {
        Py_DECREF(o);
        return attn_raise(st);
    }
    return (PyObject *)o;
}

/* The kernel alone, for measuring the calling overhead: attn_forward on the arrays n times
 * (GIL released), the seconds of the whole loop. */
static PyObject *py_time_forward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *qo, *ko, *vo;
    long n;
    if (!PyArg_ParseTuple(args, "OOOl", &qo, &ko, &vo, &n)) return NULL;
    PyArrayObject *q = check_array(qo, "q", NPY_FLOAT32, 2, 4, ANY_STRIDES);
    PyArrayObject *k = q ? check_array(ko, "k", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    PyArrayObject *v = k ? check_array(vo, "v", NPY_FLOAT32, 2, 4, ANY_STRIDES) : NULL;
    call c = {0};
    if (!v || parse_call(&c, q, k, v, "scaled", Py_None, Py_None, Py_None, 0, 0, Py_None, Py_None) < 0) return NULL;
    PyArrayObject *o = new_array(q, c.lead, 2, c.d.Nq, c.d.dv);
    if (!o) return NULL;
    int st = ATTN_OK;
    struct timespec t0, t1;
    Py_BEGIN_ALLOW_THREADS
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n && st == ATTN_OK; i++)
        st = attn_forward(&c.d, PyArray_DATA(q), PyArray_DATA(k), PyArray_DATA(v), PyArray_DATA(o), NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    Py_END_ALLOW_THREADS
    Py_DECREF(o);
    if (st != ATTN_OK) return attn_raise(st);
    return PyFloat_FromDouble((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
}

/* ---- Module ------------------------------------------------------------------------------- */

static PyObject *py_set_threads(PyObject *self, PyObject *arg) {
    (void)self;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    attn_set_threads(n < 1 ? 1 : n > 256 ? 256 : (int)n);
    Py_RETURN_NONE;
}

static PyObject *py_get_threads(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    return PyLong_FromLong(attn_get_threads());
}

static PyObject *py_get_isa(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    return PyUnicode_FromString(attn_get_isa());
}

static PyMethodDef methods[] = {
    {"attention", (PyCFunction)(void (*)(void))py_attention, METH_VARARGS | METH_KEYWORDS,
     "attention(q, k, v, *, score='scaled', scale=None, mask=None, bias=None, causal=False, window=0,\n"
     "          key_lengths=None, params=None, return_weights=False, return_lse=False)\n\n"
     "softmax(score(q, k) + masks) v, fused. See attn/__init__.pyi."},
    {"attention_backward", (PyCFunction)(void (*)(void))py_attention_backward, METH_VARARGS | METH_KEYWORDS,
     "attention_backward(q, k, v, o, grad_o, *, lse=None, <attention's options>) -> (dq, dk, dv[, dparams])"},
    {"scores", (PyCFunction)(void (*)(void))py_scores, METH_VARARGS | METH_KEYWORDS,
     "scores(q, k, *, score='scaled', scale=None, params=None) -> s (..., Nq, Nk): step 1"},
    {"normalize", (PyCFunction)(void (*)(void))py_normalize, METH_VARARGS | METH_KEYWORDS,
     "normalize(s, *, mask=None, bias=None, causal=False, window=0, key_lengths=None) -> p: step 2"},
    {"weighted_sum", (PyCFunction)py_weighted_sum, METH_VARARGS, "weighted_sum(p, v) -> o = p v: step 3"},
    {"_time_forward", (PyCFunction)py_time_forward, METH_VARARGS,
     "_time_forward(q, k, v, n) -> seconds of n kernel calls (attn_forward, no Python in the loop)"},
    {"set_threads", (PyCFunction)py_set_threads, METH_O, "set_threads(n): threads of the library's parallel work"},
    {"get_threads", (PyCFunction)py_get_threads, METH_NOARGS, "get_threads() -> int"},
    {"get_isa", (PyCFunction)py_get_isa, METH_NOARGS, "get_isa() -> 'ref', 'avx2' or 'avx512'"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_attn", "attn's C library from Python (see the package attn).",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__attn(void) {
    import_array();
    if (PyType_Ready(&MHAType) < 0 || PyType_Ready(&TranslatorType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&MHAType);
    Py_INCREF(&TranslatorType);
    if (PyModule_AddObject(m, "MultiheadAttention", (PyObject *)&MHAType) < 0 ||
        PyModule_AddObject(m, "Translator", (PyObject *)&TranslatorType) < 0 ||
        PyModule_AddStringConstant(m, "__version__", ATTN_VERSION_STRING) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
