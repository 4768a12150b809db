"""Volume: a voxel array with its medical geometry, shared by readers, the engine and writers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Volume:
    """An image on a regular grid.

    array:    (z, y, x) for greyscale, (z, y, x, 3) for RGB; a 2D image has z == 1
              (a (y, x) array is accepted and given z == 1).
    spacing:  voxel size in mm, in array order (z, y, x).
    affine:   4x4 matrix mapping homogeneous array indices (z, y, x, 1) to world
              coordinates in RAS+ millimetres (the NIfTI world).
    modality: "CT", "MR" or "OT" (other, e.g. a PNG); chooses the default intensity window.
    windowed: True when the values are already display values 0..255 (PNG, CVPR24 npz).
    source:   the path it was read from ("" when built in memory).
    meta:     format details the writers need (e.g. "nifti_header", "dicom_datasets").
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    affine: np.ndarray | None = None
    modality: str = "CT"
    windowed: bool = False
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        arr = np.asarray(self.array)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] != 3):
            raise ValueError(
                f"{self.source or 'image'}: expected a 2D image, a (z, y, x) volume or RGB, got shape {arr.shape}"
            )
        self.array = arr
        self.spacing = tuple(float(s) for s in self.spacing)
        if self.affine is None:
            self.affine = np.diag([*self.spacing, 1.0])
        self.affine = np.asarray(self.affine, dtype=np.float64)

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) grid shape, without the colour axis."""
        return tuple(self.array.shape[:3])

    @property
    def n_slices(self) -> int:
        return self.array.shape[0]
