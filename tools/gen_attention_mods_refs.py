#!/usr/bin/python3
"""Writes the PyTorch reference files for tests/test_attention_mods.c (attn_mods).

    /usr/bin/python3 tools/gen_attention_mods_refs.py [out_dir]   (default tests/data/attention_mods)

FlexAttention's semantics in plain torch 1.13 ops, float64, from float32 inputs: the dense
score matrix, the score modifiers (bias, ALiBi, T5 buckets, the test's score_mod, softcap),
the masks (causal top-left or bottom-right, window, prefix, documents, the test's mask_mod)
as -inf, the softmax with an optional sink logit per head in the denominator, dropout with
the library's keep mask (its hash reimplemented below), the weighted sum, and
torch.autograd for every gradient with a random dO. One line per case in cases.txt:

    name causal window align prefix softcap t5_buckets t5_max_distance t5_bidirectional
         dropout seed user rtol atol alibi_bidirectional

alibi_bidirectional = 1: ALiBi's bias is -slope_h |j - i| (attn_mods.alibi_bidirectional),
else slope_h (j - i).

user = 1: the test's mask_mod and score_mod (defined identically in the C test):
    mask_mod(b, h, i, j)     = (i // 100 == j // 100) and not (i == 130 and j % 3 == 0)
    score_mod(s, b, h, i, j) = s + theta[h] sin(s + 0.05 (i - j))  (theta: n_dparams = H)

Files: q k v do (float32), doc_offsets (int32, (B, n_docs + 1)) and doc_lens (int64, the
lengths, for tests/cli_attend_mods.sh), bias slopes t5 sinks theta
(float32, the parameters present), and the expected o lse p dq dk dv and dbias dslopes dt5
dsinks dtheta (float64). The reference's own gradients are checked against finite
differences (torch.autograd.gradcheck) on each case before it is written.
"""
import math
import os
import shutil
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
M64 = (1 << 64) - 1


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def keep_mask(seed, B, H, Nq, Nk, p):
    """The library's dropout factors (0 or 1/(1-p)), attn_dropout_keep's hash."""
    out = np.zeros((B, H, Nq, Nk))
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(p))
    for b in range(B):
        for h in range(H):
            key = mix64(seed ^ mix64(((b & 0xFFFFFFFF) << 32) | (h & 0xFFFFFFFF)))
            for i in range(Nq):
                for j in range(Nk):
                    r = mix64(key ^ ((i << 32) | j))
                    u = np.float32(r >> 40) * np.float32(1.0 / 16777216.0)
                    out[b, h, i, j] = scale if u >= np.float32(p) else 0.0
    return torch.tensor(out)


def t5_bucket(rel, bidirectional, num_buckets, max_distance):
    """HF transformers' T5Attention._relative_position_bucket (float32 logs, as there)."""
    ret = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0).long() * num_buckets
        n = rel.abs()
    else:
        n = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    small = n < max_exact
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return ret + torch.where(small, n, large)


