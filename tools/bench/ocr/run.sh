#!/usr/bin/env bash
# Issue 10's numbers: fidelity of pruned PP-OCRv4 models on rendered data, and what the CLI costs (whole-command
# wall time and peak resident memory under /usr/bin/time), without and with --calib.
#   rec: ppocr_rec at --cr 0.3 0.5 0.7; --calib = the first 256 lines of rec_calib; fidelity = exact-match line
#        accuracy on rec_test (1,000 lines) vs the original's
#   det: ppocr_det at --cr 0.3 0.5 0.7, --shape x=1,3,640,640; --calib = the first 32 pages of det_calib;
#        fidelity = IoU of the text mask (probability > 0.3) with the original's on det_test (64 pages)
#   resnet50 (only when named): --cr 0.5 with --calib of 64, 256 and 1024 ImageNet-like images (cost only:
#        the model has random weights)
# Usage: tools/bench/ocr/run.sh [rec] [det] [resnet50]     (default: rec det)
#        env: RATIOS="0.3 0.5 0.7", OUT=/tmp/onnxslim-ocr (pruned models, CLI logs and reports),
#             RESNET_CALIB="64 256 1024", NO_BUILD=1 (use the existing Release builds)
# A CLI run that fails is recorded (exit code and its last line) and the table goes on.
set -uo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${OUT:-/tmp/onnxslim-ocr}"
ratios=(${RATIOS:-0.3 0.5 0.7})
targets=("$@"); [[ $# -gt 0 ]] || targets=(rec det)
mkdir -p "$out"
PY=/usr/bin/python3

set -e
"$root/tools/models/fetch_ppocr.sh" det rec keys >/dev/null
models="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}/models"
data="$("$root/tools/data/make_ocr_data.sh")"
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  dotnet build "$root/src/Cli" -c Release --nologo -v q >/dev/null
  dotnet build "$root/tools/bench/ocr" -c Release --nologo -v q >/dev/null
fi
set +e
cli="$root/src/Cli/bin/Release/net10.0/onnxslim.dll"
bench="$root/tools/bench/ocr/bin/Release/net10.0/ocr-bench.dll"

# prune NAME MODEL ARGS... : one CLI run, its row appended to $out/runs.tsv
prune() {
  local name="$1" model="$2"; shift 2
  local onnx="$out/$name.onnx" report="$out/$name.json" log="$out/$name.log"
  rm -f "$onnx" "$report"
  /usr/bin/time -f '%M %e' -o "$out/time.txt" dotnet "$cli" "$model" -o "$onnx" --no-bench --report "$report" "$@" >"$log" 2>&1
  local rc=$?
  read -r kb wall < <(tail -1 "$out/time.txt")
  local achieved="" plan="" recon="" last=""
  if [[ -f "$report" ]]; then
    read -r achieved plan recon < <("$PY" - "$report" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r.get("stage_seconds", {})
stage = lambda p: next(("%.1f" % v for k, v in s.items() if k.startswith(p)), "-")
print("%.1f" % (100 * r["achieved_reduction"]), stage("plan"), stage("reconstruct"))
PYEOF
)
  fi
  [[ $rc == 0 ]] || last="$(grep -v '^\s*$' "$log" | tail -1 | cut -c1-110)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$wall" "$((kb / 1024))" "${achieved:--}" "${plan:--}" "${recon:--}" "$onnx" "$last" >>"$out/runs.tsv"
  echo "  $name: exit $rc, ${wall} s, $((kb / 1024)) MiB${last:+ — $last}" >&2
}

: >"$out/runs.tsv"
for t in "${targets[@]}"; do
  case "$t" in
    rec)
      for mode in none calib; do
        for r in "${ratios[@]}"; do
          extra=(); [[ $mode == calib ]] && extra=(--calib "$data/ppocr/rec_calib/x_256.npy")
          prune "rec_${r}_$mode" "$models/ppocr_rec.onnx" --cr "$r" "${extra[@]}"
        done
      done
      ok=(); while IFS=$'\t' read -r n rc _ _ _ _ _ onnx _; do [[ $n == rec_* && $rc == 0 ]] && ok+=("$onnx"); done <"$out/runs.tsv"
      nice dotnet "$bench" rec "$models/ppocr_rec.onnx" "${ok[@]}" --data "$data/ppocr" --json "$out/rec_fidelity.json"
      ;;
    det)
      for mode in none calib; do
        for r in "${ratios[@]}"; do
          extra=(); [[ $mode == calib ]] && extra=(--calib "$data/ppocr/det_calib/x_32.npy")
          prune "det_${r}_$mode" "$models/ppocr_det.onnx" --cr "$r" --shape x=1,3,640,640 "${extra[@]}"
        done
      done
      ok=(); while IFS=$'\t' read -r n rc _ _ _ _ _ onnx _; do [[ $n == det_* && $rc == 0 ]] && ok+=("$onnx"); done <"$out/runs.tsv"
      nice dotnet "$bench" det "$models/ppocr_det.onnx" "${ok[@]}" --data "$data/ppocr" --json "$out/det_fidelity.json"
      ;;
    resnet50)
      "$root/tools/models/fetch.sh" resnet50 >/dev/null || exit 1
      for k in ${RESNET_CALIB:-64 256 1024}; do
        prune "resnet50_0.5_calib$k" "$models/resnet50.onnx" --cr 0.5 --calib "$data/imagenet_like/imagenet_like_$k.npy"
      done
      ;;
    *) echo "run.sh: unknown target '$t' (rec det resnet50)" >&2; exit 2 ;;
  esac
done

echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (wall times grow with other work)"
"$PY" - "$out" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
fid = {}
for kind in ("rec", "det"):
    p = os.path.join(out, kind + "_fidelity.json")
    if os.path.exists(p):
        res = json.load(open(p))["models"]
        base = res[0]
        if kind == "rec":
            fid["rec:original"] = "line acc %.1f %%" % base["line_accuracy"]
        for m in res[1:]:
            name = os.path.basename(m["model"])[:-5]
            if kind == "rec":
                fid[name] = "line acc %.1f %% (%+.1f pt), NED %.4f" % (m["line_accuracy"], m["line_accuracy"] - base["line_accuracy"], m["mean_ned"])
            else:
                fid[name] = "mask IoU %.4f (min page %.4f)" % (m["iou"], m["min_page_iou"])
print("| model | --cr | --calib | exit | −MACs | plan s | reconstruct s | wall s | peak RSS MiB | fidelity vs original |")
print("|---|---|---|---|---|---|---|---|---|---|")
if "rec:original" in fid:
    print("| ppocr_rec | – | – | – | – | – | – | – | – | original: %s on rec_test |" % fid["rec:original"][9:])
for line in open(os.path.join(out, "runs.tsv"), encoding="utf-8"):
    name, rc, wall, mib, achieved, plan, recon, onnx, last = line.rstrip("\n").split("\t")
    model, cr, mode = name.rsplit("_", 2)
    calib = {"none": "–", "calib": {"rec": "256 lines", "det": "32 pages"}.get(model, "")}.get(mode, mode.replace("calib", "") + " images")
    f = fid.get(name, "") if rc == "0" else "failed: " + last.replace("|", "/")
    pct = achieved + " %" if achieved != "-" else "-"
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % ("ppocr_" + model if model in ("rec", "det") else model, cr, calib, rc, pct, plan, recon, wall, mib, f))
PYEOF
