"""Prompt-strategy evaluation against ground truth (after the COSMOS 1050K protocol of
"Segment Anything Model for Medical Images?", Huang et al., Medical Image Analysis 2024).

Prompts are simulated from each label's ground truth: ``box`` is the tight bounding box of the
slice's ground truth; ``point`` the interior point farthest from the boundary; ``points5`` five
positive points spread inside the object; ``points5+5`` adds five negative points spread in a
band around it; ``box+point`` is the box plus the farthest interior point. ``clicks3`` is the
standard interactive protocol: the ``point`` click, then two corrective clicks, each at the
interior point of the largest error region (positive on a missed region, negative on an extra
one) with the previous low-res logits fed back.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from .prompts import NEGATIVE, POSITIVE, Prompt
from .propagate import mask_box, propagated_masks

PROMPT_KINDS = ("box", "point", "points5", "points5+5", "box+point", "clicks3")
CORRECTIVE_CLICKS = {"clicks3": 2}  # prompt kind -> corrective clicks after the first click
MODES = ("2d", "3d")
NEGATIVE_BAND_PX = 10  # negatives are placed within this many pixels outside the object


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    pred, gt = pred.astype(bool), gt.astype(bool)
    denom = pred.sum() + gt.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(pred, gt).sum() / denom)


def _inner_distance(region: np.ndarray) -> np.ndarray:
    """Distance of each region pixel to the nearest pixel outside it (image border counts as outside)."""
    return ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def spread_points(region: np.ndarray, k: int) -> list[tuple[int, int]]:
    """``k`` points inside ``region``: first the one farthest from its boundary, then each next one
    maximising min(distance to the boundary, distance to the points already chosen)."""
    score = _inner_distance(region)
    rows, cols = np.nonzero(region)
    if rows.size == 0:
        return []
    inner = score[rows, cols]
    best = inner.copy()
    chosen: list[tuple[int, int]] = []
    for _ in range(min(k, rows.size)):
        i = int(np.argmax(best))
        chosen.append((int(rows[i]), int(cols[i])))
        gap = np.hypot(rows - rows[i], cols - cols[i])
        best = np.minimum(best, gap)
        best[i] = -1.0
    return chosen


def farthest_interior_point(mask: np.ndarray) -> tuple[int, int]:
    return spread_points(mask, 1)[0]


def negative_band(mask: np.ndarray, width: int = NEGATIVE_BAND_PX) -> np.ndarray:
    """Background pixels within ``width`` pixels of the object (not touching it)."""
    near = ndimage.binary_dilation(mask, iterations=width)
    touching = ndimage.binary_dilation(mask, iterations=2)
    return near & ~touching


def simulate_prompt(mask: np.ndarray, kind: str) -> Prompt:
    """A prompt of ``kind`` for one slice's ground-truth mask (non-empty)."""
    if kind not in PROMPT_KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}; choose one of {PROMPT_KINDS}")
    mask = mask.astype(bool)
    if kind == "box":
        return Prompt(box=mask_box(mask))
    if kind in ("point", *CORRECTIVE_CLICKS):
        return Prompt(points=[farthest_interior_point(mask)], labels=[POSITIVE])
    if kind == "box+point":
        return Prompt(points=[farthest_interior_point(mask)], labels=[POSITIVE], box=mask_box(mask))
    pos = spread_points(mask, 5)
    neg = spread_points(negative_band(mask), 5) if kind == "points5+5" else []
    return Prompt(points=pos + neg, labels=[POSITIVE] * len(pos) + [NEGATIVE] * len(neg))


def corrective_click(pred: np.ndarray, gt: np.ndarray):
    """The next click of the interactive protocol: ((row, col), label) at the interior point of
    the largest error region, POSITIVE if it was missed, NEGATIVE if it is extra; None if no error."""
    best = None
    for region, label in ((gt & ~pred, POSITIVE), (pred & ~gt, NEGATIVE)):
        lab, n = ndimage.label(region)
        if n:
            sizes = ndimage.sum(region, lab, range(1, n + 1))
            i = int(np.argmax(sizes))
            if best is None or sizes[i] > best[0]:
                best = (sizes[i], lab == i + 1, label)
    return None if best is None else (farthest_interior_point(best[1]), best[2])


def decode_simulated(session, z: int, gt: np.ndarray, kind: str):
    """Decode slice z with the simulated prompt ``kind`` (and its corrective clicks, if any)."""
    gt = gt.astype(bool)
    prompt = simulate_prompt(gt, kind)
    result = session.decode(z, prompt)
    for _ in range(CORRECTIVE_CLICKS.get(kind, 0)):
        click = corrective_click(result.mask, gt)
        if click is None:
            break
        prompt = Prompt(points=[*prompt.points, click[0]], labels=[*prompt.labels, click[1]],
                        mask_logits=result.low_res_logits)
        result = session.decode(z, prompt)
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
            pred[z] = decode_simulated(session, int(z), gt[z], prompt).mask
        return pred
    if mode != "3d":
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    # like the recipe's 3D box prompt: the middle slice's prompt and the object's slice range
    z0 = middle_slice(zs)
    start = decode_simulated(session, z0, gt[z0], prompt)
    for z, mask in propagated_masks(session, z0, start, low=int(zs.min()), high=int(zs.max())).items():
        pred[z] = mask
    return pred


def evaluate(session, labels: np.ndarray, prompt: str = "box", mode: str = "2d",
             names: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Dice per label (over the whole volume) and their mean, in the CLI's JSON shape."""
    if labels.shape != session.volume.shape:
        raise ValueError(f"labels shape {labels.shape} does not match the image shape {session.volume.shape}")
    t0 = time.perf_counter()
    per_label = {}
    for value in (int(v) for v in np.unique(labels) if v != 0):
        gt = labels == value
        per_label[str((names or {}).get(value, value))] = dice(segment_label(session, gt, prompt, mode), gt)
        if progress:
            progress(f"label {value}: Dice {list(per_label.values())[-1]:.4f}")
    return {
        "mean_dice": float(np.mean(list(per_label.values()))) if per_label else float("nan"),
        "per_label": per_label,
        "prompt": prompt,
        "mode": mode,
        "model": session.engine.name,
        "seconds": round(time.perf_counter() - t0, 3),
    }
