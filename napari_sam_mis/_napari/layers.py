"""Adapters between napari layers and the core objects: Volume, Prompt, label colours.

Prompt layers (points for clicks, shapes for boxes) get the image's scale and translate,
so their data coordinates are the image's (z, row, col) pixel coordinates.
"""
from __future__ import annotations

import numpy as np

from napari_sam_mis._napari.keys import LABEL_NAMES_KEY, SEGMENTS_KEY, VOLUME_KEY
from napari_sam_mis.annotate.labels import LabelList
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.io.modality import infer_modality
from napari_sam_mis.io.summary import NO_GEOMETRY
from napari_sam_mis.volume import Volume

POSITIVE_COLOR = "#00e05a"
NEGATIVE_COLOR = "#ff3c3c"
BOX_COLOR = "#ffd400"


def volume_from_layer(layer) -> Volume:
    """The Volume behind an image layer: its metadata["volume"], else built from data + scale."""
    vol = layer.metadata.get(VOLUME_KEY) if isinstance(layer.metadata, dict) else None
    if isinstance(vol, Volume):
        return vol
    data = np.asarray(layer.data)
    rgb = bool(getattr(layer, "rgb", False))
    grid_ndim = data.ndim - (1 if rgb else 0)
    if rgb and data.shape[-1] == 4:  # drop alpha
        data = data[..., :3]
    if grid_ndim not in (2, 3):
        raise ValueError(
            f"layer {layer.name!r} has {grid_ndim} spatial dimensions (shape {data.shape}); "
            "the SAM widget takes 2D images and 3D (z, y, x) volumes"
        )
    scale = tuple(float(s) for s in layer.scale[-grid_ndim:])
    spacing = (1.0, *scale) if grid_ndim == 2 else scale
    windowed = rgb or data.dtype == np.uint8
    if grid_ndim == 2:
        data = data[None]  # one slice: (1, H, W) or (1, H, W, 3)
    modality, why = ("OT", "display values") if windowed else infer_modality(data)
    return Volume(
        array=data,
        spacing=spacing,
        modality=modality,
        windowed=windowed,
        source=str(getattr(layer, "source", None) and layer.source.path or ""),
        meta={"modality_source": why, NO_GEOMETRY: True},
    )


def grid_shape(layer) -> tuple:
    """The voxel grid of an image layer: its data shape without the RGB channel."""
    shape = tuple(layer.data.shape)
    return shape[:-1] if layer.rgb else shape


def grid_ndim(layer) -> int:
    """Number of spatial axes of an image layer (2 or 3)."""
    return layer.ndim  # napari's ndim excludes the RGB channel


def labels_key(layer_ndim: int, z: int, axis: int = 0) -> tuple:
    """Index of slice z along ``axis`` in a label array of that layer's dimensionality."""
    return (slice(None),) * axis + (int(z),) if layer_ndim == 3 else ()


def current_slice(viewer, layer, axis: int = 0) -> int:
    """Index along ``axis`` of the slice shown for ``layer`` (0 for 2D images)."""
    if grid_ndim(layer) == 2:
        return 0
    point = np.asarray(viewer.dims.point)[-layer.ndim :]
    z = layer.world_to_data(point)[axis]
    n = layer.data.shape[axis]
    return int(min(max(round(float(z)), 0), n - 1))


def sliced_axis(viewer, layer) -> int | None:
    """The layer's array axis that napari slices in a 2D view (0 axial, 1 coronal, 2 sagittal for
    (z, y, x)); 0 for 2D images; None in a 3D view or when a displayed axis is not the layer's."""
    if grid_ndim(layer) == 2:
        return 0
    if viewer.dims.ndisplay != 2:
        return None
    offset = viewer.dims.ndim - layer.ndim  # the layer's axes are the viewer's last ones
    displayed = {int(a) - offset for a in viewer.dims.order[-2:]}
    rest = {0, 1, 2} - displayed
    return rest.pop() if len(rest) == 1 else None


def geometry_kwargs(layer) -> dict:
    """The layer's data -> world transform, to give other layers the same voxel grid."""
    return dict(
        scale=tuple(layer.scale),
        translate=tuple(layer.translate),
        rotate=np.asarray(layer.rotate),
        shear=np.asarray(layer.shear),
        affine=np.asarray(layer.affine.affine_matrix),
    )


def make_prompt_layers(viewer, image_layer, name: str):
    """Add (points, shapes) prompt layers aligned with ``image_layer``."""
    common = dict(ndim=image_layer.ndim, **geometry_kwargs(image_layer))
    points = viewer.add_points(
        np.empty((0, image_layer.ndim)),
        name=f"{name} clicks",
        size=max(4.0, 0.02 * max(image_layer.data.shape[-2:]) if not image_layer.rgb else 6.0),
        features={"positive": np.zeros(0, bool)},
        face_color="positive",  # each new point takes its colour from its feature, no recolouring
        face_color_cycle={"colormap": {True: POSITIVE_COLOR, False: NEGATIVE_COLOR}, "fallback_color": POSITIVE_COLOR},
        border_color="white",
        border_width=0.1,
        **common,
    )
    points.feature_defaults = {"positive": True}
    shapes = viewer.add_shapes(
        None,
        name=f"{name} box",
        edge_color=BOX_COLOR,
        face_color="transparent",
        edge_width=max(1.0, 0.005 * max(image_layer.data.shape[-3:-1] if image_layer.rgb else image_layer.data.shape[-2:])),
        **common,
    )
    return points, shapes


