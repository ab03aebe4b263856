"""Train the segmentation model on a prepared dataset; keep the checkpoint with the best val IoU.

  python -m thyroid_seg.train --data ../data/ddti-256 --out runs/improved-s0 --epochs 60 --seed 0
"""
from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import augment, load_prepared, normalize
from .losses import make_loss
from .metrics import summarize
from .model import ModelConfig, build_model, count_macs, count_params


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=["improved", "deeplabv3plus"], default="improved")
    p.add_argument("--width", type=float, default=1.0, help="MobileNetV2 width multiplier")
    p.add_argument("--aspp", choices=["dsconv", "plain"], default="dsconv")
    p.add_argument("--no-ppm", dest="ppm", action="store_false")
    p.add_argument("--no-attention", dest="attention", action="store_false")
    p.add_argument("--no-skips", dest="skips", action="store_false")


def model_config_from_args(a: argparse.Namespace) -> ModelConfig:
    return ModelConfig(arch=a.arch, width=a.width, aspp=a.aspp, ppm=a.ppm, attention=a.attention, skips=a.skips)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@torch.no_grad()
def predict_probs(model: torch.nn.Module, x: torch.Tensor, batch: int = 8) -> np.ndarray:
    model.eval()
    out = [torch.sigmoid(model(x[i:i + batch])).squeeze(1).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0,) + tuple(x.shape[2:]), np.float32)


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    gen = seed_everything(args.seed)
    ds = load_prepared(args.data)
    pp = ds.meta["preprocessing"]
    xtr_u8, ytr, _ = ds.subset("train", args.limit_train)
    xva_u8, yva, _ = ds.subset(args.val_split, args.limit_val)
    xtr = normalize(xtr_u8, pp["mean"], pp["std"])
    ytr_t = torch.as_tensor(ytr).float().unsqueeze(1)
    xva = normalize(xva_u8, pp["mean"], pp["std"])

    cfg = model_config_from_args(args)
    model = build_model(cfg)
    init_from = None
    if args.init_from:
        # continue from an earlier run (e.g. a second phase with a decaying learning rate)
        ck = torch.load(args.init_from, map_location="cpu", weights_only=False)
        if ck["config"] != cfg.to_dict():
            raise SystemExit(f"--init-from {args.init_from}: its model config {ck['config']} differs from {cfg.to_dict()}")
        model.load_state_dict(ck["state_dict"])
        prev = Path(args.init_from).parent / "train.json"
        init_from = {"checkpoint": str(args.init_from), "epoch": ck.get("epoch"), "valIoU": ck.get("valIoU"),
                     "run": json.loads(prev.read_text()) if prev.exists() else None}
        if init_from["run"]:
            init_from["run"].pop("history", None)
    loss_fn = make_loss(args.loss)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs) if args.schedule == "cosine" else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history, best = [], {"valIoU": -1.0, "epoch": -1}
    stopped_early = None
    n = len(xtr)
    t0 = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        steps = range(0, n - (n % args.batch if n >= args.batch else 0), args.batch) if args.drop_last else range(0, n, args.batch)
        bar = tqdm(steps, desc=f"epoch {epoch}/{args.epochs}", leave=True, file=sys.stderr, disable=args.quiet)
        losses = []
        for i in bar:
            idx = perm[i:i + args.batch]
            x, y = augment(xtr[idx], ytr_t[idx], gen, args.rot, hflip=True) if args.augment else (xtr[idx], ytr_t[idx])
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", val_iou=f"{best['valIoU']:.4f}")
        if sched:
            sched.step()
        probs = predict_probs(model, xva)
        val = summarize(probs > 0.5, yva)
        rec = {"epoch": epoch, "loss": float(np.mean(losses)), "valIoU": val["meanIoU"], "valDice": val["meanDice"],
               "seconds": round(time.time() - t0, 1)}
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", val_iou=f"{val['meanIoU']:.4f}")
        bar.close()
        if not args.quiet:
            print(json.dumps(rec), file=sys.stderr, flush=True)
        if val["meanIoU"] > best["valIoU"]:
            best = {"valIoU": val["meanIoU"], "epoch": epoch}
            torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "epoch": epoch,
                        "valIoU": val["meanIoU"], "preprocessing": pp}, out / "best.pt")
        if args.time_budget_min and time.time() - t0 > args.time_budget_min * 60:
            stopped_early = epoch
            break
    summary = {
        "command": "python -m thyroid_seg.train " + " ".join(shlex.quote(a) for a in args.argv),
        "args": {k: v for k, v in vars(args).items() if k != "argv"},
        "config": cfg.to_dict(),
        "params": count_params(model),
        "gmacs512": count_macs(model, 512) / 1e9,
        "best": best,
        "initFrom": init_from,
        "epochsRun": len(history),
        "stoppedByTimeBudgetAfterEpoch": stopped_early,
        "history": history,
        "trainFrames": int(n),
        "valFrames": int(len(xva)),
        "dataset": {k: ds.meta[k] for k in ("source", "sourceSha256", "splitSha256", "width", "height")},
        "seconds": round(time.time() - t0, 1),
    }
    (out / "train.json").write_text(json.dumps(summary, indent=1))
    return summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder written by src/tools/prepare-dataset.ts")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    p.add_argument("--loss", choices=["tversky", "bce"], default="tversky")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rot", type=float, default=5.0, help="max rotation in degrees for augmentation")
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--drop-last", action="store_true")
    p.add_argument("--init-from", default=None, help="checkpoint to start from (same model config)")
    p.add_argument("--time-budget-min", type=float, default=None,
                   help="stop after the epoch that passes this many minutes (CPU runs); recorded in train.json")
    p.add_argument("--val-split", default="val", choices=["train", "val"],
                   help="split used to choose the checkpoint ('train' only for overfit tests); never test")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-val", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    add_model_args(p)
    a = p.parse_args(argv)
    a.argv = argv
    return a


if __name__ == "__main__":
    s = train(parse_args(sys.argv[1:]))
    print(json.dumps({"best": s["best"], "params": s["params"], "gmacs512": s["gmacs512"], "seconds": s["seconds"]}))
