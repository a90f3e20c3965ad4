#!/usr/bin/env python3
"""The PyTorch peer of experiments/classifier_vs_torch.sh: attn's text classifiers
(bigru-attn, transformer; src/models/classifier.c) built from torch.nn with the same sizes,
trained with Adam on the same kind of padded batches, timing forward + backward + Adam step
over STEPS batches after WARM (the batches are made before the clock starts).

The data as attn reads it: attn's English tokeniser (--tok en, chosen by --tok auto for
SST-2: lower-cased, a word is a run of letters and digits with an apostrophe between two
letters kept inside it, every other non-space character a token of its own), a vocabulary of
the words seen at least twice plus attn's 4 special tokens (<pad> 0, <unk> 1, <bos> 2, <eos> 3),
and attn's batches (src/train/batch.c): shuffle, sort windows of 50 batches by length, cut
into batches of 64, shuffle the batches; each batch padded to its longest sentence (with
<pad> = 0), with a [CLS] (<bos>) token first for the Transformer. The shuffles use numpy's
generator, not attn's: the batches have the same shapes in distribution, not one for one,
so throughput is reported per sentence and per token.

The models, as attn builds them:
  bigru-attn   embedding (padding 0) -> dropout -> bidirectional GRU over the real tokens
               (packed) -> additive attention pooling: weights softmax(u . tanh(W h + b)) over
               the real tokens, pooled = sum of weights * h -> dropout -> linear.
  transformer  embedding * sqrt(E) + sinusoidal positions -> dropout -> nn.TransformerEncoder
               (post-LN, ReLU, 2 layers, 4 heads, d_ff 256, final LayerNorm as attn's
               encoder.norm) with the padding masked -> the [CLS] state -> dropout -> linear.
               PyTorch's layer also drops attention weights, which attn's fused attention does
               not (run with --dropout 0 for the identical function).

usage: classifier_torch.py --data TRAIN.tsv --model bigru-attn|transformer [--steps N]
       [--warmup-steps N] [--threads N] [--batch N] [--dropout F]
prints: "vocabulary V, P parameters" and "timed K steps: S sentences/s, T tokens/s".
"""
import argparse
import collections
import math
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn

PAD, UNK, BOS, NSPECIAL = 0, 1, 2, 4
WORD = re.compile(r"[a-z0-9\u00c0-\u00ff]+(?:'[a-z\u00c0-\u00ff]+)*|\S")


def tokenize(text):
    """attn's English tokeniser, for the texts of SST-2 (already lower-cased, ASCII)."""
    return WORD.findall(text.lower())


def read_tsv(path):
    """The labels and token lists of a TSV file with a header naming label and sentence."""
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        li, ti = head.index("label"), head.index("sentence")
        labels, texts = [], []
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) != len(head) or not cols[ti].strip():
                continue
            toks = tokenize(cols[ti])
            if toks:
                labels.append(cols[li])
                texts.append(toks)
    names = sorted(set(labels))
    return [names.index(y) for y in labels], texts, len(names)


def encode(texts, min_count=2):
    counts = collections.Counter(w for t in texts for w in t)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    ids = {w: NSPECIAL + i for i, w in enumerate(words)}
    return [[ids.get(w, UNK) for w in t] for t in texts], NSPECIAL + len(words)


def batches(lens, batch, bucket, rng):
    """attn_batches_make's plan: lists of example indices."""
    idx = rng.permutation(len(lens))
    win = bucket * batch
    for lo in range(0, len(idx), win):
        part = idx[lo:lo + win]
        idx[lo:lo + win] = part[np.argsort(lens[part], kind="stable")]
    cut = [idx[i:i + batch] for i in range(0, len(idx), batch)]
    return [cut[i] for i in rng.permutation(len(cut))]


