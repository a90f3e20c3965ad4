#!/usr/bin/python3
"""Writes an ONNX model of one com.microsoft MultiHeadAttention node (ONNX Runtime's contrib
operator, its CPU flash-attention kernel) for bench/peers/run.sh: query, key and value
(batch, sequence, heads * d) in float32 with symbolic batch and sequence lengths, output the
same shape; scale 1/sqrt(d) (the default); causal with --causal (unidirectional = 1).

usage: /usr/bin/python3 bench/peers/mha_model.py OUT.onnx --heads 8 [--causal]
Needs Debian's python3-onnx."""
import argparse
import os
import tempfile

import onnx
from onnx import TensorProto, helper


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--causal", action="store_true")
    a = ap.parse_args()
    dims = ["batch", "seq", "hidden"]
    io = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)
    node = helper.make_node("MultiHeadAttention", ["query", "key", "value"], ["output"], domain="com.microsoft",
                            num_heads=a.heads, unidirectional=1 if a.causal else 0)
    graph = helper.make_graph([node], "mha", [io("query"), io("key"), io("value")], [io("output")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(a.out)), suffix=".tmp")
    os.close(fd)
    onnx.save(model, tmp)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
