#!/usr/bin/python3
"""Writes the tiny reference files the command-line tests use (tests/cli_attend.sh,
tests/cli_mha.sh, tests/cli_errors.sh).

    /usr/bin/python3 tools/gen_cli_fixtures.py [out_dir]     (default tests/data/cli)

Every case NAME is a set of NAME_*.npy files (and NAME_params.safetensors where it has
learned parameters); the shell tests run `attn` on the inputs and compare its outputs with the
expected ones using `attn npy-diff`.

  attend cases   inputs   q k v (float32, or float64 for `dot2d` to test the conversion),
                          mask (bool, True = may attend, or float, added to the scores),
                          lens (key lengths, int32 or int64), do (dO), params.safetensors
                 expect   o, p (weights, always (B, H, Nq, Nk)), dq, dk, dv   (float32, computed
                          in float64 from the float32 inputs)
     gqa       scaled, 4-D, grouped heads (H 4, Hkv 2), causal; forward and backward
     dot2d     dot, 2-D arrays in float64, bool mask (Nq, Nk)
     cos3d     cosine, 3-D arrays, --scale 5, float mask (Nq, Nk) broadcast, int64 key
               lengths with one batch of length 0 (zero output, no gradient); backward
     general   general (Luong) q^T W k with W (dq, dk), dq != dk, window 2; backward
     additive  additive (Bahdanau), the BahdanauAttention module of PyTorch's seq2seq
               tutorial (Wa, Ua, Va nn.Linear) with dq != dk, int32 key lengths; backward
  mha cases      torch.nn.MultiheadAttention(batch_first=True) in float64 on float32-rounded
                 inputs and weights; params.safetensors is its state_dict under PyTorch's names
     mha_self   self-attention, E 8, H 2, causal (given to torch as the bool mask
                triu(ones, 1)), key padding mask; weights averaged and per head
     mha_cross  cross-attention, kdim 6, vdim 5 (q/k/v_proj_weight), bias=False, float
                attn_mask (Nq, Nk); unbatched (2-D) inputs
     mha_self_prefixed.safetensors   mha_self's weights under 'encoder.layers.0.self_attn.'
     mha_self_causal_mask.npy        bool triu(ones, 1) (True = NOT allowed): --causal's mask
  error inputs   bad_i32 (an int32 array), bad_k3/bad_v3 (3 key/value heads), bad_lens (a key
                 length of 9), ok_q/ok_k/ok_v small valid arrays for the error cases

The reference is independent of the library: plain torch ops in float64 and torch.autograd for
the gradients of sum(O * dO). A query row that sees no key gets zero weights and a zero output
(the library's documented rule; PyTorch would give NaN), computed here without infinities.
safetensors files are written by hand (the package is not installed).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "cli")


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), arr)


def save_safetensors(name, tensors):
    """tensors: {name: float32 numpy array}; written as the reference implementation does."""
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k], dtype="<f4")
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def as4(x):
    """(N, d) -> (1, 1, N, d); (B, N, d) -> (B, 1, N, d)."""
    while x.dim() < 4:
        x = x.unsqueeze(1) if x.dim() == 3 else x.unsqueeze(0)
    return x


def attention(q, k, v, scores_fn, visible, bias=None):
    """q (B,H,Nq,dq), k (B,Hkv,Nk,dk), v (B,Hkv,Nk,dv) torch float64; visible bool (B,H,Nq,Nk).
    Masked softmax without infinities: rows with no visible key get zero weights."""
    G = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
    s = scores_fn(q, k)
    if bias is not None:
        s = s + bias
    s = torch.where(visible, s, torch.zeros_like(s))
    m = torch.where(visible, s, torch.full_like(s, -1e300)).amax(-1, keepdim=True).detach()
    m = torch.where(m > -1e299, m, torch.zeros_like(m))
    e = torch.where(visible, torch.exp(s - m), torch.zeros_like(s))
    den = e.sum(-1, keepdim=True)
    p = e / torch.where(den > 0, den, torch.ones_like(den))
    return p @ v, p


def visibility(B, H, Nq, Nk, causal=False, window=0, lens=None, bool_mask=None):
    vis = torch.ones(B, H, Nq, Nk, dtype=torch.bool)
    i = torch.arange(Nq)[:, None]
    j = torch.arange(Nk)[None, :]
    if causal or window:
        vis &= j <= i
    if window:
        vis &= j > i - window
    if lens is not None:
        for b in range(B):
            vis[b, :, :, int(lens[b]):] = False
    if bool_mask is not None:
        vis &= torch.tensor(bool_mask).broadcast_to(vis.shape)
    return vis


def run_case(name, q, k, v, scores_fn, vis, bias=None, backward=True, rng=None, extra_leaves=()):
    """Saves inputs q k v (as given), expected o, p and, with backward, do, dq, dk, dv."""
    save(name + "_q", q)
    save(name + "_k", k)
    save(name + "_v", v)
    tq, tk, tv = t(q, True), t(k, True), t(v, True)
    o, p = attention(as4(tq), as4(tk), as4(tv), scores_fn, vis, bias)
    o_out = o.reshape(q.shape[:-1] + (v.shape[-1],)) if q.ndim < 4 else o
    save(name + "_o", o_out.detach().numpy().astype(np.float32))
    save(name + "_p", p.detach().numpy().astype(np.float32))
    if backward:
        do = f32(rng, *o_out.shape)
        save(name + "_do", do)
        (o_out * t(do)).sum().backward()
        save(name + "_dq", tq.grad.numpy().astype(np.float32))
        save(name + "_dk", tk.grad.numpy().astype(np.float32))
        save(name + "_dv", tv.grad.numpy().astype(np.float32))


def dot_scores(scale):
    return lambda q, k: (q @ k.transpose(-1, -2)) * scale


def cosine_scores(scale):
    def f(q, k):
        qn = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        kn = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return (qn @ kn.transpose(-1, -2)) * scale
    return f


class BahdanauAttention(torch.nn.Module):
    """PyTorch's seq2seq tutorial module (scores only), generalised to dq != dk."""

    def __init__(self, dq, dk, hidden):
        super().__init__()
        self.Wa = torch.nn.Linear(dq, hidden)
        self.Ua = torch.nn.Linear(dk, hidden)
        self.Va = torch.nn.Linear(hidden, 1)

    def forward(self, query, keys):  # query (..., Nq, dq), keys (..., Nk, dk) -> (..., Nq, Nk)
        return self.Va(torch.tanh(self.Wa(query).unsqueeze(-2) + self.Ua(keys).unsqueeze(-3))).squeeze(-1)


