#!/usr/bin/python3
"""Converts ONNX's own operator node tests for the layers of attn/layers.h into small .npy
files that tests/test_onnx_nodes.c reads (no Python and no protobuf at test time).

Source: Debian's libonnx-testdata package (ONNX's onnx/backend/test/data/node: model.onnx and
test_data_set_0/{input,output}_*.pb per test), read with python3-onnx:

    apt-get install -y libonnx-testdata python3-onnx
    /usr/bin/python3 tools/convert_onnx_tests.py [NODE_DIR] [OUT_DIR]

NODE_DIR defaults to /usr/share/libonnx-testdata/data/node, OUT_DIR to tests/data/onnx.
Writes OUT_DIR/<test name>/*.npy + attrs.txt for each converted test, OUT_DIR/index.txt (the
converted names, one per line) and OUT_DIR/README.md (what was converted, what was skipped
and why). Conversion only re-arranges data, never computes expected values:
  - GRU/LSTM weights W, R, B, P are reordered from ONNX's gate order (GRU [z r h], LSTM
    [i o f c], peepholes [i o f]) into PyTorch's layout (GRU [r z n], LSTM [i f g o],
    peepholes [i f o]); B is split into bias_ih (ONNX's Wb) and bias_hh (Rb);
  - layout=1 (batch-first) tensors are transposed to time-major (T, B, ...);
  - Softmax/LogSoftmax over a non-last axis, and SoftmaxCrossEntropyLoss's class axis 1, are
    moved last (np.moveaxis) and flattened to (N, C); LayerNormalization's axis a flattens the
    shape to (prod(shape[:a]), prod(shape[a:])), which is exactly its definition.
attrs.txt lines are "key value". Arrays: float32 unless noted (ids/lengths int32).
"""
import glob
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

NODE_DIR = "/usr/share/libonnx-testdata/data/node"
PREFIXES = ("test_gru", "test_lstm", "test_rnn", "test_layer_normalization", "test_softmax",
            "test_logsoftmax", "test_sce")


class Skip(Exception):
    pass


def load_case(d):
    model = onnx.load(os.path.join(d, "model.onnx"))
    if len(model.graph.node) != 1:
        raise Skip("the model is a graph of %d nodes, not one operator" % len(model.graph.node))
    node = model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    ds = os.path.join(d, "test_data_set_0")
    if glob.glob(os.path.join(os.path.dirname(ds), "test_data_set_1")):
        raise Skip("more than one data set")

    def read(kind, names):
        out, i = {}, 0
        for name in names:
            if name == "":
                continue
            t = onnx.TensorProto()
            with open(os.path.join(ds, "%s_%d.pb" % (kind, i)), "rb") as f:
                t.ParseFromString(f.read())
            out[name] = numpy_helper.to_array(t)
            i += 1
        return out

    ins = read("input", list(node.input))
    outs = read("output", list(node.output))
    # map positional operator inputs/outputs to their ONNX names
    inputs = {}
    for pos, name in enumerate(node.input):
        if name:
            inputs[pos] = ins[name]
    outputs = {}
    for pos, name in enumerate(node.output):
        if name:
            outputs[pos] = outs[name]
    return node.op_type, attrs, inputs, outputs


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def i32(a):
    a = np.asarray(a)
    assert a.min(initial=0) >= -2**31 and a.max(initial=0) < 2**31
    return np.ascontiguousarray(a, dtype=np.int32)


def reorder(a, axis, nblocks, order):
    """Splits a along axis into nblocks equal blocks and concatenates them in `order`."""
    parts = np.split(a, nblocks, axis=axis)
    return np.concatenate([parts[k] for k in order], axis=axis)


def attr_str(a):
    return a.decode() if isinstance(a, bytes) else a


