"""The trip to a lent GPU and back: pack (splits, tissue cap), unpack, a time-annealed run, place."""
import json
import lzma

import numpy as np
import torch

from conftest import write_prepared
from thyroid_seg import gpu_pack, train
from thyroid_seg.data import load_prepared


def test_pack_unpack_keeps_chosen_splits_and_bytes(tmp_path):
    data = write_prepared(tmp_path / "data", negatives=2)
    meta = json.loads((data / "meta.json").read_text())
    for r in meta["rows"]:
        if r.get("kind") == "tissue":
            r["source"] = f"{r['split']}-frame"  # a split's tissue crops from one frame: the cap keeps one each
    (data / "meta.json").write_text(json.dumps(meta))
    info = gpu_pack.pack(data, tmp_path / "pack", None, max_tissue=1, splits=("train", "val"), skip=("val:nodule",))
    n = gpu_pack.unpack(tmp_path / "pack", tmp_path / "back")
    assert n == info["frames"]
    src, back = load_prepared(data), load_prepared(tmp_path / "back")
    assert set(back.splits) == {"train", "val"}
    assert "nodule" not in {k for k, sp in zip(back.kinds, back.splits) if sp == "val"}
    assert back.kinds.count("tissue") == 2 and back.kinds.count("notissue") == 4
    for i, rid in enumerate(back.ids):
        j = src.ids.index(rid)
        assert np.array_equal(back.images[i], src.images[j]) and np.array_equal(back.masks[i], src.masks[j])


def test_cosine_time_run_is_placed_as_an_ordinary_run(tmp_path):
    data = write_prepared(tmp_path / "data", negatives=1)
    out = tmp_path / "call" / "runs" / "final-s0"
    s = train.train(train.parse_args([
        "--data", str(data), "--out", str(out), "--epochs", "1000", "--epoch-size", "4", "--batch", "2",
        "--negatives", "--schedule", "cosine-time", "--time-budget-min", "0.02", "--width", "0.35", "--threads", "1",
        "--quiet"]))
    # the budget, not --epochs, ended the run
    assert s["stoppedByTimeBudgetAfterEpoch"] == s["epochsRun"] < 1000
    came_back = tmp_path / "came-back"
    came_back.mkdir()
    assert gpu_pack.collect(out.parent, came_back, ("final-",)) == {"final-s0": s}
    assert (came_back / "final-s0.pt").read_bytes() == (out / "best.pt").read_bytes()
    assert gpu_pack.place(came_back, tmp_path / "runs", "gpu-") == ["gpu-final-s0"]
    placed = tmp_path / "runs" / "gpu-final-s0"
    assert json.loads((placed / "train.json").read_text())["best"] == s["best"]
    assert (placed / "best.pt").read_bytes() == (out / "best.pt").read_bytes()


def test_collect_halves_a_checkpoint_over_the_return_limit(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "baseline-s0"
    run.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(4), "n": torch.tensor(3)}, "epoch": 2}, run / "best.pt")
    (tmp_path / "runs" / "abl-other-s0").mkdir()
    torch.save({"state_dict": {}}, tmp_path / "runs" / "abl-other-s0" / "best.pt")
    monkeypatch.setattr(gpu_pack, "RETURN_LIMIT_BYTES", 1)
    out = tmp_path / "out"
    out.mkdir()
    # no train.json (a run that failed after training): its checkpoint still comes back
    assert gpu_pack.collect(tmp_path / "runs", out, ("baseline-",)) == {}
    assert sorted(p.name for p in out.iterdir()) == ["baseline-s0.pt", "runs.json"]
    ck = torch.load(out / "baseline-s0.pt", weights_only=False)
    assert ck["halfPrecision"] and ck["epoch"] == 2
    assert ck["state_dict"]["w"].dtype == torch.float16 and ck["state_dict"]["n"].dtype == torch.int64


def test_no_respeckled_leaves_out_the_rows_marked_in_meta(tmp_path):
    data = write_prepared(tmp_path / "data", negatives=1)
    meta = json.loads((data / "meta.json").read_text())
    marked = [r for r in meta["rows"] if r["split"] == "train" and r.get("kind") == "tissue"]
    for r in marked:
        r["respeckled"] = 1
    (data / "meta.json").write_text(json.dumps(meta))
    common = ["--data", str(data), "--epochs", "1", "--epoch-size", "2", "--batch", "2", "--negatives", "--width",
              "0.35", "--threads", "1", "--quiet"]
    full = train.train(train.parse_args([*common, "--out", str(tmp_path / "a")]))
    ablated = train.train(train.parse_args([*common, "--out", str(tmp_path / "b"), "--no-respeckled"]))
    assert ablated["trainFrames"] == full["trainFrames"] - len(marked) > 0


def test_a_pretrained_model_travels_in_half_precision_and_starts_a_run(tmp_path):
    data = write_prepared(tmp_path / "data", negatives=1)
    tiny = ["--epochs", "1", "--epoch-size", "4", "--batch", "2", "--width", "0.35", "--threads", "1", "--quiet"]
    pre = train.train(train.parse_args(["--data", str(data), "--out", str(tmp_path / "pre"), *tiny]))
    info = gpu_pack.pack(data, tmp_path / "pack", None, max_tissue=1, splits=("train", "val"),
                         pretrained=tmp_path / "pre" / "best.pt")
    assert info["pretrained"].endswith("best.pt")
    packed = torch.load(tmp_path / "pack" / "pretrained.pt", map_location="cpu", weights_only=False)
    assert packed["halfPrecision"] and all(v.dtype == torch.float16 for v in packed["state_dict"].values()
                                           if v.is_floating_point())
    # train --init-from takes the half-precision copy (load_state_dict casts back to float32)
    s = train.train(train.parse_args(["--data", str(data), "--out", str(tmp_path / "ft"), *tiny,
                                      "--init-from", str(tmp_path / "pack" / "pretrained.pt")]))
    assert s["initFrom"]["checkpoint"].endswith("pretrained.pt")
    assert s["config"] == pre["config"]


def test_frames_travel_with_a_row_delta_filter_that_unpacks_with_plain_lzma():
    rng = np.random.default_rng(0)
    # rows like the row above, as in ultrasound: a vertical ramp plus a little grain
    frames = (np.linspace(0, 200, 64)[None, :, None] + rng.integers(0, 3, (5, 64, 48))).astype(np.uint8)
    packed = gpu_pack.compress_frames(frames)
    assert lzma.decompress(packed) == frames.tobytes()
    assert len(packed) < len(lzma.compress(frames.tobytes(), preset=6))


def test_a_run_stopped_before_its_summary_is_placed_with_its_checkpoint(tmp_path):
    came_back = tmp_path / "came-back"
    came_back.mkdir()
    (came_back / "runs.json").write_text(json.dumps({"final-s0": {"best": {"valIoU": 0.5}}}))
    torch.save({"state_dict": {}}, came_back / "final-s0.pt")
    torch.save({"state_dict": {"w": torch.ones(1)}}, came_back / "final-s1.pt")  # hard-stopped: no summary
    assert gpu_pack.place(came_back, tmp_path / "runs", "gpu-") == ["gpu-final-s0", "gpu-final-s1"]
    assert not (tmp_path / "runs" / "gpu-final-s1" / "train.json").exists()
    assert (tmp_path / "runs" / "gpu-final-s1" / "best.pt").read_bytes() == (came_back / "final-s1.pt").read_bytes()
