"""File name suffixes of the formats this package reads and writes (matched case-insensitively)."""
from __future__ import annotations

from pathlib import Path

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NPZ_SUFFIX = ".npz"
NRRD_SUFFIXES = (".nrrd", ".nhdr")


def is_nifti(path) -> bool:
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def is_raster(path) -> bool:
    return Path(path).name.lower().endswith(RASTER_SUFFIXES)


def is_nrrd(path) -> bool:
    return Path(path).name.lower().endswith(NRRD_SUFFIXES)


def is_npz(path) -> bool:
    return Path(path).name.lower().endswith(NPZ_SUFFIX)


def nifti_stem(path) -> str:
    """The file name without .nii / .nii.gz (or any other last suffix)."""
    name = Path(path).name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem
