"""DICOM images: a folder holding a series of single-frame files, or one multi-frame file."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
# Identifiers a DICOM-SEG copies from its source; blank ones are reported before writing.
IDENTIFIERS = ("PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
               "StudyID", "AccessionNumber", "StudyDate", "SeriesDescription", "Modality")


def is_dicom_file(path) -> bool:
    """True for a file with the DICOM preamble ("DICM" at byte 128) or a .dcm extension."""
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        f.seek(128)
        return f.read(4) == b"DICM" or p.suffix.lower() == ".dcm"


def _read_header(p: Path):
    import pydicom

    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        # Anonymisers sometimes blank SOP Class/Instance UIDs that survive in the file meta.
        meta = getattr(ds, "file_meta", None)
        for name, meta_name in (("SOPClassUID", "MediaStorageSOPClassUID"), ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
            if not ds.get(name) and meta is not None and meta.get(meta_name):
                setattr(ds, name, meta.get(meta_name))
    except Exception as exc:  # pydicom raises many kinds, some only when an element is first read
        raise InputError(p, f"truncated or damaged DICOM file ({exc})") from exc
    return ds


def is_seg(ds) -> bool:
    return ds.get("SOPClassUID") == SEG_SOP_CLASS or ds.get("Modality") == "SEG"


@dataclass
class Series:
    """Single-frame image files that belong together (same series, orientation and matrix)."""

    uid: str
    description: str
    datasets: list = field(default_factory=list)
    files: list = field(default_factory=list)

    def label(self) -> str:
        return f"'{self.description or '(no description)'}' ({len(self.files)} files, UID {self.uid or '(blank)'})"


def _series_key(ds) -> tuple:
    orient = tuple(np.round(np.asarray(ds.get("ImageOrientationPatient") or [0] * 6, float), 3))
    uid = ds.get("SeriesInstanceUID") or ""
    if not uid:  # blanked by anonymisation: fall back to what a series shares
        uid = f"{ds.get('FrameOfReferenceUID', '')}|{ds.get('SeriesNumber', '')}|{ds.get('SeriesDescription', '')}"
    return uid, orient, ds.get("Rows"), ds.get("Columns")


def list_series(folder) -> list[Series]:
    """Image series directly inside ``folder``. Non-DICOM files and DICOM-SEG objects are skipped with a warning."""
    folder = Path(folder)
    groups: dict[tuple, Series] = {}
    skipped = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if not is_dicom_file(p):
            skipped.append(p.name)
            continue
        ds = _read_header(p)
        try:
            if is_seg(ds) or "Rows" not in ds or int(ds.get("NumberOfFrames", 1) or 1) > 1:
                skipped.append(p.name)
                continue
            key = _series_key(ds)
            hash(key)
        except Exception as exc:  # a damaged element, read for the first time here
            raise InputError(p, f"damaged DICOM header ({exc})") from exc
        series = groups.setdefault(key, Series(ds.get("SeriesInstanceUID") or "", ds.get("SeriesDescription") or ""))
        series.datasets.append(ds)
        series.files.append(p)
    if skipped:
        warnings.warn(f"{folder}: skipped {len(skipped)} file(s) that are not single-frame DICOM images: "
                      f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}", stacklevel=2)
    return list(groups.values())


def _pick(folder: Path, found: list[Series], series: str | None) -> Series:
    if not found:
        raise InputError(folder, "no DICOM image files in this folder (sub-folders are not searched)")
    if series is not None:
        chosen = [s for s in found if series in (s.uid, s.description)]
        if len(chosen) != 1:
            raise InputError(folder, f"{len(chosen)} series match {series!r}; available: "
                                     + "; ".join(s.label() for s in found))
        return chosen[0]
    uids = [s.uid for s in found]
    for uid in {u for u in uids if u and uids.count(u) > 1}:  # one series split by orientation or size
        parts = sorted((s for s in found if s.uid == uid), key=lambda s: len(s.files))
        odd, ds = parts[0].files[0], parts[0].datasets[0]
        others = sum(len(s.files) for s in parts[1:])
        odd_ones = odd.name if len(parts[0].files) == 1 else f"{odd.name} and the {len(parts[0].files) - 1} like it"
        raise InputError(odd, f"differs from the other {others} slices of series {uid} in orientation or size "
                              f"(ImageOrientationPatient {ds.get('ImageOrientationPatient')}, {ds.get('Rows')} x "
                              f"{ds.get('Columns')}); the series is not one regular volume. To open the other "
                              f"{others} slices, move {odd_ones} out of the folder")
    if len(found) > 1:
        raise InputError(folder, f"{len(found)} series in one folder: " + "; ".join(s.label() for s in found)
                                 + ". Pick one with series='<description or UID>' (command line: --series)")
    return found[0]


def _check_spacing(folder: Path, pos: np.ndarray, files: list) -> float:
    """Slice step along the normal; raises on duplicate, missing or unevenly spaced slices."""
    if len(pos) < 2:
        return 0.0
    steps = np.diff(pos)
    if steps.min() < 1e-3:
        i = int(np.argmin(steps))
        raise InputError(folder, f"two slices at the same position {pos[i]:.3f} mm ({files[i].name}, "
                                 f"{files[i + 1].name}); the folder may hold two acquisitions")
    step = float(np.median(steps))
    tol = max(0.01, 0.02 * step)
    bad = np.flatnonzero(np.abs(steps - step) > tol)
    if bad.size:
        ratios = steps[bad] / step
        if np.all(np.abs(ratios - np.round(ratios)) < 0.05):
            gaps = ", ".join(f"{int(round(r)) - 1} between {pos[i]:.2f} and {pos[i + 1]:.2f} mm "
                             f"({files[i].name} / {files[i + 1].name})" for i, r in zip(bad, ratios))
            raise InputError(folder, f"missing slice(s): {gaps}; slice step is {step:.3f} mm")
        raise InputError(folder, f"non-uniform slice spacing: steps from {steps.min():.3f} to "
                                 f"{steps.max():.3f} mm (median {step:.3f} mm)")
    return step


def _pixels(ds, p: Path) -> np.ndarray:
    try:
        arr = ds.pixel_array
    except Exception as exc:  # missing decoder, truncated pixel data ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        raise InputError(p, f"cannot decode the pixel data (transfer syntax "
                            f"{getattr(syntax, 'name', 'unknown')}): {exc}") from exc
    if arr.ndim != 2:
        raise InputError(p, f"expected a greyscale slice, got pixel array of shape {arr.shape}")
    return arr


def _identifiers(ds) -> dict:
    return {k: str(ds.get(k, "") or "") for k in IDENTIFIERS}


def _modality(ds) -> str:
    return ds.get("Modality") if ds.get("Modality") in ("CT", "MR") else "OT"


def read_series(folder, series: str | None = None) -> Volume:
    """One series from a folder, slices sorted along the slice normal, in modality units (HU for CT)."""
    folder = Path(folder)
    return _stack(folder, _pick(folder, list_series(folder), series))


def _geometry(ds, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[int, int]]:
    """(orientation, position, (row, col) spacing, (rows, cols)) of one slice, or a clear error."""
    try:
        missing = [k for k in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns")
                   if ds.get(k) in (None, "")]
    except Exception as exc:  # a damaged element, read for the first time here
        raise InputError(path, f"damaged DICOM header ({exc})") from exc
    if missing:
        raise InputError(path, f"lacks {', '.join(missing)}: the slice's place in the patient is unknown")
    try:
        iop, ipp = np.asarray(ds.ImageOrientationPatient, float), np.asarray(ds.ImagePositionPatient, float)
        spacing = tuple(float(v) for v in ds.PixelSpacing)
        shape = (int(ds.Rows), int(ds.Columns))
    except Exception as exc:
        raise InputError(path, f"unreadable geometry tags ({exc})") from exc
    if iop.shape != (6,) or ipp.shape != (3,) or len(spacing) != 2 or not np.all(np.isfinite(np.r_[iop, ipp, spacing])):
        raise InputError(path, "ImageOrientationPatient, ImagePositionPatient or PixelSpacing is malformed")
    if min(spacing) <= 0:
        raise InputError(path, f"PixelSpacing must be positive, got {spacing}")
    return iop, ipp, spacing, shape


_MOVE_IT = ". To open the other slices, move this one out of the folder"


def _check_same_grid(chosen: Series, geometry: list) -> None:
    """Every slice of a series must share orientation, pixel spacing and size with the first."""
    iop0, _, spacing0, shape0 = geometry[0]
    for path, (iop, _, spacing, shape) in zip(chosen.files, geometry):
        if np.abs(iop - iop0).max() > 1e-4:
            raise InputError(path, f"is tilted against {chosen.files[0].name} (ImageOrientationPatient {iop.round(4).tolist()}"
                                   f" vs {iop0.round(4).tolist()}); the series is not one regular volume{_MOVE_IT}")
        if np.abs(np.subtract(spacing, spacing0)).max() > 1e-4 * max(spacing0) or shape != shape0:
            raise InputError(path, f"has PixelSpacing {spacing} and size {shape}, but {chosen.files[0].name} has "
                                   f"{spacing0} and {shape0}; the series is not one regular volume{_MOVE_IT}")


def _stack(folder: Path, chosen: Series) -> Volume:
    import pydicom

    first = chosen.datasets[0]
    geometry = [_geometry(ds, p) for ds, p in zip(chosen.datasets, chosen.files)]
    _check_same_grid(chosen, geometry)
    iop = geometry[0][0]
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    pos_all = np.array([g[1] for g in geometry])
    order = np.argsort(pos_all @ normal, kind="stable")
    datasets = [chosen.datasets[i] for i in order]
    files = [chosen.files[i] for i in order]
    positions = pos_all[order]
    step = _check_spacing(folder, positions @ normal, files)

    slices, integral = [], True
    for p in files:
        try:
            ds = pydicom.dcmread(p)
            slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        except Exception as exc:
            raise InputError(p, f"truncated or damaged DICOM file ({exc})") from exc
        if not (np.isfinite(slope) and np.isfinite(intercept)):
            raise InputError(p, f"RescaleSlope / RescaleIntercept are not finite ({slope}, {intercept})")
        integral &= slope.is_integer() and intercept.is_integer()
        slices.append(_pixels(ds, p).astype(np.float64) * slope + intercept)
    array = np.stack(slices)
    if integral and array.min() >= -32768 and array.max() <= 32767:
        array = array.astype(np.int16)
    else:
        array = array.astype(np.float32)

    dy, dx = geometry[0][2]  # row spacing, column spacing
    if len(files) > 1:
        slice_vec = (positions[-1] - positions[0]) / (len(files) - 1)
    else:
        slice_vec = normal * float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = slice_vec, col_dir * dy, row_dir * dx, positions[0]
    return Volume(
        array=array,
        spacing=(float(np.linalg.norm(slice_vec)), dy, dx),
        affine=LPS_TO_RAS @ lps,
        modality=_modality(first),
        source=str(folder),
        meta={"dicom_datasets": datasets, "dicom_files": [str(f) for f in files], "dicom": _identifiers(first),
              "sop_instance_uids": [str(ds.SOPInstanceUID) for ds in datasets], "slice_step": step},
    )


def read_multiframe(path) -> Volume:
    """A multi-frame (enhanced) DICOM image via highdicom's volume geometry."""
    import highdicom as hd

    p = Path(path)
    try:
        image = hd.imread(str(p))
        vol = image.get_volume()
    except Exception as exc:
        raise InputError(p, f"cannot read this multi-frame DICOM as a regular 3D volume ({exc})") from exc
    array = np.asarray(vol.array)
    if array.ndim != 3:
        raise InputError(p, f"expected greyscale frames, got array of shape {array.shape}")
    if np.array_equal(array, np.round(array)) and array.min() >= -32768 and array.max() <= 32767:
        array = array.astype(np.int16)
    lps = np.asarray(vol.affine, float)
    if np.dot(lps[:3, 0], np.cross(lps[:3, 2], lps[:3, 1])) < 0:  # slices in the order of the series reader
        array = array[::-1]
        lps[:3, 3] += lps[:3, 0] * (array.shape[0] - 1)
        lps[:3, 0] *= -1
    return Volume(
        array=array.astype(array.dtype if array.dtype == np.int16 else np.float32),
        spacing=tuple(float(s) for s in vol.spacing),
        affine=LPS_TO_RAS @ lps,
        modality=_modality(image),
        source=str(p),
        meta={"dicom_datasets": [image], "dicom_files": [str(p)], "dicom": _identifiers(image),
              "sop_instance_uids": [str(image.SOPInstanceUID)]},
    )


def read_dicom(path, series: str | None = None) -> Volume:
    """A folder holding a series, a multi-frame DICOM file, or a single-frame file (one slice)."""
    p = Path(path)
    if p.is_dir():
        return read_series(p, series)
    ds = _read_header(p)
    if is_seg(ds):
        raise InputError(p, "this is a DICOM-SEG (labels); open the image first and read it with read_labels(path, volume)")
    if "Rows" not in ds:
        raise InputError(p, f"not a DICOM image (SOP class {ds.get('SOPClassUID', 'unknown')})")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return read_multiframe(p)
    return _stack(p, Series(ds.get("SeriesInstanceUID") or "", ds.get("SeriesDescription") or "", [ds], [p]))
