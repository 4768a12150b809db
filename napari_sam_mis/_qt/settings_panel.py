"""The widget's settings: image layer, model (+ checkpoint), device, intensity window, labels layer."""
from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from napari_sam_mis.annotate.window import CT_PRESETS, Window
from napari_sam_mis.model.registry import DEFAULT_MODEL, get_spec, model_names

CUSTOM = "custom level/width"
AUTO = "auto (from the image)"


class ModelCombo(QComboBox):
    """The models to choose from, listed again each time it opens (a tuned model may be new)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fill()

    def fill(self) -> None:
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        for name in model_names():
            self.addItem(name)
            self.setItemData(self.count() - 1, get_spec(name).description, Qt.ToolTipRole)
        if current:
            self.setCurrentText(current)
        self.blockSignals(False)

    def showPopup(self) -> None:  # noqa: N802 (a Qt override)
        self.fill()
        super().showPopup()


class SettingsPanel(QWidget):
    """Plain Qt form; emits a signal per setting. Layer combos are filled by the widget."""

    image_changed = Signal()
    model_changed = Signal()
    window_changed = Signal()
    labels_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.model_combo = ModelCombo()
        self.model_combo.setCurrentText(DEFAULT_MODEL)
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("checkpoint .pth (SAM / MedSAM only)")
        self.checkpoint_btn = QPushButton("…")
        self.checkpoint_btn.setMaximumWidth(30)
        self.checkpoint_btn.clicked.connect(self._browse)
        ckpt_row = QHBoxLayout()
        ckpt_row.addWidget(self.checkpoint_edit)
        ckpt_row.addWidget(self.checkpoint_btn)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        self.modality_combo = QComboBox()
        self.modality_combo.addItems([AUTO, "CT", "MR"])
        self.modality_combo.setToolTip("Picks the default window: CT soft tissue, MR percentiles. Auto: the DICOM tag, "
                                       "else inferred from the intensities (NIfTI records no modality)")
        self.window_combo = QComboBox()
        self.window_combo.addItems([AUTO, *CT_PRESETS, CUSTOM])
        self.level_spin = QDoubleSpinBox()
        self.width_spin = QDoubleSpinBox()
        for spin, value in ((self.level_spin, 40.0), (self.width_spin, 400.0)):
            spin.setRange(-5000, 10000)
            spin.setDecimals(0)
            spin.setValue(value)
            spin.setKeyboardTracking(False)
        self.width_spin.setMinimum(1)
        lw_row = QHBoxLayout()
        lw_row.addWidget(self.level_spin)
        lw_row.addWidget(self.width_spin)
        self.level_spin.setPrefix("L ")
        self.width_spin.setPrefix("W ")

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("image", self.image_combo)
        form.addRow("model", self.model_combo)
        form.addRow("checkpoint", ckpt_row)
        form.addRow("device", self.device_combo)
        form.addRow("modality", self.modality_combo)
        form.addRow("window", self.window_combo)
        form.addRow("level / width", lw_row)
        form.addRow("labels", self.labels_combo)
        self._display_values = False  # the image holds display values (PNG, RGB): no window to choose
        self._update_enabled()

        self.image_combo.currentIndexChanged.connect(lambda _: self.image_changed.emit())
        self.labels_combo.currentIndexChanged.connect(lambda _: self.labels_changed.emit())
        self.model_combo.currentIndexChanged.connect(self._on_model)
        self.checkpoint_edit.editingFinished.connect(self._on_checkpoint)
        self.device_combo.currentIndexChanged.connect(lambda _: self.model_changed.emit())
        self.window_combo.currentIndexChanged.connect(self._on_window)
        self.modality_combo.currentIndexChanged.connect(self._on_window)
        self.level_spin.valueChanged.connect(self._on_level_width)
        self.width_spin.valueChanged.connect(self._on_level_width)
        self._last_checkpoint = ""

    @staticmethod
    def set_choices(combo, names: list[str]) -> str:
        """Replace a combo box's items without emitting signals, keeping its choice; returns that choice."""
        current = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        if current in names:
            combo.setCurrentText(current)
        combo.blockSignals(False)
        return current

    # -- values ----------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.model_combo.currentText()

    @property
    def checkpoint(self) -> str | None:
        return self.checkpoint_edit.text().strip() or None

    @property
    def device(self) -> str:
        return self.device_combo.currentText()

    @property
    def modality(self) -> str | None:
        """The modality the user chose, or None for the image's own."""
        choice = self.modality_combo.currentText()
        return None if choice == AUTO else choice

    def window(self, volume) -> Window:
        choice = self.window_combo.currentText()
        if choice == AUTO:
            return Window.for_volume(volume, self.modality)
        if choice == CUSTOM:
            return Window("level_width", self.level_spin.value(), self.width_spin.value())
        return Window.preset(choice)

    def set_window_choice(self, name: str, level: float | None = None, width: float | None = None) -> None:
        """Select a preset (or CUSTOM with level/width); emits window_changed once."""
        self.blockSignals(True)
        try:
            if level is not None:
                self.level_spin.setValue(level)
            if width is not None:
                self.width_spin.setValue(width)
            self.window_combo.setCurrentText(name)
        finally:
            self.blockSignals(False)
        self._update_enabled()
        self.window_changed.emit()

    def fit_to(self, volume) -> None:
        """Offer the modality and the CT windows only for images in scanner units (not PNG/RGB)."""
        self._display_values = bool(volume.windowed)
        self._update_enabled()

    def apply_contrast(self, image_layer, volume) -> None:
        """Show a CT image in the chosen level/width window (MR and RGB keep napari's own limits)."""
        try:
            window = self.window(volume)
        except ValueError:
            return
        if window.kind == "level_width" and not image_layer.rgb:
            image_layer.contrast_limits = window.bounds(volume.array)

    def choices(self) -> tuple[dict, dict]:
        """(window choices, model choices) as plain values, for a saved session."""
        window = {"window": self.window_combo.currentText(), "level": self.level_spin.value(),
                  "width": self.width_spin.value(), "modality": self.modality_combo.currentText()}
        return window, {"name": self.model_name, "checkpoint": self.checkpoint or "", "device": self.device}

    def apply_choices(self, window: dict, model: dict) -> None:
        """Set the choices of a saved session without emitting signals (unknown values are skipped)."""
        combos = ((self.window_combo, window.get("window")), (self.modality_combo, window.get("modality")),
                  (self.model_combo, model.get("name")), (self.device_combo, model.get("device")))
        quiet = (*(c for c, _ in combos), self.level_spin, self.width_spin, self.checkpoint_edit)
        for widget in quiet:
            widget.blockSignals(True)
        try:
            for combo, value in combos:
                if value is not None and combo.findText(str(value)) >= 0:
                    combo.setCurrentText(str(value))
            for spin, key in ((self.level_spin, "level"), (self.width_spin, "width")):
                if isinstance(window.get(key), (int, float)):
                    spin.setValue(float(window[key]))
            self.checkpoint_edit.setText(str(model.get("checkpoint") or ""))
            self._last_checkpoint = self.checkpoint_edit.text()
        finally:
            for widget in quiet:
                widget.blockSignals(False)
        self._update_enabled()

    # -- slots -----------------------------------------------------------------------------
    def _update_enabled(self) -> None:
        needs_ckpt = get_spec(self.model_name).needs_checkpoint
        self.checkpoint_edit.setEnabled(needs_ckpt)
        self.checkpoint_btn.setEnabled(needs_ckpt)
        scanner_units = not self._display_values
        custom = scanner_units and self.window_combo.currentText() == CUSTOM
        self.level_spin.setEnabled(custom)
        self.width_spin.setEnabled(custom)
        for combo in (self.window_combo, self.modality_combo):
            combo.setEnabled(scanner_units)  # display values (0-255) are seen as they are

    def _on_model(self, _=None) -> None:
        self._update_enabled()
        self.model_changed.emit()

    def _on_checkpoint(self) -> None:
        if self.checkpoint_edit.text() != self._last_checkpoint:
            self._last_checkpoint = self.checkpoint_edit.text()
            if get_spec(self.model_name).needs_checkpoint:
                self.model_changed.emit()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model checkpoint", "", "PyTorch checkpoint (*.pth *.pt);;All files (*)")
        if path:
            self.checkpoint_edit.setText(path)
            self._on_checkpoint()

    def _on_window(self, _=None) -> None:
        self._update_enabled()
        self.window_changed.emit()

    def _on_level_width(self, _=None) -> None:
        if self.window_combo.currentText() == CUSTOM:
            self.window_changed.emit()
