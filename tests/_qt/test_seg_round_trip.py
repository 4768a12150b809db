"""A DICOM-SEG opened in napari lands on its source series, can be picked for that image in the
widget, saved back as DICOM-SEG, and reopens on all the series' slices with its names."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from ..helpers import DATA, need

CASE = DATA / "dcmqi_ct3slice_liver_seg"


def test_seg_opens_on_its_series_and_saves_back_as_seg(make_napari_viewer, qtbot, tmp_path):
    import napari.layers

    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    case = tmp_path / "case"
    shutil.copytree(need(CASE / "ct"), case / "ct")
    shutil.copy(need(CASE / "liver_seg.dcm"), case / "liver_seg.dcm")
    viewer = make_napari_viewer()
    viewer.open(str(case / "ct"), plugin="napari-sam-mis")
    viewer.open(str(case / "liver_seg.dcm"), plugin="napari-sam-mis")
    seg_layer = viewer.layers["liver_seg"]
    assert isinstance(seg_layer, napari.layers.Labels) and seg_layer.data.shape == (3, 512, 512)
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    assert widget.settings.labels_combo.findText("liver_seg") >= 0, "the SEG is offered for its image"
    widget.settings.labels_combo.setCurrentText("liver_seg")
    assert widget.labels_layer is seg_layer
    names = {s.value: s.name for s in widget.label_list}
    seg_layer.data[1, :4, :4] = 1  # an edit
    out = case / "edited_seg.dcm"
    assert seg_layer.save(str(out), plugin="napari-sam-mis"), "a SEG-opened layer saves back as DICOM-SEG"

    viewer.layers.remove(seg_layer)
    viewer.open(str(out), plugin="napari-sam-mis")
    back = viewer.layers["edited_seg"]
    assert back.data.shape == (3, 512, 512) and np.array_equal(back.data > 0, seg_layer.data > 0)
    assert {int(k): v["name"] for k, v in back.metadata["segments"].items()} == names


def test_a_seg_on_a_grid_in_another_slice_order_is_not_offered(make_napari_viewer, qtbot, tmp_path):
    """Alone, this SEG opens on its own grid, whose slices run the other way than the series':
    committing slice z into it would land on another slice, so the widget does not offer it."""
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    alone = tmp_path / "liver_seg.dcm"
    shutil.copy(need(CASE / "liver_seg.dcm"), alone)
    viewer = make_napari_viewer()
    viewer.open(str(need(CASE / "ct")), plugin="napari-sam-mis")
    viewer.open(str(alone), plugin="napari-sam-mis")
    seg_layer = viewer.layers["liver_seg"]
    assert not seg_layer.metadata["volume"].meta.get("dicom_datasets"), "on its own grid"
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    assert seg_layer.data.shape == widget.image_layer.data.shape
    assert widget.settings.labels_combo.findText("liver_seg") == -1
