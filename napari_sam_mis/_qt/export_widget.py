"""nnU-Net export from napari: each open image with the labels layer drawn on it becomes one case
of a raw dataset (``io/dataset.py``), labels matched across cases by name; the classes the
dataset will have are shown before anything is written."""
from __future__ import annotations

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY, SEGMENTS_KEY
from napari_sam_mis._qt.labels_layer import fitting_labels_layers
from napari_sam_mis.errors import SamMisError
from napari_sam_mis.io.dataset import class_numbers, export_nnunet_dataset
from napari_sam_mis.io.segments import Labels, make_segments

NONE = "(not exported)"


class ExportWidget(QWidget):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["image", "labels"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("folder for DatasetXXX_<name> (e.g. nnUNet_raw)")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(browse)
        self.id_spin = QSpinBox()
        self.id_spin.setRange(1, 999)
        self.id_spin.setValue(501)
        self.name_edit = QLineEdit("Annotations")
        self.overwrite_check = QCheckBox("replace an existing dataset")
        self.classes = QLabel("")
        self.classes.setWordWrap(True)
        self.export_btn = QPushButton("Export")
        self.export_btn.clicked.connect(self.export)
        form = QFormLayout()
        form.addRow("output", out_row)
        form.addRow("dataset id", self.id_spin)
        form.addRow("name", self.name_edit)
        form.addRow("", self.overwrite_check)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(form)
        layout.addWidget(self.classes)
        layout.addWidget(self.export_btn)
        layout.addStretch(1)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.refresh)
        self.refresh()

    def refresh(self, event=None) -> None:
        """One row per image layer: its labels layers to choose from (the first one chosen)."""
        images = [lyr for lyr in self.viewer.layers if isinstance(lyr, Image) and ROLE_KEY not in lyr.metadata]
        self.table.setRowCount(len(images))
        for row, image in enumerate(images):
            item = QTableWidgetItem(image.name)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            self.table.setItem(row, 0, item)
            combo = QComboBox()
            combo.addItems([*fitting_labels_layers(self.viewer, image, L.grid_shape(image), []), NONE])
            combo.currentIndexChanged.connect(lambda _: self.show_classes())
            self.table.setCellWidget(row, 1, combo)
        self.show_classes()

    def cases(self) -> list[tuple]:
        """(Volume, Labels) of each image with a labels layer chosen."""
        out = []
        for row in range(self.table.rowCount()):
            choice = self.table.cellWidget(row, 1).currentText()
            if choice == NONE or choice not in self.viewer.layers:
                continue
            image, labels = self.viewer.layers[self.table.item(row, 0).text()], self.viewer.layers[choice]
            arr = np.asarray(labels.data)
            out.append((L.volume_from_layer(image), Labels(arr, make_segments(labels.metadata.get(SEGMENTS_KEY),
                                                                              np.unique(arr)))))
        return out

    def show_classes(self) -> None:
        names = [{v: s.name for v, s in labels.segments.items()} for _, labels in self.cases()]  # values present
        if not names:
            self.classes.setText("choose the labels of at least one image")
            return
        classes = class_numbers(names)
        self.classes.setText(f"{len(names)} cases; classes: " + ", ".join(
            f"{number} {n} ({sum(n in case.values() for case in names)} of {len(names)} cases)"
            for n, number in classes.items()))

    def export(self):
        """Write the dataset; returns its folder, or None (the reason is shown)."""
        try:
            out = export_nnunet_dataset(self.cases(), self.out_edit.text().strip() or ".", dataset_id=self.id_spin.value(),
                                        name=self.name_edit.text().strip(), overwrite=self.overwrite_check.isChecked())
        except (SamMisError, OSError) as exc:
            self.classes.setText(f"not exported: {exc}")
            show_error(f"SAM export: {exc}")
            return None
        show_info(f"SAM: nnU-Net dataset written to {out}")
        self.classes.setText(f"written to {out}")
        return out

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "nnU-Net raw folder", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)
