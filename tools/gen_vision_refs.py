#!/usr/bin/python3
"""Writes PyTorch reference files for the vision operations of include/attn/layers.h (the
Recurrent Attention Model's issue: attn_conv2d_*, attn_max_pool2d_*, attn_glimpse_*), read by
tests/test_vision.c, so that the claims "as torch.nn.functional.conv2d in the NCHW layout",
"as F.max_pool2d(x, k, stride)" and "the glimpse is a zero-padded crop averaged down" are
checked against PyTorch itself.

    /usr/bin/python3 tools/gen_vision_refs.py [tests/data/vision]

Every case is a folder of .npy files (float32 unless noted); the functions run in float64 on
the float32-rounded inputs, so the only differences the C test sees are its own float32
arithmetic. The objective is L = sum(y * r) for a random r of y's shape; grad_* are its
gradients.
  conv2d_*/   x (B, Cin, H, W), weight (Cout, Cin, KH, KW), bias (Cout) (unused when
              params[9] = 0), params int32 [B, Cin, H, W, Cout, KH, KW, stride, pad, has_bias],
              y (B, Cout, Ho, Wo), r, grad_x, grad_weight, grad_bias
  pool2d_*/   x (B, C, H, W) with exact ties planted, params int32 [B, C, H, W, k, stride],
              y (B, C, Ho, Wo), argmax int32 (B, C, Ho, Wo) (F.max_pool2d's indices), r, grad_x
  glimpse_*/  x (B, C, H, W), loc (B, 2), params int32 [B, C, H, W, size, scales],
              y (B, scales C, size, size), r, grad_x: the glimpse sensor written the other way
              round, as PyTorch operations: the image zero-padded (F.pad) by a margin wider
              than any patch, the patch of scale i cropped at the pixels the header of
              attn/layers.h names (centre floor((l + 1) / 2 H), from centre - side // 2), then
              F.avg_pool2d with a 2^i kernel; locations at the centre, the corners, near an
              edge, and outside [-1, 1] (a patch partly or entirely off the image)
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from gen_layers_refs import f32, save  # the same float32-rounded inputs and .npy writer


def conv2d_case(out, name, B, Cin, H, W, Cout, KH, KW, stride, pad, has_bias):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    x = f32(B, Cin, H, W).requires_grad_()
    w = f32(Cout, Cin, KH, KW, scale=0.5).requires_grad_()
    b = f32(Cout).requires_grad_()
    y = F.conv2d(x, w, b if has_bias else None, stride=stride, padding=pad)
    r = f32(*y.shape)
    (y * r).sum().backward()
    save(d, "x", x)
    save(d, "weight", w)
    save(d, "bias", b)
    save(d, "params", np.array([B, Cin, H, W, Cout, KH, KW, stride, pad, int(has_bias)], dtype=np.int32))
    save(d, "y", y)
    save(d, "r", r)
    save(d, "grad_x", x.grad)
    save(d, "grad_weight", w.grad)
    save(d, "grad_bias", b.grad if has_bias else torch.zeros(Cout, dtype=torch.float64))


def pool2d_case(out, name, B, C, H, W, k, stride):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    x = f32(B, C, H, W)
    # exact ties: the whole first window of plane 0 holds its largest value, and plane 1's
    # top-left 2x2 block shares one (so overlapping windows meet a tie too)
    top = x.max() + 1.0
    x[0, 0, :k, :k] = top
    if C > 1:
        x[0, 1, :2, :2] = top
    x.requires_grad_()
    y, idx = F.max_pool2d(x, k, stride, return_indices=True)
    r = f32(*y.shape)
    (y * r).sum().backward()
    save(d, "x", x)
    save(d, "params", np.array([B, C, H, W, k, stride], dtype=np.int32))
    save(d, "y", y)
    save(d, "argmax", idx.numpy().astype(np.int32))
    save(d, "r", r)
    save(d, "grad_x", x.grad)


def glimpse_case(out, name, C, H, W, size, scales, locs):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    B = len(locs)
    x = f32(B, C, H, W).requires_grad_()
    loc = torch.tensor(np.array(locs, dtype=np.float32)).double()
    side_max = size << (scales - 1)
    M = 2 * max(H, W) + side_max  # the margin: every patch of a location in [-3, 3] fits
    xp = F.pad(x, (M, M, M, M))
    ys = []
    for b in range(B):
        cr = int(np.floor((loc[b, 0].item() + 1.0) * 0.5 * H))
        cc = int(np.floor((loc[b, 1].item() + 1.0) * 0.5 * W))
        scales_b = []
        for i in range(scales):
            f, s = 1 << i, size << i
            top, left = cr - s // 2 + M, cc - s // 2 + M
            patch = xp[b : b + 1, :, top : top + s, left : left + s]
            scales_b.append(F.avg_pool2d(patch, f) if f > 1 else patch)
        ys.append(torch.cat(scales_b, dim=1))
    y = torch.cat(ys, dim=0)
    r = f32(*y.shape)
    (y * r).sum().backward()
    save(d, "x", x)
    save(d, "loc", loc)
    save(d, "params", np.array([B, C, H, W, size, scales], dtype=np.int32))
    save(d, "y", y)
    save(d, "r", r)
    save(d, "grad_x", x.grad)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "vision")
    np.random.seed(2014)
    torch.manual_seed(2014)
    conv2d_case(out, "conv2d_pad", 2, 3, 7, 6, 4, 3, 3, 1, 1, True)  # same-size output, odd sizes
    conv2d_case(out, "conv2d_rect_stride2", 3, 2, 9, 8, 5, 3, 2, 2, 0, True)  # 3x2 filter, stride 2
    conv2d_case(out, "conv2d_nobias", 1, 1, 11, 11, 6, 5, 5, 2, 2, False)  # one channel in, stride 2, padding 2
    conv2d_case(out, "conv2d_wide", 6, 16, 6, 5, 17, 3, 3, 3, 1, True)  # B > one backward group, 17 outputs
    pool2d_case(out, "pool2d_2x2", 2, 3, 7, 7, 2, 2)  # odd sizes: the last row and column dropped
    pool2d_case(out, "pool2d_3s2", 1, 2, 8, 9, 3, 2)  # overlapping windows
    pool2d_case(out, "pool2d_3s1", 3, 1, 5, 6, 3, 1)
    # centre, corners, near an edge, random, outside [-1, 1] (partly, then entirely off the image)
    locs = [[0, 0], [-1, -1], [1, 1], [0.93, -0.71], [0.3, 0.55], [-0.2, 1.6], [2.5, -2.9]]
    glimpse_case(out, "glimpse_28", 1, 28, 28, 8, 3, locs)
    glimpse_case(out, "glimpse_odd", 3, 13, 10, 5, 2, locs[:4] + [[-1.3, 0.1]])  # odd size, C = 3, H != W
    glimpse_case(out, "glimpse_60", 1, 60, 60, 12, 4, [[0.1, -0.4], [-0.9, 0.95]])
    print("wrote", out)


if __name__ == "__main__":
    main()
