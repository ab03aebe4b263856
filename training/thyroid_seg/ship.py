"""From a checkpoint to the shipped files: ONNX FP32 export, INT8 quantization, evaluation of
PyTorch FP32 / ONNX FP32 / ONNX INT8 on val and test, and the model card.

  python -m thyroid_seg.ship --ckpt runs/improved-256-s0/best.pt --data ../data/ddti-256 \
      --out-dir ../models --name thyroid-nodule-int8

Every figure in the card is computed here, on the very file that is shipped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from .data import NEGATIVE_KINDS, load_prepared, normalize
from .export import export_onnx, load_checkpoint, onnx_logits, onnx_session, parity
from .metrics import frame_level, keep_components, largest_component, summarize
from .model import count_macs, count_params
from .quantize import calibration_frames, quantize_int8


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except Exception:  # noqa: BLE001 - a card from an exported tree without git still ships
        return None


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def choose_threshold(probs: np.ndarray, gts: np.ndarray) -> float:
    """The threshold with the best mean per-image IoU on val (never on test)."""
    grid = np.round(np.arange(0.2, 0.81, 0.05), 2)
    scores = [summarize(probs > t, gts)["meanIoU"] for t in grid]
    return float(grid[int(np.argmax(scores))])


MIN_AREA_GRID = (0, 10, 20, 40, 60, 80, 100, 120, 160, 200, 240, 320, 400, 500)


def choose_min_area(largest_pos: np.ndarray, largest_neg: np.ndarray, min_sensitivity: float,
                    max_area: int | None = None) -> int:
    """The frame rule's minimum component area (model px): the most specific one on val whose frame-level
    sensitivity stays >= min_sensitivity (the smallest area if none does), never above max_area: DDTI's
    nodules are large, and a rule that only its data supports would hide the small nodules a scan shows.
    Ties go to the higher sensitivity, then to the larger area: the stills cannot tell those apart, but in a
    scan a stray region lasts several frames, and the smaller the area the more of them the tracker sees."""
    truth = np.r_[np.ones(len(largest_pos)), np.zeros(len(largest_neg))]
    grid = sorted({a for a in MIN_AREA_GRID if max_area is None or a <= max_area} | ({max_area} if max_area else set()))
    best, best_key = MIN_AREA_GRID[0], None
    for area in grid:
        fl = frame_level(np.r_[largest_pos, largest_neg], truth, area)
        key = (fl["specificity"], fl["sensitivity"], area)
        if fl["sensitivity"] >= min_sensitivity and (best_key is None or key > best_key):
            best, best_key = area, key
    return best


def choose_rule(int8: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], y_val: np.ndarray,
                threshold: float | None, min_area: int | None, min_sensitivity: float, max_area: int
                ) -> tuple[float, int, dict[str, dict[str, np.ndarray]], bool]:
    """The frame rule the daemon applies ("a nodule is shown" = a component of >= minAreaPx at the threshold),
    chosen on val unless fixed. `int8`: per split, the INT8 probabilities of the nodule frames and of each kind
    of frame without a nodule. Returns the threshold, the area, each split's largest component per frame and
    kind, and whether val had frames without a nodule (without them the area is the daemon's old 40 px)."""
    if threshold is None:
        threshold = choose_threshold(int8["val"][0], y_val)
    largest = {split: {"nodule": np.array([largest_component(p > threshold) for p in pos]),
                       **{k: np.array([largest_component(p > threshold) for p in pn]) for k, pn in neg.items()}}
               for split, (pos, neg) in int8.items()}
    has_negatives = any(len(v) for k, v in largest["val"].items() if k != "nodule")
    if min_area is None:
        min_area = choose_min_area(largest["val"]["nodule"],
                                   np.concatenate([v for k, v in largest["val"].items() if k != "nodule"]),
                                   min_sensitivity, max_area) if has_negatives else 40
    return threshold, int(min_area), largest, has_negatives


def frame_figures(largest_by_kind: dict[str, np.ndarray], min_area: int) -> dict:
    """Sensitivity on nodule frames and specificity on each kind of frame without a nodule."""
    out: dict = {}
    for kind, lg in largest_by_kind.items():
        says = lg >= min_area
        if kind == "nodule":
            out["sensitivity"] = float(says.mean()) if len(lg) else None
            out["noduleFrames"] = int(len(lg))
        else:
            out[f"specificity_{kind}"] = float((~says).mean()) if len(lg) else None
            out[f"{kind}Frames"] = int(len(lg))
    return out


def ms_per_frame(sess: ort.InferenceSession, x: np.ndarray, reps: int = 10) -> float:
    one = x[:1].astype(np.float32)
    sess.run(["logits"], {"image": one})
    t = time.perf_counter()
    for _ in range(reps):
        sess.run(["logits"], {"image": one})
    return (time.perf_counter() - t) / reps * 1000


def open_inputs(a: argparse.Namespace):
    """The checkpoint (model, its dict) and the prepared data (with its preprocessing and size) of a run."""
    torch.set_num_threads(a.threads)
    model, ck = load_checkpoint(a.ckpt)
    ds = load_prepared(a.data)
    return model, ck, ds, ds.meta["preprocessing"], ds.meta["height"], ds.meta["width"]


def _train_summary(ckpt: Path) -> dict:
    """The train.json beside a checkpoint ({} when there is none, e.g. a soup or a returned file alone)."""
    summary = ckpt.parent / "train.json"
    return json.loads(summary.read_text()) if summary.exists() else {}


def ship(a: argparse.Namespace) -> dict:
    model, ck, ds, pp, h, w = open_inputs(a)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32_path = out_dir / f"{a.name}.fp32.onnx" if a.keep_fp32 else Path(a.work) / f"{a.name}.fp32.onnx"
    int8_path = out_dir / f"{a.name}.onnx"
    Path(a.work).mkdir(parents=True, exist_ok=True)

    export_onnx(model, fp32_path, h, w)
    xcal = normalize(calibration_frames(ds, a.calib_set, a.calib_frames), pp["mean"], pp["std"]).numpy()
    quant = quantize_int8(fp32_path, int8_path, xcal, reduce_range=a.reduce_range, method=a.calib_method,
                          keep_float=a.keep_float)
    if a.calib_set:
        quant["calibrationSet"] = a.calib_set
    s32, s8 = onnx_session(fp32_path, a.threads), onnx_session(int8_path, a.threads)

    splits = {}
    for split in ("val", "test"):
        xu8, y, ids = ds.subset(split, a.limit, (a.view,))
        if len(ids) == 0:
            raise SystemExit(f"{a.data}: split '{split}' is empty; ship needs val and test frames")
        x = normalize(xu8, pp["mean"], pp["std"])
        with torch.no_grad():
            pt = np.concatenate([model(x[i:i + 8]).numpy() for i in range(0, len(x), 8)])[:, 0]
        o32 = onnx_logits(s32, x.numpy())[:, 0]
        o8 = onnx_logits(s8, x.numpy())[:, 0]
        splits[split] = {"y": y, "probs": {"pytorch_fp32": sigmoid(pt), "onnx_fp32": sigmoid(o32), "onnx_int8": sigmoid(o8)},
                         "n": len(ids), "neg": {}}
        for kind in NEGATIVE_KINDS:  # frames without a nodule, scored with the shipped INT8 file only
            xn_u8, _, nids = ds.subset(split, a.limit, (kind,))
            if len(nids):
                splits[split]["neg"][kind] = sigmoid(onnx_logits(s8, normalize(xn_u8, pp["mean"], pp["std"]).numpy())[:, 0])

    threshold, min_area, largest, has_negatives = choose_rule(
        {split: (d["probs"]["onnx_int8"], d["neg"]) for split, d in splits.items()}, splits["val"]["y"],
        a.threshold, a.min_area, a.min_sensitivity, int(a.max_min_area_fraction * h * w))
    metrics: dict = {"threshold": threshold, "thresholdChosenOn": "val" if a.threshold is None else "fixed"}
    for split, d in splits.items():
        metrics[split] = {k: summarize(p > threshold, d["y"]) for k, p in d["probs"].items()}
    decision = {"threshold": threshold, "minAreaPx": int(min_area),
                "rule": "a frame shows a nodule when a component of the mask (probability > threshold, "
                        "8-connected, model pixels) has at least minAreaPx pixels; smaller ones are dropped",
                "chosenOn": "val" if a.min_area is None and has_negatives else "fixed",
                "minSensitivityOnVal": a.min_sensitivity,
                "maxMinAreaPx": int(a.max_min_area_fraction * h * w)}
    metrics["frameLevel"] = {split: frame_figures(lg, min_area) for split, lg in largest.items()}
    # the masks as the daemon publishes them (specks below minAreaPx removed), nodule frames
    metrics["served"] = {split: summarize([keep_components(p > threshold, min_area) for p in d["probs"]["onnx_int8"]],
                                          d["y"]) for split, d in splits.items()}
    # both views of the nodule frames with the shipped INT8 file: the whole screen (as DDTI stores it) and
    # the imaging area alone (as a calibrated box feeds the model)
    metrics["view"] = a.view
    metrics["views"] = {}
    for view in ("nodule", "roi"):
        for split in ("val", "test"):
            xu8, y, ids = ds.subset(split, a.limit, (view,))
            if len(ids):
                p8 = sigmoid(onnx_logits(s8, normalize(xu8, pp["mean"], pp["std"]).numpy())[:, 0])
                metrics["views"].setdefault({"nodule": "wholeScreen", "roi": "imagingArea"}[view], {})[split] = {
                    **summarize(p8 > threshold, y),
                    "frameSensitivity": float(np.mean([largest_component(p > threshold) >= min_area for p in p8]))}
    xpar = normalize(ds.subset("val", 4)[0], pp["mean"], pp["std"]).numpy()
    metrics["parity"] = {"maxAbsLogitDiffPytorchVsOnnxFp32": parity(model, s32, xpar)}
    metrics["int8MinusFp32TestMeanIoU"] = (metrics["test"]["onnx_int8"]["meanIoU"]
                                           - metrics["test"]["onnx_fp32"]["meanIoU"])
    metrics["cpuMsPerFrame"] = {"onnx_fp32": ms_per_frame(s32, xpar), "onnx_int8": ms_per_frame(s8, xpar),
                                "threads": a.threads, "note": "python onnxruntime on the machine that ran ship"}

    train_info = _train_summary(Path(a.ckpt))
    card = {
        "schemaVersion": 1,
        "name": a.name,
        "file": int8_path.name,
        "sha256": sha256(int8_path),
        "fileBytes": int8_path.stat().st_size,
        "precision": "int8",
        "architecture": {
            **ck["config"],
            "params": count_params(model),
            "gmacsAt512": round(count_macs(model, 512) / 1e9, 3),
            "gmacsAtInput": round(count_macs(model, h) / 1e9, 3) if h == w else None,
            "fp32OnnxBytes": fp32_path.stat().st_size,
        },
        "input": {"name": "image", "dtype": "float32", "shape": [None, 1, h, w]},
        "output": {"name": "logits", "dtype": "float32", "shape": [None, 1, h, w]},
        "preprocessing": pp,
        "threshold": threshold,
        "decision": decision,
        "quantization": quant,
        "metrics": metrics,
        "dataset": {**{k: ds.meta[k] for k in ("source", "sourceSha256", "splitSha256", "width", "height")},
                    "frames": {s: splits[s]["n"] for s in splits}, "preparedBy": ds.meta.get("preparedBy")},
        "training": {
            "command": train_info.get("command"),
            "initFrom": ({"checkpoint": train_info["initFrom"]["checkpoint"], "epoch": train_info["initFrom"]["epoch"],
                          "valIoU": train_info["initFrom"]["valIoU"],
                          "command": (train_info["initFrom"].get("run") or {}).get("command"),
                          "epochsRun": (train_info["initFrom"].get("run") or {}).get("epochsRun"),
                          "seconds": (train_info["initFrom"].get("run") or {}).get("seconds")}
                         if train_info.get("initFrom") else None),
            "bestEpoch": ck.get("epoch"),
            "bestValIoU": ck.get("valIoU"),
            "epochsRun": train_info.get("epochsRun"),
            "stoppedByTimeBudgetAfterEpoch": train_info.get("stoppedByTimeBudgetAfterEpoch"),
            "seconds": train_info.get("seconds"),
            "seed": train_info.get("args", {}).get("seed"),
            "pretrained": train_info.get("pretrained"),
            "negatives": train_info.get("negatives"),
            "hardware": a.hardware,
            # a model soup (soup.py): its ingredients, each with the command that trained it
            "soup": ([{**ing, "command": _train_summary(Path(ing["checkpoint"])).get("command")}
                      for ing in ck["soup"]] if ck.get("soup") else None),
            "soupCommand": ck.get("soupCommand"),
        },
        "shipCommand": "python -m thyroid_seg.ship " + " ".join(shlex.quote(x) for x in a.argv),
        "gitCommit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
    }
    card_path = out_dir / f"{a.name}.json"
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return card


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--name", default="thyroid-nodule-int8")
    p.add_argument("--work", default="runs/ship-work", help="where the FP32 ONNX goes unless --keep-fp32")
    p.add_argument("--keep-fp32", action="store_true", help="also write <name>.fp32.onnx next to the INT8 file")
    p.add_argument("--calib-frames", type=int, default=64)
    p.add_argument("--calib-set", default=None,
                   help="train frames for calibration by kind, e.g. 'roi=64,tissue+notissue=32' (random, seed 0); "
                        "default: the first --calib-frames whole screens and a quarter as many negatives")
    p.add_argument("--calib-method", choices=["minmax", "entropy", "percentile"], default="minmax")
    p.add_argument("--no-reduce-range", dest="reduce_range", action="store_false")
    p.add_argument("--keep-float", nargs="*", default=[], help="node names to leave in float (justify in README)")
    p.add_argument("--threshold", type=float, default=None, help="fixed threshold; default: best on val")
    p.add_argument("--limit", type=int, default=None, help="at most n frames per split (tests)")
    p.add_argument("--view", choices=["nodule", "roi"], default="nodule",
                   help="nodule frames as the whole screen (nodule) or cropped to the imaging area (roi) for the headline figures, threshold and rule")
    p.add_argument("--min-area", type=int, default=None, help="fixed frame-rule min area; default: chosen on val")
    p.add_argument("--max-min-area-fraction", type=float, default=0.003,
                   help="the rule's min area is at most this fraction of the frame (a nodule of 0.3 %% of the imaging "
                        "area must be reportable)")
    p.add_argument("--min-sensitivity", type=float, default=0.95,
                   help="the min area is the most specific one on val that keeps this frame-level sensitivity")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hardware", default="cpu (2 cores)")
    a = p.parse_args(argv)
    a.argv = argv
    return a


if __name__ == "__main__":
    c = ship(parse_args(sys.argv[1:]))
    m = c["metrics"]
    print(json.dumps({"file": c["file"], "bytes": c["fileBytes"], "threshold": c["threshold"],
                      "decision": c["decision"], "frameLevel": m["frameLevel"],
                      "test": {k: round(v["meanIoU"], 4) for k, v in m["test"].items()},
                      "val": {k: round(v["meanIoU"], 4) for k, v in m["val"].items()}}, indent=1))
