#!/usr/bin/env bash
# The main-job benchmark (issue 5). prune_s = whole command wall time minus the ORT timing stage: prunes each real model at each ratio with the Release CLI, checks the
# result with python3-onnx's full checker, and prints one table row per run. Heavy: not part of CI.
# Usage: tools/bench/run.sh [model ...]     env: RATIOS="0.3 0.5" RUNS=20 OUT=/tmp/onnxslim-bench
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
out="${OUT:-/tmp/onnxslim-bench}"
ratios="${RATIOS:-0.3 0.5}"
runs="${RUNS:-20}"
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(resnet50 mobilenet_v2 googlenet densenet121 vgg16_bn fasterrcnn ppocr_det)
mkdir -p "$out"

"$root/tools/models/fetch.sh" "${models[@]}" >/dev/null
dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
cli="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"

declare -A shape=([ppocr_det]="x=1,3,640,640")
printf '%-13s %4s %8s %8s %8s %8s %9s %9s %9s %8s %6s\n' model cr "-MACs" "-params" "prune_s" "peakMB" "speed_b1" "speed_b8" cosine top1 check
for m in "${models[@]}"; do
  for r in $ratios; do
    src="$cache/models/$m.onnx" dst="$out/$m.cr$r.onnx" rep="$out/$m.cr$r.json"
    args=("$src" -o "$dst" --cr "$r" --report "$rep" --runs "$runs")
    [[ -n "${shape[$m]:-}" ]] && args+=(--shape "${shape[$m]}")
    if ! /usr/bin/time -f '%M %e' -o "$out/time.txt" dotnet "$cli" "${args[@]}" >"$out/$m.cr$r.log" 2>&1; then
      printf '%-13s %4s  FAILED: %s\n' "$m" "$r" "$(grep 'error' "$out/$m.cr$r.log" | tail -1)"; continue
    fi
    read -r kb wall < <(tail -1 "$out/time.txt")
    peak=$(( kb / 1024 ))
    check=$(/usr/bin/python3 "$root/tools/models/check.py" "$dst" >/dev/null 2>&1 && echo ok || echo FAIL)
    jq -r --arg m "$m" --arg check "$check" --arg peak "$peak" --argjson wall "$wall" '
      def r(a; b): if a == null or b == null then "-" else ((a / b * 100 | round) / 100 | tostring) + "x" end;
      [ $m, (.cr|tostring), ((1 - .after.macs / .before.macs) * 1000 | round / 10 | tostring) + "%",
        ((1 - .after.params / .before.params) * 1000 | round / 10 | tostring) + "%",
        (($wall - ([.stage_seconds | to_entries[] | select(.key | test("time on")) | .value] | add // 0)) * 10 | round / 10 | tostring),
        $peak, r(.before.latency_ms_batch1; .after.latency_ms_batch1), r(.before.latency_ms_batch8; .after.latency_ms_batch8),
        (.agreement.cosine * 10000 | round / 10000 | tostring),
        (if .agreement.top1_agreement == null then "-" else (.agreement.top1_agreement * 100 | round | tostring) + "%" end), $check ]
      | "\(.[0])|\(.[1])|\(.[2])|\(.[3])|\(.[4])|\(.[5])|\(.[6])|\(.[7])|\(.[8])|\(.[9])|\(.[10])"' "$rep" |
      awk -F'|' '{ printf "%-13s %4s %8s %8s %8s %8s %9s %9s %9s %8s %6s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
  done
done
