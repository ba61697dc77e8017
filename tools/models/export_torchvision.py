#!/usr/bin/python3
"""Export a torchvision model with seeded random weights to ONNX (opset 13, BN folded into Conv).

Usage: /usr/bin/python3 tools/models/export_torchvision.py NAME OUT.onnx
NAME: resnet50 mobilenet_v2 vgg16_bn googlenet densenet121 resnext50_32x4d regnet_y_400mf fasterrcnn maskrcnn keypointrcnn
Needs Debian's python3-torch (1.13) and python3-torchvision (0.14).
"""
import os
import sys
import time
import warnings

import torch
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d

CLASSIFIERS = {
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
    "vgg16_bn": lambda: torchvision.models.vgg16_bn(weights=None),
    "googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True),
    "densenet121": lambda: torchvision.models.densenet121(weights=None),
    "resnext50_32x4d": lambda: torchvision.models.resnext50_32x4d(weights=None),
    "regnet_y_400mf": lambda: torchvision.models.regnet_y_400mf(weights=None),
}
# R50-FPN detectors at 480×640 (the same settings for all three).
DETECTORS = {
    "fasterrcnn": torchvision.models.detection.fasterrcnn_resnet50_fpn,
    "maskrcnn": torchvision.models.detection.maskrcnn_resnet50_fpn,
    "keypointrcnn": torchvision.models.detection.keypointrcnn_resnet50_fpn,
}
OUTPUTS = {
    "fasterrcnn": ["boxes", "labels", "scores"],
    "maskrcnn": ["boxes", "labels", "scores", "masks"],
    "keypointrcnn": ["boxes", "labels", "scores", "keypoints", "keypoints_scores"],
}
NAMES = list(CLASSIFIERS) + list(DETECTORS)


def randomise_bn(model):
    """Give every BatchNorm with default statistics (mean 0, var 1, weight 1, bias 0) realistic
    random values, so that BN is not an identity and folding it changes the Conv weights."""
    n = 0
    for m in model.modules():
        if not isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
            continue
        with torch.no_grad():
            c = m.running_mean.numel()
            m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5))
            m.bias.copy_(torch.empty(c).normal_(0.0, 0.1))
            m.running_mean.copy_(torch.empty(c).normal_(0.0, 0.1))
            m.running_var.copy_(torch.empty(c).uniform_(0.5, 1.5))
        n += 1
    return n


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in NAMES:
        sys.exit("usage: export_torchvision.py {%s} OUT.onnx" % "|".join(NAMES))
    name, out = sys.argv[1], sys.argv[2]
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic, and the machine has 2 cores anyway

    if name in DETECTORS:
        model = DETECTORS[name](weights=None, weights_backbone=None, min_size=480, max_size=640)
    else:
        model = CLASSIFIERS[name]()
    nbn = randomise_bn(model)
    model.eval()
    nparams = sum(p.numel() for p in model.parameters())

    tmp = out + ".tmp"
    t0 = time.time()
    with torch.no_grad():
        if name in DETECTORS:
            x = torch.rand(3, 480, 640)
            torch.onnx.export(model, ([x],), tmp, opset_version=13, do_constant_folding=True,
                              input_names=["input"], output_names=OUTPUTS[name])
        else:
            x = torch.randn(1, 3, 224, 224)
            torch.onnx.export(model, x, tmp, opset_version=13, do_constant_folding=True,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    os.replace(tmp, out)
    print("%s: torch params %d, %d BatchNorm randomised, export %.1f s"
          % (name, nparams, nbn, time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
