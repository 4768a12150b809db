"""Automatic proposals on the slice shown (``annotate/proposals.py``), drawn as outlines in a
helper labels layer; a click inside one commits it under the selected label, as the widget's
Commit does (undoable, autosaved), and takes it off the proposals."""
from __future__ import annotations

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QHBoxLayout, QPushButton, QWidget

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY
from napari_sam_mis._qt.prompt_panel import bind_shortcuts
from napari_sam_mis.annotate.proposals import Proposal, propose_slice


@thread_worker
def proposals_worker(session, z: int):
    return propose_slice(session, z)


class ProposalsPanel(QWidget):
    def __init__(self, host, parent=None):
        super().__init__(parent)
        self.host = host  # the AnnotateWidget: viewer, image layer, session, commits, selected label
        self.layer = None  # the outlines, made by the first Propose
        self.image = None  # the image layer they belong to
        self.z = self.axis = None  # the slice they lie on
        self.proposals: dict[int, Proposal] = {}  # id in the layer -> proposal
        self.worker = None
        self.propose_btn = QPushButton("Propose")
        self.propose_btn.setToolTip("Find objects on the slice shown without prompts and outline them; "
                                    "click inside one to commit it under the selected label")
        self.propose_btn.clicked.connect(self.propose)
        self.clear_btn = QPushButton("Clear proposals")
        self.clear_btn.clicked.connect(self.clear)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.propose_btn)
        row.addWidget(self.clear_btn)
        host.viewer.layers.events.removed.connect(self._on_layer_removed)
        host.settings.image_changed.connect(self._on_image_changed)

    def propose(self) -> None:
        """Compute the proposals of the slice shown (in a thread) and outline them."""
        host = self.host
        if self.worker is not None:
            show_info("SAM: the proposals are still being computed")
            return
        if host.session is None or host.image_layer is None:
            show_warning("SAM: load an image and wait for the model first")
            return
        z = host.current_z()
        if not host.session.has_embedding(z):
            host.embedding.wait_for(z)
            host.start_embedding(background=False)
            show_info(f"SAM: computing the embedding of slice {z} first: press Propose again when it is ready")
            return
        self.clear()
        session, axis = host.session, host.axis
        worker = proposals_worker(session, z, _start_thread=False)
        worker.returned.connect(lambda found: self._show(worker, session, z, axis, found))
        worker.errored.connect(lambda exc: show_error(f"SAM: proposals failed: {exc}"))
        worker.finished.connect(lambda: self._finished(worker))
        self.worker = worker
        self.propose_btn.setEnabled(False)
        worker.start()

    def _finished(self, worker) -> None:
        if worker is self.worker:
            self.worker = None
            self.propose_btn.setEnabled(True)

    def _show(self, worker, session, z: int, axis: int, found: list[Proposal]) -> None:
        host = self.host
        if worker is not self.worker or session is not host.session:
            return  # the image, model or window changed meanwhile
        self.image, self.z, self.axis = host.image_layer, z, axis
        self.proposals = {i: p for i, p in enumerate(found, 1)}
        self._draw()
        host.viewer.layers.selection.active = self.layer  # clicks now pick proposals
        show_info(f"SAM: {len(found)} proposals on slice {z}: click inside one to commit it"
                  if found else f"SAM: no proposals on slice {z}")

    def _draw(self) -> None:
        host = self.host
        if self.layer is None or self.layer not in host.viewer.layers:
            self.layer = host.viewer.add_labels(np.zeros(L.grid_shape(self.image), np.uint16),
                                                name=f"{self.image.name} SAM proposals", opacity=0.9,
                                                metadata={ROLE_KEY: "proposals"}, **L.geometry_kwargs(self.image))
            self.layer.contour = 2
            self.layer.editable = False
            self.layer.mouse_drag_callbacks.append(self._on_press)
            bind_shortcuts(self.layer, host.commit, host.clear_prompts, host.undo, host.redo)
        data = self.layer.data
        data[...] = 0
        plane = data[L.labels_key(data.ndim, self.z, self.axis)]
        for pid, p in sorted(self.proposals.items(), key=lambda item: -item[1].score):
            plane[p.mask & (plane == 0)] = pid  # the best claims a pixel two proposals share
        self.layer.refresh()

    def proposal_at(self, world) -> int:
        """The id of the proposal at a world position (0: none)."""
        if self.layer is None or not self.proposals:
            return 0
        data = self.layer.data
        index = tuple(int(round(float(v))) for v in self.layer.world_to_data(world)[-data.ndim :])
        if any(not 0 <= i < n for i, n in zip(index, data.shape)):
            return 0
        if data.ndim == 3 and index[self.axis] != self.z:
            return 0
        return int(data[index])

    def _on_press(self, layer, event) -> None:
        if event.type == "mouse_press" and event.button == 1:
            pid = self.proposal_at(event.position)
            if pid:
                self.accept(pid)

    def accept(self, pid: int) -> None:
        """Commit proposal ``pid`` under the selected label (one undoable commit) and drop it."""
        host = self.host
        proposal = self.proposals.get(pid)
        target = host.commit_target() if proposal is not None else None
        if target is None:
            return
        labels, value = target
        host.commits.commit_slice(labels, L.labels_key(labels.ndim, self.z, self.axis), proposal.mask, value,
                                  host.overwrite_check.isChecked())
        host.propagation.on_slice_committed(self.z)
        del self.proposals[pid]
        self._draw()

    def clear(self) -> None:
        """Remove the proposals and their layer."""
        self.proposals = {}
        layer, self.layer = self.layer, None
        if layer is not None and layer in self.host.viewer.layers:
            self.host.viewer.layers.remove(layer)

    def _on_layer_removed(self, event) -> None:
        if event.value is self.layer:
            self.layer, self.proposals = None, {}
        elif event.value is self.image:  # their image went: so do they
            self.image = None
            self.clear()

    def _on_image_changed(self) -> None:
        if self.image is not None and self.host.settings.image_combo.currentText() != self.image.name:
            self.clear()
