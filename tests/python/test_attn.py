"""The module attn against float64 numpy references: every function, score and mask, the
backward against numerical gradients, every error path, reference counts and memory over
many calls, and several Python threads at once."""
import os
import resource
import subprocess
import sys
import threading
import unittest

import numpy as np

import attn
import reference as ref

RNG = np.random.default_rng(1)
SANITIZER = bool(os.environ.get("ATTN_PY_SANITIZER"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def additive_params(A, dq, dk):
    return {"Wa": rand(A, dq), "ba": rand(A), "Ua": rand(A, dk), "bu": rand(A), "va": rand(A), "bv": rand(1)}


class Forward(unittest.TestCase):
    def check(self, q, k, v, tol=2e-5, **kw):
        o, p, lse = attn.attention(q, k, v, return_weights=True, return_lse=True, **kw)
        score_kw = {n: kw[n] for n in ("score", "scale", "params") if n in kw}
        mask_kw = {n: kw[n] for n in kw if n not in score_kw}
        s = ref.scores(q, k, **score_kw)
        want_p = ref.normalize(s, **mask_kw)
        np.testing.assert_allclose(p, want_p, atol=tol, rtol=tol)
        np.testing.assert_allclose(o, ref.weighted_sum(want_p, v), atol=tol * 10, rtol=tol * 10)
        self.assertEqual(o.dtype, np.float32)
        self.assertTrue(o.flags.c_contiguous)
        self.assertEqual(lse.shape, q.shape[:-1])
        o2 = attn.attention(q, k, v, **kw)  # without the weights: the fused path
        np.testing.assert_allclose(o2, o, atol=1e-5, rtol=1e-5)

    def test_scores_kinds(self):
        q, k, v = rand(2, 3, 5, 8), rand(2, 3, 7, 8), rand(2, 3, 7, 6)
        for score in ("dot", "scaled", "cosine"):
            self.check(q, k, v, score=score)
            self.check(q, k, v, score=score, scale=0.3)
        self.check(q, rand(2, 3, 7, 4), v, score="general", params={"W": rand(8, 4)})
        self.check(q, rand(2, 3, 7, 4), v, score="additive", params=additive_params(5, 8, 4), tol=1e-4)

    def test_dimensions_and_grouped_heads(self):
        self.check(rand(5, 8), rand(7, 8), rand(7, 3))                 # (N, d)
        self.check(rand(2, 5, 8), rand(2, 7, 8), rand(2, 7, 3))        # (B, N, d)
        self.check(rand(2, 4, 5, 8), rand(2, 2, 7, 8), rand(2, 2, 7, 3))  # H = 4, Hkv = 2
        self.check(rand(1, 1, 1, 1), rand(1, 1, 1, 1), rand(1, 1, 1, 1))

    def test_masks(self):
        q, k, v = rand(2, 3, 6, 8), rand(2, 3, 6, 8), rand(2, 3, 6, 8)
        self.check(q, k, v, causal=True)
        self.check(q, k, v, window=2)
        self.check(q, k, v, key_lengths=np.array([4, 6]))
        self.check(q, k, v, key_lengths=[0, 3])  # batch 0 sees no key: zero weights, zero output
        mask = RNG.random((6, 6)) > 0.3
        self.check(q, k, v, mask=mask)
        self.check(q, k, v, mask=(RNG.random((2, 1, 6, 6)) > 0.5).astype(np.uint8))
        self.check(q, k, v, bias=rand(3, 6, 6))
        self.check(q, k, v, bias=rand(6), mask=mask, causal=True, key_lengths=[5, 6])
        self.check(q, k, v, bias=np.broadcast_to(rand(1, 6), (2, 3, 6, 6)))  # zero strides
        o = attn.attention(q, k, v, mask=np.zeros((6, 6), bool))
        self.assertTrue(np.all(o == 0))

    def test_strided_views_are_read_in_place(self):
        x = rand(2, 6, 3, 8)  # (B, N, H, d), as a projection writes it
        q = x.transpose(0, 2, 1, 3)  # (B, H, N, d) view: no copy
        self.assertFalse(q.flags.c_contiguous)
        self.check(q, q, q, causal=True)
        qkv = rand(2, 6, 3 * 8)
        q, k, v = (qkv[:, :, i * 8:(i + 1) * 8] for i in range(3))  # slices with gaps
        self.check(q, k, v)

    def test_three_steps(self):
        q, k, v = rand(2, 2, 4, 8), rand(2, 2, 5, 8), rand(2, 2, 5, 3)
        s = attn.scores(q, k)
        np.testing.assert_allclose(s, ref.scores(q, k), atol=1e-5)
        s2 = attn.scores(q, k, score="general", params={"W": rand(8, 8)}, scale=2.0)
        self.assertEqual(s2.shape, (2, 2, 4, 5))
        p = attn.normalize(s, causal=True, key_lengths=[3, 5])
        np.testing.assert_allclose(p, ref.normalize(s, causal=True, key_lengths=[3, 5]), atol=1e-6)
        o = attn.weighted_sum(p, v)
        np.testing.assert_allclose(o, ref.weighted_sum(p, v), atol=1e-5)
        np.testing.assert_allclose(o, attn.attention(q, k, v, causal=True, key_lengths=[3, 5]), atol=1e-5)

    def test_readme_example(self):
        """The README's "From Python" example runs as written (from the repository)."""
        with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("## From Python"):]
        code = section[section.index("```python") + 9:section.index("```", section.index("```python") + 9)]
        self.assertLessEqual(len(code.strip().splitlines()), 10)
        cwd = os.getcwd()
        os.chdir(REPO)
        try:
            env = {}
            exec(compile(code, "README.md", "exec"), env)
        finally:
            os.chdir(cwd)
        x = env["q"][0].reshape(4, 16, 4, 8).transpose(0, 2, 1, 3)  # identity projections: heads of x
        want = ref.attention(x, x, x).transpose(0, 2, 1, 3).reshape(4, 16, 32)
        np.testing.assert_allclose(env["out"], want, atol=1e-5)
        self.assertTrue(env["t"]["text"])
        np.testing.assert_allclose(env["o"], ref.attention(env["q"], env["k"], env["v"], causal=True), atol=1e-5)

    def test_explain(self):
        e = attn.explain()
        self.assertEqual(e["closest"], "我")
        q, keys = e["query"].astype(np.float64), e["keys"].astype(np.float64)
        s = keys @ q / 2.0
        np.testing.assert_allclose(e["weights"], np.exp(s) / np.exp(s).sum(), atol=1e-6)
        np.testing.assert_allclose(e["output"], e["weights"] @ keys, atol=1e-5)
        self.assertEqual(attn.explain("you", score="cosine")["closest"], "你")
        with self.assertRaises(ValueError):
            attn.explain("nobody")


class Backward(unittest.TestCase):
    """attention_backward against central differences of the float64 reference (gradcheck's
    method, with float32 tolerances)."""

    def check(self, q, k, v, tol=2e-3, **kw):
        o, lse = attn.attention(q, k, v, return_lse=True, **kw)
        g = rand(*o.shape)
        params = kw.pop("params", None)
        score_kw = {n: kw.pop(n) for n in ("score", "scale") if n in kw}
        names = sorted(params) if params else []

        def f(q, k, v, *pv):
            return ref.attention(q, k, v, params=dict(zip(names, pv)) or None, **score_kw, **kw)

        want = ref.numeric_grad(f, [q, k, v] + [params[n] for n in names], g)
        for lse_arg in (lse, None):
            got = attn.attention_backward(q, k, v, o, g, lse=lse_arg, params=params, **score_kw, **kw)
            for a, b in zip(got[:3], want[:3]):
                np.testing.assert_allclose(a, b, atol=tol, rtol=tol)
            for n, w in zip(names, want[3:]):
                np.testing.assert_allclose(got[3][n], w, atol=tol, rtol=tol, err_msg=n)

    def test_scaled_with_masks(self):
        q, k, v = rand(2, 2, 4, 5), rand(2, 2, 6, 5), rand(2, 2, 6, 3)
        self.check(q, k, v)
        self.check(q, k, v, causal=True, key_lengths=[3, 6])
        self.check(q, k, v, bias=rand(4, 6), mask=RNG.random((2, 1, 4, 6)) > 0.2)
        self.check(rand(2, 4, 3, 4), rand(2, 2, 5, 4), rand(2, 2, 5, 2))  # grouped heads

    def test_scores_with_parameters(self):
        q, k, v = rand(1, 2, 3, 4), rand(1, 2, 5, 3), rand(1, 2, 5, 2)
        self.check(q, k, v, score="general", params={"W": rand(4, 3)})
        self.check(q, k, v, score="additive", params=additive_params(3, 4, 3), tol=5e-3)
        q, k = rand(1, 2, 3, 4), rand(1, 2, 5, 4)
        self.check(q, k, v, score="cosine", scale=3.0)
        self.check(q, k, v, score="dot")

    def test_strided_gradients_keep_the_layout(self):
        x = rand(2, 5, 3, 4).transpose(0, 2, 1, 3)
        o, lse = attn.attention(x, x, x, return_lse=True)
        g = rand(*o.shape)
        dq, dk, dv = attn.attention_backward(x, x, x, o, g, lse=lse)
        self.assertEqual(dq.strides, x.strides)
        dq2, _, _ = attn.attention_backward(*(np.ascontiguousarray(t) for t in (x, x, x)), o, g)
        np.testing.assert_allclose(dq, dq2, atol=1e-6)
        qkv = rand(2, 5, 12)
        q, k, v = qkv[:, :, 0:4], qkv[:, :, 4:8], qkv[:, :, 8:12]  # gaps: copied, grads contiguous
        o = attn.attention(q, k, v)
        got = attn.attention_backward(q, k, v, o, np.ones_like(o)[:, :, ::1])
        want = attn.attention_backward(*(np.ascontiguousarray(t) for t in (q, k, v)), o, np.ones_like(o))
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-6)


