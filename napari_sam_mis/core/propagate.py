"""Slice-to-slice propagation, re-propagation around slices the user fixed, and key-slice fill.

Propagation (measured on the shared spleen and lesion cases, see docs/volumes.md): each next
slice is decoded twice from the previous slice's result, once with its mask's bounding box
widened by 3 pixels of the 256-pixel model input (the LiteMedSAM 3D recipe), once with that box
plus the previous low-res logits as mask prompt. The mask prompt keeps the shape from drifting
(box-only shrinks or swells a little at every slice); where the two decodes disagree (IoU below
``agreement``) the mask prompt is leading the decoder astray and their union is kept. Points
sampled inside the previous mask, a wider or a tighter box and multimask choice by overlap with
the previous slice all measured worse.

Propagation stops at the volume's edge, at the slice range given, before a locked slice (a slice
the user committed or corrected: it is never overwritten, and it already anchors the slices
beyond it), or where the object ends: the mask vanishes, or its IoU with the previous slice's
mask or the decoder's score falls below a threshold.

Key-slice fill: between two key slices the prompts are interpolated: the key boxes linearly, and
the signed distance maps of the two key masks (shape interpolation), which give the mask prompt.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .decode import DecodeResult
from .prompts import Prompt

# The LiteMedSAM 3D recipe widens the previous mask's box by 3 pixels of the 256-pixel model input.
BOX_MARGIN_MODEL_PX = 3.0
UP, DOWN = 1, -1
LOW_RES_SIDE = 256  # the mask decoder's low-res grid (and mask-prompt size) of LiteMedSAM and SAM
# Mask prompt of key-slice fill: logits per low-res pixel of signed distance (measured: 0.25
# beats 0.5 and 1 on the spleen, and a box alone).
FILL_LOGITS_PER_PX = 0.25


@dataclass
class PropagationSettings:
    box_margin: float = BOX_MARGIN_MODEL_PX  # model-input pixels added around the previous box
    agreement: float = 0.85  # box-only vs box+mask IoU below which their union is kept
    # Where the object ends. IoU 0.5 stops lesion 000009 at its ends without cutting lesion 000010;
    # the decoder's score is no use (it is 0.4..0.6 all along lesion 000010), so it is off.
    min_iou: float = 0.5  # stop where the mask overlaps the previous slice's mask less (IoU)
    min_score: float = 0.0  # stop where the decoder's predicted IoU (box-only decode) is lower


@dataclass
class SliceResult:
    """One propagated slice."""

    z: int
    mask: np.ndarray  # (H, W) bool
    score: float  # decoder's predicted IoU of the box-only decode
    iou_previous: float  # IoU with the mask of the slice it was prompted from
    low_res_logits: np.ndarray | None = None


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


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def slice_range(n_slices: int, start_z: int, direction: int, stop_z: int | None = None) -> range:
    """Slices after ``start_z`` in ``direction`` up to ``stop_z`` (inclusive) or the volume's edge."""
    if direction not in (UP, DOWN):
        raise ValueError(f"direction must be +1 (up) or -1 (down), got {direction!r}")
    if not 0 <= start_z < n_slices:
        raise ValueError(f"start slice {start_z} is outside the volume (0..{n_slices - 1})")
    edge = n_slices - 1 if direction == UP else 0
    last = edge if stop_z is None else int(np.clip(stop_z, 0, n_slices - 1))
    return range(start_z + direction, last + direction, direction) if (last - start_z) * direction > 0 else range(0)


def next_slice(session, z: int, previous: np.ndarray, previous_logits: np.ndarray | None,
               settings: PropagationSettings) -> SliceResult | None:
    """Decode slice ``z`` from the neighbouring slice's mask (and logits); None if it is empty."""
    box = mask_box(previous)
    if box is None:
        return None
    box = widened_box(box, model_margin(settings.box_margin, session.embedding(z).geometry), previous.shape)
    by_box = session.decode(z, Prompt(box=box))
    mask, logits = by_box.mask, by_box.low_res_logits
    if previous_logits is not None:
        by_both = session.decode(z, Prompt(box=box, mask_logits=previous_logits))
        if iou(by_box.mask, by_both.mask) >= settings.agreement:
            mask, logits = by_both.mask, by_both.low_res_logits
        else:
            mask = by_box.mask | by_both.mask
    if not mask.any():
        return None
    return SliceResult(z, mask, by_box.score, iou(mask, previous), logits)


def propagate(session, start_z: int, start: DecodeResult | np.ndarray, direction: int, stop_z: int | None = None,
              locked: Iterable[int] = (), settings: PropagationSettings | None = None) -> Iterator[SliceResult]:
    """Yield one SliceResult per slice from ``start_z + direction`` onwards.

    ``start`` is the reference slice's decode result (its logits are used) or a plain mask (a
    slice the user drew or corrected). Stops before a ``locked`` slice, after ``stop_z`` or the
    volume's edge, or where the object ends (see PropagationSettings). Stop iterating to cancel.
    """
    settings = settings or PropagationSettings()
    locked = set(int(z) for z in locked)
    previous = np.asarray(start.mask if isinstance(start, DecodeResult) else start, bool)
    logits = start.low_res_logits if isinstance(start, DecodeResult) else None
    for z in slice_range(session.n_slices, start_z, direction, stop_z):
        if z in locked:
            return
        result = next_slice(session, z, previous, logits, settings)
        if result is None or result.score < settings.min_score or result.iou_previous < settings.min_iou:
            return
        yield result
        previous, logits = result.mask, result.low_res_logits


