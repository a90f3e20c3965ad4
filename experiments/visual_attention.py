#!/usr/bin/env python3
"""experiments/visual_attention.py: the table, CSV and plot of visual_attention.sh.

usage: visual_attention.py OUT RESULTS [--keep PREVIOUS.csv] [--quick]
Reads every run directory OUT/MODEL-TASK[-gN] (config.json, command, cpu, train.out, train.log,
log.csv, eval.json) and the pictures in RESULTS/visual_attention/, and writes
RESULTS/visual_attention.{md,csv,svg}. With --keep, the rows of an earlier CSV whose
configuration (model and task; for ram also glimpses, patch, scales, core) has no run in OUT stay, marked as
earlier runs. Multiply-adds at 28x28, 60x60 and 100x100 are computed
here with attn_vision_madds's formula (src/models/vision.c), checked against what attn eval
printed for the run's own task. Standard library only.
"""
import csv
import glob
import json
import os
import re
import sys

SIZES = {"centred28": 28, "translated60": 60, "cluttered60": 60, "cluttered100": 100}
ORDER = ["fc", "cnn", "soft", "ram"]
WHAT = {"fc": "FC, 2 layers of 256 (ReLU)", "cnn": "CNN, 2 conv layers (5x5, 16 and 32 filters) + pooling + linear",
        "soft": "soft attention over the CNN's feature grid (learned query, Xu et al. 2015)", "ram": "RAM"}
# Mnih, Heess, Graves, Kavukcuoglu 2014, Tables 1 and 2 (NIPS 2014 proceedings): MNIST, not
# Fashion-MNIST. Keys (model, task, glimpses).
PAPER = {("fc", "centred28", 0): 1.69, ("cnn", "centred28", 0): 1.21, ("ram", "centred28", 6): 1.12,
         ("ram", "centred28", 4): 1.54, ("ram", "centred28", 7): 1.07,
         ("fc", "translated60", 0): 2.63, ("cnn", "translated60", 0): 1.62, ("ram", "translated60", 4): 1.54,
         ("ram", "translated60", 6): 1.22, ("ram", "translated60", 8): 1.20,
         ("fc", "cluttered60", 0): 11.96, ("cnn", "cluttered60", 0): 8.09, ("ram", "cluttered60", 4): 4.96,
         ("ram", "cluttered60", 6): 4.08, ("ram", "cluttered60", 8): 4.04}


