"""A small Qt view of a LabelList: select, add, rename and recolour labels; show or hide each
label (its tick) and draw all as outlines ("contours")."""
from __future__ import annotations

from napari.utils.notifications import show_warning
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_sam_mis.annotate.labels import LabelList


def _swatch(color: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(color))
    return QIcon(pix)


class LabelListWidget(QWidget):
    """Emits ``selection_changed(value)`` and ``labels_edited()`` (names, colours, new labels,
    what is shown)."""

    selection_changed = Signal(int)
    labels_edited = Signal()

    def __init__(self, labels: LabelList, parent=None):
        super().__init__(parent)
        self.labels = labels
        self.hidden: set[int] = set()  # label values not drawn in the labels layer
        self.list = QListWidget()
        self.list.setMaximumHeight(150)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemDoubleClicked.connect(lambda _: self.rename_current())
        self.list.itemChanged.connect(self._on_item_changed)
        self.contour_check = QCheckBox("contours")
        self.contour_check.setToolTip("Draw the labels as outlines, so the image shows through")
        self.contour_check.toggled.connect(lambda _: self.labels_edited.emit())
        self.add_btn = QPushButton("Add")
        self.rename_btn = QPushButton("Rename")
        self.color_btn = QPushButton("Colour")
        self.add_btn.setToolTip("Add a new label (name, next free value, a colour)")
        self.rename_btn.setToolTip("Rename the selected label (or double-click it)")
        self.color_btn.setToolTip("Change the colour of the selected label")
        self.add_btn.clicked.connect(lambda: self.add_label())
        self.rename_btn.clicked.connect(lambda: self.rename_current())
        self.color_btn.clicked.connect(lambda: self.recolor_current())
        buttons = QHBoxLayout()
        for b in (self.add_btn, self.rename_btn, self.color_btn, self.contour_check):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.refresh()

    def set_labels(self, labels: LabelList) -> None:
        self.labels = labels
        self.refresh()

    def refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for spec in self.labels:
            item = QListWidgetItem(_swatch(spec.color), f"{spec.value}: {spec.name}")
            item.setData(Qt.UserRole, spec.value)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Unchecked if spec.value in self.hidden else Qt.Checked)
            item.setToolTip("untick to hide this label in the labels layer")
            self.list.addItem(item)
            if spec.value == self.labels.selected:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def _on_current(self, item, _previous=None) -> None:
        if item is None:
            return
        value = int(item.data(Qt.UserRole))
        self.labels.select(value)
        self.selection_changed.emit(value)

    def _on_item_changed(self, item) -> None:
        value = int(item.data(Qt.UserRole))
        (self.hidden.discard if item.checkState() == Qt.Checked else self.hidden.add)(value)
        self.labels_edited.emit()

    def set_shown(self, value: int, shown: bool) -> None:
        """Show or hide one label, as ticking its box does."""
        for i in range(self.list.count()):
            item = self.list.item(i)
            if int(item.data(Qt.UserRole)) == value:
                item.setCheckState(Qt.Checked if shown else Qt.Unchecked)

    def select_value(self, value: int) -> None:
        for i in range(self.list.count()):
            if int(self.list.item(i).data(Qt.UserRole)) == value:
                self.list.setCurrentRow(i)
                return

    # -- edits (dialogs unless the values are given, which tests and scripts do) -----------
    def add_label(self, name: str | None = None, color: str | None = None) -> int | None:
        if name is None:
            name, ok = QInputDialog.getText(self, "New label", "Name:")
            if not ok or not name.strip():
                return None
        if color is None:
            picked = QColorDialog.getColor(QColor("#ff8c00"), self, "Label colour")
            color = picked.name() if picked.isValid() else "#ff8c00"
        try:
            spec = self.labels.add(name, color)
        except ValueError as exc:
            show_warning(str(exc))
            return None
        self.labels.select(spec.value)
        self.refresh()
        self.labels_edited.emit()
        self.selection_changed.emit(spec.value)
        return spec.value

    def rename_current(self, name: str | None = None) -> None:
        spec = self.labels.current
        if spec is None:
            return
        if name is None:
            name, ok = QInputDialog.getText(self, "Rename label", "Name:", text=spec.name)
            if not ok:
                return
        try:
            self.labels.rename(spec.value, name)
        except ValueError as exc:
            show_warning(str(exc))
            return
        self.refresh()
        self.labels_edited.emit()

    def recolor_current(self, color: str | None = None) -> None:
        spec = self.labels.current
        if spec is None:
            return
        if color is None:
            picked = QColorDialog.getColor(QColor(spec.color), self, "Label colour")
            if not picked.isValid():
                return
            color = picked.name()
        self.labels.recolor(spec.value, color)
        self.refresh()
        self.labels_edited.emit()
