"""Random prompts for click training, in the 256 x 256 model frame: positions are (x, y)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import inner_distance
from napari_sam_mis.evaluation.simulate import corrective_click as simulated_corrective_click


def _sample_in(region: np.ndarray, rng, weights: np.ndarray | None = None) -> tuple[float, float]:
    """A random (x, y) inside ``region`` (model frame), optionally weighted, with sub-pixel jitter."""
    w = (weights if weights is not None else region.astype(np.float64)).ravel()
    flat = int(rng.choice(w.size, p=w / w.sum()))
    r, c = divmod(flat, region.shape[1])
    jitter = rng.uniform(-0.5, 0.5, 2)
    return float(c + jitter[0]), float(r + jitter[1])


def positive_click(mask: np.ndarray, rng) -> tuple[float, float]:
    """Half the time near the middle of the object (weight = squared distance to its edge), else anywhere in it."""
    if rng.random() < 0.5:
        return _sample_in(mask, rng, inner_distance(mask) ** 2)
    return _sample_in(mask, rng)


def negative_click(mask: np.ndarray, rng) -> tuple[float, float]:
    """Outside the object, 3 to 5..20 px from it (anywhere outside if that band is empty)."""
    width = int(rng.integers(5, 21))
    band = ndimage.binary_dilation(mask, iterations=width) & ~ndimage.binary_dilation(mask, iterations=2)
    if not band.any():
        band = ~mask
    return _sample_in(band, rng)


def corrective_click_xy(pred: np.ndarray, gt: np.ndarray, rng) -> tuple[tuple[float, float], int]:
    """The click a user would add: in the middle of the larger error (missed -> positive, extra ->
    negative); with no error a positive click anywhere on the object."""
    click = simulated_corrective_click(pred, gt, by_component=False)
    if click is None:
        return positive_click(gt, rng), 1
    (r, c), label = click
    return (float(c), float(r)), int(label)


def jittered_box(box: np.ndarray, rng, size: int) -> np.ndarray:
    w, h = box[2] - box[0] + 1, box[3] - box[1] + 1
    shift = rng.uniform(-1, 1, 4) * (np.array([w, h, w, h]) * 0.05 + 1.0)
    out = np.clip(box + shift, 0, size - 1).astype(np.float32)
    return np.array([min(out[0], out[2]), min(out[1], out[3]), max(out[0], out[2]), max(out[1], out[3])], np.float32)
