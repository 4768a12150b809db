"""Proposals in the dock widget, as a user: Propose on the spleen slice, click inside the spleen's
outline on the canvas -> the spleen is committed under the selected label; Ctrl+Z takes it back;
Clear proposals and closing the image remove the helper layer."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from qtpy.QtCore import QPoint, Qt
from scipy import ndimage

from napari_sam_mis.annotate.geometry import iou

from .widget_helpers import EMBED_TIMEOUT, Z, open_widget, press, wait_embedded


def click_canvas(viewer, qtbot, data_point, layer):
    """A left click on the canvas where ``data_point`` (z, row, col) of ``layer`` is drawn."""
    canvas = viewer.window._qt_viewer.canvas
    world = np.asarray(layer.data_to_world(data_point))
    displayed = list(viewer.dims.displayed)
    transform = canvas.view.transform * canvas.view.scene.transform
    x, y = transform.map(list(world[displayed][::-1]))[:2]
    qtbot.mouseClick(canvas.native, Qt.LeftButton, pos=QPoint(int(round(x)), int(round(y))))


def _proposed(make_napari_viewer, qtbot, ct):
    """The widget docked on ``ct``, every slice embedded, Propose pressed and its proposals shown."""
    viewer, widget = open_widget(make_napari_viewer, qtbot, ct)
    wait_embedded(qtbot, widget)
    panel = widget.proposals
    panel.propose_btn.click()
    qtbot.waitUntil(lambda: panel.worker is None and panel.layer is not None, timeout=EMBED_TIMEOUT)
    return viewer, widget, panel


def test_propose_then_click_commits_the_spleen_and_ctrl_z_takes_it_back(make_napari_viewer, qtbot, spleen):
    ct, gt = spleen
    viewer, widget, panel = _proposed(make_napari_viewer, qtbot, ct)
    layer = panel.layer
    assert widget.settings.labels_combo.findText(layer.name) == -1, "not offered as a labels layer"
    assert widget.settings.image_combo.findText(layer.name) == -1
    assert viewer.layers.selection.active is layer and layer.contour > 0
    plane = layer.data[Z]
    best = max(panel.proposals, key=lambda pid: iou(panel.proposals[pid].mask, gt[Z]))
    assert iou(panel.proposals[best].mask, gt[Z]) >= 0.5
    inside = ndimage.distance_transform_edt(plane == best)  # the pixel deepest inside its outline
    r, c = np.unravel_index(int(np.argmax(inside)), inside.shape)

    qtbot.waitExposed(viewer.window._qt_viewer.canvas.native)
    click_canvas(viewer, qtbot, (Z, r, c), layer)
    labels, value = widget.labels_layer, widget.label_list.selected
    qtbot.waitUntil(lambda: (labels.data[Z] == value).any(), timeout=5_000)
    assert iou(labels.data[Z] == value, gt[Z]) >= 0.5
    assert not (labels.data[: Z] != 0).any() and not (labels.data[Z + 1 :] != 0).any()
    assert best not in panel.proposals and not (layer.data[Z] == best).any(), "the accepted one leaves"

    press(viewer, qtbot, Qt.Key_Z, Qt.ControlModifier)  # the proposals layer is still the selected one
    assert not labels.data.any(), "Ctrl+Z undid the accepted proposal"

    panel.clear_btn.click()
    assert panel.layer is None and layer not in viewer.layers


def test_the_proposals_go_with_their_image(make_napari_viewer, qtbot, spleen):
    ct, _ = spleen
    viewer, widget, panel = _proposed(make_napari_viewer, qtbot, ct)
    layer = panel.layer
    viewer.layers.remove(viewer.layers["spleen CT"])
    assert layer not in viewer.layers and panel.layer is None and not panel.proposals
