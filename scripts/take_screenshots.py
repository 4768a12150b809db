"""Screenshots for the docs: the widget docked beside the spleen CT with a box prompt and its mask,
the committed slice, one click on another slice, then the volume propagated from the box, and the
session restored when the image is opened again; one click on a DeepLesion lesion; the uncertainty overlay with its suggested click; the three
planes with their orientation letters; the automatic proposals of a DeepLesion slice, one accepted;
a lone click next to a committed slice of the abdominal MR's liver, bounded by it.
Run under a (virtual) display:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/take_screenshots.py [OUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPLEEN = ROOT.parent / "shared" / "data" / "msd_spleen_crop"
LESION = ROOT.parent / "shared" / "data" / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz"
ABDOMEN_MR = ROOT.parent / "shared" / "data" / "totalseg_mr_example"
Z = 15  # the slice with the largest spleen cross-section


def wait(app, condition, timeout_s: float = 300.0) -> None:
    import time

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 1.5) -> None:
    """Let Qt lay the window out (a dock added a moment ago) before a screenshot."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def close_toasts(viewer) -> None:
    """Close notification pop-ups so they don't cover the canvas."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()


def shoot(viewer, out_dir: Path, name: str) -> None:
    """The whole window (docks included) as out_dir/name, without notification toasts."""
    close_toasts(viewer)
    out_dir.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out_dir / name), canvas_only=False)


def docked(vol, name: str, z: int):
    """A viewer with ``vol`` as an image layer on slice z and the widget docked: (viewer, widget, app)."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = napari.Viewer(title="napari-sam-mis")
    viewer.window._qt_window.resize(1500, 950)
    viewer.add_image(vol.array, scale=vol.spacing, metadata={"volume": vol}, name=name)
    viewer.dims.set_current_step(0, z)
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    return viewer, widget, QApplication.instance()


def main(out_dir: Path) -> None:
    from napari_sam_mis._qt.torch_guard import import_torch_early

    import_torch_early()
    from napari_sam_mis.evaluation.simulate import farthest_interior_point
    from napari_sam_mis.io import read_volume

    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    gt = read_volume(SPLEEN / "spleen2_label.nii.gz").array > 0
    viewer, widget, app = docked(vol, "spleen2_ct", Z)
    wait(app, lambda: widget.session is not None and widget.session.has_embedding(Z))
    wait(app, lambda: widget.worker is None)  # every slice embedded: the status line says so
    widget.labels_widget.select_value(widget.label_list.by_name("spleen").value)

    rr, cc = np.nonzero(gt[Z])
    r0, c0, r1, c1 = rr.min() - 3, cc.min() - 3, rr.max() + 3, cc.max() + 3
    corners = [[Z, r0, c0], [Z, r0, c1], [Z, r1, c1], [Z, r1, c0]]
    widget.shapes_layer.add_rectangles(np.array([corners], float))
    wait(app, lambda: widget.preview_layer.data[Z].any())
    viewer.reset_view()
    shoot(viewer, out_dir, "widget_box_prompt.png")

    widget.commit()
    shoot(viewer, out_dir, "widget_committed.png")

    # one click on another slice: the click path of annotate/clicks.py
    zc = Z + 3
    viewer.dims.set_current_step(0, zc)
    wait(app, lambda: widget.session.has_embedding(zc))
    widget.points_layer.add(np.array([[zc, *farthest_interior_point(gt[zc])]], float))
    wait(app, lambda: widget.preview_layer.data[zc].any())
    shoot(viewer, out_dir, "widget_click.png")
    widget.clear_prompts()
    viewer.dims.set_current_step(0, Z)

    panel = widget.propagation
    panel.propagate(direction=0)
    wait(app, lambda: not panel.is_running and panel.previewed, timeout_s=900)
    viewer.dims.set_current_step(0, Z - 6)
    shoot(viewer, out_dir, "widget_propagated.png")
    panel.commit_all()  # the label table follows the commit
    committed = int((widget.labels_layer.data > 0).sum())
    wait(app, lambda: sum(st.voxels for st in widget.label_table.stats) == committed)
    shoot(viewer, out_dir, "widget_label_table.png")
    viewer.close()  # the session is saved on the way out

    viewer, widget, app = docked(vol, "spleen2_ct", Z - 6)
    wait(app, lambda: widget.labels_layer is not None and widget.labels_layer.data.any())
    settle(app)
    viewer.reset_view()
    shoot(viewer, out_dir, "widget_session_restored.png")
    viewer.close()
    lesion_click(out_dir)
    uncertainty_overlay(out_dir)
    three_views(out_dir)
    proposals(out_dir)
    neighbour_click(out_dir)
    small_vessel_click(out_dir)


