"""Losses: Tversky (alpha weighs false positives, beta false negatives) and BCE for the ablation."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.3, beta: float = 0.7,
                 eps: float = 1.0) -> torch.Tensor:
    """1 - TP / (TP + alpha*FP + beta*FN), soft, summed over the batch.

    beta > alpha punishes missed nodule pixels harder than false alarms (nodules are small).
    eps smooths the ratio so an empty target with an empty prediction scores 1.
    """
    p = torch.sigmoid(logits).flatten()
    t = target.float().flatten()
    tp = (p * t).sum()
    fp = (p * (1 - t)).sum()
    fn = ((1 - p) * t).sum()
    return 1 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target.float())


def tversky_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Tversky (overlap, nodule-size independent) + BCE (per pixel): well defined on frames without a
    nodule, where Tversky alone only sees the batch's other frames."""
    return tversky_loss(logits, target) + bce_loss(logits, target)


def make_loss(name: str):
    if name == "tversky":
        return tversky_loss
    if name == "bce":
        return bce_loss
    if name == "tversky+bce":
        return tversky_bce_loss
    raise ValueError(f"unknown loss {name!r} (tversky|bce|tversky+bce)")
