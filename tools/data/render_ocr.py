#!/usr/bin/python3
"""Render OCR evaluation/calibration data for the PP-OCRv4 models, and ImageNet-like calibration images.

Deterministic from the seeds below (same fonts, numpy and Pillow give the same bytes). Debian python only:
/usr/bin/python3 with python3-numpy and python3-pil, python3-jieba's word-frequency list (to pick common Chinese
characters); fonts from Debian packages (fonts-noto-cjk,
fonts-wqy-microhei, fonts-wqy-zenhei, fonts-dejavu-core, fonts-liberation2; missing ones are skipped and the
manifest records which were used).

    render_ocr.py --keys ppocr_keys_v1.txt --out CACHE/data [--sets rec_calib,rec_test,...] [--force]

Layout under OUT (one folder per set, each with its own manifest.json; a set whose manifest matches the
generator version, seed, count and file sha256s is skipped unless --force):

    ppocr/ppocr_keys_v1.txt            copy of the recognizer dictionary
    ppocr/rec_calib|rec_test/          x.npy [N,3,48,320] float32 exactly as PaddleOCR's rec preprocessing,
                                       labels.txt (UTF-8, one line per sample), lines.tsv (font, size, widths),
                                       png/NNNNN.png (48x320 RGB, padding grey 128), preprocess.json,
                                       x_256.npy (rec_calib only: the first 256 lines, for --calib)
    ppocr/det_calib|det_test/          x.npy [N,3,640,640] float32 as PaddleOCR's det preprocessing,
                                       png/NNNNN.png (640x640 RGB), boxes.json (text, box per line),
                                       preprocess.json, x_32.npy (det_calib only)
    imagenet_like/                     png/NNNNN.png (224x224 RGB), imagenet_like_1024.npy [1024,3,224,224]
                                       (ImageNet mean/std, RGB), imagenet_like_256.npy, imagenet_like_64.npy

Preprocessing (checked against PaddleOCR tools/infer/predict_rec.py / predict_det.py): PaddleOCR reads
images with cv2.imread, i.e. BGR, and feeds channel 0 = blue to both models.
  rec: resize to height 48 keeping aspect (cv2 INTER_LINEAR; width ceil(48*w/h), at most 320), x/255,
       (x-0.5)/0.5, pad right to width 320 with 0.0 (after normalisation).
  det: (x/255 - mean)/std with mean [0.485,0.456,0.406], std [0.229,0.224,0.225] applied to the BGR
       channels in that order (PaddleOCR's NormalizeImage on a BGR image); 640x640 needs no resize.
"""
import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

VERSION = 1
SEEDS = {"rec_calib": 1001, "rec_test": 2002, "det_calib": 3003, "det_test": 4004, "imagenet_like": 5005}
COUNTS = {"rec_calib": 1000, "rec_test": 1000, "det_calib": 64, "det_test": 64, "imagenet_like": 1024}
REC_H, REC_W = 48, 320
DET_SIZE = 640
DET_MEAN, DET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# (path, face index): CJK-capable fonts render any line; Latin ones only lines without Chinese characters.
CJK_FONTS = [
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),   # Noto Sans CJK SC
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),  # Noto Serif CJK SC
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
]
LATIN_FONTS = [
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 0),
    ("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf", 0),
    ("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf", 0),
]

# Characters whose glyphs are ambiguous without context in at least one of the fonts are left out, so that a
# wrong read means the model read wrongly, not that the label is unknowable: 0/O/o, 1/l/I/i/j, letters whose
# two cases differ only in size (c s v w x z), 曰/日 and 己/已/巳, and punctuation whose full-width (CJK) and ASCII
# forms differ only in spacing (，,：:；;！!？?（(）)【[】]).
LOWER = list("abdefghkmnpqrtuy")
UPPER = list("ABDEFGHJKLMNPQRTUY")
HANZI_EXCLUDE = set("曰己已巳")
DIGITS = list("23456789")
PUNCT_ASCII = list("/%+#&@=")
PUNCT_CJK = list("。、《》")
# Lines whose natural width at height 48 exceeds 320 are squeezed to 320 (PaddleOCR with a fixed-width input);
# beyond 1.3x they are drawn again (shorter text or font), as accuracy falls off on longer squeezes.
MAX_SQUEEZE = 1.3


def usable_fonts(fonts):
    return [f for f in fonts if os.path.exists(f[0])]


