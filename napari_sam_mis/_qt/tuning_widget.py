"""'Tune decoder on my labels': click-trains LiteMedSAM's decoder on the labels drawn in napari
(``training/tune.py``) in a worker thread, with progress, cancel and resume; the held-back
slices' Dice before and after is shown, and the result is offered as a model by its name."""
from __future__ import annotations

import re

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_sam_mis._napari import layers as L
from napari_sam_mis._qt.cases_table import CasesTable
from napari_sam_mis._qt.engine_loader import forget_engines, preload_modules
from napari_sam_mis.errors import SamMisError
from napari_sam_mis.model.registry import get_spec, model_names
from napari_sam_mis.training.loop import CHECKPOINT_NAME
from napari_sam_mis.training.recipe import Recipe
from napari_sam_mis.training.sources import LabelledImage
from napari_sam_mis.training.tune import TUNE_NAME, read_record, tune, tuned_model_folder

START_FROM = "litemedsam_clicks"  # already knows clicks: a few hundred steps adapt it
STEPS = 200


class _Reports(QObject):
    progressed = Signal(object)  # a training Progress, emitted from the worker thread


class TuningWidget(QWidget):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.result: dict | None = None
        self._cancel = False
        self._reports = _Reports()
        self._reports.progressed.connect(self._show_progress)

        self.table = CasesTable(napari_viewer)
        self.table.changed.connect(self._suggest_name)
        self.name_edit = QLineEdit()
        self.name_edit.textChanged.connect(lambda _: self._update_buttons())
        self.start_combo = QComboBox()
        self.start_combo.addItems([n for n in model_names() if get_spec(n).family.click_trainable])
        self.start_combo.setCurrentText(START_FROM)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(10, 100_000)
        self.steps_spin.setValue(STEPS)
        self.holdout_spin = QDoubleSpinBox()
        self.holdout_spin.setRange(0.1, 0.9)
        self.holdout_spin.setSingleStep(0.1)
        self.holdout_spin.setValue(0.5)
        self.holdout_spin.setToolTip("share of each image's labelled slices held back (the last ones) to measure on")
        self.tune_btn = QPushButton("Tune decoder on my labels")
        self.tune_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("name", self.name_edit)
        form.addRow("start from", self.start_combo)
        form.addRow("steps", self.steps_spin)
        form.addRow("hold back", self.holdout_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.tune_btn)
        buttons.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._suggest_name()

    # -------------------------------------------------------------------------- state --
    def folder(self):
        return tuned_model_folder(self.name_edit.text().strip())

    def _suggest_name(self) -> None:
        pairs = self.table.pairs()
        if pairs and not self.name_edit.text():
            self.name_edit.setText("tuned-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", pairs[0][0].name).strip("_."))
        self._update_buttons()

    def resumable(self) -> bool:
        """A stopped run of this name left its checkpoint: Tune continues it."""
        try:
            folder = self.folder()
        except SamMisError:
            return False
        return (folder / CHECKPOINT_NAME).is_file() and "after" not in read_record(folder / TUNE_NAME)

    def _update_buttons(self) -> None:
        running = self.worker is not None
        self.tune_btn.setEnabled(not running and bool(self.table.pairs()))
        self.tune_btn.setText("Resume tuning" if self.resumable() else "Tune decoder on my labels")
        self.cancel_btn.setEnabled(running)

    def images(self) -> list[LabelledImage]:
        return [LabelledImage(f"{img.name}:{lab.name}", L.volume_from_layer(img), np.asarray(lab.data).astype(np.int32))
                for img, lab in self.table.pairs()]

    # ------------------------------------------------------------------------ running --
    def start(self) -> None:
        try:
            out, images = self.folder(), self.images()
            recipe = Recipe(steps=self.steps_spin.value(), start_from=self.start_combo.currentText())
            recipe.check()
            preload_modules(recipe.start_from)  # torch's first import belongs on the GUI thread
        except SamMisError as exc:
            self._failed(exc)
            return
        resume = self.resumable()
        self._cancel = False
        self.result = None

        def report(p):
            self._reports.progressed.emit(p)
            return not self._cancel

        self.worker = create_worker(tune, images, out, recipe, self.holdout_spin.value(), resume=resume,
                                    device="auto", progress=report,
                                    _connect={"returned": self._done, "errored": self._failed})
        self.status.setText(("resuming" if resume else "tuning") + f" {out.name}…")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop after the next step; the checkpoint is kept and Tune resumes it."""
        self._cancel = True
        self.status.setText("stopping after this step…")

    def wait(self, timeout_ms: int = 600_000) -> None:
        """Block until the run ends (for scripts and tests)."""
        from qtpy.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(timeout_ms)

    def _show_progress(self, p) -> None:
        self.progress.setMaximum(max(1, p.total))
        self.progress.setValue(p.done)
        extra = f" loss {p.loss:.3f}" if p.loss is not None else ""
        self.status.setText(f"{p.stage} {p.done}/{p.total}{extra} {p.message}".strip())

    def _done(self, result: dict) -> None:
        self.worker, self.result = None, result
        name = self.name_edit.text().strip()
        if "after" not in result:
            self.status.setText(f"stopped at step {result.get('stopped_at')}; Resume continues it")
        else:
            forget_engines(name)  # a model of this name loaded before is out of date
            before, after = result["before"], result["after"]
            held = sum(len(v) for v in result["held_back"].values())
            self.status.setText(
                f"held-back slices ({held}): box {before['box']:.3f} -> {after['box']:.3f}, one click "
                f"{before['point']:.3f} -> {after['point']:.3f} ({result['start_from']} -> {name}). "
                f"Pick '{name}' as the model in SAM annotation.")
            show_info(f"SAM: tuned model {name!r} is ready")
        self._update_buttons()

    def _failed(self, exc) -> None:
        self.worker = None
        self.status.setText(f"not tuned: {exc}")
        show_error(f"SAM tuning: {exc}")
        self._update_buttons()
