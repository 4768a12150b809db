"""The labels layer reads like the label list: names on hover, labels shown or hidden one by one,
outlines on request; the brush paints the selected label."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from qtpy.QtCore import Qt

from .widget_helpers import Z, open_widget


def test_hover_names_hiding_and_contours(make_napari_viewer, qtbot, spleen):
    ct, _ = spleen
    viewer, widget = open_widget(make_napari_viewer, qtbot, ct)
    layer = widget.labels_layer
    liver, spleen_value = widget.label_list.by_name("liver").value, widget.label_list.by_name("spleen").value
    widget.labels_widget.select_value(spleen_value)
    assert layer.selected_label == spleen_value
    layer.paint((Z, 50, 50), spleen_value)  # the brush, with the selected label
    layer.data[Z, 10:12, 10:12] = liver
    status = layer.get_status(layer.data_to_world((Z, 50, 50)), world=True)
    assert "name: spleen" in status["coordinates"], status

    item = widget.labels_widget.list.item(0)
    assert int(item.data(Qt.UserRole)) == liver and item.checkState() == Qt.Checked
    item.setCheckState(Qt.Unchecked)  # as a click on the tick does
    assert layer.colormap.map(np.array([liver]))[0][3] == 0, "a hidden label is not drawn"
    assert layer.colormap.map(np.array([spleen_value]))[0][3] > 0 and layer.data[Z, 10, 10] == liver
    widget.labels_widget.set_shown(liver, True)
    assert layer.colormap.map(np.array([liver]))[0][3] > 0
    widget.labels_widget.contour_check.setChecked(True)
    assert layer.contour == 1
    widget.labels_widget.contour_check.setChecked(False)
    assert layer.contour == 0


def test_ctrl_z_on_the_labels_layer_undoes_brush_strokes_then_commits(make_napari_viewer, qtbot, spleen):
    from .widget_helpers import press

    ct, _ = spleen
    viewer, widget = open_widget(make_napari_viewer, qtbot, ct)
    layer = widget.labels_layer
    mask = np.zeros(layer.data.shape[1:], bool)
    mask[40:60, 40:60] = True
    widget.commits.commit_slice(layer, (Z,), mask, 2, False)  # what Enter does with a preview
    layer.paint((Z, 5, 5), 3)  # then a brush stroke
    viewer.layers.selection.active = layer
    press(viewer, qtbot, Qt.Key_Z, Qt.ControlModifier)
    assert layer.data[Z, 5, 5] == 0 and layer.data[Z, 50, 50] == 2, "the brush stroke first"
    press(viewer, qtbot, Qt.Key_Z, Qt.ControlModifier)
    assert not layer.data.any(), "then the commit"
    press(viewer, qtbot, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert layer.data[Z, 5, 5] == 3, "redo: the brush stroke comes back first"