JIEBA_DICT = "/usr/lib/python3/dist-packages/jieba/dict.txt"  # Debian python3-jieba: word frequencies
HANZI_TOP = 2000


def common_chinese(keys):
    """The HANZI_TOP most frequent GB2312 level-1 characters (the 3,755 common simplified ones) that the dictionary
    holds, by character frequency summed over jieba's word-frequency list. Random strings give the model no
    language context, and on them it misreads rare characters as common look-alikes (砒→础, 耍→要) or drops them:
    GB2312 level 1 as a whole gave 86 % line accuracy, the top 2,000 well above 90 %."""
    if not os.path.exists(JIEBA_DICT):
        sys.exit("render_ocr: %s not found; apt-get install python3-jieba" % JIEBA_DICT)
    freq = {}
    with open(JIEBA_DICT, encoding="utf-8") as f:
        for line in f:
            word, count = line.split(" ")[:2]
            for ch in word:
                freq[ch] = freq.get(ch, 0) + int(count)
    keyset = set(keys)
    out = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                c = bytes([hi, lo]).decode("gb2312")
            except UnicodeDecodeError:
                continue
            if c in keyset:
                out.append(c)
    out.sort(key=lambda c: (-freq.get(c, 0), c))
    return [c for c in out if c not in HANZI_EXCLUDE][:HANZI_TOP]


class LineGen:
    """Line specs: a random string of 4-20 characters (Chinese, digits, Latin words, punctuation) with its font,
    size and margins, drawn so that it fits 48x320 (at most MAX_SQUEEZE). Only this generator's own Random is
    used, so a set's texts can be recomputed without rendering (rec_test excludes rec_calib's texts)."""

    def __init__(self, seed, hanzi, keys, cjk_fonts, latin_fonts, sizes=(22, 44), max_squeeze=MAX_SQUEEZE):
        self.r = random.Random(seed)
        self.hanzi = hanzi
        self.needs_cjk_font = set(hanzi) | set(PUNCT_CJK)
        self.cjk_fonts, self.latin_fonts = cjk_fonts, latin_fonts
        self.sizes, self.max_squeeze = sizes, max_squeeze
        keyset = set(keys)
        for c in LOWER + UPPER + DIGITS + PUNCT_ASCII + PUNCT_CJK:
            assert c in keyset, c

    def word(self, lo, hi):
        r = self.r
        n = r.randint(lo, hi)
        style = r.random()
        if style < 0.5:
            return [r.choice(LOWER) for _ in range(n)]
        if style < 0.75:
            return [r.choice(UPPER) for _ in range(n)]
        return [r.choice(UPPER)] + [r.choice(LOWER) for _ in range(n - 1)]

    def text(self):
        r = self.r
        n = r.randint(4, 20)
        out = []
        if r.random() < 0.2:  # no Chinese: Latin words, numbers, ASCII punctuation
            while len(out) < n:
                seg = r.random()
                if seg < 0.5:
                    out.extend(self.word(2, 8))
                elif seg < 0.85:
                    out.extend(r.choice(DIGITS) for _ in range(r.randint(1, 5)))
                elif out and out[-1] not in PUNCT_ASCII:
                    out.append(r.choice(PUNCT_ASCII))
        else:
            while len(out) < n:
                seg = r.random()
                if seg < 0.62:
                    out.extend(r.choice(self.hanzi) for _ in range(r.randint(1, 6)))
                elif seg < 0.77:
                    out.extend(r.choice(DIGITS) for _ in range(r.randint(1, 4)))
                elif seg < 0.9:
                    out.extend(self.word(2, 6))
                elif out and out[-1] not in PUNCT_CJK:
                    out.append(r.choice(PUNCT_CJK))
        text = "".join(out[:n])
        return text, any(c in self.needs_cjk_font for c in text)

    def spec(self):
        r = self.r
        while True:
            text, cjk = self.text()
            fonts = self.cjk_fonts if cjk else self.cjk_fonts + self.latin_fonts
            font = fonts[r.randrange(len(fonts))]
            size = r.randint(*self.sizes)
            margins = [int(r.uniform(0.08, 0.35) * size), int(r.uniform(0.08, 0.35) * size),
                       int(r.uniform(0.05, 0.6) * size), int(r.uniform(0.05, 0.6) * size)]  # top bottom left right
            l, t, rr, b = load_font(font, size).getbbox(text)
            w, h = rr - l + margins[2] + margins[3], b - t + margins[0] + margins[1]
            if self.max_squeeze is None or math.ceil(REC_H * w / h) <= REC_W * self.max_squeeze:
                return {"text": text, "cjk": cjk, "font": font, "size": size, "margins": margins}


