#!/usr/bin/env python3
"""The calling overhead of attn.attention from Python: the time of one call on a tiny
problem, (B, H, N, d) = (1, 1, 4, 8), minus the time of the kernel alone (attn_forward in a
C loop, attn._attn._time_forward, on the same arrays). Medians of several repeats; the
machine is shared, so the figures are indicative.

    PYTHONPATH=build/python python3 bench/python_overhead.py [--calls 20000] [--repeats 9]
"""
import argparse
import statistics
import time

import numpy as np

import attn
from attn import _attn


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--shape", default="1,1,4,8")
    args = ap.parse_args()
    shape = tuple(int(x) for x in args.shape.split(","))
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    n = args.calls

    def python_loop():
        f = attn.attention
        t0 = time.perf_counter()
        for _ in range(n):
            f(q, k, v)
        return (time.perf_counter() - t0) / n

    def c_loop():
        return _attn._time_forward(q, k, v, n) / n

    python_loop(), c_loop()  # warm-up
    py, c = [], []
    for _ in range(args.repeats):  # alternated, so that both see the same machine
        py.append(python_loop())
        c.append(c_loop())
    mp, mc = statistics.median(py), statistics.median(c)
    print(f"attn.attention on {shape}, {attn.get_threads()} threads ({attn.get_isa()}), medians of "
          f"{args.repeats} x {n} calls:")
    print(f"  from Python       {1e6 * mp:.3f} us per call")
    print(f"  kernel alone (C)  {1e6 * mc:.3f} us per call")
    print(f"  overhead          {1e6 * (mp - mc):.3f} us per call (limit 5 us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
