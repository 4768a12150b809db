"""A prompt on one slice -> the object's masks through the volume: the prompt checked against the
slice, decoded, and carried up and down until the object ends. The ``segment`` and ``batch``
commands share it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.propagate import DOWN, UP, Stop, propagate
from napari_sam_mis.errors import SamMisError


@dataclass
class VolumeMasks:
    masks: dict[int, np.ndarray]  # slice -> mask
    stops: dict[str, Stop] = field(default_factory=dict)  # "up" / "down" -> where and why it ended

    def paint(self, labels: np.ndarray, value: int) -> None:
        """Write ``value`` where the masks are, on voxels still 0 (an earlier prompt's label stays)."""
        for z, mask in self.masks.items():
            plane = labels[z]
            plane[mask & (plane == 0)] = value


def check_prompt(volume, z: int, prompt: Prompt, where) -> None:
    """SamMisError naming ``where`` unless slice ``z`` and every position of ``prompt`` lie in the image."""
    if not 0 <= z < volume.n_slices:
        raise SamMisError(f"{where}: slice {z} is outside the image (0..{volume.n_slices - 1})")
    rows, cols = volume.shape[1:]
    box = [tuple(prompt.box[:2]), tuple(prompt.box[2:])] if prompt.box is not None else []
    for r, c in [*prompt.points, *box]:
        if not (0 <= r <= rows - 1 and 0 <= c <= cols - 1):  # NaN fails too
            raise SamMisError(f"{where}: position (row {r:g}, col {c:g}) lies outside the slice "
                              f"(rows 0..{rows - 1}, cols 0..{cols - 1})")
    if any(lab not in (0, 1) for lab in prompt.labels):
        raise SamMisError(f"{where}: a click's label is 1 (positive) or 0 (negative)")
    if prompt.is_empty:
        raise SamMisError(f"{where}: the prompt has neither a box nor a click")


def segment_volume(session, z: int, prompt: Prompt, through: bool = True, low: int | None = None,
                   high: int | None = None) -> VolumeMasks:
    """Decode ``prompt`` on slice ``z``; with ``through``, propagate up (to ``high``) and down (to ``low``)."""
    start = session.segment(z, prompt)
    out = VolumeMasks({z: start.mask})
    if through:
        for direction, limit, word in ((UP, high, "up"), (DOWN, low, "down")):
            run = propagate(session, z, start, direction, limit)
            out.masks.update((r.z, r.mask) for r in run)
            out.stops[word] = run.stop
    return out
