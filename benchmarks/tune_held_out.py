"""Tuning on a case's own labels, measured on the slices held back: each case's labelled slices
are split in two along the slice axis (training/tune.py), the decoder is tuned on the first half
and box / one-click Dice is measured on the second, for the start model before and the tuned
model after, beside the default model (litemedsam) on the same slices.

Run: python benchmarks/tune_held_out.py [--cases abdomen_mr,lesion_000010] [--steps 200] [--out DIR] [--json PATH]
(--out keeps each case's run in DIR/<case>; a run stopped there resumes from its checkpoint.)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from napari_sam_mis.evaluation.cases import load_split, read_case
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.training.loop import CHECKPOINT_NAME
from napari_sam_mis.training.recipe import Recipe
from napari_sam_mis.training.sources import LabelledImage
from napari_sam_mis.training.tune import held_back_dice, split_held_back, tune

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="abdomen_mr,lesion_000010")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--start-from", default="litemedsam_clicks")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", help="keep the runs here (resumable); default: a temporary folder")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    cases = {c.name: c for c in load_split()}
    default = SamEngine.load("litemedsam", device="cpu")
    rows = {}
    for name in args.cases.split(","):
        case = cases[name]
        volume, labels = read_case(case, args.data)
        image = LabelledImage(name, volume, labels)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(args.out or tmp) / name
            result = tune([image], out, Recipe(steps=args.steps, start_from=args.start_from), holdout=0.5,
                          resume=(out / CHECKPOINT_NAME).is_file())
        train_image, held_labels, held = split_held_back(image, 0.5)
        rows[name] = {"split": case.split, "held_back": held, "default_litemedsam": held_back_dice(default, [train_image], [held_labels]),
                      "before": result["before"], "after": result["after"], "seconds": round(time.perf_counter() - t0, 1)}
        print(name, json.dumps(rows[name]), file=sys.stderr, flush=True)
    print(f"steps {args.steps}, start from {args.start_from}; Dice on the held-back slices")
    print("| case | held-back slices | litemedsam box / click | start box / click | tuned box / click | click gain |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        d, b, a = r["default_litemedsam"], r["before"], r["after"]
        print(f"| {name} | {len(r['held_back'])} | {d['box']:.3f} / {d['point']:.3f} | {b['box']:.3f} / {b['point']:.3f} | "
              f"{a['box']:.3f} / {a['point']:.3f} | {a['point'] - b['point']:+.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "start_from": args.start_from, "cases": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
