"""Coronal and sagittal box prompts on the MSD spleen crop (5 mm slices, 0.8 mm pixels):
slice fed as is vs resampled to square pixels (with and without the prompt's sub-pixel mapping).

For each plane, --n slices spread over those holding at least 100 spleen pixels get the tight
ground-truth box; Dice against the ground truth of that slice. Prints a table, writes JSON.

    python benchmarks/bench_plane_resampling.py [--n 12] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SPLEEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "msd_spleen_crop"


def dice(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float(2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(SPLEEN / "spleen2_ct.nii.gz"))
    ap.add_argument("--labels", default=str(SPLEEN / "spleen2_label.nii.gz"))
    ap.add_argument("--n", type=int, default=12, help="slices per plane")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args(argv)

    from napari_sam_mis.annotate.geometry import mask_box
    from napari_sam_mis.annotate.masks import mask_for_prompt
    from napari_sam_mis.annotate.prompts import Prompt
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.core import planes
    from napari_sam_mis.io import read_volume
    from napari_sam_mis.model.engine import SamEngine

    vol = read_volume(args.image)
    gt = read_volume(args.labels).array > 0
    engine = SamEngine.load("litemedsam", device="cpu")
    results: dict[str, dict[str, list[float]]] = {}
    default_ratio = planes.ISOTROPIC_RATIO
    for axis in (1, 2):
        name = planes.AXIS_NAMES[axis]
        plane_gt = np.moveaxis(gt, axis, 0)
        have = np.flatnonzero(plane_gt.reshape(plane_gt.shape[0], -1).sum(1) >= 100)
        picked = [int(i) for i in have[np.linspace(0, len(have) - 1, min(args.n, len(have))).round().astype(int)]]
        boxes = {i: Prompt(box=mask_box(plane_gt[i])) for i in picked}
        res = results[name] = {"slices": picked}
        for variant, ratio in (("as is", float("inf")), ("resampled", default_ratio)):
            planes.ISOTROPIC_RATIO = ratio
            session = AnnotationSession(vol, engine, axis=axis, batch_size=4)
            session.embed(picked)
            print(f"{name} {variant}: grid {session.plane.model_shape} for slices {session.plane.shape}", file=sys.stderr)
            res[variant] = [dice(session.predict(i, boxes[i]).mask, plane_gt[i]) for i in picked]
            if variant == "resampled":  # same embeddings, prompt scaled without the sub-pixel mapping
                res["resampled, plain prompt"] = [
                    dice(mask_for_prompt(engine, session.embedding(i), boxes[i]).mask, plane_gt[i]) for i in picked]
        planes.ISOTROPIC_RATIO = default_ratio

    variants = ("as is", "resampled, plain prompt", "resampled")
    print(f"\nBox-prompt Dice, LiteMedSAM, {args.n} slices per plane (median / mean / min)")
    print(f"{'plane':9} " + " ".join(f"{v:>26}" for v in variants) + f" {'ratio of means':>15}")
    for name, res in results.items():
        cells = [f"{np.median(res[v]):.3f} / {np.mean(res[v]):.3f} / {np.min(res[v]):.3f}" for v in variants]
        ratio = np.mean(res["resampled"]) / np.mean(res["as is"])
        print(f"{name:9} " + " ".join(f"{c:>26}" for c in cells) + f" {ratio:15.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"image": args.image, "isotropic_ratio": default_ratio,
                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