def _slice_of(coords: np.ndarray, ndim: int, axis: int = 0) -> np.ndarray:
    return np.round(coords[:, axis]).astype(int) if ndim == 3 else np.zeros(len(coords), int)


def _in_plane(coords: np.ndarray, ndim: int, axis: int = 0) -> np.ndarray:
    """(row, col) of each position on a slice along ``axis``: the two other array axes, in order."""
    return np.delete(coords, axis, axis=1) if ndim == 3 else coords[:, -2:]


def slice_point(z: int, row: float, col: float, ndim: int, axis: int = 0) -> list[float]:
    """Data coordinates of (row, col) on slice z along ``axis`` (the inverse of ``_in_plane``)."""
    if ndim != 3:
        return [row, col]
    point = [row, col]
    point.insert(axis, float(z))
    return point


def prompt_for_slice(points_layer, shapes_layer, z: int, axis: int = 0) -> Prompt:
    """The clicks and the (last) box on slice z along ``axis``, as a Prompt in (row, col) pixels."""
    pts = np.asarray(points_layer.data, float).reshape(-1, points_layer.ndim)
    sel = _slice_of(pts, points_layer.ndim, axis) == z
    positive = np.asarray(points_layer.features.get("positive", np.ones(len(pts), bool)), bool)
    points = [tuple(p) for p in _in_plane(pts[sel], points_layer.ndim, axis)]
    labels = [int(v) for v in positive[sel]]
    box = None
    for shape, kind in zip(reversed(shapes_layer.data), reversed(shapes_layer.shape_type)):
        verts = np.asarray(shape, float)
        if kind not in ("rectangle", "polygon") or len(verts) < 2:
            continue
        if shapes_layer.ndim == 3 and int(round(verts[0, axis])) != z:
            continue
        rc = _in_plane(verts, shapes_layer.ndim, axis)
        lo, hi = rc.min(0), rc.max(0)
        box = (lo[0], lo[1], hi[0], hi[1])
        break
    return Prompt(points=points, labels=labels, box=box)


def boxes_on_slice(shapes_layer, z: int, axis: int = 0) -> list[int]:
    """Indices of the shapes that lie on slice z along ``axis``."""
    out = []
    for i, shape in enumerate(shapes_layer.data):
        if shapes_layer.ndim != 3 or int(round(np.asarray(shape)[0, axis])) == z:
            out.append(i)
    return out


def points_on_slice(points_layer, z: int, axis: int = 0) -> np.ndarray:
    pts = np.asarray(points_layer.data, float).reshape(-1, points_layer.ndim)
    return np.flatnonzero(_slice_of(pts, points_layer.ndim, axis) == z)


def label_colormap(labels: LabelList, alpha: float = 1.0, hidden=()):
    """A napari DirectLabelColormap with the list's colours (other values in grey, ``hidden``
    values transparent)."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {0: (0.0, 0.0, 0.0, 0.0), None: (0.6, 0.6, 0.6, alpha)}
    for spec in labels:
        colors[spec.value] = (0.0, 0.0, 0.0, 0.0) if spec.value in hidden else spec.rgba(alpha)
    return DirectLabelColormap(color_dict=colors)


def segments_metadata(labels: LabelList) -> dict:
    return {str(s.value): {"name": s.name, "color": [round(c * 255) for c in s.rgba()[:3]]} for s in labels}


def label_list_from_segments(segments: dict) -> LabelList:
    """A LabelList from a reader's metadata["segments"] (DICOM-SEG or a NIfTI sidecar)."""
    out = LabelList()
    for key, item in sorted(segments.items(), key=lambda kv: int(kv[0])):
        item = item if isinstance(item, dict) else {"name": str(item)}
        rgb = item.get("color") or (255, 140, 0)
        out.add(str(item.get("name") or f"label {key}"), "#%02x%02x%02x" % tuple(int(c) for c in rgb[:3]), int(key))
    return out


def _better_source(stored, volume: Volume) -> bool:
    """Whether ``volume`` (the image annotated) should replace the labels' stored source: there is
    none, or it is a bare grid (e.g. a DICOM-SEG's own) where the image on that grid is DICOM."""
    if not isinstance(stored, Volume):
        return True
    return (not stored.meta.get("dicom_datasets") and bool(volume.meta.get("dicom_datasets"))
            and stored.shape == volume.shape and np.allclose(stored.affine, volume.affine, atol=1e-3))


def attach_label_names(labels_layer, labels: LabelList, volume: Volume | None = None, hidden=(),
                       contour: bool = False) -> None:
    """Put names and colours where the writers look for them (metadata["segments"]) and where
    napari's status bar does (features), keep the source Volume with the labels (the writers
    take the geometry from it) and colour the layer (``hidden`` values not shown, outlines only
    with ``contour``)."""
    labels_layer.metadata[SEGMENTS_KEY] = segments_metadata(labels)
    labels_layer.metadata[LABEL_NAMES_KEY] = labels.names()
    specs = sorted(labels, key=lambda spec: spec.value)  # napari shows a value's row on hover: "2; name: spleen"
    labels_layer.features = {"index": [0, *(s.value for s in specs)], "name": ["", *(s.name for s in specs)]}
    if volume is not None and _better_source(labels_layer.metadata.get(VOLUME_KEY), volume):
        labels_layer.metadata[VOLUME_KEY] = volume
    labels_layer.colormap = label_colormap(labels, hidden=hidden)
    labels_layer.contour = 1 if contour else 0
