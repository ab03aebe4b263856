"""report.py: the seed spread and the side-by-side card table come from the files, not from typing."""
import json

from thyroid_seg import report


def test_seed_spread_groups_runs_by_name_without_seed(tmp_path):
    paths = []
    for name, iou in (("final-s0", 0.60), ("final-s1", 0.62), ("final-s2", 0.58), ("baseline-s0", 0.5)):
        d = tmp_path / name
        d.mkdir()
        (d / "train.json").write_text(json.dumps({"best": {"valIoU": iou}}))
        paths.append(str(d / "train.json"))
    out = report.seed_spread(report.load_runs(paths))
    assert "`final` over 3 seeds: best val mean IoU 0.6000 ± 0.0200 (sd), range 0.5800–0.6200" in out
    assert "baseline" not in out  # one seed: no spread


def test_compare_cards_one_row_per_card(tmp_path):
    def card(arch, iou):
        r = {"meanIoU": iou}
        return {"architecture": {"arch": arch, "gmacsAtInput": 0.8}, "fileBytes": 2.5e6,
                "decision": {"threshold": 0.4, "minAreaPx": 100},
                "metrics": {"test": {"onnx_int8": r, "pytorch_fp32": r}, "val": {"onnx_int8": r},
                            "frameLevel": {"test": {"sensitivity": 1, "specificity_tissue": 0.9,
                                                    "specificity_notissue": 1}}}}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(card("improved", 0.61)))
    b.write_text(json.dumps(card("deeplabv3plus", 0.57)))
    rows = report.compare_cards([str(a), str(b)]).splitlines()[2:]
    assert len(rows) == 2
    assert "| improved | 0.6100 (0.6100) |" in rows[0] and "| deeplabv3plus | 0.5700" in rows[1]
    assert "p > 0.4, ≥ 100 px" in rows[0]
