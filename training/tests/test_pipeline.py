"""End-to-end on small synthetic data: overfit, export, INT8 quantization, card."""
import json

import numpy as np
import onnx

from thyroid_seg import ship, train


def test_tiny_overfit_reaches_iou_above_0_8(prepared, tmp_path):
    out = tmp_path / "run"
    s = train.train(train.parse_args([
        "--data", str(prepared), "--out", str(out), "--epochs", "30", "--batch", "2", "--lr", "0.005", "--seed", "0", "--threads", "1",
        "--no-augment", "--val-split", "train", "--width", "0.5", "--quiet"]))
    assert s["best"]["valIoU"] > 0.8, s["history"][-3:]
    assert (out / "best.pt").exists()
    assert json.loads((out / "train.json").read_text())["config"]["width"] == 0.5


def test_export_quantize_and_card_end_to_end(prepared, tmp_path):
    run = tmp_path / "run"
    train.train(train.parse_args(["--data", str(prepared), "--out", str(run), "--epochs", "2", "--seed", "1",
                                  "--width", "0.35", "--quiet"]))
    models = tmp_path / "models"
    card = ship.ship(ship.parse_args(["--ckpt", str(run / "best.pt"), "--data", str(prepared), "--out-dir",
                                      str(models), "--name", "tiny", "--work", str(tmp_path / "w"), "--calib-frames",
                                      "4", "--keep-fp32"]))
    int8 = models / "tiny.onnx"
    g = onnx.load(str(int8))
    assert g.graph.input[0].name == "image" and g.graph.output[0].name == "logits"
    dims = g.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 128, 128]
    assert any(n.op_type == "QuantizeLinear" for n in g.graph.node)
    assert card["sha256"] == ship.sha256(int8)
    assert card["metrics"]["parity"]["maxAbsLogitDiffPytorchVsOnnxFp32"] < 1e-3
    m = card["metrics"]["val"]
    # FP32 ONNX and PyTorch agree on the masks; INT8 stays close
    assert abs(m["onnx_fp32"]["meanIoU"] - m["pytorch_fp32"]["meanIoU"]) < 1e-3
    assert abs(m["onnx_int8"]["meanIoU"] - m["onnx_fp32"]["meanIoU"]) < 0.1
    on_disk = json.loads((models / "tiny.json").read_text())
    assert on_disk["input"]["shape"] == [None, 1, 128, 128]
    assert on_disk["preprocessing"]["width"] == 128
    assert 0 < on_disk["threshold"] < 1
    assert np.isfinite(on_disk["metrics"]["test"]["onnx_int8"]["meanIoU"])
