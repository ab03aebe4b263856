"""Average the weights of checkpoints that share a starting point (a "model soup"), e.g. a run and its fine-tune.

Two fine-tunes of one checkpoint stay in one basin, so their weighted mean is a model in between: here, between a
checkpoint that finds nodules cut by the view's edge and its fine-tune that keeps tissue views clear. Checkpoints
trained from different starts do not average into a working model; `config` must match.

  python -m thyroid_seg.soup --ckpt runs/a/best.pt runs/b/best.pt --weights 0.5 0.5 --out runs/soup-ab/best.pt
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch


def soup(paths: list[Path], weights: list[float]) -> dict:
    if len(paths) != len(weights) or len(paths) < 2:
        raise SystemExit("soup: give two or more checkpoints and one weight each")
    total = sum(weights)
    cks = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    for p, c in zip(paths[1:], cks[1:]):
        if c["config"] != cks[0]["config"]:
            raise SystemExit(f"soup: {p} has another model config than {paths[0]}")
    state = {}
    for k, v in cks[0]["state_dict"].items():
        if v.is_floating_point():
            state[k] = sum(w / total * c["state_dict"][k].float() for w, c in zip(weights, cks))
        else:
            state[k] = v  # integer buffers (batch-norm counters) are not averaged
    return {**{k: v for k, v in cks[0].items() if k != "state_dict"}, "state_dict": state,
            "soup": [{"checkpoint": str(p), "weight": w} for p, w in zip(paths, weights)]}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", nargs="+", required=True, type=Path)
    p.add_argument("--weights", nargs="+", type=float, default=None, help="one per checkpoint; default: equal")
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args(argv)
    c = soup(a.ckpt, a.weights or [1.0] * len(a.ckpt))
    c["soupCommand"] = "python -m thyroid_seg.soup " + " ".join(shlex.quote(x) for x in argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(c, a.out)
    print(f"{a.out}: {c['soup']}")


if __name__ == "__main__":
    main(sys.argv[1:])
