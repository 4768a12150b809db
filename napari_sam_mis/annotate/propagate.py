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
mask or the decoder's score falls below a threshold. Each run says where and why (``Stop``). A
mask that runs into tissue outside the object's intensity range is trimmed back to it.
``repropagate`` carries a correction of one slice to its neighbours.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
    max_growth: float | None = None  # stop where the mask outgrows the start slice's area this many times
    # leaks into tissue unlike the object: mask pixels outside the start mask's intensity range
    intensity_margin: float = 20.0  # display units added on both sides of its 1st-99th percentile
    max_outside: float = 0.2  # above this share of such pixels the mask is trimmed to the range


@dataclass
class SliceResult:
    """One propagated slice."""

    z: int
    mask: np.ndarray  # (H, W) bool
    score: float  # decoder's predicted IoU of the box-only decode
    iou_previous: float  # IoU with the mask of the slice it was prompted from
    low_res_logits: np.ndarray | None = None
    trimmed: bool = False  # pixels outside the object's intensity range were cut away


@dataclass
class Stop:
    """Where and why a propagation stopped: ``z`` is the first slice not filled (None at the edge)."""

    z: int | None
    reason: str  # one of STOP_REASONS
    message: str


STOP_REASONS = ("edge", "range", "locked", "empty", "overlap", "score", "growth", "leak", "cancelled")


def slice_range(n_slices: int, start_z: int, direction: int, stop_z: int | None = None) -> range:
    """Slices after ``start_z`` in ``direction`` up to ``stop_z`` (inclusive) or the volume's edge."""
    if direction not in (UP, DOWN):
        raise ValueError(f"direction must be +1 (up) or -1 (down), got {direction!r}")
    if not 0 <= start_z < n_slices:
        raise ValueError(f"start slice {start_z} is outside the volume (0..{n_slices - 1})")
    edge = n_slices - 1 if direction == UP else 0
    last = edge if stop_z is None else int(np.clip(stop_z, 0, n_slices - 1))
    return range(start_z + direction, last + direction, direction) if (last - start_z) * direction > 0 else range(0)


def _from_slice(n_slices: int, z: int, direction: int, stop_z: int | None = None) -> list[int]:
    """Slice ``z`` and those after it in ``direction`` up to ``stop_z`` (inclusive) or the edge."""
    if not 0 <= z < n_slices or (stop_z is not None and (stop_z - z) * direction < 0):
        return []
    return [z, *slice_range(n_slices, z, direction, stop_z)]


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


def intensity_range(display: np.ndarray, mask: np.ndarray, margin: float) -> tuple[float, float]:
    """The object's display-value range: its 1st-99th percentile widened by ``margin``."""
    lo, hi = np.percentile(display[mask], [1, 99])
    return float(lo) - margin, float(hi) + margin


def trim_to_range(mask: np.ndarray, display: np.ndarray, bounds, previous: np.ndarray) -> np.ndarray:
    """The mask without pixels outside ``bounds``: the parts that still touch the previous mask, holes filled."""
    inside = mask & (display >= bounds[0]) & (display <= bounds[1])
    inside = ndimage.binary_opening(inside)
    parts, n = ndimage.label(inside)
    if not n:
        return inside
    keep = np.unique(parts[ndimage.binary_dilation(previous, iterations=2) & inside])
    return ndimage.binary_fill_holes(np.isin(parts, keep[keep > 0])) & mask


def _grey(display: np.ndarray) -> np.ndarray:
    return display.mean(axis=-1) if display.ndim == 3 else display


def _ratio_words(ratio: float) -> str:
    if ratio >= 2.5:
        return f"the mask grew {ratio:.1f} times in area"
    if ratio >= 1.0:
        return f"the mask grew by {100 * (ratio - 1):.0f} % in area"
    return f"the mask shrank to {100 * ratio:.0f} % of its area"


