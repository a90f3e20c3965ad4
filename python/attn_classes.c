/* attn._attn's classes: MultiheadAttention (PyTorch nn.MultiheadAttention's weights and
 * forward) and Translator (a trained attn translator). See attnmodule.c for the conventions:
 * numpy arrays without copies, the GIL released around kernel calls, attn's errors as Python
 * exceptions. */
#include "attnmodule.h"

#include <limits.h>
#include <string.h>

#include "attn/attn.h"

/* ---- MultiheadAttention ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    attn_mha_config cfg;
    attn_mha_weights w;
    int busy; /* forwards running with the GIL released: the weights must not change meanwhile */
} MHAObject;

static void mha_dealloc(MHAObject *self) {
    attn_mha_weights_free(&self->w);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int mha_init(MHAObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"embed_dim", "num_heads", "bias", "kdim", "vdim", "batch_first", NULL};
    int E, H, bias = 1, batch_first = 1;
    PyObject *kdim = Py_None, *vdim = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii|pOOp", kwlist, &E, &H, &bias, &kdim, &vdim, &batch_first)) return -1;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "MultiheadAttention is running in another thread");
        return -1;
    }
    if (!batch_first) {
        PyErr_SetString(PyExc_ValueError, "only batch_first=True is supported: inputs are (B, N, E)");
        return -1;
    }
    attn_mha_config cfg = {.embed_dim = E, .num_heads = H, .no_bias = !bias};
    if (kdim != Py_None && (cfg.kdim = (int)PyLong_AsLong(kdim)) == -1 && PyErr_Occurred()) return -1;
    if (vdim != Py_None && (cfg.vdim = (int)PyLong_AsLong(vdim)) == -1 && PyErr_Occurred()) return -1;
    if ((kdim != Py_None && cfg.kdim <= 0) || (vdim != Py_None && cfg.vdim <= 0)) {
        PyErr_SetString(PyExc_ValueError, "kdim and vdim must be positive");
        return -1;
    }
    attn_mha_weights w = {0};
    int st = attn_mha_config_check(&cfg);
    if (st == ATTN_OK) st = attn_mha_weights_init(&w, &cfg);
    if (st != ATTN_OK) {
        attn_raise(st);
        return -1;
    }
    attn_mha_weights_free(&self->w);
    self->cfg = cfg;
    self->w = w;
    return 0;
}

/* The tensors of the state_dict in the order of the weights struct: name, destination, shape. */
typedef struct {
    const char *name;
    float *dst;
    npy_intp shape[2];
    int nd;
} mha_tensor;

static int mha_tensors(MHAObject *self, mha_tensor t[6]) {
    const attn_mha_config *c = &self->cfg;
    const attn_mha_weights *w = &self->w;
    int n = 0, E = c->embed_dim, packed = c->kdim == E && c->vdim == E;
    if (packed) {
        t[n++] = (mha_tensor){"in_proj_weight", w->q_w, {3 * E, E}, 2};
    } else {
        t[n++] = (mha_tensor){"q_proj_weight", w->q_w, {E, E}, 2};
        t[n++] = (mha_tensor){"k_proj_weight", w->k_w, {E, c->kdim}, 2};
        t[n++] = (mha_tensor){"v_proj_weight", w->v_w, {E, c->vdim}, 2};
    }
    if (!c->no_bias) t[n++] = (mha_tensor){"in_proj_bias", w->q_b, {3 * E, 0}, 1};
    t[n++] = (mha_tensor){"out_proj.weight", w->out_w, {E, E}, 2};
    if (!c->no_bias) t[n++] = (mha_tensor){"out_proj.bias", w->out_b, {E, 0}, 1};
    return n;
}

