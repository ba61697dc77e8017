#!/usr/bin/env bash
# Issue 4's benchmark: wall time, CPU time and peak RSS of the plan stage (spectra + configuration + GEM
# selection, Planner.Plan as the CLI runs it) on ResNet-50 and FasterRCNN, then MathNet's plain Svd() of the
# same group matrices (spectra only) as the naive reference. Each run is its own process (cold, as the CLI).
# Usage: tools/bench/spectral/run.sh [model ...]     env: RUNS=5 CR=0.5 NAIVE=1 (0: skip the slow reference)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(resnet50 fasterrcnn)
"$root/tools/models/fetch.sh" "${models[@]}" >/dev/null
dotnet build "$root/tools/bench/spectral" -c Release --nologo -v q >/dev/null
bench="$root/tools/bench/spectral/bin/Release/net10.0/OnnxSlim.Spectral.Bench.dll"
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}/models"
for m in "${models[@]}"; do
  for r in $(seq 1 "${RUNS:-5}"); do dotnet "$bench" model "$cache/$m.onnx" --cr "${CR:-0.5}"; done
  [[ "${NAIVE:-1}" == 0 ]] || dotnet "$bench" model "$cache/$m.onnx" --naive
done
