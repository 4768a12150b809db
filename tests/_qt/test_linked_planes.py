"""Linked three-plane views: the axial, coronal and sagittal planes of the image and its labels
side by side in a second window, on the same voxels (no copy), at the places the main viewer
shows them, with a crosshair that follows the main viewer's slice and moves it."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_sam_mis._qt.torch_guard import import_torch_early

import_torch_early()  # before any viewer creates a GL context (see torch_guard)

from ..helpers import SPLEEN_CT, SPLEEN_LABEL, need


def test_three_planes_follow_the_main_viewer(make_napari_viewer, qtbot):
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = make_napari_viewer()
    viewer.open(str(need(SPLEEN_CT)), plugin="napari-sam-mis")
    viewer.open(str(need(SPLEEN_LABEL)), plugin="napari-sam-mis")
    image, labels = viewer.layers["spleen2_ct"], viewer.layers["spleen2_label"]
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    widget.settings.labels_combo.setCurrentText("spleen2_label")
    widget.views.linked_btn.click()
    linked = widget.views.linked
    try:
        assert linked is not None and linked.viewer.grid.enabled and len(linked.viewer.layers) == 9
        for layer in linked.viewer.layers:
            if "crosshair" not in layer.name:
                source = image if layer.name.endswith("spleen2_ct") else labels
                assert np.shares_memory(layer.data, source.data), layer.name

        centre = labels.data_to_world(np.argwhere(labels.data > 0).mean(axis=0))
        for k in range(3):
            viewer.dims.set_point(k, centre[k])
        assert np.allclose(linked.point, viewer.dims.point[-3:])

        # each plane shows, at the crosshair, the voxel the main viewer has there
        zyx = np.round(image.world_to_data(linked.point)).astype(int)
        expected = image.data[tuple(zyx)]
        world = np.asarray(image.data_to_world(zyx))
        for cross, plane, rows, cols, (row_origin, col_origin) in linked.crosshairs:
            step_r, step_c = plane.scale[3], plane.scale[4]
            r = int(round((world[rows] - row_origin) / step_r))
            c = int(round((world[cols] - col_origin) / step_c))
            index = [0, 0, 0, r, c]
            sliced = next(k for k in range(3) if k not in (rows, cols))
            index[sliced] = int(round((world[sliced] - plane.translate[sliced]) / plane.scale[sliced]))
            assert plane.data[tuple(index)] == expected, plane.name
            assert len(cross.data) == 2, "two crosshair lines"

        # head up: the coronal and sagittal planes' first row is the most superior slice (the main
        # viewer's world axis 0 runs superior -> inferior), and rows go down from there
        top = min(image.data_to_world([z, 0, 0])[0] for z in (0, image.data.shape[0] - 1))
        for _, plane, rows, _, (row_origin, _) in linked.crosshairs:
            if rows == 0:
                assert row_origin == pytest.approx(top) and plane.scale[3] > 0, plane.name

        linked.viewer.dims.set_point(0, centre[0] + 10)  # a slider in the linked window moves the main viewer
        assert viewer.dims.point[-3] == pytest.approx(linked.point[0])
    finally:
        linked.viewer.close()
