"""The SAM annotation dock widget: prompts on the slice shown -> mask preview -> committed labels.

Pieces: ``SettingsPanel`` (image, model, device, window, labels layer), ``LabelListWidget``
(label names/colours), ``embedding_worker`` (slice embeddings in a thread), the layer adapters
of ``_napari.layers`` and the Qt-free ``CommitHistory``. Decoding (~50 ms) runs on the GUI
thread once the slice's embedding is ready; a prompt on a slice without one moves that slice
to the front of the embedding queue and is decoded when it arrives.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._napari import layers as L
from ..core.embedding_store import default_cache_dir
from ..core.history import CommitHistory, commit_mask
from ..core.label_list import LabelList
from ..core.session import AnnotationSession
from .embedding_worker import EmbeddingPlan, embedding_worker, load_engine_worker, preload_modules
from .label_list_widget import LabelListWidget
from .propagation_panel import PropagationPanel
from .settings_panel import SettingsPanel

SHORTCUTS = (
    ("Box tool", "draw a rectangle on the box layer (R)"),
    ("Click", "left click on the clicks layer: positive; Ctrl+click or 'negative' ticked: negative"),
    ("Enter", "commit the preview into the labels layer"),
    ("Escape", "clear the prompts of this slice"),
    ("Ctrl+Z", "undo the last commit"),
    ("Ctrl+Shift+Z", "redo"),
)
TOOLTIP = "SAM annotation. Shortcuts (with a prompt layer selected):\n" + "\n".join(f"  {k}: {v}" for k, v in SHORTCUTS)


def _refill_combo(combo, names: list[str]) -> str:
    """Replace a combo box's items without emitting signals, keeping its choice; returns that choice."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(names)
    if current in names:
        combo.setCurrentText(current)
    combo.blockSignals(False)
    return current


