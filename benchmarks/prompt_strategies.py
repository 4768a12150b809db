"""Dice of every simulated prompt kind (2D) and of one-box propagation (3D) on the shared cases.

One session per case, so each slice is embedded once and every prompt kind reuses it.
Run: python benchmarks/prompt_strategies.py [--model NAME --checkpoint PATH] [--json PATH]
Prints a Markdown table (rows: cases; columns: prompt kinds).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.evaluation.protocol import evaluate
from napari_sam_mis.evaluation.simulate import PROMPT_KINDS
from napari_sam_mis.io import read_label_array, read_volume
from napari_sam_mis.model.engine import SamEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = {
    "msd_spleen_crop": (DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz", DATA / "msd_spleen_crop" / "spleen2_label.nii.gz"),
    "lesion 000009": (DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz", None),
    "lesion 000010": (DATA / "deeplesion_medsam2" / "CT_Lesion_000010_01_01_078-090.npz", None),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="litemedsam")
    ap.add_argument("--checkpoint")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    engine = SamEngine.load(args.model, args.checkpoint, args.device)
    columns = [f"{p} 2d" for p in PROMPT_KINDS] + ["box 3d"]
    table = {}
    for case, (image, labels) in CASES.items():
        volume = read_volume(image)
        gt = read_label_array(labels or image, volume)
        session = AnnotationSession(volume, engine)
        row = {f"{p} 2d": evaluate(session, gt, p, "2d")["mean_dice"] for p in PROMPT_KINDS}
        row["box 3d"] = evaluate(session, gt, "box", "3d")["mean_dice"]
        table[case] = row
        print(case, json.dumps(row), file=sys.stderr)
    print(f"| case ({engine.name}) | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for case, row in table.items():
        print(f"| {case} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": engine.name, "dice": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
