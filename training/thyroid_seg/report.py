"""Prints the markdown tables of training/README.md from run summaries and a model card.

  python -m thyroid_seg.report --card ../models/thyroid-nodule-int8.json --runs runs/*/train.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def card_tables(card: dict) -> str:
    m = card["metrics"]
    lines = [
        f"Shipped file: `models/{card['file']}` ({card['fileBytes'] / 1e6:.2f} MB, sha256 `{card['sha256'][:16]}…`), "
        f"input {card['input']['shape'][2]}x{card['input']['shape'][3]}, threshold {card['threshold']} "
        f"(chosen on {m['thresholdChosenOn']}), {card['architecture']['params'] / 1e6:.2f} M parameters, "
        f"{card['architecture']['gmacsAt512']} GMACs at 512x512 "
        f"({card['architecture'].get('gmacsAtInput')} at the shipped input size).",
        "",
        "| split | model | mean IoU | mean Dice | pooled IoU | pooled Dice | sensitivity | specificity | pixel acc. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("val", "test"):
        for k, r in m[split].items():
            lines.append(f"| {split} ({r['images']}) | {k} | {fmt(r['meanIoU'])} | {fmt(r['meanDice'])} | {fmt(r['pooledIoU'])} | "
                         f"{fmt(r['pooledDice'])} | {fmt(r['sensitivity'])} | {fmt(r['specificity'])} | {fmt(r['pixelAccuracy'])} |")
    if "views" in m:
        lines += ["", f"Nodule frames in both views, shipped INT8 file (headline view: `{m.get('view', 'nodule')}`; "
                      "imaging area = the frame cropped to its imaging area, as a calibrated box feeds the model):", "",
                  "| view | split | frames | mean IoU | mean Dice | frame-level sensitivity |", "| --- | --- | --- | --- | --- | --- |"]
        for view, d in m["views"].items():
            for split, r in d.items():
                lines.append(f"| {view} | {split} | {r['images']} | {fmt(r['meanIoU'])} | {fmt(r['meanDice'])} | "
                             f"{fmt(r['frameSensitivity'], 3)} |")
    if "decision" in card and "frameLevel" in m:
        d = card["decision"]
        lines += ["", f"Frame-level decision (the daemon's rule): a nodule is shown when a component of at least "
                      f"**{d['minAreaPx']} px** (model pixels) has probability > **{d['threshold']}**; chosen on "
                      f"{d['chosenOn']} as the most specific rule keeping sensitivity ≥ {d['minSensitivityOnVal']}.", "",
                  "| split | sensitivity (nodule frames) | specificity, tissue without a nodule | specificity, no tissue (probe lifted, blank) |",
                  "| --- | --- | --- | --- |"]
        for split, f in m["frameLevel"].items():
            lines.append(f"| {split} | {fmt(f.get('sensitivity'), 3)} ({f.get('noduleFrames')}) | "
                         f"{fmt(f.get('specificity_tissue'), 3)} ({f.get('tissueFrames')}) | "
                         f"{fmt(f.get('specificity_notissue'), 3)} ({f.get('notissueFrames')}) |")
        if "served" in m:
            lines += ["", "Masks as the daemon publishes them (components under the rule's area dropped), nodule frames: "
                      + ", ".join(f"{k} mean IoU {fmt(v['meanIoU'])}" for k, v in m["served"].items()) + "."]
    lines += ["", f"INT8 minus FP32 (test mean IoU): {m['int8MinusFp32TestMeanIoU'] * 100:+.2f} points. "
              f"PyTorch vs ONNX FP32 max |logit diff|: {m['parity']['maxAbsLogitDiffPytorchVsOnnxFp32']:.2e}. "
              f"Quantization: {json.dumps(card['quantization'])}."]
    return "\n".join(lines)


def load_runs(paths: list[str]) -> list[tuple[str, dict]]:
    """(run folder name, its train.json) for each path, read once for every table."""
    return [(Path(p).parent.name, json.loads(Path(p).read_text())) for p in paths]


def runs_table(runs: list[tuple[str, dict]]) -> str:
    lines = ["| run | arch / switches | init | negatives | loss | seed | epochs run | best epoch | best val mean IoU | "
             "val frame sens. / spec. (40 px) | params | GMACs@512 | minutes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in runs:
        c = s["config"]
        sw = (f"{c['arch']} aspp={c['aspp']} ppm={c['ppm']} att={c['attention']} skips={c['skips']} w={c['width']}"
              if c["arch"] == "improved" else f"{c['arch']} (standard; the switches do not apply) w={c['width']}")
        init = ((s.get("pretrained") or {}).get("file") or ("--init-from" if s.get("initFrom") else "scratch"))
        b = s["best"]
        fl = (f"{fmt(b['valSensitivity'], 3)} / {fmt(b['valSpecificity'], 3)}" if "valSpecificity" in b else "-")
        lines.append(f"| `{name}` | {sw} | {init} | {'yes' if s.get('negatives') else 'no'} | {s['args']['loss']} | "
                     f"{s['args']['seed']} | {s.get('epochsRun', len(s['history']))} | "
                     f"{b['epoch']} | {fmt(b['valIoU'])} | {fl} | {s['params'] / 1e6:.2f} M | {s['gmacs512']:.2f} | {s['seconds'] / 60:.0f} |")
    lines.append("")
    for name, s in runs:
        lines.append(f"- `{name}`: `{s['command']}`")
    return "\n".join(lines)


def seed_spread(runs: list[tuple[str, dict]]) -> str:
    """Runs that differ only by seed (names ending -s<N>): best val mean IoU as mean, spread and range."""
    groups: dict[str, list[float]] = {}
    for name, s in runs:
        stem, _, seed = name.rpartition("-s")
        if stem and seed.isdigit():
            groups.setdefault(stem, []).append(s["best"]["valIoU"])
    lines = []
    for stem, v in groups.items():
        if len(v) < 2:
            continue
        mean = sum(v) / len(v)
        sd = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5
        lines.append(f"- `{stem}` over {len(v)} seeds: best val mean IoU {mean:.4f} ± {sd:.4f} (sd), "
                     f"range {min(v):.4f}–{max(v):.4f}")
    return "\n".join(lines)


def compare_cards(paths: list[str]) -> str:
    """One row per shipped (or candidate) INT8 file: the figures the issue's targets name, side by side."""
    lines = ["| model (card) | arch | test mean IoU INT8 (FP32) | val mean IoU INT8 | frame sens. test | "
             "spec. tissue test | spec. no tissue test | rule | MB | GMACs at input |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in paths:
        c = json.loads(Path(p).read_text())
        m, fl, d = c["metrics"], c["metrics"]["frameLevel"]["test"], c["decision"]
        lines.append(
            f"| `{p}` | {c['architecture']['arch']} | {fmt(m['test']['onnx_int8']['meanIoU'])} "
            f"({fmt(m['test']['pytorch_fp32']['meanIoU'])}) | {fmt(m['val']['onnx_int8']['meanIoU'])} | "
            f"{fmt(fl['sensitivity'], 3)} | {fmt(fl['specificity_tissue'], 3)} | {fmt(fl['specificity_notissue'], 3)} | "
            f"p > {d['threshold']}, ≥ {d['minAreaPx']} px | {c['fileBytes'] / 1e6:.2f} | "
            f"{c['architecture'].get('gmacsAtInput')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--card", required=True)
    ap.add_argument("--runs", nargs="*", default=[])
    ap.add_argument("--compare", nargs="*", default=[], help="more cards (the baseline, other seeds) for one table")
    a = ap.parse_args()
    print(card_tables(json.loads(Path(a.card).read_text())))
    print()
    if a.compare:
        print(compare_cards([a.card, *a.compare]))
        print()
    runs = load_runs(a.runs)
    print(runs_table(runs))
    spread = seed_spread(runs)
    if spread:
        print()
        print(spread)
