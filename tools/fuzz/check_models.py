#!/usr/bin/python3
"""Batch onnx.checker for the fuzzer: one model path per line on stdin (a JSON string: a name may hold a newline),
one JSON line per model on stdout.

  {"path": P, "ok": true}  or  {"path": P, "ok": false, "error": "..."}

Loads the ModelProto first (external data included) and checks that object with full_check=True: with
onnx <= 1.12, check_model(PATH, full_check=True) overwrites the file with the shape-inferred model
(onnx/onnx#4422), and a fuzzer must never change the files it checks. Prints {"onnx": VERSION} first.
"""
import json
import sys

try:
    import onnx
except Exception as e:  # noqa: BLE001
    print(json.dumps({"onnx": None, "error": str(e)}), flush=True)
    sys.exit(0)

print(json.dumps({"onnx": onnx.__version__}), flush=True)
for line in sys.stdin:
    if not line.strip():
        continue
    path = json.loads(line)
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        result = {"path": path, "ok": True}
    except BaseException as e:  # noqa: BLE001 - any failure is a failed check
        msg = " ".join(str(e).split()) or type(e).__name__
        result = {"path": path, "ok": False, "error": ("%s: %s" % (type(e).__name__, msg))[:300]}
    print(json.dumps(result), flush=True)
