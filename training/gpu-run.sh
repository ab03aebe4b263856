#!/usr/bin/env bash
# One call on a lent GPU machine: the final recipe x 3 seeds, the baseline and the ablations, in
# parallel on the one GPU within a time budget; then the best final-recipe run on val is shipped.
# Everything that comes back is written under $OUT (at most 8 files):
#   thyroid-nodule-int8.onnx + .json (the shipped candidate), runs.json (every train.json), logs.tar.gz
#
# Before the call, here (CPU machine, repo root):
#   npm run prepare-data -- --data ../shared/datasets/ddti --spec training/preprocessing-256-tiles-imagenet.json \
#       --out data/ddti-256-neg --negatives tissue=3,notissue=1,nodulecrops=1,roi=1,seed=0
#   (cd training && .venv/bin/python -m thyroid_seg.gpu_pack pack --data ../data/ddti-256-neg \
#       --tflite ../../shared/pretrained/coral-mobilenet-v2/tf2_mobilenet_v2_1.0_224_ptq.tflite --out ../data/gpu-pack)
# The call (device tool): command "bash training/gpu-run.sh", carry ["data/gpu-pack"], timeout_s 560.
# Small check on CPU: DEVICE=cpu SMALL=1 OUT=/tmp/gpu-out bash training/gpu-run.sh
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:?set OUT to the folder that comes back}
DEVICE=${DEVICE:-cuda}
BUDGET_MIN=${BUDGET_MIN:-6}
PY=${PY:-python3}
[ -x .venv/bin/python ] && [ "$DEVICE" = cpu ] && PY=.venv/bin/python
WORK=${WORK:-/tmp/thyroid-gpu-run}
rm -rf "$WORK" && mkdir -p "$WORK/runs" "$OUT"
$PY -m thyroid_seg.gpu_pack unpack --pack ../data/gpu-pack --out "$WORK/data"

if [ "${SMALL:-}" = 1 ]; then
  SIZE=(--epochs 1 --epoch-size 16 --limit-val 8 --threads 1); SEEDS=(0); SHIP_LIMIT=(--limit 8 --calib-frames 8)
else
  SIZE=(--epochs 60 --epoch-size 640 --batch 16); SEEDS=(0 1 2); SHIP_LIMIT=()
fi
RECIPE=(--negatives --val-kind roi --loss tversky+bce --gain 0.2 --lr 5e-4 --schedule cosine --bf16
        --time-budget-min "$BUDGET_MIN" --device "$DEVICE" --quiet)
INIT=(--init-tflite ../data/gpu-pack/encoder.pt)

run() { # name, extra args...
  local name=$1; shift
  $PY -m thyroid_seg.train --data "$WORK/data" --out "$WORK/runs/$name" "${SIZE[@]}" "$@" > "$WORK/runs/$name.log" 2>&1 &
}
for s in "${SEEDS[@]}"; do run "final-s$s" "${RECIPE[@]}" "${INIT[@]}" --seed "$s"; done
run baseline-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --arch deeplabv3plus
if [ "${SMALL:-}" != 1 ]; then
  run abl-scratch-s0 "${RECIPE[@]}" --seed 0
  run abl-tversky-only-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --loss tversky
  run abl-no-ppm-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --no-ppm
  run abl-no-attention-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --no-attention
  run abl-no-skips-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --no-skips
  run abl-plain-aspp-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --aspp plain
fi
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done

# every run's summary in one file; the best final-recipe seed on val (its checkpoint score) is shipped
$PY - "$WORK/runs" "$OUT/runs.json" <<'EOF'
import json, sys
from pathlib import Path
runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*/train.json"))}
Path(sys.argv[2]).write_text(json.dumps(runs, indent=1))
for k, r in runs.items():
    print(k, json.dumps(r["best"]))
EOF
best=$($PY -c "
import json,sys; r=json.load(open('$OUT/runs.json'))
c={k:v['best']['score'] for k,v in r.items() if k.startswith('final-')}
print(max(c, key=c.get))")
echo "shipping $best"
$PY -m thyroid_seg.ship --ckpt "$WORK/runs/$best/best.pt" --data "$WORK/data" --out-dir "$OUT" \
  --work "$WORK/ship" --view roi --hardware "gpu ($DEVICE)" "${SHIP_LIMIT[@]}" > "$WORK/runs/ship.log" 2>&1 || fail=1
tar -czf "$OUT/logs.tar.gz" -C "$WORK/runs" $(cd "$WORK/runs" && ls *.log)
exit $fail