static PyObject *mha_load_state_dict(MHAObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"state_dict", "prefix", NULL};
    PyObject *sd;
    const char *prefix = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|s", kwlist, &sd, &prefix)) return NULL;
    if (!PyMapping_Check(sd)) {
        PyErr_SetString(PyExc_TypeError, "state_dict must be a mapping of names to arrays");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "MultiheadAttention is running in another thread");
        return NULL;
    }
    mha_tensor t[6];
    int n = mha_tensors(self, t);
    PyArrayObject *arr[6] = {0};
    PyObject *ret = NULL;
    const char *extra[] = {"bias_k", "bias_v", self->cfg.no_bias ? "in_proj_bias" : NULL};
    for (int i = 0; i < 3; i++) {
        PyObject *key = extra[i] ? PyUnicode_FromFormat("%s%s", prefix, extra[i]) : NULL;
        int has = key ? PyMapping_HasKey(sd, key) : 0;
        Py_XDECREF(key);
        if (has) {
            PyErr_Format(PyExc_ValueError, "state_dict has %s%s, which this MultiheadAttention does not take%s", prefix,
                         extra[i], i < 2 ? " (add_bias_kv is not supported)" : " (it was made with bias=False)");
            return NULL;
        }
    }
    for (int i = 0; i < n; i++) {
        PyObject *key = PyUnicode_FromFormat("%s%s", prefix, t[i].name);
        PyObject *o = key ? PyObject_GetItem(sd, key) : NULL;
        Py_XDECREF(key);
        if (!o) {
            PyErr_Clear();
            PyErr_Format(PyExc_KeyError, "state_dict has no %s%s", prefix, t[i].name);
            goto done;
        }
        /* Weights are copied (they are owned by the layer): any real dtype is converted. */
        arr[i] = (PyArrayObject *)PyArray_FROMANY(o, NPY_FLOAT32, 0, 0, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
        Py_DECREF(o);
        if (!arr[i]) goto done;
        if (PyArray_NDIM(arr[i]) != t[i].nd || !PyArray_CompareLists(PyArray_DIMS(arr[i]), t[i].shape, t[i].nd)) {
            char b1[96], b2[96];
            PyArrayObject *want = (PyArrayObject *)PyArray_SimpleNew(t[i].nd, t[i].shape, NPY_FLOAT32);
            PyErr_Format(PyExc_ValueError, "%s%s has shape %s, expected %s", prefix, t[i].name,
                         shape_of((PyObject *)arr[i], b1), shape_of((PyObject *)want, b2));
            Py_XDECREF(want);
            goto done;
        }
    }
    for (int i = 0; i < n; i++) memcpy(t[i].dst, PyArray_DATA(arr[i]), (size_t)PyArray_NBYTES(arr[i]));
    ret = Py_None;
    Py_INCREF(ret);
done:
    for (int i = 0; i < n; i++) Py_XDECREF(arr[i]);
    return ret;
}

static PyObject *mha_state_dict(MHAObject *self, PyObject *noargs) {
    (void)noargs;
    mha_tensor t[6];
    int n = mha_tensors(self, t);
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < n; i++) {
        PyObject *a = PyArray_SimpleNew(t[i].nd, t[i].shape, NPY_FLOAT32);
        if (a) memcpy(PyArray_DATA((PyArrayObject *)a), t[i].dst, (size_t)PyArray_NBYTES((PyArrayObject *)a));
        if (!a || PyDict_SetItemString(d, t[i].name, a) < 0) Py_CLEAR(d);
        Py_XDECREF(a);
    }
    return d;
}

static PyObject *mha_load(MHAObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "prefix", NULL};
    PyObject *path;
    const char *prefix = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|s", kwlist, PyUnicode_FSConverter, &path, &prefix)) return NULL;
    if (self->busy) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "MultiheadAttention is running in another thread");
        return NULL;
    }
    attn_mha_weights w = {0};
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = attn_mha_load(&w, &self->cfg, PyBytes_AS_STRING(path), prefix);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (st != ATTN_OK) return attn_raise(st);
    attn_mha_weights_free(&self->w);
    self->w = w;
    Py_RETURN_NONE;
}

static PyObject *mha_save(MHAObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "prefix", NULL};
    PyObject *path;
    const char *prefix = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|s", kwlist, PyUnicode_FSConverter, &path, &prefix)) return NULL;
    int st = attn_mha_save(&self->w, &self->cfg, PyBytes_AS_STRING(path), prefix);
    Py_DECREF(path);
    if (st != ATTN_OK) return attn_raise(st);
    Py_RETURN_NONE;
}

/* forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
 *         average_attn_weights=True, is_causal=False) -> (out, weights or None) */
