"""Qt-free readers and writers for medical images and labels."""
from __future__ import annotations

from pathlib import Path

from ..core.volume import Volume
from ..errors import InputError


def read_volume(path) -> Volume:
    """Read a NIfTI file, a CVPR24 ``.npz`` or a 2D PNG/JPEG/TIFF image into a Volume."""
    p = Path(path)
    name = p.name.lower()
    if not p.exists():
        raise InputError(p, "no such file or folder")
    if name.endswith((".nii", ".nii.gz")):
        from .nifti import read_nifti

        return read_nifti(p)
    if name.endswith(".npz"):
        from .raster import read_npz

        return read_npz(p)
    if name.endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")):
        from .raster import read_raster

        return read_raster(p)
    raise InputError(p, "unknown image format (expected .nii, .nii.gz, .npz or a 2D PNG/JPEG/TIFF)")