def convert_rnn(op, attrs, inputs, outputs):
    """GRU / LSTM -> time-major arrays in PyTorch's layout, one set per direction."""
    known = {"hidden_size", "layout", "direction", "linear_before_reset"}
    for k in attrs:
        if k not in known:
            raise Skip("attribute %s=%r is not supported" % (k, attrs[k]))
    if op == "LSTM" and attrs.get("input_forget", 0):
        raise Skip("input_forget=1 is not supported")
    H = attrs["hidden_size"]
    layout = attrs.get("layout", 0)
    direction = attr_str(attrs.get("direction", "forward"))
    X, W, R = inputs[0], inputs[1], inputs[2]
    D = W.shape[0]
    G = 3 if op == "GRU" else 4
    order = [1, 0, 2] if op == "GRU" else [0, 2, 3, 1]  # ONNX gate blocks -> PyTorch's
    if layout == 1:  # (B, T, I) -> (T, B, I)
        X = X.transpose(1, 0, 2)
    T, B, I = X.shape
    files = {"x": f32(X)}
    Bias = inputs.get(3)
    lens = inputs.get(4)
    h0 = inputs.get(5)
    c0 = inputs.get(6) if op == "LSTM" else None
    P = inputs.get(7) if op == "LSTM" else None
    if layout == 1:  # initial states (B, D, H) -> (D, B, H)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    if lens is not None:
        files["lengths"] = i32(lens)
    dirs = {"forward": [""], "reverse": ["_reverse"], "bidirectional": ["", "_reverse"]}[direction]
    Y = outputs.get(0)
    Yh = outputs.get(1)
    Yc = outputs.get(2) if op == "LSTM" else None
    if layout == 1:  # Y (B, T, D, H) -> (T, D, B, H); Y_h, Y_c (B, D, H) -> (D, B, H)
        Y = None if Y is None else Y.transpose(1, 2, 0, 3)
        Yh = None if Yh is None else Yh.transpose(1, 0, 2)
        Yc = None if Yc is None else Yc.transpose(1, 0, 2)
    for d, sfx in enumerate(dirs):
        files["weight_ih" + sfx] = f32(reorder(W[d], 0, G, order))
        files["weight_hh" + sfx] = f32(reorder(R[d], 0, G, order))
        if Bias is not None:
            files["bias_ih" + sfx] = f32(reorder(Bias[d][:G * H], 0, G, order))
            files["bias_hh" + sfx] = f32(reorder(Bias[d][G * H:], 0, G, order))
        if h0 is not None:
            files["h0" + sfx] = f32(h0[d])
        if c0 is not None:
            files["c0" + sfx] = f32(c0[d])
        if P is not None:
            files["peephole" + sfx] = f32(reorder(P[d], 0, 3, [0, 2, 1]))  # [i o f] -> [i f o]
        if Y is not None:
            files["y" + sfx] = f32(Y[:, d])
        if Yh is not None:
            files["h_n" + sfx] = f32(Yh[d])
        if Yc is not None:
            files["c_n" + sfx] = f32(Yc[d])
    at = {"op": op.lower(), "hidden_size": H, "input_size": I, "T": T, "B": B,
          "direction": direction, "onnx_layout": layout}
    if op == "GRU":
        at["linear_before_reset"] = attrs.get("linear_before_reset", 0)
    notes = ["gates reordered to PyTorch's layout"]
    if layout == 1:
        notes.append("layout=1 (batch-first) transposed to time-major")
    if P is not None:
        notes.append("peepholes")
    if lens is not None:
        notes.append("sequence_lens")
    return files, at, notes


def convert_layernorm(attrs, inputs, outputs):
    for k in attrs:
        if k not in ("axis", "epsilon", "stash_type"):
            raise Skip("attribute %s is not supported" % k)
    if attrs.get("stash_type", 1) != 1:
        raise Skip("stash_type != 1 (float32 statistics)")
    X = inputs[0]
    a = attrs.get("axis", -1) % X.ndim
    N, C = int(np.prod(X.shape[:a], dtype=np.int64)), int(np.prod(X.shape[a:], dtype=np.int64))
    files = {"x": f32(X.reshape(N, C)), "weight": f32(inputs[1].reshape(C))}
    if 2 in inputs:
        files["bias"] = f32(inputs[2].reshape(C))
    files["y"] = f32(outputs[0].reshape(N, C))
    if 1 in outputs:
        files["mean"] = f32(outputs[1].reshape(N))
    if 2 in outputs:
        files["rstd"] = f32(outputs[2].reshape(N))
    at = {"op": "layernorm", "N": N, "C": C, "epsilon": repr(float(np.float32(attrs.get("epsilon", 1e-5))))}
    notes = ["axis %d of shape %s: (N, C) = (%d, %d)" % (attrs.get("axis", -1), tuple(X.shape), N, C)]
    return files, at, notes


def convert_softmax(op, attrs, inputs, outputs):
    for k in attrs:
        if k != "axis":
            raise Skip("attribute %s is not supported" % k)
    X, Y = inputs[0], outputs[0]
    axis = attrs.get("axis", -1) % X.ndim
    Xm, Ym = np.moveaxis(X, axis, -1), np.moveaxis(Y, axis, -1)
    C = X.shape[axis]
    N = X.size // C
    files = {"x": f32(Xm.reshape(N, C)), "y": f32(Ym.reshape(N, C))}
    at = {"op": "softmax" if op == "Softmax" else "log_softmax", "N": N, "C": C}
    notes = [] if axis == X.ndim - 1 else ["axis %d moved last" % axis]
    return files, at, notes


def convert_sce(attrs, inputs, outputs):
    for k in attrs:
        if k not in ("reduction", "ignore_index"):
            raise Skip("attribute %s is not supported" % k)
    X, labels = inputs[0], inputs[1]
    C = X.shape[1]
    Xm = np.moveaxis(X, 1, -1).reshape(-1, C)
    M = Xm.shape[0]
    files = {"logits": f32(Xm), "targets": i32(labels.reshape(M))}
    if 2 in inputs:
        files["weight"] = f32(inputs[2])
    reduction = attr_str(attrs.get("reduction", "mean"))
    z = outputs[0]
    files["loss"] = f32(z.reshape(M) if reduction == "none" else z.reshape(1))
    if 1 in outputs:
        files["log_prob"] = f32(np.moveaxis(outputs[1], 1, -1).reshape(M, C))
    at = {"op": "cross_entropy", "N": M, "C": C, "reduction": reduction}
    if "ignore_index" in attrs:
        at["ignore_index"] = attrs["ignore_index"]
    notes = ["class axis 1 moved last"] if X.ndim > 2 else []
    if 2 in inputs:
        notes.append("class weights")
    return files, at, notes


