"""Pack a prepared dataset (and the pretrained encoder) small enough to travel to a lent GPU machine, and unpack it.

Only the repository travels there (64 MiB), and no TFLite parser is installed there, so:
- images and masks go as xz-compressed arrays, each pixel stored as its difference from the pixel above (an xz
  delta filter: the prepared DDTI pack is 48 MB so, 56 MB without it; unpack needs nothing but lzma);
- tissue crops are capped per source frame (`--max-tissue`) to fit, and `--splits train,val` leaves test
  behind (the run's checkpoints come back and are shipped and reported here);
- the ImageNet encoder is converted here and travels as a state dict (`encoder.pt`, train --init-tflite takes it);
- a whole pretrained model (e.g. the TG3K gland pretraining, made on CPU) travels as `pretrained.pt` in half
  precision (train --init-from takes it).

  python -m thyroid_seg.gpu_pack pack --data ../data/ddti-256-neg --tflite ../../shared/pretrained/.../x.tflite --out ../data/gpu-pack
  python -m thyroid_seg.gpu_pack unpack --pack ../data/gpu-pack --out /tmp/ddti
  python -m thyroid_seg.gpu_pack collect --runs /tmp/runs --out $OUT      (there, after training)
  python -m thyroid_seg.gpu_pack place --from <the call's files> --runs runs --prefix gpu-
"""
from __future__ import annotations

import argparse
import json
import lzma
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from .data import load_prepared
from .model import ModelConfig, build_model
from .pretrained import load_encoder


# a file that comes back from the GPU machine may hold 16 MiB at most: keep a margin under it
RETURN_LIMIT_BYTES = 15 << 20


