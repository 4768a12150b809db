"""Volume tools of the annotation widget: propagate a slice's mask up/down/both, fill between
key slices, lock slices, and commit all previewed slices as one undoable commit.

The work runs in a napari ``thread_worker`` (a generator: Cancel stops it between slices); each
slice it yields goes into the widget's preview layer. Slices the user committed by hand (and
the reference slice of a committed propagation) are locked in a Qt-free ``SliceLocks``:
propagation stops before them and key-slice fill uses them as its key slices. Where a run
stopped and why shows under the progress bar; where the object only seemed to end (a jump in
area, a leak), "Continue past the stop" carries on from there.
"""
from __future__ import annotations

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_sam_mis._napari import layers as L
from napari_sam_mis.annotate.fill import fill_between, fill_slices
from napari_sam_mis.annotate.masks import MaskResult
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.propagate import DOWN, UP, SliceLocks, Stop, propagate

CONTINUABLE = ("overlap", "score", "growth", "leak")  # stops the user may overrule ("Continue")


@thread_worker
def propagation_worker(session, z: int, start, runs, accept_first: bool = False):
    """Yield the reference slice's MaskResult (when ``start`` is a Prompt), then each
    SliceResult of ``runs`` ((direction, stop_z, locked) propagated from slice ``z``), each run
    followed by (direction, Stop): where and why it ended."""
    if isinstance(start, Prompt):
        start = session.predict(z, start)
        yield start
    for direction, stop_z, locked in runs:
        run = propagate(session, z, start, direction, stop_z, locked, accept_first=accept_first)
        yield from run
        yield direction, run.stop


@thread_worker
def fill_worker(session, key_masks: dict, locked):
    yield from fill_between(session, key_masks, locked)


