#!/usr/bin/python3
"""Writes the PyTorch reference files for tests/test_kvcache.c (the paged key/value cache).

    /usr/bin/python3 tools/gen_kvcache_refs.py [out_dir]   (default tests/data/kvcache)

The scenario, which the test replays through attn/kvcache.h with blocks of 4 tokens:
sequence 0 gets tokens k0[0:10], sequence 1 is forked from it (sharing those blocks), sequence
0 then gets k0[10:13] (copy-on-write of the shared, half-filled block), sequence 1 its own
tokens k1 (12), sequence 2 its own k2 (9). So the three sequences hold, logically,
  0: k0[0:13]   1: k0[0:10] + k1   2: k2        (and the values alike)
Then 3 query rows per sequence (the last three positions, causal: bottom-right aligned) with
grouped heads (H 6 over Hkv 2) and a float bias attend over them.

Inputs float32: k0 (13, Hkv, dk), k1 (12, Hkv, dk), k2 (9, Hkv, dk), v0 v1 v2 likewise with
dv, q (3, H, 3, dk), bias (3, H, 3, 22) (only the first len columns of each sequence count).
Expected float64: o (3, H, 3, dv), lse (3, H, 3), from plain torch ops on the concatenated
keys: scores q.k / sqrt(dk) + bias, masked_fill(-inf) past each row's position, logsumexp,
softmax, weighted sum.
"""
import math
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
HKV, H, DK, DV, NQ = 2, 6, 5, 7, 3


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "kvcache")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(13)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    k = [f32(13, HKV, DK), f32(12, HKV, DK), f32(9, HKV, DK)]
    v = [f32(13, HKV, DV), f32(12, HKV, DV), f32(9, HKV, DV)]
    q = f32(3, H, NQ, DK)
    bias = f32(3, H, NQ, 22)
    seqs_k = [k[0], np.concatenate([k[0][:10], k[1]]), k[2]]
    seqs_v = [v[0], np.concatenate([v[0][:10], v[1]]), v[2]]
    o = np.zeros((3, H, NQ, DV))
    lse = np.zeros((3, H, NQ))
    for s in range(3):
        L = len(seqs_k[s])
        K = torch.tensor(seqs_k[s].astype(np.float64)).permute(1, 0, 2)  # (Hkv, L, dk)
        V = torch.tensor(seqs_v[s].astype(np.float64)).permute(1, 0, 2)
        K = K.repeat_interleave(H // HKV, dim=0)
        V = V.repeat_interleave(H // HKV, dim=0)
        Q = torch.tensor(q[s].astype(np.float64))
        sc = Q @ K.transpose(1, 2) / math.sqrt(DK) + torch.tensor(bias[s, :, :, :L].astype(np.float64))
        pos = torch.arange(NQ).unsqueeze(1) + (L - NQ)
        sc = sc.masked_fill(torch.arange(L).unsqueeze(0) > pos, float("-inf"))
        lse[s] = torch.logsumexp(sc, dim=-1).numpy()
        o[s] = (torch.softmax(sc, dim=-1) @ V).numpy()
    arrays = {"q": q, "bias": bias, "o": o, "lse": lse}
    for i in range(3):
        arrays["k%d" % i], arrays["v%d" % i] = k[i], v[i]
    for name, a in arrays.items():
        np.save(os.path.join(out, name + ".npy"), a)


if __name__ == "__main__":
    main()
