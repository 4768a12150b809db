"""npe2 single-layer writers for labels layers: NIfTI or NRRD (+ .json names) and DICOM-SEG."""
from __future__ import annotations

import numpy as np

from napari_sam_mis._napari.keys import SEGMENTS_KEY, VOLUME_KEY
from napari_sam_mis.errors import InputError
from napari_sam_mis.io import write_labels
from napari_sam_mis.volume import Volume


def _volume(path, data, attributes, need_dicom: bool) -> Volume:
    volume = (attributes.get("metadata") or {}).get(VOLUME_KEY)
    if isinstance(volume, Volume):
        return volume
    if need_dicom:
        raise InputError(path, "this labels layer does not carry its DICOM source image "
                               f"(layer.metadata['{VOLUME_KEY}']); open the image with this plugin and draw labels "
                               "on it, or save as .nii.gz")
    scale = attributes.get("scale") or (1.0, 1.0, 1.0)  # no source geometry: voxel size only
    return Volume(np.zeros(np.shape(data)[-3:], np.uint8), spacing=tuple(scale)[-3:])


def _write(path, data, attributes, need_dicom):
    arr = np.asarray(data)
    volume = _volume(path, arr, attributes, need_dicom)
    segments = (attributes.get("metadata") or {}).get(SEGMENTS_KEY)
    return [str(p) for p in write_labels(arr, volume, path, segments=segments)]


def write_labels_nifti(path: str, data, attributes: dict) -> list[str]:
    return _write(path, data, attributes, need_dicom=False)


def write_labels_nrrd(path: str, data, attributes: dict) -> list[str]:
    return _write(path, data, attributes, need_dicom=False)


def write_labels_dicom_seg(path: str, data, attributes: dict) -> list[str]:
    return _write(path, data, attributes, need_dicom=True)
