"""Automatic proposals on the written split: how many ground-truth structures a proposal finds.

A structure is one label on one slice (2D, every slice that holds the label). It is found when
its best-matching proposal (highest IoU among the slice's proposals) reaches IoU >= 0.5. Beside
it, the box prompt's mask of the same structure (its tight box: the upper reference), the
proposals per slice and the seconds per slice (the slice's embedding excluded: the widget
computes it in the background anyway). In 3D, a label is found when one linked proposal id
(annotate/proposals.py: ``link``) overlaps the label's voxels with IoU >= 0.5.

Run: python benchmarks/proposals.py --split validation|test [--cases a,b] [--threads N] [--json PATH]
     python benchmarks/proposals.py --sweep    (validation only: the SWEEP settings beside the defaults)
Embeddings are cached on disk (the session cache) between runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from napari_sam_mis.annotate.geometry import dice, iou, mask_box
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.proposals import DEFAULTS, chosen, first_masks, link, paint, second_masks
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.embeddings.store import default_cache_dir
from napari_sam_mis.evaluation.cases import cases_of, read_case
from napari_sam_mis.model.engine import SamEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOUND_IOU = 0.5
# settings tried on validation (--sweep) around the defaults, each a change of them (the earlier
# rounds that led to the defaults are in docs/proposals.md)
SWEEP = {
    "defaults": {},
    "first IoU 0.5, min IoU 0.6": {"first_iou": 0.5, "min_iou": 0.6},
    "first IoU 0.7, min IoU 0.8": {"first_iou": 0.7, "min_iou": 0.8},
    "stability 0.75": {"min_stability": 0.75},
    "grid sides 0.16, 0.32, 0.64": {"box_sides": (0.16, 0.32, 0.64)},
    "link IoU 0.2": {"link_iou": 0.2},
    "link IoU 0.5": {"link_iou": 0.5},
}
# the settings each stage depends on (configurations that agree on them share the stage's work)
FIRST_KEYS = ("seed_step", "hint_tolerances", "min_region_share", "box_sides", "stride", "distinct_box_iou",
              "min_pixels", "max_share")
SECOND_KEYS = FIRST_KEYS + ("first_iou",)


def _key(settings, keys) -> tuple:
    return tuple(getattr(settings, k) for k in keys)


def box_reference(session, labels: np.ndarray, values, zs) -> dict:
    """IoU and Dice of the tight box's mask of every structure."""
    ious, dices = [], []
    for z in zs:
        for v in values:
            gt = labels[z] == v
            if gt.any():
                mask = session.predict(int(z), Prompt(box=mask_box(gt))).mask
                ious.append(iou(mask, gt))
                dices.append(dice(mask, gt))
    return {"box_iou": float(np.mean(ious)), "box_dice": float(np.mean(dices)),
            "box_recall": float(np.mean(np.array(ious) >= FOUND_IOU))}


def measure(session, labels: np.ndarray, tried: dict) -> dict:
    """Per settings: structures found, best IoUs, proposals and seconds per slice (each stage timed
    once where settings share it), 3D labels found; with the box reference beside each."""
    values = [int(v) for v in np.unique(labels) if v]
    zs = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    rows = {n: {"best_iou": [], "proposals": [], "seconds": []} for n in tried}
    volumes = {n: np.zeros(labels.shape, np.int32) for n in tried}
    linked = {n: ([], 1) for n in tried}
    for z in range(int(zs.min()), int(zs.max()) + 1):  # every slice between: the 3D links need them all
        session.embedding(z)
        firsts, seconds = {}, {}
        for n, settings in tried.items():
            k1, k2 = _key(settings, FIRST_KEYS), _key(settings, SECOND_KEYS)
            if k1 not in firsts:
                t0 = time.perf_counter()
                firsts[k1] = first_masks(session, z, settings), time.perf_counter() - t0
            if k2 not in seconds:
                t0 = time.perf_counter()
                seconds[k2] = second_masks(session, z, firsts[k1][0], settings), time.perf_counter() - t0
            t0 = time.perf_counter()
            props = chosen(seconds[k2][0], settings)
            rows[n]["seconds"].append(firsts[k1][1] + seconds[k2][1] + time.perf_counter() - t0)
            rows[n]["proposals"].append(len(props))
            linked[n] = link(linked[n][0], props, linked[n][1], settings.link_iou)
            paint(volumes[n][z], linked[n][0])
            for v in values:
                gt = labels[z] == v
                if gt.any():
                    rows[n]["best_iou"].append(max((iou(p.mask, gt) for p in props), default=0.0))
    reference = box_reference(session, labels, values, zs)
    out = {}
    for n, r in rows.items():
        found = np.array(r["best_iou"]) >= FOUND_IOU
        out[n] = {"structures": len(found), "found": int(found.sum()), "recall": float(found.mean()),
                  "best_iou": float(np.mean(r["best_iou"])), "proposals_per_slice": float(np.mean(r["proposals"])),
                  "seconds_per_slice": float(np.mean(r["seconds"])),
                  "labels_3d": len(values),
                  "recall_3d": float(np.mean([best_3d(volumes[n], labels == v) >= FOUND_IOU for v in values])),
                  **reference}
    return out


