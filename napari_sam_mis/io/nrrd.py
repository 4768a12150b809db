"""NRRD images and label maps (3D Slicer's native format) via SimpleITK, in Volume's (z, y, x) order.

SimpleITK reads the header's space, directions and origin into LPS world coordinates; the
Volume affine is RAS+, so x and y change sign. Label maps carry their names twice: in the
``.json`` sidecar and in the header fields of 3D Slicer's ``.seg.nrrd`` (Segment<i>_Name,
_LabelValue, _Color, ...), so that Slicer shows the names too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.label_files import labels_from_map, sidecar_path, write_with_sidecar
from napari_sam_mis.io.modality import infer_modality
from napari_sam_mis.io.reorient import reorient_onto
from napari_sam_mis.io.segments import Labels, make_segments
from napari_sam_mis.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LABEL_NAME_WORDS = ("seg", "label", "mask", "roi")


def _load(p: Path):
    import SimpleITK

    try:
        img = SimpleITK.ReadImage(str(p))
    except RuntimeError as exc:  # SimpleITK raises RuntimeError for every unreadable file
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(p, f"not a readable NRRD file ({reason})") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(p, f"has {img.GetNumberOfComponentsPerPixel()} values per voxel; only greyscale images are supported")
    if img.GetDimension() not in (2, 3):
        raise InputError(p, f"expected a 2D or 3D image, got {img.GetDimension()}D")
    array = SimpleITK.GetArrayFromImage(img)  # (z, y, x)
    spacing = [float(s) for s in img.GetSpacing()]  # (x, y, z)
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise InputError(p, f"voxel spacing must be positive numbers, got {spacing}")
    if array.ndim == 2:
        array, spacing = array[None], [*spacing, 1.0]
    return img, array, spacing


def _affine(img, spacing) -> np.ndarray:
    """(z, y, x, 1) index -> RAS+ mm."""
    dim = img.GetDimension()
    direction = np.eye(3)
    direction[:dim, :dim] = np.asarray(img.GetDirection(), float).reshape(dim, dim)
    origin = np.zeros(3)
    origin[:dim] = img.GetOrigin()
    xyz = np.eye(4)
    xyz[:3, :3] = direction * np.asarray(spacing)
    xyz[:3, 3] = origin
    return (LPS_TO_RAS @ xyz)[:, [2, 1, 0, 3]]


def read_nrrd(path) -> Volume:
    """An NRRD image. Like NIfTI it records no modality: it is inferred from the intensities."""
    p = Path(path)
    img, array, spacing = _load(p)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            raise InputError(p, f"{int((~finite).sum())} voxels are NaN or infinite; replace them before annotating")
    modality, why = infer_modality(array)
    return Volume(np.ascontiguousarray(array), spacing=tuple(spacing[::-1]), affine=_affine(img, spacing),
                  modality=modality, source=str(p), meta={"modality_source": why})


def is_nrrd_label_map(path) -> bool:
    """An NRRD that holds labels: whole-number, non-negative voxels and a label sidecar or a
    label-like file name."""
    p = Path(path)
    if not sidecar_path(p).is_file() and not any(w in p.name.lower() for w in LABEL_NAME_WORDS):
        return False
    try:
        _, array, _ = _load(p)
    except InputError:
        return False
    return array.dtype.kind in "iub" and array.min(initial=0) >= 0


def read_nrrd_labels(path, volume: Volume) -> Labels:
    """An NRRD label map onto ``volume``'s grid (reoriented if only axis order/direction differ)."""
    p = Path(path)
    img, array, spacing = _load(p)
    return labels_from_map(array, p, lambda a: reorient_onto(a, _affine(img, spacing), volume, p), _slicer_segments(img, p))


def _slicer_segments(img, p: Path) -> dict | None:
    """{value: {"name", "color"}} from a .seg.nrrd header, None without segment fields."""
    meta = {k: img.GetMetaData(k) for k in img.GetMetaDataKeys()}
    out = {}
    i = 0
    while f"Segment{i}_Name" in meta:
        try:
            if meta.get(f"Segment{i}_Layer", "0").strip() != "0":
                raise ValueError("segments in several layers (overlapping) are not supported")
            value = int(meta.get(f"Segment{i}_LabelValue", i + 1))
            rgb = [float(c) for c in meta.get(f"Segment{i}_Color", "").split()[:3]]
        except ValueError as exc:
            raise InputError(p, f"segment {i} of the header can't be read ({exc})") from exc
        out[value] = {"name": meta[f"Segment{i}_Name"], "color": [round(c * 255) for c in rgb] if len(rgb) == 3 else None}
        i += 1
    return out or None


def _set_slicer_segments(img, segments: dict, shape) -> None:
    z, y, x = shape
    img.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    img.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")
    for i, seg in enumerate(segments[v] for v in sorted(segments)):
        fields = {"ID": f"Segment_{seg.value}", "Name": seg.name, "LabelValue": str(seg.value), "Layer": "0",
                  "Color": " ".join(f"{c / 255:.6g}" for c in seg.color), "Extent": f"0 {x - 1} 0 {y - 1} 0 {z - 1}",
                  "Tags": "|"}
        for key, text in fields.items():
            img.SetMetaData(f"Segment{i}_{key}", text)


def write_nrrd_labels(labels: np.ndarray, volume: Volume, path, segments=None) -> list[Path]:
    """A label map as NRRD on ``volume``'s grid (SimpleITK writes the header: LPS space,
    directions, origin) plus a ``.json`` sidecar with the names; both written, then both renamed."""
    import SimpleITK

    xyz = (np.linalg.inv(LPS_TO_RAS) @ volume.affine)[:, [2, 1, 0, 3]]  # (x, y, z) index -> LPS mm
    spacing = np.linalg.norm(xyz[:3, :3], axis=0)
    img = SimpleITK.GetImageFromArray(np.ascontiguousarray(labels))
    img.SetSpacing([float(v) for v in spacing])
    img.SetOrigin([float(v) for v in xyz[:3, 3]])
    img.SetDirection([float(v) for v in (xyz[:3, :3] / spacing).ravel()])
    _set_slicer_segments(img, make_segments(segments, np.unique(labels)), labels.shape)
    return write_with_sidecar(labels, path, segments, lambda tmp: SimpleITK.WriteImage(img, str(tmp), True))
