"""Open napari with the SAM annotation widget docked (``python -m napari_sam_mis``-style entry)."""
from __future__ import annotations

from pathlib import Path

from napari_sam_mis.io.formats import is_raster


def launch(path=None, block: bool = True):
    """Open a viewer with the widget docked; returns (viewer, widget).

    No ``path``: the synthetic abdominal CT phantom. A NIfTI or NRRD file or a DICOM folder opens with
    this plugin's reader; PNG/TIFF/JPEG images with napari's own readers.
    """
    if path is not None:  # before any window opens: a wrong path is a one-line error
        _check_openable(Path(path))
    from napari_sam_mis._qt.torch_guard import import_torch_early

    import_torch_early()  # before the viewer creates its OpenGL context (see torch_guard)
    import napari

    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = napari.Viewer(title="napari-sam-mis")
    if path is None:
        viewer.open_sample("napari-sam-mis", "abdomen_phantom")
    else:
        p = Path(path)
        if is_raster(p):
            viewer.open(str(p), plugin="napari")
        else:
            viewer.open(str(p), plugin="napari-sam-mis")
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    if block:
        napari.run()
    return viewer, widget


def _check_openable(p: Path) -> None:
    from napari_sam_mis._napari.readers import napari_get_reader
    from napari_sam_mis.errors import InputError

    if not p.exists():
        raise InputError(p, "no such file or folder")
    if not is_raster(p) and napari_get_reader(str(p)) is None:
        raise InputError(p, "not an image this plugin opens (NIfTI, NRRD, DICOM folder or file, CVPR24 .npz) "
                            "nor a PNG/JPEG/TIFF")
