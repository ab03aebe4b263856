"""Score a shipped ONNX file with its card on a prepared dataset, as the daemon would serve it:
nodule frames in both views (whole screen, imaging area) and frame-level figures on frames without a
nodule, with the card's threshold and decision rule (40 px for cards older than the rule).

  python -m thyroid_seg.evaluate --card ../models/thyroid-nodule-int8.json --data ../data/ddti-256-neg [--split test]
      [--by-size]   # also the nodule frames binned by the nodule's share of the frame (metrics.by_size)
  python -m thyroid_seg.evaluate --card ... --data ../data/tg3k-256 --split val --shown-regions [--every 3]
      # a dataset whose masks are not nodules (TG3K: whole glands): on how many frames the daemon would show a
      # nodule, and how much of what it shows lies inside the dataset's mask

Used to compare an older model with a new one on the same frames (the prepared bytes do not depend on the
card's mean/std, which are applied here from each card).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .data import NEGATIVE_KINDS, load_prepared, normalize
from .export import onnx_logits, onnx_session
from .metrics import by_size, keep_components, largest_component, summarize

LEGACY_MIN_AREA_PX = 40  # src/inference/frame-processor.ts: the daemon's rule for cards without `decision`


def _served(card_path: Path, data: Path, threads: int):
    """The card, its ONNX session, the prepared dataset (checked to match the card's preprocessing) and the
    daemon's rule: threshold and minimum component area."""
    card = json.loads(card_path.read_text())
    sess = onnx_session(card_path.parent / card["file"], threads)
    ds = load_prepared(data)
    pp = card["preprocessing"]
    for k in ("width", "height", "resizeKernel", "gaussianSigma", "clahe"):
        if ds.meta["preprocessing"][k] != pp[k]:
            raise SystemExit(f"{data} was prepared with {k}={ds.meta['preprocessing'][k]}, the card says {pp[k]}")
    min_area = (card.get("decision") or {}).get("minAreaPx", LEGACY_MIN_AREA_PX)
    return card, sess, ds, card["threshold"], min_area


def _probabilities(sess, xu8: np.ndarray, pp: dict, chunk: int = 128):
    """Nodule probabilities per frame, `chunk` frames at a time (a whole TG3K split in float would take GBs)."""
    for i in range(0, len(xu8), chunk):
        yield 1 / (1 + np.exp(-onnx_logits(sess, normalize(xu8[i:i + chunk], pp["mean"], pp["std"]).numpy())[:, 0]))


def evaluate(card_path: Path, data: Path, splits: tuple[str, ...], threads: int = 2, sizes: bool = False) -> dict:
    card, sess, ds, thr, min_area = _served(card_path, data, threads)
    pp = card["preprocessing"]
    out: dict = {"model": card["file"], "sha256": card["sha256"], "threshold": thr, "minAreaPx": min_area, "splits": {}}
    for split in splits:
        res: dict = {}
        for kind in ("nodule", "roi") + NEGATIVE_KINDS:
            xu8, y, ids = ds.subset(split, None, (kind,))
            if not len(ids):
                continue
            probs = np.concatenate(list(_probabilities(sess, xu8, pp)))
            says = np.array([largest_component(p > thr) >= min_area for p in probs])
            if kind in ("nodule", "roi"):
                served = [keep_components(p > thr, min_area) for p in probs]
                res[kind] = {"frames": len(ids), "meanIoU": summarize(probs > thr, y)["meanIoU"],
                             "servedMeanIoU": summarize(served, y)["meanIoU"], "frameSensitivity": float(says.mean())}
                if sizes:
                    res[kind]["servedBySize"] = by_size(served, y)
            else:
                res[kind] = {"frames": len(ids), "frameSpecificity": float((~says).mean())}
        out["splits"][split] = res
    return out


def shown_regions(card_path: Path, data: Path, split: str, every: int = 1, threads: int = 2) -> dict:
    """Frames of a dataset whose masks mark something else than nodules (TG3K's glands, which DDTI's negatives
    never show whole): the share of frames on which the daemon's rule shows a nodule, and for those frames the
    share of the shown pixels inside the dataset's mask. Frames may hold nodules the dataset does not mark."""
    card, sess, ds, thr, min_area = _served(card_path, data, threads)
    xu8, y, ids = ds.subset(split, None, tuple(sorted(set(ds.kinds))))
    xu8, y, ids = xu8[::every], y[::every], ids[::every]
    if not len(ids):
        raise SystemExit(f"{data} has no {split} frames")
    inside = []
    masks = iter(y)
    for probs in _probabilities(sess, xu8, card["preprocessing"]):
        for p, m in zip(probs, masks):
            shown = keep_components(p > thr, min_area)
            if shown.sum():
                inside.append(float((shown & (m > 0)).sum() / shown.sum()))
    return {"model": card["file"], "sha256": card["sha256"], "split": split, "frames": len(ids), "every": every,
            "framesShown": len(inside), "shareShown": len(inside) / len(ids),
            "medianShareInsideMask": float(np.median(inside)) if inside else None}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--card", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--split", action="append", choices=["train", "val", "test"],
                   help="default: val and test (train: e.g. TG3K frames that the shipped model never saw)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--by-size", action="store_true", help="nodule frames binned by the nodule's share of the frame")
    p.add_argument("--shown-regions", action="store_true",
                   help="masks that are not nodules (e.g. TG3K glands): frames shown a nodule, and where (one --split)")
    p.add_argument("--every", type=int, default=1, help="with --shown-regions: every k-th frame")
    a = p.parse_args(argv)
    if a.shown_regions:
        print(json.dumps(shown_regions(a.card, a.data, (a.split or ["val"])[0], a.every, a.threads), indent=1))
        return
    print(json.dumps(evaluate(a.card, a.data, tuple(a.split or ("val", "test")), a.threads, a.by_size), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
