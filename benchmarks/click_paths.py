"""Click paths on the written split: 2D prompts (box, point, clicks3, box+point) and the
interactive protocol (first box or click, 5 corrective clicks), per case and model.

Run: python benchmarks/click_paths.py --split validation [--models litemedsam,litemedsam_clicks]
     [--data DIR] [--json PATH]
Prints one Markdown table per split: Dice over the volume (mean over the case's labels), and
the click targets per case (point >= 0.9 x box, clicks3 >= box, box+point >= box - 0.01).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.evaluation.cases import cases_of, read_case
from napari_sam_mis.evaluation.interactive import evaluate_interactive
from napari_sam_mis.evaluation.protocol import evaluate
from napari_sam_mis.model.engine import SamEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KINDS_2D = ("box", "point", "clicks3", "box+point")


def targets_met(row: dict) -> dict:
    return {"point >= 0.9 box": row["point"] >= 0.9 * row["box"], "clicks3 >= box": row["clicks3"] >= row["box"],
            "box+point >= box - 0.01": row["box+point"] >= row["box"] - 0.01}


def measure(case, volume, labels, engine) -> dict:
    session = AnnotationSession(volume, engine)
    row = {k: evaluate(session, labels, k, "2d")["mean_dice"] for k in KINDS_2D}
    for first in ("box", "click"):
        res = evaluate_interactive(session, labels, first)
        row[f"interactive {first}"] = {k: res[k] for k in ("dice_per_step", "nsd_per_step", "final_dice",
                                                           "final_nsd", "dice_auc", "nsd_auc")}
    row["targets"] = targets_met(row)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="validation", choices=("validation", "test"))
    ap.add_argument("--models", default="litemedsam,litemedsam_clicks")
    ap.add_argument("--cases", help="comma-separated case names (default: all of the split)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    cases = [c for c in cases_of(args.split) if not args.cases or c.name in args.cases.split(",")]
    results: dict = {}
    for name in args.models.split(","):
        engine = SamEngine.load(name, None, args.device)
        for case in cases:
            t0 = time.perf_counter()
            volume, labels = read_case(case, args.data)
            row = measure(case, volume, labels, engine)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            results.setdefault(case.name, {})[name] = row
            print(case.name, name, json.dumps({k: v for k, v in row.items() if k in KINDS_2D}),
                  "interactive box", [round(d, 3) for d in row["interactive box"]["dice_per_step"]], file=sys.stderr)
    cols = [*KINDS_2D, "interactive box: start -> 5 clicks", "interactive click: start -> 5 clicks", "targets met"]
    print(f"| case ({args.split}) | model | " + " | ".join(cols) + " |")
    print("|---|---|" + "---:|" * len(cols))
    for case, per_model in results.items():
        for model, row in per_model.items():
            inter = [f"{row[f'interactive {f}']['dice_per_step'][0]:.3f} -> {row[f'interactive {f}']['final_dice']:.3f}"
                     for f in ("box", "click")]
            met = sum(row["targets"].values())
            print(f"| {case} | {model} | " + " | ".join(f"{row[k]:.3f}" for k in KINDS_2D) + " | "
                  + " | ".join(inter) + f" | {met}/3 |")
    for model in args.models.split(","):
        rows = [per_model[model] for per_model in results.values()]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in KINDS_2D}
        final = float(np.mean([r["interactive box"]["final_dice"] for r in rows]))
        print(f"| **mean** | {model} | " + " | ".join(f"{mean[k]:.3f}" for k in KINDS_2D) + f" | {final:.3f} | | |")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