class BiGRUAttn(nn.Module):
    def __init__(self, V, E, Hd, C, p):
        super().__init__()
        self.embed = nn.Embedding(V, E, padding_idx=PAD)
        self.gru = nn.GRU(E, Hd, bidirectional=True)
        self.proj = nn.Linear(2 * Hd, 2 * Hd)
        self.context = nn.Parameter(torch.randn(2 * Hd) * 0.1)
        self.drop = nn.Dropout(p)
        self.fc = nn.Linear(2 * Hd, C)

    def forward(self, ids, lens):
        # ids (T, B) time-major, lens (B) on the CPU
        x = self.drop(self.embed(ids))                                   # (T, B, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, lens, enforce_sorted=False)
        h, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], total_length=ids.shape[0])  # (T, B, 2Hd)
        s = torch.tanh(self.proj(h)) @ self.context                       # (T, B)
        pad = torch.arange(ids.shape[0])[:, None] >= lens[None, :]        # (T, B)
        w = torch.softmax(s.masked_fill(pad, float("-inf")), dim=0)       # (T, B)
        pooled = (w.unsqueeze(2) * h).sum(0)                              # (B, 2Hd)
        return self.fc(self.drop(pooled))


class TransformerCls(nn.Module):
    def __init__(self, V, E, H, L, F, C, p, max_len=513):
        super().__init__()
        self.E = E
        self.embed = nn.Embedding(V, E, padding_idx=PAD)
        pos = torch.arange(max_len, dtype=torch.float64)[:, None]
        freq = torch.exp(torch.arange(0, E, 2, dtype=torch.float64) * (-math.log(10000.0) / E))
        pe = torch.zeros(max_len, E, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        self.register_buffer("pe", pe.float())
        layer = nn.TransformerEncoderLayer(E, H, F, p, activation="relu", batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, L, norm=nn.LayerNorm(E), enable_nested_tensor=False)
        self.drop = nn.Dropout(p)
        self.fc = nn.Linear(E, C)

    def forward(self, ids, lens):
        # ids (B, S) with [CLS] first, lens (B) counting it
        S = ids.shape[1]
        x = self.drop(self.embed(ids) * math.sqrt(self.E) + self.pe[:S])  # (B, S, E)
        pad = torch.arange(S)[None, :] >= lens[:, None]                   # (B, S)
        h = self.encoder(x, src_key_padding_mask=pad)                     # (B, S, E)
        return self.fc(self.drop(h[:, 0]))


def make_batch(model, ids, labels, idx):
    lens = [len(ids[i]) for i in idx]
    cls = 1 if model == "transformer" else 0
    S = max(lens) + cls
    x = torch.full((len(idx), S), PAD, dtype=torch.long)
    for r, i in enumerate(idx):
        if cls:
            x[r, 0] = BOS
        x[r, cls:cls + lens[r]] = torch.tensor(ids[i])
    n = torch.tensor(lens) + cls
    y = torch.tensor([labels[i] for i in idx])
    return (x if cls else x.t().contiguous()), n, y, sum(lens)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", choices=["bigru-attn", "transformer"], required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup-steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    labels, texts, C = read_tsv(a.data)
    ids, V = encode(texts)
    lens = np.array([len(t) for t in ids])
    plan = batches(lens, a.batch, 50, np.random.default_rng(a.seed))
    need = a.warmup_steps + a.steps
    if need > len(plan):
        sys.exit(f"classifier_torch.py: {need} steps asked, the data has {len(plan)} batches")
    if a.model == "bigru-attn":
        model = BiGRUAttn(V, 128, 128, C, a.dropout)
    else:
        model = TransformerCls(V, 128, 4, 2, 256, C, a.dropout)
    print(f"vocabulary {V}, {sum(p.numel() for p in model.parameters())} parameters, {len(ids)} texts", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    data = [make_batch(a.model, ids, labels, plan[b]) for b in range(need)]
    t_timed, sent, tok = 0.0, 0, 0
    for step, (x, n, y, ntok) in enumerate(data):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x, n), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup_steps:
            t_timed, sent, tok = t_timed + dt, sent + len(y), tok + ntok
    print(f"timed {a.steps} steps in {t_timed:.3f} s: {sent / t_timed:.1f} sentences/s, {tok / t_timed:.0f} tokens/s, "
          f"last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
