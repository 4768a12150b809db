"""Slicing a volume along any axis (0 axial, 1 coronal, 2 sagittal for a (z, y, x) array).

A slice along ``axis`` keeps the other two array axes in order as (row, col). In coronal and
sagittal slices one in-plane axis is usually the slice spacing (e.g. 5 mm against 0.8 mm
pixels): when the two pixel sizes differ by more than ``ISOTROPIC_RATIO`` the slice is
resampled to square pixels before the model, since the models were trained on images with
square pixels. Masks need no resampling back: the slice geometry records a different scale per
axis, so the decoder's logits are interpolated straight to the original slice size, and prompts
get a sub-pixel correction (``resampled_prompt``) for where original pixels lie on the finer grid.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from napari_sam_mis.annotate.prompts import Prompt, normalized_box
from napari_sam_mis.errors import InputError
from napari_sam_mis.model.slices import SliceGeometry

ISOTROPIC_RATIO = 1.5
MAX_RESAMPLED_SIDE = 8192  # a resampled slice larger than this means implausible voxel sizes
AXIS_NAMES = ("axial", "coronal", "sagittal")


def isotropic_shape(shape: tuple[int, int], spacing: tuple[float, float]) -> tuple[int, int]:
    """(rows, cols) with square pixels of the finer spacing, or ``shape`` if the ratio is small."""
    fine, coarse = min(spacing), max(spacing)
    if fine <= 0 or coarse / fine <= ISOTROPIC_RATIO:
        return tuple(shape)
    return tuple(max(1, int(round(n * s / fine))) for n, s in zip(shape, spacing))


@dataclass(frozen=True)
class SlicePlane:
    """How slices along ``axis`` are taken from the volume and shown to the model."""

    axis: int
    n_slices: int
    shape: tuple[int, int]  # (rows, cols) of one slice
    spacing: tuple[float, float]  # mm per row step and per column step
    model_shape: tuple[int, int]  # (rows, cols) the model sees: ``shape`` or its isotropic resampling

    @classmethod
    def of(cls, volume, axis: int = 0) -> "SlicePlane":
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis!r}")
        rows, cols = (a for a in range(3) if a != axis)
        shape = (volume.shape[rows], volume.shape[cols])
        spacing = (float(volume.spacing[rows]), float(volume.spacing[cols]))
        model_shape = isotropic_shape(shape, spacing)
        if max(model_shape) > MAX_RESAMPLED_SIDE:
            raise InputError(volume.source or "image", f"voxel sizes {tuple(volume.spacing)} mm (z, y, x) would make "
                                                       f"{AXIS_NAMES[axis]} slices of {model_shape[0]} x {model_shape[1]} "
                                                       "square pixels; check the file's voxel sizes")
        return cls(axis, volume.shape[axis], shape, spacing, model_shape)

    @property
    def resampled(self) -> bool:
        return self.model_shape != self.shape

    @property
    def factors(self) -> tuple[float, float]:
        """Grid pixels per slice pixel along rows and columns."""
        return self.model_shape[0] / self.shape[0], self.model_shape[1] / self.shape[1]

    def key(self) -> dict:
        """What the cache signature needs to know about the slicing."""
        return {"axis": self.axis, "shape": list(self.shape), "grid": list(self.model_shape)}

    def take(self, array: np.ndarray, i: int) -> np.ndarray:
        """Slice i along the axis: (rows, cols) or (rows, cols, 3) for RGB."""
        if not 0 <= i < self.n_slices:
            raise IndexError(f"slice {i} is outside 0..{self.n_slices - 1} along axis {self.axis}")
        return array[(slice(None),) * self.axis + (int(i),)]

    def resample(self, display: np.ndarray) -> np.ndarray:
        """A display slice resampled (bilinear) to ``model_shape``."""
        if not self.resampled:
            return display
        import cv2

        return cv2.resize(np.asarray(display, np.float32), (self.model_shape[1], self.model_shape[0]), interpolation=cv2.INTER_LINEAR)

    def geometry(self, engine) -> SliceGeometry:
        """The engine's geometry of a ``model_shape`` image, seen from the original slice pixels."""
        geom = engine.geometry(self.model_shape)
        if not self.resampled:
            return geom
        fy, fx = self.factors
        return SliceGeometry(self.shape, geom.resized, (geom.scale[0] * fy, geom.scale[1] * fx), geom.input_size)

    def resampled_prompt(self, prompt: Prompt) -> Prompt:
        """Shift prompt positions so that ``position * scale`` lands where the pixel lies on the resampled slice.

        Original pixel r covers resampled pixels r*f .. (r+1)*f - 1: a click goes to its centre, a box's
        first row/col to the first resampled pixel and its last row/col to the last one.
        """
        if not self.resampled or prompt.is_empty:
            return prompt
        f = np.array(self.factors)
        points = [tuple(np.asarray(p, float) + 0.5 - 0.5 / f) for p in prompt.points]
        box = prompt.box
        if box is not None:
            r0, c0, r1, c1 = normalized_box(box)
            box = (r0, c0, r1 + 1 - 1 / f[0], c1 + 1 - 1 / f[1])
        return replace(prompt, points=points, box=box)