def attend_cases(rng):
    # gqa: scaled, grouped heads, causal, 4-D.
    B, H, Hkv, Nq, Nk, d, dv = 2, 4, 2, 5, 7, 8, 6
    run_case("gqa", f32(rng, B, H, Nq, d), f32(rng, B, Hkv, Nk, d), f32(rng, B, Hkv, Nk, dv),
             dot_scores(1 / math.sqrt(d)), visibility(B, H, Nq, Nk, causal=True), rng=rng)

    # dot2d: float64 2-D inputs, bool mask (Nq, Nk) with one visible key per row at least.
    Nq, Nk, d, dv = 4, 5, 6, 3
    mask = rng.random((Nq, Nk)) < 0.6
    mask[np.arange(Nq), rng.integers(0, Nk, Nq)] = True
    save("dot2d_mask", mask)
    run_case("dot2d", rng.standard_normal((Nq, d)), rng.standard_normal((Nk, d)), rng.standard_normal((Nk, dv)),
             dot_scores(1.0), visibility(1, 1, Nq, Nk, bool_mask=mask), backward=False)

    # cos3d: 3-D, cosine * 5, float bias (Nq, Nk), int64 key lengths [6, 0].
    B, Nq, Nk, d, dv = 2, 3, 6, 4, 5
    bias = f32(rng, Nq, Nk)
    lens = np.array([Nk, 0], dtype=np.int64)
    save("cos3d_mask", bias)
    save("cos3d_lens", lens)
    run_case("cos3d", f32(rng, B, Nq, d), f32(rng, B, Nk, d), f32(rng, B, Nk, dv), cosine_scores(5.0),
             visibility(B, 1, Nq, Nk, lens=lens), bias=t(bias), rng=rng)

    # general: q^T W k, dq 4 != dk 6, window 2.
    B, H, Nq, Nk, dq, dk, dv = 1, 2, 3, 5, 4, 6, 3
    W = f32(rng, dq, dk) * np.float32(0.5)
    save_safetensors("general_params", {"W": W, "unused": np.zeros(2, np.float32)})
    tW = t(W)
    run_case("general", f32(rng, B, H, Nq, dq), f32(rng, B, 1, Nk, dk), f32(rng, B, 1, Nk, dv),
             lambda q, k: q @ tW @ k.transpose(-1, -2), visibility(B, H, Nq, Nk, window=2), rng=rng)

    # additive: the tutorial's BahdanauAttention, dq 4, dk 5, hidden 6, int32 key lengths.
    B, H, Nq, Nk, dq, dk, dv, A = 2, 1, 3, 4, 4, 5, 3, 6
    torch.manual_seed(0)
    mod = BahdanauAttention(dq, dk, A)
    sd = {n: p.detach().numpy().astype(np.float32) for n, p in mod.state_dict().items()}
    with torch.no_grad():
        for n, p in mod.named_parameters():
            p.copy_(torch.tensor(sd[n].astype(np.float64)))
    save_safetensors("additive_params", sd)
    lens = np.array([4, 2], dtype=np.int32)
    save("additive_lens", lens)
    run_case("additive", f32(rng, B, H, Nq, dq), f32(rng, B, H, Nk, dk), f32(rng, B, H, Nk, dv),
             lambda q, k: mod(q, k), visibility(B, H, Nq, Nk, lens=lens), rng=rng)


