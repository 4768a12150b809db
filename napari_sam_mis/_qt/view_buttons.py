"""One-click Axial / Coronal / Sagittal views: which world axis napari slices along.

Images opened with this plugin's reader have world axes (superior -> inferior, anterior ->
posterior, right -> left) (``_napari/readers.py: display_transform``), so slicing world axis 0
gives axial slices, 1 coronal and 2 sagittal, head up and in the radiological convention. The
widget follows the view: it switches to (or creates) the session for the axis sliced. Letters
at the canvas edges name the patient's sides of the plane shown (``_napari/orientation.py``).
*Linked planes* opens the three planes side by side in a second window (``linked_planes.py``).
"""
from __future__ import annotations

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QPushButton, QWidget

from napari_sam_mis._napari.orientation import OrientationLetters

# plane -> napari dims order: the sliced axis first, then (rows, columns) of the screen
VIEW_ORDERS = {"Axial": (0, 1, 2), "Coronal": (1, 0, 2), "Sagittal": (2, 0, 1)}


class ViewButtons(QWidget):
    def __init__(self, host, parent=None):
        super().__init__(parent)
        self.host = host  # the AnnotateWidget: viewer, image and labels layers
        self.viewer = viewer = host.viewer
        self.linked = None  # the LinkedPlanes window, once opened
        self.buttons = {}
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for plane in VIEW_ORDERS:
            button = QPushButton(plane)
            button.setToolTip(f"Show {plane.lower()} slices (napari slices world axis {VIEW_ORDERS[plane][0]})")
            button.clicked.connect(lambda _=False, p=plane: self.show_plane(p))
            row.addWidget(button)
            self.buttons[plane] = button
        self.linked_btn = QPushButton("Linked planes")
        self.linked_btn.setToolTip("Axial, coronal and sagittal side by side in a second window, with a crosshair "
                                   "that follows this viewer's slice")
        self.linked_btn.clicked.connect(self.open_linked)
        row.addWidget(self.linked_btn)
        self.letters = OrientationLetters(viewer)

    def show_plane(self, plane: str) -> None:
        dims = self.viewer.dims
        if dims.ndim < 3:
            return
        lead = tuple(range(dims.ndim - 3))  # any axes before the volume's (e.g. time) stay in front
        dims.ndisplay = 2
        dims.order = lead + tuple(len(lead) + a for a in VIEW_ORDERS[plane])

    def open_linked(self):
        """Open the linked three-plane window for the image annotated; returns it (None if it can't)."""
        from napari_sam_mis._qt.linked_planes import LinkedPlanes

        image = self.host.image_layer
        if image is None or image.ndim != 3 or image.rgb:
            show_error("SAM: linked planes need a 3D image")
            return None
        try:
            self.linked = LinkedPlanes(self.viewer, image, self.host.labels_layer)
        except ValueError as exc:
            show_error(f"SAM: {exc}")
            return None
        return self.linked
