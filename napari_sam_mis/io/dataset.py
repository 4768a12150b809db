"""Export annotated studies as an nnU-Net v2 raw dataset (imagesTr/, labelsTr/, dataset.json).

Extra input channels (e.g. SAM's prior maps, annotate/priors.py) come from a callable, so that
this module needs no model: ``extra_channels(volume) -> [ExtraChannel, ...]``, called once per
case after every check has passed; channel i is written as ``<case>_000i.nii.gz``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.atomic import default_mode, naming
from napari_sam_mis.io.segments import Labels, make_segments
from napari_sam_mis.volume import Volume

_CHANNEL = {"CT": "CT", "MR": "MRI"}  # nnU-Net normalises channels named "CT" with CT statistics


class ExtraChannel(NamedTuple):
    """One more input channel of a case, on its image's grid."""

    name: str  # what it is, kept in dataset.json's "channel_descriptions"
    array: np.ndarray  # (z, y, x) float32, finite
    # nnU-Net picks a channel's normalisation by its name in "channel_names" (nnunetv2's
    # map_channel_name_to_normalization): "noNorm" keeps values as they are (maps already in 0..1)
    normalization: str = "noNorm"


def _load_case(image, labels, segments, allow_other_frame: bool = False) -> tuple[Volume, np.ndarray, dict, str]:
    from napari_sam_mis.io import check_labels, read_labels, read_volume

    vol = image if isinstance(image, Volume) else read_volume(image)
    where = str(labels) if isinstance(labels, (str, Path)) else (vol.source or "labels")
    if vol.is_rgb:
        raise InputError(vol.source or "image", "RGB images cannot be exported to nnU-Net; use greyscale images")
    if isinstance(labels, (str, Path)):
        labels = read_labels(labels, vol, allow_other_frame=allow_other_frame)
    if not isinstance(labels, Labels):
        labels = Labels(np.asarray(labels))
    if labels.overlapping:
        raise InputError(where, "overlapping segments cannot be stored in one nnU-Net label map")
    arr = check_labels(labels.array, vol, where)
    values = [int(v) for v in np.unique(arr) if v]
    if not values:
        raise InputError(where, "the labels are empty (no labelled voxels); an empty mask is not a training case")
    names = {v: s.name for v, s in make_segments(segments if segments is not None else labels.segments, values).items()}
    if len(set(names.values())) != len(names):
        raise InputError(where, f"two label values share a name ({names}); give each a distinct name")
    return vol, arr, names, where


def class_numbers(names_per_case: list[dict[int, str]]) -> dict[str, int]:
    """The dataset's classes: each label name once, numbered 1..N in the order of the smallest
    value it has in any case."""
    first_value: dict[str, int] = {}
    for names in names_per_case:
        for value, label_name in names.items():
            first_value[label_name] = min(value, first_value.get(label_name, value))
    order = sorted(first_value, key=lambda n: (first_value[n], n))
    return {n: i for i, n in enumerate(order, start=1)}


def _check_names_match(loaded: list) -> None:
    """A value without a name ("label N") in one case that another case names would split one
    organ into two classes: refuse, and say how to name it."""
    named: dict[int, set[str]] = {}
    for _, _, names, _ in loaded:
        for v, n in names.items():
            if n != f"label {v}":
                named.setdefault(v, set()).add(n)
    for _, _, names, where in loaded:
        clash = {v: sorted(named[v]) for v, n in names.items() if n == f"label {v}" and v in named}
        if clash:
            said = "; ".join(f"value {v} is {' or '.join(ns)} elsewhere" for v, ns in clash.items())
            raise InputError(where, f"has labels without a name that other cases name ({said}); name them "
                                    "(a .json sidecar, or --label VALUE=NAME) so that each organ is one class")


