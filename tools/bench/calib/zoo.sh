#!/usr/bin/env bash
# Calibrated pruning across the model zoo: whether `--calib` runs on each architecture, in what time and memory, and
# whether what it writes is a valid model. Heavy: not part of CI. Per model and ratio, one
# `onnxslim MODEL -o OUT --cr R --calib DATA --seed S --no-bench -v` under /usr/bin/time, then tools/models/check.py
# (onnx.checker's full check) on the output. The torchvision models carry random weights: the held-out agreement says
# the graph is consistent, not that accuracy survives (tools/bench/ocr and tools/bench/accuracy measure that).
#
#   tools/bench/calib/zoo.sh                                   # every model below at --cr 0.5
#   RATIOS="0.3 0.7" SEED=3 tools/bench/calib/zoo.sh densenet121 vgg16_bn
# env: CLI=path/to/onnxslim.dll (another build), OUT=/tmp/onnxslim-calib-zoo, RATIOS="0.5", SEED=0
# Data (tools/data/make_ocr_data.sh): data/imagenet_like/imagenet_like_64.npy for the 224² models, and
# data/ppocr/det_calib/x_32.npy (32 pages at 640²) for YOLOv8s; models from tools/models/fetch.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${OUT:-/tmp/onnxslim-calib-zoo}"
mkdir -p "$out"
models=("$@")
[[ ${#models[@]} -eq 0 ]] && models=(mobilenet_v2 regnet_y_400mf googlenet densenet121 resnext50_32x4d yolov8s_split vgg16_bn resnet50)
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
"$root/tools/models/fetch.sh" "${models[@]}" >/dev/null
if [[ -z "${CLI:-}" ]]; then
  nice dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
  CLI="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"
fi

printf '%-16s %4s %3s %8s %8s %9s %-6s  %s\n' model cr rc wall_s peakMB handedMB check "held-out agreement"
failed=0
for r in ${RATIOS:-0.5}; do
  for m in "${models[@]}"; do
    case $m in
      yolov8s_*) data="$cache/data/ppocr/det_calib/x_32.npy" ;;
      *) data="$cache/data/imagenet_like/imagenet_like_64.npy" ;;
    esac
    [[ -f "$data" ]] || { echo "zoo.sh: $data is missing: run tools/data/make_ocr_data.sh" >&2; exit 2; }
    base="$out/$m.$r"
    rm -f "$base.onnx"
    rc=0
    /usr/bin/time -f '%e %M' -o "$base.time" dotnet "$CLI" "$cache/models/$m.onnx" -o "$base.onnx" --cr "$r" --calib "$data" \
      --seed "${SEED:-0}" --no-bench -v >"$base.log" 2>&1 || rc=$?
    read -r wall kb < <(tail -1 "$base.time")
    check=-
    if [[ $rc -eq 0 ]]; then
      if /usr/bin/python3 "$root/tools/models/check.py" "$base.onnx" >/dev/null 2>&1; then check=ok; else check=FAILED; failed=1; fi
    else
      failed=1
    fi
    handed=$(grep -o 'native heap: [0-9]* MiB handed back' "$base.log" | grep -o '[0-9]*' || echo -)
    # The console summary wraps long lines: join them before reading the agreement after reconstruction.
    agreement=$(tr '\n' ' ' <"$base.log" | grep -o 'output agreement ([^)]*): cosine [0-9.]*, max abs error [0-9.eE+-]*\(, top-1 agreement [0-9.]* %\)\?' | sed 's/output agreement ([^)]*): //' || true)
    [[ $rc -ne 0 ]] && agreement=$(grep -m1 'error:' "$base.log" || true)
    printf '%-16s %4s %3s %8s %8s %9s %-6s  %s\n' "$m" "$r" "$rc" "$wall" "$((kb / 1024))" "$handed" "$check" "$agreement"
  done
done
exit $failed
