#!/usr/bin/env python3
"""Notebook-style: train a tiny Transformer in PyTorch with attn.torch.patch() on and off.

Run from the repository after building (cmake --build build):

    PYTHONPATH=build/python python3 examples/python_train.py

The task: read a sequence of digits and output, at every position, the largest digit seen
so far (a causal model: position i may only look at positions <= i). Both runs start from
the same weights and see the same batches; with the patch on, every nn.MultiheadAttention
in the model runs its attention (softmax(q k^T / sqrt(d) + mask) v, forward and backward)
in attn's fused kernels, and the losses agree with PyTorch's to float32 rounding.
"""
# %% Setup
import os
import time

import torch
import torch.nn as nn

import attn.torch

VOCAB, N, D = 10, 32, 64
STEPS = int(os.environ.get("STEPS", 60))


class RunningMax(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.randn(N, D) * 0.1)
        layer = nn.TransformerEncoderLayer(D, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.out = nn.Linear(D, VOCAB)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(N))

    def forward(self, x):
        return self.out(self.enc(self.emb(x) + self.pos, mask=self.mask))


def batch(g, size=32):
    x = torch.randint(0, VOCAB, (size, N), generator=g)
    return x, torch.cummax(x, dim=1).values


# %% Train twice: PyTorch's attention, then attn's
def train(patched):
    torch.manual_seed(0)
    model = RunningMax()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    if patched:
        attn.torch.patch()
    losses, t0 = [], time.perf_counter()
    for _ in range(STEPS):
        x, y = batch(g)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - t0
    attn.torch.unpatch()
    x, y = batch(g, 256)
    with torch.no_grad():
        accuracy = (model(x).argmax(-1) == y).float().mean().item()
    return losses, seconds, accuracy


runs = {name: train(patched) for name, patched in (("PyTorch", False), ("attn", True))}

# %% Compare
for name, (losses, seconds, accuracy) in runs.items():
    print(f"{name:8s} loss {losses[0]:.4f} -> {losses[-1]:.4f}, accuracy {accuracy:.1%}, {seconds:.2f} s")
worst = max(abs(a - b) / a for a, b in zip(runs["PyTorch"][0], runs["attn"][0]))
print(f"largest relative difference of the {STEPS} losses: {worst:.1e}")
