"""A first click on a slice next to one that holds the object: the neighbour's mask bounds it.

A lone click on a slice without a mask is decoded afresh: for a box-trained model through
candidate boxes (``annotate/clicks.py``), whose region hints can leak into the neighbours on a
small end slice. Next to a slice that holds the object, a fresh mask many times the neighbour's
area is such a leak (an object changes little from one slice to the next): the slice is then
decoded as propagation would decode it, from the neighbour's box widened by the propagation
margin, and the clicks edit that mask (a positive click is still inside the result). A
click-trained model's own click path is left as it is (on the validation split the check
helped the first and not the second, docs/evaluation.md).
"""
from __future__ import annotations

import numpy as np

from napari_sam_mis.annotate.geometry import mask_box, model_margin, widened_box
from napari_sam_mis.annotate.masks import MaskResult
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.propagate import BOX_MARGIN_MODEL_PX

MAX_GROWTH = 2.0  # a fresh mask above this many times the neighbour's area is a leak (docs/evaluation.md)


def neighbour_mask(masks: dict, z: int) -> np.ndarray | None:
    """The larger of the masks of slices z - 1 and z + 1 (``masks``: z -> (H, W) bool), or None."""
    found = [m for m in (masks.get(z - 1), masks.get(z + 1)) if m is not None and m.any()]
    return max(found, key=lambda m: int(m.sum())) if found else None


def is_first_click(prompt: Prompt) -> bool:
    """Clicks alone, with no box and no previous mask to correct."""
    return bool(prompt.points) and prompt.box is None and prompt.mask_logits is None


def checked_by_neighbour(session, z: int, prompt: Prompt, result: MaskResult, neighbour: np.ndarray | None,
                         max_growth: float = MAX_GROWTH) -> MaskResult:
    """``result`` (the fresh mask of ``prompt`` on slice z), or, when it outgrows the neighbour's
    mask more than ``max_growth`` times, the mask of the neighbour's widened box edited by the clicks."""
    if neighbour is None or not session.engine.spec.box_trained or not is_first_click(prompt) or not neighbour.any():
        return result
    if result.mask.sum() <= max_growth * neighbour.sum():
        return result
    margin = model_margin(BOX_MARGIN_MODEL_PX, session.embedding(z).geometry)
    box = widened_box(mask_box(neighbour), margin, neighbour.shape)
    return session.predict(z, Prompt(points=prompt.points, labels=prompt.labels, box=box))
