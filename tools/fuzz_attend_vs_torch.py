#!/usr/bin/python3
"""Random differential check of `attn attend` against PyTorch in float64.

    /usr/bin/python3 tools/fuzz_attend_vs_torch.py [ATTN_BINARY] [--cases N] [--seed S]

Draws random problems (score kind, batch, heads, grouped heads, sizes, masks of every kind and
broadcast shape, window, key lengths, scale), runs `attn attend` on them with --dout, and
compares O, the weights and dQ/dK/dV with the float64 reference of tools/gen_attention_refs.py
at relative 1e-4 (absolute floor 1e-4 x the array's largest magnitude). Prints one line per
failure and a closing 'N passed, N failed'. Needs python3-torch; not part of the C tests.
"""
import json
import os
import subprocess
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_attention_refs import make, reference  # noqa: E402


def save_st(path, tensors):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k], dtype="<f4")
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def random_case(rng, i):
    score = rng.choice(["dot", "scaled", "cosine", "general", "additive"])
    Hkv = int(rng.choice([1, 2, 3]))
    H = Hkv * int(rng.choice([1, 2, 4]))
    B = int(rng.integers(1, 4))
    Nq, Nk = (int(x) for x in rng.choice([1, 2, 5, 16, 17, 31, 64, 65, 100], size=2))
    dq = int(rng.choice([1, 2, 7, 16, 32, 33, 64, 80, 128]))
    dk = dq if score in ("dot", "scaled", "cosine") else int(rng.choice([3, 8, 17]))
    dv = int(rng.choice([1, 5, 16, 64, 65]))
    causal = int(rng.random() < 0.3)
    window = int(rng.integers(1, 9)) if rng.random() < 0.15 else 0
    scale = float(rng.choice([0.0, 0.0, 0.3, 2.0])) if score != "additive" else 0.0
    A = int(rng.choice([1, 4, 16])) if score == "additive" else 0

    def extra(c, r):
        if r.random() < 0.3:
            c["key_lengths"] = r.integers(0, Nk + 1, size=B).astype(np.int32)
        if r.random() < 0.3:
            shape = [(B, H, Nq, Nk), (Nq, Nk), (B, 1, 1, Nk), (1, H, Nq, Nk), (Nk,), (B, 1, Nq, 1)][r.integers(0, 6)]
            c["mask"] = r.random(shape) < 0.7
        if r.random() < 0.3:
            shape = [(B, H, Nq, Nk), (Nq, Nk), (1, H, 1, Nk)][r.integers(0, 3)]
            b = r.standard_normal(shape).astype(np.float32)
            b[r.random(shape) < 0.1] = -np.inf
            c["bias"] = b
    return make(rng, f"fuzz{i}", score, B, H, Nq, Nk, dq, dk=dk, dv=dv, Hkv=Hkv, A=A, causal=causal,
                window=window, scale=scale, extra=extra)


def close(got, want, rtol=1e-4):
    floor = rtol * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    err = np.abs(got.astype(np.float64) - want)
    ok = np.all(err <= floor + rtol * np.abs(want))
    return ok, float(np.max(err)) if err.size else 0.0


def main():
    args = sys.argv[1:]
    attn = args[0] if args and not args[0].startswith("--") else "build/attn"
    n = int(args[args.index("--cases") + 1]) if "--cases" in args else 200
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 7
    rng = np.random.default_rng(seed)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        for i in range(n):
            c = random_case(rng, i)
            ref = reference(c)
            p = lambda name: os.path.join(d, name)
            for name in ("q", "k", "v", "do"):
                np.save(p(name + ".npy"), c[name])
            cmd = [attn, "attend", p("q.npy"), p("k.npy"), p("v.npy"), "-o", p("o.npy"), "--score", c["score"],
                   "--weights-out", p("w.npy"), "--dout", p("do.npy"), "--dq", p("dq.npy"), "--dk", p("dk.npy"),
                   "--dv", p("dv.npy")]
            if c["scale"]:
                cmd += ["--scale", repr(c["scale"])]
            if c["causal"]:
                cmd += ["--causal"]
            if c["window"]:
                cmd += ["--window", str(c["window"])]
            if "key_lengths" in c:
                np.save(p("kl.npy"), c["key_lengths"])
                cmd += ["--key-lengths", p("kl.npy")]
            if "mask" in c and "bias" in c:
                # The CLI takes one mask: fold the boolean mask into the bias as -inf.
                c_b = np.broadcast_to(c["bias"], np.broadcast_shapes(c["bias"].shape, c["mask"].shape)).copy()
                c_b[~np.broadcast_to(c["mask"], c_b.shape)] = -np.inf
                np.save(p("m.npy"), c_b.astype(np.float32))
                cmd += ["--mask", p("m.npy")]
            elif "mask" in c:
                np.save(p("m.npy"), c["mask"])
                cmd += ["--mask", p("m.npy")]
            elif "bias" in c:
                np.save(p("m.npy"), c["bias"])
                cmd += ["--mask", p("m.npy")]
            if c["score"] == "general":
                save_st(p("params.safetensors"), {"W": c["W"]})
                cmd += ["--params", p("params.safetensors")]
            if c["score"] == "additive":
                save_st(p("params.safetensors"), {"Wa.weight": c["Wa"], "Wa.bias": c["ba"], "Ua.weight": c["Ua"],
                                                  "Ua.bias": c["bu"], "Va.weight": c["va"].reshape(1, -1),
                                                  "Va.bias": c["bv"]})
                cmd += ["--params", p("params.safetensors")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            desc = (f"{c['name']}: {c['score']} q{c['q'].shape} k{c['k'].shape} v{c['v'].shape} causal={c['causal']} "
                    f"window={c['window']} scale={c['scale']} masks={[m for m in ('mask', 'bias', 'key_lengths') if m in c]}")
            if r.returncode != 0:
                failed += 1
                print(f"FAIL {desc}: exit {r.returncode}: {r.stderr.strip()}")
                continue
            bad = []
            for name, key in (("o", "o"), ("w", "p"), ("dq", "dq"), ("dk", "dk"), ("dv", "dv")):
                ok, err = close(np.load(p(name + ".npy")), ref[key])
                if not ok:
                    bad.append(f"{name} max err {err:.3g}")
            if bad:
                failed += 1
                print(f"FAIL {desc}: {', '.join(bad)}")
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
