"""Headless GUI test of the volume tools (propagation panel) on the real MSD spleen crop.

Run with ``xvfb-run -a python -m pytest tests/test_widget_propagation.py``: one box on the middle
slice -> propagate both ways within the spleen's slices -> commit all (one undo step) -> correct
one slice by hand -> re-propagate from it -> the corrected slice is kept, Dice does not fall.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early
from napari_sam_mis.annotate.geometry import dice

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from .widget_helpers import open_widget

RUN_TIMEOUT = 900_000  # ms: propagation embeds each slice it reaches; the CPU is slow and shared




def draw_box(widget, z, gt_slice):
    rr, cc = np.nonzero(gt_slice)
    r0, c0, r1, c1 = rr.min(), cc.min(), rr.max(), cc.max()
    corners = [[z, r0, c0], [z, r0, c1], [z, r1, c1], [z, r1, c0]]
    widget.shapes_layer.add_rectangles(np.array([corners], float))


def run_and_wait(qtbot, panel, button):
    button.click()
    assert panel.is_running
    qtbot.waitUntil(lambda: not panel.is_running, timeout=RUN_TIMEOUT)


def test_propagate_commit_correct_repropagate(make_napari_viewer, qtbot, spleen):
    vol, gt = spleen
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    lo, hi = int(zs.min()), int(zs.max())
    z0 = (lo + hi) // 2
    viewer, widget = open_widget(make_napari_viewer, qtbot, vol, z0)
    qtbot.waitUntil(lambda: widget.session is not None and widget.session.has_embedding(z0), timeout=RUN_TIMEOUT)
    widget.cancel_btn.click()  # propagation embeds the slices it needs itself
    panel = widget.propagation
    assert panel.to_spin.maximum() == vol.shape[0] - 1
    panel.from_spin.setValue(lo)
    panel.to_spin.setValue(hi)
    widget.labels_widget.select_value(widget.label_list.by_name("spleen").value)
    value = widget.label_list.selected

    draw_box(widget, z0, gt[z0])
    qtbot.waitUntil(lambda: widget.preview_layer.data[z0].any(), timeout=RUN_TIMEOUT)
    run_and_wait(qtbot, panel, panel.both_btn)
    # the whole range, but perhaps the spleen's tiny top slice (the mask halves there): then it says so
    assert set(range(lo, hi)) <= panel.previewed <= set(range(lo, hi + 1))
    assert panel.progress.value() == len(panel.previewed) - 1
    if hi not in panel.previewed:
        assert f"up: stopped at slice {hi}: " in panel.status.text()
    previewed = set(panel.previewed)
    labels = widget.labels_layer.data
    assert not labels.any(), "nothing is written before the commit"
    panel.commit_btn.click()
    assert not widget.preview_layer.data.any() and z0 in panel.locks
    first = labels.copy()
    d_first = dice(first == value, gt)
    print(f"one box on slice {z0} + propagation over {lo}..{hi}: Dice {d_first:.4f}")
    assert d_first >= 0.92  # 0.943 measured
    assert {int(z) for z in np.flatnonzero(first.any(axis=(1, 2)))} == previewed

    widget.undo()  # the whole propagation is one undo step
    assert not labels.any()
    widget.redo()
    assert np.array_equal(labels, first)

    # correct slice lo + 1: erase it (as with napari's eraser), draw a new box, commit (-> locked)
    c = lo + 1
    viewer.dims.set_current_step(0, c)
    labels[c][labels[c] == value] = 0
    draw_box(widget, c, gt[c])
    qtbot.waitUntil(lambda: widget.preview_layer.data[c].any(), timeout=RUN_TIMEOUT)
    widget.commit_btn.click()
    assert c in panel.locks and panel.lock_btn.isChecked()
    corrected = labels[c].copy()
    assert dice(corrected == value, gt[c]) > dice(first[c] == value, gt[c])

    run_and_wait(qtbot, panel, panel.down_btn)  # re-propagate from the corrected slice downwards
    assert panel.previewed == {lo}
    panel.commit_btn.click()
    assert np.array_equal(labels[c], corrected), "the corrected slice is kept exactly"
    assert np.array_equal(labels[c + 1 :], first[c + 1 :]), "slices above are untouched"
    d_after = dice(labels == value, gt)
    print(f"after correcting slice {c} and re-propagating: Dice {d_after:.4f}")
    assert d_after >= d_first

    # re-propagating upwards from the corrected slice stops before the locked reference slice
    run_and_wait(qtbot, panel, panel.up_btn)
    assert panel.previewed and max(panel.previewed) < z0


def test_propagation_says_where_it_stopped_and_can_go_on(make_napari_viewer, qtbot, spleen):
    """Without a range, propagation upwards from a small piece of the spleen stops where the
    mask jumps; the panel says where and why and offers to continue from there."""
    vol, gt = spleen
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    z0 = int(zs.max()) - 1
    viewer, widget = open_widget(make_napari_viewer, qtbot, vol, z0)
    qtbot.waitUntil(lambda: widget.session is not None and widget.session.has_embedding(z0), timeout=RUN_TIMEOUT)
    widget.cancel_btn.click()
    panel = widget.propagation
    draw_box(widget, z0, gt[z0])
    qtbot.waitUntil(lambda: widget.preview_layer.data[z0].any(), timeout=RUN_TIMEOUT)
    run_and_wait(qtbot, panel, panel.up_btn)
    text = panel.status.text()
    stop = panel.stops[1]
    print(text)
    assert "up: " in text and stop.message in text
    if stop.z is not None:
        assert f"stopped at slice {stop.z}" in text
    offered = not panel.continue_btn.isHidden()
    assert offered == (stop.reason in ("overlap", "score", "growth", "leak"))
    if offered:
        before = set(panel.previewed)
        run_and_wait(qtbot, panel, panel.continue_btn)
        assert stop.z in panel.previewed and before <= panel.previewed
    panel.commit_btn.click()
    assert panel.continue_btn.isHidden(), "after the commit there is nothing to continue"
    table = widget.label_table
    qtbot.waitUntil(lambda: sum(s.voxels for s in table.stats) == int((widget.labels_layer.data > 0).sum()),
                    timeout=5_000)
    assert len(table.stats) == 1 and table.stats[0].last_slice - table.stats[0].first_slice + 1 == len(
        np.flatnonzero(widget.labels_layer.data.any(axis=(1, 2))))
