"""Key-slice fill on the MSD spleen crop: key slices every k slices, the slices between filled.

The key slices get the ground-truth masks (what a user leaves there after correcting them).
Naive: the slices between are the shape interpolated between the key masks (signed distance
blend), no model. Ours: ``fill_between`` (interpolated box + interpolated shape as mask prompt).
Dice over the whole volume; one box + propagation is printed for reference.

Run: python benchmarks/keyslice_fill.py [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from napari_sam_mis.annotate.fill import fill_between, interpolated_shape, signed_distance
from napari_sam_mis.annotate.geometry import dice
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.evaluation.protocol import segment_label
from napari_sam_mis.io import read_labels, read_volume
from napari_sam_mis.model.engine import SamEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msd_spleen_crop"
STEPS = (2, 3, 4, 5, 7)


def key_slices(zs: np.ndarray, k: int) -> list[int]:
    keys = list(range(int(zs.min()), int(zs.max()) + 1, k))
    return keys if keys[-1] == zs.max() else keys + [int(zs.max())]


def shape_interpolation(gt: np.ndarray, keys: list[int]) -> np.ndarray:
    pred = np.zeros_like(gt)
    dist = {z: signed_distance(gt[z]) for z in keys}
    for za, zb in zip(keys, keys[1:]):
        pred[za], pred[zb] = gt[za], gt[zb]
        for z in range(za + 1, zb):
            pred[z] = interpolated_shape(dist[za], dist[zb], (z - za) / (zb - za)) > 0
    return pred


def model_fill(session, gt: np.ndarray, keys: list[int]) -> np.ndarray:
    pred = np.zeros_like(gt)
    for z in keys:
        pred[z] = gt[z]
    for r in fill_between(session, {z: gt[z] for z in keys}):
        pred[r.z] = r.mask
    return pred


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_keyslice_fill.json")))
    args = ap.parse_args(argv)
    volume = read_volume(DATA / "spleen2_ct.nii.gz")
    gt = read_labels(DATA / "spleen2_label.nii.gz", volume).array > 0
    session = AnnotationSession(volume, SamEngine.load("litemedsam", device="cpu"))
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    session.embed(range(int(zs.min()), int(zs.max()) + 1))
    rows = []
    for k in STEPS:
        keys = key_slices(zs, k)
        t = time.perf_counter()
        ours = dice(model_fill(session, gt, keys), gt)
        rows.append({"k": k, "key_slices": len(keys), "object_slices": int(zs.size),
                     "shape_interpolation": dice(shape_interpolation(gt, keys), gt), "ours": ours,
                     "fill_s": round(time.perf_counter() - t, 2)})
    one_box = dice(segment_label(session, gt, "box", "3d"), gt)
    print(f"{'k':>2s} {'keys':>5s} {'shape interp.':>14s} {'ours':>7s} {'diff':>8s} {'fill s':>7s}")
    for r in rows:
        print(f"{r['k']:2d} {r['key_slices']:5d} {r['shape_interpolation']:14.4f} {r['ours']:7.4f} "
              f"{r['ours'] - r['shape_interpolation']:+8.4f} {r['fill_s']:7.1f}")
    print(f"median difference: {np.median([r['ours'] - r['shape_interpolation'] for r in rows]):+.4f}")
    print(f"one box on the middle slice + propagation: {one_box:.4f}")
    Path(args.json).write_text(json.dumps({"rows": rows, "one_box_propagation": one_box}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
