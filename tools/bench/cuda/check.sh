#!/usr/bin/env bash
# Runs on the lent GPU machine (see pack.sh): unpacks the parts, then onnxslim's CUDA path against the CPU on the
# same machine. CUDA 13 and cuDNN 9 come from the machine's Python wheels. Log and the calibrated models in $OUT.
set -u
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
mkdir -p /tmp/gp && mv .gpu/part* /tmp/gp/ 2>/dev/null
cat /tmp/gp/part* | xz -d -T8 | tar -x -C /tmp || { echo "unpack failed"; exit 3; }
sp=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH="$sp/nvidia/cu13/lib:$sp/nvidia/cudnn/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
B=/tmp/pub/onnxslim M=/tmp/models D=/tmp/data W=/tmp/work; mkdir -p $W
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; $B --version
declare -A shape=([ppocr_det]="x=1,3,640,640" [ppocr_rec]="x=1,3,48,320")
for f in $M/*.onnx; do
  m=$(basename "$f" .onnx); a=(); [[ -n "${shape[$m]:-}" ]] && a=(--shape "${shape[$m]}")
  echo "=== $m --cr 0.5 --provider cuda"
  /usr/bin/time -f 'cmd %e s, peak %M KB' $B "$f" -o $W/$m.onnx --cr 0.5 --provider cuda --runs 50 "${a[@]}" 2>&1 | tail -12
  for b in 1 16; do
    ab=(); [[ -n "${shape[$m]:-}" ]] && ab=(--shape "x=$b,${shape[$m]#x=1,}")
    $B bench "$f" --vs $W/$m.onnx --provider cuda --runs 100 --warmup 10 --batch $b "${ab[@]}" 2>&1 | tail -1
  done
done
echo "=== refusal: --target latency --provider cuda"
$B $M/ppocr_rec.onnx -o $W/x.onnx --target latency --provider cuda; echo "rc=$? (2 expected), written: $([[ -f $W/x.onnx ]] && echo yes || echo no)"
for prov in cuda cpu; do
  [[ -f $D/rec256.npy ]] && /usr/bin/time -f "rec calib $prov: %e s, peak %M KB" $B $M/ppocr_rec.onnx -o $OUT/rec_$prov.onnx \
    --cr 0.5 --calib $D/rec256.npy --provider $prov --no-bench 2>&1 | grep -E "agreement|cosine|rec calib|error"
  [[ -f $D/det32.npy ]] && /usr/bin/time -f "det calib $prov: %e s, peak %M KB" $B $M/ppocr_det.onnx -o $OUT/det_$prov.onnx \
    --cr 0.5 --calib $D/det32.npy --shape x=1,3,640,640 --provider $prov --no-bench 2>&1 | grep -E "agreement|cosine|det calib|error"
done
echo "total $(( $(date +%s) - t0 )) s; score the returned models here with tools/bench/ocr (rec, det)"