def propagate_both_ways(session, start_z: int, start, low: int | None = None, high: int | None = None,
                        locked: Iterable[int] = (), settings: PropagationSettings | None = None) -> Iterator[SliceResult]:
    """Upwards to ``high``, then downwards to ``low`` (both inclusive; None: the volume's edge)."""
    yield from propagate(session, start_z, start, UP, high, locked, settings)
    yield from propagate(session, start_z, start, DOWN, low, locked, settings)


def propagated_masks(session, start_z: int, start, **kwargs) -> dict[int, np.ndarray]:
    """Masks of all slices reached from ``start_z`` both ways (start slice included)."""
    masks = {start_z: np.asarray(start.mask if isinstance(start, DecodeResult) else start, bool)}
    masks.update((r.z, r.mask) for r in propagate_both_ways(session, start_z, start, **kwargs))
    return masks


class SliceLocks:
    """Slices the user committed or corrected by hand: propagation never overwrites them."""

    def __init__(self, slices: Iterable[int] = ()):
        self._slices = set(int(z) for z in slices)

    def lock(self, z: int) -> None:
        self._slices.add(int(z))

    def unlock(self, z: int) -> None:
        self._slices.discard(int(z))

    def toggle(self, z: int) -> bool:
        """Lock an unlocked slice or unlock a locked one; returns whether it is locked now."""
        (self.unlock if z in self else self.lock)(z)
        return z in self

    def clear(self) -> None:
        self._slices.clear()

    def __contains__(self, z) -> bool:
        return int(z) in self._slices

    def __iter__(self):
        return iter(sorted(self._slices))

    def __len__(self) -> int:
        return len(self._slices)


# ---------------------------------------------------------------------------- key-slice fill --
def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask's boundary in pixels: positive inside, negative outside."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return -np.full(mask.shape, float(sum(mask.shape)))
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, 0.5 - outside)


def logits_from_distance(distance: np.ndarray, geometry, scale: float = FILL_LOGITS_PER_PX) -> np.ndarray:
    """A slice's signed distance map -> (1, 256, 256) mask-prompt logits in the model frame:
    ``scale`` logits per pixel of the 256-pixel low-res grid, most negative in the padding."""
    import cv2

    side = LOW_RES_SIDE
    h = max(1, round(geometry.resized[0] * side / geometry.input_size))
    w = max(1, round(geometry.resized[1] * side / geometry.input_size))
    small = cv2.resize(distance.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) * (h / distance.shape[0])
    out = np.full((side, side), float(small.min()), np.float32)
    out[:h, :w] = small
    return (out * scale)[None]


def interpolated_shape(distance_a: np.ndarray, distance_b: np.ndarray, t: float) -> np.ndarray:
    """Signed distance of the shape a fraction ``t`` of the way from a to b."""
    return (1.0 - t) * distance_a + t * distance_b


def fill_between(session, key_masks: dict[int, np.ndarray], locked: Iterable[int] = (),
                 settings: PropagationSettings | None = None) -> Iterator[SliceResult]:
    """Yield a SliceResult for every slice between consecutive non-empty key slices (key and
    locked slices are not touched). Each is prompted with the key boxes interpolated linearly
    (widened like in propagation) and, as mask prompt, the shape interpolated between the key
    masks' signed distance maps; ``iou_previous`` is the IoU with that interpolated shape."""
    settings = settings or PropagationSettings()
    locked = set(int(z) for z in locked)
    keys = sorted(int(z) for z, m in key_masks.items() if np.asarray(m).any())
    distances = {z: signed_distance(key_masks[z]) for z in keys}
    boxes = {z: np.asarray(mask_box(np.asarray(key_masks[z], bool)), float) for z in keys}
    for za, zb in zip(keys, keys[1:]):
        for z in range(za + 1, zb):
            if z in locked:
                continue
            t = (z - za) / (zb - za)
            distance = interpolated_shape(distances[za], distances[zb], t)
            geometry = session.embedding(z).geometry
            shape = distance.shape
            box = widened_box((1.0 - t) * boxes[za] + t * boxes[zb], model_margin(settings.box_margin, geometry), shape)
            result = session.decode(z, Prompt(box=box, mask_logits=logits_from_distance(distance, geometry)))
            yield SliceResult(z, result.mask, result.score, iou(result.mask, distance > 0), result.low_res_logits)


def fill_slices(key_masks: dict[int, np.ndarray]) -> list[int]:
    """The slices ``fill_between`` decodes: those strictly between the first and last key slice."""
    keys = sorted(int(z) for z, m in key_masks.items() if np.asarray(m).any())
    return [z for z in range(keys[0] + 1, keys[-1]) if z not in keys] if len(keys) > 1 else []
