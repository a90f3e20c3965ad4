#!/usr/bin/python3
"""Helpers of experiments/knn_mt.sh (the kNN-MT translation memory, issue 11 part 3).

  knn_mt.py subsets SPLIT_DIR OUT_DIR [RARE_MAX] [NEAR_DICE]
      writes test subsets as TSV (the split's own lines, unchanged):
        rare.tsv    test pairs whose reference holds an English word seen 1..RARE_MAX (default 5)
                    times in the training references (lowercased words [a-z']+): the words the
                    model met too rarely to learn well, but that the memory holds;
        common.tsv  the others;
        near.tsv    test pairs whose source is near a validation pair's source: the Dice
                    coefficient of their sets of Chinese character bigrams is at least
                    NEAR_DICE (default 0.5) for some validation source ("the new domain": the
                    validation pairs, which the model never trained on, are the memory of the
                    domain-adaptation runs);
        far.tsv     the others;
        unseen.tsv  test pairs whose source is no training source and whose reference is no
                    training reference (Tatoeba holds several translations of many sentences:
                    18% of the test sources are also training sources).
      and prints the counts.
  knn_mt.py report RUNS.csv TUNE_DIR BUCKETS_DIR OUT.md
      the Markdown table of experiments/results/knn_mt.md from the runs' CSV (one line per
      attn eval: family,run,data,sentences,bleu,exact,seconds,tokens,tokens_per_s,command).
"""
import collections
import csv
import os
import re
import sys


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def words(s):
    return re.findall(r"[a-z']+", s.lower())


def bigrams(s):
    s = "".join(ch for ch in s if not ch.isspace())
    return {s[i:i + 2] for i in range(len(s) - 1)} or {s}


