import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = {"width": 128, "height": 128, "resizeKernel": "linear", "gaussianSigma": 1.0,
        "clahe": {"tileWidth": 16, "tileHeight": 16, "maxSlope": 3}, "mean": 0.5, "std": 0.25}


def write_prepared(folder: Path, n_train: int = 4, n_val: int = 2, size: int = 128, seed: int = 0, n_test: int = 2,
                   negatives: int = 0) -> Path:
    """A small prepared dataset in the format of src/tools/prepare-dataset.ts: dark ellipses on speckle.

    With `negatives`, each split also gets that many frames of each kind without a nodule (speckle alone,
    "tissue"; dark noise, "notissue"), after the dataset's own rows, as prepare-dataset --negatives writes them.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.zeros((n, size, size), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        ry, rx = rng.uniform(0.1, 0.2, 2) * size
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        img = rng.normal(150, 25, (size, size))
        img[m] = rng.normal(60, 15, m.sum())
        images[i] = np.clip(img, 0, 255)
        masks[i] = m
    rows = [{"id": f"s{i}", "split": "train" if i < n_train else "val" if i < n_train + n_val else "test"}
            for i in range(n)]
    extra_img, extra_rows = [], []
    for split in ("train", "val", "test"):
        for k in range(negatives):
            extra_img.append(np.clip(rng.normal(150, 25, (size, size)), 0, 255).astype(np.uint8))
            extra_rows.append({"id": f"{split}-t{k}", "split": split, "kind": "tissue", "source": "s0"})
            extra_img.append(np.clip(rng.normal(12, 6, (size, size)), 0, 255).astype(np.uint8))
            extra_rows.append({"id": f"{split}-n{k}", "split": split, "kind": "notissue", "source": "s0"})
    if extra_img:
        images = np.concatenate([images, np.stack(extra_img)])
        masks = np.concatenate([masks, np.zeros((len(extra_img), size, size), np.uint8)])
    folder.mkdir(parents=True, exist_ok=True)
    images.tofile(folder / "images.u8")
    masks.tofile(folder / "masks.u8")
    rows += extra_rows
    spec = dict(SPEC, width=size, height=size)
    meta = {"source": "synthetic", "sourceSha256": "0" * 64, "splitSha256": "0" * 64, "width": size,
            "height": size, "preprocessing": spec, "rows": rows}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return write_prepared(tmp_path / "data")
