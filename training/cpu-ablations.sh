#!/usr/bin/env bash
# The design's ablation rows at reduced size on this CPU (issue 11, item 6), for when no GPU is lent:
# 128 px, the v3 recipe, a fixed number of epochs (a cosine schedule over epochs, not wall clock, so that the
# other work sharing these cores changes only how long a row takes, not what it learns), one seed, one row at
# a time on one thread. Each row differs from `ref` by one thing. Rows already trained are skipped.
#
# Before (repo root):
#   npm run prepare-data -- --data ../shared/datasets/ddti --spec training/preprocessing-128-tiles.json \
#       --out data/ddti-128-spk --negatives tissue=3,notissue=1,nodulecrops=1,roi=1,speckle=1,seed=0
# Run:    bash training/cpu-ablations.sh               (ROWS="ref no-ppm" to pick rows; EPOCHS, SEED, PREFIX)
# Table:  (cd training && .venv/bin/python -m thyroid_seg.report --runs runs/abl128-*-s0/train.json)
# Small check: EPOCHS=1 SMALL=1 PREFIX=/tmp/abl-small bash training/cpu-ablations.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-.venv/bin/python}
EPOCHS=${EPOCHS:-12}
SEED=${SEED:-0}
PREFIX=${PREFIX:-runs/abl128}
DATA=${DATA:-../data/ddti-128-spk}
PRE=${PRETRAINED_DIR:-../../shared/pretrained/coral-mobilenet-v2}
IMAGENET=(--init-tflite "$PRE/tf2_mobilenet_v2_1.0_224_ptq.tflite")
PASCAL=(--init-tflite "$PRE/deeplabv3_mnv2_pascal_quant.tflite")
ROWS=${ROWS:-"ref tversky-only pascal no-ppm no-attention no-skips plain-aspp"}
[ -f "$DATA/meta.json" ] || { echo "cpu-ablations: $DATA is missing; prepare it first (see the header)" >&2; exit 2; }

if [ "${SMALL:-}" = 1 ]; then SIZE=(--epoch-size 16 --limit-val 8 --batch 4); else SIZE=(--epoch-size 640 --batch 16); fi
RECIPE=(--data "$DATA" --negatives --val-kind roi --gain 0.2 --lr 5e-4 --schedule cosine --epochs "$EPOCHS"
        --bf16 --threads 1 --quiet --seed "$SEED" "${SIZE[@]}")

for row in $ROWS; do
  case $row in # the one thing each row changes against ref
    ref)          args=(--loss tversky+bce "${IMAGENET[@]}") ;;
    tversky-only) args=(--loss tversky "${IMAGENET[@]}") ;;
    pascal)       args=(--loss tversky+bce "${PASCAL[@]}") ;;
    no-ppm)       args=(--loss tversky+bce "${IMAGENET[@]}" --no-ppm) ;;
    no-attention) args=(--loss tversky+bce "${IMAGENET[@]}" --no-attention) ;;
    no-skips)     args=(--loss tversky+bce "${IMAGENET[@]}" --no-skips) ;;
    plain-aspp)   args=(--loss tversky+bce "${IMAGENET[@]}" --aspp plain) ;;
    *) echo "cpu-ablations: unknown row $row" >&2; exit 2 ;;
  esac
  out="$PREFIX-$row-s$SEED"
  if [ -f "$out/train.json" ]; then echo "skip $row ($out/train.json exists)"; continue; fi
  echo "$(date -u +%H:%M:%S) $row -> $out"
  $PY -m thyroid_seg.train --out "$out" "${RECIPE[@]}" "${args[@]}"
done