def specs_for(seed, n, gen_args, exclude=frozenset()):
    gen = LineGen(seed, *gen_args)
    specs, seen = [], set(exclude)
    while len(specs) < n:
        s = gen.spec()
        if s["text"] in seen:
            continue
        seen.add(s["text"])
        specs.append(s)
    return specs


def cv2_linear_resize(img, out_w, out_h):
    """cv2.resize(img, (out_w, out_h)) with INTER_LINEAR (half-pixel centres, edge clamp, no antialias)."""
    a = img.astype(np.float32)
    h, w = a.shape[:2]

    def axis(n_in, n_out):
        scale = n_in / n_out
        src = (np.arange(n_out) + 0.5) * scale - 0.5
        src = np.maximum(src, 0)
        i0 = np.floor(src).astype(np.int64)
        f = (src - i0).astype(np.float32)
        i0 = np.minimum(i0, n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, f

    y0, y1, fy = axis(h, out_h)
    a = a[y0] * (1 - fy)[:, None, None] + a[y1] * fy[:, None, None]
    x0, x1, fx = axis(w, out_w)
    a = a[:, x0] * (1 - fx)[None, :, None] + a[:, x1] * fx[None, :, None]
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def background(rng, w, h, lo=175):
    base = rng.uniform(lo, 255)
    tint = rng.uniform(-12, 12, size=3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.clip(base + tint, 0, 255)
    if rng.random() < 0.6:  # linear gradient
        ang = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(5, 35)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        g = (np.cos(ang) * xx / max(w, 1) + np.sin(ang) * yy / max(h, 1))
        img -= (amp * (g - g.min()) / max(np.ptp(g), 1e-6))[..., None]
    if rng.random() < 0.4:  # smooth blotches
        sh, sw = max(2, h // 16), max(2, w // 16)
        low = rng.normal(0, rng.uniform(3, 12), size=(sh, sw)).astype(np.float32)
        up = np.asarray(Image.fromarray(low, mode="F").resize((w, h), Image.BILINEAR))
        img += up[..., None]
    return np.clip(img, 0, 255)


def finish(rng, img, noise_max=7.0):
    a = np.asarray(img).astype(np.float32)
    sigma = rng.uniform(0, noise_max)
    if sigma > 0.5:
        a = a + rng.normal(0, sigma, size=a.shape).astype(np.float32)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def text_color(rng):
    g = rng.uniform(0, 85)
    return tuple(int(np.clip(g + rng.uniform(-15, 15), 0, 255)) for _ in range(3))


def load_font(spec, size, cache={}):
    key = (spec, size)
    if key not in cache:
        cache[key] = ImageFont.truetype(spec[0], size, index=spec[1])
    return cache[key]


def render_line(rng, spec):
    """One text-line crop (RGB uint8, natural size) for a LineGen spec; rng draws colours, noise and blur."""
    size, (my0, my1, mx0, mx1) = spec["size"], spec["margins"]
    font = load_font(spec["font"], size)
    l, t, r, b = font.getbbox(spec["text"])
    w, h = r - l + mx0 + mx1, b - t + my0 + my1
    bg = background(rng, w, h)
    img = Image.fromarray(bg.astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.text((mx0 - l, my0 - t), spec["text"], font=font, fill=text_color(rng))
    if rng.random() < 0.3:
        ang = rng.uniform(-1.5, 1.5)
        fill = tuple(int(v) for v in bg[0, 0])
        img = img.rotate(ang, resample=Image.BILINEAR, fillcolor=fill)
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.1)))
    return finish(rng, img)


def font_name(spec):
    return "%s#%d" % (os.path.basename(spec[0]), spec[1])


def rec_preprocess(rgb):
    """PaddleOCR TextRecognizer.resize_norm_img for [3,48,320] on a BGR image: returns (chw float32, uint8 HxWx3 RGB
    resized image, resized width)."""
    h, w = rgb.shape[:2]
    rw = min(int(math.ceil(REC_H * w / float(h))), REC_W)
    resized = cv2_linear_resize(rgb, rw, REC_H)
    bgr = resized[:, :, ::-1]
    x = np.zeros((3, REC_H, REC_W), np.float32)
    x[:, :, :rw] = (bgr.transpose(2, 0, 1).astype(np.float32) / 255 - 0.5) / 0.5
    return x, resized, rw


def det_preprocess(rgb):
    bgr = rgb[:, :, ::-1].astype(np.float32) / 255
    x = (bgr - np.array(DET_MEAN, np.float32)) / np.array(DET_STD, np.float32)
    return x.transpose(2, 0, 1).astype(np.float32)


def clutter(rng, d, w, h, n):
    for _ in range(n):
        kind = rng.integers(5)
        col = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, 220)), y0 + int(rng.integers(10, 220))
        width = int(rng.integers(1, 5))
        if kind == 0:
            d.rectangle([x0, y0, x1, y1], outline=col, width=width)
        elif kind == 1:
            d.ellipse([x0, y0, x1, y1], outline=col, width=width)
        elif kind == 2:
            d.line([x0, y0, x1, y1 - int(rng.integers(0, 200))], fill=col, width=width)
        elif kind == 3:  # filled light patch
            light = tuple(int(v) for v in rng.integers(150, 256, size=3))
            d.rectangle([x0, y0, x1, y1], fill=light)
        else:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(int(rng.integers(3, 6)))]
            d.polygon(pts, outline=col)


