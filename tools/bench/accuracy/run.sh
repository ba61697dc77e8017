#!/usr/bin/env bash
# Issue 6's acceptance numbers on the Fashion-MNIST fixtures (../shared/fixtures/fashion-mnist):
#  1. the test-accuracy table (10,000 test images) per variant and MACs reduction, in-process;
#  2. the CLI's --calib path at --cr 0.5: plan stage (it ranks channels on the calibration data) and
#     reconstruction stage times, whole-command wall time and peak
#     resident memory (/usr/bin/time), one run per model variant.
# Usage: tools/bench/accuracy/run.sh [bench options...]   (e.g. --ratios 0.5 --test-images 2000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
fixtures="${FIXTURES:-$root/../shared/fixtures/fashion-mnist}"
out="${OUT:-/tmp/onnxslim-accuracy}"
mkdir -p "$out"

dotnet build "$root/tools/bench/accuracy" -c Release --nologo -v q >/dev/null
dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
dotnet "$root/tools/bench/accuracy/bin/Release/net10.0/OnnxSlim.Accuracy.Bench.dll" --fixtures "$fixtures" "$@"

cli="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"
echo
echo "| model | --cr | plan stage (with the refit ranking) | reconstruction stage | whole command | peak RSS |"
echo "|---|---|---|---|---|---|"
for m in fm_resnet_fused fm_resnet_bn; do
  report="$out/$m.calib.json"
  /usr/bin/time -f '%M %e' -o "$out/time.txt" dotnet "$cli" "$fixtures/$m.onnx" -o "$out/$m.calib.onnx" --cr 0.5 \
    --calib "$fixtures/calib_x.npy" --no-bench --report "$report" >"$out/$m.calib.log" 2>&1
  read -r kb wall < <(tail -1 "$out/time.txt")
  stage() { python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stage_seconds']; print('%.2f s' % next(v for k, v in s.items() if k.startswith(sys.argv[2])))" "$report" "$1"; }
  echo "| $m | 0.5 | $(stage plan) | $(stage reconstruct) | ${wall} s | $((kb / 1024)) MiB |"
done
