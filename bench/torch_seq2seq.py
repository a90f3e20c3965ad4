#!/usr/bin/env python3
"""The PyTorch peer of `attn train seq2seq`: the same encoder-decoder (same sizes, batches,
optimiser, clipping, label smoothing, dropout), trained for a fixed number of steps on the
batches the C trainer exported with --export-batches, reporting tokens/s the way the C trainer
counts them (source ids with <eos> plus target ids with <eos>, per second of training steps:
batch to tensors, forward, backward, clipping, optimiser step).

The model is written the efficient way in PyTorch: packed sequences for the encoder, the
keys' projection Ua h_j computed once per batch (the tutorial's BahdanauAttention recomputes
it at every step), GRUCell steps for the Bahdanau decoder, one nn.GRU call over the whole
target for the none and Luong decoders, one output projection over all steps.

    python3 bench/torch_seq2seq.py --batches batches.txt --steps 100 --attention bahdanau

Parameter names match the C model's (encoder.embedding.weight, decoder.attention.Wa.weight,
...), except the Bahdanau decoder's GRUCell (weight_ih, not weight_ih_l0).
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK, BOS, EOS = 0, 1, 2, 3


def read_batches(path):
    """-> (src_vocab, tgt_vocab, [[(src ids, tgt ids), ...], ...])"""
    batches, cur = [], []
    with open(path) as f:
        head = f.readline().split()
        vs, vt = int(head[head.index("src_vocab") + 1]), int(head[head.index("tgt_vocab") + 1])
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if cur:
                    batches.append(cur)
                cur = []
                continue
            s, t = line.split("\t")
            cur.append(([int(x) for x in s.split()], [int(x) for x in t.split()]))
    if cur:
        batches.append(cur)
    return vs, vt, batches


class Encoder(nn.Module):
    def __init__(self, V, E, H, bidirectional, dropout):
        super().__init__()
        self.embedding = nn.Embedding(V, E, padding_idx=PAD)
        self.gru = nn.GRU(E, H // 2 if bidirectional else H, bidirectional=bidirectional)
        self.drop = nn.Dropout(dropout)
        self.bi = bidirectional

    def forward(self, src, lens):  # src (S, B), lens (B) cpu int64
        x = self.drop(self.embedding(src))
        packed = pack_padded_sequence(x, lens, enforce_sorted=False)
        out, h = self.gru(packed)
        out, _ = pad_packed_sequence(out, total_length=src.shape[0])  # (S, B, H), zeros past lengths
        s0 = torch.cat([h[0], h[1]], -1) if self.bi else h[0]  # (B, H)
        return out, s0


class Decoder(nn.Module):
    def __init__(self, V, E, H, A, attention, dropout):
        super().__init__()
        self.attention_kind = attention
        self.embedding = nn.Embedding(V, E, padding_idx=PAD)
        rnn_in = E + (H if attention in ("none", "bahdanau") else 0)
        if attention == "bahdanau":
            self.gru = nn.GRUCell(rnn_in, H)
            self.attention = nn.Module()
            self.attention.Wa = nn.Linear(H, A)
            self.attention.Ua = nn.Linear(H, A)
            self.attention.Va = nn.Linear(A, 1, bias=False)
        else:
            self.gru = nn.GRU(rnn_in, H)
            if attention == "luong-general":
                self.attention = nn.Module()
                self.attention.Wa = nn.Linear(H, H, bias=False)
        self.concat = nn.Linear(2 * H, H)
        self.out = nn.Linear(H, V)
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt_in, enc, s0, key_mask):  # tgt_in (T, B), enc (S, B, H), key_mask (S, B) True = real
        emb = self.drop(self.embedding(tgt_in))  # (T, B, E)
        T = tgt_in.shape[0]
        if self.attention_kind == "bahdanau":
            Uk = self.attention.Ua(enc)  # (S, B, A), once
            va = self.attention.Va
            s, states, ctxs = s0, [], []
            for t in range(T):
                q = self.attention.Wa(s)  # (B, A): the query is the previous state
                e = va(torch.tanh(Uk + q.unsqueeze(0))).squeeze(-1)  # (S, B)
                a = torch.softmax(e.masked_fill(~key_mask, float("-inf")), dim=0)
                ctx = torch.einsum("sb,sbh->bh", a, enc)
                s = self.gru(torch.cat([emb[t], ctx], -1), s)
                states.append(s)
                ctxs.append(ctx)
            S_, C_ = torch.stack(states), torch.stack(ctxs)
        elif self.attention_kind == "none":
            C_ = s0.unsqueeze(0).expand(T, -1, -1)
            S_, _ = self.gru(torch.cat([emb, C_], -1), s0.unsqueeze(0))
        else:
            S_, _ = self.gru(emb, s0.unsqueeze(0))  # (T, B, H)
            keys = self.attention.Wa(enc) if self.attention_kind == "luong-general" else enc
            scores = torch.einsum("tbh,sbh->bts", S_, keys)
            scores = scores.masked_fill(~key_mask.t().unsqueeze(1), float("-inf"))
            C_ = torch.einsum("bts,sbh->tbh", torch.softmax(scores, -1), enc)
        h = self.drop(torch.tanh(self.concat(torch.cat([C_, S_], -1))))
        return self.out(h)  # (T, B, V)


class Seq2Seq(nn.Module):
    def __init__(self, vs, vt, E, H, A, attention, bidirectional, dropout):
        super().__init__()
        self.encoder = Encoder(vs, E, H, bidirectional, dropout)
        self.decoder = Decoder(vt, E, H, A, attention, dropout)

    def forward(self, src, lens, tgt_in, key_mask):
        enc, s0 = self.encoder(src, lens)
        return self.decoder(tgt_in, enc, s0, key_mask)


def to_tensors(batch):
    B = len(batch)
    S = max(len(s) for s, _ in batch)
    T = max(len(t) - 1 for _, t in batch)
    src = torch.full((S, B), PAD, dtype=torch.long)
    tin = torch.full((T, B), PAD, dtype=torch.long)
    tout = torch.full((T, B), PAD, dtype=torch.long)
    lens = torch.empty(B, dtype=torch.long)
    tokens = 0
    for i, (s, t) in enumerate(batch):
        src[: len(s), i] = torch.tensor(s)
        tin[: len(t) - 1, i] = torch.tensor(t[:-1])
        tout[: len(t) - 1, i] = torch.tensor(t[1:])
        lens[i] = len(s)
        tokens += len(s) + len(t) - 1
    key_mask = torch.arange(S).unsqueeze(1) < lens.unsqueeze(0)  # (S, B)
    return src, lens, tin, tout, key_mask, tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", required=True, help="file written by attn train seq2seq --export-batches")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--attention", default="bahdanau", choices=["none", "bahdanau", "luong-dot", "luong-general"])
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--emb", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--attn-size", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vs, vt, batches = read_batches(args.batches)
    model = Seq2Seq(vs, vt, args.emb, args.hidden, args.attn_size or args.hidden, args.attention, args.bidirectional,
                    args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.attention}, {nparams} parameters, "
          f"{args.steps} steps", file=sys.stderr)
    model.train()
    # An untimed warm-up on the longest batch, as the C trainer does before its clock starts.
    longest = max(batches, key=lambda b: len(b) * max(len(s) + len(t) for s, t in b))
    src, lens, tin, tout, key_mask, _ = to_tensors(longest)
    F.cross_entropy(model(src, lens, tin, key_mask).reshape(-1, vt), tout.reshape(-1), ignore_index=PAD).backward()
    opt.zero_grad(set_to_none=True)
    torch.manual_seed(args.seed)
    t_train, tokens, loss_v = 0.0, 0, float("nan")
    for step in range(args.steps):
        batch = batches[step % len(batches)]
        t0 = time.perf_counter()
        src, lens, tin, tout, key_mask, ntok = to_tensors(batch)
        opt.zero_grad(set_to_none=True)
        logits = model(src, lens, tin, key_mask)
        loss = F.cross_entropy(logits.reshape(-1, vt), tout.reshape(-1), ignore_index=PAD,
                               label_smoothing=args.label_smoothing)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        t_train += time.perf_counter() - t0
        tokens += ntok
        loss_v = loss.item()
    tps = tokens / t_train if t_train > 0 else 0.0
    print(f"torch: {args.steps} updates, training {t_train:.1f} s, {tps:.0f} tokens/s, last loss {loss_v:.4f}")


if __name__ == "__main__":
    main()