static PyObject *mha_forward(MHAObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"query", "key", "value", "key_padding_mask", "need_weights", "attn_mask",
                             "average_attn_weights", "is_causal", NULL};
    PyObject *qo, *ko, *vo, *kpmo = Py_None, *amo = Py_None;
    int need_weights = 1, average = 1, is_causal = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OpOpp", kwlist, &qo, &ko, &vo, &kpmo, &need_weights, &amo, &average,
                                     &is_causal))
        return NULL;
    const attn_mha_config *cfg = &self->cfg;
    PyArrayObject *q = check_array(qo, "query", NPY_FLOAT32, 3, 3, CONTIG);
    PyArrayObject *k = q ? check_array(ko, "key", NPY_FLOAT32, 3, 3, CONTIG) : NULL;
    PyArrayObject *v = k ? check_array(vo, "value", NPY_FLOAT32, 3, 3, CONTIG) : NULL;
    if (!v) return NULL;
    npy_intp B = PyArray_DIM(q, 0), Nq = PyArray_DIM(q, 1), Nk = PyArray_DIM(k, 1);
    if (!B || !Nq || !Nk) {
        PyErr_SetString(PyExc_ValueError, "query, key and value must not be empty");
        return NULL;
    }
    if (PyArray_DIM(q, 2) != cfg->embed_dim || PyArray_DIM(k, 0) != B || PyArray_DIM(k, 2) != cfg->kdim ||
        PyArray_DIM(v, 0) != B || PyArray_DIM(v, 1) != Nk || PyArray_DIM(v, 2) != cfg->vdim) {
        char b1[96], b2[96], b3[96];
        PyErr_Format(PyExc_ValueError, "shapes do not fit: query %s, key %s, value %s (want (B, Nq, %d), (B, Nk, %d), "
                     "(B, Nk, %d))", shape_of(qo, b1), shape_of(ko, b2), shape_of(vo, b3), cfg->embed_dim, cfg->kdim,
                     cfg->vdim);
        return NULL;
    }
    attn_mha_masks m = {.is_causal = is_causal};
    if (kpmo != Py_None) {
        PyArrayObject *kpm = check_array(kpmo, "key_padding_mask", NPY_BOOL, 2, 2, CONTIG);
        if (!kpm) return NULL;
        if (PyArray_DIM(kpm, 0) != B || PyArray_DIM(kpm, 1) != Nk) {
            PyErr_Format(PyExc_ValueError, "key_padding_mask must have shape (B, Nk) = (%zd, %zd)", (Py_ssize_t)B,
                         (Py_ssize_t)Nk);
            return NULL;
        }
        m.key_padding_mask = (const uint8_t *)PyArray_DATA(kpm);
    }
    if (amo != Py_None) {
        int is_bool = PyArray_Check(amo) && PyArray_TYPE((PyArrayObject *)amo) == NPY_BOOL;
        PyArrayObject *am = check_array(amo, "attn_mask", is_bool ? NPY_BOOL : NPY_FLOAT32, 2, 3, CONTIG);
        if (!am) return NULL;
        m.attn_mask_ndim = PyArray_NDIM(am);
        for (int i = 0; i < m.attn_mask_ndim; i++) m.attn_mask_shape[i] = PyArray_DIM(am, i);
        if (is_bool) m.attn_mask_bool = (const uint8_t *)PyArray_DATA(am);
        else m.attn_mask_float = (const float *)PyArray_DATA(am);
    }
    npy_intp oshape[3] = {B, Nq, cfg->embed_dim};
    npy_intp wshape[4] = {B, cfg->num_heads, Nq, Nk};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(3, oshape, NPY_FLOAT32);
    PyArrayObject *wts = NULL;
    if (out && need_weights) {
        if (average) wshape[1] = Nq, wshape[2] = Nk;
        wts = (PyArrayObject *)PyArray_SimpleNew(average ? 3 : 4, wshape, NPY_FLOAT32);
    }
    if (!out || (need_weights && !wts)) {
        Py_XDECREF(out);
        return NULL;
    }
    attn_mha_cache cache = {0};
    int st = attn_mha_cache_init(&cache, cfg, (int)B, (int)Nq, (int)Nk);
    if (st == ATTN_OK) {
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        st = attn_mha_forward(cfg, &self->w, &cache, PyArray_DATA(q), PyArray_DATA(k), PyArray_DATA(v), &m,
                              PyArray_DATA(out), wts ? PyArray_DATA(wts) : NULL, average);
        Py_END_ALLOW_THREADS
        self->busy--;
    }
    attn_mha_cache_free(&cache);
    if (st != ATTN_OK) {
        Py_DECREF(out);
        Py_XDECREF(wts);
        return attn_raise(st);
    }
    PyObject *ret = PyTuple_Pack(2, out, wts ? (PyObject *)wts : Py_None);
    Py_DECREF(out);
    Py_XDECREF(wts);
    return ret;
}

