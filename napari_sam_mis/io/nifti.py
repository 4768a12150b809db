"""NIfTI images via nibabel, converted to the (z, y, x) array order of Volume."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.volume import Volume
from ..errors import InputError

# Swaps homogeneous (i, j, k, 1) <-> (k, j, i, 1); its own inverse, exact in floating point.
SWAP_XYZ_ZYX = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def read_nifti(path) -> Volume:
    import nibabel as nib

    p = Path(path)
    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many kinds for broken files
        raise InputError(p, f"not a readable NIfTI file ({exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputError(p, f"expected a 3D image, got {data.ndim}D with shape {data.shape}")
    zooms = img.header.get_zooms()[:3]
    return Volume(
        array=np.ascontiguousarray(data.transpose(2, 1, 0)),
        spacing=(float(zooms[2]), float(zooms[1]), float(zooms[0])),
        affine=img.affine @ SWAP_XYZ_ZYX,
        modality="CT",
        source=str(p),
        meta={"nifti_header": img.header.copy()},
    )
