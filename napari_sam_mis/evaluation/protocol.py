"""Prompt-strategy evaluation against ground truth: Dice per label of simulated prompts, on every
slice (2d) or one prompt on the middle slice and propagation (3d). The prompts are those of
``simulate``; corrective clicks are follow-up clicks of ``AnnotationSession.segment``, which feeds
the previous low-res logits back.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from napari_sam_mis.annotate.geometry import dice
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.propagate import propagated_masks
from napari_sam_mis.evaluation.simulate import CORRECTIVE_CLICKS, corrective_click, simulate_prompt

MODES = ("2d", "3d")


def segment_simulated(session, z: int, gt: np.ndarray, kind: str):
    """Segment slice z with the simulated prompt ``kind`` (and its corrective clicks, if any)."""
    gt = gt.astype(bool)
    prompt = simulate_prompt(gt, kind)
    result = session.segment(z, prompt)
    for _ in range(CORRECTIVE_CLICKS.get(kind, 0)):
        click = corrective_click(result.mask, gt)
        if click is None:
            break
        prompt = Prompt(points=[*prompt.points, click[0]], labels=[*prompt.labels, click[1]])
        result = session.segment(z, prompt)
    return result


def middle_slice(zs: np.ndarray) -> int:
    """The object's middle slice as in the LiteMedSAM 3D recipe, moved to a slice that has it."""
    mid = int((zs.max() - zs.min()) / 2 + zs.min())
    return int(zs[np.argmin(np.abs(zs - mid))])


def segment_label(session, gt: np.ndarray, prompt: str, mode: str) -> np.ndarray:
    """Predicted mask volume for one label's ground truth ``gt`` (z, y, x) bool."""
    pred = np.zeros(gt.shape, bool)
    zs = np.flatnonzero(gt.reshape(gt.shape[0], -1).any(axis=1))
    if mode == "2d":
        for z in zs:
            pred[z] = segment_simulated(session, int(z), gt[z], prompt).mask
        return pred
    if mode != "3d":
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    # like the recipe's 3D box prompt: the middle slice's prompt and the object's slice range
    z0 = middle_slice(zs)
    start = segment_simulated(session, z0, gt[z0], prompt)
    for z, mask in propagated_masks(session, z0, start, low=int(zs.min()), high=int(zs.max())).items():
        pred[z] = mask
    return pred


def labels_to_evaluate(session, labels: np.ndarray, names: dict | None = None):
    """(value, key in the JSON's ``per_label``, ground-truth mask) of every label, after checking
    that the labels lie on the session's grid."""
    if labels.shape != session.volume.shape:
        raise ValueError(f"labels shape {labels.shape} does not match the image shape {session.volume.shape}")
    for value in (int(v) for v in np.unique(labels) if v != 0):
        yield value, str((names or {}).get(value, value)), labels == value


def evaluate(session, labels: np.ndarray, prompt: str = "box", mode: str = "2d",
             names: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Dice per label (over the whole volume) and their mean, in the CLI's JSON shape."""
    t0 = time.perf_counter()
    per_label = {}
    for value, key, gt in labels_to_evaluate(session, labels, names):
        per_label[key] = dice(segment_label(session, gt, prompt, mode), gt)
        if progress:
            progress(f"label {value}: Dice {per_label[key]:.4f}")
    return {
        "mean_dice": float(np.mean(list(per_label.values()))) if per_label else float("nan"),
        "per_label": per_label,
        "prompt": prompt,
        "mode": mode,
        "model": session.engine.name,
        "seconds": round(time.perf_counter() - t0, 3),
    }
