"""The nnU-Net export from napari: open images paired with their labels layers, the classes shown
before writing, a dataset written that the CLI would write too, and clear refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from ..helpers import SPLEEN_CT, SPLEEN_LABEL, need


def test_export_from_the_plugin_menu_writes_a_dataset(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(need(SPLEEN_CT)), plugin="napari-sam-mis")
    viewer.open(str(need(SPLEEN_LABEL)), plugin="napari-sam-mis")  # a label map: opens as labels on its CT
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam-mis", "nnU-Net dataset export")
    assert widget.table.rowCount() == 1 and widget.table.cellWidget(0, 1).currentText() == "spleen2_label"
    assert "1 cases; classes: 1 label 1 (1 of 1 cases)" in widget.classes.text()
    widget.out_edit.setText(str(tmp_path))
    widget.name_edit.setText("Spleen")
    widget.export_btn.click()
    out = tmp_path / "Dataset501_Spleen"
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 1 and info["labels"] == {"background": 0, "label 1": 1}
    assert "written to" in widget.classes.text()
    widget.export_btn.click()  # again: the dataset exists
    assert "already exists" in widget.classes.text() and (out / "dataset.json").exists()


def test_export_refuses_empty_labels_and_says_so(make_napari_viewer, qtbot, tmp_path):
    from napari_sam_mis._qt.export_widget import ExportWidget

    viewer = make_napari_viewer()
    viewer.open(str(need(SPLEEN_CT)), plugin="napari-sam-mis")
    image = viewer.layers[0]
    viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="empty", scale=image.scale, affine=image.affine)
    widget = ExportWidget(viewer)
    assert widget.table.cellWidget(0, 1).currentText() == "empty"
    widget.out_edit.setText(str(tmp_path))
    assert widget.export() is None
    assert "labels are empty" in widget.classes.text() and not any(tmp_path.iterdir())


def test_export_with_sam_priors_runs_in_the_background_and_can_be_cancelled(make_napari_viewer, qtbot, tmp_path,
                                                                             monkeypatch):
    import nibabel as nib

    from napari_sam_mis._qt.export_widget import ExportWidget

    for src, name in ((SPLEEN_CT, "ct.nii.gz"), (SPLEEN_LABEL, "ct_label.nii.gz")):  # one slice: a fast test
        nib.save(nib.load(str(need(src))).slicer[:, :, 15:16], str(tmp_path / name))
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "ct.nii.gz"), plugin="napari-sam-mis")
    viewer.open(str(tmp_path / "ct_label.nii.gz"), plugin="napari-sam-mis")
    widget = ExportWidget(viewer)
    widget.out_edit.setText(str(tmp_path / "raw"))
    widget.priors_check.setChecked(True)
    assert widget.progress.isHidden()
    assert widget.export() is None and widget.worker is not None  # in the background
    assert not widget.export_btn.isEnabled() and not widget.progress.isHidden()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=300_000)
    assert "written to" in widget.classes.text(), widget.classes.text()
    assert widget.progress.value() == widget.progress.maximum() == 1 and widget.export_btn.isEnabled()
    info = json.loads((tmp_path / "raw" / "Dataset501_Annotations" / "dataset.json").read_text())
    assert info["channel_descriptions"] == {"0": "CT", "1": "sam_segmentation_prior", "2": "sam_boundary_prior"}

    monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(tmp_path / "fresh_cache"))  # nothing cached: the slice takes seconds
    widget.name_edit.setText("Cancelled")
    widget.export()
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=300_000)
    assert "cancelled" in widget.classes.text() and not (tmp_path / "raw" / "Dataset501_Cancelled").exists()
    assert widget.progress.isHidden()
