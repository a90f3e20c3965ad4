#!/usr/bin/python3
"""The PyTorch side of bench/vision_ops.sh: the same CNN and step as bench/vision_ops.c
(conv 5x5 pad 2 -> relu -> max_pool2d 2 -> conv -> relu -> pool -> linear(10) ->
cross-entropy, forward and backward, no optimiser step) on random S x S images; images/s of
the median step after 3 warm-up steps, wall clock and per second of the process's CPU time.

    /usr/bin/python3 bench/torch_vision_ops.py S B C1 C2 STEPS THREADS
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

S, B, C1, C2, steps, threads = map(int, sys.argv[1:7])
torch.set_num_threads(threads)
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, C1, 5, padding=2)
        self.c2 = nn.Conv2d(C1, C2, 5, padding=2)
        self.fc = nn.Linear(C2 * (S // 4) ** 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2, 2)
        return self.fc(x.flatten(1))


m = Net()
x = torch.rand(B, 1, S, S) * 2 - 1
t = torch.arange(B) % 10
ts, cs = [], []
for it in range(steps + 3):
    t0, c0 = time.perf_counter(), time.process_time()
    m.zero_grad(set_to_none=True)
    F.cross_entropy(m(x), t).backward()
    if it >= 3:
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
ts.sort()
cs.sort()
print(f"{B / ts[len(ts) // 2]:.1f} images/s, {B / cs[len(cs) // 2]:.1f} images per CPU second")
