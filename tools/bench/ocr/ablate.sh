#!/usr/bin/env bash
# Where a calibrated PP-OCRv4 rec plan loses its accuracy, group by group (issue 10 point 5's diagnosis).
# From a plan written by `onnxslim ... --calib X --plan-out PLAN.json`, for each named group:
#   whole: the plan with that group kept whole (what restoring it buys, and at what MACs);
#   alone: only that group pruned as in the plan, every other group whole (what it costs on its own).
# Each variant is replayed with --plan-in and the same --calib (so its readers are re-fitted as usual), then
# scored by ocr-bench rec on a set that is neither calibration nor test data (tune on a dev split, never on rec_test).
# Usage: tools/bench/ocr/ablate.sh PLAN.json whole|alone "G1 G2 ..."
#        env: CALIB=rec_calib/x_256.npy (the plan's --calib), DATA=DIR SET=NAME (ocr-bench --data/--set; default the
#             dev split /tmp/recfid-data rec_dev), MODEL=ppocr_rec.onnx, OUT=/tmp/onnxslim-ablate, NO_BUILD=1
# Prints one line per group: mode, group, achieved MACs reduction, line accuracy; the pruned models are deleted.
set -euo pipefail
[[ $# -eq 3 && ( "$2" == whole || "$2" == alone ) ]] || { sed -n 2,11p "$0" >&2; exit 2; }
plan="$1" mode="$2" groups="$3"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${OUT:-/tmp/onnxslim-ablate}"
# shellcheck source=common.sh
source "$root/tools/bench/ocr/common.sh"

for g in $groups; do
  name="$out/$mode-$g"
  # whole: group g keeps every channel; alone: every group but g does.
  /usr/bin/python3 - "$plan" "$mode" "$g" "$name.json" <<'EOF'
import json, sys
plan, mode, group, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
p = json.load(open(plan))
if not any(g["id"] == group for g in p["groups"]): sys.exit(f"group {group} is not in {plan}")
for g in p["groups"]:
    if (g["id"] == group) == (mode == "whole"): g["keep"] = list(range(g["channels"]))
json.dump(p, open(path, "w"))
EOF
  dotnet "$cli" "$model" -o "$name.onnx" --plan-in "$name.json" --calib "$calib" --no-bench >"$name.log" 2>&1
  macs=$(grep '│ MACs' "$name.log" | awk -F'│' '{gsub(/ /, "", $5); print $5}')
  acc=$(dotnet "$bench" rec "$name.onnx" --data "$data" --set "$set" | tail -1 | awk '{print $2}')
  echo "$mode $g MACs $macs accuracy $acc"
  rm -f "$name.onnx"
done