class AnnotateWidget(QWidget):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.engine = None
        self.session: AnnotationSession | None = None
        self.image_layer = self.points_layer = self.shapes_layer = self.preview_layer = None
        self.labels_layer = None
        self.worker = None
        self._loader = None
        self.plan = EmbeddingPlan()
        self.history = CommitHistory(depth=50)
        self.label_list = LabelList.builtin()
        self._pending: set[int] = set()  # slices with a prompt waiting for their embedding
        self._axis_warned = False
        self.axis = 0  # the array axis napari slices: 0 axial, 1 coronal, 2 sagittal
        self._sessions: dict[int, AnnotationSession] = {}  # one per axis, same image/model/window
        self.last_score = None
        self._last_clicks: dict = {}  # (session id, z) -> (points, labels, low-res logits) last decoded
        self.last_decode_time = 0.0
        self.setToolTip(TOOLTIP)
        self._build_ui()
        self._connect_viewer()
        self._refresh_layer_combos()
        self._on_image_changed()

    # ------------------------------------------------------------------------------ UI --
    def _build_ui(self) -> None:
        self.settings = SettingsPanel()
        self.progress = QProgressBar()
        self.progress.setFormat("embeddings %v/%m slices")
        self.progress.setValue(0)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop computing embeddings (a prompted slice is still computed)")
        self.cancel_btn.clicked.connect(self.cancel_embedding)
        self.status = QLabel("no model loaded")
        self.status.setWordWrap(True)
        prog_row = QHBoxLayout()
        prog_row.addWidget(self.progress)
        prog_row.addWidget(self.cancel_btn)

        self.labels_widget = LabelListWidget(self.label_list)
        self.labels_widget.selection_changed.connect(self._on_label_selected)
        self.labels_widget.labels_edited.connect(self._on_labels_edited)

        self.box_btn = QPushButton("Box tool")
        self.click_btn = QPushButton("Click tool")
        self.negative_check = QCheckBox("negative clicks")
        self.negative_check.setToolTip("New clicks are negative (background); Ctrl+click also makes a negative click")
        self.negative_check.toggled.connect(self._on_negative_toggled)
        self.overwrite_check = QCheckBox("overwrite other labels")
        self.overwrite_check.setToolTip("Unticked, a commit never changes voxels that already hold another label")
        self.box_btn.clicked.connect(self.activate_box_tool)
        self.click_btn.clicked.connect(self.activate_click_tool)
        tools = QHBoxLayout()
        tools.addWidget(self.box_btn)
        tools.addWidget(self.click_btn)
        tools.addWidget(self.negative_check)

        self.commit_btn = QPushButton("Commit (Enter)")
        self.clear_btn = QPushButton("Clear (Esc)")
        self.undo_btn = QPushButton("Undo")
        self.redo_btn = QPushButton("Redo")
        self.commit_btn.clicked.connect(self.commit)
        self.clear_btn.clicked.connect(self.clear_prompts)
        self.undo_btn.clicked.connect(self.undo)
        self.redo_btn.clicked.connect(self.redo)
        self.undo_btn.setToolTip("Undo the last commit (Ctrl+Z)")
        self.redo_btn.setToolTip("Redo (Ctrl+Shift+Z)")
        actions = QHBoxLayout()
        for b in (self.commit_btn, self.clear_btn, self.undo_btn, self.redo_btn):
            actions.addWidget(b)

        setup = QGroupBox("Image and model")
        QVBoxLayout(setup).addWidget(self.settings)
        labels_box = QGroupBox("Labels")
        QVBoxLayout(labels_box).addWidget(self.labels_widget)
        prompt_box = QGroupBox("Prompts")
        pv = QVBoxLayout(prompt_box)
        pv.addLayout(tools)
        pv.addLayout(actions)
        pv.addWidget(self.overwrite_check)
        shortcuts = QLabel("\n".join(f"{k}: {v}" for k, v in SHORTCUTS[2:]))
        shortcuts.setStyleSheet("color: gray")
        pv.addWidget(shortcuts)

        layout = QVBoxLayout(self)
        layout.addWidget(setup)
        layout.addLayout(prog_row)
        layout.addWidget(self.status)
        layout.addWidget(labels_box)
        layout.addWidget(prompt_box)
        self.propagation = PropagationPanel(self)
        volume_box = QGroupBox("Volume: propagation and key slices")
        QVBoxLayout(volume_box).addWidget(self.propagation)
        layout.addWidget(volume_box)
        layout.addStretch(1)

        self.settings.image_changed.connect(self._on_image_changed)
        self.settings.labels_changed.connect(self._on_labels_layer_changed)
        self.settings.model_changed.connect(self._on_model_changed)
        self.settings.window_changed.connect(self._on_window_changed)

    def _connect_viewer(self) -> None:
        self.viewer.layers.events.inserted.connect(self._refresh_layer_combos)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.viewer.dims.events.order.connect(self._on_step)
        self.viewer.dims.events.ndisplay.connect(self._on_step)

    def _own_layers(self) -> list:
        return [x for x in (self.points_layer, self.shapes_layer, self.preview_layer) if x is not None]

    def _refresh_layer_combos(self, event=None) -> None:
        import napari.layers as nl

        own = self._own_layers()
        images = [lyr.name for lyr in self.viewer.layers if isinstance(lyr, nl.Image)]
        current = _refill_combo(self.settings.image_combo, images)
        if not current and images:
            self._on_image_changed()
        grid = self._grid_shape()
        labels = [
            lyr.name
            for lyr in self.viewer.layers
            if isinstance(lyr, nl.Labels) and lyr not in own and "sam_mis_role" not in lyr.metadata and grid is not None and tuple(lyr.data.shape) == grid
        ]
        _refill_combo(self.settings.labels_combo, labels)
        if self.labels_layer is not None and self.labels_layer.name not in labels:
            self._on_labels_layer_changed()

    def _grid_shape(self):
        if self.image_layer is None:
            return None
        shape = tuple(self.image_layer.data.shape)
        return shape[:-1] if self.image_layer.rgb else shape

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if layer is self.image_layer:
            self._teardown()
        elif layer is self.labels_layer:
            self.labels_layer = None
            self.history.clear()
        elif layer in self._own_layers():
            for attr in ("points_layer", "shapes_layer", "preview_layer"):
                if getattr(self, attr) is layer:
                    setattr(self, attr, None)
        self._refresh_layer_combos()

    # ------------------------------------------------------------------- image / model --
    def _teardown(self) -> None:
        self._stop_worker()
        self.propagation.reset()
        self.session = None
        self._sessions.clear()
        self._pending.clear()
        old = self._own_layers()
        self.points_layer = self.shapes_layer = self.preview_layer = None
        self.image_layer = None
        for lyr in old:
            if lyr in self.viewer.layers:
                self.viewer.layers.remove(lyr)

    def _on_image_changed(self) -> None:
        name = self.settings.image_combo.currentText()
        if not name or name not in self.viewer.layers:
            return
        layer = self.viewer.layers[name]
        if layer is self.image_layer:
            return
        self._teardown()
        try:
            volume = L.volume_from_layer(layer)
        except ValueError as exc:
            show_error(f"SAM: this image can't be annotated: {exc}")
            return
        self.image_layer = layer
        self.volume = volume
        self.is3d = layer.ndim == 3
        self.preview_layer = self.viewer.add_labels(
            np.zeros(self._grid_shape(), np.uint16),
            name=f"{layer.name} SAM preview",
            **L.geometry_kwargs(layer),
            opacity=0.55,
            metadata={"sam_mis_role": "preview"},
        )
        self.preview_layer.colormap = L.label_colormap(self.label_list)
        self.preview_layer.editable = False
        self.points_layer, self.shapes_layer = L.make_prompt_layers(self.viewer, layer, f"{layer.name} SAM")
        self.points_layer.events.data.connect(self._on_points_data)
        self.shapes_layer.events.data.connect(self._on_shapes_data)
        self.points_layer.mouse_drag_callbacks.insert(0, self._on_points_press)
        for lyr in (*self._own_layers(), layer):
            self._bind_keys(lyr)
        self._refresh_layer_combos()
        if self.settings.labels_combo.count() == 0:
            self.labels_layer = None
            self._ensure_labels_layer()
        else:
            self._on_labels_layer_changed()
        self._apply_contrast()
        self.axis = L.sliced_axis(self.viewer, layer) or 0
        self.plan = EmbeddingPlan(center=self.current_z())
        self.activate_box_tool()
        self._ensure_engine()

    def _ensure_labels_layer(self):
        if self.labels_layer is None:
            layer = self.viewer.add_labels(
                np.zeros(self._grid_shape(), np.uint16),
                name=f"{self.image_layer.name} labels",
                **L.geometry_kwargs(self.image_layer),
                opacity=0.5,
            )
            # keep the prompt layers on top
            self.viewer.layers.move(self.viewer.layers.index(layer), self.viewer.layers.index(self.preview_layer))
            self._refresh_layer_combos()
            self.settings.labels_combo.setCurrentText(layer.name)
            self._on_labels_layer_changed()
        return self.labels_layer

    def _on_labels_layer_changed(self) -> None:
        name = self.settings.labels_combo.currentText()
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if layer is self.labels_layer:
            return
        self.labels_layer = layer
        self.history.clear()
        if layer is None:
            return
        if not isinstance(layer.data, np.ndarray) or not layer.data.flags.writeable:
            layer.data = np.array(layer.data)
        meta = layer.metadata.get(L.SEGMENTS_KEY)
        if isinstance(meta, dict) and meta:
            try:
                self.label_list = L.label_list_from_segments(meta)
            except (ValueError, KeyError, TypeError) as exc:
                show_warning(f"SAM: ignoring the label list stored on {layer.name!r}: {exc}")
            self.labels_widget.set_labels(self.label_list)
        self._on_labels_edited()

    def _engine_key(self):
        return (self.settings.model_name, self.settings.checkpoint or "", self.settings.device)

    def _ensure_engine(self) -> None:
        if self.image_layer is None:
            return
        if self.engine is not None and getattr(self, "_engine_for", None) == self._engine_key():
            self._start_session()
            return
        if self._loader is not None:
            self._loader.quit()
        name, checkpoint, device = self._engine_key()
        self.status.setText(f"loading {name} on {device}…")
        try:
            preload_modules(name)
        except Exception as exc:  # e.g. unknown model
            show_error(f"SAM: {exc}")
            return
        key = self._engine_key()

        def loaded(engine):
            if worker is not self._loader:
                return
            self._loader = None
            self.engine, self._engine_for = engine, key
            msg = f"SAM: model {engine.name} on {engine.device}"
            self.status.setText(msg[5:])
            show_info(msg)
            self._start_session()

        def failed(exc):
            if worker is self._loader:
                self._loader = None
                self.status.setText(f"model not loaded: {exc}")
                show_error(f"SAM: {exc}")

        worker = load_engine_worker(
            name, checkpoint or None, device, _connect={"returned": loaded, "errored": failed}, _start_thread=False
        )
        self._loader = worker
        worker.start()

    def _on_model_changed(self) -> None:
        self._stop_worker()
        self.session = None
        self._sessions.clear()
        self._ensure_engine()

    def _start_session(self) -> None:
        self._stop_worker()
        self._sessions.clear()
        try:
            window = self.settings.window(self.volume)
            self.session = self._sessions[self.axis] = self._new_session(window)
        except (ValueError, OSError) as exc:
            show_error(f"SAM: {exc}")
            return
        self.plan.batch_size = 1 if self.engine.device.type == "cpu" else 8
        self.propagation.set_range(self.session.n_slices)
        self.progress.setMaximum(self.session.n_slices)
        self.progress.setValue(self.session.n_embedded)
        self._mark_prompted_pending()
        self.start_embedding(background=True)

    def _on_window_changed(self) -> None:
        if self.session is None:
            return
        try:
            window = self.settings.window(self.volume)
        except ValueError as exc:
            show_error(f"SAM: {exc}")
            return
        if window.key() == self.session.window.key():
            return
        self.session.set_window(window)
        self._sessions = {self.axis: self.session}  # sessions of other axes are rebuilt with this window
        self._apply_contrast()
        self.progress.setValue(self.session.n_embedded)
        show_info(f"SAM: window {window.key()}: embeddings are recomputed")
        self._mark_prompted_pending()
        self.start_embedding(background=True)

    def _apply_contrast(self) -> None:
        try:
            window = self.settings.window(self.volume)
        except ValueError:
            return
        if window.kind == "level_width" and not self.image_layer.rgb:
            self.image_layer.contrast_limits = window.bounds(self.volume.array)

    # ---------------------------------------------------------------------- embeddings --
    def start_embedding(self, background: bool = True) -> None:
        if self.session is None:
            return
        if background:
            self.plan.background = True
        if self.worker is not None and self.worker.is_running:
            return
        session, plan = self.session, self.plan
        worker = embedding_worker(
            session,
            plan,
            _connect={
                "yielded": lambda z: self._on_embedded(session, z),
                "finished": lambda: self._on_worker_finished(worker),
                "errored": lambda exc: show_error(f"SAM: embedding failed ({self.engine.name}): {exc}"),
            },
            _start_thread=False,
        )
        self.worker = worker
        self.status.setText(f"{self.engine.name} on {self.engine.device}: computing embeddings…")
        worker.start()

    def cancel_embedding(self) -> None:
        self.plan.background = False
        self._stop_worker()
        if self.session is not None:
            self.progress.setValue(self.session.n_embedded)
            self.status.setText(f"embeddings cancelled ({self.session.n_embedded}/{self.session.n_slices} ready)")

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.quit()
            self.worker = None

    def _on_embedded(self, session, z: int) -> None:
        if session is not self.session:
            return
        self.progress.setValue(session.n_embedded)
        if z in self._pending:
            self._pending.discard(z)
            if z == self.current_z():
                self.decode_current()

    def _on_worker_finished(self, worker) -> None:
        if worker is not self.worker or self.session is None:
            return
        self.worker = None
        waiting = [z for z in self._pending if not self.session.has_embedding(z)]
        if waiting:  # a prompt arrived as the job ended
            for z in waiting:
                self.plan.prioritize(z)
            self.start_embedding(background=False)
            return
        n, total = self.session.n_embedded, self.session.n_slices
        if n == total:
            msg = f"{self.engine.name} on {self.engine.device}: embeddings ready ({n}/{total} slices)"
            self.status.setText(msg)
            show_info(f"SAM: {msg}")

    def _mark_prompted_pending(self) -> None:
        if self.points_layer is None:
            return
        z = self.current_z()
        if not L.prompt_for_slice(self.points_layer, self.shapes_layer, z, self.axis).is_empty:
            self._pending.add(z)
            self.plan.prioritize(z)

    # ------------------------------------------------------------------------- prompts --
    def current_z(self) -> int:
        """Index of the slice shown, along the sliced axis ``self.axis``."""
        return L.current_slice(self.viewer, self.image_layer, self.axis) if self.image_layer is not None else 0

    def _on_step(self, event=None) -> None:
        if self.image_layer is None:
            return
        axis = L.sliced_axis(self.viewer, self.image_layer)
        if axis is None:
            if not self._axis_warned:
                show_warning("SAM: prompts work in 2D views (axial, coronal or sagittal), not in 3D")
                self._axis_warned = True
            return
        self._axis_warned = False
        if axis != self.axis:
            self._switch_axis(axis)
        self.plan.set_center(self.current_z())

    def _switch_axis(self, axis: int) -> None:
        """napari now slices another axis: annotate with (and embed for) that axis' session."""
        self._stop_worker()
        self.axis = axis
        self._pending.clear()
        self.plan = EmbeddingPlan(center=self.current_z(), batch_size=self.plan.batch_size)
        if self.preview_layer is not None:  # previews belong to prompts of the previous plane
            self.preview_layer.data[...] = 0
            self.preview_layer.refresh()
        if self.engine is None or self.session is None:
            return  # the session is made once the model is loaded
        session = self._sessions.get(axis)
        if session is None:
            try:
                session = self._sessions[axis] = self._new_session(self.session.window)
            except (ValueError, OSError) as exc:
                show_error(f"SAM: {exc}")
                return
        self.session = session
        self.propagation.reset(session.n_slices)  # locks and range belong to one axis
        self.progress.setMaximum(session.n_slices)
        self.progress.setValue(session.n_embedded)
        self._mark_prompted_pending()
        self.start_embedding(background=True)

    def _new_session(self, window) -> AnnotationSession:
        """A session along ``self.axis``; embeddings also go to the disk cache (float16, resumable)."""
        try:
            return AnnotationSession(self.volume, self.engine, window, axis=self.axis, cache_dir=default_cache_dir())
        except OSError as exc:  # e.g. a read-only home: work without the disk cache
            show_warning(f"SAM: embedding cache unavailable ({exc}); embeddings are kept in memory only")
            return AnnotationSession(self.volume, self.engine, window, axis=self.axis)

    def _on_points_press(self, layer, event) -> None:
        negative = self.negative_check.isChecked() != ("Control" in event.modifiers)
        layer.feature_defaults = {"positive": not negative}

    def _on_negative_toggled(self, checked: bool) -> None:
        if self.points_layer is not None:
            self.points_layer.feature_defaults = {"positive": not checked}

    def _on_points_data(self, event) -> None:
        action = str(getattr(event, "action", "added"))
        if action.lower().endswith("ing"):  # "adding", "removing", "changing": wait for the result
            return
        self.decode_current()  # now, not after the next redraw: the mask is drawn with the click

    def _on_shapes_data(self, event) -> None:
        action = str(getattr(event, "action", "added")).lower()
        if action.endswith("ing"):
            return
        if action.endswith("added"):  # one box per slice: the newest replaces the others
            QTimer.singleShot(0, self._drop_old_boxes)
        self.decode_current()

    def _drop_old_boxes(self) -> None:
        layer = self.shapes_layer
        if layer is None:
            return
        idx = L.boxes_on_slice(layer, self.current_z(), self.axis)
        if len(idx) > 1:
            layer.selected_data = set(idx[:-1])
            layer.remove_selected()

    def decode_current(self) -> None:
        """Decode the prompts of the slice shown and show the preview (or queue the slice)."""
        if self.image_layer is None or self.points_layer is None:
            return
        if self.is3d and L.sliced_axis(self.viewer, self.image_layer) != self.axis:
            return
        z = self.current_z()
        prompt = L.prompt_for_slice(self.points_layer, self.shapes_layer, z, self.axis)
        if prompt.is_empty:
            self._set_preview(z, None)
            return
        if self.session is None:
            self._pending.add(z)
            return
        if not self.session.has_embedding(z):
            self._pending.add(z)
            self.plan.prioritize(z)
            self.status.setText(f"computing the embedding of slice {z} first…")
            self.start_embedding(background=False)
            return
        key, last = (id(self.session), z), self._last_clicks.get((id(self.session), z))
        if (last is not None and prompt.box is None and len(prompt.points) == len(last[0]) + 1
                and np.allclose(prompt.points[:-1], last[0]) and list(prompt.labels[:-1]) == last[1]):
            prompt = replace(prompt, mask_logits=last[2])  # a follow-up click refines the last mask
        result = self.session.decode(z, prompt)
        self._last_clicks[key] = ([tuple(p) for p in prompt.points], list(prompt.labels), result.low_res_logits)
        self.last_score = result.score
        self._set_preview(z, result.mask)
        self.last_decode_time = time.perf_counter()

    def _preview_plane(self, z: int) -> np.ndarray:
        data = self.preview_layer.data
        return data[L.labels_key(3, z, self.axis)] if self.is3d else data

    def _set_preview(self, z: int, mask) -> None:
        if self.preview_layer is None:
            return
        plane = self._preview_plane(z)
        plane[...] = 0
        if mask is not None:
            plane[mask] = self.label_list.selected or 1
        self.preview_layer.refresh()

    def clear_prompts(self) -> None:
        """Remove the clicks and the box of the slice shown, and its preview."""
        if self.points_layer is None:
            return
        z = self.current_z()
        self._pending.discard(z)
        idx = L.points_on_slice(self.points_layer, z, self.axis)
        if len(idx):
            self.points_layer.selected_data = set(int(i) for i in idx)
            self.points_layer.remove_selected()
        idx = L.boxes_on_slice(self.shapes_layer, z, self.axis)
        if idx:
            self.shapes_layer.selected_data = set(idx)
            self.shapes_layer.remove_selected()
        self._set_preview(z, None)

    def activate_box_tool(self) -> None:
        if self.shapes_layer is not None:
            self.viewer.layers.selection.active = self.shapes_layer
            self.shapes_layer.mode = "add_rectangle"

    def activate_click_tool(self) -> None:
        if self.points_layer is not None:
            self.viewer.layers.selection.active = self.points_layer
            self.points_layer.mode = "add"

    # --------------------------------------------------------------- commit / history --
    def _bind_keys(self, layer) -> None:
        for key, func in (
            ("Enter", self.commit),
            ("Escape", self.clear_prompts),
            ("Control-Z", self.undo),
            ("Control-Shift-Z", self.redo),
        ):
            layer.bind_key(key, lambda _layer, f=func: f(), overwrite=True)

    def commit(self) -> None:
        """Write the preview of the slice shown into the labels layer under the selected label."""
        if self.preview_layer is None:
            return
        z = self.current_z()
        mask = self._preview_plane(z) > 0
        if not mask.any():
            show_info("SAM: nothing to commit on this slice (draw a box or click first)")
            return
        target = self.commit_target()
        if target is None:
            return
        labels, value = target
        self.record_commit(labels, commit_mask(labels.data, L.labels_key(labels.ndim, z, self.axis), mask, value,
                                               self.overwrite_check.isChecked()))
        self.propagation.on_slice_committed(z)
        self.clear_prompts()

    def commit_target(self):
        """(labels layer, selected label value) to commit into, or None (and the user is told why)."""
        labels = self._ensure_labels_layer()
        value = self.label_list.selected
        if value is None:
            show_warning("SAM: add or select a label first")
            return None
        return labels, value

    def record_commit(self, labels, result) -> None:
        """Put a commit's result on the undo history, redraw, and say what was kept."""
        if result.commit is not None:
            self.history.push(result.commit)
            labels.refresh()
        if result.skipped:
            show_warning(
                f"SAM: {result.skipped} voxels already hold another label and were kept "
                "(tick 'overwrite other labels' to replace them)"
            )

    def _undo_redo(self, redo: bool) -> None:
        if self.labels_layer is None:
            return
        out = (self.history.redo if redo else self.history.undo)(self.labels_layer.data)
        if out is None:
            show_info(f"SAM: nothing to {'redo' if redo else 'undo'}")
            return
        _, conflicts = out
        self.labels_layer.refresh()
        if conflicts:
            show_warning(f"SAM: {conflicts} voxels were edited since and were left as they are")

    def undo(self) -> None:
        self._undo_redo(redo=False)

    def redo(self) -> None:
        self._undo_redo(redo=True)

    # -------------------------------------------------------------------------- labels --
    def _on_label_selected(self, value: int) -> None:
        if self.preview_layer is not None:
            data = self.preview_layer.data
            data[data > 0] = value
            self.preview_layer.refresh()

    def _on_labels_edited(self) -> None:
        if self.preview_layer is not None:
            self.preview_layer.colormap = L.label_colormap(self.label_list)
        if self.labels_layer is not None:
            L.attach_label_names(self.labels_layer, self.label_list, self.volume)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._stop_worker()
        super().closeEvent(event)
