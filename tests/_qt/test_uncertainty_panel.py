"""The uncertainty overlay over the box's preview, and the suggested click placed as a click."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from .widget_helpers import Z, open_with_box_preview


def test_overlay_and_suggested_click(make_napari_viewer, qtbot, spleen):
    ct, gt = spleen
    viewer, widget = open_with_box_preview(make_napari_viewer, qtbot, ct, gt)
    panel = widget.uncertainty
    panel.show_check.setChecked(True)
    overlay = panel.layer
    assert overlay is not None and overlay.data[Z].any() and not overlay.data[Z - 1].any()
    assert widget.settings.image_combo.findText(overlay.name) == -1, "the overlay is not offered as an image"
    click = panel.suggest()
    assert click is not None
    (r, c), sign = click
    points = widget.points_layer
    assert np.allclose(points.data[-1], [Z, r, c]) and bool(points.features["positive"].iloc[-1]) == bool(sign)
    qtbot.waitUntil(lambda: widget.preview_layer.data[Z].any(), timeout=10_000)
    panel.show_check.setChecked(False)
    assert not overlay.visible
