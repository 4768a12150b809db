"""The SAM annotation dock widget: prompts on the slice shown -> mask preview -> committed labels.

It lays out and wires the panels, the prompt controller, the engine loader and the sessions
(docs/architecture.md); decoding runs on the GUI thread once the slice's embedding is ready."""
from __future__ import annotations

import time

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QGroupBox, QLabel, QVBoxLayout, QWidget

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY
from napari_sam_mis._qt.commits import CommitController
from napari_sam_mis._qt.embedding_panel import EmbeddingPanel
from napari_sam_mis._qt.engine_loader import EngineLoader
from napari_sam_mis._qt.image_info import ImageInfo
from napari_sam_mis._qt.label_list_widget import LabelListWidget
from napari_sam_mis._qt.label_table import LabelTable
from napari_sam_mis._qt.labels_layer import add_labels_layer, fitting_labels_layers, prepare_labels_layer
from napari_sam_mis._qt.prompt_controller import PromptController
from napari_sam_mis._qt.prompt_panel import TOOLTIP, PromptPanel, bind_shortcuts
from napari_sam_mis._qt.propagation_panel import PropagationPanel
from napari_sam_mis._qt.proposals_panel import ProposalsPanel
from napari_sam_mis._qt.session_panel import SessionPanel
from napari_sam_mis._qt.settings_panel import SettingsPanel
from napari_sam_mis._qt.uncertainty_panel import UncertaintyPanel
from napari_sam_mis._qt.view_buttons import ViewButtons
from napari_sam_mis.annotate.axis_sessions import AxisSessions
from napari_sam_mis.annotate.labels import LabelList
from napari_sam_mis.annotate.neighbour_check import is_first_click, neighbour_mask
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.annotate.window import window_summary
from napari_sam_mis.embeddings.store import default_cache_dir


