"""Label values and what they mean: names, display colours and SNOMED-CT codes for DICOM-SEG."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Friendly name -> (attribute of pydicom's SCT code dictionary, category attribute, RGB colour).
# Names are matched case-insensitively with spaces, dashes and underscores ignored.
_KNOWN = {
    "liver": ("Liver", "AnatomicalStructure", (221, 130, 101)),
    "spleen": ("Spleen", "AnatomicalStructure", (157, 108, 162)),
    "kidney": ("Kidney", "AnatomicalStructure", (185, 102, 83)),
    "pancreas": ("Pancreas", "AnatomicalStructure", (249, 180, 111)),
    "gallbladder": ("Gallbladder", "AnatomicalStructure", (139, 150, 98)),
    "stomach": ("Stomach", "AnatomicalStructure", (216, 132, 105)),
    "duodenum": ("Duodenum", "AnatomicalStructure", (255, 253, 229)),
    "smallintestine": ("SmallIntestine", "AnatomicalStructure", (205, 167, 142)),
    "colon": ("Colon", "AnatomicalStructure", (204, 168, 143)),
    "esophagus": ("Esophagus", "AnatomicalStructure", (211, 171, 143)),
    "aorta": ("Aorta", "AnatomicalStructure", (224, 97, 76)),
    "inferiorvenacava": ("InferiorVenaCava", "AnatomicalStructure", (0, 151, 206)),
    "portalvein": ("PortalVein", "AnatomicalStructure", (0, 112, 165)),
    "heart": ("Heart", "AnatomicalStructure", (206, 110, 84)),
    "lung": ("Lung", "AnatomicalStructure", (197, 165, 145)),
    "trachea": ("Trachea", "AnatomicalStructure", (182, 228, 255)),
    "bladder": ("Bladder", "AnatomicalStructure", (222, 154, 132)),
    "prostate": ("Prostate", "AnatomicalStructure", (230, 158, 140)),
    "uterus": ("Uterus", "AnatomicalStructure", (205, 141, 113)),
    "rectum": ("Rectum", "AnatomicalStructure", (217, 151, 128)),
    "adrenalgland": ("AdrenalGland", "AnatomicalStructure", (244, 217, 154)),
    "brain": ("Brain", "AnatomicalStructure", (250, 250, 225)),
    "spinalcord": ("SpinalCord", "AnatomicalStructure", (244, 214, 49)),
    "spine": ("Spine", "AnatomicalStructure", (241, 214, 145)),
    "vertebra": ("Vertebra", "AnatomicalStructure", (241, 214, 145)),
    "rib": ("Rib", "AnatomicalStructure", (241, 214, 145)),
    "bone": ("Bone", "Tissue", (241, 214, 145)),
    "muscle": ("Muscle", "Tissue", (192, 104, 88)),
    "fat": ("Fat", "Tissue", (230, 220, 70)),
    "lesion": ("Lesion", "MorphologicallyAbnormalStructure", (255, 0, 0)),
    "tumor": ("Neoplasm", "MorphologicallyAbnormalStructure", (255, 0, 0)),
    "tumour": ("Neoplasm", "MorphologicallyAbnormalStructure", (255, 0, 0)),
    "neoplasm": ("Neoplasm", "MorphologicallyAbnormalStructure", (255, 0, 0)),
    "mass": ("Mass", "MorphologicallyAbnormalStructure", (255, 0, 0)),
    "cyst": ("Cyst", "MorphologicallyAbnormalStructure", (255, 255, 0)),
}
# Unknown names: generic Tissue/Tissue codes (as 3D Slicer does); the name itself is the segment label.
_FALLBACK = ("Tissue", "Tissue")
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _lookup(name: str):
    key = _key(name)
    if key in _KNOWN:
        return _KNOWN[key]
    for side in ("left", "right"):  # "kidney_left", "left lung" -> the organ's code
        for k in (key.removeprefix(side), key.removesuffix(side)):
            if k != key and k in _KNOWN:
                return _KNOWN[k]
    return None


@dataclass
class Segment:
    """One label value: its name, RGB colour (0-255) and SNOMED-CT category/type codes."""

    value: int
    name: str
    color: tuple[int, int, int] = None
    category: object = None  # pydicom.sr.coding.Code
    type: object = None

    def __post_init__(self):
        from pydicom.sr.codedict import codes

        known = _lookup(self.name)
        type_attr, category_attr = (known[0], known[1]) if known else _FALLBACK
        if self.category is None:
            self.category = getattr(codes.SCT, category_attr)
        if self.type is None:
            self.type = getattr(codes.SCT, type_attr)
        if self.color is None:
            self.color = known[2] if known else _PALETTE[(self.value - 1) % len(_PALETTE)]
        self.color = tuple(int(c) for c in self.color)

    def to_json(self) -> dict:
        return {"name": self.name, "color": list(self.color)}


@dataclass
class Labels:
    """Labels on a Volume's grid.

    array:    (z, y, x) label map, or (n_segments, z, y, x) binary masks when segments overlap
              (DICOM-SEG only); then array[i] belongs to the i-th entry of ``segments``.
    segments: label value -> Segment.
    """

    array: np.ndarray
    segments: dict = field(default_factory=dict)

    @property
    def overlapping(self) -> bool:
        return self.array.ndim == 4


def make_segments(spec, values) -> dict[int, Segment]:
    """Normalise a user's segment description for the label ``values`` present.

    ``spec`` may be None, a list of names (value i+1 for item i), a list of Segment,
    or a dict value -> name | {"name": ..., "color": [r, g, b]} | Segment.
    Values without a description are named "label N".
    """
    given: dict[int, object] = {}
    if isinstance(spec, dict):
        given = {int(k): v for k, v in spec.items()}
    elif spec is not None:
        for i, item in enumerate(spec):
            given[item.value if isinstance(item, Segment) else i + 1] = item
    out = {}
    for value in sorted(int(v) for v in values if int(v) != 0):
        item = given.get(value)
        if isinstance(item, Segment):
            out[value] = item
        elif isinstance(item, dict):
            out[value] = Segment(value, str(item.get("name") or f"label {value}"), item.get("color"))
        else:
            out[value] = Segment(value, str(item) if item else f"label {value}")
    return out


def segments_to_json(segments: dict[int, Segment]) -> dict:
    """The JSON-friendly form used in sidecars and napari metadata: {"1": {"name", "color"}}."""
    return {str(v): s.to_json() for v, s in sorted(segments.items())}
