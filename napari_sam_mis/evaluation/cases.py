"""The labelled cases of the written split (``split.json``: train / validation / test, by patient)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_sam_mis.volume import Volume

SPLIT_FILE = Path(__file__).with_name("split.json")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Case:
    name: str
    patient: str
    split: str
    modality: str
    image: str  # relative to the data folder
    labels: str
    label_values: tuple[int, ...] | None = None  # the labels evaluated (None: all)
    axial: bool = False  # slice along the array axis nearest to superior-inferior
    note: str = ""


def load_split(path=SPLIT_FILE) -> list[Case]:
    cases = []
    for c in json.loads(Path(path).read_text())["cases"]:
        values = c.get("label_values")
        cases.append(Case(c["name"], c["patient"], c["split"], c["modality"], c["image"], c["labels"],
                          tuple(values) if values else None, bool(c.get("axial", False)), c.get("note", "")))
    return cases


def cases_of(split: str, path=SPLIT_FILE) -> list[Case]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    return [c for c in load_split(path) if c.split == split]


def superior_axis(volume: Volume) -> int:
    """The array axis whose direction is nearest to the body's superior-inferior axis."""
    direction = volume.affine[:3, :3] / np.asarray(volume.spacing)
    return int(np.argmax(np.abs(direction[2])))


def axis_first(volume: Volume, labels: np.ndarray, axis: int) -> tuple[Volume, np.ndarray]:
    """The volume and labels with array ``axis`` moved to the front (the slicing axis)."""
    if axis == 0:
        return volume, labels
    order = [axis] + [a for a in range(3) if a != axis]
    affine = volume.affine.copy()
    affine[:, :3] = volume.affine[:, order]
    moved = Volume(np.ascontiguousarray(volume.array.transpose(order + list(range(3, volume.array.ndim)))),
                   tuple(volume.spacing[a] for a in order), affine, volume.modality, volume.windowed,
                   volume.source, dict(volume.meta))
    return moved, np.ascontiguousarray(labels.transpose(order))


def read_case(case: Case, data_root) -> tuple[Volume, np.ndarray]:
    """The case's image (modality as the split says) and its ground truth, only the labels evaluated."""
    from napari_sam_mis.io import read_label_array, read_volume

    root = Path(data_root)
    volume = read_volume(root / case.image)
    volume.modality = case.modality
    labels = read_label_array(root / case.labels, volume)
    if case.label_values is not None:
        labels = np.where(np.isin(labels, case.label_values), labels, 0).astype(labels.dtype)
    if case.axial:
        volume, labels = axis_first(volume, labels, superior_axis(volume))
    return volume, labels
