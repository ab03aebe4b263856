"""Train the segmentation model on a prepared dataset; keep the checkpoint with the best val IoU.

  python -m thyroid_seg.train --data ../data/ddti-256 --out runs/improved-s0 --epochs 60 --seed 0
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import ALL_KINDS, NEGATIVE_KINDS, augment, gain_gamma, load_prepared, normalize
from .losses import make_loss
from .metrics import frame_level, largest_component, summarize
from .model import ModelConfig, build_model, count_macs, count_params
from .pretrained import load_encoder


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=["improved", "deeplabv3plus"], default="improved")
    p.add_argument("--width", type=float, default=1.0, help="MobileNetV2 width multiplier")
    p.add_argument("--aspp", choices=["dsconv", "plain"], default="dsconv")
    p.add_argument("--no-ppm", dest="ppm", action="store_false")
    p.add_argument("--no-attention", dest="attention", action="store_false")
    p.add_argument("--no-skips", dest="skips", action="store_false")


def model_config_from_args(a: argparse.Namespace) -> ModelConfig:
    return ModelConfig(arch=a.arch, width=a.width, aspp=a.aspp, ppm=a.ppm, attention=a.attention, skips=a.skips)


def parse_kind_weights(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        if k not in ALL_KINDS:
            raise SystemExit(f"--kind-weights: unknown kind {k!r} (one of {', '.join(ALL_KINDS)})")
        out[k] = float(v)
    return out


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
    dev = next(model.parameters()).device
    out = [torch.sigmoid(model(x[i:i + batch].to(dev))).squeeze(1).float().cpu().numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0,) + tuple(x.shape[2:]), np.float32)


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    gen = seed_everything(args.seed)
    ds = load_prepared(args.data)
    pp = ds.meta["preprocessing"]
    kinds = tuple(k for k in ALL_KINDS if k == "nodule" or args.negatives)
    xtr_u8, ytr, tr_ids = ds.subset("train", args.limit_train, kinds)
    if not args.respeckled:
        # ablation: leave out the frames prepared from re-speckled screens (prepare-dataset speckle=N)
        respeckled = {r["id"] for r in ds.meta["rows"] if r.get("respeckled")}
        keep = [i for i, r in enumerate(tr_ids) if r not in respeckled]
        xtr_u8, ytr, tr_ids = xtr_u8[keep], ytr[keep], [tr_ids[i] for i in keep]
    xva_u8, yva, _ = ds.subset(args.val_split, args.limit_val, (args.val_kind,))
    xtr = normalize(xtr_u8, pp["mean"], pp["std"])
    ytr_t = torch.as_tensor(ytr).float().unsqueeze(1)
    xva = normalize(xva_u8, pp["mean"], pp["std"])
    # val negatives: frame-level specificity is recorded each epoch and counts in the checkpoint choice
    xvn_u8, _, _ = ds.subset(args.val_split, args.limit_val, NEGATIVE_KINDS) if args.negatives else (xva_u8[:0], None, None)
    xvn = normalize(xvn_u8, pp["mean"], pp["std"])
    # each epoch draws `epoch_size` frames; each kind gets its share of --kind-weights
    tr_kinds = np.array(ds.kinds_of(tr_ids))
    share = parse_kind_weights(args.kind_weights)
    weights = np.array([share.get(k, 0.0) / max((tr_kinds == k).sum(), 1) for k in tr_kinds])
    weights = torch.as_tensor(weights / weights.sum(), dtype=torch.double)

    cfg = model_config_from_args(args)
    model = build_model(cfg)
    pretrained = None
    if args.init_tflite and args.init_tflite.endswith(".pt"):
        # an encoder converted beforehand (gpu_pack: no TFLite parser on the GPU machine)
        enc = torch.load(args.init_tflite, map_location="cpu", weights_only=False)
        model.encoder.load_state_dict(enc["encoder"])
        pretrained = {"file": enc.get("from"), "via": Path(args.init_tflite).name}
    elif args.init_tflite:
        pretrained = load_encoder(model.encoder, args.init_tflite)
    init_from = None
    device = torch.device(args.device)
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
    model.to(device)
    # the training frames live on the device (a few hundred MB): no host-to-device copy per step
    xtr, ytr_t = xtr.to(device), ytr_t.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs) if args.schedule == "cosine" else None
    if args.schedule == "cosine-time" and not args.time_budget_min:
        raise SystemExit("--schedule cosine-time anneals over --time-budget-min: give one")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history, best = [], {"valIoU": -1.0, "epoch": -1}
    stopped_early = None
    n = len(xtr)
    epoch_n = args.epoch_size or n
    t0 = time.time()
    first_epoch = 1
    last_ck = Path(args.checkpoint_dir) / "last.pt" if args.checkpoint_dir else None
    if args.resume and last_ck and last_ck.exists():
        ck = torch.load(last_ck, map_location=device, weights_only=False)
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["opt"])
        best, first_epoch = ck["best"], ck["epoch"] + 1
        for _ in range(ck["epoch"]):
            if sched:
                sched.step()
        history = ck.get("history", [])
        print(f"resumed from {last_ck} after epoch {ck['epoch']}", file=sys.stderr)
    for epoch in range(first_epoch, args.epochs + 1):
        model.train()
        perm = (torch.multinomial(weights, epoch_n, replacement=True, generator=gen) if args.negatives
                else torch.randperm(n, generator=gen))
        steps = (range(0, epoch_n - (epoch_n % args.batch if epoch_n >= args.batch else 0), args.batch) if args.drop_last
                 else range(0, epoch_n, args.batch))
        bar = tqdm(steps, desc=f"epoch {epoch}/{args.epochs}", leave=True, file=sys.stderr, disable=args.quiet)
        losses = []
        for i in bar:
            idx = perm[i:i + args.batch].to(device)
            x, y = xtr[idx], ytr_t[idx]
            if args.augment:
                x, y = augment(x, y, gen, args.rot, hflip=True)
                if args.gain > 0:
                    x = gain_gamma(x, gen, pp["mean"], pp["std"], args.gain)
            if args.schedule == "cosine-time":
                # cosine over the wall-clock budget: every run ends annealed, however fast its device is
                frac = min(1.0, (time.time() - t0) / (args.time_budget_min * 60))
                for group in opt.param_groups:
                    group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * frac))
            # bf16 autocast: ~3x faster on CPUs with AVX-512 BF16; evaluation stays in float32
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
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
        score = val["meanIoU"]
        if len(xvn):
            # frame level at the daemon's default rule (p > 0.5, a component of >= 40 px at the model size)
            lpos = np.array([largest_component(p > 0.5) for p in probs])
            lneg = np.array([largest_component(p > 0.5) for p in predict_probs(model, xvn)])
            fl = frame_level(np.concatenate([lpos, lneg]), np.r_[np.ones(len(lpos)), np.zeros(len(lneg))], 40)
            rec.update(valSensitivity=fl["sensitivity"], valSpecificity=fl["specificity"])
            # a model that calls nodules on empty frames is not better for a higher IoU
            score = val["meanIoU"] * fl["specificity"]
        rec["score"] = score
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", val_iou=f"{val['meanIoU']:.4f}")
        bar.close()
        if not args.quiet:
            print(json.dumps(rec), file=sys.stderr, flush=True)
        if score > best.get("score", -1.0):
            best = {"valIoU": val["meanIoU"], "epoch": epoch, "score": score,
                    **{k: rec[k] for k in ("valSensitivity", "valSpecificity") if k in rec}}
            torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "epoch": epoch,
                        "valIoU": val["meanIoU"], "preprocessing": pp}, out / "best.pt")
        if args.checkpoint_dir:
            # resumable from outside the work tree (a later session on the same machine)
            ck_dir = Path(args.checkpoint_dir)
            ck_dir.mkdir(parents=True, exist_ok=True)
            torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "epoch": epoch,
                        "opt": opt.state_dict(), "best": best, "history": history}, ck_dir / "last.pt")
        if args.time_budget_min and time.time() - t0 > args.time_budget_min * 60:
            stopped_early = epoch
            break
    model.cpu()  # count_macs feeds a CPU tensor
    summary = {
        "command": "python -m thyroid_seg.train " + " ".join(shlex.quote(a) for a in args.argv),
        "args": {k: v for k, v in vars(args).items() if k != "argv"},
        "config": cfg.to_dict(),
        "params": count_params(model),
        "gmacs512": count_macs(model, 512) / 1e9,
        "best": best,
        "initFrom": init_from,
        "pretrained": pretrained,
        "negatives": bool(args.negatives),
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
    p.add_argument("--schedule", choices=["constant", "cosine", "cosine-time"], default="constant",
                   help="cosine: over --epochs; cosine-time: over --time-budget-min (runs sharing a GPU)")
    p.add_argument("--loss", choices=["tversky", "bce", "tversky+bce"], default="tversky")
    p.add_argument("--init-tflite", default=None,
                   help="TFLite MobileNetV2 whose weights start the encoder (../shared/pretrained/...), or an encoder.pt from gpu_pack")
    p.add_argument("--negatives", action="store_true",
                   help="train on the prepared frames without a nodule (and nodule crops) too")
    p.add_argument("--kind-weights", default="nodule=0.2,roi=0.3,nodulecrop=0.1,tissue=0.2,notissue=0.2",
                   help="with --negatives: share of each epoch drawn from each kind of prepared frame")
    p.add_argument("--val-kind", default="nodule", choices=["nodule", "roi"],
                   help="the view of the val nodule frames that chooses the checkpoint (roi: as a calibrated box sees them)")
    p.add_argument("--epoch-size", type=int, default=None, help="frames per epoch (default: all training frames)")
    p.add_argument("--no-respeckled", dest="respeckled", action="store_false",
                   help="leave out the training frames prepared from re-speckled screens (an ablation)")
    p.add_argument("--gain", type=float, default=0.0, help="random gain/gamma strength (0 = off)")
    p.add_argument("--checkpoint-dir", default=None, help="write last.pt here every epoch (outside the work tree)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir/last.pt when it exists")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (1 beats 2 when other work shares the two cores: OpenMP waits spin)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (a lent GPU: training/gpu-run.sh)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the training steps (CPU AVX-512 BF16)")
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