def three_views(out_dir: Path) -> None:
    """Axial, coronal and sagittal canvases of the spleen CT opened with the reader, side by side;
    then the linked three-plane window with its crosshair."""
    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = napari.Viewer(title="napari-sam-mis")
    viewer.window._qt_window.resize(1500, 950)
    viewer.open(str(SPLEEN / "spleen2_ct.nii.gz"), plugin="napari-sam-mis")
    viewer.open(str(SPLEEN / "spleen2_label.nii.gz"), plugin="napari-sam-mis")
    labels = viewer.layers["spleen2_label"]
    labels.opacity = 0.4
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    widget.embedding.cancel()
    centre = labels.data_to_world(np.argwhere(labels.data > 0).mean(axis=0))
    shots = []
    for plane in ("Axial", "Coronal", "Sagittal"):
        widget.views.show_plane(plane)
        viewer.dims.set_point(viewer.dims.order[0], centre[viewer.dims.order[0]])
        viewer.reset_view()
        close_toasts(viewer)
        shots.append(viewer.screenshot(canvas_only=True))
    height = min(s.shape[0] for s in shots)
    Image.fromarray(np.hstack([s[:height] for s in shots])).save(out_dir / "views_three_planes.png")

    widget.views.show_plane("Axial")
    for k in range(3):
        viewer.dims.set_point(k, centre[k])
    linked = widget.views.open_linked()
    linked.viewer.window._qt_window.resize(1500, 650)
    linked.viewer.reset_view()
    settle(QApplication.instance())
    close_toasts(viewer)
    shoot(linked.viewer, out_dir, "linked_planes.png")
    linked.viewer.close()
    viewer.close()


def uncertainty_overlay(out_dir: Path) -> None:
    """The uncertainty overlay over the spleen's box mask, and the suggested click placed."""
    from napari_sam_mis.io import read_volume

    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    gt = read_volume(SPLEEN / "spleen2_label.nii.gz").array > 0
    viewer, widget, app = docked(vol, "spleen2_ct", Z)
    wait(app, lambda: widget.session is not None and widget.session.has_embedding(Z))
    widget.embedding.cancel()
    rr, cc = np.nonzero(gt[Z])
    r0, c0, r1, c1 = rr.min() - 3, cc.min() - 3, rr.max() + 3, cc.max() + 3
    widget.shapes_layer.add_rectangles(np.array([[[Z, r0, c0], [Z, r0, c1], [Z, r1, c1], [Z, r1, c0]]], float))
    wait(app, lambda: widget.preview_layer.data[Z].any())
    widget.preview_layer.opacity = 0.3
    widget.uncertainty.show_check.setChecked(True)
    widget.uncertainty.suggest()
    wait(app, lambda: widget.preview_layer.data[Z].any())
    viewer.reset_view()
    settle(app)
    shoot(viewer, out_dir, "uncertainty_overlay.png")
    viewer.close()


def lesion_docked():
    """DeepLesion 000009 docked on the lesion's largest slice, that slice embedded:
    (volume, lesion mask, z, viewer, widget, app)."""
    from napari_sam_mis.io import read_label_array, read_volume

    vol = read_volume(LESION)
    gt = read_label_array(LESION, vol) > 0
    z = int(np.argmax(gt.reshape(len(gt), -1).sum(axis=1)))
    viewer, widget, app = docked(vol, LESION.stem, z)
    wait(app, lambda: widget.session is not None and widget.session.has_embedding(z))
    return vol, gt, z, viewer, widget, app


def lesion_click(out_dir: Path) -> None:
    """One positive click on a lesion (the click path's candidates over a window of image tokens)."""

    from napari_sam_mis.evaluation.simulate import farthest_interior_point

    vol, gt, z, viewer, widget, app = lesion_docked()
    wait(app, lambda: widget.worker is None)  # every slice embedded
    widget.points_layer.add(np.array([[z, *farthest_interior_point(gt[z])]], float))
    wait(app, lambda: widget.preview_layer.data[z].any())
    rr, cc = np.nonzero(gt[z])
    viewer.camera.center = (0, rr.mean() * vol.spacing[1], cc.mean() * vol.spacing[2])
    viewer.camera.zoom = 2.5 * viewer.camera.zoom
    shoot(viewer, out_dir, "widget_click_lesion.png")
    viewer.close()


