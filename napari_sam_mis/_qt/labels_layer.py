"""The labels layers the widget commits into: which layers fit the image, a new one for it, and
the label list stored on one."""
from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_warning

from napari_sam_mis._napari import layers as L
from napari_sam_mis._napari.keys import ROLE_KEY, SEGMENTS_KEY


def fitting_labels_layers(viewer, image_layer, grid_shape, own_layers) -> list[str]:
    """Names of the labels layers on the image's grid (same shape, and each voxel index at the same
    place in the world), without this plugin's own layers."""
    import napari.layers as nl

    if grid_shape is None:
        return []
    return [lyr.name for lyr in viewer.layers
            if isinstance(lyr, nl.Labels) and lyr not in own_layers and ROLE_KEY not in lyr.metadata
            and tuple(lyr.data.shape) == grid_shape and _same_placement(lyr, image_layer, grid_shape)]


def _same_placement(layer, image_layer, grid_shape) -> bool:
    """The grid's corner voxels land on the same world points in both layers (within 0.01 mm)."""
    corners = np.array(np.meshgrid(*[(0, n - 1) for n in grid_shape], indexing="ij")).reshape(len(grid_shape), -1).T
    return all(np.allclose(layer.data_to_world(c), image_layer.data_to_world(c), atol=1e-2) for c in corners)


def add_labels_layer(viewer, image_layer, grid_shape, below):
    """A new, empty labels layer on the image's grid, placed under the layer ``below``."""
    layer = viewer.add_labels(np.zeros(grid_shape, np.uint16), name=f"{image_layer.name} labels",
                              **L.geometry_kwargs(image_layer), opacity=0.5)
    viewer.layers.move(viewer.layers.index(layer), viewer.layers.index(below))
    return layer


def prepare_labels_layer(layer):
    """Make the layer's data a writable array; return the label list stored on it, or None."""
    if not isinstance(layer.data, np.ndarray) or not layer.data.flags.writeable:
        layer.data = np.array(layer.data)
    meta = layer.metadata.get(SEGMENTS_KEY)
    if not (isinstance(meta, dict) and meta):
        return None
    try:
        return L.label_list_from_segments(meta)
    except (ValueError, KeyError, TypeError) as exc:
        show_warning(f"SAM: ignoring the label list stored on {layer.name!r}: {exc}")
        return None
