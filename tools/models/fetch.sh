#!/usr/bin/env bash
# Build/fetch the real ONNX models used by tests and benchmarks into the cache (outside git).
# Usage: tools/models/fetch.sh [name ...]     (no name: all)
# Names: resnet50 mobilenet_v2 vgg16_bn googlenet densenet121 fasterrcnn maskrcnn keypointrcnn ppocr_det ppocr_rec ppocr_cls
#        resnext50_32x4d regnet_y_400mf yolov8s_chunk yolov8s_split
# (ppocr_rec also brings the recognizer's dictionary, ppocr_keys_v1.txt, next to it)
# Cache: ${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}/models/NAME.onnx. Prints each model's path.
# A model is built, checked with check.py, then its sha256 is recorded in NAME.onnx.sha256;
# a model already present whose sha256 matches that record is not rebuilt (nor re-checked).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3   # Debian's python (python3-torch etc.), not the pyenv one on PATH
ALL=(resnet50 mobilenet_v2 vgg16_bn googlenet densenet121 fasterrcnn maskrcnn keypointrcnn ppocr_det ppocr_rec ppocr_cls
     resnext50_32x4d regnet_y_400mf yolov8s_chunk yolov8s_split)
MODELS="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}/models"
mkdir -p "$MODELS"

names=("$@"); [[ $# -gt 0 ]] || names=("${ALL[@]}")
for n in "${names[@]}"; do
  [[ " ${ALL[*]} " == *" $n "* ]] || { echo "fetch.sh: unknown model '$n' (known: ${ALL[*]})" >&2; exit 2; }
done

if ! "$PY" -c 'import torch, torchvision, onnx' 2>/dev/null; then
  cmd="apt-get install -y python3-onnx python3-torch python3-torchvision"
  echo "fetch.sh: $PY lacks torch/torchvision/onnx; needed: $cmd" >&2
  [[ "$(id -u)" == 0 ]] || exit 1
  # A fresh machine has no package lists yet ("Unable to locate package"): read them, then try once more.
  DEBIAN_FRONTEND=noninteractive $cmd >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $cmd >&2; }
fi

valid() { [[ -f "$1" && -f "$1.sha256" ]] && (cd "$MODELS" && sha256sum --status -c "$(basename "$1").sha256"); }

for n in "${names[@]}"; do
  out="$MODELS/$n.onnx"
  if ! valid "$out"; then
    if [[ "$n" == ppocr_* ]]; then
      "$HERE/fetch_ppocr.sh" "${n#ppocr_}" >/dev/null
    elif [[ "$n" == yolov8s_* ]]; then
      "$PY" "$HERE/export_yolo.py" "$n" "$out"
    else
      "$PY" "$HERE/export_torchvision.py" "$n" "$out"
    fi
    "$PY" "$HERE/check.py" "$out" >/dev/null
    (cd "$MODELS" && sha256sum "$n.onnx" > "$n.onnx.sha256")
  fi
  [[ "$n" != ppocr_rec ]] || "$HERE/fetch_ppocr.sh" keys >/dev/null
  echo "$out"
done
