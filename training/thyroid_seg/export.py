"""Export a checkpoint to ONNX (opset 17, input `image` [N,1,H,W] with dynamic N, output `logits`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .model import ModelConfig, build_model

OPSET = 17


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = dict(ck["config"])
    cfg["rates"] = tuple(cfg.get("rates", (6, 12, 18)))
    model = build_model(ModelConfig(**cfg))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, ck


def export_onnx(model: torch.nn.Module, out: str | Path, height: int, width: int) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, height, width)
    # The TorchScript exporter: stable graphs with plain ops that onnxruntime's quantizer knows.
    torch.onnx.export(
        model, (dummy,), str(out), opset_version=OPSET, input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True, dynamo=False,
    )
    onnx.checker.check_model(onnx.load(str(out)))
    return out


def onnx_session(path: str | Path, threads: int = 2) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def onnx_logits(sess: ort.InferenceSession, x: np.ndarray, batch: int = 8) -> np.ndarray:
    outs = [sess.run(["logits"], {"image": x[i:i + batch].astype(np.float32)})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def parity(model: torch.nn.Module, sess: ort.InferenceSession, x: np.ndarray) -> float:
    """Max |logit difference| between PyTorch and onnxruntime on the same frames."""
    with torch.no_grad():
        ref = model(torch.as_tensor(x)).numpy()
    return float(np.abs(ref - onnx_logits(sess, x)).max())