def mha_case(name, rng, E, H, B, Nq, Nk, kdim=None, vdim=None, bias=True, causal=False, kpm=False,
             float_mask=False, unbatched=False):
    kdim, vdim = kdim or E, vdim or E
    torch.manual_seed(1)
    mod = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    sd = {n: p.detach().numpy().astype(np.float32) for n, p in mod.state_dict().items()}
    with torch.no_grad():
        for n, p in mod.named_parameters():
            p.copy_(torch.tensor(sd[n].astype(np.float64)))
    save_safetensors(name + "_params", sd)
    if name == "mha_self":  # the same layer inside a larger model's state_dict
        save_safetensors(name + "_prefixed", {"encoder.layers.0.self_attn." + n: a for n, a in sd.items()})
        save(name + "_causal_mask", np.triu(np.ones((Nq, Nk), bool), 1))  # True = NOT allowed
    self_attn = kdim == E and vdim == E and Nk == Nq and not float_mask
    x = f32(rng, B, Nq, E)
    key = x if self_attn else f32(rng, B, Nk, kdim)
    value = x if self_attn else f32(rng, B, Nk, vdim)
    sq = (lambda a: a[0]) if unbatched else (lambda a: a)
    save(name + "_x", sq(x))
    if not self_attn:
        save(name + "_key", sq(key))
        save(name + "_value", sq(value))
    kw = {}
    if causal:
        kw["attn_mask"] = torch.triu(torch.ones(Nq, Nk, dtype=torch.bool), 1)
    if float_mask:
        m = f32(rng, Nq, Nk)
        save(name + "_attn_mask", m)
        kw["attn_mask"] = t(m)
    if kpm:
        pad = np.zeros((B, Nk), bool)
        pad[1, -2:] = True
        save(name + "_kpm", sq(pad))
        kw["key_padding_mask"] = torch.tensor(pad)
    args = [t(x), t(key), t(value)]
    if unbatched:
        args = [a[0] for a in args]
        if "key_padding_mask" in kw:
            kw["key_padding_mask"] = kw["key_padding_mask"][0]
    with torch.no_grad():
        out, w_avg = mod(*args, need_weights=True, average_attn_weights=True, **kw)
        _, w_head = mod(*args, need_weights=True, average_attn_weights=False, **kw)
    save(name + "_out", out.numpy().astype(np.float32))
    save(name + "_w", w_avg.numpy().astype(np.float32))
    save(name + "_wh", w_head.numpy().astype(np.float32))


def error_inputs(rng):
    save("bad_i32", rng.integers(0, 5, (3, 4)).astype(np.int32))
    save("bad_k3", f32(rng, 2, 3, 7, 8))  # 3 key/value heads: gqa_q's 4 heads do not divide
    save("bad_v3", f32(rng, 2, 3, 7, 6))
    save("bad_lens", np.array([9], dtype=np.int32))  # longer than any fixture's Nk
    save("ok_q", f32(rng, 3, 4))
    save("ok_k", f32(rng, 5, 4))
    save("ok_v", f32(rng, 5, 2))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    attend_cases(rng)
    mha_case("mha_self", rng, E=8, H=2, B=2, Nq=5, Nk=5, causal=True, kpm=True)
    mha_case("mha_cross", rng, E=8, H=4, B=1, Nq=3, Nk=4, kdim=6, vdim=5, bias=False, float_mask=True,
             unbatched=True)
    error_inputs(rng)
    print("wrote", len(os.listdir(OUT)), "files to", OUT)


if __name__ == "__main__":
    main()