def best_3d(ids: np.ndarray, gt: np.ndarray) -> float:
    """The highest 3D IoU of one proposal id's voxels with ``gt``."""
    hit = np.unique(ids[gt & (ids > 0)])
    return max((iou(ids == i, gt) for i in hit), default=0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="validation", choices=("validation", "test"))
    ap.add_argument("--cases", help="comma-separated case names (default: all of the split)")
    ap.add_argument("--sweep", action="store_true", help="try the SWEEP settings (validation only)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", help="default: benchmarks/results_proposals_<split>.json (--sweep also writes "
                                   "every setting's figures to benchmarks/results_proposals_sweep.json)")
    args = ap.parse_args(argv)
    if args.sweep and args.split != "validation":
        ap.error("settings are chosen on validation only")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tried = {n: replace(DEFAULTS, **kw) for n, kw in SWEEP.items()} if args.sweep else {"defaults": DEFAULTS}
    engine = SamEngine.load("litemedsam", None, args.device)
    results: dict = {}
    for case in cases_of(args.split):
        if args.cases and case.name not in args.cases.split(","):
            continue
        volume, labels = read_case(case, args.data)
        session = AnnotationSession(volume, engine, cache_dir=default_cache_dir())
        results[case.name] = measure(session, labels, tried)
        print(case.name, json.dumps(results[case.name]["defaults"]), file=sys.stderr)
    if args.sweep:
        print_sweep({name: {c: r[name] for c, r in results.items()} for name in tried})
    print_table(args.split, {c: r["defaults"] for c, r in results.items()})
    out = {"split": args.split, "settings": asdict(DEFAULTS), "found_iou": FOUND_IOU,
           "threads": args.threads or "default", "cases": {c: r["defaults"] for c, r in results.items()}}
    here = Path(__file__).parent
    Path(args.json or here / f"results_proposals_{args.split}.json").write_text(json.dumps(out, indent=1))
    if args.sweep:  # the defaults' figures above, every setting's here
        out["sweep"] = {n: {"changes": {k: list(v) if isinstance(v, tuple) else v for k, v in SWEEP[n].items()},
                            "cases": {c: r[n] for c, r in results.items()}} for n in tried}
        (here / "results_proposals_sweep.json").write_text(json.dumps(out, indent=1))
    return 0


def _means(rows: dict) -> dict:
    """Mean over cases of every figure; ``pooled``: the share of all structures found."""
    keys = [k for k in next(iter(rows.values())) if k not in ("structures", "found", "labels_3d")]
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    mean["pooled"] = sum(r["found"] for r in rows.values()) / sum(r["structures"] for r in rows.values())
    return mean


def print_sweep(by_setting: dict) -> None:
    print("\n| settings (validation) | found, mean of cases | found, all structures | best IoU | 3D labels found "
          "| proposals / slice | s / slice |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rows in by_setting.items():
        m = _means(rows)
        print(f"| {name} | {m['recall']:.3f} | {m['pooled']:.3f} | {m['best_iou']:.3f} | {m['recall_3d']:.2f} | "
              f"{m['proposals_per_slice']:.1f} | {m['seconds_per_slice']:.2f} |")


def print_table(title: str, rows: dict) -> None:
    print(f"\n| case ({title}) | structures | found (IoU >= 0.5) | best IoU | box IoU | box found | box Dice "
          "| 3D labels found | proposals / slice | s / slice |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case, r in rows.items():
        print(f"| {case} | {r['structures']} | {r['recall']:.2f} | {r['best_iou']:.3f} | {r['box_iou']:.3f} | "
              f"{r['box_recall']:.2f} | {r['box_dice']:.3f} | {r['recall_3d']:.2f} | {r['proposals_per_slice']:.1f} "
              f"| {r['seconds_per_slice']:.2f} |")
    mean = _means(rows)
    print(f"| **mean of cases** | {sum(r['structures'] for r in rows.values())} | {mean['recall']:.2f} | "
          f"{mean['best_iou']:.3f} | {mean['box_iou']:.3f} | {mean['box_recall']:.2f} | {mean['box_dice']:.3f} | "
          f"{mean['recall_3d']:.2f} | {mean['proposals_per_slice']:.1f} | {mean['seconds_per_slice']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