static PyMethodDef mha_methods[] = {
    {"forward", (PyCFunction)(void (*)(void))mha_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,\n"
     "        average_attn_weights=True, is_causal=False) -> (out, weights)\n\n"
     "As torch.nn.MultiheadAttention(batch_first=True) in eval mode: query (B, Nq, E), key (B, Nk, kdim),\n"
     "value (B, Nk, vdim), C-contiguous float32. key_padding_mask (B, Nk) bool, True = padding;\n"
     "attn_mask (Nq, Nk), (B*H, Nq, Nk) or (H, Nq, Nk): bool (True = NOT allowed) or float32 (added).\n"
     "weights (B, Nq, Nk) averaged over heads, (B, H, Nq, Nk) per head, or None."},
    {"load_state_dict", (PyCFunction)(void (*)(void))mha_load_state_dict, METH_VARARGS | METH_KEYWORDS,
     "load_state_dict(state_dict, prefix='')\n\nCopies PyTorch's tensors (in_proj_weight, in_proj_bias, "
     "out_proj.weight, out_proj.bias;\nq/k/v_proj_weight when kdim or vdim differ) from a mapping of arrays."},
    {"state_dict", (PyCFunction)mha_state_dict, METH_NOARGS, "state_dict() -> dict of numpy arrays (copies)"},
    {"load", (PyCFunction)(void (*)(void))mha_load, METH_VARARGS | METH_KEYWORDS,
     "load(path, prefix='')\n\nReads the weights from a safetensors file under PyTorch's state_dict names."},
    {"save", (PyCFunction)(void (*)(void))mha_save, METH_VARARGS | METH_KEYWORDS,
     "save(path, prefix='')\n\nWrites the weights as a safetensors file (F32), atomically."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef mha_members[] = {
    {"embed_dim", T_INT, offsetof(MHAObject, cfg.embed_dim), READONLY, "E"},
    {"num_heads", T_INT, offsetof(MHAObject, cfg.num_heads), READONLY, "H"},
    {"kdim", T_INT, offsetof(MHAObject, cfg.kdim), READONLY, "features of key inputs"},
    {"vdim", T_INT, offsetof(MHAObject, cfg.vdim), READONLY, "features of value inputs"},
    {NULL, 0, 0, 0, NULL}};

static PyObject *mha_call(PyObject *self, PyObject *args, PyObject *kw) {
    return mha_forward((MHAObject *)self, args, kw);
}

PyTypeObject MHAType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "attn._attn.MultiheadAttention",
    .tp_basicsize = sizeof(MHAObject),
    .tp_dealloc = (destructor)mha_dealloc,
    .tp_call = mha_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "MultiheadAttention(embed_dim, num_heads, bias=True, kdim=None, vdim=None, batch_first=True)\n\n"
              "torch.nn.MultiheadAttention's forward (inference, batch_first=True) in attn. The weights start\n"
              "at zero: load them with load_state_dict() or load().",
    .tp_methods = mha_methods,
    .tp_members = mha_members,
    .tp_init = (initproc)mha_init,
    .tp_new = PyType_GenericNew,
};

/* ---- Translator --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    attn_translator *t;
    int busy; /* a translator is for one thread at a time */
} TranslatorObject;

static void tr_dealloc(TranslatorObject *self) {
    attn_translator_free(self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int tr_init(TranslatorObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"model_dir", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, PyUnicode_FSConverter, &path)) return -1;
    if (self->busy) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "Translator is in use by another thread");
        return -1;
    }
    attn_translator *t = NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = attn_translator_load(PyBytes_AS_STRING(path), &t);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (st != ATTN_OK) {
        attn_raise(st);
        return -1;
    }
    attn_translator_free(self->t);
    self->t = t;
    return 0;
}

static PyObject *token_list(const attn_tokens *t, int eos) {
    PyObject *l = PyList_New(t->n + eos);
    for (int i = 0; l && i < t->n + eos; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(i < t->n ? t->tok[i] : "<eos>", i < t->n ? t->len[i] : 5, "replace");
        if (!s) Py_CLEAR(l);
        else PyList_SET_ITEM(l, i, s);
    }
    return l;
}

/* One translation as a dict: text, source tokens (with <eos>), target tokens (with <eos> when
 * decoding ended with it: the rows of the alignment), alignment (rows, S) or None, score. */
