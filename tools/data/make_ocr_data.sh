#!/usr/bin/env bash
# Rendered OCR data for the PP-OCRv4 models and ImageNet-like calibration images, in the cache (outside git):
#   ${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}/data/ppocr/{rec_calib,rec_test,det_calib,det_test}/
#   ${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}/data/imagenet_like/
# Usage: tools/data/make_ocr_data.sh [set ...]   (sets: rec_calib rec_test det_calib det_test imagenet_like;
#        none = all). A set whose manifest.json matches (generator version, seed, count, sha256 of every file)
#        is skipped; FORCE=1 renders again. Prints the data root.
# Needs Debian's python (/usr/bin/python3) with numpy and PIL, python3-jieba (character frequencies) and the
# fonts fonts-noto-cjk fonts-wqy-microhei fonts-wqy-zenhei fonts-dejavu-core fonts-liberation2 (installed when
# run as root). Takes about 1.5 minutes on 2 cores; 2.1 GB on disk.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
CACHE="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
OUT="$CACHE/data"
PKGS=(python3-numpy python3-pil python3-jieba fonts-noto-cjk fonts-wqy-microhei fonts-wqy-zenhei fonts-dejavu-core fonts-liberation2)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  cmd="apt-get install -y ${missing[*]}"
  echo "make_ocr_data: missing Debian packages; needed: $cmd" >&2
  [[ "$(id -u)" == 0 ]] || exit 1
  # A fresh machine has no package lists yet ("Unable to locate package"): read them, then try once more.
  DEBIAN_FRONTEND=noninteractive $cmd >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $cmd >&2; }
fi

keys="$("$HERE/../models/fetch_ppocr.sh" keys)"
sets="$(IFS=,; echo "${*:-rec_calib,rec_test,det_calib,det_test,imagenet_like}")"
force=(); [[ "${FORCE:-0}" == 1 ]] && force=(--force)
nice "$PY" "$HERE/render_ocr.py" --keys "$keys" --out "$OUT" --sets "$sets" "${force[@]}" >&2
echo "$OUT"
