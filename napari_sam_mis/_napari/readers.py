"""npe2 reader: NIfTI and NRRD files (images and label maps), CVPR24 .npz, DICOM folders/files and DICOM-SEG as napari layers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_sam_mis._napari.keys import SEGMENTS_KEY, VOLUME_KEY, WORLD_AXES_KEY
from napari_sam_mis.annotate.window import default_ct_contrast
from napari_sam_mis.io.formats import is_nifti, is_npz, is_nrrd, nifti_stem
from napari_sam_mis.io.segments import Labels, segments_to_json
from napari_sam_mis.volume import Volume


def napari_get_reader(path):
    """Return a reader for ``path``, or None when it is not something this plugin opens."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if (is_nifti(p) or is_nrrd(p) or is_npz(p)) and p.is_file():
        return read_image_layers
    from napari_sam_mis.io.dicom import is_dicom_file

    if p.is_dir():
        return read_image_layers if any(is_dicom_file(f) for f in p.iterdir()) else None
    return read_dicom_file_layers if is_dicom_file(p) else None


def display_transform(volume: Volume) -> dict:
    """Layer ``scale`` in mm and, for axis-aligned images, an ``affine`` of flips and shifts so that
    world axes are (superior->inferior, anterior->posterior, right->left): axial slices show the
    radiological convention (patient's right on the left, anterior up), coronal and sagittal
    slices are head up (napari draws the first world axis downwards), and images from
    differently oriented files line up; ``metadata`` then says so (``WORLD_AXES_KEY``)."""
    kwargs = {"scale": tuple(volume.spacing)}
    direction = volume.affine[:3, :3] / np.asarray(volume.spacing)
    to_ipl = np.array([[0, 0, -1], [0, -1, 0], [-1, 0, 0]], float)  # RAS -> (I, P, L) world axes
    d = to_ipl @ direction
    if np.allclose(np.abs(d), np.eye(3), atol=1e-4):  # diagonal: flips only, no rotation
        signs = np.sign(np.diag(d))
        affine = np.eye(4)
        affine[:3, :3] = np.diag(signs)
        affine[:3, 3] = to_ipl @ volume.affine[:3, 3]
        kwargs["affine"] = affine
        kwargs["metadata"] = {WORLD_AXES_KEY: "SAR"}
    return kwargs


def _image_layer(volume: Volume, name: str):
    display = display_transform(volume)
    meta = {VOLUME_KEY: volume, **display.pop("metadata", {})}
    kwargs = {"name": name, "metadata": meta, "colormap": "gray", **display}
    if volume.modality == "CT" and not volume.windowed:
        kwargs["contrast_limits"] = default_ct_contrast()
    elif volume.array.size:
        lo, hi = np.percentile(volume.array, [0.5, 99.5])
        kwargs["contrast_limits"] = (float(lo), float(hi) if hi > lo else float(lo) + 1)
    return (volume.array, kwargs, "image")


def _name(volume: Volume) -> str:
    desc = volume.meta.get("dicom", {}).get("SeriesDescription")
    p = Path(volume.source)
    return desc or nifti_stem(p)


def read_image_layers(path):
    """A NIfTI or NRRD file (a label map opens as labels), or every image series in a DICOM folder (one
    layer each, named by description)."""
    from napari_sam_mis.io import read_labels, read_volume
    from napari_sam_mis.io.dicom import list_series
    from napari_sam_mis.io.nifti import is_label_map, label_grid

    p = Path(path[0] if isinstance(path, (list, tuple)) else path)
    if is_nifti(p) and is_label_map(p):  # saved work or a model's label map: labels, with their names
        grid = label_grid(p)
        return labels_layers(read_labels(p, grid), grid, nifti_stem(p))
    if is_nrrd(p):
        from napari_sam_mis.io.nrrd import is_nrrd_label_map, read_nrrd

        if is_nrrd_label_map(p):
            vol = read_nrrd(p)
            grid = Volume(np.zeros(vol.shape, np.uint8), vol.spacing, vol.affine, modality="OT")
            return labels_layers(read_labels(p, grid), grid, p.stem)
    if p.is_dir():
        found = list_series(p)
        if len(found) > 1:
            return [_image_layer(v, _name(v)) for v in (read_volume(p, series=s.uid or s.description) for s in found)]
    vol = read_volume(p)
    return [_image_layer(vol, _name(vol))]


def labels_layers(labels: Labels, volume: Volume, name: str):
    """One labels layer with named values, or one layer per segment when segments overlap."""
    display = display_transform(volume)
    base = {"metadata": {VOLUME_KEY: volume, **display.pop("metadata", {})}, **display}
    if labels.overlapping:
        return [(mask, {**base, "name": f"{name}: {seg.name}", "metadata": {**base["metadata"],
                 SEGMENTS_KEY: segments_to_json({1: seg})}, "colormap": {0: "transparent", 1: _rgb(seg.color), None: "transparent"}}, "labels")
                for mask, seg in zip(labels.array, labels.segments.values())]
    colors = {v: _rgb(s.color) for v, s in labels.segments.items()}
    kwargs = {**base, "name": name, "metadata": {**base["metadata"], SEGMENTS_KEY: segments_to_json(labels.segments)},
              "colormap": {0: "transparent", None: "transparent", **colors},
              "features": {"index": [0, *labels.segments], "name": ["background", *(s.name for s in labels.segments.values())]}}
    return [(labels.array, kwargs, "labels")]


def _rgb(color) -> tuple:
    return tuple(c / 255.0 for c in color) + (1.0,)


def read_dicom_file_layers(path):
    """A single DICOM file: a DICOM-SEG becomes labels on its source series or its own grid; a multi-frame image opens as
    a volume; a single slice opens the whole series it belongs to (when the folder holds it)."""
    from napari_sam_mis.io import read_labels, read_volume
    from napari_sam_mis.io.dicom import _read_header, is_seg
    from napari_sam_mis.io.dicom_seg import seg_grid, source_volume

    p = Path(path[0] if isinstance(path, (list, tuple)) else path)
    ds = _read_header(p)
    if is_seg(ds):  # on its source series when that lies beside it (so it saves back as SEG), else its own grid
        grid = source_volume(p) or seg_grid(p)
        return labels_layers(read_labels(p, grid), grid, p.stem)
    if int(ds.get("NumberOfFrames", 1) or 1) == 1 and ds.get("SeriesInstanceUID"):
        vol = read_volume(p.parent, series=str(ds.SeriesInstanceUID))
    else:
        vol = read_volume(p)
    return [_image_layer(vol, _name(vol))]
