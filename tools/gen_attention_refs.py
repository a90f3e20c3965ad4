#!/usr/bin/python3
"""Writes the PyTorch reference files for tests/test_attention_ref.c.

    /usr/bin/python3 tools/gen_attention_refs.py [out_dir]   (default tests/data/attention)

Every case is a folder of .npy files plus one line of tests/data/attention/cases.txt:

    name score causal window scale rtol atol big

  score   dot | scaled | cosine | general | additive
  scale   the attn_desc scale (0 = the score's default)
  rtol    relative tolerance; atol an absolute floor, multiplied by max(1, max |expected|)
          of each array so that it scales with the array's magnitude
  big     1 for the large-logit cases: the test also checks finiteness and that each row's
          weight is concentrated on the reference's argmax

Inputs are float32 (what the C library takes); the reference is computed in float64 from
those same float32 values, so the only difference the test sees is the library's float32
arithmetic. Files of a case (optional ones only when the case uses them):

  inputs  q (B,H,Nq,dq) k (B,Hkv,Nk,dk) v (B,Hkv,Nk,dv) do (B,H,Nq,dv)            float32
          mask  bool, numpy-broadcastable to (B,H,Nq,Nk), True = may attend
          bias  float32, broadcastable the same way, may hold -inf
          key_lengths (B) int32
          W (dq,dk); Wa (A,dq) ba (A) Ua (A,dk) bu (A) va (A) bv (1)             float32
  expect  o (B,H,Nq,dv) p (B,H,Nq,Nk) lse (B,H,Nq) dq dk dv and dW | dWa dba dUa dbu dva dbv
                                                                                  float64

The reference is an independent implementation in plain torch ops (torch 1.13 has no
F.scaled_dot_product_attention): scores, masked_fill(-inf), softmax, weighted sum, and
torch.autograd for every gradient with a random dO. The additive score is the
BahdanauAttention module of PyTorch's seq2seq tutorial, Va(tanh(Wa(q) + Ua(k))), with
nn.Linear layers in float64.

One deliberate difference from PyTorch: a query row that sees no key gets zero weights, a zero
output and no gradient here (PyTorch's softmax of an all -inf row is NaN). The reference
computes those rows safely so that they hold the library's documented values.
"""
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
SCORES = ["dot", "scaled", "cosine", "general", "additive"]


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


class Bahdanau(torch.nn.Module):
    """The tutorial's BahdanauAttention scores, generalised to dq != dk and a hidden size A."""

    def __init__(self, dq, dk, A):
        super().__init__()
        self.Wa = torch.nn.Linear(dq, A)
        self.Ua = torch.nn.Linear(dk, A)
        self.Va = torch.nn.Linear(A, 1)

    def forward(self, query, keys):
        # query (..., Nq, dq), keys (..., Nk, dk) -> scores (..., Nq, Nk)
        return self.Va(torch.tanh(self.Wa(query).unsqueeze(-2) + self.Ua(keys).unsqueeze(-3))).squeeze(-1)