def half_floats(state: dict) -> dict:
    """Float tensors in half precision, to travel (load_state_dict casts back); integer buffers as they are."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def compress_frames(frames: np.ndarray) -> bytes:
    """xz with a delta filter one row wide (rows of ultrasound look like the row above), at xz's strongest preset."""
    row = min(frames.shape[-1], 256)  # the widest delta xz allows
    return lzma.compress(frames.tobytes(), format=lzma.FORMAT_XZ, filters=[
        {"id": lzma.FILTER_DELTA, "dist": row}, {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])


def pack(data: Path, out: Path, tflite: Path | None, max_tissue: int, splits: tuple[str, ...],
         skip: tuple[str, ...] = (), pretrained: Path | None = None) -> dict:
    ds = load_prepared(data)
    rows = ds.meta["rows"]
    keep, tissue_seen = [], {}
    for i, r in enumerate(rows):
        if r["split"] not in splits or f"{r['split']}:{r.get('kind', 'nodule')}" in skip:
            continue
        if r.get("kind") == "tissue":
            key = (r["source"], r.get("respeckled", 0))
            n = tissue_seen.get(key, 0)
            tissue_seen[key] = n + 1
            if n >= max_tissue:
                continue
        keep.append(i)
    out.mkdir(parents=True, exist_ok=True)
    (out / "images.u8.xz").write_bytes(compress_frames(ds.images[keep]))
    (out / "masks.u8.xz").write_bytes(compress_frames(ds.masks[keep]))
    meta = dict(ds.meta, rows=[rows[i] for i in keep], packedFrom=str(data), packedMaxTissue=max_tissue)
    (out / "meta.json").write_text(json.dumps(meta))
    info: dict = {"frames": len(keep)}
    if tflite:
        model = build_model(ModelConfig())
        load_encoder(model.encoder, tflite)
        torch.save({"encoder": half_floats(model.encoder.state_dict()), "from": Path(tflite).name}, out / "encoder.pt")
        info["encoder"] = Path(tflite).name
    if pretrained:
        c = torch.load(pretrained, map_location="cpu", weights_only=False)
        torch.save({**c, "state_dict": half_floats(c["state_dict"]), "halfPrecision": True, "packedFrom": str(pretrained)},
                   out / "pretrained.pt")
        info["pretrained"] = str(pretrained)
    info["bytes"] = sum(f.stat().st_size for f in out.iterdir())
    return info


def unpack(pack_dir: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("images.u8", "masks.u8"):
        (out / name).write_bytes(lzma.decompress((pack_dir / f"{name}.xz").read_bytes()))
    (out / "meta.json").write_text((pack_dir / "meta.json").read_text())
    return len(json.loads((out / "meta.json").read_text())["rows"])


def collect(runs_dir: Path, out: Path, keep: tuple[str, ...]) -> dict[str, dict]:
    """On the GPU machine: every run's train.json into out/runs.json, and the best.pt of runs whose names start
    with one of `keep` as out/<run>.pt (half precision where a file would be over the return limit).

    Checkpoints are found by folder, not by summary, so a run that trained but failed afterwards still comes back.
    """
    runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(runs_dir.glob("*/train.json"))}
    (out / "runs.json").write_text(json.dumps(runs, indent=1))
    for ck in sorted(runs_dir.glob("*/best.pt")):
        name = ck.parent.name
        if not name.startswith(keep):
            continue
        if ck.stat().st_size < RETURN_LIMIT_BYTES:
            shutil.copy(ck, out / f"{name}.pt")
            continue
        c = torch.load(ck, map_location="cpu", weights_only=False)
        c["state_dict"], c["halfPrecision"] = half_floats(c["state_dict"]), True
        torch.save(c, out / f"{name}.pt")
    return runs


def place(came_back: Path, runs: Path, prefix: str) -> list[str]:
    """Lay out what a GPU call brought back as ordinary runs: runs/<prefix><name>/{train.json,best.pt}."""
    summaries = json.loads((came_back / "runs.json").read_text())
    # a run stopped before its summary (gpu-run.sh HARD_STOP_S) comes back as a checkpoint alone
    names = sorted(set(summaries) | {ck.stem for ck in came_back.glob("*.pt")})
    placed = []
    for name in names:
        d = runs / f"{prefix}{name}"
        d.mkdir(parents=True, exist_ok=True)
        if name in summaries:
            (d / "train.json").write_text(json.dumps(summaries[name], indent=1))
        ck = came_back / f"{name}.pt"
        if ck.exists():
            (d / "best.pt").write_bytes(ck.read_bytes())
        placed.append(d.name)
    return placed


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a_pack = sub.add_parser("pack")
    a_pack.add_argument("--data", required=True, type=Path)
    a_pack.add_argument("--out", required=True, type=Path)
    a_pack.add_argument("--tflite", type=Path, default=None)
    a_pack.add_argument("--pretrained", type=Path, default=None,
                        help="a train.py checkpoint to start runs from (train --init-from), e.g. the TG3K pretraining")
    a_pack.add_argument("--max-tissue", type=int, default=1)
    a_pack.add_argument("--splits", default="train,val,test",
                        help="splits to pack (train,val when the model is shipped back here, where test is)")
    a_pack.add_argument("--skip", default="", help="split:kind pairs to leave out, e.g. val:nodule (val-kind roi)")
    a_unpack = sub.add_parser("unpack")
    a_unpack.add_argument("--pack", required=True, type=Path)
    a_unpack.add_argument("--out", required=True, type=Path)
    a_collect = sub.add_parser("collect", help="on the GPU machine: runs.json and the kept checkpoints into --out")
    a_collect.add_argument("--runs", required=True, type=Path)
    a_collect.add_argument("--out", required=True, type=Path)
    a_collect.add_argument("--keep", default="final-,baseline-,abl-no-respeckle-",
                           help="name prefixes of the runs whose checkpoints come back")
    a_place = sub.add_parser("place", help="lay out a GPU call's runs.json and <run>.pt as runs/<prefix><run>/")
    a_place.add_argument("--from", dest="came_back", required=True, type=Path)
    a_place.add_argument("--runs", default=Path("runs"), type=Path)
    a_place.add_argument("--prefix", default="gpu-")
    a = p.parse_args(argv)
    if a.cmd == "collect":
        runs = collect(a.runs, a.out, tuple(filter(None, a.keep.split(","))))
        for name, r in runs.items():
            print(name, r["epochsRun"], json.dumps(r["best"]))
        for d in sorted(p.parent.name for p in a.runs.glob("*/best.pt") if p.parent.name not in runs):
            print(d, "no train.json: see its log")
    elif a.cmd == "place":
        print(json.dumps({"placed": place(a.came_back, a.runs, a.prefix)}))
    elif a.cmd == "pack":
        print(json.dumps(pack(a.data, a.out, a.tflite, a.max_tissue, tuple(a.splits.split(",")),
                              tuple(filter(None, a.skip.split(","))), a.pretrained)))
    else:
        print(json.dumps({"frames": unpack(a.pack, a.out)}))


if __name__ == "__main__":
    main(sys.argv[1:])
