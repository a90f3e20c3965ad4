#!/usr/bin/python3
"""Random differential check of `attn mha` against torch.nn.MultiheadAttention in float64.

    /usr/bin/python3 tools/fuzz_mha_vs_torch.py [ATTN_BINARY] [--cases N] [--seed S]

Random E, heads, kdim/vdim, bias on/off, self or cross attention, key_padding_mask, bool or
float attn_mask, causal; compares the output and the (averaged or per-head) weights at
relative 1e-4. Rows that see no key are avoided (PyTorch gives NaN there, attn zeros).
Prints failures and a closing 'N passed, N failed'. Needs python3-torch.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_attend_vs_torch import close, save_st  # noqa: E402

torch.set_default_dtype(torch.float64)


def main():
    args = sys.argv[1:]
    attn = args[0] if args and not args[0].startswith("--") else "build/attn"
    n = int(args[args.index("--cases") + 1]) if "--cases" in args else 100
    rng = np.random.default_rng(int(args[args.index("--seed") + 1]) if "--seed" in args else 11)
    torch.manual_seed(0)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        p = lambda name: os.path.join(d, name)
        for i in range(n):
            H = int(rng.choice([1, 2, 3, 4, 8]))
            E = H * int(rng.choice([1, 3, 4, 8, 16]))
            cross = rng.random() < 0.5
            kdim = int(rng.choice([E, 5, 12])) if cross else E
            vdim = int(rng.choice([E, 7, 9])) if cross else E
            bias = bool(rng.random() < 0.7)
            B, Nq = int(rng.integers(1, 4)), int(rng.choice([1, 3, 8, 17, 40]))
            Nk = int(rng.choice([1, 4, 9, 33])) if cross else Nq
            per_head = bool(rng.random() < 0.5)
            m = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
            x = rng.standard_normal((B, Nq, E)).astype(np.float32)
            key = rng.standard_normal((B, Nk, kdim)).astype(np.float32) if cross else x
            val = rng.standard_normal((B, Nk, vdim)).astype(np.float32) if cross else x
            sd = {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()}
            with torch.no_grad():  # the reference runs on the float32-rounded weights
                for k, v in m.state_dict().items():
                    v.copy_(torch.tensor(sd[k].astype(np.float64)))
            save_st(p("w.safetensors"), sd)
            np.save(p("x.npy"), x)
            cmd = [attn, "mha", "--params", p("w.safetensors"), "--heads", str(H), p("x.npy"), "-o", p("o.npy"),
                   "--weights-out", p("a.npy")]
            if per_head:
                cmd.append("--per-head")
            if cross:
                np.save(p("k.npy"), key)
                np.save(p("v.npy"), val)
                cmd[7:7] = [p("k.npy"), p("v.npy")]
            kpm = attn_mask = None
            causal = (not cross) and rng.random() < 0.3
            if rng.random() < 0.4:
                kpm = np.zeros((B, Nk), dtype=bool)
                for b in range(B):
                    kpm[b, int(rng.integers(1, Nk + 1)):] = True  # keep key 0 so no row is empty
                np.save(p("kpm.npy"), kpm)
                cmd += ["--key-padding-mask", p("kpm.npy")]
            if causal:
                cmd += ["--causal"]
                attn_mask = np.triu(np.ones((Nq, Nk), dtype=bool), 1)
            elif rng.random() < 0.4:
                if rng.random() < 0.5:
                    attn_mask = rng.random((Nq, Nk)) < 0.3
                    attn_mask[:, 0] = False
                else:
                    attn_mask = rng.standard_normal((B * H, Nq, Nk)).astype(np.float32)
                np.save(p("am.npy"), attn_mask)
                cmd += ["--attn-mask", p("am.npy")]
            with torch.no_grad():
                t = lambda a: torch.tensor(a.astype(np.float64))
                am = None if attn_mask is None else (torch.tensor(attn_mask) if attn_mask.dtype == bool else t(attn_mask))
                o, w = m(t(x), t(key), t(val), key_padding_mask=None if kpm is None else torch.tensor(kpm),
                         attn_mask=am, need_weights=True, average_attn_weights=not per_head)
            r = subprocess.run(cmd, capture_output=True, text=True)
            desc = f"case {i}: E={E} H={H} kdim={kdim} vdim={vdim} bias={bias} B={B} Nq={Nq} Nk={Nk} " \
                   f"cross={cross} causal={causal} kpm={kpm is not None} mask={None if attn_mask is None else attn_mask.dtype}"
            if r.returncode:
                failed += 1
                print(f"FAIL {desc}: exit {r.returncode}: {r.stderr.strip()}")
                continue
            bad = [f"{nm} max err {err:.3g}" for nm, (ok, err) in
                   (("out", close(np.load(p("o.npy")), o.numpy())), ("weights", close(np.load(p("a.npy")), w.numpy())))
                   if not ok]
            if bad:
                failed += 1
                print(f"FAIL {desc}: {', '.join(bad)}")
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
