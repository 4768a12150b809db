"""The prompt layers of one image (clicks and boxes) and its preview layer, along the sliced axis.

The widget asks it for the prompt of a slice and gives it the mask to preview; it keeps one box
per slice and sets click signs (Ctrl+click or the 'negative' tick makes a negative click).
"""
from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY
from napari_sam_mis.annotate.labels import LabelList
from napari_sam_mis.annotate.prompts import Prompt


class PromptController:
    """Points (clicks), shapes (boxes) and preview layers aligned with ``image_layer``."""

    def __init__(self, viewer, image_layer, grid_shape: tuple, label_list: LabelList, on_prompt_changed):
        self.viewer = viewer
        self.image_layer = image_layer
        self.is3d = image_layer.ndim == 3
        self.axis = 0  # the array axis napari slices: 0 axial, 1 coronal, 2 sagittal
        self.negative = False  # new clicks are negative
        self.warned_3d_view = False
        self.preview_layer = viewer.add_labels(
            np.zeros(grid_shape, np.uint16),
            name=f"{image_layer.name} SAM preview",
            **L.geometry_kwargs(image_layer),
            opacity=0.55,
            metadata={ROLE_KEY: "preview"},
        )
        self.preview_layer.colormap = L.label_colormap(label_list)
        self.preview_layer.editable = False
        self.points_layer, self.shapes_layer = L.make_prompt_layers(viewer, image_layer, f"{image_layer.name} SAM")
        self._on_prompt_changed = on_prompt_changed
        self.points_layer.events.data.connect(self._on_points_data)
        self.shapes_layer.events.data.connect(self._on_shapes_data)
        self.points_layer.mouse_drag_callbacks.insert(0, self._on_points_press)

    @property
    def layers(self) -> list:
        return [x for x in (self.points_layer, self.shapes_layer, self.preview_layer) if x is not None]

    def forget(self, layer) -> None:
        """``layer`` was removed from the viewer."""
        for attr in ("points_layer", "shapes_layer", "preview_layer"):
            if getattr(self, attr) is layer:
                setattr(self, attr, None)

    def remove_layers(self) -> None:
        old = self.layers
        self.points_layer = self.shapes_layer = self.preview_layer = None
        for lyr in old:
            if lyr in self.viewer.layers:
                self.viewer.layers.remove(lyr)

    def sliced_axis(self) -> int | None:
        """The array axis napari slices now; None in a 3D view (the user is told once)."""
        axis = L.sliced_axis(self.viewer, self.image_layer)
        if axis is None and not self.warned_3d_view:
            show_warning("SAM: prompts work in 2D views (axial, coronal or sagittal), not in 3D")
        self.warned_3d_view = axis is None
        return axis

    # -- prompts ---------------------------------------------------------------------------
    def prompt(self, z: int) -> Prompt:
        """The clicks and the box on slice z (empty without prompt layers)."""
        if self.points_layer is None or self.shapes_layer is None:
            return Prompt()
        return L.prompt_for_slice(self.points_layer, self.shapes_layer, z, self.axis)

    def clear(self, z: int) -> None:
        """Remove the clicks and the box of slice z, and its preview."""
        if self.points_layer is not None:
            idx = L.points_on_slice(self.points_layer, z, self.axis)
            if len(idx):
                self.points_layer.selected_data = set(int(i) for i in idx)
                self.points_layer.remove_selected()
        if self.shapes_layer is not None:
            idx = L.boxes_on_slice(self.shapes_layer, z, self.axis)
            if idx:
                self.shapes_layer.selected_data = set(idx)
                self.shapes_layer.remove_selected()
        self.set_preview(z, None)

    def set_negative(self, negative: bool) -> None:
        self.negative = negative
        if self.points_layer is not None:
            self.points_layer.feature_defaults = {"positive": not negative}

    def activate_box_tool(self) -> None:
        if self.shapes_layer is not None:
            self.viewer.layers.selection.active = self.shapes_layer
            self.shapes_layer.mode = "add_rectangle"

    def activate_click_tool(self) -> None:
        if self.points_layer is not None:
            self.viewer.layers.selection.active = self.points_layer
            self.points_layer.mode = "add"

    def _on_points_press(self, layer, event) -> None:
        negative = self.negative != ("Control" in event.modifiers)
        layer.feature_defaults = {"positive": not negative}

    def _on_points_data(self, event) -> None:
        action = str(getattr(event, "action", "added"))
        if action.lower().endswith("ing"):  # "adding", "removing", "changing": wait for the result
            return
        self._on_prompt_changed()  # now, not after the next redraw: the mask is drawn with the click

    def _on_shapes_data(self, event) -> None:
        action = str(getattr(event, "action", "added")).lower()
        if action.endswith("ing"):
            return
        if action.endswith("added"):  # one box per slice: the newest replaces the others
            QTimer.singleShot(0, self._drop_old_boxes)
        self._on_prompt_changed()

    def _drop_old_boxes(self) -> None:
        layer = self.shapes_layer
        if layer is None:
            return
        idx = L.boxes_on_slice(layer, L.current_slice(self.viewer, self.image_layer, self.axis), self.axis)
        if len(idx) > 1:
            layer.selected_data = set(idx[:-1])
            layer.remove_selected()

    # -- preview ---------------------------------------------------------------------------
    def preview_plane(self, z: int) -> np.ndarray:
        """The preview layer's slice z along the axis (a view: writes show after ``refresh``)."""
        data = self.preview_layer.data
        return data[L.labels_key(3, z, self.axis)] if self.is3d else data

    def set_preview(self, z: int, mask, value: int = 1) -> None:
        if self.preview_layer is None:
            return
        plane = self.preview_plane(z)
        plane[...] = 0
        if mask is not None:
            plane[mask] = value
        self.preview_layer.refresh()

    def clear_previews(self, slices) -> None:
        for z in slices:
            self.preview_plane(z)[...] = 0
        self.preview_layer.refresh()

    def relabel_preview(self, value: int) -> None:
        if self.preview_layer is not None:
            data = self.preview_layer.data
            data[data > 0] = value
            self.preview_layer.refresh()

    def clear_all_previews(self) -> None:
        if self.preview_layer is not None:
            self.preview_layer.data[...] = 0
            self.preview_layer.refresh()
