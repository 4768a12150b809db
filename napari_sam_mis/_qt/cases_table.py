"""A table of the viewer's images, each with the labels layer drawn on it to choose (or none):
the cases the export and tuning widgets work on."""
from __future__ import annotations

from napari.layers import Image
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QComboBox, QTableWidget, QTableWidgetItem

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY
from napari_sam_mis._qt.labels_layer import fitting_labels_layers

NONE = "(not used)"


class CasesTable(QTableWidget):
    """One row per image layer: its fitting labels layers to choose from (the first one chosen)."""

    changed = Signal()

    def __init__(self, viewer, parent=None):
        super().__init__(0, 2, parent)
        self.viewer = viewer
        self.setHorizontalHeaderLabels(["image", "labels"])
        self.horizontalHeader().setStretchLastSection(True)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self.refresh)
        self.refresh()

    def refresh(self, event=None) -> None:
        images = [lyr for lyr in self.viewer.layers if isinstance(lyr, Image) and ROLE_KEY not in lyr.metadata]
        self.setRowCount(len(images))
        for row, image in enumerate(images):
            item = QTableWidgetItem(image.name)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            self.setItem(row, 0, item)
            combo = QComboBox()
            combo.addItems([*fitting_labels_layers(self.viewer, image, L.grid_shape(image), []), NONE])
            combo.currentIndexChanged.connect(lambda _: self.changed.emit())
            self.setCellWidget(row, 1, combo)
        self.changed.emit()

    def pairs(self) -> list[tuple]:
        """(image layer, labels layer) of each image with a labels layer chosen."""
        out = []
        for row in range(self.rowCount()):
            choice = self.cellWidget(row, 1).currentText()
            name = self.item(row, 0).text()
            if choice != NONE and choice in self.viewer.layers and name in self.viewer.layers:
                out.append((self.viewer.layers[name], self.viewer.layers[choice]))
        return out
