"""NIfTI images and labels via nibabel, converted to the (z, y, x) array order of Volume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.atomic import atomic_path
from napari_sam_mis.io.formats import nifti_stem
from napari_sam_mis.io.label_files import labels_from_map, sidecar_path, write_with_sidecar
from napari_sam_mis.io.modality import infer_modality
from napari_sam_mis.io.reorient import reorient_onto
from napari_sam_mis.io.segments import Labels
from napari_sam_mis.volume import Volume

# Swaps homogeneous (i, j, k, 1) <-> (k, j, i, 1); its own inverse, exact in floating point.
SWAP_XYZ_ZYX = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def _load(p: Path):
    import nibabel as nib

    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many kinds for broken files
        raise InputError(p, f"not a readable NIfTI file ({exc})") from exc
    if data.dtype.names:  # RGB24 / RGBA32 structured voxels
        raise InputError(p, "RGB NIfTI images are not supported; convert to a greyscale 3D image")
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputError(p, f"expected a 3D image, got {data.ndim}D with shape {data.shape}"
                            " (4D series and multi-channel images are not supported)")
    return img, data


def read_nifti(path) -> Volume:
    """A NIfTI image. NIfTI records no modality: it is inferred from the intensities (``io/modality.py``)
    and the reason kept in ``meta["modality_source"]``."""
    p = Path(path)
    img, data = _load(p)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise InputError(p, f"voxel size (pixdim) must be positive numbers, got {zooms}")
    array = np.ascontiguousarray(data.transpose(2, 1, 0))
    finite = np.isfinite(array) if array.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        if not finite.any():
            raise InputError(p, "holds no finite voxel value (all NaN or infinite)")
        raise InputError(p, f"{int((~finite).sum())} voxels are NaN or infinite; replace them (e.g. by the "
                            "background value) before annotating")
    modality, why = infer_modality(array)
    return Volume(
        array=array,
        spacing=(zooms[2], zooms[1], zooms[0]),
        affine=img.affine @ SWAP_XYZ_ZYX,
        modality=modality,
        source=str(p),
        meta={"nifti_header": img.header.copy(), "modality_source": why},
    )


def _nifti_image(array_zyx: np.ndarray, volume: Volume, is_labels: bool):
    """A NIfTI image of ``array_zyx`` on ``volume``'s grid; reuses its NIfTI header so the affine stays bit-exact."""
    import nibabel as nib

    data = np.asarray(array_zyx).transpose(2, 1, 0)
    header = volume.meta.get("nifti_header")
    if header is not None:
        cls = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        img = cls(data, None, header=header.copy())
    else:
        affine = volume.affine @ SWAP_XYZ_ZYX
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
    img.set_data_dtype(data.dtype)
    img.header.set_slope_inter(1.0, 0.0)
    img.header.set_intent("label" if is_labels else "none")
    if is_labels:
        img.header["cal_min"], img.header["cal_max"] = 0, float(data.max(initial=0))
    return img


def write_nifti(array_zyx: np.ndarray, volume: Volume, path, *, is_labels: bool) -> Path:
    """Write ``array_zyx`` on ``volume``'s grid as a NIfTI file."""
    import nibabel as nib

    img = _nifti_image(array_zyx, volume, is_labels)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def write_nifti_labels(labels: np.ndarray, volume: Volume, path, segments=None) -> list[Path]:
    """Labels as NIfTI plus a ``<name>.json`` sidecar with value -> name/colour, written as a unit:
    both files are written, then both renamed (a failure leaves the old pair as it was)."""
    import nibabel as nib

    img = _nifti_image(labels, volume, is_labels=True)
    return write_with_sidecar(labels, path, segments, lambda tmp: nib.save(img, str(tmp)))


LABEL_NAME_WORDS = ("seg", "label", "mask", "gt")


def is_label_map(path) -> bool:
    """A NIfTI file that holds labels, not an image: it has a label sidecar, the NIfTI intent
    "label", or whole-number, non-negative voxels and a name with seg/label/mask/gt in it
    (TotalSegmentator's maps, nnU-Net's labelsTr)."""
    import nibabel as nib

    p = Path(path)
    side = sidecar_path(p)
    if side.is_file():
        try:
            if "labels" in json.loads(side.read_text()):
                return True
        except (OSError, ValueError, TypeError):
            pass
    try:
        img = nib.load(str(p))
        header = img.header
        if header.get_intent()[0] == "label":
            return True
        integral = header.get_data_dtype().kind in "iu" and header.get_slope_inter()[0] in (None, 1.0)
        named = any(w in nifti_stem(p).lower() for w in LABEL_NAME_WORDS)
        return integral and named and np.asanyarray(img.dataobj).min(initial=0) >= 0  # a CT has negatives
    except Exception:  # not readable: read_volume says why
        return False


def label_grid(path) -> Volume:
    """An empty Volume on a label file's own grid (its geometry and header, no source image)."""
    import nibabel as nib

    p = Path(path)
    try:
        img = nib.load(str(p))
        shape = (tuple(img.shape) + (1, 1))[:3]
    except Exception as exc:
        raise InputError(p, f"not a readable NIfTI file ({exc})") from exc
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    return Volume(np.zeros(shape[::-1], np.uint8), spacing=(zooms[2], zooms[1], zooms[0]),
                  affine=img.affine @ SWAP_XYZ_ZYX, modality="OT", meta={"nifti_header": img.header.copy()})


def read_nifti_labels(path, volume: Volume) -> Labels:
    """NIfTI labels onto ``volume``'s grid (reoriented if only axis order/direction differ)."""
    p = Path(path)
    img, data = _load(p)
    return labels_from_map(data.transpose(2, 1, 0), p, lambda a: reorient_onto(a, img.affine @ SWAP_XYZ_ZYX, volume, p))
