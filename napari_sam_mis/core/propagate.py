"""Slice-to-slice propagation: each next slice is prompted with the box of the previous mask."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .decode import DecodeResult
from .prompts import Prompt

# The LiteMedSAM 3D recipe widens the previous mask's box by 3 pixels of the 256-pixel model input.
BOX_MARGIN_MODEL_PX = 3.0


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight (row0, col0, row1, col1) box of a 2D mask, or None if it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def widened_box(box, margin: float, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    r0, c0, r1, c1 = box
    return (max(0.0, r0 - margin), max(0.0, c0 - margin), min(shape[0] - 1.0, r1 + margin), min(shape[1] - 1.0, c1 + margin))


def propagate(session, start_z: int, start_mask: np.ndarray, direction: int, stop_z: int | None = None,
              min_score: float = 0.0) -> Iterator[tuple[int, DecodeResult]]:
    """Yield (z, result) for slices start_z+direction, ... until the mask vanishes, the decoder's
    score falls below ``min_score``, or ``stop_z`` (inclusive) / the volume's edge is passed."""
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    n = session.volume.n_slices
    last = (n - 1 if direction > 0 else 0) if stop_z is None else int(np.clip(stop_z, 0, n - 1))
    previous = start_mask
    z = start_z + direction
    while (z <= last if direction > 0 else z >= last):
        box = mask_box(previous)
        if box is None:
            return
        emb = session.embedding(z)
        margin = BOX_MARGIN_MODEL_PX / emb.geometry.scale[0]
        result = session.decode(z, Prompt(box=widened_box(box, margin, previous.shape)))
        if not result.mask.any() or result.score < min_score:
            return
        yield z, result
        previous = result.mask
        z += direction


def propagate_both_ways(session, start_z: int, start_mask: np.ndarray, **kwargs) -> dict[int, np.ndarray]:
    """Masks of all slices reached from ``start_z`` upwards and downwards (start slice included)."""
    masks = {start_z: start_mask}
    for direction in (1, -1):
        for z, result in propagate(session, start_z, start_mask, direction, **kwargs):
            masks[z] = result.mask
    return masks
