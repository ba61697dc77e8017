#!/usr/bin/python3
"""Side-by-side PNG of a det page, the detector's probability map and the mask (> thresh) over the page with the
rendered text boxes (green), to look at what the detector sees.

    det_map_png.py SET_DIR MAPS.npy PAGE OUT.png [--thresh 0.3]

SET_DIR: a det set (png/, boxes.json); MAPS.npy: [N,1,H,W] probabilities (ocr-bench det ... --dump MAPS.npy).
"""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

ap = argparse.ArgumentParser()
ap.add_argument("set_dir")
ap.add_argument("maps")
ap.add_argument("page", type=int)
ap.add_argument("out")
ap.add_argument("--thresh", type=float, default=0.3)
a = ap.parse_args()
page = np.asarray(Image.open(os.path.join(a.set_dir, "png", "%05d.png" % a.page)).convert("RGB"))
prob = np.load(a.maps, mmap_mode="r")[a.page, 0]
heat = (np.clip(prob, 0, 1) * 255).astype(np.uint8)
over = page.copy()
mask = prob > a.thresh
over[mask] = (0.4 * over[mask] + 0.6 * np.array([255, 0, 0])).astype(np.uint8)
over_img = Image.fromarray(over)
d = ImageDraw.Draw(over_img)
for line in json.load(open(os.path.join(a.set_dir, "boxes.json"), encoding="utf-8"))[a.page]["lines"]:
    d.rectangle(line["box"], outline=(0, 200, 0))
h, w = heat.shape
out = Image.new("RGB", (3 * w + 20, h), (255, 255, 255))
out.paste(Image.fromarray(page), (0, 0))
out.paste(Image.fromarray(heat).convert("RGB"), (w + 10, 0))
out.paste(over_img, (2 * w + 20, 0))
out.save(a.out)
