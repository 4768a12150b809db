"""Where the box's mask is unsure, drawn over the slice, and the click that would settle it
(``annotate/uncertainty.py``): an optional overlay layer, and a button that places the suggested
click (which then refines the mask like any click)."""
from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QWidget

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY


class UncertaintyPanel(QWidget):
    def __init__(self, host, parent=None):
        super().__init__(parent)
        self.host = host  # the AnnotateWidget: viewer, image layer, session, prompts, current slice
        self.layer = None  # the overlay, made when first shown
        self.show_check = QCheckBox("show uncertainty")
        self.show_check.setToolTip("Where an ensemble of slightly moved boxes disagrees about the mask (bright: unsure)")
        self.show_check.toggled.connect(self._on_toggled)
        self.suggest_btn = QPushButton("Next click here")
        self.suggest_btn.setToolTip("Add a click in the middle of the most unsure region, with the sign most of the "
                                    "ensemble gives it")
        self.suggest_btn.clicked.connect(self.suggest)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.show_check)
        row.addWidget(self.suggest_btn)

    def compute(self, z: int, box):
        """The uncertainty of ``box`` on slice z (drawn when the overlay is on)."""
        unc = self.host.session.uncertainty(z, box)
        if self.show_check.isChecked():
            self._draw(z, unc.map)
        return unc

    def update(self, z: int, prompt) -> None:
        """A prompt was decoded (or the overlay turned on) on slice z: redraw the overlay if it is on."""
        session = self.host.session
        if self.show_check.isChecked() and prompt.box is not None and session is not None and session.has_embedding(z):
            self.compute(z, prompt.box)

    def suggest(self):
        """Place the suggested click on the slice shown; returns ((row, col), sign) or None."""
        host = self.host
        z = host.current_z()
        box = host.prompts.prompt(z).box if host.prompts is not None else None
        if host.session is None or box is None or not host.session.has_embedding(z):
            show_info("SAM: draw a box first (and wait for the slice's embedding)")
            return None
        click = self.compute(z, box).next_click()
        if click is None:
            show_info("SAM: the ensemble agrees everywhere on this slice: no click suggested")
            return None
        (r, c), sign = click
        points = host.prompts.points_layer
        points.feature_defaults = {"positive": bool(sign)}
        points.add([L.slice_point(z, r, c, points.ndim, host.axis)])
        points.feature_defaults = {"positive": not host.negative_check.isChecked()}
        show_info(f"SAM: suggested {'positive' if sign else 'negative'} click at row {r:.0f}, col {c:.0f}")
        return click

    def _draw(self, z: int, values: np.ndarray) -> None:
        host = self.host
        if self.layer is None or self.layer not in host.viewer.layers:
            self.layer = host.viewer.add_image(np.zeros(L.grid_shape(host.image_layer), np.uint8),
                                               name=f"{host.image_layer.name} SAM uncertainty", colormap="inferno",
                                               blending="additive", opacity=0.6, contrast_limits=(0, 255),
                                               metadata={ROLE_KEY: "uncertainty"}, **L.geometry_kwargs(host.image_layer))
        data = self.layer.data
        data[...] = 0
        data[L.labels_key(data.ndim, z, host.axis)] = np.round(255 * values).astype(np.uint8)
        self.layer.refresh()

    def _on_toggled(self, on: bool) -> None:
        if not on and self.layer is not None:
            self.layer.visible = False
            return
        if self.layer is not None:
            self.layer.visible = True
        if self.host.prompts is not None:
            z = self.host.current_z()
            self.update(z, self.host.prompts.prompt(z))
