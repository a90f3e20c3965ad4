#!/usr/bin/python3
"""Writes PyTorch reference files for the convolution and the pooling over time of
include/attn/layers.h (attn_conv1d_*, attn_max_pool_time_*, attn_mean_pool_time_*) and for the
sparse linear layer of the TF-IDF classifiers (src/nn/sparse_linear.c), read by
tests/test_layers.c, so that the claims "as torch.nn.functional.conv1d with PyTorch's Conv1d
weight layout", "max over time as torch.max" and "y = X W^T + b on compressed sparse rows" are
checked against PyTorch itself.

    /usr/bin/python3 tools/gen_conv_refs.py [tests/data/layers]

PyTorch's layout is (B, Cin, T); ours is channels last, (B, T, Cin): the script transposes.
Per-sequence lengths are PyTorch's convolution of each sequence cut to its length (so padding
follows its last real position), its outputs padded with zeros to the batch's To.

Cases (one folder each, .npy files, float32 unless noted):
  conv_pad/    B=3, T=7, Cin=5, Cout=4, K=3, padding 1, lengths [7, 4, 1]
  conv_valid/  B=3, T=6, Cin=17, Cout=9, K=5, padding 0, lengths [6, 4, 5] (4 < K: no output)
               each with x (B, T, Cin), weight (Cout, Cin, K), bias (Cout), lengths (B) int32,
               params.npy int32 [K, pad], y (B, To, Cout), r (B, To, Cout) the objective's
               weights, and the gradients of L = sum(y * r): grad_x, grad_weight, grad_bias.
  pool/        x (B=4, T=6, C=7) with lengths [6, 3, 1, 0] and two exact ties in sequence 0;
               max_y, mean_y (B, C); r (B, C); grad_max_x, grad_mean_x (B, T, C) of
               sum(max_y * r) and sum(mean_y * r). An empty sequence pools to 0 (PyTorch
               has no max of nothing: the script writes 0 and no gradient there).
  sparse_linear/  X (N=6, F=13) in compressed sparse rows: rowptr (N + 1) int32, col (nnz)
               int32 (ascending in a row), val (nnz), with an empty row and the first and
               last columns; weight (C=4, F), bias (C); y = X W^T + b (N, C) by torch.sparse.mm
               on a sparse COO tensor of the same entries; r (N, C) and the gradients of
               L = sum(y * r): grad_weight, grad_bias. (The layer has no gradient of X: the
               features are data.)
The functions run in float64 on the float32-rounded inputs, so the only differences the C
test sees are its own float32 arithmetic.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from gen_layers_refs import f32, save  # the same float32-rounded inputs and .npy writer


def conv_case(out, name, B, T, Cin, Cout, K, pad, lengths):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    x = f32(B, T, Cin).requires_grad_()
    w = f32(Cout, Cin, K, scale=0.5).requires_grad_()
    b = f32(Cout).requires_grad_()
    To = max(0, T + 2 * pad - K + 1)
    rows = []
    for i, L in enumerate(lengths):
        y = torch.zeros(To, Cout, dtype=torch.float64)
        if L + 2 * pad - K + 1 > 0:
            yi = F.conv1d(x[i, :L].t().unsqueeze(0), w, b, padding=pad)[0].t()  # (Lo, Cout)
            y = torch.cat([yi, torch.zeros(To - yi.shape[0], Cout, dtype=torch.float64)])
        rows.append(y)
    y = torch.stack(rows)
    r = f32(B, To, Cout)
    (y * r).sum().backward()
    save(d, "x", x)
    save(d, "weight", w)
    save(d, "bias", b)
    save(d, "lengths", np.array(lengths, dtype=np.int32))
    save(d, "params", np.array([K, pad], dtype=np.int32))
    save(d, "y", y)
    save(d, "r", r)
    save(d, "grad_x", x.grad)
    save(d, "grad_weight", w.grad)
    save(d, "grad_bias", b.grad)


def pool_case(out):
    d = os.path.join(out, "pool")
    os.makedirs(d, exist_ok=True)
    B, T, C = 4, 6, 7
    lengths = [6, 3, 1, 0]
    x = f32(B, T, C)
    x[0, 4, 1] = x[0, 2, 1] = x[0, :, 1].max() + 1.0  # ties: the gradient goes to t = 2
    x[0, 0, 2] = x[0, 5, 2] = x[0, :, 2].max() + 1.0  # ... and here to t = 0
    x.requires_grad_()
    r = f32(B, C)
    for kind in ("max", "mean"):
        ys = []
        for i, L in enumerate(lengths):
            if L == 0:
                ys.append(torch.zeros(C, dtype=torch.float64))
            elif kind == "max":
                ys.append(torch.max(x[i, :L], dim=0).values)
            else:
                ys.append(x[i, :L].mean(dim=0))
        y = torch.stack(ys)
        x.grad = None
        (y * r).sum().backward()
        save(d, kind + "_y", y)
        save(d, "grad_" + kind + "_x", x.grad)
    save(d, "x", x)
    save(d, "lengths", np.array(lengths, dtype=np.int32))
    save(d, "r", r)


def sparse_case(out):
    d = os.path.join(out, "sparse_linear")
    os.makedirs(d, exist_ok=True)
    N, Fe, C = 6, 13, 4
    cols = [[0, 3, 12], [], [5], [1, 2, 7, 9, 12], [0, 11], [4, 6, 8, 10]]
    rowptr = np.cumsum([0] + [len(c) for c in cols]).astype(np.int32)
    col = np.array([j for c in cols for j in c], dtype=np.int32)
    val = f32(len(col))
    rows = np.repeat(np.arange(N), [len(c) for c in cols])
    X = torch.sparse_coo_tensor(torch.tensor(np.stack([rows, col]), dtype=torch.int64), val, (N, Fe))
    w = f32(C, Fe, scale=0.5).requires_grad_()
    b = f32(C).requires_grad_()
    y = torch.sparse.mm(X, w.t()) + b
    r = f32(N, C)
    (y * r).sum().backward()
    save(d, "rowptr", rowptr)
    save(d, "col", col)
    save(d, "val", val)
    save(d, "weight", w)
    save(d, "bias", b)
    save(d, "y", y)
    save(d, "r", r)
    save(d, "grad_weight", w.grad)
    save(d, "grad_bias", b.grad)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "layers")
    np.random.seed(1234)
    torch.manual_seed(1234)
    conv_case(out, "conv_pad", 3, 7, 5, 4, 3, 1, [7, 4, 1])
    conv_case(out, "conv_valid", 3, 6, 17, 9, 5, 0, [6, 4, 5])
    pool_case(out)
    sparse_case(out)
    print("wrote", out)


if __name__ == "__main__":
    main()
