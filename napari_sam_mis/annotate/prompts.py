"""Prompts in napari's convention and the one conversion to the model's (x, y) frame.

Everywhere in this package a position on a slice is (row, col) in pixels of that slice, as
napari reports it; only ``to_model_frame`` turns it into SAM's (x, y) in model-input pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

POSITIVE, NEGATIVE = 1, 0


@dataclass
class Prompt:
    """Prompts on one slice.

    points: (row, col) pixel positions; labels: 1 positive / 0 negative, one per point.
    box:    two opposite corners (row0, col0, row1, col1), any order.
    mask_logits: low-res logits (1, 256, 256) of an earlier decode, fed back as mask prompt.
    """

    points: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    box: tuple | None = None
    mask_logits: np.ndarray | None = None

    def __post_init__(self):
        if len(self.points) != len(self.labels):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} labels")

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None

    @property
    def is_single_point(self) -> bool:
        return len(self.points) == 1 and self.box is None and self.mask_logits is None


def normalized_box(box) -> tuple[float, float, float, float]:
    """(row0, col0, row1, col1) with row0 <= row1 and col0 <= col1."""
    r0, c0, r1, c1 = (float(v) for v in box)
    return min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1)


def to_model_frame(prompt: Prompt, scale: tuple[float, float]):
    """(row, col) slice pixels -> model-input (x, y): returns coords (N, 2), labels (N,), box (4,) or None."""
    sy, sx = scale
    coords = labels = box = None
    if prompt.points:
        rc = np.asarray(prompt.points, dtype=np.float32).reshape(-1, 2)
        coords = np.stack([rc[:, 1] * sx, rc[:, 0] * sy], axis=1)
        labels = np.asarray(prompt.labels, dtype=np.float32)
    if prompt.box is not None:
        r0, c0, r1, c1 = normalized_box(prompt.box)
        box = np.array([c0 * sx, r0 * sy, c1 * sx, r1 * sy], dtype=np.float32)
    return coords, labels, box
