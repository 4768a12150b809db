"""Naive LiteMedSAM recipe vs our engine, side by side in one run (same as `napari-sam-mis bench`).

Encoder seconds per slice and slices/s batched, decoder milliseconds from prompt to the
full-resolution mask (box, single point, box + points), decoding while a background thread
encodes, peak RSS; medians and naive/ours ratios, printed as a table and written as JSON.
With no --image it uses the real spleen CT crop next to the repository when present.

    python benchmarks/bench_performance.py [--image CT.nii.gz --labels LABEL.nii.gz] [--device all] [--json out.json]
"""
from __future__ import annotations

import sys
from pathlib import Path

from napari_sam_mis.cli.bench import main

SPLEEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "msd_spleen_crop"

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--image" not in argv and (SPLEEN / "spleen2_ct.nii.gz").exists():
        argv += ["--image", str(SPLEEN / "spleen2_ct.nii.gz"), "--labels", str(SPLEEN / "spleen2_label.nii.gz")]
    sys.exit(main(argv))
