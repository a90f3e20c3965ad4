#!/usr/bin/python3
"""The peer of `attn train transformer`: the same Transformer trained with PyTorch, for a fixed
number of steps, reporting tokens per second the way attn does (source + target tokens of
each batch, <eos> included, over the time of the training steps).

    /usr/bin/python3 bench/torch_transformer.py --data PAIRS.tsv [options]

The model is torch.nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers,
dim_feedforward, dropout, batch_first=True, norm_first) between embeddings scaled by
sqrt(d_model) plus the sinusoidal table, with the generator tied to the target embedding:
the model attn builds with --pos sinusoidal --share tgt (the default). Same optimiser (Adam,
betas 0.9/0.98, eps 1e-9, the warm-up then inverse square root schedule), label smoothing,
gradient clipping by global norm. Data: a TSV of space-separated tokens (column 0 source,
column 1 target, as attn's --direction plain), vocabularies from the training pairs, batches
of --batch pairs of similar lengths. PyTorch differs in one way it cannot switch off: its
dropout also drops attention weights (attn's fused attention does not); use --dropout 0 for
identical computations.

Prints one line: "torch: N steps, ... tokens/s".

    /usr/bin/python3 bench/torch_transformer.py --write-synthetic OUT.tsv --like PAIRS.tsv

writes the synthetic data both programs train on in experiments/transformer_vs_torch.sh: one
pair per line of PAIRS.tsv (English<TAB>Chinese, as cmn.txt), the source as many random
tokens as the Chinese side has characters, the target as many as the English side has
words and punctuation marks, drawn uniformly from 2285 and 3928 symbols (about the
vocabularies of the Chinese-English split), so batches have the real lengths and the real
output layer size.
"""
import argparse
import math
import random
import sys
import time

import torch
import torch.nn as nn


def write_synthetic(out, like, seed):
    import re
    rng = random.Random(seed)
    with open(like, encoding="utf-8") as f, open(out, "w") as o:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 2:
                continue
            ls = len([c for c in cols[1] if not c.isspace()])
            lt = len(re.findall(r"[a-z0-9']+|[^\sa-z0-9']", cols[0].lower()))
            if ls == 0 or lt == 0:
                continue
            s = " ".join("s%d" % rng.randrange(2285) for _ in range(ls))
            t = " ".join("t%d" % rng.randrange(3928) for _ in range(lt))
            o.write(s + "\t" + t + "\n")


def main():
    if "--write-synthetic" in sys.argv:
        i = sys.argv.index("--write-synthetic")
        like = sys.argv[sys.argv.index("--like") + 1]
        return write_synthetic(sys.argv[i + 1], like, 1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup-steps", type=int, default=5, help="steps not timed")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--norm", default="post")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=30, help="pairs with more tokens on a side are left out, as attn")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)

    pairs = []
    with open(a.data, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2:
                s, t = cols[0].split(), cols[1].split()
                if 0 < len(s) <= a.max_len and len(t) <= a.max_len:
                    pairs.append((s, t))
    vs, vt = {}, {}
    for s, t in pairs:
        for w in s:
            vs[w] = vs.get(w, 0) + 1
        for w in t:
            vt[w] = vt.get(w, 0) + 1
    def vocab(c):
        ids = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3}
        for w, n in sorted(c.items(), key=lambda x: (-x[1], x[0])):
            if n >= 2:
                ids[w] = len(ids)
        return ids
    vs, vt = vocab(vs), vocab(vt)
    data = [([vs.get(w, 1) for w in s] + [3], [2] + [vt.get(w, 1) for w in t] + [3]) for s, t in pairs]

    E = a.d_model
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(len(vs), E)
            self.tgt_embed = nn.Embedding(len(vt), E)
            nn.init.normal_(self.src_embed.weight, 0, E ** -0.5)
            nn.init.normal_(self.tgt_embed.weight, 0, E ** -0.5)
            self.tr = nn.Transformer(E, a.heads, a.layers, a.layers, a.ff, a.dropout, batch_first=True,
                                     norm_first=a.norm == "pre")
            self.gen_b = nn.Parameter(torch.zeros(len(vt)))
            pe = torch.zeros(512, E)
            pos = torch.arange(512).unsqueeze(1)
            div = torch.pow(10000.0, -torch.arange(0, E, 2).float() / E)
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div)
            self.register_buffer("pe", pe)
            self.drop = nn.Dropout(a.dropout)

        def forward(self, src, src_pad, tgt):
            S, T = src.shape[1], tgt.shape[1]
            x = self.drop(self.src_embed(src) * math.sqrt(E) + self.pe[:S])
            y = self.drop(self.tgt_embed(tgt) * math.sqrt(E) + self.pe[:T])
            mask = torch.triu(torch.full((T, T), float("-inf")), 1)
            out = self.tr(x, y, tgt_mask=mask, src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad)
            return out @ self.tgt_embed.weight.T + self.gen_b

    m = Model()
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=a.lr, betas=(0.9, 0.98), eps=1e-9)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=a.label_smoothing)

    # batches of similar lengths, as attn_batches_make (windows of 50 batches sorted by length)
    order = list(range(len(data)))
    random.shuffle(order)
    win = 50 * a.batch
    batches = []
    for i in range(0, len(order), win):
        w = sorted(order[i:i + win], key=lambda k: len(data[k][0]) + len(data[k][1]))
        batches += [w[j:j + a.batch] for j in range(0, len(w), a.batch)]
    random.shuffle(batches)

    def tensors(idx):
        S = max(len(data[k][0]) for k in idx)
        T = max(len(data[k][1]) - 1 for k in idx)
        src = torch.zeros(len(idx), S, dtype=torch.long)
        tin = torch.zeros(len(idx), T, dtype=torch.long)
        tout = torch.zeros(len(idx), T, dtype=torch.long)
        tok = 0
        for i, k in enumerate(idx):
            s, t = data[k]
            src[i, :len(s)] = torch.tensor(s)
            tin[i, :len(t) - 1] = torch.tensor(t[:-1])
            tout[i, :len(t) - 1] = torch.tensor(t[1:])
            tok += len(s) + len(t) - 1
        return src, src == 0, tin, tout, tok

    n_params = sum(p.numel() for p in m.parameters())
    t_train, tokens, losses = 0.0, 0, []
    for step in range(a.warmup_steps + a.steps):
        src, pad, tin, tout, tok = tensors(batches[step % len(batches)])
        t0 = time.perf_counter()
        lr = a.lr * min((step + 1) / a.warmup, math.sqrt(a.warmup / (step + 1)))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        logits = m(src, pad, tin)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tout.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup_steps:
            t_train += dt
            tokens += tok
            losses.append(loss.item())
    print(f"torch: {a.steps} steps in {t_train:.2f} s, {tokens / t_train:.0f} tokens/s, {n_params} parameters, "
          f"final loss {sum(losses[-10:]) / len(losses[-10:]):.4f}, torch {torch.__version__}, {a.threads} threads")


if __name__ == "__main__":
    sys.exit(main())
