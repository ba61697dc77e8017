#!/usr/bin/python3
"""Export a YOLOv8-style detector (written here from the architecture description, not Ultralytics code)
with seeded random weights to ONNX (opset 13, BatchNorm folded into Conv by the exporter).

Usage: /usr/bin/python3 tools/models/export_yolo.py NAME OUT.onnx
NAME:
  yolov8s_chunk  C2f splits with x.chunk(2, 1): the exporter computes the split sizes from the tensor's
                 shape (Shape -> Gather -> Add -> Div -> Mul ... -> Split), as real YOLOv8 exports do
  yolov8s_split  C2f splits with torch.split(x, [h, h], 1): one Split with a constant `split` input
Input `images` 1x3x640x640 (dynamic batch), outputs `p3 p4 p5` (1x144x80x80, 1x144x40x40, 1x144x20x20:
per level the concat of 64 box (4x16 DFL bins) and 80 class channels; no decoding, no NMS).
Width/depth of the "s" scale: stem 32, stages 64/128/256/512 with 1/2/2/1 bottlenecks, neck C2f n=1.
Needs Debian's python3-torch (1.13). Output is byte-for-byte deterministic.
"""
import os
import sys
import time
import warnings

import torch
from torch import nn

NAMES = ["yolov8s_chunk", "yolov8s_split"]


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm + SiLU; 'same' padding."""

    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 Convs, residual add when shortcut (and widths match)."""

    def __init__(self, c, shortcut):
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """1x1 Conv c1 -> 2h, split in two halves, n Bottlenecks applied successively to the last part,
    concat of all (2+n) parts of h channels, 1x1 Conv -> c2."""

    def __init__(self, c1, c2, n, shortcut, split_mode):
        super().__init__()
        self.h = c2 // 2
        self.cv1 = Conv(c1, 2 * self.h, 1)
        self.cv2 = Conv((2 + n) * self.h, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.h, shortcut) for _ in range(n))
        self.split_mode = split_mode

    def forward(self, x):
        x = self.cv1(x)
        if self.split_mode == "chunk":
            y = list(x.chunk(2, 1))
        else:
            y = list(torch.split(x, [self.h, self.h], dim=1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """1x1 Conv c1 -> c1/2, three successive MaxPool(5, 1, 2), concat of the 4 tensors, 1x1 Conv -> c2."""

    def __init__(self, c1, c2):
        super().__init__()
        h = c1 // 2
        self.cv1 = Conv(c1, h, 1)
        self.cv2 = Conv(4 * h, c2, 1)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        y3 = self.pool(y2)
        return self.cv2(torch.cat([x, y1, y2, y3], 1))


class Detect(nn.Module):
    """Decoupled head per level: box branch (3x3, 3x3, 1x1 -> 4*reg_max) and class branch
    (3x3, 3x3, 1x1 -> nc); per level output = concat(box, cls) on channels."""

    def __init__(self, chs, nc=80, reg_max=16):
        super().__init__()
        c2 = max(16, chs[0] // 4, 4 * reg_max)
        c3 = max(chs[0], min(nc, 100))
        self.box = nn.ModuleList(
            nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for c in chs)
        self.cls = nn.ModuleList(
            nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for c in chs)

    def forward(self, xs):
        return [torch.cat([b(x), c(x)], 1) for x, b, c in zip(xs, self.box, self.cls)]


class YOLOv8(nn.Module):
    def __init__(self, split_mode, w=(32, 64, 128, 256, 512), d=(1, 2, 2, 1), nc=80):
        super().__init__()
        s = split_mode
        # backbone: strides 2, 4 (C2f), 8 (C2f), 16 (C2f), 32 (C2f + SPPF)
        self.stem = Conv(3, w[0], 3, 2)
        self.down2 = Conv(w[0], w[1], 3, 2)
        self.c2 = C2f(w[1], w[1], d[0], True, s)
        self.down3 = Conv(w[1], w[2], 3, 2)
        self.c3 = C2f(w[2], w[2], d[1], True, s)
        self.down4 = Conv(w[2], w[3], 3, 2)
        self.c4 = C2f(w[3], w[3], d[2], True, s)
        self.down5 = Conv(w[3], w[4], 3, 2)
        self.c5 = C2f(w[4], w[4], d[3], True, s)
        self.sppf = SPPF(w[4], w[4])
        # neck: top-down (FPN) then bottom-up (PAN)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.td4 = C2f(w[4] + w[3], w[3], 1, False, s)
        self.td3 = C2f(w[3] + w[2], w[2], 1, False, s)
        self.bu3 = Conv(w[2], w[2], 3, 2)
        self.pan4 = C2f(w[2] + w[3], w[3], 1, False, s)
        self.bu4 = Conv(w[3], w[3], 3, 2)
        self.pan5 = C2f(w[3] + w[4], w[4], 1, False, s)
        self.detect = Detect((w[2], w[3], w[4]), nc)

    def forward(self, x):
        x = self.c2(self.down2(self.stem(x)))
        p3 = self.c3(self.down3(x))
        p4 = self.c4(self.down4(p3))
        p5 = self.sppf(self.c5(self.down5(p4)))
        t4 = self.td4(torch.cat([self.up(p5), p4], 1))
        n3 = self.td3(torch.cat([self.up(t4), p3], 1))
        n4 = self.pan4(torch.cat([self.bu3(n3), t4], 1))
        n5 = self.pan5(torch.cat([self.bu4(n4), p5], 1))
        return tuple(self.detect([n3, n4, n5]))


def init_weights(model):
    """Seeded random weights that keep activations O(1) through the depth (kaiming-normal convs,
    the detect head's last 1x1 convs with small random biases), then random BatchNorm statistics
    (same scheme as export_torchvision.randomise_bn) so that BN is no identity."""
    nbn = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                c = m.running_mean.numel()
                m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5))
                m.bias.copy_(torch.empty(c).normal_(0.0, 0.1))
                m.running_mean.copy_(torch.empty(c).normal_(0.0, 0.1))
                m.running_var.copy_(torch.empty(c).uniform_(0.5, 1.5))
            nbn += 1
    return nbn


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in NAMES:
        sys.exit("usage: export_yolo.py {%s} OUT.onnx" % "|".join(NAMES))
    name, out = sys.argv[1], sys.argv[2]
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    torch.set_num_threads(1)

    model = YOLOv8(name.split("_")[1])
    nbn = init_weights(model)
    model.eval()
    nparams = sum(p.numel() for p in model.parameters())

    tmp = out + ".tmp"
    t0 = time.time()
    outs = ["p3", "p4", "p5"]
    with torch.no_grad():
        x = torch.rand(1, 3, 640, 640)
        torch.onnx.export(model, x, tmp, opset_version=13, do_constant_folding=True,
                          input_names=["images"], output_names=outs,
                          dynamic_axes={"images": {0: "batch"}, **{o: {0: "batch"} for o in outs}})
        ys = model(x)
    os.replace(tmp, out)
    print("%s: torch params %d, %d BatchNorm randomised, export %.1f s, output std %s"
          % (name, nparams, nbn, time.time() - t0, " ".join("%.3g" % y.std().item() for y in ys)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
