"""attn.torch against PyTorch: scaled_dot_product_attention forward and backward against a
float64 autograd reference, the fallbacks, and patch(): nn.MultiheadAttention and a small
nn.TransformerEncoder giving PyTorch's results with the attention in attn."""
import math
import os
import unittest
import warnings

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import attn.torch as at
except ImportError:
    torch = None

NO_TORCH = torch is None


def ref_sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """PyTorch 2's definition in float64 (fully masked rows give zeros, as attn's)."""
    q, k, v = q.double(), k.double(), v.double()
    s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    allow = torch.ones(s.shape, dtype=torch.bool)
    if is_causal:
        allow = allow & torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            allow = allow & attn_mask
        else:
            s = s + attn_mask.double()
    s = s.masked_fill(~allow, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return p @ v


@unittest.skipIf(NO_TORCH, "PyTorch is not installed (python3-torch)")
class SDPA(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def check(self, shape_q, shape_k, dv, **kw):
        q = torch.randn(*shape_q, requires_grad=True)
        k = torch.randn(*shape_k, requires_grad=True)
        v = torch.randn(*shape_k[:-1], dv, requires_grad=True)
        o = at.scaled_dot_product_attention(q, k, v, **kw)
        g = torch.randn_like(o)
        (o * g).sum().backward()
        qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
        od = ref_sdpa(qd, kd, vd, **kw)
        (od * g.double()).sum().backward()
        torch.testing.assert_close(o.double(), od, atol=1e-5, rtol=1e-5)
        for a, b in ((q, qd), (k, kd), (v, vd)):
            torch.testing.assert_close(a.grad.double(), b.grad, atol=1e-4, rtol=1e-4)

    def test_against_float64(self):
        self.check((2, 3, 6, 8), (2, 3, 9, 8), 5)
        self.check((2, 3, 6, 8), (2, 3, 6, 8), 8, is_causal=True, scale=0.2)
        self.check((6, 8), (7, 8), 4, attn_mask=torch.rand(6, 7) > 0.3)
        self.check((2, 6, 8), (2, 7, 8), 4, attn_mask=torch.randn(2, 6, 7))
        self.check((2, 2, 5, 4), (2, 2, 5, 4), 4, attn_mask=torch.zeros(5, 5, dtype=torch.bool))

    def test_gradcheck(self):
        """torch.autograd.gradcheck itself, in float32 (finite differences with eps 1e-3, so
        float32 tolerances), on attn's Function with masks and the weights as an output."""
        q, k, v = (torch.randn(1, 2, 3, 4, requires_grad=True) for _ in range(3))
        mask = torch.rand(3, 3) > 0.3
        mask[:, 0] = True
        bias = torch.randn(2, 3, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gradcheck warns that the inputs are not float64
            for fn in (lambda q, k, v: at.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True),
                       lambda q, k, v: at.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.7),
                       lambda q, k, v: at._Attention.apply(q, k, v, None, None, False, None, True)):
                self.assertTrue(torch.autograd.gradcheck(fn, (q, k, v), eps=1e-3, atol=5e-3, rtol=5e-3))

    def test_zero_copy_and_strided_views(self):
        x = torch.randn(2, 6, 3, 8).transpose(1, 2)  # (B, H, N, d) view of (B, N, H, d)
        a = at._np(x)
        self.assertEqual(a.__array_interface__["data"][0], x.data_ptr())
        torch.testing.assert_close(at.scaled_dot_product_attention(x, x, x), ref_sdpa(x, x, x).float())
        e = torch.randn(1, 1, 8).expand(2, 4, 8)  # zero strides: still read in place
        torch.testing.assert_close(at.scaled_dot_product_attention(e, e, e), ref_sdpa(e, e, e).float())

    def test_fallbacks_warn_once(self):
        q = torch.randn(2, 4, 8, dtype=torch.float64)
        at._warned.clear()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            o1 = at.scaled_dot_product_attention(q, q, q)
            o2 = at.scaled_dot_product_attention(q, q, q)
            at.scaled_dot_product_attention(q.float(), q.float(), q.float(), dropout_p=0.5)
        self.assertEqual(len([x for x in w if "float64" in str(x.message)]), 1)
        self.assertEqual(len([x for x in w if "dropout" in str(x.message)]), 1)
        torch.testing.assert_close(o1, ref_sdpa(q, q, q))
        torch.testing.assert_close(o1, o2)

    def test_weights_gradient(self):
        q, k, v = (torch.randn(1, 2, 4, 8, requires_grad=True) for _ in range(3))
        o, p = at._Attention.apply(q, k, v, None, None, False, None, True)
        (o.sum() + (p * torch.randn_like(p)).sum()).backward()
        qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
        torch.manual_seed(0)
        s = qd @ kd.transpose(-2, -1) / math.sqrt(8)
        pd = torch.softmax(s, -1)
        torch.manual_seed(0)
        q2, k2, v2 = (torch.randn(1, 2, 4, 8, requires_grad=True) for _ in range(3))
        o2, p2 = at._Attention.apply(q2, k2, v2, None, None, False, None, True)
        torch.testing.assert_close(p2.double(), pd, atol=1e-6, rtol=1e-5)
        gp = torch.randn_like(p2)
        (o2.sum() + (p2 * gp).sum()).backward()
        ((pd @ vd).sum() + (pd * gp.double()).sum()).backward()
        for a, b in ((q2, qd), (k2, kd), (v2, vd)):
            torch.testing.assert_close(a.grad.double(), b.grad, atol=1e-4, rtol=1e-4)


@unittest.skipIf(NO_TORCH, "PyTorch is not installed (python3-torch)")
class Patch(unittest.TestCase):
    def tearDown(self):
        at.unpatch()

    def run_mha(self, m, x, y, **kw):
        out, w = m(x, y, y, **kw)
        loss = out.square().sum() + (0 if w is None else w.square().sum())
        m.zero_grad()
        x.grad = None
        loss.backward()
        return out.detach(), None if w is None else w.detach(), x.grad.clone(), [p.grad.clone() for p in m.parameters()]

    def test_multihead_attention(self):
        torch.manual_seed(1)
        for batch_first in (True, False):
            m = nn.MultiheadAttention(16, 4, batch_first=batch_first)
            shape = (2, 5, 16) if batch_first else (5, 2, 16)
            x = torch.randn(*shape, requires_grad=True)
            y = torch.randn(*((2, 7, 16) if batch_first else (7, 2, 16)))
            for kw in [{}, {"need_weights": False}, {"key_padding_mask": torch.rand(2, 7) > 0.7},
                       {"attn_mask": torch.rand(5, 7) > 0.8, "average_attn_weights": False},
                       {"attn_mask": torch.randn(8, 5, 7), "key_padding_mask": torch.tensor([[0] * 6 + [1]] * 2).bool()}]:
                at.unpatch()
                want = self.run_mha(m, x, y, **kw)
                at.patch()
                self.assertTrue(at.is_patched())
                got = self.run_mha(m, x, y, **kw)
                for a, b in zip(got[:3], want[:3]):
                    if a is not None:
                        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
                for a, b in zip(got[3], want[3]):
                    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
            # causal masks, float and bool, run as attn's causal flag: the same results
            for cm in (nn.Transformer.generate_square_subsequent_mask(5), torch.ones(5, 5, dtype=torch.bool).triu(1)):
                at.unpatch()
                want = self.run_mha(m, x, x, attn_mask=cm)
                at.patch()
                self.assertTrue(at._is_causal_mask(cm))
                for a, b in zip(self.run_mha(m, x, x, attn_mask=cm)[:3], want[:3]):
                    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
            self.assertFalse(at._is_causal_mask(torch.zeros(5, 5)))
            self.assertFalse(at._is_causal_mask(torch.ones(5, 5, dtype=torch.bool).triu(2)))
            # self-attention (query is key is value)
            at.unpatch()
            want = m(x, x, x)[0]
            at.patch()
            torch.testing.assert_close(m(x, x, x)[0], want, atol=2e-5, rtol=1e-4)
        at.unpatch()
        self.assertFalse(at.is_patched())
        at.patch()
        at.patch()  # idempotent
        at.unpatch()
        self.assertIs(F.multi_head_attention_forward, at._ORIG_MHA)

    def test_numpy_layer_from_torch(self):
        """attn.MultiheadAttention (numpy) against the torch module it copies."""
        import attn
        torch.manual_seed(2)
        for kw in ({}, {"kdim": 6, "vdim": 5, "bias": False}):
            m = nn.MultiheadAttention(16, 4, batch_first=True, **kw).eval()
            a = attn.MultiheadAttention.from_torch(m)
            x, y, z = torch.randn(2, 5, 16), torch.randn(2, 7, m.kdim), torch.randn(2, 7, m.vdim)
            kpm = torch.rand(2, 7) > 0.7
            kpm[:, 0] = False
            with torch.no_grad():
                want, w = m(x, y, z, key_padding_mask=kpm)
            got, gw = a(x.numpy(), y.numpy(), z.numpy(), key_padding_mask=kpm.numpy())
            np.testing.assert_allclose(got, want.numpy(), atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(gw, w.numpy(), atol=1e-6)

    def test_patch_with_pytorch_2_sdpa(self):
        """PyTorch 2's branch of patch(), in a PyTorch that has no F.scaled_dot_product_attention:
        one is put there first (the composite definition), so that attn.torch takes it for
        PyTorch's own; patch() must then swap it for attn's and unpatch() put it back."""
        import subprocess
        import sys
        code = """if 1:
            import torch, torch.nn.functional as F
            def composite(*a, **kw):
                composite.calls += 1
                return torch.softmax(a[0] @ a[1].transpose(-2, -1) / a[0].shape[-1] ** 0.5, -1) @ a[2]
            composite.calls = 0
            F.scaled_dot_product_attention = composite
            import attn.torch as at
            q = torch.randn(2, 3, 5, 8)
            want = composite(q, q, q)
            at.patch()
            assert F.scaled_dot_product_attention is at.scaled_dot_product_attention
            assert F.multi_head_attention_forward is at._ORIG_MHA
            got = F.scaled_dot_product_attention(q, q, q)
            assert composite.calls == 1, composite.calls
            torch.testing.assert_close(got, want)
            F.scaled_dot_product_attention(q.double(), q.double(), q.double())  # falls back
            assert composite.calls == 2, composite.calls
            at.unpatch()
            assert F.scaled_dot_product_attention is composite and not at.is_patched()
            print("ok")
        """
        r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "ok", r.stderr)

    def test_example_script(self):
        """examples/python_train.py runs (a few steps) and trains the same with the patch."""
        import subprocess
        import sys
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "examples", "python_train.py")
        r = subprocess.run([sys.executable, script], capture_output=True, text=True, env=dict(os.environ, STEPS="6"))
        self.assertEqual(r.returncode, 0, r.stderr)
        worst = float(r.stdout.strip().splitlines()[-1].split()[-1])
        self.assertLess(worst, 1e-5, r.stdout)

    def test_transformer_training_matches(self):
        def train(patched):
            torch.manual_seed(3)
            layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
            model = nn.TransformerEncoder(layer, 2)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            x = torch.randn(4, 12, 32)
            mask = nn.Transformer.generate_square_subsequent_mask(12)
            kpm = torch.zeros(4, 12, dtype=torch.bool)
            kpm[0, 10:] = True
            (at.patch if patched else at.unpatch)()
            losses = []
            for _ in range(5):
                opt.zero_grad()
                loss = model(x, mask=mask, src_key_padding_mask=kpm)[1:].square().mean()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            at.unpatch()
            return losses
        want, got = train(False), train(True)
        np.testing.assert_allclose(got, want, rtol=1e-5)


if __name__ == "__main__":
    unittest.main()
