"""Putting arrays from another file onto a Volume's voxel grid when the grids differ only by axis order/flips."""
from __future__ import annotations

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.volume import Volume


def reorient_onto(arr: np.ndarray, affine: np.ndarray, volume: Volume, path, *, partial: bool = False) -> np.ndarray:
    """Reorient ``arr`` (first 3 axes on index->world ``affine``) onto ``volume``'s grid.

    Only axis permutations, flips and (with ``partial``) whole-voxel offsets are allowed, so no
    value is interpolated; anything else is refused. With ``partial`` the array may cover only
    part of the grid (e.g. a DICOM-SEG without its empty frames) and the rest is 0.
    """
    t = np.linalg.solve(volume.affine, affine)  # source index -> destination index
    rot = np.round(t[:3, :3])
    perm = [int(np.argmax(np.abs(rot[:, j]))) for j in range(3)]  # source axis j -> destination axis
    ok = np.abs(t[:3, :3] - rot).max() < 1e-3 and sorted(perm) == [0, 1, 2] and np.all(np.abs(rot).sum(0) == 1)
    if ok:
        flips = [rot[perm[j], j] < 0 for j in range(3)]
        for j in range(3):
            if flips[j]:
                arr = np.flip(arr, axis=j)
        inverse = [perm.index(d) for d in range(3)]
        arr = np.transpose(arr, inverse + list(range(3, arr.ndim)))
        # destination index of the (flipped) source's first voxel
        start = np.empty(3)
        for j in range(3):
            start[perm[j]] = t[perm[j], 3] - (arr.shape[perm[j]] - 1 if flips[j] else 0)
        ok = np.abs(start - np.round(start)).max() < 1e-2
        start = np.round(start).astype(int)
        end = start + np.array(arr.shape[:3])
        ok = ok and (np.array_equal(arr.shape[:3], volume.shape) and not start.any() if not partial
                     else start.min() >= 0 and np.all(end <= volume.shape))
    if not ok:
        raise InputError(path, f"labels grid (shape {arr.shape[:3]}, affine {np.round(affine, 3).tolist()}) does not "
                               f"match the image grid (shape {volume.shape}, affine {np.round(volume.affine, 3).tolist()});"
                               " resample the labels onto the image first")
    if not partial or (np.array_equal(arr.shape[:3], volume.shape) and not start.any()):
        return np.ascontiguousarray(arr)
    out = np.zeros(volume.shape + arr.shape[3:], dtype=arr.dtype)
    out[start[0]:end[0], start[1]:end[1], start[2]:end[2]] = arr
    return out