def export_nnunet_dataset(cases, output_dir, *, dataset_id: int, name: str, segments=None,
                          overwrite: bool = False, allow_other_frame: bool = False,
                          extra_channels: Callable[[Volume], list] | None = None) -> Path:
    """Write ``cases`` (pairs of image and labels: paths, or a Volume and an array/Labels) as
    ``<output_dir>/DatasetXXX_<name>``; returns that folder.

    Labels are matched across cases by name (from sidecars/DICOM-SEG, or ``segments``, else
    "label N") and renumbered 1..N consistently. Each case's labels must lie on its image's grid
    (and a DICOM-SEG in its frame of reference, unless ``allow_other_frame``). ``extra_channels``:
    a case's Volume -> its further input channels (``ExtraChannel``, the same names for every case).
    """
    if not (1 <= int(dataset_id) <= 999) or not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise InputError(name, "dataset id must be 1..999 and the name letters, digits, '_' or '-'")
    loaded = [_load_case(image, labels, segments, allow_other_frame) for image, labels in cases]
    if not loaded:
        raise InputError(output_dir, "no cases to export")
    modalities = {vol.modality for vol, *_ in loaded}
    if len(modalities) > 1:
        raise InputError(output_dir, f"cases mix modalities {sorted(modalities)}; export them as separate datasets")
    if len({vol.shape[0] == 1 for vol, *_ in loaded}) > 1:
        raise InputError(output_dir, "cases mix 2D (single-slice) and 3D grids; export them as separate datasets")

    _check_names_match(loaded)
    number = class_numbers([names for _, _, names, _ in loaded])

    out = Path(output_dir) / f"Dataset{int(dataset_id):03d}_{name}"
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(out, "already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    for image, labels in cases:  # replacing ``out`` must never delete a case's own files
        vol = image if isinstance(image, Volume) else None
        sources = [image if vol is None else vol.source, labels if isinstance(labels, (str, Path)) else None]
        sources += (vol.meta.get("dicom_files", []) if vol is not None else [])
        for src in (Path(x).expanduser().resolve() for x in sources if x):
            if src == out.resolve() or out.resolve() in src.parents:
                raise InputError(out, f"holds {src}, a source of the export; choose another output folder")
    try:
        _write_dataset(out, loaded, name, number, modalities, extra_channels)
    except OSError as exc:  # a full disk or a read-only folder: name the dataset, not a hidden temporary
        raise naming(exc, out, always=True) from exc
    return out


def _checked_channels(extra_channels, vol: Volume, where: str, names: list | None) -> list[ExtraChannel]:
    """The case's extra channels, each (z, y, x) float32 on its grid, named as the first case's."""
    channels = [ExtraChannel(*c) for c in extra_channels(vol)]
    if names is not None and [c.name for c in channels] != names:
        raise InputError(where, f"extra channels {[c.name for c in channels]} differ from the first case's {names}")
    checked = []
    for c in channels:
        arr = np.asarray(c.array, np.float32)
        if arr.shape != vol.shape or not np.isfinite(arr).all():
            raise InputError(where, f"extra channel {c.name!r} must be finite with the image grid {vol.shape}, "
                                    f"got shape {arr.shape}")
        checked.append(c._replace(array=arr))
    return checked


def _write_dataset(out: Path, loaded: list, name: str, number: dict, modalities: set, extra_channels=None) -> None:
    """Write the dataset into a hidden folder beside ``out``, then put it in ``out``'s place."""
    from napari_sam_mis.io.nifti import write_nifti

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, default_mode(folder=True))
    try:
        extra: list[ExtraChannel] = []
        for i, (vol, arr, names, where) in enumerate(loaded, start=1):
            case = f"{name}_{i:03d}"
            lut = np.zeros(256, np.uint8)
            for value, label_name in names.items():
                lut[value] = number[label_name]
            write_nifti(vol.array, vol, tmp / "imagesTr" / f"{case}_0000.nii.gz", is_labels=False)
            write_nifti(lut[arr], vol, tmp / "labelsTr" / f"{case}.nii.gz", is_labels=True)
            if extra_channels is not None:
                extra = _checked_channels(extra_channels, vol, where, [c.name for c in extra] if i > 1 else None)
                for k, channel in enumerate(extra, start=1):
                    write_nifti(channel.array, vol, tmp / "imagesTr" / f"{case}_{k:04d}.nii.gz", is_labels=False)
        first = _CHANNEL.get(next(iter(modalities)), "image")
        info = {
            "name": name,
            "description": "Exported by napari-sam-mis",
            "channel_names": {"0": first, **{str(k): c.normalization for k, c in enumerate(extra, start=1)}},
            **({"channel_descriptions": {"0": first, **{str(k): c.name for k, c in enumerate(extra, start=1)}}}
               if extra else {}),
            "labels": {"background": 0, **number},
            "numTraining": len(loaded),
            "file_ending": ".nii.gz",
        }
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