def madds(c, S):
    """attn_vision_madds (src/models/vision.c) for config c on S x S images."""
    h, K2 = c["hidden"], c["kernel"] ** 2
    N = (S // 2 // 2) ** 2
    trunk = S * S * c["c1"] * K2 + (S // 2) ** 2 * c["c2"] * c["c1"] * K2
    if c["model"] == "fc":
        return S * S * h + h * h + h * 10
    if c["model"] == "cnn":
        return trunk + N * c["c2"] * 10
    if c["model"] == "soft":
        return trunk + N * c["c2"] * c["attn_dim"] + N * c["attn_dim"] + N * c["c2"] + c["c2"] * 10
    G, g2 = c["glimpse_hidden"], c["patch"] ** 2
    sensor = sum(g2 << (2 * s) for s in range(c["scales"]))
    glimpse = sensor + c["scales"] * g2 * G + 2 * G + 2 * G * h
    core = 8 * h * h if c["lstm"] else 2 * h * h
    q = c.get("loc_hidden", 0)
    locator = h * q + q * 2 if q else h * 2
    return c["glimpses"] * (glimpse + core) + (c["glimpses"] - 1) * locator + h * 10


def label(r):
    if r["model"] != "ram":
        return r["model"]
    return "ram %d glimpses, %d scale%s" % (r["glimpses"], r["scales"], "s" if r["scales"] > 1 else "")


def key(r):
    """What makes two rows the same configuration: model and task, and for ram its glimpses, patch, scales, core."""
    return (r["model"], r["task"]) + (tuple(str(r[k]) for k in ("glimpses", "patch", "scales", "core")) if r["model"] == "ram" else ())


def extra_options(command):
    """What the command asked beyond the script's standard options: the words after --out DIR."""
    w = command.split()
    return " ".join(w[w.index("--out") + 2:]) if "--out" in w else ""


def kept(path, rows):
    """The rows of an earlier CSV whose configuration is not among rows, marked as earlier runs."""
    have = {key(r) for r in rows}
    old = []
    for r in csv.DictReader(open(path)):
        if key(r) in have:
            continue
        for k in ("glimpses", "patch", "scales", "params", "madds", "madds28", "madds60", "madds100", "epochs_done", "updates",
                  "images_seen", "images_per_s", "test"):
            r[k] = int(r[k])
        r["test_error"], r["train_s"] = float(r["test_error"]), float(r["train_s"])
        r["cpu"] = r.get("cpu") or "AMD EPYC"  # the CSVs before the cpu column were all made there
        r["options"] = r.get("options") or extra_options(r["command"])
        r["run"] = "earlier"
        old.append(r)
    return old


def collect(out):
    rows = []
    for d in sorted(glob.glob(os.path.join(out, "*-*"))):
        ev = os.path.join(d, "eval.json")
        if not os.path.exists(ev):
            continue
        e = json.load(open(ev))
        c = json.load(open(os.path.join(d, "config.json")))["model"]
        last = open(os.path.join(d, "train.out")).read().strip().splitlines()[-1]
        m = re.search(r"(\d+) updates in ([\d.]+) s \(training ([\d.]+) s, (\d+) images/s\)", last)
        epochs = 0
        if os.path.exists(os.path.join(d, "log.csv")):
            epochs = max(0, len(open(os.path.join(d, "log.csv")).read().strip().splitlines()) - 1)
        updates = int(m.group(1)) if m else 0
        mine = madds(c, SIZES[c["task"]])
        assert mine == e["madds"], (d, mine, e["madds"])
        rows.append({"model": c["model"], "task": c["task"], "glimpses": c["glimpses"] if c["model"] == "ram" else 0,
                     "patch": c["patch"], "scales": c["scales"], "core": "lstm" if c["lstm"] else "rnn",
                     "test_error": round(e["error"], 2), "test": e["test"], "params": e["params"],
                     "madds": e["madds"], "madds28": madds(c, 28), "madds60": madds(c, 60), "madds100": madds(c, 100),
                     "epochs_done": epochs, "updates": updates, "images_seen": updates * 64,
                     "train_s": float(m.group(3)) if m else 0.0, "images_per_s": int(m.group(4)) if m else 0,
                     "paper_mnist_error": PAPER.get((c["model"], c["task"], c["glimpses"] if c["model"] == "ram" else 0), "")
                     if c["model"] != "ram" or c["scales"] == (1 if c["task"] == "centred28" else 3) else "",
                     "stopped": "time budget" if last.startswith("stopped") else "all epochs",
                     "command": open(os.path.join(d, "command")).read().strip(), "dir": os.path.basename(d),
                     "cpu": open(os.path.join(d, "cpu")).read().strip() if os.path.exists(os.path.join(d, "cpu")) else "", "run": "this"})
        rows[-1]["options"] = extra_options(rows[-1]["command"])
    return rows


def order(rows):
    rows.sort(key=lambda r: (list(SIZES).index(r["task"]), ORDER.index(r["model"]), r["glimpses"], r["scales"], r["run"] != "this"))
    return rows


def fmt_int(n):
    return "{:,}".format(n)


def svg(rows, path):
    """Left: test error per model and task (bars). Right: multiply-adds per image vs image side."""
    tasks = [t for t in SIZES if any(r["task"] == t for r in rows)]
    W, H = 900, 380
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>']
    colors = {"fc": "#1f77b4", "cnn": "#2ca02c", "soft": "#ff7f0e", "ram": "#d62728"}
    # bars
    x0, y0, bw, ph = 50, 40, 16, 260
    top = max([r["test_error"] for r in rows] + [10])
    out.append('<text x="%d" y="20" font-size="13">Fashion-MNIST test error %% (lower is better)</text>' % x0)
    x = x0
    for t in tasks:
        rs = [r for r in rows if r["task"] == t]
        for r in rs:
            h = ph * r["test_error"] / top
            col = colors[r["model"]]
            op = {0: 1.0, 4: 0.45, 6: 0.7, 8: 1.0}.get(r["glimpses"], 1.0)
            out.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s" fill-opacity="%.2f"><title>%s %s: %.2f%%</title></rect>'
                       % (x, y0 + ph - h, bw, h, col, op, label(r), t, r["test_error"]))
            out.append('<text x="%d" y="%.1f" font-size="9" text-anchor="middle">%.1f</text>' % (x + bw / 2, y0 + ph - h - 3, r["test_error"]))
            out.append('<text x="%d" y="%d" font-size="9" transform="rotate(60 %d %d)">%s</text>'
                       % (x + 4, y0 + ph + 10, x + 4, y0 + ph + 10, label(r)))
            x += bw + 4
        out.append('<text x="%d" y="%d" font-size="12">%s</text>' % (x - (bw + 4) * len(rs), y0 + ph + 80, t))
        x += 24
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (x0 - 4, y0 + ph, x, y0 + ph))
    # madds vs side (log scale)
    import math
    mx0, mw, my0, mh = 560, 300, 40, 260
    pts = {}
    for r in rows:
        pts.setdefault(label(r), [r["madds28"], r["madds60"], r["madds100"], colors[r["model"]]])
    lo = min(min(p[:3]) for p in pts.values())
    hi = max(max(p[:3]) for p in pts.values())
    ly = lambda v: my0 + mh - mh * (math.log10(v) - math.log10(lo) + 0.1) / (math.log10(hi) - math.log10(lo) + 0.2)
    lx = lambda s: mx0 + mw * (s - 28) / (100 - 28)
    out.append('<text x="%d" y="20" font-size="13">multiply-adds per image (log scale)</text>' % mx0)
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (mx0, my0 + mh, mx0 + mw, my0 + mh))
    for s in (28, 60, 100):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%dx%d</text>' % (lx(s), my0 + mh + 15, s, s))
    for e in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
        v = 10 ** e
        if lo / 2 <= v <= hi * 2:
            out.append('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>' % (mx0 - 4, ly(v) + 4, e))
    for i, (name, p) in enumerate(sorted(pts.items())):
        xy = " ".join("%.1f,%.1f" % (lx(s), ly(v)) for s, v in zip((28, 60, 100), p[:3]))
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>' % (xy, p[3]))
        out.append('<text x="%.1f" y="%.1f" fill="%s">%s</text>' % (lx(100) + 4, ly(p[2]) + 4 + 10 * (i % 2), p[3], name))
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, res = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    rows = collect(out)
    if not rows:
        sys.exit("no finished runs in " + out)
    if "--keep" in sys.argv:
        rows += kept(sys.argv[sys.argv.index("--keep") + 1], rows)
    order(rows)
    fields = list(rows[0].keys())
    with open(os.path.join(res, "visual_attention.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    svg(rows, os.path.join(res, "visual_attention.svg"))
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    md = ["# Where attention began: the Recurrent Attention Model on Fashion-MNIST", ""]
    if quick:
        md += ["**A --quick smoke run: 2,000 training images, 1 epoch. The figures mean nothing.**", ""]
    cpus = sorted({r["cpu"] or cpu or "CPU" for r in rows if r["run"] == "this"})
    md += ["Made by `experiments/visual_attention.sh` (which ran the commands below, one thread each, on a shared",
           "2-core %s, beside other work); `experiments/visual_attention.py` wrote this table." % " / ".join(cpus),
           "Test error on the 10,000 Fashion-MNIST test images rendered for the task (seed 1); the last 5,000",
           "training images are the validation split (2,000 of them scored after each epoch). Each run trained for",
           "the epochs shown or until its time budget; it is scored with its last weights. The options column: what",
           "the run asked beyond the script's standard ones (--epochs, --time-budget, learning-rate schedule).", ""]
    if any(r["run"] != "this" for r in rows):
        md += ["Rows marked *earlier run* were not run again this time: they are kept from the previous table, made on",
               "another CPU (named in the row) with its own time budget; their training times do not compare with the rest.", ""]
    md += [
           "The paper's column is **MNIST** (Mnih et al. 2014, Tables 1 and 2, NIPS proceedings): a different, easier",
           "data set (digits, not clothes), printed for the shape of the comparison, not as a target.", "",
           "| task | model | options | test error % | paper, MNIST % | parameters | multiply-adds / image | epochs | images seen (≈ updates × 64) | training time | CPU |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        name = WHAT[r["model"]] if r["model"] != "ram" else "RAM, %d glimpses, %dx%d, %d scale%s, %s core" % (
            r["glimpses"], r["patch"], r["patch"], r["scales"], "s" if r["scales"] > 1 else "", "LSTM" if r["core"] == "lstm" else "ReLU RNN")
        if r["run"] != "this":
            name += " (*earlier run*)"
        md.append("| %s | %s | %s | **%.2f** | %s | %s | %s | %d%s | %s | %.0f min | %s |" % (
            r["task"], name, r["options"].replace("|", "\\|"), r["test_error"], r["paper_mnist_error"], fmt_int(r["params"]),
            fmt_int(r["madds"]), r["epochs_done"], " (+ part, time budget)" if r["stopped"] == "time budget" else "",
            fmt_int(r["images_seen"]), r["train_s"] / 60, r["cpu"] or cpu))
    md += ["", "## Cost per image as the image grows", "",
           "Multiply-adds of one forward pass (attn_vision_madds; the glimpse sensor counted as one per source pixel",
           "it reads) of each trained configuration on 28x28, 60x60 and 100x100 images: RAM's stays the same, the",
           "convolutional net's grows with the number of pixels (the paper's central claim).", "",
           "| model | 28x28 | 60x60 | 100x100 |", "|---|---:|---:|---:|"]
    seen = set()
    for r in rows:
        key = (label(r), r["madds28"], r["madds100"])
        if key in seen:
            continue
        seen.add(key)
        md.append("| %s (trained on %s) | %s | %s | %s |" % (label(r), r["task"], fmt_int(r["madds28"]), fmt_int(r["madds60"]), fmt_int(r["madds100"])))
    pics = sorted(glob.glob(os.path.join(res, "visual_attention", "*.png")))
    md += ["", "![test error and multiply-adds](visual_attention.svg)", "", "## Pictures", "",
           "Made by `attn vision-examples` (the task variants) and `attn classify-image --show-glimpses` on the first",
           "test images (RAM: a numbered box per glimpse at each of its scales, and the path; soft attention: the",
           "weights over its feature grid, red where it looks).", ""]
    for p in pics:
        md.append("![%s](visual_attention/%s)" % (os.path.basename(p)[:-4], os.path.basename(p)))
    md += ["", "## Commands", ""]
    for r in rows:
        md.append("- `%s` (then `attn eval --model DIR --json`)" % r["command"].replace(out, "OUT"))
    open(os.path.join(res, "visual_attention.md"), "w").write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
