"""Qt-free readers and writers for medical images and labels.

read_volume(path)                      NIfTI, NRRD, DICOM folder / multi-frame file, CVPR24 .npz, 2D PNG/JPEG/TIFF
read_labels(path, volume)              NIfTI / NRRD labels or DICOM-SEG onto the volume's grid -> Labels
read_label_array(path, volume)         any ground truth (also CVPR24 .npz, mask images) -> label array
write_labels(labels, volume, path)     .nii/.nii.gz or .nrrd (+ .json names) or .dcm (DICOM-SEG)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.formats import is_nifti, is_npz, is_nrrd, is_raster
from napari_sam_mis.io.segments import Labels, Segment
from napari_sam_mis.volume import Volume

__all__ = ["Labels", "Segment", "Volume", "read_label_array", "read_labels", "read_volume", "write_labels"]


def read_volume(path, series: str | None = None) -> Volume:
    """Read an image into a Volume. ``series`` picks one series (description or UID) in a mixed DICOM folder."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    if is_nifti(p):
        from napari_sam_mis.io.nifti import read_nifti

        return read_nifti(p)
    if is_nrrd(p):
        from napari_sam_mis.io.nrrd import read_nrrd

        return read_nrrd(p)
    if is_npz(p):
        from napari_sam_mis.io.raster import read_npz

        return read_npz(p)
    if is_raster(p):
        from napari_sam_mis.io.raster import read_raster

        return read_raster(p)
    from napari_sam_mis.io.dicom import is_dicom_file, read_dicom

    if p.is_dir() or is_dicom_file(p):
        return read_dicom(p, series)
    raise InputError(p, "unknown image format (expected .nii, .nii.gz, .nrrd, a DICOM folder or file, .npz or a 2D PNG/JPEG/TIFF)")


def check_labels(labels, volume: Volume, path) -> np.ndarray:
    """Labels as uint8 on ``volume``'s grid, or a clear error."""
    arr = np.asarray(labels)
    if arr.ndim == 2 and volume.shape[0] == 1:  # a 2D image's labels
        arr = arr[None]
    if arr.shape != volume.shape:
        raise InputError(path, f"labels have shape {arr.shape} but the image grid is {volume.shape} (z, y, x)")
    if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr))):
        raise InputError(path, f"labels must be whole numbers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise InputError(path, f"label values must lie in 0..255, found {arr.min()}..{arr.max()}")
    return arr.astype(np.uint8)


def write_labels(labels, volume: Volume, path, segments=None, *, algorithm_name: str = "napari-sam-mis",
                 new_uids: bool = False) -> list[Path]:
    """Write a (z, y, x) label array for ``volume``; the extension picks NIfTI, NRRD or DICOM-SEG.

    ``segments``: value -> name | {"name", "color"} (see ``segments.make_segments``).
    ``new_uids``: DICOM-SEG only; fill blank Study/Series Instance UIDs of an anonymised source.
    Returns the paths written. Never overwrites the source; writes via a temporary file.
    """
    from napari_sam_mis.io.atomic import refuse_sources

    out = refuse_sources(path, [volume.source, *volume.meta.get("dicom_files", [])])
    arr = check_labels(labels, volume, out)
    if is_nifti(out):
        from napari_sam_mis.io.nifti import write_nifti_labels

        return write_nifti_labels(arr, volume, out, segments)
    if is_nrrd(out):
        from napari_sam_mis.io.nrrd import write_nrrd_labels

        return write_nrrd_labels(arr, volume, out, segments)
    if out.suffix.lower() == ".dcm":
        from napari_sam_mis.io.dicom_seg import write_dicom_seg

        return [write_dicom_seg(arr, volume, out, segments, algorithm_name=algorithm_name, new_uids=new_uids)]
    raise InputError(out, "unknown labels format (expected .nii, .nii.gz, .nrrd or .dcm for DICOM-SEG)")


def read_labels(path, volume: Volume, *, allow_other_frame: bool = False) -> Labels:
    """NIfTI labels (with names from a ``.json`` sidecar), an NRRD label map or a DICOM-SEG, on ``volume``'s grid. A
    DICOM-SEG of another frame of reference is refused unless ``allow_other_frame``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such file")
    if is_nifti(p):
        from napari_sam_mis.io.nifti import read_nifti_labels

        return read_nifti_labels(p, volume)
    if is_nrrd(p):
        from napari_sam_mis.io.nrrd import read_nrrd_labels

        return read_nrrd_labels(p, volume)
    from napari_sam_mis.io.dicom import is_dicom_file

    if is_dicom_file(p):
        from napari_sam_mis.io.dicom_seg import read_dicom_seg

        return read_dicom_seg(p, volume, allow_other_frame)
    raise InputError(p, "unknown labels format (expected .nii, .nii.gz, .nrrd or a DICOM-SEG .dcm)")


def read_label_array(path, volume: Volume) -> np.ndarray:
    """Ground-truth labels for ``volume`` as a (z, y, x) array: NIfTI, DICOM-SEG, CVPR24 .npz
    (``gts``) or a 2D mask image."""
    if is_npz(path):
        from napari_sam_mis.io.raster import read_npz_labels

        return read_npz_labels(path, volume.shape)
    if is_raster(path):
        from napari_sam_mis.io.raster import read_mask_raster

        return read_mask_raster(path, volume.shape[1:])
    return read_labels(path, volume).array
