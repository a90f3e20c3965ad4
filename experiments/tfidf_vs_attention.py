#!/usr/bin/python3
"""Tables and plot of experiments/tfidf_vs_attention.sh, from its logs (standard library only).

    tfidf_vs_attention.py OUT RESULTS DATASET...

reads OUT/DATASET/MODEL.train.log (the trainer's lines), OUT/DATASET/MODEL.eval*.txt (attn
eval's lines), OUT/DATASET/MODEL[/best]/config.json and model.safetensors (the parameters),
and the test split (the mean length behind FLOPs per text); writes RESULTS/tfidf_vs_attention.md,
.csv and .svg.

FLOPs per text: the forward pass of one test text, a multiply-add counted as 2, averaged over the
test texts (T = the text's tokens: white-space words and punctuation for English, characters for
Chinese, at most the model's max_len). Only the matrix products and the weighted sums count;
activations, softmax and normalisation are small beside them:
  TF-IDF       2 C nnz, nnz <= T + (T-1) + ... n-grams (the vector's non-zeros, an upper bound)
  bow          T E + 2 C E
  attn-pool    additive: 2 T E A + 2 T A + 2 T E + 2 C E; scaled: 4 T E + 2 C E
  bigru-attn   2 directions x T x 2 (3 Hd E + 3 Hd Hd), then additive pooling over D = 2 Hd
  transformer  per layer, T' = T (+1 for [CLS]): 8 T' E^2 + 4 T'^2 E + 4 T' E d_ff
  cnn          per width w: 2 (T - w + 1) maps E w, then 2 C maps n_widths
"""
import csv
import html
import json
import os
import re
import struct
import subprocess
import sys

NAMES = {
    "tfidf-lr": "TF-IDF + logistic regression", "tfidf-svm": "TF-IDF + linear SVM", "nbsvm": "NB-SVM",
    "bow": "bag of embeddings", "attn-pool": "attention pooling (no positions)",
    "bigru-attn": "BiGRU + attention", "transformer": "Transformer encoder (sinusoidal, [CLS])",
    "cnn": "CNN (Kim 2014, CNN-rand)",
    "transformer-none": "Transformer, no positions", "transformer-learned": "Transformer, learned positions",
    "transformer-rope": "Transformer, RoPE", "transformer-alibi": "Transformer, ALiBi",
    "transformer-attnpool-none": "Transformer, no positions, attention pooling",
}
ORDER = ["tfidf-lr", "tfidf-svm", "nbsvm", "bow", "attn-pool", "bigru-attn", "transformer", "cnn"]
DATASETS = {
    "sst2": "SST-2", "chnsenticorp": "ChnSentiCorp", "waimai": "waimai_10k",
    "shopping": "online_shopping (sentiment)", "shopping-cat": "online_shopping (10 categories)",
}
PUBLISHED_SST2 = [  # test accuracy, from the papers (Socher et al. 2013; Kim 2014)
    ("NB (Socher et al. 2013)", 81.8), ("SVM (Socher et al. 2013)", 79.4), ("BiNB (Socher et al. 2013)", 83.1),
    ("VecAvg (Socher et al. 2013)", 80.1), ("RNN (Socher et al. 2013)", 82.4), ("MV-RNN (Socher et al. 2013)", 82.9),
    ("RNTN (Socher et al. 2013)", 85.4), ("CNN-rand (Kim 2014)", 82.7),
]
EVAL = re.compile(r"accuracy ([\d.]+)%, macro-F1 ([\d.]+), (\d+) texts \((\S+), ([\d.]+) texts/s\)")
DONE = re.compile(r"(?:trained|stopped): (\d+) updates in ([\d.]+) s \(training ([\d.]+) s[,)]")
EPOCH = re.compile(r"epoch (\d+)/(\d+): valid loss \S+, accuracy ([\d.]+)%")
BEST = re.compile(r"epoch (\d+): best so far")


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def eval_line(path):
    m = EVAL.search(read(path))
    return (float(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(5))) if m else None


