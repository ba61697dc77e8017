# Sourced by ablate.sh and seeds.sh (set root and out first): the model, calibration lines and scoring set from the
# environment (MODEL, CALIB, DATA, SET), the CLI and ocr-bench builds (skipped with NO_BUILD=1), and $out created.
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
model="${MODEL:-$cache/models/ppocr_rec.onnx}"
calib="${CALIB:-$cache/data/ppocr/rec_calib/x_256.npy}"
data="${DATA:-/tmp/recfid-data}" set="${SET:-rec_dev}"
mkdir -p "$out"
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
  dotnet build "$root/tools/bench/ocr" -c Release --nologo -v q >/dev/null
fi
cli="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"
bench="$root/tools/bench/ocr/bin/Release/net10.0/ocr-bench.dll"
