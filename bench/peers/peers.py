#!/usr/bin/python3
"""The Python side of bench/peers/run.sh (Debian's /usr/bin/python3, numpy and torch):

  peers.py inputs DIR --n N --heads H --d D
      writes random Q, K, V (1, H, N, D) as DIR/{q,k,v}.npy (for `attn attend`) and as
      DIR/{q,k,v}.f32, raw float32 in ONNX Runtime's (1, N, H*D) layout (for ort_mha.js)
  peers.py compare DIR [--causal]
      the largest absolute difference of attn's output DIR/o_attn.npy against ONNX Runtime's
      DIR/o_ort.f32 (when present) and against PyTorch's softmax(Q K^T / sqrt(D) + mask) V
      computed here in float64; prints one JSON line
  peers.py table ROWS.jsonl [--readme README.md]
      the markdown table of a run (the JSON lines run.sh collected) on stdout, and with --readme
      also in that file between the markers <!-- peers:begin --> and <!-- peers:end -->
      (written to a temporary file and renamed)
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"


def cmd_inputs(a):
    import numpy as np
    rng = np.random.default_rng(a.n * 1000 + a.d)
    for name in "qkv":
        x = rng.standard_normal((1, a.heads, a.n, a.d), dtype=np.float32)
        np.save(os.path.join(a.dir, name + ".npy"), x)
        x.transpose(0, 2, 1, 3).reshape(1, a.n, a.heads * a.d).astype("<f4").tofile(os.path.join(a.dir, name + ".f32"))


def cmd_compare(a):
    import numpy as np
    import torch
    q, k, v, o = (np.load(os.path.join(a.dir, f)) for f in ("q.npy", "k.npy", "v.npy", "o_attn.npy"))
    _, h, n, d = q.shape
    out = {"check": True, "n": n, "d": d, "heads": h, "causal": a.causal}
    ort_path = os.path.join(a.dir, "o_ort.f32")
    if os.path.exists(ort_path):
        ort = np.fromfile(ort_path, dtype="<f4").reshape(1, n, h, d).transpose(0, 2, 1, 3)
        out["max_abs_attn_vs_ort"] = float(np.abs(ort - o).max())
    qt, kt, vt = (torch.from_numpy(x).double() for x in (q, k, v))
    s = qt @ kt.transpose(-2, -1) / d ** 0.5
    if a.causal:
        s = s + torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)
    ref = (torch.softmax(s, dim=-1) @ vt).numpy()
    out["max_abs_attn_vs_torch_f64"] = float(np.abs(ref - o).max())
    print(json.dumps(out))


def fmt_fig(r, peak):
    if r is None:
        return "-"
    pct = f", {100 * r['gflops'] / peak:.0f}%" if peak else ""
    return f"{r['ms']:.1f} ms ({r['gflops']:.0f} GF/s{pct})"


def cmd_table(a):
    rows = [json.loads(l) for l in open(a.rows) if l.strip()]
    meta = next((r for r in rows if r.get("bench") == "meta"), {})
    peaks = [r["gflops"] for r in rows if r.get("bench") == "peak" and "gflops" in r]
    peak = statistics.mean(peaks) if peaks else 0.0
    notes = [r["note"] for r in rows if r.get("bench") == "note"]
    checks = [r for r in rows if r.get("check")]
    key = lambda r: (r["d"], r["n"], r["causal"], r["backward"])
    shapes, by = [], {}
    for r in rows:
        if r.get("bench") in ("attention", "ort", "torch"):
            k = key(r)
            if k not in by:
                shapes.append(k)
                by[k] = {"attention": [], "ort": None, "torch": None, "load": r.get("load")}
            if r["bench"] == "attention":
                by[k]["attention"].append(r)
            else:
                by[k][r["bench"]] = r
    out = []
    out.append(f"Run of {meta.get('date', '?')} on {meta.get('cpu', '?')}, {meta.get('threads', '?')} threads"
               f"{' (' + meta['label'] + ')' if meta.get('label') else ''}. B = 1, H = 8, fp32, medians of "
               f"{meta.get('repeat', '?')}; FLOPs 4 B H N^2 d (halved when causal), fwd+bwd 3.5x. "
               f"fp32 FMA peak (`attn bench peak --seconds 1`, at the start and the end of the run): "
               f"{', '.join(f'{p:.0f}' for p in peaks) or '?'} GFLOP/s; the \"peak\" column is the one each attn run "
               f"measured just before its timings (0.2 s, the same threads), and every % is a share of it.")
    out.append("")
    out.append("| d | shape | load avg | peak GF/s | attn (1st / 2nd run) | ONNX Runtime | attn speedup | PyTorch | attn speedup |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for k in shapes:
        d, n, causal, backward = k
        e = by[k]
        att = e["attention"]
        name = ("causal fwd" if causal else "fwd") + ("+bwd" if backward else "") + f" N={n}"
        a_ms = statistics.mean(r["ms"] for r in att) if att else None
        a_fig = "-"
        # The peak beside each figure: the one each attn run measured just before its timings
        # (the host's other work changes it from minute to minute), else the run's.
        row_peaks = [r["peak_gflops"] for r in att if r.get("peak_gflops")]
        row_peak = statistics.mean(row_peaks) if row_peaks else peak
        if att:
            a_gf = statistics.mean(r["gflops"] for r in att)
            a_fig = fmt_fig({"ms": a_ms, "gflops": a_gf}, row_peak) + " (" + " / ".join(f"{r['ms']:.1f}" for r in att) + ")"
        cells = [str(d), name, e["load"] or "-", f"{row_peak:.0f}", a_fig]
        for peer in ("ort", "torch"):
            r = e[peer]
            if r is None:
                cells += ["-", "-"]
                continue
            cells += [fmt_fig(r, row_peak), f"{r['ms'] / a_ms:.2f}x" if a_ms else "-"]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if checks:
        out.append("Outputs against attn's (max abs difference): " + "; ".join(
            f"d={c['d']} N={c['n']}{' causal' if c['causal'] else ''}: "
            + ", ".join(f"{k.replace('max_abs_attn_vs_', '')} {v:.1e}" for k, v in c.items() if k.startswith("max_abs"))
            for c in checks) + ".")
    for n in notes:
        out.append(f"- {n}")
    text = "\n".join(out).rstrip() + "\n"
    sys.stdout.write(text)
    if a.readme:
        write_section(a.readme, text)


def write_section(path, text):
    old = open(path).read() if os.path.exists(path) else ""
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n## Beside ONNX Runtime and PyTorch (`bench/peers/run.sh`)\n\n" + block + "\n"
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inputs")
    p.add_argument("dir")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--d", type=int, required=True)
    p = sub.add_parser("compare")
    p.add_argument("dir")
    p.add_argument("--causal", action="store_true")
    p = sub.add_parser("table")
    p.add_argument("rows")
    p.add_argument("--readme")
    a = ap.parse_args()
    {"inputs": cmd_inputs, "compare": cmd_compare, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
