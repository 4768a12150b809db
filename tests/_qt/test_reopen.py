"""Saved work reopens: labels written by the plugin open as labels (names and all) on their image,
can be annotated further and saved over themselves; the brush paints the selected label."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from ..helpers import SPLEEN_CT, need
from .widget_helpers import Z, draw_box, gt_box, open_files, wait_embedded


def test_saved_labels_reopen_as_labels_and_save_over_themselves(make_napari_viewer, qtbot, spleen, tmp_path):
    import napari.layers

    _, gt = spleen
    viewer, widget = open_files(make_napari_viewer, need(SPLEEN_CT))
    wait_embedded(qtbot, widget)
    widget.labels_widget.select_value(widget.label_list.by_name("spleen").value)
    spleen_value = widget.label_list.selected
    assert widget.labels_layer.selected_label == spleen_value, "the brush paints the selected label"
    draw_box(widget, Z, gt_box(gt[Z]))
    qtbot.waitUntil(lambda: widget.preview_layer.data[Z].any(), timeout=10_000)
    widget.commit_btn.click()
    saved = widget.labels_layer.data.copy()
    out = tmp_path / "work.nii.gz"
    assert widget.labels_layer.save(str(out), plugin="napari-sam-mis")

    viewer2, widget2 = open_files(make_napari_viewer, need(SPLEEN_CT), out)
    reopened = viewer2.layers["work"]
    assert isinstance(reopened, napari.layers.Labels), "saved labels open as labels, not as an image"
    assert widget2.settings.image_combo.findText("work") == -1, "and are not offered as an image"
    widget2.settings.labels_combo.setCurrentText("work")
    assert widget2.labels_layer is reopened and np.array_equal(reopened.data, saved)
    assert widget2.label_list.get(spleen_value).name == "spleen"
    reopened.data[0, :3, :3] = spleen_value  # a brush edit
    assert reopened.save(str(out), plugin="napari-sam-mis"), "saving over the labels file itself works"
    from napari_sam_mis.io import read_labels
    from napari_sam_mis.io.nifti import label_grid

    back = read_labels(out, label_grid(out))
    assert back.array[0, :3, :3].all() and back.segments[spleen_value].name == "spleen"


def test_two_dimensional_labels_save(tmp_path):
    from napari_sam_mis.io import read_labels, write_labels
    from napari_sam_mis.volume import Volume

    image = Volume(np.zeros((1, 20, 30), np.uint8), windowed=True)
    labels = np.zeros((20, 30), np.uint8)
    labels[5:10, 5:15] = 1
    paths = write_labels(labels, image, tmp_path / "slice.nii.gz", segments={1: "lesion"})
    back = read_labels(paths[0], image)
    assert np.array_equal(back.array[0], labels) and back.segments[1].name == "lesion"
