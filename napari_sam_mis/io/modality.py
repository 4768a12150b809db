"""What an image without a modality tag (NIfTI, NRRD, a plain array) most likely is: CT stores
Hounsfield units, in which air is -1000 and fat about -100; MR intensities are not negative
(magnitude images) or only slightly (normalised ones)."""
from __future__ import annotations

import numpy as np

CT_BELOW = -100.0  # a voxel this low is air or fat in HU: no MR scale goes there


def infer_modality(array: np.ndarray) -> tuple[str, str]:
    """("CT" or "MR", why) from the finite voxel values."""
    arr = np.asarray(array)
    low = float(np.nanmin(arr)) if arr.size else 0.0  # no copy of the volume
    if np.isinf(low):  # rare: ignore infinite voxels
        low = float(np.nanmin(np.where(np.isinf(arr), np.nan, arr)))
    if low < CT_BELOW:
        return "CT", f"inferred from the intensities: values down to {low:g}, Hounsfield units"
    return "MR", f"inferred from the intensities: no value below {CT_BELOW:g}, so not Hounsfield units"