class AnnotateWidget(QWidget):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session: AnnotationSession | None = None
        self._sessions: AxisSessions | None = None
        self.image_layer = self.labels_layer = None
        self.prompts: PromptController | None = None
        self.loader = EngineLoader()
        self.commits = CommitController(depth=50, on_change=lambda: self.autosave.schedule())
        self.label_list = LabelList.builtin()
        self.axis = 0  # the array axis napari slices: 0 axial, 1 coronal, 2 sagittal
        self.last_score = None
        self.last_decode_time = 0.0
        self.setToolTip(TOOLTIP)
        self._build_ui()
        self._connect_viewer()
        self._refresh_layer_combos()
        self._on_image_changed()

    points_layer = property(lambda self: self.prompts.points_layer if self.prompts else None)  # for scripts, tests
    shapes_layer = property(lambda self: self.prompts.shapes_layer if self.prompts else None)
    preview_layer = property(lambda self: self.prompts.preview_layer if self.prompts else None)
    worker = property(lambda self: self.embedding.worker)  # the running embedding job, if any
    engine = property(lambda self: self.loader.engine)
    cancel_btn = property(lambda self: self.embedding.cancel_btn)

    # ------------------------------------------------------------------------------ UI --
    def _build_ui(self) -> None:
        self.settings = SettingsPanel()
        self.status = QLabel("no model loaded")
        self.status.setWordWrap(True)
        self.embedding = EmbeddingPanel(self._on_slice_ready, self.status.setText)

        self.labels_widget = LabelListWidget(self.label_list)
        self.labels_widget.selection_changed.connect(self._on_label_selected)
        self.labels_widget.labels_edited.connect(self._on_labels_edited)

        self.tools = PromptPanel()
        t = self.tools
        self.negative_check, self.overwrite_check, self.commit_btn = t.negative_check, t.overwrite_check, t.commit_btn
        t.negative_check.toggled.connect(lambda on: self.prompts and self.prompts.set_negative(on))
        t.box_btn.clicked.connect(lambda: self.prompts and self.prompts.activate_box_tool())
        t.click_btn.clicked.connect(lambda: self.prompts and self.prompts.activate_click_tool())
        t.commit_btn.clicked.connect(self.commit)
        t.clear_btn.clicked.connect(self.clear_prompts)
        t.undo_btn.clicked.connect(self.undo)
        t.redo_btn.clicked.connect(self.redo)

        self.propagation, self.label_table, self.views = PropagationPanel(self), LabelTable(self), ViewButtons(self)
        self.autosave, self.image_info = SessionPanel(self), ImageInfo()
        self.uncertainty, self.proposals = UncertaintyPanel(self), ProposalsPanel(self)
        layout = QVBoxLayout(self)
        for title, widget in (("Image and model", self.settings), (None, self.image_info), (None, self.views),
                              (None, self.embedding), (None, self.status), ("Labels", self.labels_widget),
                              ("Prompts", self.tools), (None, self.uncertainty), (None, self.proposals),
                              ("Volume: propagation and key slices", self.propagation), ("Label table", self.label_table),
                              (None, self.autosave)):
            if title:
                box = QGroupBox(title)
                QVBoxLayout(box).addWidget(widget)
            layout.addWidget(box if title else widget)
        layout.addStretch(1)

        self.settings.image_changed.connect(self._on_image_changed)
        self.settings.labels_changed.connect(self._on_labels_layer_changed)
        self.settings.model_changed.connect(self._on_model_changed)
        self.settings.window_changed.connect(self._on_window_changed)

    def _connect_viewer(self) -> None:
        self.viewer.layers.events.inserted.connect(self._refresh_layer_combos)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        for event in (self.viewer.dims.events.current_step, self.viewer.dims.events.order, self.viewer.dims.events.ndisplay):
            event.connect(self._on_step)

    def _refresh_layer_combos(self, event=None) -> None:
        own = self.prompts.layers if self.prompts else []
        images = [lyr.name for lyr in self.viewer.layers if isinstance(lyr, Image) and ROLE_KEY not in lyr.metadata]
        current = self.settings.set_choices(self.settings.image_combo, images)
        if not current and images:
            self._on_image_changed()
        labels = fitting_labels_layers(self.viewer, self.image_layer, self._grid_shape(), own)
        self.settings.set_choices(self.settings.labels_combo, labels)
        if self.labels_layer is not None and self.labels_layer.name not in labels:
            self._on_labels_layer_changed()

    def _grid_shape(self):
        return L.grid_shape(self.image_layer) if self.image_layer is not None else None

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if layer is self.image_layer:
            self._teardown()
        elif layer is self.labels_layer:
            self.autosave.flush()  # with the layer's last strokes
            self.labels_layer = None
            self.commits.clear()
        elif self.prompts is not None:
            self.prompts.forget(layer)
        self._refresh_layer_combos()

    # ------------------------------------------------------------------- image / model --
    def _teardown(self) -> None:
        self.embedding.close_down()  # the image is gone: its job ends before anything else goes
        self.loader.finish()  # (a model still loading; the viewer may be closing)
        self.autosave.detach()  # what is pending is saved while the prompt layers are still there
        self.propagation.reset()
        self.session = self._sessions = None
        prompts, self.prompts = self.prompts, None
        self.image_layer = None
        self.image_info.show_volume(None)
        if prompts is not None:
            prompts.remove_layers()

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
        self.image_info.show_volume(volume, layer.name)
        self.settings.fit_to(volume)
        self.is3d = layer.ndim == 3
        self.prompts = PromptController(self.viewer, layer, self._grid_shape(), self.label_list,
                                       lambda: (self.decode_current(), self.autosave.schedule()))
        self.prompts.set_negative(self.negative_check.isChecked())
        for lyr in (*self.prompts.layers, layer):
            bind_shortcuts(lyr, self.commit, self.clear_prompts, self.undo, self.redo)
        self._refresh_layer_combos()
        saved = self.autosave.attach(volume)
        if saved is not None:  # the work of an earlier session of this image
            self.autosave.restore(saved)
        elif self.settings.labels_combo.count() == 0:
            self.labels_layer = None
            self._ensure_labels_layer()
        else:
            self._on_labels_layer_changed()
        self.settings.apply_contrast(layer, volume)
        self.axis = self.prompts.axis = L.sliced_axis(self.viewer, layer) or 0
        self.embedding.scheduler.new_plan(self.current_z(), batch_size=1)
        self.prompts.activate_box_tool()
        self._ensure_engine()

    def _ensure_labels_layer(self):
        if self.labels_layer is None:  # under the prompt layers
            self.use_labels_layer(add_labels_layer(self.viewer, self.image_layer, self._grid_shape(), self.preview_layer))
        return self.labels_layer

    def use_labels_layer(self, layer) -> None:
        """Commit into ``layer`` (a labels layer on the image's grid) from now on."""
        self._refresh_layer_combos()
        self.settings.labels_combo.setCurrentText(layer.name)
        self._on_labels_layer_changed()

    def _on_labels_layer_changed(self) -> None:
        name = self.settings.labels_combo.currentText()
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if layer is self.labels_layer:
            return
        self.labels_layer = layer
        self.commits.clear()
        if layer is None:
            return
        self.commits.bind_keys(layer)
        stored = prepare_labels_layer(layer)
        if stored is not None:
            self.label_list = stored
            self.labels_widget.set_labels(self.label_list)
        self._on_labels_edited()

    def _ensure_engine(self) -> None:
        if self.image_layer is not None:  # (and again once loaded: the image may have gone meanwhile)
            key = (self.settings.model_name, self.settings.checkpoint or "", self.settings.device)
            self.loader.ensure(key, lambda: self.image_layer is not None and self._start_session(), self.status.setText)

    def _on_model_changed(self) -> None:
        self.embedding.stop(forget=True)
        self.session = self._sessions = None
        self._ensure_engine()

    def _start_session(self) -> None:
        self.embedding.stop()
        self._sessions = None
        try:
            self._sessions = AxisSessions(self.volume, self.engine, self.settings.window(self.volume), default_cache_dir(),
                                          lambda exc: show_warning(f"SAM: embedding cache unavailable ({exc}); "
                                                                   "embeddings are kept in memory only"))
            self.session = self._sessions.get(self.axis)
        except (ValueError, OSError) as exc:
            show_error(f"SAM: {exc}")
            return
        self.embedding.scheduler.plan.batch_size = 1 if self.engine.device.type == "cpu" else 8
        show_info(f"SAM: {window_summary(self.volume, self.session.window, self.settings.modality)}")
        self.propagation.set_range(self.session.n_slices)
        self.embedding.follow(self.session)
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
        self.session = self._sessions.set_window(window, self.axis)
        self.settings.apply_contrast(self.image_layer, self.volume)
        self.embedding.follow(self.session)
        show_info(f"SAM: {window_summary(self.volume, window, self.settings.modality)}: embeddings are recomputed")
        self._mark_prompted_pending()
        self.start_embedding(background=True)

    # ---------------------------------------------------------------------- embeddings --
    def start_embedding(self, background: bool = True) -> None:
        if self.session is not None:
            self.embedding.session = self.session
            self.embedding.start(background)

    def _on_slice_ready(self, z: int) -> None:
        if z == self.current_z():
            self.decode_current()

    def _mark_prompted_pending(self) -> None:
        if self.prompts is not None and not self.prompts.prompt(self.current_z()).is_empty:
            self.embedding.wait_for(self.current_z())

    # ------------------------------------------------------------------------- prompts --
    def current_z(self) -> int:
        """Index of the slice shown, along the sliced axis ``self.axis``."""
        return L.current_slice(self.viewer, self.image_layer, self.axis) if self.image_layer is not None else 0

    def _on_step(self, event=None) -> None:
        if self.image_layer is None:
            return
        axis = self.prompts.sliced_axis() if self.prompts else L.sliced_axis(self.viewer, self.image_layer)
        if axis is None:
            return
        if axis != self.axis:
            self._switch_axis(axis)
        self.embedding.scheduler.plan.set_center(self.current_z())

    def _switch_axis(self, axis: int) -> None:
        """napari now slices another axis: annotate with (and embed for) that axis' session."""
        self.embedding.stop()
        self.axis = axis
        if self.prompts is not None:
            self.prompts.axis = axis
            self.prompts.clear_all_previews()  # previews belong to prompts of the previous plane
        self.embedding.scheduler.new_plan(self.current_z())
        if self.engine is None or self.session is None:
            return  # the session is made once the model is loaded
        try:
            session = self._sessions.get(axis)
        except (ValueError, OSError) as exc:
            show_error(f"SAM: {exc}")
            return
        self.session = session
        self.propagation.reset(session.n_slices)  # locks and range belong to one axis
        self.embedding.follow(self.session)
        self._mark_prompted_pending()
        self.start_embedding(background=True)

    def decode_current(self) -> None:
        """Segment the prompts of the slice shown and show the preview (or queue the slice)."""
        if self.prompts is None or self.points_layer is None:
            return
        if self.is3d and L.sliced_axis(self.viewer, self.image_layer) != self.axis:
            return
        z = self.current_z()
        prompt = self.prompts.prompt(z)
        if prompt.is_empty:
            self.prompts.set_preview(z, None)
            return
        if self.session is None:
            self.embedding.scheduler.pending.add(z)
            return
        if not self.session.has_embedding(z):
            self.embedding.wait_for(z)
            self.status.setText(f"computing the embedding of slice {z} first…")
            self.start_embedding(background=False)
            return
        neighbour = self._neighbour_mask(z) if is_first_click(prompt) else None
        result = self.session.segment(z, prompt, neighbour)
        self.last_score = result.score
        self.prompts.set_preview(z, result.mask, self.label_list.selected or 1)
        self.uncertainty.update(z, prompt)
        self.last_decode_time = time.perf_counter()

    def _neighbour_mask(self, z: int):
        """The selected label's mask (committed or previewed, together) on the larger of slices z - 1 and z + 1."""
        if not self.is3d:
            return None
        masks = {}
        for k in (z - 1, z + 1):
            if not 0 <= k < self.session.n_slices:
                continue
            mask = self.prompts.preview_plane(k) > 0
            if self.labels_layer is not None and self.label_list.selected is not None:
                data = self.labels_layer.data
                mask = mask | (np.asarray(data[L.labels_key(data.ndim, k, self.axis)]) == self.label_list.selected)
            masks[k] = mask
        return neighbour_mask(masks, z)

    def clear_prompts(self) -> None:
        """Remove the clicks and the box of the slice shown, and its preview."""
        if self.prompts is None:
            return
        z = self.current_z()
        self.embedding.scheduler.pending.discard(z)
        self.prompts.clear(z)

    # --------------------------------------------------------------- commit / history --
    def commit(self) -> None:
        """Write the preview of the slice shown into the labels layer under the selected label."""
        if self.preview_layer is None:
            return
        z = self.current_z()
        mask = self.prompts.preview_plane(z) > 0
        if not mask.any():
            show_info("SAM: nothing to commit on this slice (draw a box or click first)")
            return
        target = self.commit_target()
        if target is None:
            return
        labels, value = target
        self.commits.commit_slice(labels, L.labels_key(labels.ndim, z, self.axis), mask, value,
                                  self.overwrite_check.isChecked())
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

    def undo(self) -> None:
        self.commits.undo(self.labels_layer)

    def redo(self) -> None:
        self.commits.redo(self.labels_layer)

    # -------------------------------------------------------------------------- labels --
    def _on_label_selected(self, value: int) -> None:
        if self.prompts is not None:
            self.prompts.relabel_preview(value)
        self._on_labels_edited()

    def _on_labels_edited(self) -> None:
        if self.preview_layer is not None:
            self.preview_layer.colormap = L.label_colormap(self.label_list)
        if self.labels_layer is not None:  # names for the writers; napari's brush paints the selected label
            L.attach_label_names(self.labels_layer, self.label_list, self.volume, self.labels_widget.hidden,
                                 self.labels_widget.contour_check.isChecked())
            self.labels_layer.selected_label = self.label_list.selected or 1
            self.label_table.watch(self.labels_layer)
        self.autosave.watch(self.labels_layer)
        self.autosave.schedule()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.embedding.close_down()
        self.autosave.close_down()
        super().closeEvent(event)
