import json

import numpy as np
import pytest

from thyroid_seg import calib_search, train
from thyroid_seg.quantize import parse_calib_set, pick_calibration


def test_calibration_set_spec_is_parsed_and_bad_specs_say_why():
    assert parse_calib_set("roi=64, tissue+notissue=16") == [(("roi",), 64), (("tissue", "notissue"), 16)]
    for bad in ("", "roi", "roi=0", "roi=x", "=4"):
        with pytest.raises(ValueError, match="calibration set"):
            parse_calib_set(bad)


def test_calibration_rows_are_drawn_by_kind_with_a_fixed_seed():
    kinds = ["nodule"] * 10 + ["roi"] * 10 + ["tissue"] * 5 + ["notissue"] * 5
    rows = pick_calibration(kinds, "roi=4,tissue+notissue=20")
    assert rows == pick_calibration(kinds, "roi=4,tissue+notissue=20")  # the same file from the same command
    assert sum(kinds[i] == "roi" for i in rows) == 4
    assert sum(kinds[i] in ("tissue", "notissue") for i in rows) == 10  # more asked than exist: all of them
    assert not any(kinds[i] == "nodule" for i in rows)
    with pytest.raises(ValueError, match="no train frames of kind nodulecrop"):
        pick_calibration(kinds, "nodulecrop=2")


def test_calibration_search_scores_val_only_and_chooses_one(tmp_path):
    from conftest import write_prepared

    # no test frames at all: the search must not need them
    data = write_prepared(tmp_path / "data", negatives=2, n_test=0)
    run = tmp_path / "run"
    train.train(train.parse_args(["--data", str(data), "--out", str(run), "--epochs", "1", "--seed", "0",
                                  "--width", "0.35", "--negatives", "--epoch-size", "4", "--loss", "tversky+bce",
                                  "--threads", "1", "--quiet"]))
    out = tmp_path / "search.json"
    calib_search.main(["--ckpt", str(run / "best.pt"), "--data", str(data), "--view", "nodule", "--threads", "1",
                       "--calib-frames", "4", "--out", str(out),
                       "--candidates", "minmax:legacy", "percentile:nodule=2,tissue+notissue=2:full"])
    r = json.loads(out.read_text())
    assert [c["name"] for c in r["candidates"]] == ["minmax:legacy", "percentile:nodule=2,tissue+notissue=2:full"]
    assert r["chosen"] in {c["name"] for c in r["candidates"]}
    legacy, other = r["candidates"]
    assert legacy["calibrationFrames"] == 4 + 1 and other["calibrationFrames"] == 4 and other["reduceRange"] is False
    for c in r["candidates"]:
        assert 0.0 <= c["valMeanIoU"] <= 1.0 and c["noduleFrames"] == 2 and c["tissueFrames"] == 2
        assert np.isfinite(c["threshold"])
    with pytest.raises(ValueError, match="METHOD:SET"):
        calib_search.parse_candidate("minmax")
