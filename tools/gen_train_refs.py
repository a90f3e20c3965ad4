#!/usr/bin/python3
"""Writes the PyTorch reference file for tests/test_train.c.

    /usr/bin/python3 tools/gen_train_refs.py [tests/data]      (writes tests/data/train/refs.safetensors)

Everything is computed by PyTorch 1.13's own code in float32 (the C side must match it to a
few ulp), on small tensors:

  optimisers   p0 (3, 5) and grads (STEPS, 3, 5): for each case NAME below, NAME.params
               (STEPS, 3, 5), the parameter after each step of torch.optim.NAME-kind with the
               case's hyper-parameters, fed the given gradients (p.grad set by hand). The
               "_lrs" cases change param_groups' lr before every step to the values in lrs.
  clipping     clip.g0 (4, 3), clip.g1 (5): clip.<max_norm>.total (1) and .g0 .g1 after
               torch.nn.utils.clip_grad_norm_(params, max_norm), for max_norm 1.0 and 100.
  schedules    sched.<name> (SCHED_STEPS): the lr of the optimiser at updates 0, 1, ...
               as torch.optim.lr_scheduler sets it:
                 cosine_w0    CosineAnnealingLR(T_max=20, eta_min=1e-4), base 1e-2
                 cosine_w5    SequentialLR([LinearLR(1/5, 1, total_iters=4),
                              CosineAnnealingLR(T_max=15, eta_min=1e-4)], milestones=[5])
                 linear_w5    SequentialLR([LinearLR(1/5, 1, 4), LinearLR(1, 0.01, 15)], [5])
                 noam         LambdaLR(factor * d^-0.5 * min(t^-0.5, t * w^-1.5), t = k + 1),
                              d_model 16, warmup 4, factor 2, base lr 1
  cross-entropy ce.logits (6, 5), ce.targets (6) int32 as F32 (one -100), ce.loss and
               ce.grad for F.cross_entropy(ignore_index=-100, label_smoothing=0.15)

safetensors is written by hand: an 8-byte little-endian header length, the JSON header padded
with spaces to a multiple of 8, then the data.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

STEPS = 6
SCHED_STEPS = 24


def save_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# name: (kind, kwargs, use lrs)
OPTIM_CASES = {
    "sgd": ("sgd", dict(lr=0.1), False),
    "sgd_momentum": ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01), False),
    "sgd_nesterov": ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001), False),
    "adam": ("adam", dict(lr=1e-2), False),
    "adam_l2": ("adam", dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), False),
    "adamw": ("adamw", dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.1), False),
    "adamw_lrs": ("adamw", dict(lr=1e-2, weight_decay=0.01), True),
}
LRS = [0.002, 0.004, 0.006, 0.008, 0.00565685, 0.00516398]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data")
    out = os.path.join(root, "train")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    t = {}

    p0 = torch.randn(3, 5, dtype=torch.float32)
    grads = torch.randn(STEPS, 3, 5, dtype=torch.float32)
    grads[3, 1] = 0.0  # a zero gradient row
    t["p0"] = p0.numpy()
    t["grads"] = grads.numpy()
    t["lrs"] = np.array(LRS, dtype=np.float32)
    for name, (kind, kw, use_lrs) in OPTIM_CASES.items():
        p = torch.nn.Parameter(p0.clone())
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
        opt = cls([p], foreach=False, **kw)
        res = []
        for s in range(STEPS):
            if use_lrs:
                for g in opt.param_groups:
                    g["lr"] = LRS[s]
            p.grad = grads[s].clone()
            opt.step()
            res.append(p.detach().clone())
        t[name + ".params"] = torch.stack(res).numpy()

    g0 = torch.randn(4, 3, dtype=torch.float32) * 0.7
    g1 = torch.randn(5, dtype=torch.float32) * 0.3
    t["clip.g0"], t["clip.g1"] = g0.numpy(), g1.numpy()
    for mx in (1.0, 100.0):
        a, b = torch.nn.Parameter(torch.zeros(4, 3)), torch.nn.Parameter(torch.zeros(5))
        a.grad, b.grad = g0.clone(), g1.clone()
        tot = torch.nn.utils.clip_grad_norm_([a, b], mx)
        key = "clip.%g" % mx
        t[key + ".total"] = np.array([tot.item()], dtype=np.float32)
        t[key + ".g0"], t[key + ".g1"] = a.grad.numpy(), b.grad.numpy()

    def lrs_of(make, base):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=base)
        sch = make(opt)
        v = []
        for _ in range(SCHED_STEPS):
            v.append(opt.param_groups[0]["lr"])
            opt.step()
            sch.step()
        return np.array(v, dtype=np.float32)

    S = torch.optim.lr_scheduler
    t["sched.cosine_w0"] = lrs_of(lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=1e-4), 1e-2)
    t["sched.cosine_w5"] = lrs_of(lambda o: S.SequentialLR(o, [S.LinearLR(o, 1 / 5, 1.0, total_iters=4),
                                                             S.CosineAnnealingLR(o, T_max=15, eta_min=1e-4)], milestones=[5]), 1e-2)
    t["sched.linear_w5"] = lrs_of(lambda o: S.SequentialLR(o, [S.LinearLR(o, 1 / 5, 1.0, total_iters=4),
                                                             S.LinearLR(o, 1.0, 0.01, total_iters=15)], milestones=[5]), 1e-2)
    d, w, f = 16, 4, 2.0
    t["sched.noam"] = lrs_of(lambda o: S.LambdaLR(o, lambda k: f * d ** -0.5 * min((k + 1) ** -0.5, (k + 1) * w ** -1.5)), 1.0)

    logits = torch.randn(6, 5, dtype=torch.float32, requires_grad=True)
    targets = torch.tensor([2, -100, 0, 4, 4, 1])
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.15)
    loss.backward()
    t["ce.logits"] = logits.detach().numpy()
    t["ce.targets"] = targets.numpy().astype(np.float32)
    t["ce.loss"] = np.array([loss.item()], dtype=np.float32)
    t["ce.grad"] = logits.grad.numpy()

    save_safetensors(os.path.join(out, "refs.safetensors"), t,
                     {"generator": "tools/gen_train_refs.py", "torch": torch.__version__})
    print("wrote", os.path.join(out, "refs.safetensors"))


if __name__ == "__main__":
    main()
