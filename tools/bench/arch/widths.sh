#!/usr/bin/env bash
# Times the widths.py models in pairs (alternating, one process, 1 thread, batch 1) and prints
# "A ms_A B ms_B A/B" per pair. Usage: tools/bench/arch/widths.sh [PAIR ...]   (PAIR = A:B; default: the chains)
# env: RUNS=40 WARMUP=5 DIR=/tmp/onnxslim-widths
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="${DIR:-/tmp/onnxslim-widths}" runs="${RUNS:-40}" warmup="${WARMUP:-5}"
mkdir -p "$dir"
/usr/bin/python3 "$root/tools/bench/arch/widths.py" "$dir" >/dev/null
cli=(dotnet "$root/src/Cli/bin/Release/net10.0/onnxslim.dll")
pairs=("$@")
if [[ ${#pairs[@]} -eq 0 ]]; then
  for h in 160 80; do for w in 31 28 24 21 20 17 16 12 9 8; do pairs+=("c${h}_32:c${h}_$w"); done; done
fi
for pair in "${pairs[@]}"; do
  a=${pair%%:*} b=${pair##*:}
  "${cli[@]}" bench "$dir/$a.onnx" --vs "$dir/$b.onnx" --threads 1 --runs "$runs" --warmup "$warmup" --json |
    jq -r --arg a "$a" --arg b "$b" '"\($a) \(.[0].median_ms) \($b) \(.[1].median_ms) \(.[0].median_ms / .[1].median_ms)"' |
    awk '{ printf "%-10s %8.3f  %-10s %8.3f  %5.2f\n", $1, $2, $3, $4, $5 }'
done
