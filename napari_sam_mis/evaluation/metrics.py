"""Volume overlap measures: Dice, and the normalised surface Dice (NSD) at a tolerance in mm; and
the AUROC of a score that should rank wrong pixels above right ones.

NSD counts boundary voxels (the mask minus its erosion) of each mask that lie within the
tolerance of the other mask's boundary, distances in mm from the voxel spacing (Nikolov et al.,
"Clinically applicable segmentation of head and neck anatomy", J Med Internet Res 2021,
defined it over surface elements; counting boundary voxels is the voxel-grid form of it).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import dice

NSD_TOLERANCE_MM = 2.0  # the CVPR 2025 interactive challenge's tolerance

__all__ = ["NSD_TOLERANCE_MM", "auroc", "dice", "surface_dice"]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` items (ties count half), the
    Mann-Whitney U over both counts; NaN when either class is empty."""
    from scipy.stats import rankdata

    scores, positive = np.ravel(scores), np.ravel(positive).astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_dice(pred: np.ndarray, gt: np.ndarray, spacing, tolerance_mm: float = NSD_TOLERANCE_MM) -> float:
    """Share of both boundaries within ``tolerance_mm`` of the other (1 when both are empty, 0 when one is)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if not pred.any() and not gt.any():
        return 1.0
    if not pred.any() or not gt.any():
        return 0.0
    # only the region around both masks matters: crop to it, with room for the tolerance
    both = pred | gt
    margin = [int(np.ceil(tolerance_mm / s)) + 1 for s in spacing]
    lo = [max(0, int(ix.min()) - m) for ix, m in zip(np.nonzero(both), margin)]
    hi = [min(n, int(ix.max()) + m + 1) for ix, n, m in zip(np.nonzero(both), both.shape, margin)]
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    bp, bg = _boundary(pred[crop]), _boundary(gt[crop])
    to_gt = ndimage.distance_transform_edt(~bg, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~bp, sampling=spacing)
    close = np.count_nonzero(to_gt[bp] <= tolerance_mm) + np.count_nonzero(to_pred[bg] <= tolerance_mm)
    return float(close / (np.count_nonzero(bp) + np.count_nonzero(bg)))
