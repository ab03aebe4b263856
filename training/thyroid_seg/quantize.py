"""Static INT8 quantization (QDQ, per-channel weights) calibrated on training frames.

Saturation note (onnxruntime's quantization docs): x86-64 CPUs with AVX2/AVX-512 but without VNNI
compute u8 x s8 products with an instruction that can saturate 16-bit intermediate sums. With
`reduce_range` the weights use 7 bits, which rules that out at a small cost in resolution. ARM
(the target box) has no such issue; the flag is recorded in the model card and measured.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from .data import NEGATIVE_KINDS, Prepared


def parse_calib_set(spec: str) -> list[tuple[tuple[str, ...], int]]:
    """'roi=64,tissue+notissue=32' -> [(('roi',), 64), (('tissue', 'notissue'), 32)]: train frames by kind."""
    out = []
    for item in filter(None, (t.strip() for t in spec.split(","))):
        kinds, _, n = item.partition("=")
        if not kinds or not n.isdigit() or int(n) <= 0:
            raise ValueError(f"calibration set '{spec}': '{item}' is not KIND[+KIND]=COUNT with COUNT > 0")
        out.append((tuple(kinds.split("+")), int(n)))
    if not out:
        raise ValueError(f"calibration set '{spec}' names no frames")
    return out


def pick_calibration(kinds_of_rows: list[str], spec: str, seed: int = 0) -> list[int]:
    """Row indices (sorted) for a calibration set: COUNT rows drawn at random (fixed seed) among each item's
    kinds. An item asking for more rows than exist takes them all; a kind that is absent is an error,
    since a calibration that silently lacks, say, the probe-lifted frames quantizes their ranges away."""
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for kinds, n in parse_calib_set(spec):
        rows = [i for i, k in enumerate(kinds_of_rows) if k in kinds]
        if not rows:
            raise ValueError(f"calibration set: no train frames of kind {'+'.join(kinds)}")
        picked += list(rng.choice(rows, min(n, len(rows)), replace=False))
    return sorted(set(int(i) for i in picked))


def calibration_frames(ds: Prepared, calib_set: str | None, calib_frames: int) -> np.ndarray:
    """Train frames (uint8) for INT8 calibration. With a --calib-set spec ('roi=64,tissue+notissue=32'),
    those kinds; without one, v1-v3's set: the first calib_frames whole screens and a quarter as many frames
    without a nodule (dark probe-lifted frames have their own ranges)."""
    if calib_set:
        train = [i for i, s in enumerate(ds.splits) if s == "train"]
        rows = [train[j] for j in pick_calibration([ds.kinds[i] for i in train], calib_set)]
        return ds.images[rows]
    xtr, _, _ = ds.subset("train", calib_frames)
    xneg, _, _ = ds.subset("train", None, NEGATIVE_KINDS)
    if len(xneg):
        pick = np.random.default_rng(0).choice(len(xneg), min(len(xneg), calib_frames // 4), replace=False)
        xtr = np.concatenate([xtr, xneg[np.sort(pick)]])
    return xtr


class FrameReader(CalibrationDataReader):
    def __init__(self, frames: np.ndarray):
        self.frames = frames
        self.i = 0

    def get_next(self):
        if self.i >= len(self.frames):
            return None
        x = self.frames[self.i:self.i + 1].astype(np.float32)
        self.i += 1
        return {"image": x}

    def rewind(self):
        self.i = 0


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calib: np.ndarray, *, reduce_range: bool = True,
                  method: str = "minmax", keep_float: list[str] | None = None) -> dict:
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out_path), FrameReader(calib),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method],
            nodes_to_exclude=keep_float or [],
        )
    return {"format": "QDQ", "perChannel": True, "reduceRange": reduce_range, "activations": "uint8",
            "weights": "int8", "calibration": method, "calibrationFrames": int(len(calib)),
            "keptFloat": keep_float or []}
