"""'Tune decoder on my labels' from napari: the labels drawn on an open image train the decoder in
a worker, Cancel stops it with a checkpoint, Tune resumes it, the held-back Dice before and after is
shown, and the annotation widget then offers the tuned model by its name."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from ..helpers import SPLEEN_CT, SPLEEN_LABEL, need


def test_tune_cancel_resume_and_pick_the_tuned_model(make_napari_viewer, qtbot):
    from napari_sam_mis.io.nifti import read_nifti

    ct, gt = read_nifti(need(SPLEEN_CT)), read_nifti(need(SPLEEN_LABEL)).array > 0
    zs = np.sort(np.argsort(gt.sum(axis=(1, 2)))[-4:])  # four labelled slices: two trained, two held back
    viewer = make_napari_viewer()
    viewer.add_image(ct.array[zs], name="spleen", scale=ct.spacing)
    viewer.add_labels(gt[zs].astype(np.int32), name="my labels", scale=ct.spacing)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam-mis", "Tune decoder on my labels")
    assert widget.table.rowCount() == 1 and widget.table.cellWidget(0, 1).currentText() == "my labels"
    assert widget.name_edit.text() == "tuned-spleen" and widget.start_combo.currentText() == "litemedsam_clicks"
    widget.steps_spin.setValue(10)

    stopped = []
    widget._reports.progressed.connect(lambda p: p.stage == "train" and not stopped and (stopped.append(p.done),
                                                                                         widget.cancel_btn.click()))
    widget.tune_btn.click()
    assert not widget.tune_btn.isEnabled() and widget.cancel_btn.isEnabled()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=600_000)
    assert stopped and "stopped at step" in widget.status.text()
    assert widget.tune_btn.text() == "Resume tuning"

    widget.tune_btn.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=600_000)
    result = widget.result
    assert result["steps_done"] == 10 and result["resumed_from"] >= 1
    assert "held-back slices (2): box" in widget.status.text() and "->" in widget.status.text()
    assert widget.tune_btn.text() == "Tune decoder on my labels"

    _, annotate = viewer.window.add_plugin_dock_widget("napari-sam-mis", "SAM annotation")
    combo = annotate.settings.model_combo
    combo.fill()
    assert combo.findText("tuned-spleen") >= 0
    combo.setCurrentText("tuned-spleen")
    qtbot.waitUntil(lambda: annotate.engine is not None and annotate.engine.name == "tuned-spleen", timeout=120_000)
