"""2D raster images (PNG, JPEG, TIFF) and the MedSAM/CVPR24 ``.npz`` layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.volume import Volume


def read_raster(path) -> Volume:
    """A 2D image as a one-slice Volume; RGB stays RGB, values are taken as display values."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("RGBA", "P", "CMYK", "YCbCr", "LA"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # PIL: broken chunks are SyntaxErrors
        raise InputError(p, f"not a readable image ({exc})") from exc
    if arr.ndim == 3 and arr.shape[2] == 3:
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]  # greyscale stored as RGB
        else:
            return Volume(arr[None], modality="OT", windowed=True, source=str(p))
    if arr.ndim != 2:
        raise InputError(p, f"expected a 2D greyscale or RGB image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
    return Volume(arr[None], modality="OT", windowed=arr.dtype == np.uint8, source=str(p))


def read_mask_raster(path, shape: tuple[int, int]) -> np.ndarray:
    """A 2D mask image (0/255 or label values) as a (1, y, x) uint8 label array."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # PIL: broken chunks are SyntaxErrors
        raise InputError(p, f"not a readable mask image ({exc})") from exc
    if arr.shape != tuple(shape):
        raise InputError(p, f"mask shape {arr.shape} does not match the image shape {tuple(shape)}")
    values = np.unique(arr)
    if set(values.tolist()) <= {0, 255}:
        arr = (arr > 0).astype(np.uint8)
    return arr[None]


NPZ_IMAGE_KEY, NPZ_LABEL_KEY = "imgs", "gts"


def _npz_arrays(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise InputError(path, f"not a readable .npz file ({exc})") from exc


def read_npz(path) -> Volume:
    """CVPR24/MedSAM npz: ``imgs`` (Z, H, W) uint8 already windowed, ``spacing`` (x, y, z)."""
    p = Path(path)
    data = _npz_arrays(p)
    if NPZ_IMAGE_KEY not in data:
        raise InputError(p, f"no '{NPZ_IMAGE_KEY}' array (keys: {sorted(data)})")
    imgs = data[NPZ_IMAGE_KEY]
    if imgs.ndim == 2:
        imgs = imgs[None]
    if imgs.ndim == 4 and imgs.shape[-1] != 3 or imgs.ndim not in (3, 4):
        raise InputError(p, f"'{NPZ_IMAGE_KEY}' has unsupported shape {imgs.shape}")
    sx, sy, sz = (np.asarray(data["spacing"], dtype=float).tolist() + [1.0, 1.0, 1.0])[:3] if "spacing" in data else (1.0, 1.0, 1.0)
    return Volume(
        array=imgs,
        spacing=(sz, sy, sx),
        modality="CT",
        windowed=imgs.dtype == np.uint8,
        source=str(p),
    )


def read_npz_labels(path, shape) -> np.ndarray:
    p = Path(path)
    data = _npz_arrays(p)
    if NPZ_LABEL_KEY not in data:
        raise InputError(p, f"no '{NPZ_LABEL_KEY}' array (keys: {sorted(data)})")
    gts = data[NPZ_LABEL_KEY]
    if gts.ndim == 2:
        gts = gts[None]
    if gts.shape != tuple(shape):
        raise InputError(p, f"'{NPZ_LABEL_KEY}' shape {gts.shape} does not match the image shape {tuple(shape)}")
    return gts.astype(np.uint16 if gts.max() > 255 else np.uint8)
