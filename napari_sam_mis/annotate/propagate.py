"""Slice-to-slice propagation, and re-propagation around slices the user fixed.

Each next slice is decoded twice from the previous slice's result, once with its mask's bounding box
widened by 3 pixels of the 256-pixel model input (the LiteMedSAM 3D recipe), once with that box
plus the previous low-res logits as mask prompt. The mask prompt keeps the shape from drifting
(box-only shrinks or swells a little at every slice); where the two decodes disagree (IoU below
``agreement``) the mask prompt is leading the decoder astray and their union is kept. The
alternatives measured are in docs/volumes.md.

Propagation stops at the volume's edge, at the slice range given, before a locked slice (a slice
the user committed or corrected: it is never overwritten, and it already anchors the slices
beyond it), or where the object ends: the mask vanishes, or its IoU with the previous slice's
mask or the decoder's score falls below a threshold.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from napari_sam_mis.annotate.geometry import iou, mask_box, model_margin, widened_box
from napari_sam_mis.annotate.masks import MaskResult
from napari_sam_mis.annotate.prompts import Prompt

# The LiteMedSAM 3D recipe widens the previous mask's box by 3 pixels of the 256-pixel model input.
BOX_MARGIN_MODEL_PX = 3.0
UP, DOWN = 1, -1


@dataclass
class PropagationSettings:
    box_margin: float = BOX_MARGIN_MODEL_PX  # model-input pixels added around the previous box
    agreement: float = 0.85  # box-only vs box+mask IoU below which their union is kept
    # where the object ends (docs/volumes.md says how these were chosen)
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
    by_box = session.predict(z, Prompt(box=box))
    mask, logits = by_box.mask, by_box.low_res_logits
    if previous_logits is not None:
        by_both = session.predict(z, Prompt(box=box, mask_logits=previous_logits))
        if iou(by_box.mask, by_both.mask) >= settings.agreement:
            mask, logits = by_both.mask, by_both.low_res_logits
        else:
            mask = by_box.mask | by_both.mask
    if not mask.any():
        return None
    return SliceResult(z, mask, by_box.score, iou(mask, previous), logits)


def propagate(session, start_z: int, start: MaskResult | np.ndarray, direction: int, stop_z: int | None = None,
              locked: Iterable[int] = (), settings: PropagationSettings | None = None) -> Iterator[SliceResult]:
    """Yield one SliceResult per slice from ``start_z + direction`` onwards.

    ``start`` is the reference slice's decode result (its logits are used) or a plain mask (a
    slice the user drew or corrected). Stops before a ``locked`` slice, after ``stop_z`` or the
    volume's edge, or where the object ends (see PropagationSettings). Stop iterating to cancel.
    """
    settings = settings or PropagationSettings()
    locked = set(int(z) for z in locked)
    previous = np.asarray(start.mask if isinstance(start, MaskResult) else start, bool)
    logits = start.low_res_logits if isinstance(start, MaskResult) else None
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
    masks = {start_z: np.asarray(start.mask if isinstance(start, MaskResult) else start, bool)}
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
