"""The batch manifest: a CSV with one prompt per row, grouped into cases.

Columns: ``case,image,z,r0,c0,r1,c1,label,name`` (a box on slice ``z`` in (row, col) pixels, the
label value 1..255 and its name); optional ``clicks`` ("row col sign; ..." with sign 1 or 0, with
or without a box) and ``axis`` (0 axial, 1 coronal, 2 sagittal; default 0). ``image`` is a file
or DICOM folder, relative to the manifest's folder unless absolute. Rows of one case share its
image; an ``embed`` run needs only ``case`` and ``image``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.errors import InputError

REQUIRED = ("case", "image")
PROMPT_COLUMNS = ("z", "r0", "c0", "r1", "c1", "label", "name")


@dataclass
class CasePrompt:
    z: int
    prompt: Prompt
    label: int
    name: str
    axis: int = 0
    line: int = 0  # of the manifest, for messages

    def record(self) -> dict:
        """Plain values, for the case's record of its inputs."""
        return {"z": self.z, "box": list(self.prompt.box) if self.prompt.box is not None else None,
                "points": [list(p) for p in self.prompt.points], "signs": list(self.prompt.labels),
                "label": self.label, "name": self.name, "axis": self.axis}


@dataclass
class Case:
    name: str
    image: str
    prompts: list[CasePrompt] = field(default_factory=list)


def read_manifest(path, need_prompts: bool = True) -> list[Case]:
    """The manifest's cases in their order; InputError naming the file and line of a bad row."""
    p = Path(path)
    try:
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(p, f"not a readable CSV manifest ({exc})") from exc
    wanted = REQUIRED + (PROMPT_COLUMNS if need_prompts else ())
    missing = [c for c in wanted if c not in header]
    if not rows or missing:
        raise InputError(p, f"needs a header with the columns {', '.join(wanted)}"
                            + (f"; missing: {', '.join(missing)}" if rows else "; the file has no rows"))
    cases: dict[str, Case] = {}
    for line, row in enumerate(rows, start=2):
        name, image = (row.get("case") or "").strip(), (row.get("image") or "").strip()
        if not name or not image or "/" in name or name.startswith("."):
            raise InputError(p, f"line {line}: needs a case name (no '/', not starting with '.') and an image")
        image_path = Path(image) if Path(image).is_absolute() else p.parent / image
        case = cases.setdefault(name, Case(name, str(image_path)))
        if case.image != str(image_path):
            raise InputError(p, f"line {line}: case {name!r} has two images ({case.image} and {image_path})")
        if need_prompts:
            case.prompts.append(_prompt(row, p, line))
    return list(cases.values())


def _prompt(row: dict, p: Path, line: int) -> CasePrompt:
    def number(key, kind=float, optional=False):
        text = (row.get(key) or "").strip()
        if not text and optional:
            return None
        try:
            return kind(text)
        except ValueError:
            raise InputError(p, f"line {line}: {key} must be a number, got {text!r}") from None

    corners = [number(k, optional=True) for k in ("r0", "c0", "r1", "c1")]
    if any(c is None for c in corners) and any(c is not None for c in corners):
        raise InputError(p, f"line {line}: give all four box corners r0 c0 r1 c1, or none")
    points, signs = [], []
    for item in (row.get("clicks") or "").split(";"):
        if item.strip():
            parts = item.split()
            if len(parts) != 3 or parts[2] not in ("0", "1"):
                raise InputError(p, f"line {line}: a click is 'row col sign' with sign 1 or 0, got {item.strip()!r}")
            try:
                points.append((float(parts[0]), float(parts[1])))
            except ValueError:
                raise InputError(p, f"line {line}: a click is 'row col sign', got {item.strip()!r}") from None
            signs.append(int(parts[2]))
    box = tuple(corners) if corners[0] is not None else None
    label, axis = number("label", int), number("axis", int, optional=True) or 0
    if not 1 <= label <= 255 or axis not in (0, 1, 2):
        raise InputError(p, f"line {line}: label must lie in 1..255 and axis be 0, 1 or 2")
    return CasePrompt(number("z", int), Prompt(points=points, labels=signs, box=box), label,
                      (row.get("name") or "").strip() or f"label {label}", axis, line)
