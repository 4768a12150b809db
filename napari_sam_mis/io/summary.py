"""What a radiologist checks before annotating: whose scan, which study and series, the grid and
the modality, and whether the image has a real geometry at all (Qt-free)."""
from __future__ import annotations

from pathlib import Path

from napari_sam_mis.volume import Volume

NO_GEOMETRY = "no_geometry"  # meta key: the volume was built from bare pixels (spacing guessed)


def image_summary(volume: Volume) -> list[tuple[str, str]]:
    """(field, value) rows: patient, study, series for DICOM; else the file; then grid, modality
    and a geometry warning when there is none."""
    d = volume.meta.get("dicom") or {}
    rows = []
    if d:
        rows.append(("patient", _join(d.get("PatientName", "").replace("^", " "), d.get("PatientID") and f"ID {d['PatientID']}")))
        rows.append(("study", _join(_date(d.get("StudyDate", "")), d.get("StudyID") and f"study {d['StudyID']}",
                                    d.get("AccessionNumber") and f"accession {d['AccessionNumber']}")))
        rows.append(("series", d.get("SeriesDescription") or "(no description)"))
    else:
        rows.append(("file", Path(volume.source).name if volume.source else "(not from a file)"))
    z, y, x = volume.shape
    rows.append(("grid", f"{z} × {y} × {x} voxels of {' × '.join(f'{s:.2f}' for s in volume.spacing)} mm"))
    why = volume.meta.get("modality_source")
    rows.append(("modality", f"{volume.modality} ({why})" if why else volume.modality))
    if volume.meta.get(NO_GEOMETRY):
        rows.append(("geometry", "none: the pixels came without orientation or position; saved labels "
                                 "will not line up with the scan in other tools"))
    return rows


def _join(*parts) -> str:
    return ", ".join(p for p in parts if p) or "(blank)"


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value
