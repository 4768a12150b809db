"""Commits into the labels layer with undo/redo (the Qt-free ``CommitHistory``), and what the
user is told about them."""
from __future__ import annotations

from napari.utils.notifications import show_info, show_warning

from napari_sam_mis.annotate.history import CommitHistory, commit_mask, commit_slices


class CommitController:
    """One undo history for the labels layer the widget commits into."""

    def __init__(self, depth: int = 50, on_change=lambda: None):
        self.history = CommitHistory(depth=depth)
        self.on_change = on_change  # called after every commit, undo and redo that changed the labels

    def commit_slice(self, labels_layer, key: tuple, mask, value: int, overwrite: bool) -> None:
        self._record(labels_layer, commit_mask(labels_layer.data, key, mask, value, overwrite))

    def commit_slices(self, labels_layer, masks: dict, value: int, overwrite: bool, axis: int) -> None:
        """Several slices ({z: mask} along ``axis``) as one undoable commit."""
        self._record(labels_layer, commit_slices(labels_layer.data, masks, value, overwrite, axis=axis))

    def _record(self, labels_layer, result) -> None:
        if result.commit is not None:
            self.history.push(result.commit)
            labels_layer.refresh()
            self.on_change()
        if result.skipped:
            show_warning(
                f"SAM: {result.skipped} voxels already hold another label and were kept "
                "(tick 'overwrite other labels' to replace them)"
            )

    def undo(self, labels_layer) -> None:
        self._undo_redo(labels_layer, redo=False)

    def redo(self, labels_layer) -> None:
        self._undo_redo(labels_layer, redo=True)

    def _undo_redo(self, labels_layer, redo: bool) -> None:
        if labels_layer is None:
            return
        out = (self.history.redo if redo else self.history.undo)(labels_layer.data)
        if out is None:
            show_info(f"SAM: nothing to {'redo' if redo else 'undo'}")
            return
        commit, conflicts = out
        labels_layer.refresh()
        self.on_change()
        said = f"SAM: {'redid' if redo else 'undid'} the commit of {commit.describe()}"
        if conflicts:
            show_warning(f"{said}; {conflicts} voxels were edited since and were left as they are")
        else:
            show_info(said)

    def bind_keys(self, labels_layer) -> None:
        """Ctrl+Z / Ctrl+Shift+Z with the labels layer selected: napari's own history of brush,
        eraser and fill strokes while it has any, then the commits; each says what it undid."""
        for key, napari_step, ours, word in (("Control-Z", labels_layer.undo, self.undo, "undid"),
                                             ("Control-Shift-Z", labels_layer.redo, self.redo, "redid")):
            def step(layer, napari_step=napari_step, ours=ours, word=word):
                if _changed_by(layer, napari_step):
                    show_info(f"SAM: {word} a brush stroke (napari's history of this layer)")
                else:
                    ours(layer)
            labels_layer.bind_key(key, step, overwrite=True)

    def clear(self) -> None:
        self.history.clear()


def _changed_by(layer, napari_step) -> bool:
    """Whether napari's undo/redo changed the layer (it refreshes the layer, which emits
    ``set_data``, only when it did)."""
    changed = []
    mark = changed.append
    layer.events.set_data.connect(mark)
    try:
        napari_step()
    finally:
        layer.events.set_data.disconnect(mark)
    return bool(changed)