def convert(d):
    op, attrs, inputs, outputs = load_case(d)
    if op in ("GRU", "LSTM"):
        return convert_rnn(op, attrs, inputs, outputs)
    if op == "LayerNormalization":
        return convert_layernorm(attrs, inputs, outputs)
    if op in ("Softmax", "LogSoftmax"):
        return convert_softmax(op, attrs, inputs, outputs)
    if op == "SoftmaxCrossEntropyLoss":
        return convert_sce(attrs, inputs, outputs)
    raise Skip("operator %s has no layer here (no plain RNN)" % op)


def same_data(a, b):
    fa = sorted(glob.glob(os.path.join(a, "test_data_set_0", "*.pb")))
    fb = sorted(glob.glob(os.path.join(b, "test_data_set_0", "*.pb")))
    if [os.path.basename(f) for f in fa] != [os.path.basename(f) for f in fb]:
        return False
    return all(open(x, "rb").read() == open(y, "rb").read() for x, y in zip(fa, fb))


def main():
    node_dir = sys.argv[1] if len(sys.argv) > 1 else NODE_DIR
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "onnx")
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(node_dir, "test_*"))
                   if os.path.basename(p).startswith(PREFIXES))
    if not names:
        sys.exit("no ONNX node tests under %s (apt-get install libonnx-testdata)" % node_dir)
    os.makedirs(out_dir, exist_ok=True)
    converted, skipped = [], []
    for name in names:
        d = os.path.join(node_dir, name)
        if name.endswith("_expanded"):
            base = name[:-len("_expanded")]
            if same_data(d, os.path.join(node_dir, base)):
                skipped.append((name, "same data as %s (the operator expanded into a graph of "
                                      "primitive ops; nothing new for a layer)" % base))
                continue
            skipped.append((name, "a graph of primitive ops, not one operator"))
            continue
        try:
            files, at, notes = convert(d)
        except Skip as e:
            skipped.append((name, str(e)))
            continue
        od = os.path.join(out_dir, name)
        os.makedirs(od, exist_ok=True)
        for old in glob.glob(os.path.join(od, "*")):
            os.remove(old)
        for k, v in files.items():
            np.save(os.path.join(od, k + ".npy"), v)
        with open(os.path.join(od, "attrs.txt"), "w") as f:
            for k, v in at.items():
                f.write("%s %s\n" % (k, v))
        converted.append((name, notes))
    with open(os.path.join(out_dir, "index.txt"), "w") as f:
        for name, _ in converted:
            f.write(name + "\n")
    ver = getattr(onnx, "__version__", "?")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("# ONNX operator node tests, converted\n\n")
        f.write("Written by `tools/convert_onnx_tests.py` from Debian's `libonnx-testdata` "
                "(ONNX %s's `onnx/backend/test/data/node`): inputs and expected outputs as "
                "ONNX computed them, re-arranged into the layouts of `include/attn/layers.h` "
                "(see the script's docstring). `tests/test_onnx_nodes.c` runs every test in "
                "`index.txt` and fails unless every output (GRU/LSTM Y, Y_h, Y_c; LayerNorm Y, "
                "Mean, InvStdDev; softmax y; SoftmaxCrossEntropyLoss loss and log_prob) is "
                "within rtol 1e-5, atol 1e-6 of ONNX's (tighter than ONNX's own runner, rtol "
                "1e-3, atol 1e-7).\n\n"
                "Coverage notes: ONNX's GRU tests all use linear_before_reset=0, and only "
                "`test_gru_seq_length` (T=2) has a non-zero previous state, so it alone tells "
                "the two GRU forms apart; PyTorch's form (linear_before_reset=1) is checked "
                "against nn.GRU itself in `tests/data/layers` (tools/gen_layers_refs.py). "
                "No ONNX test runs the reverse or bidirectional direction; those are checked "
                "against PyTorch there too, and against finite differences in "
                "`tests/test_ops.c`.\n\n" % ver)
        f.write("## Converted (%d)\n\n" % len(converted))
        for name, notes in converted:
            f.write("- `%s`%s\n" % (name, (": " + "; ".join(notes)) if notes else ""))
        f.write("\n## Skipped (%d)\n\n" % len(skipped))
        for name, why in skipped:
            f.write("- `%s`: %s\n" % (name, why))
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out_dir, "**"), recursive=True) if os.path.isfile(p))
    print("converted %d, skipped %d, %s: %.1f KB" % (len(converted), len(skipped), out_dir, total / 1024))


if __name__ == "__main__":
    main()
