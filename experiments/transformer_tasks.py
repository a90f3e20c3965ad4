#!/usr/bin/python3
"""Synthetic sequence tasks for experiments/transformer_order.sh: one that needs the order of
the input and one that does not.

    /usr/bin/python3 experiments/transformer_tasks.py OUTDIR [--seed 1]

writes OUTDIR/{reverse,sort}/{train,valid,test}.tsv, one pair per line, tokens separated by
spaces (train with `attn train transformer --direction plain`):
  reverse   "c a f e" -> "e f a c": the output is the input read backwards, so a model must
            know where each input token stands;
  sort      "c a f e" -> "a c e f": the output depends only on the bag of input tokens, so a
            model that cannot see order can still do it.
Symbols: the 20 letters a..t; lengths uniform in [4, 12]; 20000 train, 500 valid, 1000 test
pairs, drawn with one seeded generator (pairs of the test split that also occur in train are
redrawn, so the test measures generalisation, not memory).
"""
import os
import random
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    rng = random.Random(seed)
    symbols = [chr(ord("a") + i) for i in range(20)]

    def draw():
        return [rng.choice(symbols) for _ in range(rng.randint(4, 12))]

    sizes = {"train": 20000, "valid": 500, "test": 1000}
    seqs = {k: [] for k in sizes}
    seen = set()
    for split in ("train", "valid", "test"):
        while len(seqs[split]) < sizes[split]:
            s = draw()
            key = " ".join(s)
            if split != "train" and key in seen:
                continue
            if split == "train":
                seen.add(key)
            seqs[split].append(s)
    tasks = {"reverse": lambda s: list(reversed(s)), "sort": sorted}
    for task, fn in tasks.items():
        os.makedirs(os.path.join(out, task), exist_ok=True)
        for split, rows in seqs.items():
            with open(os.path.join(out, task, split + ".tsv"), "w") as f:
                for s in rows:
                    f.write(" ".join(s) + "\t" + " ".join(fn(s)) + "\n")


if __name__ == "__main__":
    main()
