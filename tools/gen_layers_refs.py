#!/usr/bin/python3
"""Writes PyTorch reference files for the recurrent layers and the cross-entropy of
include/attn/layers.h, read by tests/test_layers.c (its "against PyTorch" part), so the
claim that attn_gru / attn_lstm use nn.GRU / nn.LSTM's weight layout (and that
attn_cross_entropy_* is F.cross_entropy) is checked against PyTorch itself.

    /usr/bin/python3 tools/gen_layers_refs.py [tests/data/layers]

Cases (one folder each, .npy files, float32 unless noted):
  gru/, lstm/   nn.GRU / nn.LSTM(I=5, H=7, bidirectional=True), run on a packed batch
                (pack_padded_sequence, enforce_sorted=False) of T=6, B=4 with lengths
                (4) int32 in lengths.npy, from h0 (2, B, H) [and c0];
                parameters under PyTorch's own state_dict names (weight_ih_l0.npy,
                bias_hh_l0_reverse.npy, ...); x (T, B, I);
                output (T, B, 2H) (pad_packed_sequence: zeros past each length), h_n, c_n
                (2, B, H); the objective's weights r_output, r_h_n, r_c_n; and the gradients
                of L = sum(output * r_output) + sum(h_n * r_h_n) [+ sum(c_n * r_c_n)]:
                grad_x, grad_h0, grad_c0, grad_<parameter name>.
  cross_entropy/ F.cross_entropy(logits (N, C), targets (N) int32, weight (C),
                ignore_index=-100, label_smoothing=0.1, reduction='mean'): loss (1),
                grad_logits (N, C) of the loss.
The modules run in float64 on the float32-rounded inputs and parameters, so the only
differences the C test sees are its own float32 arithmetic.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

T, B, I, H = 6, 4, 5, 7
LENGTHS = [6, 3, 1, 5]


def save(d, name, a):
    a = a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(a))


def f32(*shape, scale=1.0):
    """A float32 random array, returned as a float64 tensor holding the same values."""
    return torch.from_numpy((np.random.randn(*shape) * scale).astype(np.float32)).double()


def rnn_case(out, kind):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    cls = torch.nn.GRU if kind == "gru" else torch.nn.LSTM
    m = cls(I, H, bidirectional=True).double()
    with torch.no_grad():
        for p in m.parameters():  # float32-representable parameters
            p.copy_(p.float().double())
    x = f32(T, B, I).requires_grad_()
    h0 = f32(2, B, H, scale=0.5).requires_grad_()
    c0 = f32(2, B, H, scale=0.5).requires_grad_()
    lengths = torch.tensor(LENGTHS, dtype=torch.int64)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    if kind == "gru":
        po, h_n = m(packed, h0)
        c_n = None
    else:
        po, (h_n, c_n) = m(packed, (h0, c0))
    output, _ = pad_packed_sequence(po, total_length=T)
    r_output = f32(*output.shape)
    r_h_n = f32(*h_n.shape)
    L = (output * r_output).sum() + (h_n * r_h_n).sum()
    if c_n is not None:
        r_c_n = f32(*c_n.shape)
        L = L + (c_n * r_c_n).sum()
    L.backward()
    save(d, "x", x)
    save(d, "lengths", np.array(LENGTHS, dtype=np.int32))
    save(d, "h0", h0)
    save(d, "output", output)
    save(d, "h_n", h_n)
    save(d, "r_output", r_output)
    save(d, "r_h_n", r_h_n)
    save(d, "grad_x", x.grad)
    save(d, "grad_h0", h0.grad)
    if c_n is not None:
        save(d, "c0", c0)
        save(d, "c_n", c_n)
        save(d, "r_c_n", r_c_n)
        save(d, "grad_c0", c0.grad)
    for name, p in m.named_parameters():
        save(d, name, p)
        save(d, "grad_" + name, p.grad)


def ce_case(out):
    d = os.path.join(out, "cross_entropy")
    os.makedirs(d, exist_ok=True)
    N, C = 9, 6
    logits = f32(N, C, scale=2.0).requires_grad_()
    targets = torch.tensor([0, 5, -100, 2, 2, 3, -100, 1, 4])
    weight = torch.from_numpy((0.5 + np.random.rand(C)).astype(np.float32)).double()
    loss = F.cross_entropy(logits, targets, weight=weight, ignore_index=-100, label_smoothing=0.1,
                           reduction="mean")
    loss.backward()
    save(d, "logits", logits)
    save(d, "targets", targets.numpy().astype(np.int32))
    save(d, "weight", weight)
    save(d, "loss", loss.reshape(1))
    save(d, "grad_logits", logits.grad)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "layers")
    np.random.seed(1234)
    torch.manual_seed(1234)
    rnn_case(out, "gru")
    rnn_case(out, "lstm")
    ce_case(out)
    print("wrote", out)


if __name__ == "__main__":
    main()
