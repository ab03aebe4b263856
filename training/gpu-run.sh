#!/usr/bin/env bash
# One call on a lent GPU machine: the final recipe x 3 seeds, the baseline and the ablations, trained in
# parallel on the one GPU, each annealed over the same wall-clock budget (--schedule cosine-time).
# Shipping (export, INT8, test figures) happens back on the CPU machine, where test lives; so what comes
# back under $OUT (at most 8 files, 16 MiB each) is:
#   <run>.pt for the final seeds, the baseline and the no-respeckle ablation (best on val), runs.json
#   (every run's train.json), logs.tar.gz
# When the pack holds pretrained.pt (gpu_pack pack --pretrained: the TG3K gland pretraining, made on CPU), the
# final seeds start from it and abl-imagenet-s0 (ImageNet encoder only) is the ablation row that comes back.
#
# Before the call, here (CPU machine, repo root):
#   npm run prepare-data -- --data ../shared/datasets/ddti --spec training/preprocessing-256-tiles-imagenet.json \
#       --out data/ddti-256-spk --negatives tissue=3,notissue=1,nodulecrops=1,roi=1,speckle=1,seed=0
#   (cd training && .venv/bin/python -m thyroid_seg.gpu_pack pack --data ../data/ddti-256-spk --splits train,val --skip val:nodule \
#       --tflite ../../shared/pretrained/coral-mobilenet-v2/tf2_mobilenet_v2_1.0_224_ptq.tflite \
#       [--pretrained runs/tg3k256-pre/best.pt] --out ../data/gpu-pack)
#   (the TG3K pretraining: training/README.md, "TG3K as pretraining"; with it the pack is 65.3 MB of the 64 MiB)
# The call (device tool): command "BUDGET_MIN=6.3 HARD_STOP_S=470 bash training/gpu-run.sh", carry ["data/gpu-pack"],
# timeout_s 540 (the pack and the repository together must stay under 64 MiB).
# Afterwards, here: python -m thyroid_seg.gpu_pack place --from <files_at> (runs/gpu-<run>/), then ship.py.
# Small check on CPU: DEVICE=cpu SMALL=1 OUT=/tmp/gpu-out bash training/gpu-run.sh
# SET=design: a call of its own for the design's ablations (the reference and five switches; summaries only).
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:?set OUT to the folder that comes back}
DEVICE=${DEVICE:-cuda}
BUDGET_MIN=${BUDGET_MIN:-6.5}
PY=${PY:-python3}
[ -x .venv/bin/python ] && [ "$DEVICE" = cpu ] && PY=.venv/bin/python
WORK=${WORK:-/tmp/thyroid-gpu-run}
rm -rf "$WORK" && mkdir -p "$WORK/runs" "$OUT"
$PY -m thyroid_seg.gpu_pack unpack --pack ../data/gpu-pack --out "$WORK/data"
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if [ "${SMALL:-}" = 1 ]; then
  SIZE=(--epoch-size 16 --limit-val 8 --batch 4); BUDGET_MIN=${SMALL_BUDGET_MIN:-0.3}
else
  SIZE=(--epoch-size 640 --batch 16)
fi
# --epochs is only a ceiling: the budget ends every run
RECIPE=(--negatives --val-kind roi --loss tversky+bce --gain 0.2 --lr 5e-4 --schedule cosine-time --epochs 1000
        --bf16 --time-budget-min "$BUDGET_MIN" --device "$DEVICE" --threads 1 --quiet)
INIT=(--init-tflite ../data/gpu-pack/encoder.pt)
FINAL_INIT=("${INIT[@]}")
KEEP=final-,baseline-,abl-no-respeckle-
PRETRAINED=$([ -f ../data/gpu-pack/pretrained.pt ] && echo 1 || true)
if [ -n "$PRETRAINED" ]; then
  FINAL_INIT=(--init-from ../data/gpu-pack/pretrained.pt); KEEP=$KEEP,abl-imagenet-
fi

PIDS=()
run() { # name, extra args...
  local name=$1; shift
  $PY -m thyroid_seg.train --data "$WORK/data" --out "$WORK/runs/$name" "${SIZE[@]}" "$@" > "$WORK/runs/$name.log" 2>&1 &
  PIDS+=($!)
}
design_ablations() { # the design's switches, one at a time, on the ImageNet-init recipe
  run abl-tversky-only-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --loss tversky
  run abl-no-ppm-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --no-ppm
  run abl-no-attention-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --no-attention
  run abl-no-skips-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --no-skips
  run abl-plain-aspp-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --aspp plain
}
if [ "${SET:-final}" = design ]; then
  # a call of its own: the reference (ImageNet init, all switches on) beside the switches, on the same budget;
  # only their summaries come back
  KEEP=none
  run ref-imagenet-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0
  design_ablations
else
  for s in 0 1 2; do run "final-s$s" "${RECIPE[@]}" "${FINAL_INIT[@]}" --seed "$s"; done
  run baseline-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0 --arch deeplabv3plus
  run abl-no-respeckle-s0 "${RECIPE[@]}" "${FINAL_INIT[@]}" --seed 0 --no-respeckled
  [ -n "$PRETRAINED" ] && run abl-imagenet-s0 "${RECIPE[@]}" "${INIT[@]}" --seed 0
  [ "${SMALL:-}" != 1 ] && run abl-scratch-s0 "${RECIPE[@]}" --seed 0
  [ "${ABLATIONS:-}" = all ] && design_ablations
fi
# HARD_STOP_S: seconds after which runs still going are stopped, so that their val-best checkpoints still come
# back inside the call's limit (a run stopped so has no train.json; collect and place take its best.pt alone)
STOPPER=
if [ -n "${HARD_STOP_S:-}" ]; then
  (sleep "$HARD_STOP_S"; echo "hard stop after ${HARD_STOP_S} s"; kill "${PIDS[@]}" 2>/dev/null) & STOPPER=$!
fi
fail=0
for pid in "${PIDS[@]}"; do wait "$pid" || fail=1; done
[ -n "$STOPPER" ] && kill "$STOPPER" 2>/dev/null || true

# every run's summary in one file, and the checkpoints that are shipped or compared back here
$PY -m thyroid_seg.gpu_pack collect --runs "$WORK/runs" --out "$OUT" --keep "$KEEP"
tar -czf "$OUT/logs.tar.gz" -C "$WORK/runs" $(cd "$WORK/runs" && ls *.log)
ls -la "$OUT"
exit $fail
