"""Segmentation metrics on binary masks (numpy), per image and pooled over a set."""
from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    p = pred.astype(bool)
    g = gt.astype(bool)
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    tn = int(p.size - tp - fp - fn)
    return tp, fp, fn, tn


def iou(tp: int, fp: int, fn: int) -> float:
    denom = tp + fp + fn
    return 1.0 if denom == 0 else tp / denom  # both empty: a perfect answer


def dice(tp: int, fp: int, fn: int) -> float:
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


def summarize(preds: list[np.ndarray] | np.ndarray, gts: list[np.ndarray] | np.ndarray) -> dict[str, float]:
    """Mean per-image IoU/Dice, pooled IoU/Dice, sensitivity, specificity and pixel accuracy."""
    per_iou, per_dice = [], []
    TP = FP = FN = TN = 0
    for p, g in zip(preds, gts):
        tp, fp, fn, tn = confusion(p, g)
        per_iou.append(iou(tp, fp, fn))
        per_dice.append(dice(tp, fp, fn))
        TP += tp; FP += fp; FN += fn; TN += tn
    n = len(per_iou)
    return {
        "images": n,
        "meanIoU": float(np.mean(per_iou)) if n else 0.0,
        "meanDice": float(np.mean(per_dice)) if n else 0.0,
        "pooledIoU": iou(TP, FP, FN),
        "pooledDice": dice(TP, FP, FN),
        "sensitivity": TP / (TP + FN) if TP + FN else 1.0,
        "specificity": TN / (TN + FP) if TN + FP else 1.0,
        "pixelAccuracy": (TP + TN) / max(TP + TN + FP + FN, 1),
    }


SIZE_EDGES = (0.0, 0.04, 0.08, 0.12, 0.2, 1.0)


def by_size(preds: list[np.ndarray] | np.ndarray, gts: list[np.ndarray] | np.ndarray,
            edges: tuple[float, ...] = SIZE_EDGES) -> list[dict[str, float]]:
    """Nodule frames binned by the true nodule's share of the frame: per bin the frames, mean IoU, and the
    median of predicted over true area (above 1: outlined too wide). Shows where a model's IoU comes from,
    e.g. whether it outlines small nodules too wide."""
    rows = []
    fractions = np.array([float(np.mean(g > 0)) for g in gts])
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [i for i, f in enumerate(fractions) if lo <= f < hi or (hi == edges[-1] and f == hi)]
        ious = [iou(*confusion(preds[i], gts[i])[:3]) for i in sel]
        ratio = [float(np.sum(preds[i] > 0)) / max(float(np.sum(gts[i] > 0)), 1.0) for i in sel]
        rows.append({"areaFrom": lo, "areaTo": hi, "frames": len(sel),
                     "meanIoU": float(np.mean(ious)) if sel else float("nan"),
                     "medianAreaRatio": float(np.median(ratio)) if sel else float("nan")})
    return rows


def largest_component(pred: np.ndarray) -> int:
    """Pixels of the largest 8-connected component of a binary mask (the daemon's components)."""
    from scipy import ndimage

    labels, n = ndimage.label(pred, structure=np.ones((3, 3), bool))
    return int(np.bincount(labels.ravel())[1:].max()) if n else 0


def keep_components(pred: np.ndarray, min_area: int) -> np.ndarray:
    """The mask with components smaller than min_area removed, as src/inference/postprocess.ts does."""
    from scipy import ndimage

    labels, n = ndimage.label(pred, structure=np.ones((3, 3), bool))
    if not n:
        return pred.astype(bool)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_area
    keep[0] = False
    return keep[labels]


def frame_level(largest: np.ndarray, has_nodule: np.ndarray, min_area: int) -> dict[str, float]:
    """Frame decision "a nodule is shown" = a component of at least min_area pixels.

    `largest`: the largest component per frame (pixels); `has_nodule`: the truth per frame.
    """
    says = largest >= min_area
    pos, neg = has_nodule.astype(bool), ~has_nodule.astype(bool)
    return {
        "frames": int(len(says)),
        "sensitivity": float(says[pos].mean()) if pos.any() else float("nan"),
        "specificity": float((~says[neg]).mean()) if neg.any() else float("nan"),
    }