def render_page(rng, texts, cjk_fonts, latin_fonts):
    W = H = DET_SIZE
    img = Image.fromarray(background(rng, W, H, lo=195).astype(np.uint8))
    d = ImageDraw.Draw(img)
    clutter(rng, d, W, H, int(rng.integers(2, 9)))
    boxes, placed = [], []
    for text, cjk in texts:
        fonts = cjk_fonts if cjk else cjk_fonts + latin_fonts
        spec = fonts[rng.integers(len(fonts))]
        size = int(rng.integers(14, 49))
        font = load_font(spec, size)
        l, t, r, b = font.getbbox(text)
        tw, th = r - l, b - t
        if tw >= W - 20:
            continue
        for _ in range(30):
            x = int(rng.integers(10, W - tw - 10))
            y = int(rng.integers(10, H - th - 10))
            box = (x - 6, y - 6, x + tw + 6, y + th + 6)
            if all(box[2] < p[0] or box[0] > p[2] or box[3] < p[1] or box[1] > p[3] for p in placed):
                break
        else:
            continue
        placed.append(box)
        inverse = rng.random() < 0.1
        if inverse:
            dark = tuple(int(v) for v in rng.integers(0, 90, size=3))
            d.rectangle(box, fill=dark)
            col = tuple(int(v) for v in rng.integers(210, 256, size=3))
        else:
            col = text_color(rng)
        d.text((x - l, y - t), text, font=font, fill=col)
        boxes.append({"text": text, "box": [x, y, x + tw, y + th], "font": font_name(spec),
                      "size": size, "inverse": bool(inverse)})
    if rng.random() < 0.4:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return finish(rng, img, 6.0), boxes


def imagenet_like(rng, hanzi, cjk_fonts):
    S = 224
    mode = rng.random()
    if mode < 0.35:  # smooth "photo": upsampled low-res colour noise
        k = int(rng.integers(2, 9))
        low = rng.uniform(0, 255, size=(k, k, 3)).astype(np.uint8)
        img = Image.fromarray(low).resize((S, S), Image.BICUBIC)
    else:
        c0, c1 = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
        g = np.clip(0.5 + 0.7 * (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)), 0, 1)[..., None]
        img = Image.fromarray((c0 * (1 - g) + c1 * g).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 12))):
        col = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x0, y0 = int(rng.integers(-40, S)), int(rng.integers(-40, S))
        x1, y1 = x0 + int(rng.integers(8, 160)), y0 + int(rng.integers(8, 160))
        k = rng.integers(4)
        if k == 0:
            d.ellipse([x0, y0, x1, y1], fill=col)
        elif k == 1:
            d.rectangle([x0, y0, x1, y1], fill=col)
        elif k == 2:
            d.polygon([(int(rng.integers(0, S)), int(rng.integers(0, S))) for _ in range(3)], fill=col)
        else:
            d.line([x0, y0, x1, y1], fill=col, width=int(rng.integers(1, 10)))
    if rng.random() < 0.25:
        font = load_font(cjk_fonts[rng.integers(len(cjk_fonts))], int(rng.integers(14, 40)))
        text = "".join(hanzi[rng.integers(len(hanzi))] for _ in range(int(rng.integers(2, 8))))
        d.text((int(rng.integers(0, 120)), int(rng.integers(0, 190))), text, font=font,
               fill=tuple(int(v) for v in rng.integers(0, 256, size=3)))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.0)))
    return finish(rng, img, 12.0)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def set_dir(out, name):
    return os.path.join(out, "imagenet_like") if name == "imagenet_like" else os.path.join(out, "ppocr", name)


