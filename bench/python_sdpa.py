#!/usr/bin/env python3
"""PyTorch with and without attn.torch.patch(), in one run, on this machine's CPU.

1. Training: the same nn.TransformerEncoder (same initial weights, same batches, Adam, no
   dropout), once with PyTorch's attention and once with attn's (patch()), step by step
   alternately so that both see the same machine. Every step's loss must agree to 1e-5
   relative (the script fails otherwise); tokens/s of each from the median step time.
2. Attention alone: attn.torch.scaled_dot_product_attention against PyTorch's own
   composite attention (softmax(q k^T / sqrt(d)) v, what Debian's PyTorch 1.13 runs inside
   nn.MultiheadAttention; PyTorch 2's F.scaled_dot_product_attention where it exists),
   forward and forward+backward, at N = 256, 1024, 4096: medians and speed-ups.

    PYTHONPATH=build/python python3 bench/python_sdpa.py [--steps 20] [--sizes 256,1024,4096]

PyTorch's speed depends on the BLAS it loads: Debian's default libblas.so.3 may be the
reference BLAS (many times slower); point it at OpenBLAS for a fair peer, e.g.
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread. It also depends on the
allocator: PyTorch's composite attention allocates several (N, N) matrices per call, which
glibc's malloc maps fresh from the system every time (past 32 MB), so every call pays a page
fault per 4 kB -- expensive on a virtual machine. jemalloc keeps them:
LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1.
The BLAS and allocator in use are printed (both serve attn as well).
"""
import argparse
import copy
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

import attn
import attn.torch as at


def libraries_in_use(*names):
    """The loaded shared libraries whose path contains one of names."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if ".so" in line and any(n in line.lower() for n in names)})
    return ", ".join(os.path.realpath(x) for x in libs)


def train(args):
    torch.manual_seed(0)
    E, H, L, B, N = args.d_model, args.heads, args.layers, args.batch, args.seq
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=4 * E, dropout=0.0, batch_first=True)
    head = nn.Linear(E, args.vocab)
    emb = nn.Embedding(args.vocab, E)
    models = []
    for _ in range(2):
        m = nn.ModuleDict({"emb": copy.deepcopy(emb), "enc": nn.TransformerEncoder(copy.deepcopy(layer), L),
                           "head": copy.deepcopy(head)})
        models.append((m, torch.optim.Adam(m.parameters(), lr=args.lr)))
    models[1][0].load_state_dict(models[0][0].state_dict())
    mask = nn.Transformer.generate_square_subsequent_mask(N)
    g = torch.Generator().manual_seed(1)
    calls = [0]  # attention calls that attn ran (the patched model's, and only those)
    kernel = at._attn.attention

    def counted(*a, **kw):
        calls[0] += 1
        return kernel(*a, **kw)
    at._attn.attention = counted
    losses, times = ([], []), ([], [])
    for step in range(args.steps):
        x = torch.randint(0, args.vocab, (B, N + 1), generator=g)
        for i, (m, opt) in enumerate(models):
            (at.patch if i else at.unpatch)()
            t0 = time.perf_counter()
            opt.zero_grad()
            h = m["enc"](m["emb"](x[:, :-1]), mask=mask)
            loss = nn.functional.cross_entropy(m["head"](h).reshape(-1, args.vocab), x[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            times[i].append(time.perf_counter() - t0)
            losses[i].append(loss.item())
        at.unpatch()
    at._attn.attention = kernel
    worst = max(abs(a - b) / abs(a) for a, b in zip(*losses))
    tok = B * N
    tps = [tok / statistics.median(t) for t in times]
    print(f"## Training: nn.TransformerEncoder, d_model {E}, {H} heads, {L} layers, batch {B} x {N} tokens, "
          f"causal, {args.steps} steps of Adam\n")
    print("| step | loss (PyTorch) | loss (attn) | relative difference |")
    print("|---:|---:|---:|---:|")
    for s, (a, b) in enumerate(zip(*losses)):
        print(f"| {s} | {a:.7f} | {b:.7f} | {abs(a - b) / abs(a):.1e} |")
    print(f"\nlargest relative difference of the losses: {worst:.2e} (limit 1e-5); attention calls run by attn: "
          f"{calls[0]} (the patched model's {L} layers x {args.steps} steps)\n")
    print("| | median step ms | tokens/s |")
    print("|---|---:|---:|")
    for name, t, r in zip(("PyTorch", "PyTorch + attn.torch.patch()"), times, tps):
        print(f"| {name} | {1e3 * statistics.median(t):.1f} | {r:,.0f} |")
    print(f"\ntraining speed-up with attn: {tps[1] / tps[0]:.2f}x\n")
    return worst <= 1e-5 and calls[0] == L * args.steps


def time_call(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def attention_only(args):
    B, H, d = 1, args.heads_alone, args.d_head
    torch_sdpa = at._ORIG_SDPA or at._math_sdpa
    print(f"## Attention alone: B={B} H={H} d={d}, float32, {torch.get_num_threads()} PyTorch threads, "
          f"{attn.get_threads()} attn threads ({attn.get_isa()})\n")
    print("| N | PyTorch fwd ms | attn fwd ms | fwd speed-up | PyTorch fwd+bwd ms | attn fwd+bwd ms | fwd+bwd speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        torch.manual_seed(n)
        q, k, v = (torch.randn(B, H, n, d, requires_grad=True) for _ in range(3))
        g = torch.randn(B, H, n, d)
        reps = max(3, min(args.reps, int(args.reps * (1024 / n) ** 2)))
        res = []
        for f in (torch_sdpa, at.scaled_dot_product_attention):
            with torch.no_grad():
                fwd = time_call(lambda: f(q, k, v), reps)

            def fb():
                o = f(q, k, v)
                q.grad = k.grad = v.grad = None
                o.backward(g)
            res.append((fwd, time_call(fb, reps)))
        (pf, pb), (af, ab) = res
        print(f"| {n} | {1e3 * pf:.2f} | {1e3 * af:.2f} | {pf / af:.2f}x | {1e3 * pb:.2f} | {1e3 * ab:.2f} | {pb / ab:.2f}x |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--sizes", default="256,1024,4096")
    ap.add_argument("--heads-alone", type=int, default=4)
    ap.add_argument("--d-head", type=int, default=64)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    torch.set_num_threads(int(os.environ.get("ATTN_THREADS", os.cpu_count())))
    print(f"PyTorch {torch.__version__}, attn {attn.__version__}, {os.cpu_count()} CPUs; BLAS: "
          f"{libraries_in_use('blas') or '(none found)'}; allocator: {libraries_in_use('jemalloc', 'tcmalloc') or 'glibc'}\n")
    ok = True if args.skip_training else train(args)
    if args.sizes:
        attention_only(args)
    if not ok:
        print("FAIL: the losses differ by more than 1e-5 relative", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