class Errors(unittest.TestCase):
    """Every bad input raises the documented exception; none crashes."""

    def test_bad_inputs(self):
        q = rand(2, 3, 4, 8)
        o = attn.attention(q, q, q)
        cases = [
            (TypeError, lambda: attn.attention([[1.0]], q, q)),
            (TypeError, lambda: attn.attention(q.astype(np.float64), q, q)),
            (TypeError, lambda: attn.attention(q, q.astype(np.float16), q)),
            (TypeError, lambda: attn.attention(q, q, q.astype(">f4"))),
            (ValueError, lambda: attn.attention(q[..., ::2], q[..., ::2], q[..., ::2])),
            (ValueError, lambda: attn.attention(q[:, :, ::-1], q, q)),
            (ValueError, lambda: attn.attention(rand(8), rand(8), rand(8))),
            (ValueError, lambda: attn.attention(rand(1, 2, 3, 4, 5), rand(1, 2, 3, 4, 5), rand(1, 2, 3, 4, 5))),
            (ValueError, lambda: attn.attention(q, rand(3, 4, 8), q)),
            (ValueError, lambda: attn.attention(q, q[:1], q[:1])),
            (ValueError, lambda: attn.attention(q, q, rand(2, 3, 5, 8))),
            (ValueError, lambda: attn.attention(q, rand(2, 3, 4, 7), q)),
            (ValueError, lambda: attn.attention(q, rand(2, 2, 4, 8), rand(2, 2, 4, 8))),
            (ValueError, lambda: attn.attention(rand(2, 3, 0, 8), q, q)),
            (ValueError, lambda: attn.attention(rand(0, 3, 4, 8), rand(0, 3, 4, 8), rand(0, 3, 4, 8))),
            (ValueError, lambda: attn.attention(np.broadcast_to(rand(8), (2, 3, 4, 8)), q, q)),
            (ValueError, lambda: attn.attention(q, q, q, score="nope")),
            (TypeError, lambda: attn.attention(q, q, q, score=3)),
            (ValueError, lambda: attn.attention(q, q, q, scale=0.0)),
            (ValueError, lambda: attn.attention(q, q, q, scale=float("inf"))),
            (TypeError, lambda: attn.attention(q, q, q, scale="big")),
            (ValueError, lambda: attn.attention(q, q, q, window=-1)),
            (TypeError, lambda: attn.attention(q, q, q, mask=np.ones((4, 4), np.float32))),
            (TypeError, lambda: attn.attention(q, q, q, mask=np.ones((4, 4), np.int64))),
            (ValueError, lambda: attn.attention(q, q, q, mask=np.ones((5, 4), bool))),
            (ValueError, lambda: attn.attention(q, q, q, mask=np.ones((1, 2, 3, 4, 4), bool))),
            (TypeError, lambda: attn.attention(q, q, q, bias=np.ones((4, 4)))),
            (ValueError, lambda: attn.attention(q, q, q, bias=rand(3, 3))),
            (ValueError, lambda: attn.attention(q, q, q, key_lengths=[1, 2, 3])),
            (ValueError, lambda: attn.attention(q, q, q, key_lengths=[1, 5])),
            (ValueError, lambda: attn.attention(q, q, q, key_lengths=[-1, 2])),
            (ValueError, lambda: attn.attention(q, q, q, key_lengths=[2**40, 2])),
            (TypeError, lambda: attn.attention(q, q, q, key_lengths=[1.5, 2.0])),
            (TypeError, lambda: attn.attention(q, q, q, key_lengths=[[1, 2]])),
            (ValueError, lambda: attn.attention(q, q, q, score="general")),
            (ValueError, lambda: attn.attention(q, q, q, score="general", params={"W": rand(8, 7)})),
            (TypeError, lambda: attn.attention(q, q, q, score="general", params={"W": np.eye(8)})),
            (TypeError, lambda: attn.attention(q, q, q, score="general", params=[1])),
            (ValueError, lambda: attn.attention(q, q, q, score="general", params={"X": rand(8, 8)})),
            (ValueError, lambda: attn.attention(q, q, q, score="additive", params={"Wa": rand(3, 8)})),
            (ValueError, lambda: attn.attention(q, q, q, score="additive", params={"va": rand(3), "Wa": rand(3, 8)})),
            (ValueError, lambda: attn.attention(q, q, q, score="additive",
                                                params={"va": rand(3), "Wa": rand(3, 8), "Ua": rand(4, 8)})),
            (TypeError, lambda: attn.attention(q, q)),
            (TypeError, lambda: attn.attention(q, q, q, 1.0)),
            (TypeError, lambda: attn.attention(q, q, q, nonsense=1)),
            (ValueError, lambda: attn.attention_backward(q, q, q, o[:, :, :3], o)),
            (ValueError, lambda: attn.attention_backward(q, q, q, o, o[0])),
            (ValueError, lambda: attn.attention_backward(q, q, q, o, o, lse=rand(2, 3, 5))),
            (ValueError, lambda: attn.attention_backward(q, q, q, o, o, lse=rand(2, 3, 4, 1))),
            (TypeError, lambda: attn.attention_backward(q, q, q, o, o.astype(np.float64))),
            (ValueError, lambda: attn.scores(q, rand(2, 3, 4, 7))),
            (ValueError, lambda: attn.normalize(rand(4))),
            (ValueError, lambda: attn.normalize(rand(4, 6).T)),
            (ValueError, lambda: attn.normalize(rand(4, 4), key_lengths=[9])),
            (ValueError, lambda: attn.weighted_sum(rand(2, 4, 5), rand(2, 6, 3))),
            (ValueError, lambda: attn.weighted_sum(rand(2, 4, 5), rand(5, 3))),
            (TypeError, lambda: attn.weighted_sum(rand(4, 5), None)),
        ]
        for i, (exc, call) in enumerate(cases):
            with self.subTest(case=i), self.assertRaises(exc) as cm:
                call()
            self.assertTrue(str(cm.exception), f"case {i}: empty message")

    def test_random_inputs_never_crash(self):
        """Random shapes, dtypes, layouts and masks, most of them valid: each call returns a
        result that matches the reference, or raises TypeError/ValueError."""
        rng = np.random.default_rng(7)

        def arr(shape, dtype=np.float32):
            a = rng.standard_normal(shape).astype(dtype if rng.random() < 0.9 else rng.choice([np.float64, np.int32]))
            r = rng.random()
            if r < 0.05 and a.ndim:
                a = a[..., ::2]  # last dimension strided
            elif r < 0.1 and a.ndim >= 2:
                a = np.swapaxes(a, 0, -2)
            return a

        def like(shape):  # a mask shape that broadcasts to shape, now and then one that does not
            if rng.random() < 0.1 or not shape:
                return tuple(int(x) for x in rng.integers(1, 4, rng.integers(1, 5)))
            tail = shape[len(shape) - int(rng.integers(1, len(shape) + 1)):]
            return tuple(1 if rng.random() < 0.4 else x for x in tail)

        results = {"ok": 0, "error": 0}
        for _ in range(400):
            nd = int(rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.3, 0.3, 0.3, 0.05]))
            dims = [int(x) for x in rng.integers(1, 4, nd)]
            q, k, v = (arr(tuple(x if rng.random() < 0.97 else x - 1 for x in dims)) for _ in range(3))
            kw = {"causal": bool(rng.random() < 0.3)}
            sshape = q.shape[:-1] + k.shape[-2:-1]
            if rng.random() < 0.3:
                kw["mask"] = rng.random(like(sshape)) > 0.3
            if rng.random() < 0.3:
                kw["bias"] = arr(like(sshape))
            if rng.random() < 0.2:
                kw["key_lengths"] = rng.integers(-1, 5, rng.integers(1, 3))
            if rng.random() < 0.2:
                kw["window"] = int(rng.integers(-1, 3))
            try:
                o = attn.attention(q, k, v, **kw)
            except (TypeError, ValueError):
                results["error"] += 1
                continue
            results["ok"] += 1
            self.assertEqual(o.shape, q.shape[:-1] + v.shape[-1:])
            np.testing.assert_allclose(o, ref.attention(q, k, v, **kw), atol=1e-4, rtol=1e-4)
            g = arr(o.shape if rng.random() < 0.8 else tuple(int(x) for x in rng.integers(1, 4, o.ndim)))
            lse = arr(o.shape[:-1]) if rng.random() < 0.2 else None
            try:
                grads = attn.attention_backward(q, k, v, o, g, lse=lse, **kw)
            except (TypeError, ValueError):
                continue
            self.assertEqual([x.shape for x in grads], [q.shape, k.shape, v.shape])
        self.assertGreater(results["ok"], 100, results)
        self.assertGreater(results["error"], 50, results)

    def test_library_message(self):
        with self.assertRaisesRegex(ValueError, "^attn: .*multiple of key/value heads"):
            attn.attention(rand(1, 3, 2, 4), rand(1, 2, 2, 4), rand(1, 2, 2, 4))

    def test_mha_errors(self):
        m = attn.MultiheadAttention(8, 2)
        m12 = attn.MultiheadAttention(12, 3)
        x = rand(2, 3, 8)
        for exc, call in [
            (ValueError, lambda: attn.MultiheadAttention(8, 3)),
            (ValueError, lambda: attn.MultiheadAttention(0, 1)),
            (ValueError, lambda: attn.MultiheadAttention(8, 2, kdim=-1)),
            (ValueError, lambda: attn.MultiheadAttention(8, 2, batch_first=False)),
            (ValueError, lambda: m(x, x, rand(2, 4, 8))),
            (ValueError, lambda: m(rand(2, 3, 4), x, x)),
            (ValueError, lambda: m(x[:, ::2], x[:, ::2], x[:, ::2])),
            (TypeError, lambda: m(x.astype(np.float64), x, x)),
            (ValueError, lambda: m(x, x, x, key_padding_mask=np.zeros((2, 4), bool))),
            (TypeError, lambda: m(x, x, x, key_padding_mask=np.zeros((2, 3), np.float32))),
            (ValueError, lambda: m(x, x, x, attn_mask=np.zeros((4, 3), np.float32))),
            (ValueError, lambda: m(x, x, x, attn_mask=np.zeros((5, 3, 3), bool))),
            (TypeError, lambda: m(x, x, x, attn_mask=np.zeros((3, 3), np.int32))),
            (KeyError, lambda: m.load_state_dict({})),
            (ValueError, lambda: m.load_state_dict({"in_proj_weight": rand(24, 7)})),
            (ValueError, lambda: m.load_state_dict({"bias_k": rand(1, 1, 8)})),
            (TypeError, lambda: m.load_state_dict(3)),
            (OSError, lambda: m.load("/nonexistent/file.safetensors")),
            (ValueError, lambda: m.load(os.path.join(REPO, "tests/data/mha/self_e12h3_n7.weights.safetensors"))),
            (ValueError, lambda: m12.load(os.path.join(REPO, "tests/data/mha/broken_bias_kv.safetensors"))),
            (ValueError, lambda: m12.load(os.path.join(REPO, "tests/data/mha/broken_shape.safetensors"))),
            (KeyError, lambda: m12.load(os.path.join(REPO, "tests/data/mha/broken_missing.safetensors"))),
        ]:
            with self.subTest(call=call), self.assertRaises(exc):
                call()

    def test_translator_errors(self):
        with self.assertRaises(OSError):
            attn.Translator("/nonexistent/model")
        with self.assertRaises(Exception):
            attn.Translator(os.path.join(REPO, "tests/data/mha"))
        t = attn.Translator.__new__(attn.Translator)
        with self.assertRaises(RuntimeError):
            t.translate(["x"])


