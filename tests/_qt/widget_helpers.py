"""What the widget tests share: the spleen slice under test, opening the widget on a volume,
waiting for an embedding, and drawing prompts as a user does."""
from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

Z = 15  # the slice with the largest spleen cross-section
EMBED_TIMEOUT = 120_000  # ms: the CPU is slow and shared


def gt_box(gt_slice, margin=3):
    rr, cc = np.nonzero(gt_slice)
    return rr.min() - margin, cc.min() - margin, rr.max() + margin, cc.max() + margin


def open_widget(make_napari_viewer, qtbot, vol, z=Z):
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = make_napari_viewer()
    viewer.add_image(vol.array, scale=vol.spacing, metadata={"volume": vol}, name="spleen CT")
    viewer.dims.set_current_step(0, z)
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    return viewer, widget


def open_files(make_napari_viewer, *paths, z=Z):
    """A viewer with the files opened by this plugin's reader, on data slice z, and the widget docked."""
    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = make_napari_viewer()
    for path in paths:
        viewer.open(str(path), plugin="napari-sam-mis")
    # the reader's layers run head up (world axis 0 superior -> inferior): go to data slice z by its world position
    viewer.dims.set_point(0, viewer.layers[0].data_to_world([z, 0, 0])[0])
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    return viewer, widget


def wait_embedded(qtbot, widget, z=Z, cancel=True):
    qtbot.waitUntil(lambda: widget.session is not None and widget.session.has_embedding(z), timeout=EMBED_TIMEOUT)
    if cancel:  # save CPU: the test needs this slice only
        widget.cancel_btn.click()


def press(viewer, qtbot, key, modifier=Qt.NoModifier):
    """A key press on the canvas, as a user types it with the canvas focused."""
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, key, modifier)


def draw_box(widget, z, box):
    r0, c0, r1, c1 = box
    corners = [[z, r0, c0], [z, r0, c1], [z, r1, c1], [z, r1, c0]]
    widget.shapes_layer.add_rectangles(np.array([corners], float))


def open_with_box_preview(make_napari_viewer, qtbot, vol, gt):
    """The widget on slice Z with the spleen's box drawn and its preview shown."""
    viewer, widget = open_widget(make_napari_viewer, qtbot, vol)
    wait_embedded(qtbot, widget)
    draw_box(widget, Z, gt_box(gt[Z]))
    qtbot.waitUntil(lambda: widget.preview_layer.data[Z].any(), timeout=10_000)
    return viewer, widget
