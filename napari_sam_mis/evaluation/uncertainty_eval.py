"""How well the uncertainty map points at the box mask's errors, and what its suggested click
gives, on every slice of every label (box prompts, as ``eval --prompt box --mode 2d``).

- ``uncertainty_auroc``: the AUROC of the map for the pixels the box's mask gets wrong, pooled
  over the slices, within each slice's box grown by GROW of its side (the pixels far from any
  box are right and certain, and would only inflate it).
- ``suggested_click_gain``: mean Dice after one suggested click (position and sign from the
  ensemble, no ground truth) minus Dice before; 0 where nothing is suggested.
- ``error_click_gain``: the same for the simulated click at the centre of the largest error
  (which looks at the ground truth), for comparison.
"""
from __future__ import annotations

import time

import numpy as np

from napari_sam_mis.annotate.geometry import dice
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.evaluation.metrics import auroc
from napari_sam_mis.evaluation.protocol import labels_to_evaluate
from napari_sam_mis.evaluation.simulate import corrective_click, simulate_prompt

GROW = 0.25


def _around(box, shape) -> tuple[slice, slice]:
    r0, c0, r1, c1 = box
    dr, dc = GROW * (r1 - r0), GROW * (c1 - c0)
    return (slice(max(0, int(r0 - dr)), min(shape[0], int(np.ceil(r1 + dr)) + 1)),
            slice(max(0, int(c0 - dc)), min(shape[1], int(np.ceil(c1 + dc)) + 1)))


def _gain(session, z, box, click, gt, before: float) -> float:
    if click is None:
        return 0.0
    (r, c), sign = click
    return dice(session.segment(z, Prompt(points=[(r, c)], labels=[sign], box=box)).mask, gt) - before


def evaluate_uncertainty(session, labels: np.ndarray, names: dict | None = None, progress=None) -> dict:
    t0 = time.perf_counter()
    scores, wrong, suggested, simulated, per_label = [], [], [], [], {}
    for value, key, gt_volume in labels_to_evaluate(session, labels, names):
        label_scores, label_wrong = [], []
        for z in np.flatnonzero(gt_volume.reshape(gt_volume.shape[0], -1).any(axis=1)):
            z, gt = int(z), gt_volume[z]
            box = simulate_prompt(gt, "box").box
            mask = session.segment(z, Prompt(box=box)).mask
            unc = session.uncertainty(z, box)
            window = _around(box, gt.shape)
            label_scores.append(unc.map[window].ravel())
            label_wrong.append((mask != gt)[window].ravel())
            before = dice(mask, gt)
            suggested.append(_gain(session, z, box, unc.next_click(), gt, before))
            simulated.append(_gain(session, z, box, corrective_click(mask, gt), gt, before))
        scores += label_scores
        wrong += label_wrong
        per_label[key] = _number(auroc(np.concatenate(label_scores), np.concatenate(label_wrong)))
        if progress:
            progress(f"label {value}: uncertainty AUROC {per_label[key]}")
    return {"uncertainty_auroc": _number(auroc(np.concatenate(scores), np.concatenate(wrong))),
            "uncertainty_auroc_per_label": per_label,
            "suggested_click_gain": float(np.mean(suggested)), "error_click_gain": float(np.mean(simulated)),
            "uncertainty_slices": len(suggested), "uncertainty_seconds": round(time.perf_counter() - t0, 3)}


def _number(value: float) -> float | None:
    """None (JSON null) for an AUROC without both classes (a mask without errors), else the value."""
    return None if np.isnan(value) else round(float(value), 4)
