"""Masks and boxes on one slice: a mask's box, widening a box, depth inside a mask, and overlap measures.

Boxes are (row0, col0, row1, col1) in slice pixels, as everywhere in this package.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight (row0, col0, row1, col1) box of a 2D mask, or None if it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def widened_box(box, margin, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """``box`` grown by ``margin`` pixels (one number, or (rows, cols)), clipped to the slice."""
    r0, c0, r1, c1 = box
    mr, mc = (margin, margin) if np.isscalar(margin) else margin
    return (max(0.0, r0 - mr), max(0.0, c0 - mc), min(shape[0] - 1.0, r1 + mr), min(shape[1] - 1.0, c1 + mc))


def model_margin(px: float, geometry) -> tuple[float, float]:
    """``px`` pixels of the model input as (rows, cols) pixels of the slice."""
    return px / geometry.scale[0], px / geometry.scale[1]


def inner_distance(region: np.ndarray) -> np.ndarray:
    """Distance of each region pixel to the nearest pixel outside it (the image border counts as outside)."""
    return ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two masks (1 when both are empty)."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    denom = pred.sum() + gt.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(pred, gt).sum() / denom)
