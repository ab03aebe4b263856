"""Choose the INT8 calibration on val: quantize one checkpoint several ways and score each INT8 file on val
only (test is never read here), with the same rule choice as ship.py. The chosen calibration is then passed
to ship.py (--calib-method, --calib-set), which writes the test figures of that one file.

  python -m thyroid_seg.calib_search --ckpt runs/gpu-final-s1/best.pt --data ../data/ddti-256-spk --view roi \
      --candidates minmax:legacy percentile:legacy minmax:roi=64,tissue+notissue=16 --out runs/calib-search.json

Memory: onnxruntime (1.23) keeps every activation of every calibration frame for the histogram methods
(percentile, entropy): about 80 frames at 256 px fit in 23 GB, 192 did not.

A candidate is METHOD:SET, METHOD one of minmax/entropy/percentile and SET a --calib-set spec or 'legacy'
(v1-v3's set: the first 64 whole screens and 16 frames without a nodule). Append ':full' to quantize
without reduce_range (8-bit weights; see quantize.py on x86 CPUs without VNNI).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .data import NEGATIVE_KINDS, normalize
from .export import export_onnx, onnx_logits, onnx_session
from .metrics import keep_components, summarize
from .quantize import calibration_frames, quantize_int8
from .ship import choose_rule, choose_threshold, frame_figures, open_inputs, sigmoid


def parse_candidate(text: str) -> dict:
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[0] not in ("minmax", "entropy", "percentile") or \
            (len(parts) == 3 and parts[2] != "full"):
        raise ValueError(f"candidate '{text}': expected METHOD:SET[:full], METHOD minmax/entropy/percentile")
    return {"name": text, "method": parts[0], "set": None if parts[1] == "legacy" else parts[1],
            "reduceRange": len(parts) == 2}


def search(a: argparse.Namespace) -> dict:
    model, _, ds, pp, h, w = open_inputs(a)
    candidates = [parse_candidate(c) for c in a.candidates]
    x_val_u8, y_val, _ = ds.subset("val", a.limit, (a.view,))
    if not len(y_val):
        raise SystemExit(f"{a.data}: no val frames of kind {a.view}")
    x_val = normalize(x_val_u8, pp["mean"], pp["std"]).numpy()
    x_neg = {k: normalize(ds.subset("val", a.limit, (k,))[0], pp["mean"], pp["std"]).numpy() for k in NEGATIVE_KINDS}
    x_neg = {k: v for k, v in x_neg.items() if len(v)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, h, w)
        p32 = sigmoid(onnx_logits(onnx_session(fp32, a.threads), x_val)[:, 0])
        t32 = choose_threshold(p32, y_val)
        fp32_iou = summarize(p32 > t32, y_val)["meanIoU"]
        for c in candidates:
            t0 = time.perf_counter()
            int8 = Path(tmp) / "int8.onnx"
            xcal = normalize(calibration_frames(ds, c["set"], a.calib_frames), pp["mean"], pp["std"]).numpy()
            quantize_int8(fp32, int8, xcal, reduce_range=c["reduceRange"], method=c["method"])
            s8 = onnx_session(int8, a.threads)
            p8 = sigmoid(onnx_logits(s8, x_val)[:, 0])
            neg = {k: sigmoid(onnx_logits(s8, v)[:, 0]) for k, v in x_neg.items()}
            thr, area, largest, _ = choose_rule({"val": (p8, neg)}, y_val, None, None, a.min_sensitivity,
                                                int(a.max_min_area_fraction * h * w))
            rows.append({**c, "calibrationFrames": int(len(xcal)), "threshold": thr, "minAreaPx": area,
                         "valMeanIoU": summarize(p8 > thr, y_val)["meanIoU"],
                         "valServedMeanIoU": summarize([keep_components(p > thr, area) for p in p8], y_val)["meanIoU"],
                         **frame_figures(largest["val"], area), "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps({k: rows[-1].get(k) for k in ("name", "valMeanIoU", "threshold", "minAreaPx", "sensitivity", "specificity_tissue", "specificity_notissue")}), flush=True)
    best = max(rows, key=lambda r: (round(r["valMeanIoU"], 4), r.get("specificity_tissue") or 0))
    return {"ckpt": a.ckpt, "data": a.data, "view": a.view, "valFrames": int(len(y_val)),
            "fp32": {"threshold": t32, "valMeanIoU": fp32_iou}, "candidates": rows, "chosen": best["name"],
            "rule": "the highest val mean IoU of the INT8 file (imaging area, threshold chosen on val); "
                    "ties go to the higher val specificity on tissue without a nodule"}


def markdown(result: dict) -> str:
    lines = [f"FP32 val mean IoU {result['fp32']['valMeanIoU']:.4f} (threshold {result['fp32']['threshold']}), "
             f"{result['valFrames']} val frames ({result['view']}); chosen: `{result['chosen']}`", "",
             "| calibration (method:set) | frames | val mean IoU INT8 | served | threshold | min px | "
             "frame sens. | spec. tissue | spec. no tissue |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["candidates"]:
        lines.append(f"| `{r['name']}` | {r['calibrationFrames']} | {r['valMeanIoU']:.4f} | {r['valServedMeanIoU']:.4f} | "
                     f"{r['threshold']} | {r['minAreaPx']} | {r['sensitivity']:.3f} | "
                     f"{(r.get('specificity_tissue') or float('nan')):.3f} | "
                     f"{(r.get('specificity_notissue') or float('nan')):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--view", choices=["nodule", "roi"], default="roi")
    p.add_argument("--candidates", nargs="+", required=True, help="METHOD:SET[:full]")
    p.add_argument("--calib-frames", type=int, default=64, help="for the 'legacy' set")
    p.add_argument("--min-sensitivity", type=float, default=0.95)
    p.add_argument("--max-min-area-fraction", type=float, default=0.003)
    p.add_argument("--limit", type=int, default=None, help="at most n val frames per kind (tests)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    a = p.parse_args(argv)
    result = search(a)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
