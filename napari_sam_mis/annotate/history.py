"""Committing a mask into a label array, and an undo/redo stack of those commits (Qt-free).

Each commit is stored as a sparse diff (flat indices of the changed voxels of one slice, their
values before and after), so a deep history costs little memory. Undo and redo only touch
voxels that still hold the value the commit left there: work done meanwhile (e.g. with
napari's brush) is never silently overwritten; those voxels are reported as conflicts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Commit:
    key: tuple  # index of the slice in the label array: (z,) for volumes, () for 2D images
    flat: np.ndarray  # flat indices into the slice of the voxels that changed
    before: np.ndarray
    after: np.ndarray
    label: int

    @property
    def n_changed(self) -> int:
        return int(self.flat.size)

    def describe(self) -> str:
        """"label 2 on slice 15, 412 voxels": what a person is told it undid or redid."""
        z = next((k for k in self.key if isinstance(k, int)), None)
        return f"label {self.label}{'' if z is None else f' on slice {z}'}, {self.n_changed} voxels"


@dataclass
class CommitResult:
    commit: Commit | None  # None when nothing changed
    skipped: int  # mask voxels left alone because another label is there


def commit_mask(labels: np.ndarray, key: tuple, mask: np.ndarray, value: int, overwrite: bool = False) -> CommitResult:
    """Write ``value`` into ``labels[key]`` where ``mask`` is set, in place.

    Without ``overwrite`` only voxels that are 0 or already ``value`` are written; voxels of
    other labels are skipped and counted.
    """
    plane = labels[key] if key else labels
    if plane.shape != mask.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the label slice {plane.shape}")
    mask = np.asarray(mask, bool)
    writable = mask if overwrite else mask & ((plane == 0) | (plane == value))
    skipped = int(mask.sum() - writable.sum())
    change = writable & (plane != value)
    flat = np.flatnonzero(change)
    if flat.size == 0:
        return CommitResult(None, skipped)
    before = plane.reshape(-1)[flat].copy()
    plane[np.unravel_index(flat, plane.shape)] = value  # plane may be a strided view (coronal/sagittal)
    return CommitResult(Commit(tuple(key), flat, before, np.full(flat.size, value, plane.dtype), int(value)), skipped)


def _apply(labels: np.ndarray, key: tuple, flat, expect, new) -> int:
    plane = labels[key] if key else labels
    ok = plane.reshape(-1)[flat] == expect
    plane[np.unravel_index(flat[ok], plane.shape)] = new[ok]  # plane may be a strided view
    return int((~ok).sum())


class CommitHistory:
    """Undo/redo over commits, ``depth`` levels deep. A new commit clears the redo side."""

    def __init__(self, depth: int = 50):
        self.depth = depth
        self._undo: list[Commit] = []
        self._redo: list[Commit] = []

    def push(self, commit: Commit) -> None:
        self._undo.append(commit)
        del self._undo[: -self.depth]
        self._redo.clear()

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def undo(self, labels: np.ndarray) -> tuple[Commit, int] | None:
        """Revert the last commit in ``labels``; returns (commit, conflicts) or None."""
        if not self._undo:
            return None
        c = self._undo.pop()
        conflicts = _apply(labels, c.key, c.flat, c.after, c.before)
        self._redo.append(c)
        return c, conflicts

    def redo(self, labels: np.ndarray) -> tuple[Commit, int] | None:
        if not self._redo:
            return None
        c = self._redo.pop()
        conflicts = _apply(labels, c.key, c.flat, c.before, c.after)
        self._undo.append(c)
        return c, conflicts


def commit_slices(labels: np.ndarray, masks: dict, value: int, overwrite: bool = False, axis: int = 0) -> CommitResult:
    """Replace label ``value`` on several slices (along ``axis``) of a 3D ``labels`` array by
    ``masks`` ({z: mask}), in place, as ONE commit (key ``()``, flat indices into the volume): on
    those slices voxels of ``value`` outside the new mask become 0; without ``overwrite`` voxels
    of other labels are kept."""
    if not masks:
        return CommitResult(None, 0)
    zs = np.array(sorted(int(z) for z in masks))
    planes = np.moveaxis(labels, axis, 0)[zs]
    new = np.stack([np.asarray(masks[int(z)], bool) for z in zs])
    if new.shape != planes.shape:
        raise ValueError(f"mask shape {new.shape[1:]} does not match the label slices {planes.shape[1:]}")
    writable = new if overwrite else new & ((planes == 0) | (planes == value))
    after = np.where(writable, value, np.where(planes == value, 0, planes)).astype(labels.dtype)
    changed = np.flatnonzero(after != planes)
    skipped = int(new.sum() - writable.sum())
    if changed.size == 0:
        return CommitResult(None, skipped)
    i, r, c = np.unravel_index(changed, planes.shape)
    coords = [r, c]
    coords.insert(axis, zs[i])
    flat = np.ravel_multi_index(coords, labels.shape)
    before, after = planes.reshape(-1)[changed], after.reshape(-1)[changed]
    np.put(labels, flat, after)
    return CommitResult(Commit((), flat, before, after, int(value)), skipped)
