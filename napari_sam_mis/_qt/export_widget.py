"""nnU-Net export from napari: each open image with the labels layer drawn on it becomes one case
of a raw dataset (``io/dataset.py``), labels matched across cases by name; the classes the
dataset will have are shown before anything is written.

A plain export writes a few files and runs on the GUI thread. With "add SAM prior channels" the
SAMAug priors (annotate/priors.py) take seconds per slice, so the export runs in a napari
``thread_worker`` on copies of the label arrays; each slice done moves the progress bar (a Qt
signal from the worker), and Cancel stops it after the current slice (nothing is written; the
slices done stay cached for the next export).
"""
from __future__ import annotations

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
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
from napari_sam_mis._napari.keys import SEGMENTS_KEY
from napari_sam_mis._qt.cases_table import CasesTable
from napari_sam_mis.errors import SamMisError
from napari_sam_mis.io.dataset import class_numbers, export_nnunet_dataset
from napari_sam_mis.io.segments import Labels, make_segments

PRIORS_MODEL = "litemedsam"  # the default model, bundled weights


class ExportCancelledError(Exception):
    """Raised from the progress callback when the user cancels a prior export."""


class _PriorRun(QObject):
    """One background export: carries (case, slice done, slices) from the worker thread to the
    GUI thread, and its cancel flag. It has no Qt parent, so that it outlives a widget closed
    while the worker runs (the widget's destruction cancels the run)."""

    slice_done = Signal(int, int, int)

    def __init__(self):
        super().__init__()
        self.cancelled = False
        self.widget_gone = False

    def report(self, case: int, done: int, total: int) -> None:
        """The progress callback, on the worker thread: passes it on, or stops the export."""
        if self.cancelled:
            raise ExportCancelledError()
        self.slice_done.emit(case, done, total)

    def cancel(self, *args) -> None:
        self.cancelled = True

    def widget_destroyed(self, *args) -> None:
        self.cancelled = self.widget_gone = True


@thread_worker
def prior_export_worker(cases, output_dir, options: dict, progress):
    """Load the model (shared with the annotation widget when it uses the same) and export with
    the prior channels. Returns ("written", folder), ("cancelled", None) or ("failed", error):
    expected outcomes, not errors for napari to report."""
    from napari_sam_mis._qt.engine_loader import load_engine
    from napari_sam_mis.annotate.priors import prior_channels
    from napari_sam_mis.embeddings.store import default_cache_dir

    channels = prior_channels(lambda: load_engine(PRIORS_MODEL, None, "auto"), default_cache_dir(), progress)
    try:
        return "written", export_nnunet_dataset(cases, output_dir, extra_channels=channels, **options)
    except ExportCancelledError:
        return "cancelled", None
    except (SamMisError, OSError) as exc:
        return "failed", exc


class ExportWidget(QWidget):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.table = CasesTable(napari_viewer)
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
        self.priors_check = QCheckBox("add SAM prior channels (SAMAug)")
        self.priors_check.setToolTip(f"{PRIORS_MODEL}'s segmentation and boundary prior maps of every axial slice "
                                     "as input channels 1 and 2 (seconds per slice; cached with the embeddings)")
        self.classes = QLabel("")
        self.classes.setWordWrap(True)
        self.export_btn = QPushButton("Export")
        self.export_btn.clicked.connect(self.export)
        self.progress = QProgressBar()
        self.progress.setFormat("priors: %v/%m slices")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.worker = None
        self._run: _PriorRun | None = None
        form = QFormLayout()
        form.addRow("output", out_row)
        form.addRow("dataset id", self.id_spin)
        form.addRow("name", self.name_edit)
        form.addRow("", self.overwrite_check)
        form.addRow("", self.priors_check)
        running = QHBoxLayout()
        running.addWidget(self.progress)
        running.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(form)
        layout.addWidget(self.classes)
        layout.addWidget(self.export_btn)
        layout.addLayout(running)
        layout.addStretch(1)
        self._set_running(False)
        self.table.changed.connect(self.show_classes)
        self.show_classes()

    def cases(self) -> list[tuple]:
        """(Volume, Labels) of each image with a labels layer chosen."""
        out = []
        for image, labels in self.table.pairs():
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
        """Write the dataset; returns its folder, or None (the reason is shown). With the prior
        channels it starts the export in the background and returns None (``self.worker``)."""
        if self.worker is not None:
            return None
        output_dir = self.out_edit.text().strip() or "."
        options = {"dataset_id": self.id_spin.value(), "name": self.name_edit.text().strip(),
                   "overwrite": self.overwrite_check.isChecked()}
        try:
            cases = self.cases()
            if self.priors_check.isChecked():
                self._start_prior_export(cases, output_dir, options)
                return None
            out = export_nnunet_dataset(cases, output_dir, **options)
        except (SamMisError, OSError) as exc:
            self._failed(exc)
            return None
        self._written(out)
        return out

    def _start_prior_export(self, cases, output_dir, options: dict) -> None:
        from napari_sam_mis._qt.engine_loader import preload_modules

        preload_modules(PRIORS_MODEL)  # torch is first imported on the GUI thread (torch_guard)
        cases = [(vol, Labels(np.array(labels.array), labels.segments)) for vol, labels in cases]  # painting goes on
        run = self._run = _PriorRun()
        run.slice_done.connect(self._show_progress)
        self.destroyed.connect(run.widget_destroyed)
        self.progress.setRange(0, sum(vol.shape[0] for vol, _ in cases))
        self.progress.setValue(0)
        self._case_starts = np.cumsum([0] + [vol.shape[0] for vol, _ in cases]).tolist()
        self.classes.setText("computing the SAM prior channels…")

        def ended(result):
            if run.widget_gone:
                return
            self._finish()
            outcome, value = result
            if outcome == "written":
                self._written(value)
            elif outcome == "cancelled":
                self.classes.setText("cancelled: nothing written (the slices done are cached)")
            else:
                self._failed(value)

        def crashed(exc):  # napari reports it too
            if not run.widget_gone:
                self._finish()
                self._failed(exc)

        self.worker = prior_export_worker(cases, output_dir, options, run.report,
                                          _connect={"returned": ended, "errored": crashed}, _start_thread=False)
        self._set_running(True)
        self.worker.start()

    def _show_progress(self, case: int, done: int, total: int) -> None:
        self.progress.setValue(self._case_starts[case - 1] + done)
        self.classes.setText(f"SAM priors: case {case} of {len(self._case_starts) - 1}, slice {done} of {total}")

    def cancel(self) -> None:
        """Stop a prior export after the slice it is on."""
        if self._run is not None:
            self._run.cancel()

    def _finish(self) -> None:
        self.worker = self._run = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.export_btn.setEnabled(not running)
        self.progress.setVisible(running)
        self.cancel_btn.setVisible(running)

    def _written(self, out) -> None:
        show_info(f"SAM: nnU-Net dataset written to {out}")
        self.classes.setText(f"written to {out}")

    def _failed(self, exc) -> None:
        self.classes.setText(f"not exported: {exc}")
        show_error(f"SAM export: {exc}")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "nnU-Net raw folder", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)
