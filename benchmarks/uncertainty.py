"""The box ensemble's uncertainty on the written split: the AUROC of the map for the box mask's
wrong pixels, and the Dice gain of its suggested click beside that of the simulated click at the
largest error (evaluation/uncertainty_eval.py), per case.

Run: python benchmarks/uncertainty.py --split validation|test [--cases a,b] [--json PATH]
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
from napari_sam_mis.evaluation.uncertainty_eval import evaluate_uncertainty
from napari_sam_mis.model.engine import SamEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="validation", choices=("validation", "test"))
    ap.add_argument("--cases", help="comma-separated case names (default: all of the split)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jitter", type=float, help="the ensemble's box jitter (default: the module's)")
    ap.add_argument("--votes", choices=("soft", "hard"), help="members vote with probabilities or masks")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from napari_sam_mis.annotate import uncertainty

    if args.jitter is not None:
        uncertainty.JITTER = args.jitter
    if args.votes:
        uncertainty.SOFT = args.votes == "soft"
    print(f"ensemble {uncertainty.ENSEMBLE}, jitter {uncertainty.JITTER}, votes {'soft' if uncertainty.SOFT else 'hard'}",
          file=sys.stderr)
    engine = SamEngine.load("litemedsam", None, args.device)
    rows = {}
    for case in cases_of(args.split):
        if args.cases and case.name not in args.cases.split(","):
            continue
        t0 = time.perf_counter()
        volume, labels = read_case(case, args.data)
        rows[case.name] = evaluate_uncertainty(AnnotationSession(volume, engine), labels)
        rows[case.name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(case.name, json.dumps(rows[case.name]), file=sys.stderr)
    print(f"| case ({args.split}) | slices | uncertainty AUROC | suggested click gain | error-centre click gain |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        au = "-" if r["uncertainty_auroc"] is None else f"{r['uncertainty_auroc']:.3f}"
        print(f"| {name} | {r['uncertainty_slices']} | {au} | {r['suggested_click_gain']:+.4f} | {r['error_click_gain']:+.4f} |")
    aurocs = [r["uncertainty_auroc"] for r in rows.values() if r["uncertainty_auroc"] is not None]
    print(f"| **mean** | | {np.mean(aurocs):.3f} | {np.mean([r['suggested_click_gain'] for r in rows.values()]):+.4f} | "
          f"{np.mean([r['error_click_gain'] for r in rows.values()]):+.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "jitter": uncertainty.JITTER,
                                               "votes": "soft" if uncertainty.SOFT else "hard", "cases": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
