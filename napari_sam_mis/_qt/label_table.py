"""The per-label table of the annotation widget: voxels, volume in mL and slice range of every
label in the labels layer, updated shortly after each edit, and copied as tab-separated text."""
from __future__ import annotations

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_sam_mis.annotate.labels import label_statistics, statistics_table

COLUMNS = ("label", "name", "voxels", "volume (mL)", "slices")
TABLE_HEIGHT_PX = 110  # about three rows: the dock stays usable on a laptop screen
UPDATE_DELAY_MS = 300  # edits in a burst (a brush stroke, a propagation commit) update it once


class LabelTable(QWidget):
    def __init__(self, host, parent=None):
        super().__init__(parent)
        self.host = host  # the AnnotateWidget: labels_layer, label_list, volume
        self.stats = []
        self._layer = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(TABLE_HEIGHT_PX)
        self.copy_btn = QPushButton("Copy table")
        self.copy_btn.setToolTip("Copy as tab-separated text (pastes into a spreadsheet)")
        self.copy_btn.clicked.connect(self.copy)
        self.summary = QLabel("")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(UPDATE_DELAY_MS)
        self._timer.timeout.connect(self.update_now)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.copy_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(row)

    def watch(self, layer) -> None:
        """Follow ``layer`` (a napari Labels layer, or None): every edit schedules an update."""
        if layer is self._layer:
            self.update_now()
            return
        if self._layer is not None:
            for name in ("paint", "set_data"):  # (a refresh emits set_data)
                getattr(self._layer.events, name).disconnect(self.schedule)
        self._layer = layer
        if layer is not None:
            for name in ("paint", "set_data"):  # (a refresh emits set_data)
                getattr(layer.events, name).connect(self.schedule)
        self.update_now()

    def schedule(self, event=None) -> None:
        self._timer.start()

    def update_now(self) -> None:
        layer, volume = self._layer, self.host.volume
        if layer is None:
            self.stats = []
        else:
            spacing = volume.spacing if volume is not None else tuple(layer.scale[-3:])
            names = {spec.value: spec.name for spec in self.host.label_list}
            self.stats = label_statistics(layer.data, spacing, names)
        self.table.setRowCount(len(self.stats))
        for i, s in enumerate(self.stats):
            cells = (str(s.value), s.name, f"{s.voxels:,}", f"{s.volume_ml:.2f}", f"{s.first_slice}-{s.last_slice}")
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.summary.setText(f"{len(self.stats)} labels, {sum(s.volume_ml for s in self.stats):.2f} mL in all"
                             if self.stats else "no label drawn yet")

    def copy(self) -> None:
        QApplication.clipboard().setText(statistics_table(self.stats))
