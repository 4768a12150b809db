"""The image-driven region around a click: the intensity-similar connected region of the display
slice, which gives a click's candidate boxes (annotate/clicks.py)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

SMOOTH_SIGMA_PX = 1.0  # display slice smoothing before region growing
SMOOTH_RADIUS_PX = int(4 * SMOOTH_SIGMA_PX + 0.5)  # scipy's Gaussian reaches 4 sigma
HINT_WINDOW_PX = 48  # region hints are searched this far from the click first (region_hint)
EDGE_PX = 3  # a window's opening can differ within 2 px of its edge (disk of radius 1, twice)


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


def region_hint(display: np.ndarray, seed: tuple[int, int], tolerance: float) -> np.ndarray:
    """The connected region around ``seed`` whose smoothed intensity (Gaussian, SMOOTH_SIGMA_PX) is
    within ``tolerance`` of the seed's (median of a 5x5 window), opened by a small disk to cut thin
    leaks, holes filled, searched within half the slice size of the seed.

    It is searched in a window of HINT_WINDOW_PX around the seed first, and in the whole reach
    only when the region comes within EDGE_PX of that window's edge inside the slice: the result
    is the same, and a small object on a 512 x 512 slice costs a 16th of the work."""
    display = np.asarray(display, np.float32)
    h, w = display.shape
    full = max(h, w) // 2
    for reach in (min(HINT_WINDOW_PX, full), full):
        window = (max(0, seed[0] - reach), min(h, seed[0] + reach + 1), max(0, seed[1] - reach), min(w, seed[1] + reach + 1))
        region, bbox = _region_in_window(display, seed, tolerance, window)
        (r0, r1, c0, c1), (b0, b1, d0, d1) = window, bbox
        clear_of_edges = ((r0 == 0 or b0 - r0 >= EDGE_PX) and (r1 == h or r1 - b1 >= EDGE_PX)
                          and (c0 == 0 or d0 - c0 >= EDGE_PX) and (c1 == w or c1 - d1 >= EDGE_PX))
        if clear_of_edges:
            break
    out = np.zeros((h, w), bool)
    b0, b1, d0, d1 = bbox
    out[b0:b1, d0:d1] = region
    out[seed] = True
    return out


def _region_in_window(display, seed, tolerance, window):
    """``region_hint`` inside ``window`` (row0, row1, col0, col1): (the region cropped to its box,
    that box in slice pixels)."""
    h, w = display.shape
    r0, r1, c0, c1 = window
    m = SMOOTH_RADIUS_PX  # smooth with a margin, so that the window's values are the whole slice's
    p0, p1, q0, q1 = max(0, r0 - m), min(h, r1 + m), max(0, c0 - m), min(w, c1 + m)
    sub = ndimage.gaussian_filter(display[p0:p1, q0:q1], SMOOTH_SIGMA_PX)[r0 - p0 : r1 - p0, c0 - q0 : c1 - q0]
    sr, sc = seed[0] - r0, seed[1] - c0
    level = np.median(sub[max(0, sr - 2) : sr + 3, max(0, sc - 2) : sc + 3])
    similar = ndimage.binary_opening(np.abs(sub - level) <= tolerance, _disk(1))
    labels, n = ndimage.label(similar)
    if n == 0:
        return np.ones((1, 1), bool), (seed[0], seed[0] + 1, seed[1], seed[1] + 1)
    lab = labels[sr, sc]
    if lab == 0:  # the seed fell in a gap the opening made: take the nearest region
        _, (ir, ic) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        lab = labels[ir[sr, sc], ic[sr, sc]]
    rows, cols = ndimage.find_objects(labels, max_label=lab)[lab - 1]
    bbox = (r0 + rows.start, r0 + rows.stop, c0 + cols.start, c0 + cols.stop)
    return _fill_holes(labels[rows, cols] == lab), bbox


def _fill_holes(region: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` (4-connected background) by one labelling of the background:
    a background component that touches no border is a hole."""
    background, _ = ndimage.label(~region)
    border = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    open_ = np.zeros(background.max() + 1, bool)
    open_[border] = True
    open_[0] = False  # the region itself
    return ~open_[background]


class RegionHints:
    """``region_hint`` of one display slice, each (click, tolerance) computed once per decode."""

    def __init__(self, display: np.ndarray):
        self.display = np.asarray(display, np.float32)
        self.shape = self.display.shape
        self._done: dict = {}

    def __call__(self, seed: tuple[int, int], tolerance: float) -> np.ndarray:
        key = (tuple(seed), tolerance)
        if key not in self._done:
            self._done[key] = region_hint(self.display, tuple(seed), tolerance)
        return self._done[key]
