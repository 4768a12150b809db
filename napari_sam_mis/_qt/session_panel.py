"""Autosave of the widget's work (``annotate/saved_session.py``), and its restore when the same
image is opened again: labels, label list, locked slices, prompts, window and model.

Each edit (commit, undo, brush stroke, lock, prompt, label list) schedules a save a moment
later; the labels are copied on the GUI thread and written on a worker thread, so a save never
holds the hand. Closing the image or the viewer saves what is pending first.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import SEGMENTS_KEY
from napari_sam_mis._qt.labels_layer import add_labels_layer
from napari_sam_mis.annotate.saved_session import (
    SavedSession,
    SessionState,
    forget_session,
    load_session,
    save_session,
    session_folder,
)
from napari_sam_mis.errors import SamMisError

AUTOSAVE_DELAY_MS = 800  # a burst of edits (a brush stroke, clicks) is saved once


class SessionPanel(QWidget):
    saved = Signal(object)  # the session folder, or the exception that stopped the save

    def __init__(self, host, parent=None):
        super().__init__(parent)
        self.host = host  # the AnnotateWidget: volume, image and labels layers, label list, prompts, locks
        self.volume = None
        self.folder = None  # the followed image's session folder (found once: it hashes the voxels)
        self._layer = None
        self._pending = None  # the save running on the worker thread
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam-autosave")
        self._failed = False
        self._closed = False  # the widget closed: no more saves
        self._origin = ""  # "session of ... restored; " while the restored session is followed
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)
        self.saved.connect(self._on_saved)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.forget_btn = QPushButton("Forget saved session")
        self.forget_btn.setToolTip("Delete this image's autosaved session (the layers stay as they are)")
        self.forget_btn.clicked.connect(self.forget)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.status, 1)
        row.addWidget(self.forget_btn)

    # ------------------------------------------------------------------- open / close --
    def attach(self, volume) -> SavedSession | None:
        """A new image: follow it; returns its saved session, None without one (or a damaged one)."""
        self.detach()
        self.volume, self.folder = volume, session_folder(volume)
        try:
            saved = load_session(volume, self.folder)
        except (SamMisError, OSError) as exc:
            show_warning(f"SAM: {exc}; starting afresh (the next save replaces it)")
            saved = None
        self._origin = "" if saved is None else \
            f"session of {time.strftime('%d %b %H:%M', time.localtime(saved.state.saved_at))} restored; "
        self.status.setText(self._origin + "work is autosaved after each edit")
        return saved

    def detach(self) -> None:
        """The image goes: save what is pending, then stop following it."""
        self.flush()
        self.volume = self.folder = None
        self.watch(None)

    def restore(self, saved: SavedSession) -> None:
        """Put a saved session into the viewer: its labels in a new labels layer (selected), the
        label list, locks, prompts, window and model choices."""
        host, state = self.host, saved.state
        host.settings.apply_choices(state.window, state.model)
        layer = add_labels_layer(host.viewer, host.image_layer, saved.labels.shape, host.preview_layer)
        layer.data = saved.labels.astype(np.uint16)
        layer.metadata[SEGMENTS_KEY] = state.segments
        host.use_labels_layer(layer)
        if state.selected is not None:
            host.labels_widget.select_value(state.selected)
        if state.axis == (L.sliced_axis(host.viewer, host.image_layer) or 0):
            for z in state.locked:
                host.propagation.locks.lock(z)
        prompts = host.prompts
        if state.points:
            prompts.points_layer.data = np.asarray(state.points, float)
            prompts.points_layer.features = {"positive": np.asarray(state.positive, bool)}
        if state.boxes:
            prompts.shapes_layer.add_rectangles([np.asarray(b, float) for b in state.boxes])
        labelled = int(np.count_nonzero(saved.labels.reshape(len(saved.labels), -1).any(axis=1)))
        show_info(f"SAM: restored the session saved {time.ctime(state.saved_at)} ({labelled} labelled slices, "
                  f"{len(state.points)} clicks, {len(state.boxes)} boxes) from {saved.folder}")

    def watch(self, layer) -> None:
        """Follow the labels layer: a brush stroke on it schedules a save."""
        if layer is self._layer:
            return
        if self._layer is not None:
            self._layer.events.paint.disconnect(self.schedule)
        self._layer = layer
        if layer is not None:
            layer.events.paint.connect(self.schedule)

    # ------------------------------------------------------------------------- saving --
    def schedule(self, event=None) -> None:
        if self.volume is not None and not self._closed:
            self._timer.start()

    def flush(self) -> None:
        """Save now if a save is due, and wait until it is written."""
        if self._timer.isActive():
            self._timer.stop()
            self.save_now()
        if self._pending is not None:
            self._pending.result()

    def save_now(self) -> None:
        layer = self.host.labels_layer
        if self.volume is None or layer is None or self._closed:
            return
        labels, state = np.array(layer.data), self._state()  # a copy: the user goes on drawing
        if not (labels.any() or state.points or state.boxes or self._pending is not None or self._has_session()):
            return  # nothing drawn yet: no session to keep
        if self._pending is not None:
            self._pending.result()  # saves are written in order
        self._pending = self._writer.submit(self._write, self.volume, labels, state, self.folder)

    def _write(self, volume, labels, state, folder) -> None:
        try:
            self.saved.emit(save_session(volume, labels, state, folder))
        except (SamMisError, OSError) as exc:
            self.saved.emit(exc)

    def _on_saved(self, result) -> None:
        if isinstance(result, Exception):
            self.status.setText(f"autosave failed: {result}")
            if not self._failed:  # once, not at every stroke
                show_warning(f"SAM: autosave failed ({result}); your work is still here: save the labels layer")
            self._failed = True
            return
        self._failed = False
        self.status.setText(f"{self._origin}autosaved {time.strftime('%H:%M:%S')}")

    def _has_session(self) -> bool:
        return (self.folder / "session.json").exists()

    def _state(self) -> SessionState:
        host = self.host
        window, model = host.settings.choices()
        state = SessionState(segments=L.segments_metadata(host.label_list), selected=host.label_list.selected,
                             axis=host.axis, locked=list(host.propagation.locks), window=window, model=model)
        prompts = host.prompts
        if prompts is not None and prompts.points_layer is not None:
            state.points = np.asarray(prompts.points_layer.data, float).tolist()
            state.positive = [bool(v) for v in prompts.points_layer.features.get("positive", [True] * len(state.points))]
        if prompts is not None and prompts.shapes_layer is not None:
            state.boxes = [np.asarray(s, float).tolist() for s in prompts.shapes_layer.data]
        return state

    def forget(self) -> None:
        if self.volume is None:
            return
        self._timer.stop()
        if self._pending is not None:
            self._pending.result()
        gone = forget_session(self.folder)
        self.status.setText("saved session deleted; new edits are saved again" if gone else "no saved session")

    def close_down(self) -> None:
        self.flush()
        self._closed = True
        self._writer.shutdown(wait=True)
