"""What NIfTI and NRRD label maps share: the ``.json`` sidecar with the names and colours, the
label values a map may hold, and writing a map with its sidecar as a unit."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.atomic import atomic_paths
from napari_sam_mis.io.formats import nifti_stem
from napari_sam_mis.io.segments import Labels, make_segments, segments_to_json

MAX_LABEL = 65535


def sidecar_path(path) -> Path:
    """``labels.nii.gz`` / ``labels.nrrd`` -> ``labels.json`` beside it."""
    p = Path(path)
    return p.with_name(nifti_stem(p) + ".json")


def read_sidecar(path):
    """The segment description of the label map at ``path`` from its sidecar (None without one)."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        return json.loads(side.read_text()).get("labels")
    except (ValueError, AttributeError) as exc:
        raise InputError(side, f"not a readable label sidecar ({exc})") from exc


def labels_from_map(arr: np.ndarray, path, onto: Callable[[np.ndarray], np.ndarray], names=None) -> Labels:
    """A label map's voxels as Labels: whole numbers in 0..MAX_LABEL (checked first), put on the
    image's grid by ``onto``, named by the map's sidecar, else by ``names`` (the file's own)."""
    p = Path(path)
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise InputError(p, "label values must be whole numbers")
    if arr.size and (arr.min() < 0 or arr.max() > MAX_LABEL):
        raise InputError(p, f"label values must lie in 0..{MAX_LABEL}, found {arr.min()}..{arr.max()}")
    arr = onto(arr)
    arr = arr.astype(np.uint8 if arr.max(initial=0) <= 255 else np.uint16)
    return Labels(arr, make_segments(read_sidecar(p) or names, np.unique(arr)))


def write_with_sidecar(labels: np.ndarray, path, segments, save_image: Callable[[Path], None]) -> list[Path]:
    """``save_image(tmp)`` writes the map, then the sidecar with value -> name/colour; both are
    written, then both renamed (a failure leaves the old pair as it was)."""
    segs = make_segments(segments, np.unique(labels))
    out, side = Path(path), sidecar_path(path)
    with atomic_paths([out, side]) as (tmp_img, tmp_side):
        save_image(tmp_img)
        tmp_side.write_text(json.dumps({"labels": segments_to_json(segs)}, indent=1))
    return [out, side]
