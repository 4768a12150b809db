"""Prompts simulated from ground truth, as the evaluation protocols (and click training) place them.

``box`` is the tight bounding box of the slice's ground truth; ``point`` the interior point
farthest from the boundary; ``points5`` five positive points spread inside the object;
``points5+5`` adds five negative points spread in a band around it; ``box+point`` is the box
plus the farthest interior point (the COSMOS 1050K strategies of "Segment Anything Model for
Medical Images?", Huang et al., Medical Image Analysis 2024). ``clicks3`` is the interactive
protocol: the ``point`` click, then two corrective clicks (``corrective_click``).
Positions are (row, col) slice pixels.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import inner_distance, mask_box
from napari_sam_mis.annotate.prompts import NEGATIVE, POSITIVE, Prompt

PROMPT_KINDS = ("box", "point", "points5", "points5+5", "box+point", "clicks3")
CORRECTIVE_CLICKS = {"clicks3": 2}  # prompt kind -> corrective clicks after the first click
NEGATIVE_BAND_PX = 10  # negatives are placed within this many pixels outside the object


def spread_points(region: np.ndarray, k: int) -> list[tuple[int, int]]:
    """``k`` points inside ``region``: first the one farthest from its boundary, then each next one
    maximising min(distance to the boundary, distance to the points already chosen)."""
    score = inner_distance(region)
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


def corrective_click(pred: np.ndarray, gt: np.ndarray, by_component: bool = True):
    """The next click of the interactive protocol: ((row, col), label) at the interior point of
    the largest error region, POSITIVE if it was missed, NEGATIVE if it is extra; None if no error.
    ``by_component`` False: the region is the larger of all missed and all extra pixels."""
    best = None
    for region, label in ((gt & ~pred, POSITIVE), (pred & ~gt, NEGATIVE)):
        if by_component:
            lab, n = ndimage.label(region)
            if not n:
                continue
            sizes = ndimage.sum(region, lab, range(1, n + 1))
            i = int(np.argmax(sizes))
            size, part = sizes[i], lab == i + 1
        elif region.any():
            size, part = region.sum(), region
        else:
            continue
        if best is None or size > best[0]:
            best = (size, part, label)
    return None if best is None else (farthest_interior_point(best[1]), best[2])