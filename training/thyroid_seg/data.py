"""Prepared datasets (made by the daemon's own preprocessing, src/tools/prepare-dataset.ts) and augmentation."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Prepared:
    images: np.ndarray  # [N,H,W] uint8, preprocessed grey levels
    masks: np.ndarray   # [N,H,W] uint8 in {0,1}
    ids: list[str]
    splits: list[str]
    meta: dict
    # 'nodule' (the dataset's frames), 'roi' (cropped to the imaging area), 'nodulecrop', 'viewcrop', 'tissue',
    # 'notissue'
    kinds: list[str] = None

    def __post_init__(self) -> None:
        if self.kinds is None:
            self.kinds = ["nodule"] * len(self.ids)

    def subset(self, split: str, limit: int | None = None,
               kinds: tuple[str, ...] = ("nodule",)) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Rows of one split and kinds (by default the dataset's own frames, as before negatives existed)."""
        idx = [i for i, s in enumerate(self.splits) if s == split and self.kinds[i] in kinds]
        if limit:
            idx = idx[:limit]
        return self.images[idx], self.masks[idx], [self.ids[i] for i in idx]

    def kinds_of(self, ids: list[str]) -> list[str]:
        k = dict(zip(self.ids, self.kinds))
        return [k[i] for i in ids]


def load_prepared(folder: str | Path) -> Prepared:
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    h, w = meta["height"], meta["width"]
    n = len(meta["rows"])
    images = np.fromfile(folder / "images.u8", dtype=np.uint8).reshape(n, h, w)
    masks = np.fromfile(folder / "masks.u8", dtype=np.uint8).reshape(n, h, w)
    return Prepared(images, masks, [r["id"] for r in meta["rows"]], [r["split"] for r in meta["rows"]], meta,
                    [r.get("kind", "nodule") for r in meta["rows"]])


NEGATIVE_KINDS = ("tissue", "notissue")
# viewcrop: a zoomed-in view that may cut the nodule at its edge (prepare-dataset viewcrops=N, train only)
ALL_KINDS = ("nodule", "roi", "nodulecrop", "viewcrop") + NEGATIVE_KINDS


def normalize(images_u8: np.ndarray | torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [N,H,W] -> float32 [N,1,H,W], the same arithmetic as src/inference/preprocess.ts."""
    x = torch.as_tensor(np.asarray(images_u8)).float()
    return ((x / 255.0 - mean) / std).unsqueeze(1)


def augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, max_rot_deg: float = 5.0,
            hflip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flip and rotation within +-max_rot_deg, the same warp for image and mask.

    Vertical flips are left out on purpose: depth runs top to bottom in B-mode and never flips.
    """
    n = x.shape[0]
    if hflip:
        flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None, None], y.flip(-1), y)
    if max_rot_deg > 0:
        ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(max_rot_deg)
        cos, sin = torch.cos(ang), torch.sin(ang)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
        # random numbers come from the CPU generator (same draws on any device); the warp runs where x is
        grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
        # pad with the image's darkest value (normalised 0 grey), as outside the sector
        fill = x.amin()
        x = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
        y = F.grid_sample(y, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, y


def gain_gamma(x: torch.Tensor, gen: torch.Generator, mean: float, std: float, strength: float = 0.2) -> torch.Tensor:
    """Random gain and gamma on the grey levels (the sonographer's gain knob), then normalised again."""
    if strength <= 0:
        return x
    n = x.shape[0]
    g = (x * std + mean).clamp(0, 1)
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * strength).to(x.device)
    gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1).to(x.device) * strength
    return ((g.pow(gamma) * gain).clamp(0, 1) - mean) / std