class MultiheadAttentionTest(unittest.TestCase):
    @staticmethod
    def reference(sd, q, k, v, H, kpm=None, attn_mask=None, causal=False):
        """PyTorch's MultiheadAttention (batch_first) in float64 numpy."""
        E = q.shape[-1]
        w = {n: a.astype(np.float64) for n, a in sd.items()}
        wq, wk, wv = np.split(w["in_proj_weight"], 3)
        bq, bk, bv = np.split(w["in_proj_bias"], 3)
        B, Nq, Nk, d = q.shape[0], q.shape[1], k.shape[1], E // H
        heads = lambda x, n: x.reshape(B, n, H, d).transpose(0, 2, 1, 3)  # noqa: E731
        qh, kh, vh = heads(q @ wq.T + bq, Nq), heads(k @ wk.T + bk, Nk), heads(v @ wv.T + bv, Nk)
        allow = np.ones((B, H, Nq, Nk), bool)
        bias = 0.0
        if kpm is not None:
            allow &= ~kpm[:, None, None, :]
        if attn_mask is not None:
            am = attn_mask.reshape((B, H) + attn_mask.shape[-2:]) if attn_mask.ndim == 3 else attn_mask
            if am.dtype == bool:
                allow &= ~am
            else:
                bias = am
        p = ref.normalize(ref.scores(qh, kh), mask=allow, bias=bias, causal=causal)
        o = ref.weighted_sum(p, vh).transpose(0, 2, 1, 3).reshape(B, Nq, E)
        return o @ w["out_proj.weight"].T + w["out_proj.bias"], p

    def setUp(self):
        self.m = attn.MultiheadAttention(12, 3)
        self.sd = {"in_proj_weight": rand(36, 12), "in_proj_bias": rand(36), "out_proj.weight": rand(12, 12),
                   "out_proj.bias": rand(12)}
        self.m.load_state_dict(self.sd)

    def test_forward_against_reference(self):
        x, y = rand(2, 5, 12), rand(2, 7, 12)
        for kw in [{}, {"kpm": RNG.random((2, 7)) > 0.7}, {"attn_mask": RNG.random((5, 7)) > 0.7},
                   {"attn_mask": rand(6, 5, 7)}, {"causal": True, "kpm": np.array([[0] * 6 + [1]] * 2, bool)}]:
            out, w = self.m(x, y, y, key_padding_mask=kw.get("kpm"), attn_mask=kw.get("attn_mask"),
                            is_causal=kw.get("causal", False), average_attn_weights=False)
            want, wp = self.reference(self.sd, x, y, y, 3, **kw)
            np.testing.assert_allclose(out, want, atol=1e-4, rtol=1e-4)
            np.testing.assert_allclose(w, wp, atol=1e-5)
        out, w = self.m.forward(x, x, x)
        self.assertEqual(w.shape, (2, 5, 5))
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
        self.assertIsNone(self.m(x, x, x, need_weights=False)[1])

    def test_state_dict_and_files(self):
        for n, a in self.m.state_dict().items():
            np.testing.assert_array_equal(a, self.sd[n])
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"attn_py_mha_{os.getpid()}.safetensors")
        try:
            self.m.save(path, prefix="layer.")
            m2 = attn.MultiheadAttention(12, 3)
            m2.load(path, prefix="layer.")
            x = rand(1, 4, 12)
            np.testing.assert_array_equal(m2(x, x, x)[0], self.m(x, x, x)[0])
        finally:
            if os.path.exists(path):
                os.remove(path)
        m3 = attn.MultiheadAttention(12, 3)
        m3.load(os.path.join(REPO, "tests/data/mha/self_e12h3_n7.weights.safetensors"))
        self.assertEqual(set(m3.state_dict()), set(self.sd))
        m4 = attn.MultiheadAttention(16, 4, kdim=8, vdim=6, bias=False)
        self.assertEqual(set(m4.state_dict()), {"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"})
        self.assertEqual((m4.embed_dim, m4.num_heads, m4.kdim, m4.vdim), (16, 4, 8, 6))


