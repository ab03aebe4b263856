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


def test_negatives_train_and_card_frame_level_figures(tmp_path):
    """Frames without a nodule: drawn in training, scored on val for the checkpoint, frame-level figures in the card."""
    from conftest import write_prepared

    data = write_prepared(tmp_path / "data", negatives=3)
    run = tmp_path / "run"
    s = train.train(train.parse_args(["--data", str(data), "--out", str(run), "--epochs", "2", "--seed", "0",
                                      "--width", "0.35", "--negatives", "--epoch-size", "8", "--loss", "tversky+bce",
                                      "--gain", "0.2", "--bf16", "--threads", "1", "--quiet"]))
    assert s["negatives"] is True
    assert all("valSpecificity" in h for h in s["history"])
    models = tmp_path / "models"
    card = ship.ship(ship.parse_args(["--ckpt", str(run / "best.pt"), "--data", str(data), "--out-dir", str(models),
                                      "--name", "tiny", "--work", str(tmp_path / "w"),
                                      "--calib-set", "nodule=3,tissue+notissue=2"]))
    assert card["quantization"]["calibrationSet"] == "nodule=3,tissue+notissue=2"
    assert card["quantization"]["calibrationFrames"] == 5
    d = card["decision"]
    assert d["chosenOn"] == "val" and d["threshold"] == card["threshold"]
    assert d["minAreaPx"] in ship.MIN_AREA_GRID or d["minAreaPx"] == d["maxMinAreaPx"]  # the cap is a candidate
    for split in ("val", "test"):
        fl = card["metrics"]["frameLevel"][split]
        assert fl["noduleFrames"] == 2 and fl["tissueFrames"] == 3 and fl["notissueFrames"] == 3
        for k in ("sensitivity", "specificity_tissue", "specificity_notissue"):
            assert 0.0 <= fl[k] <= 1.0
    # the chosen rule keeps the asked sensitivity on val (or is the smallest area when none does)
    assert card["metrics"]["frameLevel"]["val"]["sensitivity"] >= 0.95 or d["minAreaPx"] == ship.MIN_AREA_GRID[0]
    assert 0 <= card["metrics"]["served"]["test"]["meanIoU"] <= 1
    # evaluate.py (old vs new models on the same frames) scores the shipped file as ship.py does
    from thyroid_seg import evaluate

    ev = evaluate.evaluate(models / "tiny.json", data, ("test",), threads=1)["splits"]["test"]
    fl = card["metrics"]["frameLevel"]["test"]
    assert ev["tissue"]["frameSpecificity"] == fl["specificity_tissue"]
    assert ev["notissue"]["frameSpecificity"] == fl["specificity_notissue"]
    assert ev["nodule"]["frameSensitivity"] == fl["sensitivity"]
    assert abs(ev["nodule"]["servedMeanIoU"] - card["metrics"]["served"]["test"]["meanIoU"]) < 1e-9
    # --shown-regions (masks that are not nodules, e.g. TG3K glands): every test frame of every kind, the frames
    # the daemon's rule would show a nodule on, and the share of what it shows inside the masks
    sr = evaluate.shown_regions(models / "tiny.json", data, "test", threads=1)
    from thyroid_seg.data import load_prepared

    assert sr["frames"] == sum(1 for s in load_prepared(data).splits if s == "test")
    assert sr["framesShown"] == round(sr["shareShown"] * sr["frames"])
    assert sr["medianShareInsideMask"] is None or 0.0 <= sr["medianShareInsideMask"] <= 1.0
    assert evaluate.shown_regions(models / "tiny.json", data, "test", every=2, threads=1)["frames"] == (
        sr["frames"] + 1) // 2


def test_frame_rule_choice_is_the_most_specific_that_keeps_sensitivity():
    pos = np.array([500, 300, 90, 45])     # largest component per nodule frame
    neg = np.array([0, 30, 70, 0, 10])     # per frame without a nodule
    assert ship.choose_min_area(pos, neg, 1.0) == 40      # all 4 positives kept; 70 still passes
    assert ship.choose_min_area(pos, neg, 0.75) == 80     # one positive may go: 70 is dropped
    # equally specific and sensitive: the larger area (fewer stray regions reach the tracker), up to the cap
    assert ship.choose_min_area(np.array([500, 300, 250]), np.array([0, 30]), 1.0) == 240
    assert ship.choose_min_area(np.array([500, 300, 250]), np.array([0, 30]), 1.0, max_area=196) == 196
    # equally specific: the more sensitive area first
    assert ship.choose_min_area(np.array([500, 300, 150, 90]), np.array([0, 30]), 0.75) == 80
    fl = ship.frame_figures({"nodule": pos, "tissue": neg}, 80)
    assert fl["sensitivity"] == 0.75 and fl["specificity_tissue"] == 1.0
