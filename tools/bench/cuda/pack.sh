#!/usr/bin/env bash
# Packs what a CUDA check on a lent GPU machine needs, in parts small enough to travel one per call.
# Heavy, not part of CI. The device tool carries at most 64 MiB a call and the GPU build is ~400 MB, so:
#   1. here:  tools/bench/cuda/pack.sh            (publish HEAD, compress, split into $OUT/part0..5, ~3 min on 2 cores)
#   2. for each part, one warm call:   cp $OUT/partK .gpu/ ; run(command="mkdir -p /tmp/gp && mv .gpu/part* /tmp/gp/",
#      carry=[".gpu"])   with `/.gpu/` in .git/info/exclude (calls ~30 s apart keep the machine warm);
#   3. last call:  run(command="bash tools/bench/cuda/check.sh", carry=[".gpu"])  (its log and models come back in $OUT).
# Session 20 did this on an H200 in 667 device seconds over four machine starts.
# env: OUT=/tmp/onnxslim-cuda-pack  MODELS="mobilenet_v2 ppocr_rec ppocr_det"  DATA=1 (PP-OCRv4 calibration arrays)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${OUT:-/tmp/onnxslim-cuda-pack}"
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
rm -rf "$out" && mkdir -p "$out/stage/pub" "$out/stage/models" "$out/stage/data"
# Published from a clone of HEAD, so that this checkout's restore (CPU flavour) is left alone.
git clone -q "$root" "$out/src"
nice dotnet publish "$out/src/src/Cli" -c Release -r linux-x64 --self-contained -p:OrtFlavour=gpu -o "$out/stage/pub" --nologo -v q
# What the check never loads: TensorRT, debuggers' helpers, symbols, satellite resources.
(cd "$out/stage/pub" && rm -rf libonnxruntime_providers_tensorrt.so createdump libmscordaccore.so libmscordbi.so \
  libcoreclrtraceptprovider.so ./*.pdb cs de es fr it ja ko pl pt-BR ru tr zh-Hans zh-Hant)
"$root/tools/models/fetch.sh" ${MODELS:-mobilenet_v2 ppocr_rec ppocr_det} >/dev/null
for m in ${MODELS:-mobilenet_v2 ppocr_rec ppocr_det}; do cp "$cache/models/$m.onnx" "$out/stage/models/"; done
if [[ "${DATA:-1}" == 1 ]]; then
  cp "$cache/data/ppocr/rec_calib/x_256.npy" "$out/stage/data/rec256.npy"
  cp "$cache/data/ppocr/det_calib/x_32.npy" "$out/stage/data/det32.npy"
fi
tar -C "$out/stage" -cf - pub models data | nice xz -6 -T2 > "$out/bundle.tar.xz"
split -b 52M -d -a 1 "$out/bundle.tar.xz" "$out/part"
rm -rf "$out/stage" "$out/src" "$out/bundle.tar.xz"
ls -la "$out"/part*