def params(model_dir):
    """The number of parameters: the elements of every tensor of model.safetensors."""
    path = os.path.join(model_dir, "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
    total = 0
    for k, v in head.items():
        if k == "__metadata__":
            continue
        p = 1
        for d in v["shape"]:
            p *= d
        total += p
    return total


EN = re.compile(r"n't|\w+|[^\w\s]")


def test_lengths(path, zh):
    lens = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.reader(f, delimiter="\t" if path.endswith(".tsv") else ",")
        head = next(rows)
        col = next(i for i, c in enumerate(head) if c in ("sentence", "text", "review", "content"))
        for r in rows:
            if len(r) > col and r[col].strip():
                t = r[col]
                lens.append(len([c for c in t if not c.isspace()]) if zh else len(EN.findall(t)))
    return lens


def flops(cfg, kind, T, classes, ngram_max=3):
    """Forward FLOPs of one text of T tokens (see the module's comment)."""
    C = classes
    if kind in ("tfidf-lr", "tfidf-svm", "nbsvm"):
        return 2 * C * sum(max(T - n + 1, 0) for n in range(1, ngram_max + 1))
    T = max(1, min(T, cfg.get("max_len", 512)))
    E, H = cfg.get("embed", 128), cfg.get("hidden", 128)
    if kind == "bow":
        return T * E + 2 * C * E
    if kind == "attn-pool":
        if cfg.get("score") == "scaled":
            return 4 * T * E + 2 * C * E
        return 2 * T * E * H + 2 * T * H + 2 * T * E + 2 * C * E
    if kind == "bigru-attn":
        D = A = 2 * H
        return 2 * T * 2 * (3 * H * E + 3 * H * H) + 2 * T * D * A + 2 * T * A + 2 * T * D + 2 * C * D
    if kind == "transformer":
        Tp = T + (1 if cfg.get("pool", "cls") == "cls" else 0)
        per = 8 * Tp * E * E + 4 * Tp * Tp * E + 4 * Tp * E * cfg.get("d_ff", 256)
        pool = 4 * T * E if cfg.get("pool") == "attention" else 0
        return cfg.get("layers", 2) * per + pool + 2 * C * E
    if kind == "cnn":
        maps, widths = cfg.get("maps", 100), cfg.get("widths", [3, 4, 5])
        conv = sum(2 * max(T - w + 1, 1) * maps * E * w for w in widths)
        return conv + 2 * C * maps * len(widths)
    return None


def collect(out, ds):
    d = os.path.join(out, ds)
    rows = []
    if not os.path.isdir(d):
        return rows
    names = sorted(f[: -len(".train.log")] for f in os.listdir(d) if f.endswith(".train.log"))
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        base = os.path.join(d, name)
        ev = eval_line(base + ".eval.txt")
        if not ev or not os.path.isdir(base):
            continue
        best = os.path.join(base, "best")
        model_dir = best if os.path.exists(os.path.join(best, "model.safetensors")) else base
        cfg_all = json.loads(read(os.path.join(model_dir, "config.json")) or "{}")
        cfg = cfg_all.get("model", {})
        kind = cfg.get("model") if cfg.get("kind") == "classifier" else cfg.get("kind")
        log = read(base + ".train.log")
        done = DONE.findall(log)
        epochs = EPOCH.findall(log)
        bests = BEST.findall(log)
        zh = ds != "sst2"
        test = read(base + ".testfile").strip()  # the test file the script scored
        lens = test_lengths(test, zh) if test else []
        classes = cfg.get("classes", 2)
        fl = [flops(cfg, kind, T, classes) for T in lens] if lens else []
        r = {
            "dataset": ds, "model": name, "kind": kind, "test_accuracy": ev[0], "macro_f1": ev[1], "test_texts": ev[2],
            "texts_per_s": ev[3], "params": params(model_dir),
            "flops_per_text": round(sum(fl) / len(fl)) if fl and fl[0] is not None else "",
            "mean_tokens": round(sum(lens) / len(lens), 1) if lens else "",
            "train_s": float(done[-1][2]) if done else "", "updates": int(done[-1][0]) if done else "",
            "epochs_run": int(epochs[-1][0]) if epochs else "", "best_epoch": int(bests[-1]) if bests else "",
            "valid_accuracy": max((float(e[2]) for e in epochs), default=""),
        }
        for key, suffix in (("negation", ".eval-neg.txt"), ("shuffled", ".eval-shuf.txt"), ("negation_shuffled", ".eval-negshuf.txt")):
            e = eval_line(base + suffix)
            r[key] = e[0] if e else ""
        rows.append(r)
    return rows


def examples(out, rows, n=6):
    """SST-2 test sentences that the best TF-IDF model and the best attention model (each chosen
    by its validation accuracy) disagree on: the shortest of each side, from OUT/sst2/*.pred."""
    sst = [r for r in rows if r["dataset"] == "sst2" and os.path.exists(os.path.join(out, "sst2", r["model"] + ".pred"))]
    bag = [r for r in sst if r["kind"] in ("tfidf-lr", "tfidf-svm", "nbsvm")]
    att = [r for r in sst if r["kind"] in ("attn-pool", "bigru-attn", "transformer")]
    if not bag or not att:
        return []
    a = max(bag, key=lambda r: r["valid_accuracy"] or 0)
    b = max(att, key=lambda r: r["valid_accuracy"] or 0)
    test = read(os.path.join(out, "sst2", a["model"] + ".testfile")).strip()
    with open(test, encoding="utf-8") as f:
        data = [line.rstrip("\n").split("\t") for line in f][1:]
    pa = [line.split("\t")[0] for line in read(os.path.join(out, "sst2", a["model"] + ".pred")).splitlines()]
    pb = [line.split("\t")[0] for line in read(os.path.join(out, "sst2", b["model"] + ".pred")).splitlines()]
    if not (len(pa) == len(pb) == len(data)):
        return []
    na, nb = NAMES.get(a["model"], a["model"]), NAMES.get(b["model"], b["model"])
    only_b = sorted((t for (y, t), x, z in zip(data, pa, pb) if z == y != x), key=len)
    only_a = sorted((t for (y, t), x, z in zip(data, pa, pb) if x == y != z), key=len)
    md = ["## Where they disagree (SST-2 test)", "",
          f"{na} (the best bag of n-grams on the validation set) against {nb} (the best attention",
          f"model on it): {len(only_b)} test sentences only {nb} gets right, {len(only_a)} only {na} gets",
          "right. The shortest of each (label 1 = positive):", ""]
    label = {t: y for y, t in data}
    for title, group in ((f"only {nb} right", only_b), (f"only {na} right", only_a)):
        md += [f"{title}:", ""]
        md += [f"- ({label[t]}) {t}" for t in [t for t in group if len(t.split()) >= 4][:n]]
        md.append("")
    return md


def fmt_n(n):
    if n == "" or n is None:
        return ""
    n = float(n)
    for unit, s in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= unit:
            return f"{n / unit:.3g}{s}"
    return f"{n:.0f}"


def svg(rows, datasets, path):
    """Test accuracy: one group per data set, one bar per model (the axis starts at 50%)."""
    models = [m for m in ORDER if any(r["model"] == m for r in rows)]
    colors = ["#9e9e9e", "#616161", "#212121", "#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd"]
    W, H, L, R, T, B = 900, 460, 60, 250, 50, 70
    pw, ph = W - L - R, H - T - B
    lo, hi = 50.0, 100.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">TF-IDF or attention? Test accuracy (%), trained from scratch</text>']
    for v in range(50, 101, 10):
        y = T + ph - ph * (v - lo) / (hi - lo)
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v}</text>')
    ds_list = [d for d in datasets if any(r["dataset"] == d for r in rows)]
    gw = pw / max(len(ds_list), 1)
    bw = gw * 0.85 / max(len(models), 1)
    for k, ds in enumerate(ds_list):
        x0 = L + gw * k + gw * 0.075
        for i, m in enumerate(models):
            r = next((r for r in rows if r["dataset"] == ds and r["model"] == m), None)
            if r is None:
                continue
            v = max(lo, min(hi, r["test_accuracy"]))
            h = ph * (v - lo) / (hi - lo)
            out.append(f'<rect x="{x0 + bw * i:.1f}" y="{T + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                       f'fill="{colors[i % len(colors)]}"><title>{html.escape(DATASETS.get(ds, ds))}, '
                       f'{html.escape(NAMES.get(m, m))}: {r["test_accuracy"]:.2f}%</title></rect>')
        out.append(f'<text x="{L + gw * k + gw / 2:.1f}" y="{T + ph + 18}" text-anchor="middle">'
                   f'{html.escape(DATASETS.get(ds, ds).split(" (")[0])}</text>')
        if "(" in DATASETS.get(ds, ds):
            out.append(f'<text x="{L + gw * k + gw / 2:.1f}" y="{T + ph + 34}" text-anchor="middle">'
                       f'({html.escape(DATASETS[ds].split(" (")[1])}</text>')
    for i, m in enumerate(models):
        y = T + 10 + 22 * i
        out.append(f'<rect x="{L + pw + 15}" y="{y - 9}" width="22" height="12" fill="{colors[i % len(colors)]}"/>')
        out.append(f'<text x="{L + pw + 43}" y="{y + 2}">{html.escape(NAMES.get(m, m))}</text>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="black"/>')
    out.append("</svg>")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


