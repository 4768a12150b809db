"""Linked three-plane views: a second napari window with the axial, coronal and sagittal planes
of the image annotated (and its labels) side by side, and a crosshair where the three meet.

The window's world has five axes: the first three are the position of the crosshair in the main
viewer's world (superior -> inferior, anterior -> posterior, right -> left, in mm), one slider
each; the last two are the screen's rows and columns. Each plane is a view of the same arrays
(no copy), transposed and flipped so that its rows and columns run the way the main viewer shows
them (coronal and sagittal head up), with a size-one axis that spans the whole extent of the two
other positions; on the screen axes each plane starts at 0, so that the grid's shared camera
frames all three. napari's grid mode lays the three planes side by side. Moving the main viewer's
slice moves the crosshair, and moving a slider here moves the main viewer; edits of the labels
show in both.
"""
from __future__ import annotations

import numpy as np

PLANES = (("axial", 0, 1, 2), ("coronal", 1, 0, 2), ("sagittal", 2, 0, 1))  # (name, sliced, rows, cols)
CROSSHAIR_COLOR = "yellow"


def axis_mapping(layer) -> list[tuple[float, float]]:
    """(step, origin) in mm of each data axis of a 3D layer whose data -> world transform is a
    scaling with flips (what this plugin's reader gives); ValueError for a rotated one."""
    origin = np.asarray(layer.data_to_world([0, 0, 0]), float)
    steps = np.stack([np.asarray(layer.data_to_world(np.eye(3)[k]), float) - origin for k in range(3)])
    if not np.allclose(steps, np.diag(np.diag(steps)), atol=1e-6 * np.abs(steps).max()):
        raise ValueError(f"{layer.name!r} is not aligned with the viewer's axes (rotated or sheared): "
                         "linked planes need an axis-aligned image")
    return [(float(steps[k, k]), float(origin[k])) for k in range(3)]


def plane_view(array: np.ndarray, mapping, sliced: int, rows: int, cols: int):
    """(5D view of ``array``, scale, translate, screen origin) showing the plane across data axis
    ``sliced``; the screen origin is the world position (mm) of its first row and column."""
    view, scale, translate = array, [0.0] * 5, [0.0] * 5
    for k, (step, origin) in enumerate(mapping):
        if step < 0:  # flip the view so that world coordinates grow with the index
            view = np.flip(view, axis=k)
            origin, step = origin + step * (array.shape[k] - 1), -step
        mapping_k = (step, origin)
        if k == sliced:
            scale[k], translate[k] = mapping_k
        else:  # one voxel that spans the whole extent of the other positions
            n = array.shape[k]
            scale[k], translate[k] = n * step, origin + (n - 1) / 2 * step
        if k == rows:
            scale[3], row_origin = mapping_k
        if k == cols:
            scale[4], col_origin = mapping_k
    view = view.transpose(sliced, rows, cols)
    shape = [1, 1, 1, view.shape[1], view.shape[2]]
    shape[sliced] = view.shape[0]
    return view.reshape(shape), scale, translate, (row_origin, col_origin)


class LinkedPlanes:
    def __init__(self, viewer, image_layer, labels_layer=None):
        import napari

        self.source, self.image_layer, self.labels_layer = viewer, image_layer, labels_layer
        mapping = axis_mapping(image_layer)
        self.viewer = napari.Viewer(title=f"{image_layer.name}: axial, coronal, sagittal")
        self.crosshairs = []
        for name, sliced, rows, cols in PLANES:
            data, scale, translate, origin = plane_view(np.asarray(image_layer.data), mapping, sliced, rows, cols)
            plane = self.viewer.add_image(data, scale=scale, translate=translate, name=f"{name}: {image_layer.name}",
                                          colormap="gray", contrast_limits=image_layer.contrast_limits)
            if labels_layer is not None:
                data, scale, translate, _ = plane_view(labels_layer.data, mapping, sliced, rows, cols)
                self.viewer.add_labels(data, scale=scale, translate=translate, name=f"{name}: {labels_layer.name}",
                                       opacity=0.5, colormap=labels_layer.colormap)
            cross = self.viewer.add_shapes(ndim=5, name=f"{name}: crosshair", face_color="transparent")
            cross.editable = False
            self.crosshairs.append((cross, plane, rows, cols, origin))
        self._line_width = 1.5 * min(abs(step) for step, _ in mapping)
        self.viewer.grid.enabled = True
        self.viewer.grid.stride = len(self.viewer.layers) // len(PLANES)
        self.viewer.grid.shape = (1, len(PLANES))
        self.viewer.dims.axis_labels = ("S-I", "A-P", "R-L", "rows", "cols")
        self._syncing = False
        self.source.dims.events.point.connect(self._from_source)
        self.viewer.dims.events.point.connect(self._from_here)
        if labels_layer is not None:
            for name in ("paint", "set_data"):  # (a refresh emits set_data)
                getattr(labels_layer.events, name).connect(self._refresh_labels)
        self.viewer.window._qt_window.destroyed.connect(self.close)
        self._from_source()
        self.viewer.reset_view()

    @property
    def point(self) -> tuple[float, float, float]:
        """The crosshair: where the three planes meet, in the main viewer's world (mm)."""
        return tuple(float(v) for v in self.viewer.dims.point[:3])

    def _from_source(self, event=None) -> None:
        if self._syncing or self.source.dims.ndim < 3:
            return
        self._syncing = True
        try:
            for k, value in enumerate(self.source.dims.point[-3:]):
                self.viewer.dims.set_point(k, value)
        finally:
            self._syncing = False
        self._draw_crosshair()

    def _from_here(self, event=None) -> None:
        self._draw_crosshair()
        if self._syncing:
            return
        self._syncing = True
        try:
            lead = self.source.dims.ndim - 3
            for k, value in enumerate(self.point):
                self.source.dims.set_point(lead + k, value)
        finally:
            self._syncing = False

    def _draw_crosshair(self) -> None:
        point = list(self.viewer.dims.point[:3])
        for cross, plane, rows, cols, (row_origin, col_origin) in self.crosshairs:
            r, c = point[rows] - row_origin, point[cols] - col_origin
            (r0, c0), (r1, c1) = plane.extent.world[0, 3:], plane.extent.world[1, 3:]
            lines = [np.array([point + [r, c0], point + [r, c1]]), np.array([point + [r0, c], point + [r1, c]])]
            if len(cross.data):
                cross.selected_data = set(range(len(cross.data)))
                cross.remove_selected()
            cross.add_lines(lines, edge_color=CROSSHAIR_COLOR, edge_width=self._line_width)

    def _refresh_labels(self, event=None) -> None:
        for layer in self.viewer.layers:
            if layer.name.endswith(f": {self.labels_layer.name}"):
                layer.refresh()

    def close(self, *args) -> None:
        """Stop following the main viewer (the window was closed)."""
        self.source.dims.events.point.disconnect(self._from_source)
        if self.labels_layer is not None:
            for name in ("paint", "set_data"):  # (a refresh emits set_data)
                getattr(self.labels_layer.events, name).disconnect(self._refresh_labels)
