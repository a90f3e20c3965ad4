#!/usr/bin/python3
"""PyTorch's attention on the shapes of `attn bench attention`, for the side-by-side table of
bench/run_attention.sh. Prints one JSON object per shape with the same keys as
`attn bench attention --json` (n, nq, d, heads, kv_heads, batch, causal, backward, threads, ms,
gflops), timed the same way: the median of --repeat runs after one warm-up run.

What is timed is what a PyTorch 1.13 user writes, softmax(Q K^T * scale + mask) V, in float32
(PyTorch 1.13 has no fused CPU attention), and with --backward its autograd backward for a given
dO. Causal uses a -inf mask added to the scores (PyTorch computes the whole matrix either way);
FLOPs are counted as for attn (halved when causal). Grouped heads repeat K and V per group.

usage: /usr/bin/python3 bench/torch_attention.py --n 1024,4096 [--nq N] [--d 64] [--heads 8]
       [--kv-heads H] [--batch 1] [--causal] [--backward] [--threads 2] [--repeat 5]
"""
import argparse
import json
import math
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="256,1024,4096")
    ap.add_argument("--nq", type=int, default=0)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    hkv = a.kv_heads or a.heads
    g = torch.Generator().manual_seed(0)
    for n in [int(x) for x in a.n.split(",")]:
        nq = a.nq or n
        q = torch.randn(a.batch, a.heads, nq, a.d, generator=g)
        k = torch.randn(a.batch, hkv, n, a.d, generator=g)
        v = torch.randn(a.batch, hkv, n, a.d, generator=g)
        do = torch.randn(a.batch, a.heads, nq, a.d, generator=g)
        mask = None
        if a.causal:
            mask = torch.full((nq, n), float("-inf")).triu(1)
        scale = 1.0 / math.sqrt(a.d)

        def run():
            qq = q.detach().requires_grad_(a.backward)
            kk = k.detach().requires_grad_(a.backward)
            vv = v.detach().requires_grad_(a.backward)
            ke, ve = kk, vv
            if hkv != a.heads:
                ke = kk.repeat_interleave(a.heads // hkv, dim=1)
                ve = vv.repeat_interleave(a.heads // hkv, dim=1)
            s = torch.matmul(qq, ke.transpose(-2, -1)) * scale
            if mask is not None:
                s = s + mask
            o = torch.matmul(torch.softmax(s, dim=-1), ve)
            if a.backward:
                o.backward(do)
            return o

        with torch.set_grad_enabled(a.backward):
            run()
            ts = []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                run()
                ts.append(time.perf_counter() - t0)
        sec = statistics.median(ts)
        flops = 4.0 * a.batch * a.heads * nq * n * a.d * (0.5 if a.causal else 1.0) * (3.5 if a.backward else 1.0)
        print(json.dumps({"bench": "torch", "n": n, "nq": nq, "d": a.d, "heads": a.heads, "kv_heads": hkv,
                          "batch": a.batch, "causal": a.causal, "backward": a.backward, "threads": a.threads,
                          "repeat": a.repeat, "ms": round(sec * 1e3, 4), "gflops": round(flops / sec * 1e-9, 2),
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
