#!/usr/bin/env python3
"""bench/torch_vision.py: training throughput (images/s) of the CNN and the Recurrent Attention
Model of attn/vision.h in PyTorch, the same architectures, sizes, loss (RAM's hybrid loss:
cross-entropy + REINFORCE with a learned baseline), optimiser (Adam 1e-3) and clipping (5),
on random images of the task's size (the speed does not depend on the pixels).

usage: torch_vision.py MODEL TASK_SIDE STEPS BATCH THREADS [GLIMPSES PATCH SCALES HIDDEN LSTM]
Prints one line: "images/s N" over the steps after the first 3 (warm-up).
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self, S, c1=16, c2=32, k=5):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, c1, k, padding=k // 2), nn.Conv2d(c1, c2, k, padding=k // 2)
        self.out = nn.Linear(c2 * (S // 4) ** 2, 10)

    def loss(self, x, y):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.cross_entropy(self.out(h.flatten(1)), y)


def glimpse(img, loc, size, scales):
    """attn_glimpse_forward: scale i is the patch of side size 2^i centred at pixel
    floor((loc + 1) / 2 * S), zero outside, averaged down to size x size."""
    B, _, S, _ = img.shape
    centre = torch.floor((loc + 1) / 2 * S).long()  # (B, 2)
    big = size << (scales - 1)
    pad = F.pad(img, (big, big, big, big))
    ar = torch.arange(B)[:, None, None]
    out = []
    for i in range(scales):
        s = size << i
        top = centre - s // 2 + big  # (B, 2) in padded coordinates
        rows = top[:, 0:1] + torch.arange(s)[None]  # (B, s)
        cols = top[:, 1:2] + torch.arange(s)[None]
        rows, cols = rows.clamp(0, S + 2 * big - 1), cols.clamp(0, S + 2 * big - 1)
        patch = pad[ar, 0, rows[:, :, None], cols[:, None, :]]  # (B, s, s)
        out.append(F.avg_pool2d(patch[:, None], 1 << i) if i else patch[:, None])
    return torch.cat(out, 1)


class RAM(nn.Module):
    def __init__(self, n=6, g=12, k=3, H=256, G=128, lstm=True, std=0.1):
        super().__init__()
        self.n, self.g, self.k, self.std, self.lstm = n, g, k, std, lstm
        self.g1, self.l1 = nn.Linear(k * g * g, G), nn.Linear(2, G)
        self.g2, self.l2 = nn.Linear(G, H), nn.Linear(G, H)
        self.core = nn.LSTMCell(H, H) if lstm else nn.RNNCell(H, H, nonlinearity="relu")
        self.loc, self.base, self.action = nn.Linear(H, 2), nn.Linear(H, 1), nn.Linear(H, 10)

    def loss(self, x, y):
        B = x.shape[0]
        l, state, mus, xs, bs = torch.zeros(B, 2), None, [], [], []
        for t in range(self.n):
            rho = glimpse(x, l, self.g, self.k).flatten(1)
            gt = F.relu(self.g2(F.relu(self.g1(rho))) + self.l2(F.relu(self.l1(l))))
            state = self.core(gt, state)
            h = state[0] if self.lstm else state
            if t == self.n - 1:
                break
            hd = h.detach()
            mu = torch.tanh(self.loc(hd))
            s = (mu + self.std * torch.randn_like(mu)).detach()
            mus.append(mu), xs.append(s), bs.append(self.base(hd).squeeze(1))
            l = s.clamp(-1, 1)
        logits = self.action(h)
        R = (logits.argmax(1) == y).float()
        loss = F.cross_entropy(logits, y)
        for mu, s, b in zip(mus, xs, bs):
            logp = -((s - mu) ** 2).sum(1) / (2 * self.std ** 2)
            loss = loss - (logp * (R - b.detach())).mean() + ((b - R) ** 2).mean()
        return loss


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    model, S, steps, B, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    if model == "cnn":
        m = CNN(S)
    else:
        n, g, k, H, lstm = (int(a) for a in sys.argv[6:11])
        m = RAM(n, g, k, H, 128, bool(lstm))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x, y = torch.rand(B, 1, S, S), torch.randint(0, 10, (B,))
    t0 = None
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        opt.zero_grad()
        m.loss(x, y).backward()
        nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
    print("images/s %.1f" % (steps * B / (time.perf_counter() - t0)))


if __name__ == "__main__":
    main()