def reference(c):
    """Forward and backward of case c (a dict of numpy inputs and settings) in float64."""
    t = {n: torch.tensor(c[n].astype(np.float64), requires_grad=True) for n in ("q", "k", "v")}
    q, k, v = t["q"], t["k"], t["v"]
    B, H, Nq, dq = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    G = H // Hkv
    # Grouped heads: query head h uses key/value head h // G.
    kr, vr = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
    score, scale = c["score"], c["scale"]
    params = {}
    if score == "dot":
        s = q @ kr.transpose(-1, -2) * (scale or 1.0)
    elif score == "scaled":
        s = q @ kr.transpose(-1, -2) * (scale or 1.0 / math.sqrt(dq))
    elif score == "cosine":
        s = F.normalize(q, dim=-1, eps=1e-12) @ F.normalize(kr, dim=-1, eps=1e-12).transpose(-1, -2) * (scale or 1.0)
    elif score == "general":
        W = torch.tensor(c["W"].astype(np.float64), requires_grad=True)
        params["W"] = W
        s = q @ W @ kr.transpose(-1, -2) * (scale or 1.0)
    elif score == "additive":
        m = Bahdanau(dq, k.shape[-1], c["Wa"].shape[0])
        with torch.no_grad():
            m.Wa.weight.copy_(torch.tensor(c["Wa"].astype(np.float64)))
            m.Wa.bias.copy_(torch.tensor(c["ba"].astype(np.float64)))
            m.Ua.weight.copy_(torch.tensor(c["Ua"].astype(np.float64)))
            m.Ua.bias.copy_(torch.tensor(c["bu"].astype(np.float64)))
            m.Va.weight.copy_(torch.tensor(c["va"].astype(np.float64)).reshape(1, -1))
            m.Va.bias.copy_(torch.tensor(c["bv"].astype(np.float64)))
        params = {"Wa": m.Wa.weight, "ba": m.Wa.bias, "Ua": m.Ua.weight, "bu": m.Ua.bias,
                  "va": m.Va.weight, "bv": m.Va.bias}
        s = m(q, kr)
    else:
        raise ValueError(score)

    # Visibility (B, H, Nq, Nk) from every mask.
    vis = torch.ones(B, H, Nq, Nk, dtype=torch.bool)
    i = torch.arange(Nq).view(-1, 1)
    j = torch.arange(Nk).view(1, -1)
    if c["causal"] or c["window"]:
        vis = vis & (j <= i)
    if c["window"]:
        vis = vis & (j > i - c["window"])
    if "key_lengths" in c:
        kl = torch.tensor(c["key_lengths"].astype(np.int64))
        vis = vis & (torch.arange(Nk).view(1, 1, 1, -1) < kl.view(-1, 1, 1, 1))
    if "mask" in c:
        vis = vis & torch.tensor(c["mask"])
    if "bias" in c:
        s = s + torch.tensor(c["bias"].astype(np.float64))
    s = s.masked_fill(~vis, -math.inf)
    # A row with no visible key (or only -inf biases) would be NaN in torch; give it zeros.
    alive = torch.isfinite(s).any(dim=-1, keepdim=True)
    s_safe = torch.where(alive, s, torch.zeros_like(s))
    p = torch.where(alive, torch.softmax(s_safe, dim=-1), torch.zeros_like(s))
    lse = torch.where(alive.squeeze(-1), torch.logsumexp(s_safe, dim=-1), torch.full(alive.shape[:-1], -math.inf))
    o = p @ vr
    dO = torch.tensor(c["do"].astype(np.float64))
    (o * dO).sum().backward()
    out = {"o": o, "p": p, "lse": lse, "dq": q.grad, "dk": k.grad, "dv": v.grad}
    for n, w in params.items():
        g = w.grad
        out["d" + n] = g.reshape(-1) if n == "va" else g
    assert all(torch.isfinite(x).all() for n, x in out.items() if n != "lse"), c["name"]
    return {n: x.detach().numpy() for n, x in out.items()}


def make(rng, name, score, B, H, Nq, Nk, dq, dk=None, dv=None, Hkv=None, A=0, causal=0, window=0,
         scale=0.0, rtol=1e-5, atol=2e-6, big=0, extra=None):
    dk = dk or dq
    dv = dv or dk
    Hkv = Hkv or H
    c = dict(name=name, score=score, causal=causal, window=window, scale=scale, rtol=rtol, atol=atol, big=big)
    c["q"] = f32(rng, B, H, Nq, dq)
    c["k"] = f32(rng, B, Hkv, Nk, dk)
    c["v"] = f32(rng, B, Hkv, Nk, dv)
    c["do"] = f32(rng, B, H, Nq, dv)
    if score == "general":
        c["W"] = f32(rng, dq, dk, scale=1.0 / math.sqrt(dq))
    if score == "additive":
        c["Wa"] = f32(rng, A, dq, scale=1.0 / math.sqrt(dq))
        c["ba"] = f32(rng, A, scale=0.5)
        c["Ua"] = f32(rng, A, dk, scale=1.0 / math.sqrt(dk))
        c["bu"] = f32(rng, A, scale=0.5)
        c["va"] = f32(rng, A)
        c["bv"] = f32(rng, 1)
    if extra:
        extra(c, rng)
    return c