static PyObject *translation_dict(const attn_s2s_translation *tr) {
    PyObject *align = Py_None;
    Py_INCREF(align);
    const attn_s2s_hyp *h = &tr->hyp;
    if (h->align && h->S > 0) {
        npy_intp shape[2] = {h->n + h->eos, h->S};
        Py_DECREF(align);
        align = PyArray_SimpleNew(2, shape, NPY_FLOAT32);
        if (!align) return NULL;
        memcpy(PyArray_DATA((PyArrayObject *)align), h->align, sizeof(float) * (size_t)shape[0] * (size_t)shape[1]);
    }
    PyObject *src = token_list(&tr->src, 0), *tgt = token_list(&tr->out, h->eos);
    PyObject *d = NULL;
    if (src && tgt)
        d = Py_BuildValue("{s:s,s:O,s:O,s:O,s:d,s:i}", "text", tr->text ? tr->text : "", "source", src, "target", tgt,
                          "alignment", align, "score", h->score, "unknown", tr->n_unk);
    Py_XDECREF(src);
    Py_XDECREF(tgt);
    Py_DECREF(align);
    return d;
}

static PyObject *tr_translate(TranslatorObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"sentences", "beam", "max_len", "len_alpha", NULL};
    PyObject *sents;
    int beam = 5, max_len = 0;
    double alpha = 1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|iid", kwlist, &sents, &beam, &max_len, &alpha)) return NULL;
    if (!self->t) {
        PyErr_SetString(PyExc_RuntimeError, "Translator was not initialised");
        return NULL;
    }
    if (PyUnicode_Check(sents) || PyBytes_Check(sents)) {
        PyErr_SetString(PyExc_TypeError, "translate takes a list of sentences (wrap one sentence in a list)");
        return NULL;
    }
    if (beam < 1 || beam > 100 || max_len < 0 || !(alpha >= 0.0 && alpha <= 10.0)) {
        PyErr_SetString(PyExc_ValueError, "beam must be in [1, 100], max_len >= 0 and len_alpha in [0, 10]");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(sents, "sentences must be a list of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyUnicode_Check(PySequence_Fast_GET_ITEM(seq, i))) {
            PyErr_Format(PyExc_TypeError, "sentence %zd is not a str", i);
            Py_DECREF(seq);
            return NULL;
        }
    if (self->busy) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_RuntimeError, "Translator is in use by another thread (use one per thread)");
        return NULL;
    }
    attn_s2s_decode_opts opts = attn_s2s_decode_defaults();
    opts.beam = beam;
    opts.max_len = max_len;
    opts.len_alpha = (float)alpha;
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i); /* held: the list may change meanwhile */
        Py_INCREF(item);
        const char *s = PyUnicode_AsUTF8(item);
        if (!s) {
            Py_DECREF(item);
            Py_CLEAR(out);
            break;
        }
        attn_s2s_translation tr = {0};
        int st;
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        st = attn_translator_translate(self->t, s, &opts, &tr);
        Py_END_ALLOW_THREADS
        self->busy = 0;
        Py_DECREF(item);
        PyObject *d = st == ATTN_OK ? translation_dict(&tr) : attn_raise(st);
        attn_s2s_translation_free(&tr);
        if (!d) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, d);
    }
    Py_DECREF(seq);
    return out;
}

static PyObject *tr_kind(TranslatorObject *self, void *closure) {
    (void)closure;
    if (self->t) return PyUnicode_FromString(attn_translator_label(self->t));
    Py_RETURN_NONE;
}

static PyMethodDef tr_methods[] = {
    {"translate", (PyCFunction)(void (*)(void))tr_translate, METH_VARARGS | METH_KEYWORDS,
     "translate(sentences, beam=5, max_len=0, len_alpha=1.0) -> list of dict\n\n"
     "Each dict: text, source (tokens with <eos>), target (tokens, <eos> last when decoding ended\n"
     "with it), alignment (len(target), len(source)) float32 array or None, score, unknown."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef tr_getset[] = {{"label", (getter)tr_kind, NULL, "the model's label", NULL}, {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject TranslatorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "attn._attn.Translator",
    .tp_basicsize = sizeof(TranslatorObject),
    .tp_dealloc = (destructor)tr_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Translator(model_dir)\n\nA translation model of attn (any family) loaded from its checkpoint directory.",
    .tp_methods = tr_methods,
    .tp_getset = tr_getset,
    .tp_init = (initproc)tr_init,
    .tp_new = PyType_GenericNew,
};

