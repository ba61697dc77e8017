#!/usr/bin/env bash
# Issue 10's calibration cost benchmark. Heavy: not part of CI. Each case is one whole `onnxslim MODEL --calib DATA
# --cr R --no-bench` command in its own process, timed by /usr/bin/time: wall, CPU (user + system) and peak RSS. The
# machine is shared: the load average before/after is printed beside every figure, and CPU seconds are the column to
# compare between runs at different loads. Targets (2 cores): ResNet-50 256 images ≤ 60 s and ≤ 2 GB; PP-OCRv4 det
# 32 images ≤ 20 s and ≤ 1.5 GB; PP-OCRv4 rec 256 lines ≤ 15 s and ≤ 1 GB; peak RSS flat in the sample count.
#
#   tools/bench/calib/run.sh [case ...]    cases: rec det03 det05 r50_64 r50_256 r50_1024 (default: all)
# env: CLI=path/to/onnxslim.dll (another build, e.g. main's), OUT=/tmp/onnxslim-calib-bench, EXTRA="more CLI options"
# Data: ${ONNXSLIM_CACHE:-~/.cache/onnxslim}/data/ppocr/{rec_calib/x_256.npy,det_calib/x_32.npy} and
# data/imagenet_like/imagenet_like_{64,256,1024}.npy (tools/models); models from tools/models/fetch.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${OUT:-/tmp/onnxslim-calib-bench}"
mkdir -p "$out"
cases=("$@")
[[ ${#cases[@]} -eq 0 ]] && cases=(rec det03 det05 r50_64 r50_256 r50_1024)
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
data="$cache/data"
declare -A model=([rec]=ppocr_rec [det03]=ppocr_det [det05]=ppocr_det [r50_64]=resnet50 [r50_256]=resnet50 [r50_1024]=resnet50)
declare -A calib=([rec]=ppocr/rec_calib/x_256.npy [det03]=ppocr/det_calib/x_32.npy [det05]=ppocr/det_calib/x_32.npy
  [r50_64]=imagenet_like/imagenet_like_64.npy [r50_256]=imagenet_like/imagenet_like_256.npy [r50_1024]=imagenet_like/imagenet_like_1024.npy)
declare -A cr=([rec]=0.5 [det03]=0.3 [det05]=0.5 [r50_64]=0.5 [r50_256]=0.5 [r50_1024]=0.5)
declare -A shape=([ppocr_det]="x=1,3,640,640")
"$root/tools/models/fetch.sh" $(for c in "${cases[@]}"; do echo "${model[$c]}"; done | sort -u) >/dev/null
if [[ -z "${CLI:-}" ]]; then
  nice dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
  CLI="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"
fi
load() { cut -d' ' -f1 /proc/loadavg; }

printf '%-9s %-10s %4s %8s %8s %8s  %-70s %s\n' case model cr wall_s cpu_s peakMB stages_s load
for c in "${cases[@]}"; do
  m="${model[$c]:?unknown case $c}"
  args=(); [[ -n "${shape[$m]:-}" ]] && args+=(--shape "${shape[$m]}")
  # shellcheck disable=SC2206
  [[ -n "${EXTRA:-}" ]] && args+=($EXTRA)
  l0=$(load)
  if ! /usr/bin/time -f '%e %U %S %M' -o "$out/time.txt" dotnet "$CLI" "$cache/models/$m.onnx" -o "$out/$c.onnx" --cr "${cr[$c]}" \
      --calib "$data/${calib[$c]}" --no-bench -v --report "$out/$c.json" "${args[@]}" >"$out/$c.log" 2>&1; then
    printf '%-9s %-10s %4s  FAILED: %s\n' "$c" "$m" "${cr[$c]}" "$(grep -i error "$out/$c.log" | tail -1)"; continue
  fi
  read -r wall user sys kb < <(tail -1 "$out/time.txt")
  stages=$(jq -r '[.stage_seconds | to_entries[] | select(.value >= 0.5) | "\(.key | split(" ")[0]) \(.value * 10 | round / 10)"] | join(", ")' "$out/$c.json")
  printf '%-9s %-10s %4s %8s %8s %8s  %-70s %s\n' "$c" "$m" "${cr[$c]}" "$wall" "$(echo "$user + $sys" | bc)" "$((kb / 1024))" "$stages" "$l0/$(load)"
done
