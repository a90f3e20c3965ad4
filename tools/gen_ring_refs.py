#!/usr/bin/python3
"""Writes the PyTorch reference files for tests/mpi_attend.sh (attn attend --ring under mpirun).

    /usr/bin/python3 tools/gen_ring_refs.py [out_dir]   (default tests/data/ring)

Self-attention of one small sequence whose length, 24, splits over 2 and 4 ranks in both
ring layouts (contiguous: N/P rows per rank; zig-zag: 2P chunks): B 2, H 4 query heads over
Hkv 2 key/value heads (grouped), dq = dk = 5, dv = 3, the scaled score.

  inputs  q (B,H,N,dq) k (B,Hkv,N,dq) v (B,Hkv,N,dv) do (B,H,N,dv)                  float32
  expect  o, dq, dk, dv without a mask; o_causal, dq_causal, dk_causal, dv_causal with the
          causal mask                                                              float64

The reference is plain torch ops in float64 from the same float32 inputs (scores, masked_fill
with -inf, softmax, weighted sum; torch.autograd for the gradients with the given dO).
"""
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ring")
os.makedirs(out, exist_ok=True)
B, H, HKV, N, D, DV = 2, 4, 2, 24, 5, 3
rng = np.random.default_rng(16)
q = rng.standard_normal((B, H, N, D)).astype(np.float32)
k = rng.standard_normal((B, HKV, N, D)).astype(np.float32)
v = rng.standard_normal((B, HKV, N, DV)).astype(np.float32)
do = rng.standard_normal((B, H, N, DV)).astype(np.float32)
for name, a in (("q", q), ("k", k), ("v", v), ("do", do)):
    np.save(os.path.join(out, name + ".npy"), a)
for causal in (0, 1):
    Q, K, V = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v))
    Kh, Vh = K.repeat_interleave(H // HKV, dim=1), V.repeat_interleave(H // HKV, dim=1)
    s = Q @ Kh.transpose(-1, -2) / D ** 0.5
    if causal:
        s = s.masked_fill(torch.ones(N, N, dtype=torch.bool).triu(1), float("-inf"))
    o = torch.softmax(s, dim=-1) @ Vh
    o.backward(torch.tensor(do.astype(np.float64)))
    sfx = "_causal" if causal else ""
    for name, t in (("o", o), ("dq", Q.grad), ("dk", K.grad), ("dv", V.grad)):
        np.save(os.path.join(out, name + sfx + ".npy"), t.detach().numpy())
print("wrote", out)
