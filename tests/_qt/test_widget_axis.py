"""The widget annotates in the plane napari shows: coronal view -> coronal session and preview.

Run with ``xvfb-run -a python -m pytest tests/test_widget_axis.py``. Real MSD spleen crop and
the real LiteMedSAM; only the slices under test are embedded.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early
from napari_sam_mis.annotate.geometry import dice

from ..helpers import SPLEEN_CT, SPLEEN_LABEL, need

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

EMBED_TIMEOUT = 180_000  # ms: the CPU is slow and shared




def stop_embedding(qtbot, widget) -> None:
    """Cancel the background job and wait until its thread is done (saves CPU, clean teardown)."""
    worker = widget.worker
    widget.cancel_btn.click()
    if worker is not None:
        qtbot.waitUntil(lambda: not worker.is_running, timeout=EMBED_TIMEOUT)


def test_coronal_view_box_previews_on_that_plane(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_sam_mis._napari import layers as L
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget
    from napari_sam_mis.io.nifti import read_nifti

    monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(tmp_path / "cache"))
    vol = read_nifti(need(SPLEEN_CT))
    gt = read_nifti(need(SPLEEN_LABEL)).array > 0
    y = int(gt.sum(axis=(0, 2)).argmax())  # the coronal slice with the largest spleen section

    viewer = make_napari_viewer()
    viewer.add_image(vol.array, scale=vol.spacing, metadata={"volume": vol}, name="spleen CT")
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    qtbot.waitUntil(lambda: widget.session is not None, timeout=EMBED_TIMEOUT)
    stop_embedding(qtbot, widget)  # the axial slices are not needed here
    assert widget.axis == 0 and widget.session.axis == 0

    viewer.dims.order = (1, 0, 2)  # napari slices the y axis: a coronal view of (z, x)
    viewer.dims.set_current_step(1, y)
    assert L.sliced_axis(viewer, widget.image_layer) == 1
    assert widget.axis == 1 and widget.session.axis == 1 and widget.session.n_slices == vol.shape[1]
    assert widget.current_z() == y and not widget.prompts.warned_3d_view

    rows, cols = np.nonzero(gt[:, y, :])
    r0, c0, r1, c1 = rows.min(), cols.min(), rows.max(), cols.max()
    corners = [[r0, y, c0], [r0, y, c1], [r1, y, c1], [r1, y, c0]]  # (z, y, x) data coordinates
    widget.shapes_layer.add_rectangles(np.array([corners], float))
    assert L.prompt_for_slice(widget.points_layer, widget.shapes_layer, y, axis=1).box == (r0, c0, r1, c1)

    qtbot.waitUntil(lambda: widget.preview_layer.data[:, y, :].any(), timeout=EMBED_TIMEOUT)
    stop_embedding(qtbot, widget)
    preview = widget.preview_layer.data
    d = dice(preview[:, y, :] > 0, gt[:, y, :])
    print(f"coronal slice {y}: Dice {d:.4f}")
    assert d >= 0.85
    assert preview.sum() == preview[:, y, :].sum(), "the preview lies on the coronal plane only"
    assert widget.session.has_embedding(y) and list((tmp_path / "cache").glob("*/*.npy")), "cached on disk"

    labels = widget.labels_layer
    widget.commit()  # into the coronal plane of the (z, y, x) labels
    assert dice(labels.data[:, y, :] > 0, gt[:, y, :]) == pytest.approx(d)
    assert labels.data.sum() == labels.data[:, y, :].sum() > 0
    widget.undo()
    assert not labels.data.any()
    widget.redo()
    assert dice(labels.data[:, y, :] > 0, gt[:, y, :]) == pytest.approx(d)

    coronal = widget.session
    viewer.dims.order = (0, 1, 2)  # back to axial: the axial session again
    assert widget.axis == 0 and widget.session.axis == 0
    stop_embedding(qtbot, widget)
    viewer.dims.order = (1, 0, 2)
    assert widget.session is coronal, "one session per axis, kept while the window is the same"
    stop_embedding(qtbot, widget)

    viewer.dims.ndisplay = 3
    assert widget.prompts.warned_3d_view  # no prompts in a 3D view
    viewer.dims.ndisplay = 2
    assert not widget.prompts.warned_3d_view and widget.axis == 1
    stop_embedding(qtbot, widget)


def test_view_buttons_switch_plane_and_session(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """Axial / Coronal / Sagittal buttons on an image opened with the reader: the view slices the
    anatomical axis asked for (head up in coronal and sagittal) and the widget follows it."""
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    viewer.open(str(need(SPLEEN_CT)), plugin="napari-sam-mis")
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    qtbot.waitUntil(lambda: widget.session is not None, timeout=EMBED_TIMEOUT)
    stop_embedding(qtbot, widget)
    layer = widget.image_layer
    for plane, axis in (("Coronal", 1), ("Sagittal", 2), ("Axial", 0)):
        widget.views.buttons[plane].click()
        qtbot.waitUntil(lambda a=axis: widget.axis == a and widget.session.axis == a, timeout=EMBED_TIMEOUT)
        stop_embedding(qtbot, widget)
        assert viewer.dims.order[0] == axis and viewer.dims.ndisplay == 2
        rows_axis = viewer.dims.order[1]
        if plane != "Axial":  # head up: the superior end of the volume is drawn at the top
            vol = widget.volume
            top = 0 if vol.affine[2, 0] < 0 else vol.shape[0] - 1  # array slice with the largest RAS z
            assert rows_axis == 0
            assert layer.data_to_world([top, 0, 0])[0] < layer.data_to_world([vol.shape[0] - 1 - top, 0, 0])[0]


def test_orientation_letters_name_the_patients_sides(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """The letters follow the plane shown and the camera; on the MSD spleen the spleen (patient's
    left) is drawn on the side marked L, and the head end of the volume on the side marked S."""
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget
    from napari_sam_mis.io.nifti import read_nifti

    viewer = make_napari_viewer()
    viewer.open(str(need(SPLEEN_CT)), plugin="napari-sam-mis")
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    letters = widget.views.letters.overlays

    def shown():
        return {edge: o.text for edge, o in letters.items() if o.visible}

    assert shown() == {"top_center": "A", "bottom_center": "P", "middle_left": "R", "middle_right": "L"}
    widget.views.buttons["Coronal"].click()
    assert shown() == {"top_center": "S", "bottom_center": "I", "middle_left": "R", "middle_right": "L"}
    widget.views.buttons["Sagittal"].click()
    assert shown() == {"top_center": "S", "bottom_center": "I", "middle_left": "A", "middle_right": "P"}
    viewer.camera.orientation2d = ("up", "right")
    assert shown()["top_center"] == "I"
    viewer.camera.orientation2d = ("down", "right")
    widget.views.buttons["Axial"].click()

    layer = viewer.layers["spleen2_ct"]
    gt = read_nifti(need(SPLEEN_LABEL)).array > 0
    centre = np.argwhere(gt).mean(axis=0)
    # the crop holds only the spleen, about 34 cm left of the scanner's isocentre (RAS x = 0, near
    # the body's midline); world columns grow to the screen's right, so it is drawn right of the
    # midline, on the side marked L
    assert layer.data_to_world(centre)[2] > 100
    vol = read_nifti(need(SPLEEN_CT))
    head = int(np.argmax(vol.affine[2, 0] * np.arange(vol.shape[0])))  # the slice with the largest RAS z
    foot = vol.shape[0] - 1 - head
    assert layer.data_to_world([head, 0, 0])[0] < layer.data_to_world([foot, 0, 0])[0], "S at the top"
    assert viewer.dims.axis_labels == ("S-I", "A-P", "R-L")
    viewer.layers.clear()
    assert shown() == {}


def test_header_panel_shows_the_series_and_warns_without_geometry(make_napari_viewer, qtbot):
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    from ..helpers import DATA

    viewer = make_napari_viewer()
    viewer.open(str(need(DATA / "dcmqi_ct3slice_liver_seg" / "ct")), plugin="napari-sam-mis")
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    rows = dict(widget.image_info.rows)
    assert {"patient", "study", "series", "grid", "modality"} <= set(rows) and "geometry" not in rows
    assert "<b>patient</b>" in widget.image_info.text()
    viewer.add_image(np.zeros((4, 32, 32), np.int16), name="bare pixels")
    widget.settings.image_combo.setCurrentText("bare pixels")
    assert widget.image_layer.name == "bare pixels"
    assert dict(widget.image_info.rows)["geometry"].startswith("none")
