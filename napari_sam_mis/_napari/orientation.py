"""Orientation letters (R/L, A/P, S/I) at the edges of the canvas, for the plane shown.

They are shown while a layer of this plugin's reader is in the viewer: its world axes run
superior -> inferior, anterior -> posterior, right -> left (``readers.display_transform``), so
the letters follow from which world axes napari draws as rows and columns, and from the camera's
2D orientation (rows downwards, columns to the right unless the user flipped them).
"""
from __future__ import annotations

from napari.components.overlays import TextOverlay

from napari_sam_mis._napari.keys import WORLD_AXES_KEY

WORLD_ENDS = (("S", "I"), ("A", "P"), ("R", "L"))  # (low end, high end) of each world axis
EDGES = ("top_center", "bottom_center", "middle_left", "middle_right")
OVERLAY_PREFIX = "sam_orientation_"


def edge_letters(order, orientation2d=("down", "right")) -> dict[str, str]:
    """{canvas edge: letter} for napari's dims ``order`` (the last two are the displayed axes of a
    3D world) and the camera's (vertical, horizontal) orientation."""
    rows, cols = order[-2] - (len(order) - 3), order[-1] - (len(order) - 3)
    top, bottom = WORLD_ENDS[rows] if orientation2d[0] == "down" else WORLD_ENDS[rows][::-1]
    left, right = WORLD_ENDS[cols] if orientation2d[1] == "right" else WORLD_ENDS[cols][::-1]
    return dict(zip(EDGES, (top, bottom, left, right)))


class OrientationLetters:
    def __init__(self, viewer):
        self.viewer = viewer
        self.overlays = {}
        for edge in EDGES:
            overlay = TextOverlay(text="", position=edge, font_size=14, color="yellow", visible=False)
            viewer.canvas.overlays[OVERLAY_PREFIX + edge] = overlay
            self.overlays[edge] = overlay
        for event in (viewer.dims.events.order, viewer.dims.events.ndisplay, viewer.camera.events.orientation,
                      viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self.update)
        self.update()

    def applies(self) -> bool:
        dims = self.viewer.dims
        return dims.ndisplay == 2 and dims.ndim >= 3 and any(
            layer.metadata.get(WORLD_AXES_KEY) == "SAR" and layer.ndim == 3 for layer in self.viewer.layers)

    def update(self, event=None) -> None:
        shown = self.applies()
        letters = edge_letters(self.viewer.dims.order, self.viewer.camera.orientation2d) if shown else {}
        for edge, overlay in self.overlays.items():
            overlay.text = letters.get(edge, "")
            overlay.visible = shown
        if shown and self.viewer.dims.ndim == 3:
            self.viewer.dims.axis_labels = ("S-I", "A-P", "R-L")