def cases():
    rng = np.random.default_rng(20240601)
    out = []

    def add(*a, **kw):
        out.append(make(rng, *a, **kw))

    # Every score, no mask, awkward sizes, Nq != Nk.
    add("dot_7x33_d3", "dot", 2, 2, 7, 33, 3)
    add("dot_scale_33x7_d1", "dot", 1, 2, 33, 7, 1, scale=0.75)
    add("scaled_1x1_d1", "scaled", 1, 1, 1, 1, 1)
    add("scaled_129x33_d64", "scaled", 1, 1, 129, 33, 64)
    add("scaled_7x129_d80", "scaled", 1, 1, 7, 129, 80)
    add("cosine_7x33_d3", "cosine", 2, 2, 7, 33, 3)
    add("cosine_scale5_33x7_d80", "cosine", 1, 2, 33, 7, 80, scale=5.0)

    def zero_rows(c, rng):  # a zero query and a zero key: F.normalize's eps branch
        c["q"][0, 0, 2, :] = 0
        c["k"][0, 0, 4, :] = 0
    add("cosine_zero_vectors", "cosine", 1, 1, 7, 7, 3, extra=zero_rows)
    add("general_7x33_dq3_dk5", "general", 2, 2, 7, 33, 3, dk=5, dv=4)
    add("general_scale_33x33_d64", "general", 1, 1, 33, 33, 64, scale=0.125, causal=1)
    add("additive_7x33_dq3_dk5", "additive", 2, 2, 7, 33, 3, dk=5, dv=4, A=8)
    add("additive_33x7_d1", "additive", 1, 1, 33, 7, 1, A=3)

    # Masks.
    add("causal_33x33_d3", "scaled", 1, 2, 33, 33, 3, causal=1)
    add("causal_7x33_topleft", "scaled", 1, 1, 7, 33, 3, causal=1)
    add("causal_33x7_topleft", "scaled", 1, 1, 33, 7, 3, causal=1)
    add("window3_33x33", "scaled", 1, 1, 33, 33, 3, window=3)
    add("window1_7x7", "dot", 1, 1, 7, 7, 3, window=1)

    def bool_nqnk(c, rng):
        m = rng.random((c["q"].shape[2], c["k"].shape[2])) < 0.6
        m[3, :] = False  # a fully masked row
        c["mask"] = m
    add("bool_NqNk", "scaled", 2, 2, 7, 33, 3, extra=bool_nqnk)

    def bool_pad(c, rng):
        m = np.ones((c["q"].shape[0], 1, 1, c["k"].shape[2]), dtype=bool)
        m[0, ..., 5:] = False
        m[1, ..., :] = False  # a batch that sees nothing
        c["mask"] = m
    add("bool_B11Nk", "cosine", 2, 2, 7, 33, 3, extra=bool_pad)

    def bool_head(c, rng):
        c["mask"] = rng.random((1, c["q"].shape[1], c["q"].shape[2], c["k"].shape[2])) < 0.5
    add("bool_1HNqNk_general", "general", 2, 2, 7, 7, 3, dk=5, extra=bool_head)

    def bias_ninf(c, rng):
        b = f32(rng, c["q"].shape[2], c["k"].shape[2])
        b[rng.random(b.shape) < 0.3] = -np.inf
        b[1, :] = -np.inf  # a row hidden by the bias alone
        c["bias"] = b
    add("bias_ninf_NqNk", "scaled", 2, 2, 7, 33, 3, extra=bias_ninf)

    def bias_full(c, rng):
        c["bias"] = f32(rng, c["q"].shape[0], c["q"].shape[1], c["q"].shape[2], c["k"].shape[2])
    add("bias_BHNqNk_additive", "additive", 2, 2, 7, 7, 3, A=5, extra=bias_full)

    def lengths(c, rng):
        c["key_lengths"] = np.array([5, 0, 33], dtype=np.int32)[: c["q"].shape[0]]
    add("key_lengths_scaled", "scaled", 3, 2, 7, 33, 3, extra=lengths)
    add("key_lengths_additive", "additive", 3, 1, 7, 33, 3, A=4, extra=lengths)

    def combo(c, rng):
        B, H, Nq, Nk = c["q"].shape[0], c["q"].shape[1], c["q"].shape[2], c["k"].shape[2]
        c["key_lengths"] = np.array([Nk, 20], dtype=np.int32)
        c["mask"] = rng.random((B, 1, Nq, Nk)) < 0.8
        b = f32(rng, 1, H, Nq, Nk)
        b[rng.random(b.shape) < 0.1] = -np.inf
        c["bias"] = b
    add("combo_causal_bool_bias_len", "scaled", 2, 2, 33, 33, 3, causal=1, extra=combo)
    add("combo_window_cosine", "cosine", 2, 2, 33, 33, 3, window=5, extra=combo)

    def len100(c, rng):
        c["key_lengths"] = np.array([100], dtype=np.int32)
    add("window40_len100_129x129_kv1", "scaled", 1, 2, 129, 129, 3, Hkv=1, window=40, extra=len100)

    # Grouped key/value heads.
    add("grouped_h4_kv2_causal", "scaled", 2, 4, 33, 33, 3, Hkv=2, causal=1)
    add("grouped_h4_kv1_cosine", "cosine", 1, 4, 7, 33, 3, Hkv=1)
    add("grouped_h4_kv2_general", "general", 1, 4, 7, 33, 3, dk=5, Hkv=2, extra=bool_nqnk)
    add("grouped_h4_kv1_additive", "additive", 1, 4, 7, 7, 3, Hkv=1, A=6, causal=1)

    # Large logits (|scores| ~ 1e4). One case where one key dominates each row by far...
    def dominant(c, rng):
        while True:
            q = f32(rng, *c["q"].shape, scale=30.0)
            k = f32(rng, *c["k"].shape, scale=30.0)
            s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64))
            top = np.sort(s, axis=-1)
            if np.abs(s).max() > 5e3 and (top[..., -1] - top[..., -2]).min() > 50:
                break
        c["q"], c["k"] = q, k
    add("big_dominant_7x33_d16", "dot", 1, 2, 7, 33, 16, big=1, rtol=1e-5, atol=1e-5, extra=dominant)

    # ...and one where every logit is about 1e4 with O(1) differences: exp() would overflow
    # without the max subtraction, and fp32 rounding of a 1e4 logit (ulp 1e-3) bounds the
    # accuracy of the weights to about 1e-3 relative.
    def offset(c, rng):
        c["q"][..., 0] = 100.0
        c["k"][..., 0] = 100.0
    add("big_offset_33x33_d4", "dot", 1, 1, 33, 33, 4, big=1, rtol=2e-3, atol=2e-3, extra=offset)

    def big_bias(c, rng):
        c["bias"] = (1e4 + f32(rng, c["q"].shape[2], c["k"].shape[2])).astype(np.float32)
    add("big_bias_scaled_7x33", "scaled", 1, 1, 7, 33, 3, big=1, rtol=2e-3, atol=2e-3, extra=big_bias)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "attention")
    root = os.path.normpath(root)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(root)
    lines = ["# name score causal window scale rtol atol big  (written by tools/gen_attention_refs.py)"]
    for c in cases():
        d = os.path.join(root, c["name"])
        os.makedirs(d)
        for n in ("q", "k", "v", "do", "mask", "bias", "key_lengths", "W", "Wa", "ba", "Ua", "bu", "va", "bv"):
            if n in c:
                np.save(os.path.join(d, n + ".npy"), c[n])
        for n, x in reference(c).items():
            np.save(os.path.join(d, n + ".npy"), np.ascontiguousarray(x, dtype=np.float64))
        lines.append("%s %s %d %d %.9g %g %g %d" % (c["name"], c["score"], c["causal"], c["window"], c["scale"],
                                                  c["rtol"], c["atol"], c["big"]))
    with open(os.path.join(root, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(root) for f in fs)
    print("wrote %d cases, %.2f MB, to %s" % (len(lines) - 1, total / 1e6, root))


if __name__ == "__main__":
    main()