def proposals(out_dir: Path) -> None:
    """Propose on a DeepLesion slice: the proposals outlined, the lesion's accepted with a click."""
    from napari_sam_mis.annotate.geometry import iou

    vol, gt, z, viewer, widget, app = lesion_docked()
    widget.embedding.cancel()
    widget.labels_widget.select_value(widget.label_list.by_name("lesion").value)
    panel = widget.proposals
    panel.propose()
    wait(app, lambda: panel.worker is None and panel.layer is not None)
    lesion = max(panel.proposals, key=lambda pid: iou(panel.proposals[pid].mask, gt[z]))
    panel.accept(lesion)  # as a click inside its outline does
    viewer.reset_view()
    settle(app)
    shoot(viewer, out_dir, "proposals.png")
    viewer.close()


def neighbour_click(out_dir: Path) -> None:
    """The abdominal MR's liver committed from a box on slice 9, then one click on slice 8: the
    committed neighbour bounds the click's mask (annotate/neighbour_check.py)."""
    from napari_sam_mis.evaluation.simulate import farthest_interior_point
    from napari_sam_mis.io import read_label_array, read_volume

    vol = read_volume(ABDOMEN_MR / "example_mr_sm.nii.gz")
    vol.modality = "MR"
    gt = read_label_array(ABDOMEN_MR / "example_seg_mr.nii.gz", vol) == 5
    viewer, widget, app = docked(vol, "example_mr_sm", 9)
    wait(app, lambda: widget.session is not None and widget.session.has_embedding(9))
    rr, cc = np.nonzero(gt[9])
    corners = [[9, rr.min() - 1, cc.min() - 1], [9, rr.min() - 1, cc.max() + 1], [9, rr.max() + 1, cc.max() + 1],
               [9, rr.max() + 1, cc.min() - 1]]
    widget.shapes_layer.add_rectangles(np.array([corners], float))
    wait(app, lambda: widget.preview_layer.data[9].any())
    widget.commit()
    viewer.dims.set_current_step(0, 8)
    wait(app, lambda: widget.session.has_embedding(8))
    widget.points_layer.add(np.array([[8, *farthest_interior_point(gt[8])]], float))
    wait(app, lambda: widget.preview_layer.data[8].any())
    viewer.reset_view()
    settle(app)
    shoot(viewer, out_dir, "widget_click_next_to_committed.png")
    viewer.close()


def small_vessel_click(out_dir: Path) -> None:
    """One click on the abdominal MR's portal/splenic vein (slice 11): the candidate boxes' mask
    leaked, the click-trained decoder's mask is shown (the leak check of annotate/clicks.py)."""
    from napari_sam_mis.evaluation.simulate import farthest_interior_point
    from napari_sam_mis.io import read_label_array, read_volume

    vol = read_volume(ABDOMEN_MR / "example_mr_sm.nii.gz")
    vol.modality = "MR"
    gt = read_label_array(ABDOMEN_MR / "example_seg_mr.nii.gz", vol) == 25
    viewer, widget, app = docked(vol, "example_mr_sm", 11)
    wait(app, lambda: widget.session is not None and widget.session.has_embedding(11))
    widget.labels_widget.select_value(widget.labels_widget.add_label("portal/splenic vein", "#00e5ff"))
    widget.points_layer.add(np.array([[11, *farthest_interior_point(gt[11])]], float))
    wait(app, lambda: widget.preview_layer.data[11].any())
    rr, cc = np.nonzero(gt[11])
    viewer.camera.center = (0, rr.mean() * vol.spacing[1], cc.mean() * vol.spacing[2])
    viewer.camera.zoom = 1.2 * viewer.camera.zoom
    settle(app)
    shoot(viewer, out_dir, "widget_click_small_vessel.png")
    viewer.close()


if __name__ == "__main__":
    import os
    import tempfile

    os.environ["NAPARI_SAM_MIS_SESSIONS"] = tempfile.mkdtemp()  # never the user's own sessions
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images")