class Propagation:
    """Iterate for one SliceResult per slice from ``start_z + direction`` onwards; afterwards
    ``stop`` says where and why it ended.

    ``start`` is the reference slice's decode result (its logits are used) or a plain mask (a
    slice the user drew or corrected). Stops before a ``locked`` slice, after ``stop_z`` or the
    volume's edge, or where the object ends (see PropagationSettings); trims a slice whose mask
    runs into tissue outside the object's intensity range. Stop iterating to cancel.
    """

    def __init__(self, session, start_z: int, start, direction: int, stop_z: int | None = None,
                 locked: Iterable[int] = (), settings: PropagationSettings | None = None, merge=None,
                 accept_first: bool = False):
        self.session, self.start_z, self.direction, self.stop_z = session, start_z, direction, stop_z
        self.merge = merge  # optional (z, mask) -> mask applied to each decoded mask
        self.accept_first = accept_first  # continue past a stop: the first slice is not checked
        self.settings = settings or PropagationSettings()
        self.locked = set(int(z) for z in locked)
        self.start_mask = np.asarray(start.mask if isinstance(start, MaskResult) else start, bool)
        self.start_logits = start.low_res_logits if isinstance(start, MaskResult) else None
        self.slices = slice_range(session.n_slices, start_z, direction, stop_z)
        self.stop = Stop(None, "cancelled", "cancelled")

    def _end(self, z, reason: str, why: str) -> None:
        self.stop = Stop(z, reason, f"stopped at slice {z}: {why}" if z is not None else why)

    def _failed_check(self, result: SliceResult, previous, area: int, start_area: int) -> tuple[str, str] | None:
        """(reason, words) where the object seems to end at ``result``, else None."""
        st = self.settings
        if result.iou_previous < st.min_iou:
            ratio = area / max(int(previous.sum()), 1)
            why = _ratio_words(ratio) if not 0.67 < ratio < 1.5 else "the mask moved away from the previous slice's"
            return "overlap", f"{why} (overlap IoU {result.iou_previous:.2f} < {st.min_iou:g})"
        if result.score < st.min_score:
            return "score", f"the model's confidence {result.score:.2f} is below {st.min_score:g}"
        if st.max_growth is not None and area > st.max_growth * start_area:
            return "growth", f"the mask outgrew the start slice {area / start_area:.1f} times (a leak into a neighbour?)"
        return None

    def __iter__(self) -> Iterator[SliceResult]:
        st = self.settings
        previous, logits = self.start_mask, self.start_logits
        if not previous.any():
            self._end(self.start_z, "empty", "the start slice has no mask")
            return
        start_area = int(previous.sum())
        bounds = intensity_range(_grey(self.session.display_slice(self.start_z)), previous, st.intensity_margin)
        for z in self.slices:
            if z in self.locked:
                self._end(z, "locked", "it is locked (committed or corrected); the slices beyond it follow from it")
                return
            result = next_slice(self.session, z, previous, logits, st)
            if result is not None and self.merge is not None:
                merged = self.merge(z, result.mask)
                if not np.array_equal(merged, result.mask):
                    result.mask, result.low_res_logits, result.iou_previous = merged, None, iou(merged, previous)
            if result is None or not result.mask.any():
                self._end(z, "empty", "the mask vanished (the object ends)")
                return
            display = _grey(self.session.display_slice(z))
            outside = result.mask & ((display < bounds[0]) | (display > bounds[1]))
            if outside.sum() > st.max_outside * result.mask.sum():
                trimmed = trim_to_range(result.mask, display, bounds, previous)
                if not trimmed.any():
                    self._end(z, "leak", f"{100 * outside.mean() / result.mask.mean():.0f} % of the mask lies outside "
                                         "the object's intensity range")
                    return
                result.mask, result.trimmed, result.iou_previous = trimmed, True, iou(trimmed, previous)
                result.low_res_logits = None  # they hold the leak: the next slice starts from the box alone
            area = int(result.mask.sum())
            if self.accept_first and z == self.slices[0]:  # the user saw this slice and went on
                start_area = max(start_area, area)
            else:
                failed = self._failed_check(result, previous, area, start_area)
                if failed:
                    self._end(z, *failed)
                    return
            yield result
            previous, logits = result.mask, result.low_res_logits
        edge = self.session.n_slices - 1 if self.direction == UP else 0
        last = self.slices[-1] if len(self.slices) else self.start_z
        if last == edge:
            self._end(None, "edge", f"reached the volume's edge (slice {edge})")
        else:
            self._end(None, "range", f"reached the end of the range (slice {last})")


def propagate(session, start_z: int, start: MaskResult | np.ndarray, direction: int, stop_z: int | None = None,
              locked: Iterable[int] = (), settings: PropagationSettings | None = None, merge=None,
              accept_first: bool = False) -> Propagation:
    """The propagation from ``start_z`` in ``direction``: iterate it for the slices (see Propagation)."""
    return Propagation(session, start_z, start, direction, stop_z, locked, settings, merge, accept_first)


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


CHANGE_REACH_PX = 3  # a correction is carried to the neighbours this near to what it changed
SLACK = 0.02


def repropagate(session, z: int, start, masks: dict, anchors: Iterable[int] = (), low: int | None = None,
                high: int | None = None, settings: PropagationSettings | None = None,
                converged: float = 0.9) -> tuple[dict, list[Stop]]:
    """Carry a correction of slice ``z`` to its neighbours, both ways; ``masks`` holds the current
    mask per slice. A correction that only added to slice z only adds to the neighbours that hold
    a mask (the propagated mask's pixels near what it added), one that only removed only removes
    (the pixels near what it removed that the propagated mask leaves out); any other replaces
    them. Each way runs until the correction is absorbed (the new mask agrees with the current
    one, IoU >= ``converged``; the slices beyond keep theirs) or before an anchor (a slice
    prompted or corrected by hand). Where a removal ends before, with
    no anchor beyond, the slices beyond were derived from what it removed and are cleared.
    Returns ({z: SliceResult, or None where cleared}, the two stops)."""
    anchors = set(int(a) for a in anchors) - {z}
    new = np.asarray(start.mask if isinstance(start, MaskResult) else start, bool)
    old = masks.get(z, np.zeros_like(new))
    # "only added" / "only removed", up to a rounding of the boundary (a mask fed back as logits)
    slack = SLACK * max(int(old.sum()), 1)
    grown = bool(masks) and (old & ~new).sum() <= slack  # a first propagation replaces
    shrunk = bool(masks) and (new & ~old).sum() <= slack and not grown
    changed = ndimage.binary_dilation(new ^ old, iterations=CHANGE_REACH_PX)

    def merge(k, mask):
        current = masks.get(k, np.zeros_like(mask))
        if grown:  # adds only to slices that hold the object already
            return current | (mask & changed) if current.any() else current
        return current & ~(changed & ~mask)

    changes, stops = {}, []
    for direction, limit in ((UP, high), (DOWN, low)):
        run = propagate(session, z, start, direction, limit, anchors, settings, merge if grown or shrunk else None)
        absorbed = False
        for r in run:
            changes[r.z] = r
            current = masks.get(r.z)
            if current is not None and current.any() and iou(current, r.mask) >= converged:
                absorbed = True
                break
        stops.append(run.stop)
        if absorbed or run.stop.z is None or not shrunk:
            continue
        beyond = _from_slice(session.n_slices, run.stop.z, direction, limit)
        if not any(k in anchors for k in beyond):
            changes.update((k, None) for k in beyond if k in masks)
    return changes, stops


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
