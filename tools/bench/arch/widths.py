#!/usr/bin/python3
"""Small ONNX models for timing layer shapes on ONNX Runtime CPU (issue 15: grouped-conv pruning forms, width
rounding of small groups at high resolution). Writes one model per case to DIR; widths.sh times them in pairs.

Usage: /usr/bin/python3 tools/bench/arch/widths.py DIR
CASES: NAME CIN COUT GROUP K STRIDE H W, one Conv with bias. CHAINS: NAME C WIDTH K H W, a pruned group in
context: Conv(C→WIDTH) → Relu → Conv(WIDTH→C) → Relu, both K×K (what a group's width costs in its producer,
its reader and the layout changes between them). Random weights, opset 13.
"""
import sys
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

CASES = [
    # ResNeXt-50 layer1 conv2 (32 groups of 4) and its two pruned forms at half the channels.
    ("rx1_full", 128, 128, 32, 3, 1, 56, 56),
    ("rx1_perblock", 64, 64, 32, 3, 1, 56, 56),
    ("rx1_groups", 64, 64, 16, 3, 1, 56, 56),
    # ResNeXt-50 layer3 conv2 (32 groups of 16).
    ("rx3_full", 512, 512, 32, 3, 1, 14, 14),
    ("rx3_perblock", 256, 256, 32, 3, 1, 14, 14),
    ("rx3_groups", 256, 256, 16, 3, 1, 14, 14),
    # RegNetY-400MF stage 1 (6 groups of 8, stride 2 from 112) and stage 3 (26 groups of 8).
    ("rg1_full", 48, 48, 6, 3, 2, 112, 112),
    ("rg1_perblock", 24, 24, 6, 3, 2, 112, 112),
    ("rg1_groups", 24, 24, 3, 3, 2, 112, 112),
    ("rg3_full", 208, 208, 26, 3, 1, 14, 14),
    ("rg3_perblock", 104, 104, 26, 3, 1, 14, 14),
    ("rg3_groups", 104, 104, 13, 3, 1, 14, 14),
    # YOLOv8s at 640x640: small groups at high resolution, odd vs rounded widths.
    ("y32_s2", 32, 64, 1, 3, 2, 320, 320),
    ("y19_s2", 19, 64, 1, 3, 2, 320, 320),
    ("y16_s2", 16, 64, 1, 3, 2, 320, 320),
    ("y20_s2", 20, 64, 1, 3, 2, 320, 320),
    ("y24_s2", 24, 64, 1, 3, 2, 320, 320),
    ("y16o", 64, 16, 1, 3, 1, 160, 160),
    ("y9o", 64, 9, 1, 3, 1, 160, 160),
    ("y12o", 64, 12, 1, 3, 1, 160, 160),
    ("y8o", 64, 8, 1, 3, 1, 160, 160),
    ("y32o", 64, 32, 1, 3, 1, 160, 160),
    ("y21o", 64, 21, 1, 3, 1, 160, 160),
    ("y23o", 64, 23, 1, 3, 1, 160, 160),
    ("y24o", 64, 24, 1, 3, 1, 160, 160),
    ("y20o", 64, 20, 1, 3, 1, 160, 160),
    ("y1x1_32", 64, 32, 1, 1, 1, 160, 160),
    ("y1x1_21", 64, 21, 1, 1, 1, 160, 160),
    ("y1x1_24", 64, 24, 1, 1, 1, 160, 160),
    ("y1x1_20", 64, 20, 1, 1, 1, 160, 160),
]

CHAINS = ([(f"c{h}_{w}", 64, w, 3, h, h) for h in (160, 80, 40, 20) for w in (32, 31, 28, 24, 21, 20, 17, 16, 12, 9, 8)]
          + [(f"w{h}_{w}", 128, w, 3, h, h) for h in (160, 80, 40) for w in (64, 56, 48, 40, 32)])


def conv(name, x, y, cin, cout, group, k, stride, rng):
    weight = numpy_helper.from_array(rng.standard_normal((cout, cin // group, k, k)).astype(np.float32), name + "_w")
    bias = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), name + "_b")
    node = helper.make_node("Conv", [x, weight.name, bias.name], [y], kernel_shape=[k, k], pads=[k // 2] * 4,
                            strides=[stride, stride], group=group)
    return node, [weight, bias]


def chain(c, width, k, h, w):
    rng = np.random.default_rng(1)
    a, wa = conv("a", "x", "a", c, width, 1, k, 1, rng)
    b, wb = conv("b", "ra", "b", width, c, 1, k, 1, rng)
    nodes = [a, helper.make_node("Relu", ["a"], ["ra"]), b, helper.make_node("Relu", ["b"], ["y"])]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], wa + wb)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def model(cin, cout, group, k, stride, h, w):
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((cout, cin // group, k, k)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], pads=[k // 2] * 4,
                            strides=[stride, stride], group=group)
    graph = helper.make_graph([conv], "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight, bias])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


if __name__ == "__main__":
    out = sys.argv[1]
    for name, *dims in CASES:
        onnx.save(model(*dims), f"{out}/{name}.onnx")
        print(name, *dims)
    for name, *dims in CHAINS:
        onnx.save(chain(*dims), f"{out}/{name}.onnx")
        print(name, *dims)
