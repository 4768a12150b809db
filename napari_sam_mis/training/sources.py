"""Labelled images for click training: IMAGE:LABELS pairs, CVPR24 .npz files, SAM-Med2D style
folders (images/ + masks/) and folders of images with matching label NIfTI files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError, SamMisError
from napari_sam_mis.io import read_label_array, read_volume
from napari_sam_mis.io.formats import is_nifti, is_npz, is_raster
from napari_sam_mis.io.nifti import LABEL_NAME_WORDS
from napari_sam_mis.io.raster import read_mask_raster
from napari_sam_mis.volume import Volume


@dataclass
class LabelledImage:
    """One image with its objects: a label array (z, y, x) and/or extra per-slice binary masks."""

    name: str
    volume: Volume
    labels: np.ndarray | None = None
    masks: list = field(default_factory=list)  # (z, (y, x) bool) pairs
    files: list = field(default_factory=list)  # files it was read from (for the cache signature)

    def slice_masks(self) -> dict[int, list[np.ndarray]]:
        out: dict[int, list[np.ndarray]] = {}
        if self.labels is not None:
            for z in np.flatnonzero(self.labels.reshape(self.labels.shape[0], -1).any(axis=1)):
                plane = self.labels[z]
                out[int(z)] = [plane == v for v in np.unique(plane) if v != 0]
        for z, mask in self.masks:
            out.setdefault(int(z), []).append(np.asarray(mask, bool))
        return out


def read_pair(image, labels) -> LabelledImage:

    image, labels = Path(image), Path(labels)
    volume = read_volume(image)
    return LabelledImage(f"{image.name}:{labels.name}", volume, read_label_array(labels, volume), files=[image, labels])


def _read_sammed2d_folder(folder: Path) -> list[LabelledImage]:
    """SAM-Med2D layout: images/<stem>.png with masks/<stem>_<organ>_<n>.png, one object per mask."""
    out = []
    for image in sorted((folder / "images").iterdir()):
        if not is_raster(image):
            continue
        volume = read_volume(image)
        mask_files = sorted((folder / "masks").glob(image.stem + "_*"))
        masks = [(0, read_mask_raster(m, volume.shape[1:])[0] > 0) for m in mask_files]
        if masks:
            out.append(LabelledImage(image.name, volume, None, masks, files=[image, *mask_files]))
    if not out:
        raise InputError(folder, "images/ and masks/ hold no image with masks named <image>_<organ>_<n>.png")
    return out


def _read_paired_folder(folder: Path) -> list[LabelledImage]:
    """A folder of images (NIfTI files, DICOM sub-folders) and label NIfTI files (names with
    seg/label/mask/gt): each label file is paired with the one image whose grid it fits."""
    entries = sorted(folder.iterdir())
    label_files = [p for p in entries if p.is_file() and is_nifti(p)
                   and any(w in p.name.lower() for w in LABEL_NAME_WORDS)]
    images = [p for p in entries if p not in label_files and (p.is_dir() or is_nifti(p))]
    if not label_files:
        raise InputError(folder, "no label NIfTI files found (names containing seg/label/mask/gt); "
                                 "pass IMAGE:LABELS pairs instead")
    volumes = {p: read_volume(p) for p in images}
    out = []
    for lab in label_files:
        fits = []
        for img, vol in volumes.items():
            try:
                fits.append((img, vol, read_label_array(lab, vol)))
            except InputError:
                continue
        if len(fits) != 1:
            raise InputError(lab, f"fits the grid of {len(fits)} images in {folder} (need exactly one); "
                                  "pass IMAGE:LABELS pairs instead")
        img, vol, arr = fits[0]
        out.append(LabelledImage(f"{img.name}:{lab.name}", vol, arr, files=[img, lab]))
    return out


def _split_pair(item: str):
    """'IMAGE:LABELS' -> (IMAGE, LABELS) when both exist (tries every ':' so drive letters survive)."""
    for i, ch in enumerate(item):
        if ch == ":" and Path(item[:i]).exists() and Path(item[i + 1:]).exists():
            return Path(item[:i]), Path(item[i + 1:])
    return None


def read_sources(items) -> list[LabelledImage]:
    """``--data`` items: IMAGE:LABELS pairs, CVPR24 .npz files (imgs + gts), SAM-Med2D style folders
    (images/ + masks/) or folders of images with matching label NIfTI files; a ``LabelledImage``
    (e.g. an image open in napari with its labels) is taken as it is."""
    out: list[LabelledImage] = []
    for item in items:
        if isinstance(item, LabelledImage):
            out.append(item)
            continue
        item = str(item)
        pair = _split_pair(item)
        if pair:
            out.append(read_pair(*pair))
            continue
        p = Path(item)
        if not p.exists():
            raise InputError(p, "no such file or folder (a --data item is a path or IMAGE:LABELS)")
        if p.is_file() and is_npz(p):
            out.append(read_pair(p, p))
        elif p.is_dir() and (p / "images").is_dir() and (p / "masks").is_dir():
            out.extend(_read_sammed2d_folder(p))
        elif p.is_dir():
            out.extend(_read_paired_folder(p))
        else:
            raise InputError(p, "needs its labels: pass IMAGE:LABELS (NIfTI, DICOM folder + SEG, PNG + mask)")
    if not out:
        raise SamMisError("no training data given")
    return out
