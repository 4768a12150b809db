"""Nothing drawn is lost by a close: the work autosaves after each edit and comes back when the
same image is opened again: labels, label names, selected label, locks, prompts and window."""
from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from ..helpers import SPLEEN_CT, need
from .widget_helpers import Z, draw_box, gt_box, open_files, wait_embedded


def _autosaved(widget):
    return re.search(r"autosaved \d\d:\d\d:\d\d", widget.autosave.status.text()) is not None


def test_close_and_reopen_gives_back_labels_names_locks_prompts_and_window(make_napari_viewer, qtbot, spleen):
    _, gt = spleen
    viewer, widget = open_files(make_napari_viewer, need(SPLEEN_CT))
    wait_embedded(qtbot, widget)
    widget.settings.window_combo.setCurrentText("liver")
    widget.labels_widget.select_value(widget.label_list.by_name("spleen").value)
    spleen_value = widget.label_list.selected
    draw_box(widget, Z, gt_box(gt[Z]))
    qtbot.waitUntil(lambda: widget.preview_layer.data[Z].any(), timeout=10_000)
    widget.commit_btn.click()  # slice Z is committed, and so locked
    qtbot.waitUntil(lambda: _autosaved(widget), timeout=10_000)
    widget.labels_layer.paint((Z + 1, 5, 5), spleen_value)  # a brush stroke after the commit
    widget.points_layer.add([[Z + 2, 40.0, 50.0]])  # a click left on another slice
    saved = widget.labels_layer.data.copy()
    assert saved[Z].any() and saved[Z + 1, 5, 5] == spleen_value
    viewer.layers.remove(viewer.layers["spleen2_ct"])  # the user closes the image at once

    _, widget2 = open_files(make_napari_viewer, need(SPLEEN_CT))
    assert widget2.labels_layer is not None and np.array_equal(widget2.labels_layer.data, saved)
    assert widget2.label_list.get(spleen_value).name == "spleen" and widget2.label_list.selected == spleen_value
    assert Z in widget2.propagation.locks
    assert np.allclose(widget2.points_layer.data, [[Z + 2, 40.0, 50.0]])
    assert widget2.settings.window_combo.currentText() == "liver"
    assert widget2.prompts.prompt(Z).is_empty, "the committed slice's box went with its commit"
    assert "restored" in widget2.autosave.status.text()


def test_a_failed_autosave_is_said_once_and_the_work_stays(make_napari_viewer, qtbot, spleen, tmp_path, monkeypatch):
    blocker = tmp_path / "not a folder"
    blocker.write_text("a file where the sessions folder should be")
    monkeypatch.setenv("NAPARI_SAM_MIS_SESSIONS", str(blocker))
    viewer, widget = open_files(make_napari_viewer, need(SPLEEN_CT))
    qtbot.waitUntil(lambda: widget.labels_layer is not None, timeout=10_000)
    widget.labels_layer.paint((Z, 10, 10), 1)
    qtbot.waitUntil(lambda: "autosave failed" in widget.autosave.status.text(), timeout=10_000)
    assert widget.labels_layer.data[Z, 10, 10] == 1


def test_a_damaged_session_starts_afresh_and_forget_deletes_it(make_napari_viewer, qtbot, spleen):
    from napari_sam_mis.annotate.saved_session import session_folder

    ct, _ = spleen
    folder = session_folder(ct)
    folder.mkdir(parents=True)
    (folder / "session.json").write_text("{ broken")
    viewer, widget = open_files(make_napari_viewer, need(SPLEEN_CT))
    assert not widget.labels_layer.data.any() and "autosaved after each edit" in widget.autosave.status.text()
    widget.labels_layer.paint((Z, 10, 10), 1)
    qtbot.waitUntil(lambda: _autosaved(widget), timeout=10_000)
    assert (folder / "labels.nii.gz").exists()
    widget.autosave.forget_btn.click()
    assert not folder.exists() and widget.labels_layer.data[Z, 10, 10] == 1


def test_closing_the_viewer_saves_the_last_stroke(make_napari_viewer, qtbot, spleen):
    from napari_sam_mis.annotate.saved_session import load_session, session_folder

    ct, _ = spleen
    viewer, widget = open_files(make_napari_viewer, need(SPLEEN_CT))
    qtbot.waitUntil(lambda: widget.labels_layer is not None, timeout=10_000)
    widget.labels_layer.paint((Z, 20, 20), 3)
    viewer.close()  # before the autosave delay is over
    back = load_session(ct, session_folder(ct))
    assert back is not None and back.labels[Z, 20, 20] == 3