def manifest_ok(d, name):
    p = os.path.join(d, "manifest.json")
    if not os.path.exists(p):
        return False
    try:
        m = json.load(open(p))
        if (m.get("version"), m.get("seed"), m.get("count")) != (VERSION, SEEDS[name], COUNTS[name]):
            return False
        if len([f for f in os.listdir(os.path.join(d, "png")) if f.endswith(".png")]) != COUNTS[name]:
            return False
        return all(os.path.exists(os.path.join(d, f)) and sha256(os.path.join(d, f)) == s for f, s in m["files"].items())
    except (OSError, ValueError, KeyError):
        return False


def write_manifest(d, name, files, extra):
    m = {"generator": "tools/data/render_ocr.py", "version": VERSION, "set": name, "seed": SEEDS[name],
         "count": COUNTS[name], "files": {f: sha256(os.path.join(d, f)) for f in files}}
    m.update(extra)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f, indent=1, ensure_ascii=False)


def fresh_dir(d):
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "png"))


def make_rec(name, out, hanzi, keys, cjk_fonts, latin_fonts):
    d = set_dir(out, name)
    fresh_dir(d)
    gen_args = (hanzi, keys, cjk_fonts, latin_fonts)
    exclude = frozenset()
    if name == "rec_test":  # texts disjoint from rec_calib's
        exclude = frozenset(s["text"] for s in specs_for(SEEDS["rec_calib"], COUNTS["rec_calib"], gen_args))
    specs = specs_for(SEEDS[name], COUNTS[name], gen_args, exclude)
    texts = [s["text"] for s in specs]
    rng = np.random.default_rng(SEEDS[name])
    x = np.zeros((len(texts), 3, REC_H, REC_W), np.float32)
    rows = ["index\ttext\tfont\tsize\tcrop_w\tcrop_h\tnatural_w\tresized_w"]
    for i, spec in enumerate(specs):
        arr = render_line(rng, spec)
        x[i], resized, rw = rec_preprocess(arr)
        png = np.full((REC_H, REC_W, 3), 128, np.uint8)
        png[:, :rw] = resized
        Image.fromarray(png).save(os.path.join(d, "png", "%05d.png" % i))
        natural = int(math.ceil(REC_H * arr.shape[1] / float(arr.shape[0])))
        rows.append("%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d" % (i, spec["text"], font_name(spec["font"]), spec["size"],
                                                       arr.shape[1], arr.shape[0], natural, rw))
    np.save(os.path.join(d, "x.npy"), x)
    files = ["x.npy", "labels.txt", "lines.tsv", "preprocess.json"]
    if name == "rec_calib":
        np.save(os.path.join(d, "x_256.npy"), x[:256])
        files.append("x_256.npy")
    with open(os.path.join(d, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in texts))
    with open(os.path.join(d, "lines.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    with open(os.path.join(d, "preprocess.json"), "w") as f:
        json.dump({
            "model": "ppocr_rec (PP-OCRv4 recognizer), input x", "layout": "NCHW", "size": [REC_H, REC_W],
            "channel_order": "BGR", "channel_order_note": "tensor channel 0 = the PNG's blue channel (PaddleOCR reads with cv2.imread)",
            "scale": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
            "resize": "none: the PNGs are already resized to height 48 keeping aspect (cv2 INTER_LINEAR, width ceil(48*w/h) capped at 320)",
            "pad": {"side": "right", "png_value": 128, "tensor_value": 0.0,
                    "note": "columns from lines.tsv resized_w on are padding; x.npy holds 0.0 there (PaddleOCR), the PNG 128 (0.0039 after normalising)"},
            "labels": "labels.txt, UTF-8, line i = png/%05d.png of index i; CTC classes: 0 blank, i = line i of ppocr_keys_v1.txt, 6624 space",
        }, f, indent=1)
    write_manifest(d, name, files, {"fonts": sorted({r.split("\t")[2] for r in rows[1:]})})


def make_det(name, out, hanzi, keys, cjk_fonts, latin_fonts):
    d = set_dir(out, name)
    fresh_dir(d)
    n = COUNTS[name]
    rng = np.random.default_rng(SEEDS[name])
    gen = LineGen(SEEDS[name] + 7, hanzi, keys, cjk_fonts, latin_fonts, max_squeeze=None)
    texts = [gen.text() for _ in range(n * 14)]
    x = np.zeros((n, 3, DET_SIZE, DET_SIZE), np.float32)
    pages, k = [], 0
    for i in range(n):
        m = int(rng.integers(4, 13))
        page, boxes = render_page(rng, texts[k:k + m], cjk_fonts, latin_fonts)
        k += m
        Image.fromarray(page).save(os.path.join(d, "png", "%05d.png" % i))
        x[i] = det_preprocess(page)
        pages.append({"page": i, "lines": boxes})
    np.save(os.path.join(d, "x.npy"), x)
    files = ["x.npy", "boxes.json", "preprocess.json"]
    if name == "det_calib":
        np.save(os.path.join(d, "x_32.npy"), x[:32])
        files.append("x_32.npy")
    with open(os.path.join(d, "boxes.json"), "w", encoding="utf-8") as f:
        json.dump(pages, f, ensure_ascii=False)
    with open(os.path.join(d, "preprocess.json"), "w") as f:
        json.dump({
            "model": "ppocr_det (PP-OCRv4 DB detector), input x", "layout": "NCHW", "size": [DET_SIZE, DET_SIZE],
            "channel_order": "BGR", "channel_order_note": "tensor channel 0 = the PNG's blue channel; mean/std below are applied to the BGR channels in this order (PaddleOCR's NormalizeImage on a cv2 image)",
            "scale": 1 / 255, "mean": DET_MEAN, "std": DET_STD, "resize": "none (640 is a multiple of 32)",
        }, f, indent=1)
    write_manifest(d, name, files, {})


def make_imagenet(name, out, hanzi, cjk_fonts):
    d = set_dir(out, name)
    fresh_dir(d)
    n = COUNTS[name]
    rng = np.random.default_rng(SEEDS[name])
    x = np.zeros((n, 3, 224, 224), np.float32)
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    for i in range(n):
        img = imagenet_like(rng, hanzi, cjk_fonts)
        Image.fromarray(img).save(os.path.join(d, "png", "%05d.png" % i))
        x[i] = ((img.astype(np.float32) / 255 - mean) / std).transpose(2, 0, 1)
    files = []
    for k in (1024, 256, 64):
        f = "imagenet_like_%d.npy" % k
        np.save(os.path.join(d, f), x[:k])
        files.append(f)
    with open(os.path.join(d, "preprocess.json"), "w") as f:
        json.dump({"model": "ImageNet classifiers (torchvision), input 'input'", "layout": "NCHW", "size": [224, 224],
                   "channel_order": "RGB", "scale": 1 / 255, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "resize": "none"}, f, indent=1)
    files.append("preprocess.json")
    write_manifest(d, name, files, {})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", required=True, help="ppocr_keys_v1.txt")
    ap.add_argument("--out", required=True, help="data root, e.g. ~/.cache/onnxslim/data")
    ap.add_argument("--sets", default=",".join(SEEDS))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    keys = [l for l in open(a.keys, encoding="utf-8").read().split("\n") if l]
    hanzi = common_chinese(keys)
    cjk_fonts, latin_fonts = usable_fonts(CJK_FONTS), usable_fonts(LATIN_FONTS)
    if not cjk_fonts:
        sys.exit("render_ocr: no CJK font found; apt-get install fonts-noto-cjk")
    os.makedirs(os.path.join(a.out, "ppocr"), exist_ok=True)
    shutil.copyfile(a.keys, os.path.join(a.out, "ppocr", "ppocr_keys_v1.txt"))
    for name in a.sets.split(","):
        if name not in SEEDS:
            sys.exit("render_ocr: unknown set %r (known: %s)" % (name, ",".join(SEEDS)))
        d = set_dir(a.out, name)
        if not a.force and manifest_ok(d, name):
            print("%s: present (%s)" % (name, d))
            continue
        if name.startswith("rec_"):
            make_rec(name, a.out, hanzi, keys, cjk_fonts, latin_fonts)
        elif name.startswith("det_"):
            make_det(name, a.out, hanzi, keys, cjk_fonts, latin_fonts)
        else:
            make_imagenet(name, a.out, hanzi, cjk_fonts)
        print("%s: written (%s)" % (name, d))


if __name__ == "__main__":
    main()