def subsets(split, out, rare_max=5, near_dice=0.5):
    train = read_tsv(os.path.join(split, "train.tsv"))
    valid = read_tsv(os.path.join(split, "valid.tsv"))
    test = read_tsv(os.path.join(split, "test.tsv"))
    counts = collections.Counter(w for line in train for w in words(line.split("\t")[0]))
    train_en = {line.split("\t")[0].strip() for line in train}
    train_zh = {line.split("\t")[1].strip() for line in train}
    vb = [bigrams(line.split("\t")[1]) for line in valid]
    index = collections.defaultdict(list)
    for j, b in enumerate(vb):
        for g in b:
            index[g].append(j)
    sets = {k: [] for k in ("rare", "common", "near", "far", "unseen")}
    for line in test:
        en, zh = line.split("\t")[0], line.split("\t")[1]
        rare = any(1 <= counts[w] <= rare_max for w in words(en))
        sets["rare" if rare else "common"].append(line)
        tb = bigrams(zh)
        shared = collections.Counter(j for g in tb for j in index.get(g, ()))
        best = max((2.0 * c / (len(tb) + len(vb[j])) for j, c in shared.items()), default=0.0)
        sets["near" if best >= near_dice else "far"].append(line)
        if en.strip() not in train_en and zh.strip() not in train_zh:
            sets["unseen"].append(line)
    for k, lines in sets.items():
        with open(os.path.join(out, k + ".tsv"), "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    print(" ".join("%s %d" % (k, len(v)) for k, v in sets.items()))


def report(runs_csv, tune_dir, buckets_dir, out_md):
    rows = list(csv.DictReader(open(runs_csv, encoding="utf-8")))
    by = {(r["family"], r["run"], r["data"]): r for r in rows}
    fams = []
    for r in rows:
        if r["family"] not in fams:
            fams.append(r["family"])
    md = []
    md.append("## Test BLEU with and without the memory (k, T, lambda tuned on validation only)\n")
    md.append("test: the whole test split, beam 5 (and greedy); rare and unseen (the test pairs whose source "
              "and reference are in no training pair): greedy.\n")
    md.append("| family | data | sentences | BLEU alone | BLEU with memory | gain | tokens/s alone | tokens/s with memory |")
    md.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for fam in fams:
        for data, ra, rm in (("test", "alone", "memory"), ("test (index: 8 of 256 lists)", "alone", "memory-ivf"),
                             ("test (greedy)", "alone-greedy", "memory-greedy"), ("rare", "alone", "memory"),
                               ("unseen", "alone", "memory")):
            a, m = by.get((fam, ra, data.split()[0])), by.get((fam, rm, data.split()[0]))
            if not a or not m:
                continue
            md.append("| %s | %s | %s | %.2f | %.2f | %+.2f | %.0f | %.0f |" % (
                fam, data, a["sentences"], float(a["bleu"]), float(m["bleu"]), float(m["bleu"]) - float(a["bleu"]),
                float(a["tokens_per_s"]), float(m["tokens_per_s"])))
    md.append("\n## Decoding speed and the cost of the exact search (test set)\n")
    md.append("| family | decoding | tokens/s alone | tokens/s with memory | memory cost per token (ms) |")
    md.append("|---|---|---:|---:|---:|")
    for fam in fams:
        for run_a, run_m, name in (("alone", "memory", "beam 5"), ("alone", "memory-ivf", "beam 5, index (8 of 256 lists)"),
                                   ("alone-greedy", "memory-greedy", "greedy")):
            a, m = by.get((fam, run_a, "test")), by.get((fam, run_m, "test"))
            if not a or not m:
                continue
            ta, tm = float(a["tokens_per_s"]), float(m["tokens_per_s"])
            cost = (1.0 / tm - 1.0 / ta) * 1000.0 if ta > 0 and tm > 0 else float("nan")
            md.append("| %s | %s | %.0f | %.0f | %.2f |" % (fam, name, ta, tm, cost))
    md.append("\n## BLEU by source length (test, beam 5)\n")
    for fam in fams:
        a = os.path.join(buckets_dir, fam + "-alone.csv")
        m = os.path.join(buckets_dir, fam + "-memory.csv")
        if not (os.path.exists(a) and os.path.exists(m)):
            continue
        ra = list(csv.DictReader(open(a, encoding="utf-8")))
        rm = {r["bucket"]: r for r in csv.DictReader(open(m, encoding="utf-8"))}
        md.append("| %s: source length | sentences | BLEU alone | BLEU with memory | gain |" % fam)
        md.append("|---|---:|---:|---:|---:|")
        for r in ra:
            b = rm.get(r["bucket"])
            if b and int(r["sentences"]) > 0:
                md.append("| %s | %s | %.2f | %.2f | %+.2f |" % (r["bucket"], r["sentences"], float(r["bleu"]), float(b["bleu"]),
                                                               float(b["bleu"]) - float(r["bleu"])))
        md.append("")
    md.append("## Domain adaptation: a memory of pairs the model never trained on (the validation split; greedy)\n")
    md.append("| family | test subset | sentences | alone | memory: train | memory: valid | memory: train + valid |")
    md.append("|---|---|---:|---:|---:|---:|---:|")
    for fam in fams:
        for data in ("rare", "near", "far"):
            if data == "rare":
                continue
            cells = [by.get((fam, run, data)) for run in ("alone", "memory", "da-valid", "da-train+valid")]
            if not all(cells):
                continue
            md.append("| %s | %s | %s | %s |" % (fam, data, cells[0]["sentences"], " | ".join("%.2f" % float(c["bleu"]) for c in cells)))
    md.append("\n## Tuning on validation (greedy)\n")
    for fam in fams:
        p = os.path.join(tune_dir, fam + "-tune.csv")
        if not os.path.exists(p):
            continue
        t = list(csv.DictReader(open(p, encoding="utf-8")))
        md.append("%s: %d settings tried; best %s (the model alone, lambda 0: %s)\n" % (
            fam, len(t), max(t, key=lambda r: float(r["bleu"]))["bleu"] if t else "-", t[0]["bleu"] if t else "-"))
        md.append("| k | T | lambda | valid BLEU |")
        md.append("|---:|---:|---:|---:|")
        for r in t:
            md.append("| %s | %s | %s | %s |" % (r["k"], r["temperature"], r["lambda"], r["bleu"]))
        md.append("")
    md.append("## Commands\n")
    md.append("Every figure above comes from one of these `attn eval` lines (in order of the runs):\n")
    md.append("```")
    for r in rows:
        md.append(r["command"])
    md.append("```")
    with open(out_md, "a", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "subsets":
        subsets(sys.argv[2], sys.argv[3], *(float(x) for x in sys.argv[4:6]))
    elif len(sys.argv) == 6 and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)
