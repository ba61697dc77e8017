#!/usr/bin/env bash
# Issue 14's benchmark. Heavy: not part of CI. Two parts, each model in its own process; the load average is printed
# beside every figure (the machine is shared: compare figures taken at similar loads, or the CPU-time columns).
#
#   tools/bench/latency/run.sh speed [model ...]   --target latency --cr $CR: the pruned model against the original,
#       single-thread batch 1, alternately in one process (`onnxslim bench A --vs B --threads 1 --runs 30 --warmup 5`);
#       also the latency model's predicted and the CLI's own measured reduction, and the command's wall/CPU/peak.
#       Default models: resnet50 googlenet mobilenet_v2 ppocr_rec ppocr_det. COLD=1 measures the latency model afresh
#       (a private cache folder) instead of reading the cache.
#   tools/bench/latency/run.sh cost [model ...]    --cr $CR (MACs) --no-bench: the whole command's wall, user CPU and
#       peak RSS (/usr/bin/time). Default models: vgg16_bn fasterrcnn maskrcnn keypointrcnn. CLI=path/to/onnxslim.dll
#       times another build (e.g. main's) the same way.
# env: CR=0.5 OUT=/tmp/onnxslim-latency-bench
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
part="${1:-speed}"; shift || true
out="${OUT:-/tmp/onnxslim-latency-bench}"
cr="${CR:-0.5}"
mkdir -p "$out"
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  case "$part" in
    speed) models=(resnet50 googlenet mobilenet_v2 ppocr_rec ppocr_det) ;;
    cost) models=(vgg16_bn fasterrcnn maskrcnn keypointrcnn) ;;
    *) echo "usage: run.sh speed|cost [model ...]" >&2; exit 2 ;;
  esac
fi
"$root/tools/models/fetch.sh" "${models[@]}" >/dev/null
if [[ -z "${CLI:-}" ]]; then
  nice dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
  CLI="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"
fi
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
declare -A shape=([ppocr_det]="x=1,3,640,640" [ppocr_rec]="x=1,3,48,320")
load() { cut -d' ' -f1 /proc/loadavg; }

if [[ "$part" == speed ]]; then
  printf '%-13s %5s %9s %9s %10s %10s %8s %7s %7s %7s  %s\n' model cr predicted measured orig_ms slim_ms speedup cmd_s cpu_s peakMB load
  for m in "${models[@]}"; do
    src="$cache/models/$m.onnx" dst="$out/$m.latency.onnx" rep="$out/$m.latency.json"
    args=(); [[ -n "${shape[$m]:-}" ]] && args+=(--shape "${shape[$m]}")
    env=(); [[ "${COLD:-0}" == 1 ]] && env=(ONNXSLIM_CACHE="$out/cache-$$")
    l0=$(load)
    if ! env "${env[@]}" /usr/bin/time -f '%e %U %M' -o "$out/time.txt" dotnet "$CLI" "$src" -o "$dst" --target latency --cr "$cr" \
        --report "$rep" "${args[@]}" >"$out/$m.latency.log" 2>&1; then
      printf '%-13s %5s  FAILED: %s\n' "$m" "$cr" "$(grep error "$out/$m.latency.log" | tail -1)"; continue
    fi
    read -r wall user kb < <(tail -1 "$out/time.txt")
    l1=$(load)
    read -r a b < <(dotnet "$CLI" bench "$src" --vs "$dst" --threads 1 --runs 30 --warmup 5 --json "${args[@]}" | jq -r '"\(.[0].median_ms) \(.[1].median_ms)"')
    jq -r --arg m "$m" --arg a "$a" --arg b "$b" --arg wall "$wall" --arg user "$user" --arg kb "$kb" --arg load "$l0/$l1/$(load)" '
      "\($m) \(.cr) \(.latency_model.predicted_reduction * 1000 | round / 10)% \(.latency_model.measured_reduction * 1000 | round / 10)% \($a | tonumber * 100 | round / 100) \($b | tonumber * 100 | round / 100) \(($a | tonumber) / ($b | tonumber) * 100 | round / 100)x \($wall) \($user) \(($kb | tonumber) / 1024 | round) \($load)"' "$rep" |
      awk '{ printf "%-13s %5s %9s %9s %10s %10s %8s %7s %7s %7s  %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
  done
else
  printf '%-13s %5s %8s %8s %8s  %-60s %s\n' model cr wall_s cpu_s peakMB stages load
  for m in "${models[@]}"; do
    src="$cache/models/$m.onnx" dst="$out/$m.cost.onnx" rep="$out/$m.cost.json"
    args=(); [[ -n "${shape[$m]:-}" ]] && args+=(--shape "${shape[$m]}")
    l0=$(load)
    if ! /usr/bin/time -f '%e %U %M' -o "$out/time.txt" dotnet "$CLI" "$src" -o "$dst" --cr "$cr" --no-bench --report "$rep" "${args[@]}" >"$out/$m.cost.log" 2>&1; then
      printf '%-13s %5s  FAILED: %s\n' "$m" "$cr" "$(grep error "$out/$m.cost.log" | tail -1)"; continue
    fi
    read -r wall user kb < <(tail -1 "$out/time.txt")
    stages=$(jq -r '[.stage_seconds | to_entries[] | "\(.key | split(" ")[0]) \(.value * 10 | round / 10)"] | join(", ")' "$rep")
    printf '%-13s %5s %8s %8s %8s  %-60s %s\n' "$m" "$cr" "$wall" "$user" "$((kb / 1024))" "$stages" "$l0/$(load)"
  done
fi
