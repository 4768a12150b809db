"""Key-slice fill: between two key slices the prompts are interpolated: the key boxes linearly,
and the signed distance maps of the two key masks (shape interpolation), which give the mask prompt.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import iou, mask_box, model_margin, widened_box
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.propagate import PropagationSettings, SliceResult

LOW_RES_SIDE = 256  # the mask decoder's low-res grid (and mask-prompt size) of LiteMedSAM and SAM
FILL_LOGITS_PER_PX = 0.25  # mask prompt: logits per low-res pixel of signed distance (docs/volumes.md)


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
            result = session.predict(z, Prompt(box=box, mask_logits=logits_from_distance(distance, geometry)))
            yield SliceResult(z, result.mask, result.score, iou(result.mask, distance > 0), result.low_res_logits)


def fill_slices(key_masks: dict[int, np.ndarray]) -> list[int]:
    """The slices ``fill_between`` decodes: those strictly between the first and last key slice."""
    keys = sorted(int(z) for z, m in key_masks.items() if np.asarray(m).any())
    return [z for z in range(keys[0] + 1, keys[-1]) if z not in keys] if len(keys) > 1 else []
