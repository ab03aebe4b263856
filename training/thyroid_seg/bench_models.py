"""ONNX files for speed benchmarks only: each architecture with RANDOM weights, FP32 and INT8.

Inference time does not depend on the weights' values, so these give honest speed ratios
between the shipped architecture and the baseline without training the baseline. They are
never used for accuracy and are written to a git-ignored folder.

  python -m thyroid_seg.bench_models --out ../bench/models --size 256
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .export import export_onnx
from .model import ModelConfig, build_model, count_macs, count_params
from .quantize import quantize_int8


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    calib = rng.normal(0, 1, (8, 1, a.size, a.size)).astype(np.float32)
    index = {}
    for arch in ("improved", "deeplabv3plus"):
        model = build_model(ModelConfig(arch=arch)).eval()
        fp32 = out / f"{arch}-random.fp32.onnx"
        int8 = out / f"{arch}-random.int8.onnx"
        export_onnx(model, fp32, a.size, a.size)
        quantize_int8(fp32, int8, calib)
        index[arch] = {"fp32": fp32.name, "int8": int8.name, "params": count_params(model),
                       "gmacsAtInput": round(count_macs(model, a.size) / 1e9, 3), "size": a.size,
                       "weights": "random (speed only)"}
    (out / "index.json").write_text(json.dumps(index, indent=1))
    print(json.dumps(index))


if __name__ == "__main__":
    main()