class PropagationPanel(QWidget):
    def __init__(self, host, parent=None):
        super().__init__(parent)
        self.host = host  # the AnnotateWidget: session, prompts, labels layer, selected label, commits
        self.locks = SliceLocks()
        self.worker = None
        self.previewed: set[int] = set()  # slices whose preview came from the last run
        self.reference: int | None = None  # slice the last propagation started from
        self.stops: dict[int, Stop] = {}  # direction -> where and why the last run that way ended
        self._build_ui()
        host.viewer.dims.events.current_step.connect(self.update_slice)

    def _build_ui(self) -> None:
        self.up_btn = QPushButton("Propagate up")
        self.down_btn = QPushButton("Propagate down")
        self.both_btn = QPushButton("Propagate both")
        self.fill_btn = QPushButton("Fill between key slices")
        self.lock_btn = QPushButton("Lock slice")
        self.commit_btn = QPushButton("Commit all")
        self.cancel_btn = QPushButton("Cancel")
        self.continue_btn = QPushButton("Continue past the stop")
        self.continue_btn.setToolTip("Propagation stopped where the object seemed to end; carry on from there anyway")
        self.continue_btn.clicked.connect(self.continue_past_stop)
        self.continue_btn.setVisible(False)
        self.lock_btn.setCheckable(True)
        self.up_btn.setToolTip("From the slice shown (its prompts, else its committed label) towards higher slices")
        self.down_btn.setToolTip("From the slice shown towards lower slices")
        self.fill_btn.setToolTip("Segment the slices between the locked (committed) slices of the selected label")
        self.lock_btn.setToolTip("A locked slice is never overwritten: propagation stops before it. Committed slices are locked.")
        self.commit_btn.setToolTip("Commit every previewed slice into the labels layer as one undoable step")
        self.up_btn.clicked.connect(lambda: self.propagate(UP))
        self.down_btn.clicked.connect(lambda: self.propagate(DOWN))
        self.both_btn.clicked.connect(lambda: self.propagate(0))
        self.fill_btn.clicked.connect(self.fill)
        self.lock_btn.clicked.connect(self.toggle_lock)
        self.commit_btn.clicked.connect(self.commit_all)
        self.cancel_btn.clicked.connect(self.cancel)
        self.from_spin, self.to_spin = QSpinBox(), QSpinBox()
        for spin in (self.from_spin, self.to_spin):
            spin.setToolTip("Propagation and fill stay within these slices (inclusive)")
        self.progress = QProgressBar()
        self.progress.setFormat("%v/%m slices")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(5 * self.status.fontMetrics().lineSpacing())  # a stop per direction, unclipped

        grid = QGridLayout()
        grid.addWidget(self.up_btn, 0, 0)
        grid.addWidget(self.down_btn, 0, 1)
        grid.addWidget(self.both_btn, 0, 2)
        grid.addWidget(QLabel("slices from"), 1, 0)
        grid.addWidget(self.from_spin, 1, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("to"))
        row.addWidget(self.to_spin)
        grid.addLayout(row, 1, 2)
        grid.addWidget(self.fill_btn, 2, 0, 1, 2)
        grid.addWidget(self.lock_btn, 2, 2)
        prog = QHBoxLayout()
        prog.addWidget(self.progress)
        prog.addWidget(self.cancel_btn)
        prog.addWidget(self.commit_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addLayout(prog)
        layout.addWidget(self.status)
        layout.addWidget(self.continue_btn)
        self._set_running(False)

    # -------------------------------------------------------------------------- state --
    def reset(self, n_slices: int = 0) -> None:
        """A new image (or axis): forget locks and previews, range = all slices."""
        self.cancel()
        self.locks.clear()
        self.previewed.clear()
        self.reference = None
        self.set_range(n_slices)
        self.update_slice()

    def set_range(self, n_slices: int) -> None:
        """Range spin boxes for a volume of ``n_slices`` (kept as set if that did not change)."""
        if self.to_spin.maximum() != max(n_slices - 1, 0):
            for spin in (self.from_spin, self.to_spin):
                spin.setRange(0, max(n_slices - 1, 0))
            self.from_spin.setValue(0)
            self.to_spin.setValue(max(n_slices - 1, 0))

    def update_slice(self, event=None) -> None:
        if self.host.image_layer is not None:
            self.lock_btn.setChecked(self.host.current_z() in self.locks)

    def on_slice_committed(self, z: int) -> None:
        """The user committed slice z by hand: it counts as corrected and is locked."""
        self.locks.lock(z)
        self.previewed.discard(z)
        self.update_slice()

    def toggle_lock(self) -> None:
        locked = self.locks.toggle(self.host.current_z())
        self.lock_btn.setChecked(locked)
        self.host.autosave.schedule()

    def _set_running(self, running: bool) -> None:
        for b in (self.up_btn, self.down_btn, self.both_btn, self.fill_btn, self.commit_btn):
            b.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        self.continue_btn.setVisible(not running and bool(self._continuable()))

    def _continuable(self) -> list[tuple[int, Stop]]:
        return [(d, st) for d, st in self.stops.items() if st.reason in CONTINUABLE and st.z is not None]

    @property
    def is_running(self) -> bool:
        return self.worker is not None

    def _ready(self) -> bool:
        host = self.host
        if host.session is None or host.preview_layer is None:
            show_warning("SAM: load an image and wait for the model first")
            return False
        if not host.is3d:
            show_warning("SAM: propagation needs a 3D image")
            return False
        if self.is_running:
            show_info("SAM: a propagation is already running (Cancel it first)")
            return False
        return True

    def _value(self) -> int:
        return self.host.label_list.selected or 1

    def _label_mask(self, z: int) -> np.ndarray | None:
        labels = self.host.labels_layer
        if labels is None:
            return None
        return np.asarray(labels.data[L.labels_key(3, z, self.host.axis)]) == self._value()

    def _clear_previews(self, keep=()) -> None:
        self.host.prompts.clear_previews(self.previewed - set(keep))
        self.previewed &= set(keep)

    # ---------------------------------------------------------------------- propagation --
    def propagate(self, direction: int) -> None:
        """direction UP, DOWN or 0 (both ways) from the slice shown."""
        if not self._ready():
            return
        host = self.host
        z = host.current_z()
        lo, hi = self.from_spin.value(), self.to_spin.value()
        if not lo <= z <= hi:
            show_warning(f"SAM: slice {z} is outside the propagation range {lo}..{hi}")
            return
        start = host.prompts.prompt(z)
        if start.is_empty:
            start = self._label_mask(z)
            if start is None or not start.any():
                show_warning(f"SAM: draw a box on slice {z} or commit a mask there first")
                return
        locked = set(self.locks) - {z}
        runs = [(d, hi if d == UP else lo, locked) for d in ((UP, DOWN) if direction == 0 else (direction,))]
        total = sum(hi - z if d == UP else z - lo for d, _, _ in runs)
        self._clear_previews(keep=())
        self.stops = {}
        self.reference = z if isinstance(start, Prompt) else None
        self._start(propagation_worker(host.session, z, start, runs, _start_thread=False), total,
                    f"propagating from slice {z}")

    def continue_past_stop(self) -> None:
        """Carry on from the last slice reached, in each direction that stopped where the object
        seemed to end; the slice it stopped at is accepted this time."""
        todo = self._continuable()
        if not todo or not self._ready():
            return
        lo, hi = self.from_spin.value(), self.to_spin.value()
        locked = set(self.locks)
        self.stops = {}
        runs_from = []
        for direction, stop in todo:
            z = stop.z - direction
            plane = self.host.prompts.preview_plane(z) if z in self.previewed else None
            start = plane == self._value() if plane is not None else self._label_mask(z)
            if start is not None and start.any():
                runs_from.append((z, start, direction))
        if not runs_from:
            show_warning("SAM: the slice before the stop has no mask to continue from")
            return
        z, start, direction = runs_from[0]  # one direction at a time; the other stays offered
        runs = [(direction, hi if direction == UP else lo, locked - {z})]
        total = hi - z if direction == UP else z - lo
        self.reference = None
        self._start(propagation_worker(self.host.session, z, start, runs, accept_first=True, _start_thread=False),
                    total, f"continuing from slice {z}")

    def fill(self) -> None:
        if not self._ready():
            return
        lo, hi = self.from_spin.value(), self.to_spin.value()
        key_masks = {}
        for z in self.locks:
            if lo <= z <= hi:
                mask = self._label_mask(z)
                if mask is not None and mask.any():
                    key_masks[z] = mask
        if len(key_masks) < 2:
            show_warning("SAM: commit (or lock) at least two key slices of the selected label in the range first")
            return
        todo = [z for z in fill_slices(key_masks) if z not in self.locks]
        self._clear_previews(keep=())
        self.reference = None
        self._start(fill_worker(self.host.session, key_masks, set(self.locks), _start_thread=False), len(todo),
                    f"filling between key slices {sorted(key_masks)}")

    def _start(self, worker, total: int, message: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(0)
        self.status.setText(message + "…")
        worker.yielded.connect(lambda r: self._on_result(worker, r))
        worker.finished.connect(lambda: self._on_finished(worker))
        worker.errored.connect(lambda exc: show_error(f"SAM: propagation failed: {exc}"))
        self.worker = worker
        self._set_running(True)
        worker.start()

    def _on_result(self, worker, result) -> None:
        if worker is not self.worker:
            return
        if isinstance(result, tuple):  # (direction, Stop)
            self.stops[result[0]] = result[1]
            return
        z = self.reference if isinstance(result, MaskResult) else result.z
        plane = self.host.prompts.preview_plane(z)
        plane[...] = 0
        plane[result.mask] = self._value()
        self.previewed.add(z)
        if not isinstance(result, MaskResult):
            self.progress.setValue(self.progress.value() + 1)
        self.host.preview_layer.refresh()

    def _on_finished(self, worker) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        n = len(self.previewed)
        text = f"{n} slices previewed: check them, then Commit all" if n else "nothing propagated"
        words = {UP: "up", DOWN: "down"}
        said = [f"{words[d]}: {st.message}" for d, st in sorted(self.stops.items(), reverse=True)]
        self.status.setText("\n".join([text, *said]))
        self._set_running(False)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()
            self.worker = None
            self.stops = {}
            self._set_running(False)
            self.status.setText(f"cancelled ({len(self.previewed)} slices previewed)")

    # --------------------------------------------------------------------------- commit --
    def commit_all(self) -> None:
        """Write every previewed slice into the labels layer as one undoable commit."""
        host = self.host
        if not self.previewed or self.is_running:
            show_info("SAM: nothing previewed to commit" if not self.previewed else "SAM: wait for the propagation")
            return
        target = host.commit_target()
        if target is None:
            return
        labels, value = target
        masks = {z: host.prompts.preview_plane(z) > 0 for z in sorted(self.previewed) if z not in self.locks}
        host.commits.commit_slices(labels, masks, value, host.overwrite_check.isChecked(), host.axis)
        if self.reference is not None:  # the slice the user prompted counts as hand-made
            self.locks.lock(self.reference)
            if host.current_z() == self.reference:
                host.clear_prompts()
        self._clear_previews(keep=())
        self.stops = {}  # committed: there is nothing left to continue
        self._set_running(False)
        self.status.setText(f"committed {len(masks)} slices")
        self.update_slice()
