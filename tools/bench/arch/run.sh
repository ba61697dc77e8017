#!/usr/bin/env bash
# Modern architectures (issue 15): what the current CLI makes of grouped convs (ResNeXt, RegNet) and of
# YOLOv8-style C2f/SPPF graphs (Slice-chunk and Split forms); prints the table for this build, then the
# baseline rows of tools/bench/arch/README.md (commit 29342b9) to compare. Per model:
#   onnxslim inspect MODEL --groups --json           channel groups, prunable, frozen reasons
#   onnxslim MODEL -o OUT --cr $CR --no-bench --report R.json
#   onnxslim bench MODEL --vs OUT --threads 1 --runs $RUNS --warmup $WARMUP --json   (alternating, one process)
#   tools/models/check.py OUT                        (onnx.checker full check of the pruned model)
# and prints one row per model. Heavy-ish (a few minutes on 2 cores); not part of CI.
# Usage: tools/bench/arch/run.sh [model ...]   env: CR=0.5 RUNS=30 WARMUP=5 OUT=/tmp/onnxslim-arch
# Columns: groups / prunable = channel groups found / not frozen; frozenMACs = share of the model's MACs in
# layers whose output channels are frozen (from inspect's layers and groups); untouched = 1 - inspect's
# prunable_macs_share (MACs in layers that neither read nor write a prunable group); outMACs = share of MACs in
# layers whose output channels are prunable (inspect's coverage; older builds: -); -MACs = achieved
# reduction; speed_b1 = median original / median pruned, batch 1, 1 thread; cosine = the report's output
# agreement (seeded random inputs); check = check.py on the pruned model. Frozen reasons (names elided,
# group=N collapsed) are listed after the table, with counts.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
out="${OUT:-/tmp/onnxslim-arch}"
cr="${CR:-0.5}" runs="${RUNS:-30}" warmup="${WARMUP:-5}"
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(resnext50_32x4d regnet_y_400mf yolov8s_chunk yolov8s_split)
mkdir -p "$out"

"$root/tools/models/fetch.sh" "${models[@]}" >/dev/null
dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
cli=(dotnet "$root/src/Cli/bin/Release/net10.0/onnxslim.dll")

declare -A shape=([yolov8s_chunk]="images=1,3,640,640" [yolov8s_split]="images=1,3,640,640")
fmt='%-16s %6s %8s %10s %9s %7s %7s %15s %8s %8s %6s\n'
printf "$fmt" model groups prunable frozenMACs untouched outMACs "-MACs" "ms_b1 orig→slim" speed_b1 cosine check
reasons=""
for m in "${models[@]}"; do
  src="$cache/models/$m.onnx" dst="$out/$m.cr$cr.onnx" rep="$out/$m.cr$cr.json"
  sh=(); [[ -n "${shape[$m]:-}" ]] && sh=(--shape "${shape[$m]}")
  "${cli[@]}" inspect "$src" --groups --json "${sh[@]}" > "$out/$m.inspect.json"
  read -r ngroups nprun frozen untouched outmacs < <(jq -r '
    ([.groups[] | select(.prunable) | .producers[]] | unique) as $live
    | ([.layers[] | select(.name as $n | $live | index($n) | not) | .macs] | add // 0) as $fz
    | "\(.groups | length) \([.groups[] | select(.prunable)] | length) \($fz / .total_macs * 100) \((1 - .prunable_macs_share) * 100) \(if .coverage then .coverage.output_macs_share * 100 else "-" end)"' \
    "$out/$m.inspect.json")
  frozen=$(printf '%.1f%%' "$frozen") untouched=$(printf '%.1f%%' "$untouched")
  [[ $outmacs == - ]] || outmacs=$(printf '%.1f%%' "$outmacs")
  reasons+="$m: $(jq -r '.groups[] | select(.prunable | not) | .reason' "$out/$m.inspect.json" |
    sed -E "s/'[^']*'/'…'/g; s/\(group=[0-9]+\)/(group=N)/" | sort | uniq -c | sort -rn |
    awk '{ n = $1; $1 = ""; printf "%s%d×%s", sep, n, $0; sep = "; " }')"$'\n'

  rm -f "$dst" "$rep"
  if ! "${cli[@]}" "$src" -o "$dst" --cr "$cr" --no-bench --report "$rep" "${sh[@]}" > "$out/$m.cr$cr.log" 2>&1 \
     && [[ ! -f "$dst" || ! -f "$rep" ]]; then
    printf "$fmt" "$m" "$ngroups" "$nprun" "$frozen" "$untouched" "$outmacs" FAILED - - - -
    grep -i error "$out/$m.cr$cr.log" | tail -1 >&2 || true
    continue
  fi
  "${cli[@]}" bench "$src" --vs "$dst" --threads 1 --runs "$runs" --warmup "$warmup" --json "${sh[@]}" > "$out/$m.bench.json"
  read -r ms0 ms1 < <(jq -r '"\(.[0].median_ms) \(.[1].median_ms)"' "$out/$m.bench.json")
  ms=$(printf '%.1f→%.1f' "$ms0" "$ms1") speed=$(awk -v a="$ms0" -v b="$ms1" 'BEGIN { printf "%.2fx", a / b }')
  check=$(/usr/bin/python3 "$root/tools/models/check.py" "$dst" >/dev/null 2>&1 && echo ok || echo FAIL)
  read -r red cos < <(jq -r '"\((1 - .after.macs / .before.macs) * 100) \(.agreement.cosine)"' "$rep")
  red=$(printf '%.1f%%' "$red") cos=$(printf '%.4f' "$cos")
  printf "$fmt" "$m" "$ngroups" "$nprun" "$frozen" "$untouched" "$outmacs" "$red" "$ms" "$speed" "$cos" "$check"
done
echo
echo "baseline (tools/bench/arch/README.md, commit 29342b9 CLI):"
for m in "${models[@]}"; do
  awk -v m="$m" '/^## Baseline/ { on = 1 } on && $1 == m { print; exit }' "$root/tools/bench/arch/README.md"
done
echo
echo "frozen groups by reason (cr $cr; bench: $runs runs after $warmup warm-up, alternating, 1 thread, batch 1):"
printf '%s' "$reasons"