def visible(c, B, H, Nq, Nk):
    i = torch.arange(Nq).view(Nq, 1)
    j = torch.arange(Nk).view(1, Nk)
    vis = torch.ones(B, H, Nq, Nk, dtype=torch.bool)
    off = Nk - Nq if c["align"] == 1 else 0
    if c["causal"] or c["window"]:
        cz = j <= i + off
        if c["window"]:
            cz = cz & (j > i + off - c["window"])
        if c["prefix"]:
            cz = cz | (j < c["prefix"])
        vis = vis & cz
    if "doc_offsets" in c:
        for b in range(B):
            o = c["doc_offsets"][b]
            doc = np.searchsorted(o, np.arange(Nk), side="right") - 1
            doc = torch.tensor(doc)
            vis[b] &= doc.view(Nq, 1) == doc.view(1, Nk)
    if c["user"]:
        mm = (i // 100 == j // 100) & ~((i == 130) & (j % 3 == 0))
        vis = vis & mm
    return vis


def forward(c, t):
    q, k, v = t["q"], t["k"], t["v"]
    B, H, Nq, d = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    G = H // Hkv
    kr, vr = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
    s = (q @ kr.transpose(-1, -2)) / math.sqrt(d)
    i = torch.arange(Nq).view(Nq, 1)
    j = torch.arange(Nk).view(1, Nk)
    if "bias" in t:
        s = s + t["bias"]
    if "slopes" in t:
        dist = -(j - i).abs() if c["alibi_bidir"] else j - i
        s = s + t["slopes"].view(1, H, 1, 1) * dist.double()
    if "t5" in t:
        bk = t5_bucket(j - i, c["t5_bidir"], c["t5_buckets"], c["t5_maxd"])  # (Nq, Nk)
        s = s + t["t5"][bk].permute(2, 0, 1).unsqueeze(0)  # table (nb, H) -> (1, H, Nq, Nk)
    if "theta" in t:
        s = s + t["theta"].view(1, H, 1, 1) * torch.sin(s + 0.05 * (i - j).double())
    if c["softcap"] > 0:
        s = c["softcap"] * torch.tanh(s / c["softcap"])
    vis = visible(c, B, H, Nq, Nk)
    sm = torch.where(vis, s, torch.full_like(s, -math.inf))
    if "sinks" in t:
        z = t["sinks"].view(1, H, 1, 1).expand(B, H, Nq, 1)
        lse = torch.logsumexp(torch.cat([sm, z], dim=-1), dim=-1)
    else:
        lse = torch.logsumexp(sm, dim=-1)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    p = torch.where(vis, torch.exp(s - safe.unsqueeze(-1)), torch.zeros_like(s))
    pd = p * c["keep"] if "keep" in c else p
    o = pd @ vr
    return o, p, lse


def gen_case(out, name, rng, B=1, H=2, Hkv=None, Nq=37, Nk=53, d=19, causal=0, window=0, align=0, prefix=0,
             softcap=0.0, t5=None, dropout=0.0, seed=0, user=0, docs=None, bias=None, slopes=False, sinks=False,
             qscale=1.0, rtol=2e-4, atol=2e-5, alibi_bidir=0):
    Hkv = Hkv or H
    c = dict(causal=causal, window=window, align=align, prefix=prefix, softcap=softcap, user=user, alibi_bidir=alibi_bidir,
             t5_buckets=t5[0] if t5 else 0, t5_maxd=t5[1] if t5 else 0, t5_bidir=t5[2] if t5 else 0)
    arrays = {
        "q": (rng.standard_normal((B, H, Nq, d)) * qscale).astype(np.float32),
        "k": (rng.standard_normal((B, Hkv, Nk, d)) * qscale).astype(np.float32),
        "v": rng.standard_normal((B, Hkv, Nk, d)).astype(np.float32),
        "do": rng.standard_normal((B, H, Nq, d)).astype(np.float32),
    }
    if docs is not None:
        c["doc_offsets"] = np.array(docs, dtype=np.int32)
    if bias is not None:
        arrays["bias"] = rng.standard_normal(bias).astype(np.float32)
    if slopes:
        arrays["slopes"] = (rng.uniform(0.05, 0.5, H)).astype(np.float32)
    if t5:
        arrays["t5"] = rng.standard_normal((t5[0], H)).astype(np.float32)
    if sinks:
        arrays["sinks"] = rng.standard_normal(H).astype(np.float32)
    if user:
        arrays["theta"] = rng.uniform(-0.5, 0.5, H).astype(np.float32)
    if dropout > 0:
        c["keep"] = keep_mask(seed, B, H, Nq, Nk, dropout)
    t = {n: torch.tensor(a.astype(np.float64), requires_grad=True) for n, a in arrays.items() if n != "do"}
    o, p, lse = forward(c, t)
    o.backward(torch.tensor(arrays["do"].astype(np.float64)))
    # The reference's gradients against finite differences (double), on a cheap function of o.
    # (The new parameters only: q, k and v go through plain matrix products.)
    names = sorted(n for n in t if n not in ("q", "k", "v"))
    w = torch.tensor(arrays["do"].astype(np.float64))
    fixed = {n: t[n].detach() for n in ("q", "k", "v")}

    def f(*xs):
        return (forward(c, dict(fixed, **dict(zip(names, xs))))[0] * w).sum()
    xs = [torch.tensor(arrays[n].astype(np.float64), requires_grad=True) for n in names]
    assert not xs or torch.autograd.gradcheck(f, xs, eps=1e-6, atol=1e-5, rtol=1e-4), name
    dirp = os.path.join(out, name)
    os.makedirs(dirp, exist_ok=True)
    for n, a in arrays.items():
        np.save(os.path.join(dirp, n + ".npy"), a)
    if docs is not None:
        np.save(os.path.join(dirp, "doc_offsets.npy"), c["doc_offsets"])
        np.save(os.path.join(dirp, "doc_lens.npy"), np.diff(c["doc_offsets"], axis=1).astype(np.int64))  # attn attend
    np.save(os.path.join(dirp, "o_ref.npy"), o.detach().numpy())
    np.save(os.path.join(dirp, "lse_ref.npy"), lse.detach().numpy())
    if p.numel() <= 4000:  # (the weights of the small cases only: the fixtures stay small)
        np.save(os.path.join(dirp, "p_ref.npy"), p.detach().numpy())
    for n in t:
        np.save(os.path.join(dirp, "d" + n + "_ref.npy"), t[n].grad.numpy())
    t5c = t5 or (0, 0, 0)
    return (f"{name} {causal} {window} {align} {prefix} {softcap} {t5c[0]} {t5c[1]} {int(t5c[2])} "
            f"{dropout} {seed} {user} {rtol} {atol} {alibi_bidir}\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                              "attention_mods")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    rng = np.random.default_rng(13)
    lines = ["# name causal window align prefix softcap t5_buckets t5_max_distance t5_bidirectional dropout seed "
             "user rtol atol alibi_bidirectional (tools/gen_attention_mods_refs.py)\n"]
    N = 41
    lines.append(gen_case(out, "docs_causal", rng, B=2, Nq=N, Nk=N, causal=1,
                          docs=[[0, 10, 10, 25, N], [0, 3, 30, 40, N]]))
    lines.append(gen_case(out, "docs_bidir_gqa", rng, B=2, H=4, Hkv=2, Nq=N, Nk=N, docs=[[0, 17, N], [0, N, N]]))
    lines.append(gen_case(out, "prefix", rng, Nq=53, Nk=53, causal=1, prefix=11))
    lines.append(gen_case(out, "bottom_right", rng, Nq=37, Nk=53, causal=1, align=1))
    lines.append(gen_case(out, "bottom_right_window", rng, Nq=37, Nk=53, window=9, align=1))
    lines.append(gen_case(out, "softcap", rng, softcap=2.0, qscale=2.0))
    lines.append(gen_case(out, "alibi", rng, causal=1, slopes=True))
    lines.append(gen_case(out, "t5_bidir", rng, t5=(32, 64, True)))
    lines.append(gen_case(out, "t5_causal", rng, Nq=53, Nk=53, causal=1, t5=(16, 40, False)))
    lines.append(gen_case(out, "dbias_bcast", rng, B=2, bias=(1, 2, 37, 53)))
    lines.append(gen_case(out, "dbias_keys", rng, B=2, bias=(2, 1, 1, 53)))
    lines.append(gen_case(out, "sinks", rng, causal=1, sinks=True))
    lines.append(gen_case(out, "dropout", rng, B=2, dropout=0.3, seed=1234))
    lines.append(gen_case(out, "user_mods", rng, Nq=150, Nk=150, d=8, user=1))
    lines.append(gen_case(out, "all", rng, B=2, H=4, Hkv=2, Nq=N, Nk=N, causal=1, docs=[[0, 20, N], [0, 9, N]],
                          softcap=3.0, slopes=True, sinks=True, dropout=0.2, seed=7, bias=(2, 4, N, N)))
    # Few queries against many keys: the forward splits the keys into ranges (decoding).
    lines.append(gen_case(out, "decode_split", rng, Nq=3, Nk=600, d=8, causal=1, align=1, slopes=True,
                          softcap=4.0, sinks=True, dropout=0.1, seed=3))
    # ALiBi for encoders: -slope |j - i|, keys on both sides (with a bias and grouped heads too).
    lines.append(gen_case(out, "alibi_bidir", rng, slopes=True, alibi_bidir=1))
    lines.append(gen_case(out, "alibi_bidir_gqa", rng, B=2, H=4, Hkv=2, Nq=N, Nk=N, slopes=True, alibi_bidir=1,
                          bias=(2, 1, 1, N), docs=[[0, 20, N], [0, 9, N]]))
    lines.append(gen_case(out, "decode_split_bidir", rng, Nq=3, Nk=600, d=8, slopes=True, alibi_bidir=1))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
