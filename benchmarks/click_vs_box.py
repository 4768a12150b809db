"""Latency of one click against one box prompt with the box-trained LiteMedSAM, on the CPU.

A click goes through annotate/clicks.py: candidate boxes from the image, the first one decoded, the
others only when it is not confident, then selection and click edits; a box is one plain decode.
Both run through AnnotationSession.decode on the same embedded slice, interleaved, ``--runs``
times each (after one warm-up), on EVERY slice of the object: the click is the evaluation's first
click (the interior point farthest from the boundary), the box the ground truth's. The table
gives, per case, the medians over all slices and runs, the click/box ratio (target: at most 2)
and how many candidates the clicks decoded.

Run: python benchmarks/click_vs_box.py [--runs 5] [--threads 2] [--json PATH]
(results_click_vs_box.json beside this file is one such run.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from napari_sam_mis.annotate.geometry import mask_box
from napari_sam_mis.annotate.prompts import POSITIVE, Prompt
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.evaluation.simulate import farthest_interior_point
from napari_sam_mis.io import read_label_array, read_volume
from napari_sam_mis.model.engine import SamEngine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = {
    "msd_spleen_crop (166x164)": (DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz", DATA / "msd_spleen_crop" / "spleen2_label.nii.gz"),
    "lesion 000009 (512x512)": (DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz", None),
    "lesion 000010 (512x512)": (DATA / "deeplesion_medsam2" / "CT_Lesion_000010_01_01_078-090.npz", None),
}


def count_decoder_calls(engine) -> list:
    """Wrap engine.decode and engine.decode_candidates to record the prompts of every call."""
    calls = []
    raw, candidates = engine.decode, engine.decode_candidates

    def counted_raw(features, coords=None, labels=None, boxes=None, mask_logits=None, multimask=False):
        calls.append(len(boxes) if boxes is not None else len(coords))
        return raw(features, coords, labels, boxes, mask_logits, multimask)

    def counted_candidates(features, boxes):
        calls.append(len(boxes))
        return candidates(features, boxes)

    engine.decode, engine.decode_candidates = counted_raw, counted_candidates
    return calls


def time_case(engine, image, labels, runs: int) -> dict:
    volume = read_volume(image)
    gt = read_label_array(labels or image, volume) > 0
    session = AnnotationSession(volume, engine)
    times = {"box": [], "click": []}
    candidates = []
    calls = count_decoder_calls(engine)
    for z in (int(v) for v in np.flatnonzero(gt.reshape(gt.shape[0], -1).any(axis=1))):
        session.embedding(z)
        box = Prompt(box=mask_box(gt[z]))
        click = Prompt(points=[farthest_interior_point(gt[z])], labels=[POSITIVE])
        session.predict(z, box)  # warm-up
        calls.clear()
        session.predict(z, click)
        candidates.append(sum(calls))
        for _ in range(runs):
            for name, prompt in (("box", box), ("click", click)):
                t0 = time.perf_counter()
                session.predict(z, prompt)
                times[name].append(time.perf_counter() - t0)
    del engine.decode, engine.decode_candidates  # back to the class methods
    box_ms, click_ms = (1000 * float(np.median(times[k])) for k in ("box", "click"))
    return {"slices": len(candidates), "shape": list(gt.shape[1:]), "runs_per_slice": runs, "box_ms": box_ms,
            "click_ms": click_ms, "ratio": click_ms / box_ms, "candidates_per_click": candidates,
            "box_ms_all": [1000 * t for t in times["box"]], "click_ms_all": [1000 * t for t in times["click"]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per slice and prompt (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = SamEngine.load("litemedsam", device="cpu")
    results = {}
    for case, (image, labels) in CASES.items():
        results[case] = time_case(engine, image, labels, args.runs)
        brief = {k: v for k, v in results[case].items() if not k.endswith("_all")}
        print(case, json.dumps(brief), file=sys.stderr)
    print(f"| case (CPU, {torch.get_num_threads()} threads; medians over slices x {args.runs} runs) "
          "| slices | box ms | click ms | click/box | candidates per click (mean) |")
    print("|---|---:|---:|---:|---:|---:|")
    for case, r in results.items():
        print(f"| {case} | {r['slices']} | {r['box_ms']:.1f} | {r['click_ms']:.1f} | {r['ratio']:.2f} "
              f"| {np.mean(r['candidates_per_click']):.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": engine.name, "device": "cpu", "cases": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
