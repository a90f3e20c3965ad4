#!/usr/bin/python3
"""Writes the reference numbers of `attn explain --memory --json` (tests/cli_explain_memory.sh).

    /usr/bin/python3 tools/gen_explain_memory_ref.py [out_dir]     (default tests/data/cli)

For each case NAME below it writes explain_memory_NAME.json: the same fields, in the same
order, as `attn explain --memory ARGS --json` prints, computed here independently of the
library in float64 by plain torch ops from the float32 store and query:

  scores           scale * similarity(q, k_j): cosine q.k / (max(|q|, 1e-12) max(|k|, 1e-12)),
                   dot q.k, scaled q.k (scale 1/sqrt(4) unless given)
  weights, soft    softmax of the scores; the weighted sum of the values
  argmax, exact    the first best-scoring key; the key equal to the query (null if none)
  entropy_bits     -sum_j a_j log2 a_j
  d_soft_d_query   (3, 4) Jacobian of the soft output by the query (torch.autograd)
  d_soft_d_keys    (3, 4, 4) Jacobian of the soft output by the keys
  sharpen          weights, soft output and off_by (the largest |soft_m - v_argmax,m| / |v_argmax,m|)
                   at the scales 0.5 ... 64; hard_from_scale: the first scale from which on
                   off_by <= 0.01 (null if none)

The test compares every number at rtol 1e-4, atol 1e-4 and every other token exactly.
The store is the CLI's (src/cli/cli_explain_memory.c), written out again here: the JSON
repeats it, so a change on one side fails the test.
"""
import json
import math
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "cli")

ITEMS = ["strawberry", "banana", "lemon", "cranberry"]
KEY_FEATURES = ["sweet", "sour", "red", "yellow"]
VALUE_FEATURES = ["kcal", "vitamin C mg", "sugar g"]
KEYS = [[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 0]]
VALUES = [[32, 59, 4.9], [89, 9, 12], [29, 53, 2.5], [46, 14, 4]]
SHARP_SCALES = [0.5, 1, 2, 4, 8, 16, 32, 64]

# name: (query, score, scale or None); the test runs the same arguments.
CASES = {
    "default": ("strawberry", "cosine", None),
    "lemon_dot": ("lemon", "dot", 2.0),
    "nomatch": ("1,1,0,0", "cosine", None),
    "longer": ("2,0,2,0", "cosine", 3.0),
    "yours_scaled": ("0.5,0.2,1,0.3", "scaled", None),
}


def f32(x):
    """Float32-rounded values, as float64 (the CLI's inputs are float32)."""
    return torch.tensor(np.asarray(x, dtype=np.float32).astype(np.float64))


def similarity(score, q, K):
    if score == "cosine":
        return (K @ q) / (q.norm().clamp_min(1e-12) * K.norm(dim=1).clamp_min(1e-12))
    return K @ q


def soft(score, scale, q, K, V):
    w = torch.softmax(scale * similarity(score, q, K), dim=0)
    return w @ V, w


def off_by(o, hard):
    return float(((o - hard).abs() / hard.abs()).max())


def case(query, score, scale):
    K, V = f32(KEYS), f32(VALUES)
    if query in ITEMS:
        q = K[ITEMS.index(query)].clone()
    else:
        q = f32([float(x) for x in query.split(",")])
    if scale is None:
        scale = {"cosine": 5.0, "dot": 1.0, "scaled": 1 / math.sqrt(4)}[score]
    scale = float(np.float32(scale))
    s = scale * similarity(score, q, K)
    o, w = soft(score, scale, q, K, V)
    best = max(range(4), key=lambda j: (s[j].item(), -j))  # the first of a tie
    exact = next((j for j in range(4) if torch.equal(q, K[j])), None)
    entropy = -sum(p * math.log2(p) for p in w.tolist() if p > 0)
    dq = torch.autograd.functional.jacobian(lambda x: soft(score, scale, x, K, V)[0], q)
    dk = torch.autograd.functional.jacobian(lambda x: soft(score, scale, q, x, V)[0], K)
    sharpen, hard_from = [], None
    for b in SHARP_SCALES:
        ob, wb = soft(score, b, q, K, V)
        off = off_by(ob, V[best])
        sharpen.append({"scale": b, "weights": wb.tolist(), "soft": ob.tolist(), "off_by": off})
        hard_from = (hard_from if hard_from is not None else b) if off <= 0.01 else None
    return {
        "score": score,
        "scale": scale,
        "items": ITEMS,
        "key_features": KEY_FEATURES,
        "value_features": VALUE_FEATURES,
        "keys": K.tolist(),
        "values": V.tolist(),
        "query": q.tolist(),
        "scores": s.tolist(),
        "weights": w.tolist(),
        "soft": o.tolist(),
        "argmax": best,
        "exact": exact,
        "entropy_bits": entropy,
        "d_soft_d_query": dq.tolist(),
        "d_soft_d_keys": dk.tolist(),
        "sharpen": sharpen,
        "hard_from_scale": hard_from,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (query, score, scale) in CASES.items():
        path = os.path.join(OUT, "explain_memory_%s.json" % name)
        with open(path, "w") as f:
            json.dump(case(query, score, scale), f, indent=1)
            f.write("\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
