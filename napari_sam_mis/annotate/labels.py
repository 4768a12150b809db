"""The list of labels a user annotates with: value, name and colour (Qt-free).

The widget shows it; the labels layer takes its colours from it, and its names and colours go
with the layer's metadata to the writers (``_napari/layers.py``: ``attach_label_names``).
"""
from __future__ import annotations

from dataclasses import dataclass

# A small built-in list: common abdominal/thoracic structures and "lesion".
BUILTIN_LABELS: tuple[tuple[str, str], ...] = (
    ("liver", "#dc643c"),
    ("spleen", "#9d6cd8"),
    ("kidney_right", "#e6c83c"),
    ("kidney_left", "#c8a028"),
    ("pancreas", "#50b4a0"),
    ("aorta", "#e6283c"),
    ("lung", "#64a0e6"),
    ("lesion", "#32dc32"),
)


def _check_color(color: str) -> str:
    c = str(color).strip().lower()
    if not c.startswith("#"):
        c = "#" + c
    if len(c) == 4:  # #rgb -> #rrggbb
        c = "#" + "".join(ch * 2 for ch in c[1:])
    if len(c) != 7 or any(ch not in "0123456789abcdef" for ch in c[1:]):
        raise ValueError(f"colour must be #rrggbb, got {color!r}")
    return c


@dataclass
class LabelSpec:
    value: int
    name: str
    color: str  # "#rrggbb"

    def rgba(self, alpha: float = 1.0) -> tuple[float, float, float, float]:
        h = self.color.lstrip("#")
        return (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255, float(alpha))


class LabelList:
    """Ordered labels with unique positive values and unique names, and a selected one."""

    def __init__(self, labels=None):
        self._labels: list[LabelSpec] = []
        self.selected: int | None = None
        for spec in labels or ():
            self.add(spec.name, spec.color, spec.value)

    @classmethod
    def builtin(cls) -> "LabelList":
        out = cls()
        for name, color in BUILTIN_LABELS:
            out.add(name, color)
        out.selected = out._labels[0].value
        return out

    # -- queries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self):
        return iter(list(self._labels))

    def get(self, value: int) -> LabelSpec:
        for spec in self._labels:
            if spec.value == int(value):
                return spec
        raise KeyError(f"no label with value {value}")

    def by_name(self, name: str) -> LabelSpec:
        for spec in self._labels:
            if spec.name == name:
                return spec
        raise KeyError(f"no label named {name!r}")

    @property
    def current(self) -> LabelSpec | None:
        return self.get(self.selected) if self.selected is not None else None

    def next_value(self) -> int:
        return max((s.value for s in self._labels), default=0) + 1

    # -- edits -----------------------------------------------------------------------------
    def add(self, name: str, color: str = "#ff8c00", value: int | None = None) -> LabelSpec:
        name = str(name).strip()
        if not name:
            raise ValueError("a label needs a name")
        if any(s.name == name for s in self._labels):
            raise ValueError(f"a label named {name!r} already exists")
        value = self.next_value() if value is None else int(value)
        if value <= 0 or value > 65535:
            raise ValueError(f"label values must be 1..65535, got {value}")
        if any(s.value == value for s in self._labels):
            raise ValueError(f"label value {value} is already used")
        spec = LabelSpec(value, name, _check_color(color))
        self._labels.append(spec)
        if self.selected is None:
            self.selected = value
        return spec

    def rename(self, value: int, name: str) -> None:
        name = str(name).strip()
        if not name:
            raise ValueError("a label needs a name")
        if any(s.name == name and s.value != value for s in self._labels):
            raise ValueError(f"a label named {name!r} already exists")
        self.get(value).name = name

    def recolor(self, value: int, color: str) -> None:
        self.get(value).color = _check_color(color)

    def remove(self, value: int) -> None:
        self._labels.remove(self.get(value))
        if self.selected == value:
            self.selected = self._labels[0].value if self._labels else None

    def select(self, value: int) -> None:
        self.selected = self.get(value).value

    # -- export ----------------------------------------------------------------------------
    def names(self) -> dict[int, str]:
        return {s.value: s.name for s in self._labels}

    def colors(self) -> dict[int, str]:
        return {s.value: s.color for s in self._labels}


@dataclass(frozen=True)
class LabelStats:
    """What one label covers in a (z, y, x) label array."""

    value: int
    name: str
    voxels: int
    volume_ml: float
    first_slice: int
    last_slice: int


def label_statistics(array, spacing, names: dict | None = None) -> list[LabelStats]:
    """Voxel count, volume in mL (voxel size from ``spacing`` in mm) and slice range (along axis 0)
    of every non-zero label value, in value order."""
    import numpy as np

    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    top = int(arr.max(initial=0)) + 1
    per_slice = np.stack([np.bincount(s.ravel().astype(np.int64), minlength=top) for s in arr])  # (z, values)
    counts = per_slice.sum(axis=0)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = []
    for v in np.flatnonzero(counts[1:]) + 1:
        zs = np.flatnonzero(per_slice[:, v])
        out.append(LabelStats(int(v), (names or {}).get(int(v), f"label {int(v)}"), int(counts[v]),
                              int(counts[v]) * voxel_ml, int(zs[0]), int(zs[-1])))
    return out


def statistics_table(stats: list[LabelStats]) -> str:
    """The statistics as tab-separated text with a header (pastes into a spreadsheet)."""
    lines = ["value\tname\tvoxels\tvolume_ml\tfirst_slice\tlast_slice"]
    lines += [f"{s.value}\t{s.name}\t{s.voxels}\t{s.volume_ml:.3f}\t{s.first_slice}\t{s.last_slice}" for s in stats]
    return "\n".join(lines) + "\n"