def cpu():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, results, datasets = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = [r for ds in datasets for r in collect(out, ds)]
    if not rows:
        sys.exit(f"tfidf_vs_attention.py: no finished runs under {out}")
    keys = ["dataset", "model", "kind", "test_accuracy", "macro_f1", "test_texts", "params", "flops_per_text",
            "mean_tokens", "train_s", "updates", "epochs_run", "best_epoch", "valid_accuracy", "texts_per_s",
            "negation", "shuffled", "negation_shuffled"]
    os.makedirs(results, exist_ok=True)
    base = os.path.join(results, "tfidf_vs_attention")
    with open(base + ".csv.tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in keys})
    os.replace(base + ".csv.tmp", base + ".csv")
    svg(rows, datasets, base + ".svg")

    quick = os.environ.get("QUICK") == "1"
    md = ["# TF-IDF or attention? Text classifiers trained from scratch in C", ""]
    if quick:
        md += ["**A smoke run (`--quick`: 20 updates per model): the figures mean nothing.**", ""]
    md += [f"Made by `experiments/tfidf_vs_attention.sh` on {cpu()} ({os.cpu_count()} cores); every model trained",
          f"by `attn train classifier` with at most {os.environ.get('EPOCHS', '10')} epochs (TF-IDF, NB-SVM and the bag of embeddings: {os.environ.get('EPOCHS_FAST', '40')}), stopped after 2 epochs without a better",
          "validation accuracy, scored on the test split with its best epoch's weights (epochs chosen on",
          "the validation split only). No pretrained vectors. Training time and speed on a machine shared",
          "with other work: indicative only.", "",
          "## Test accuracy (%)", ""]
    main_ds = [d for d in datasets if any(r["dataset"] == d for r in rows)]
    md.append("| model | " + " | ".join(DATASETS.get(d, d) for d in main_ds) + " |")
    md.append("|---|" + "---:|" * len(main_ds))
    for m in ORDER:
        cells = []
        for d in main_ds:
            r = next((r for r in rows if r["dataset"] == d and r["model"] == m), None)
            cells.append(f"{r['test_accuracy']:.2f}" if r else "")
        if any(cells):
            md.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    if "sst2" in main_ds:
        for name, acc in PUBLISHED_SST2:
            md.append(f"| *published: {name}* | " + " | ".join(f"*{acc}*" if d == "sst2" else "" for d in main_ds) + " |")
    md += ["", "![test accuracy](tfidf_vs_attention.svg)", ""]
    for d in main_ds:
        md += [f"## {DATASETS.get(d, d)}", "",
               "| model | test acc. | macro-F1 | parameters | FLOPs/text | training (s) | epochs (best) | texts/s |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in (r for r in rows if r["dataset"] == d):
            md.append(f"| {NAMES.get(r['model'], r['model'])} | {r['test_accuracy']:.2f} | {r['macro_f1']:.2f} | "
                      f"{fmt_n(r['params'])} | {fmt_n(r['flops_per_text'])} | {r['train_s']} | "
                      f"{r['epochs_run']} ({r['best_epoch']}) | {fmt_n(r['texts_per_s'])} |")
        lens = [r["mean_tokens"] for r in rows if r["dataset"] == d and r["mean_tokens"] != ""]
        if lens:
            md += ["", f"Test texts: {rows[[r['dataset'] for r in rows].index(d)]['test_texts']}, "
                   f"{lens[0]} tokens on average (FLOPs/text is the mean over them)."]
        md.append("")
    pos = [r for r in rows if r["dataset"] == "sst2" and r["kind"] == "transformer"]
    if len(pos) > 1:
        md += ["## The Transformer's positions (SST-2 test)", "",
               "The same encoder (2 layers, 4 heads, d_model 128, d_ff 256, dropout 0.3) with each position",
               "encoding; without positions self-attention cannot see order, so shuffling the words of a",
               "sentence cannot change its prediction (up to rounding).", "",
               "| positions, pooling | test acc. | shuffled words | negation/contrast | parameters | best epoch |",
               "|---|---:|---:|---:|---:|---:|"]
        for r in pos:
            md.append(f"| {NAMES.get(r['model'], r['model'])} | {r['test_accuracy']:.2f} | {r['shuffled']:.2f} | "
                      f"{r['negation']:.2f} | {fmt_n(r['params'])} | {r['best_epoch']} |")
        md.append("")
    sst = [r for r in rows if r["dataset"] == "sst2" and r["negation"] != "" and r["model"] in ORDER]
    if sst:
        md += ["## Order (SST-2 test)", "",
               "`attn eval --subset negation`: the test sentences with not, n't, no, never, but or though;",
               "`--shuffle-words 1`: every sentence's words in a seeded random order.", "",
               "| model | all | negation/contrast | all, shuffled | negation, shuffled |", "|---|---:|---:|---:|---:|"]
        for r in sst:
            md.append(f"| {NAMES.get(r['model'], r['model'])} | {r['test_accuracy']:.2f} | {r['negation']:.2f} | "
                      f"{r['shuffled']:.2f} | {r['negation_shuffled']:.2f} |")
        md.append("")
    md += examples(out, rows)
    with open(base + ".md.tmp", "w") as f:
        f.write("\n".join(md) + "\n")
    os.replace(base + ".md.tmp", base + ".md")


if __name__ == "__main__":
    main()