class TranslatorTest(unittest.TestCase):
    MODEL = os.path.join(REPO, "models", "zh-en-small")

    @unittest.skipUnless(os.path.isdir(MODEL), "models/zh-en-small is missing")
    def test_translate_as_the_command(self):
        t = attn.Translator(self.MODEL)
        res = t.translate(["我爱你。", "", "他很高兴。"], beam=5)
        self.assertEqual(len(res), 3)
        r = res[0]
        self.assertEqual(r["source"][-1], "<eos>")
        self.assertEqual(r["alignment"].shape, (len(r["target"]), len(r["source"])))
        np.testing.assert_allclose(r["alignment"].sum(axis=1), 1.0, atol=1e-5)
        self.assertEqual(res[1]["text"], "")
        with self.assertRaises(TypeError):
            t.translate("我爱你。")
        with self.assertRaises(ValueError):
            t.translate(["x"], beam=0)
        self.assertEqual(t.label, "bahdanau")
        try:
            import matplotlib
            matplotlib.use("Agg")
            ax = attn.plot_attention(r)
            self.assertEqual([x.get_text() for x in ax.get_xticklabels()], r["source"])
        except ImportError:
            pass  # test_plot_attention reports the skip
        binary = os.environ.get("ATTN_BIN")
        if binary and os.path.exists(binary):
            cli = subprocess.run([binary, "translate", "--model", self.MODEL, "--beam", "5", "我爱你。", "他很高兴。"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
            self.assertEqual([res[0]["text"], res[2]["text"]], cli[:2])

    def test_plot_attention(self):
        try:
            import matplotlib
            matplotlib.use("Agg")
        except ImportError:
            self.skipTest("matplotlib is not installed (python3-matplotlib)")
        ax = attn.plot_attention(np.eye(3, dtype=np.float32), source=["我", "爱", "你"], target=["I", "love", "you"],
                                 title="t", show_values=True)
        self.assertEqual([t.get_text() for t in ax.get_xticklabels()], ["我", "爱", "你"])
        with self.assertRaises(ValueError):
            attn.plot_attention(np.eye(3), source=["a"])


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


class Stability(unittest.TestCase):
    CALLS = 10000 if SANITIZER else 100000

    def test_no_leak_over_many_calls(self):
        q, k, v = rand(1, 1, 4, 8), rand(1, 1, 4, 8), rand(1, 1, 4, 8)
        mask = np.ones((4, 4), bool)
        params = {"W": rand(8, 8)}
        refs = [sys.getrefcount(x) for x in (q, k, v, mask, params["W"])]
        for _ in range(2000):
            attn.attention(q, k, v, mask=mask)
        before = rss_kb()
        for i in range(self.CALLS):
            o = attn.attention(q, k, v, mask=mask, key_lengths=[3], return_lse=(i & 1) == 1)
            if i % 10 == 0:
                attn.attention_backward(q, k, v, o[0] if isinstance(o, tuple) else o, q)
                attn.attention_backward(q, k, v, attn.attention(q, k, v, score="general", params=params), q,
                                        score="general", params=params)
                attn.scores(q, k, score="general", params=params)
                try:
                    attn.attention(q, k, v, bias=rand(3, 3))
                except ValueError:
                    pass
        grown = rss_kb() - before
        self.assertEqual([sys.getrefcount(x) for x in (q, k, v, mask, params["W"])], refs)
        if not SANITIZER:  # AddressSanitizer's quarantine holds freed memory back: RSS grows there
            self.assertLess(grown, 4096, f"RSS grew by {grown} kB over {self.CALLS} calls")

    def test_threads(self):
        q, k, v = rand(2, 2, 16, 8), rand(2, 2, 16, 8), rand(2, 2, 16, 8)
        want = attn.attention(q, k, v, causal=True)
        m = attn.MultiheadAttention(8, 2)
        m.load_state_dict({"in_proj_weight": rand(24, 8), "in_proj_bias": rand(24), "out_proj.weight": rand(8, 8),
                           "out_proj.bias": rand(8)})
        x = rand(2, 16, 8)
        want_m = m(x, x, x)[0]
        errors = []

        def work():
            try:
                for _ in range(100):
                    np.testing.assert_array_equal(attn.attention(q, k, v, causal=True), want)
                    np.testing.assert_array_equal(m(x, x, x)[0], want_m)
            except Exception as e:  # reported to the main thread
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
