#!/usr/bin/python3
"""Check an ONNX model and print facts about it as JSON.

Usage: /usr/bin/python3 tools/models/check.py MODEL.onnx
Runs onnx.checker.check_model(model, full_check=True) on the loaded ModelProto (not on the path:
with onnx <= 1.12, check_model(PATH, full_check=True) overwrites the file with the shape-inferred
model, onnx/onnx#4422), then prints
  {"path", "opset", "params", "params_initializers", "params_constants", "params_scalars",
   "nodes", "ops"}
params = number of elements of all float initializers + float tensors held by Constant nodes
(top-level graph) — a param count independent of onnxslim; params_scalars = how many of those are
one-element tensors (Clip bounds, Mul/Div constants...); ops = op histogram of the top-level graph. Exit 1 with a one-line message on failure.
"""
import json
import sys
from collections import Counter

import onnx

FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
          onnx.TensorProto.BFLOAT16}


def size(t):
    n = 1
    for d in t.dims:
        n *= d
    return n


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check.py MODEL.onnx")
    path = sys.argv[1]
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - any failure is a failed check
        msg = " ".join(str(e).split()) or type(e).__name__
        print("check.py: %s: %s" % (path, msg[:500]), file=sys.stderr)
        sys.exit(1)
    g = model.graph
    inits = [t for t in g.initializer if t.data_type in FLOATS]
    consts = [a.t for n in g.node if n.op_type == "Constant"
              for a in n.attribute if a.name == "value" and a.t.data_type in FLOATS]
    p_init = sum(size(t) for t in inits)
    p_const = sum(size(t) for t in consts)
    scalars = sum(1 for t in inits + consts if size(t) == 1)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    ops = Counter(n.op_type for n in g.node)
    print(json.dumps({
        "path": path, "opset": opset,
        "params": p_init + p_const, "params_initializers": p_init, "params_constants": p_const,
        "params_scalars": scalars,
        "nodes": len(g.node), "ops": dict(sorted(ops.items())),
    }))


if __name__ == "__main__":
    main()
