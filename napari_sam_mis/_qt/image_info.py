"""A few header lines of the image annotated (``io/summary.py``): patient, study, series, grid,
modality; an image without geometry is said here and in a warning."""
from __future__ import annotations

from html import escape

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QLabel

from napari_sam_mis.io.summary import NO_GEOMETRY, image_summary


class ImageInfo(QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.rows: list[tuple[str, str]] = []

    def show_volume(self, volume, name: str = "") -> None:
        self.rows = image_summary(volume) if volume is not None else []
        self.setText("<br>".join(f"<b>{escape(k)}</b>: {escape(v)}" for k, v in self.rows))
        if volume is not None and volume.meta.get(NO_GEOMETRY):
            show_warning(f"SAM: {name or 'this image'} has no geometry (it was not opened with this plugin's "
                         "reader): saved labels will not line up with the scan in other tools")
