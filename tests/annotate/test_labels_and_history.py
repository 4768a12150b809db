"""Qt-free parts of the annotation widget: label list, commits and their undo/redo."""
from __future__ import annotations

import numpy as np
import pytest

from napari_sam_mis.annotate.history import CommitHistory, commit_mask
from napari_sam_mis.annotate.labels import LabelList


def test_builtin_label_list_and_edits():
    labels = LabelList.builtin()
    names = [s.name for s in labels]
    assert "lesion" in names and "liver" in names and "spleen" in names
    assert labels.selected == labels.by_name("liver").value
    spec = labels.add("tumour", "#ABC")
    assert spec.value == max(s.value for s in labels) and spec.color == "#aabbcc"
    labels.rename(spec.value, "metastasis")
    labels.recolor(spec.value, "#102030")
    labels.select(spec.value)
    assert labels.current.name == "metastasis" and labels.current.rgba()[:3] == pytest.approx((16 / 255, 32 / 255, 48 / 255))
    with pytest.raises(ValueError):
        labels.add("metastasis")
    with pytest.raises(ValueError):
        labels.add("x", value=spec.value)
    with pytest.raises(ValueError):
        labels.recolor(spec.value, "red-ish")
    labels.remove(spec.value)
    assert labels.selected != spec.value


def test_commit_never_overwrites_other_labels_unless_asked():
    arr = np.zeros((3, 4, 4), np.uint16)
    arr[1, 0, :] = 7
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    res = commit_mask(arr, (1,), mask, 2)
    assert res.skipped == 2 and res.commit.n_changed == 2
    assert arr[1, 0, 0] == 7 and arr[1, 1, 0] == 2
    res = commit_mask(arr, (1,), mask, 2, overwrite=True)
    assert res.skipped == 0 and arr[1, 0, 0] == 2
    assert commit_mask(arr, (1,), mask, 2).commit is None  # nothing left to change


def test_history_undo_redo_several_levels_and_conflicts():
    arr = np.zeros((2, 5, 5), np.uint8)
    hist = CommitHistory(depth=3)
    states = [arr.copy()]
    for value, (r, c) in zip((1, 2, 3, 4), ((0, 0), (1, 1), (2, 2), (3, 3))):
        mask = np.zeros((5, 5), bool)
        mask[r : r + 2, c : c + 2] = True
        hist.push(commit_mask(arr, (value % 2,), mask, value).commit)
        states.append(arr.copy())
    for expected in (states[3], states[2], states[1]):  # depth 3: three levels back
        hist.undo(arr)
        assert np.array_equal(arr, expected)
    assert hist.undo(arr) is None
    hist.redo(arr)
    assert np.array_equal(arr, states[2])
    # an edit made meanwhile (e.g. napari's brush) is not overwritten by redo/undo
    arr[0, 1, 1] = 9
    _, conflicts = hist.undo(arr)
    assert conflicts == 1 and arr[0, 1, 1] == 9
    # 2D images: key ()
    img = np.zeros((4, 4), np.uint8)
    c = commit_mask(img, (), np.ones((4, 4), bool), 5).commit
    assert c.describe() == "label 5, 16 voxels"
    assert commit_mask(arr, (1,), np.ones((5, 5), bool), 7, overwrite=True).commit.describe().startswith("label 7 on slice 1")
    h2 = CommitHistory()
    h2.push(c)
    h2.undo(img)
    assert not img.any()


def test_label_statistics_count_voxels_volume_and_slices():
    from napari_sam_mis.annotate.labels import label_statistics, statistics_table

    arr = np.zeros((6, 10, 10), np.uint8)
    arr[1:4, 2:5, 2:5] = 2  # 27 voxels on slices 1..3
    arr[5, 0, 0] = 7
    stats = label_statistics(arr, (2.0, 0.5, 0.5), {2: "spleen"})
    assert [(s.value, s.name, s.voxels, s.first_slice, s.last_slice) for s in stats] == [
        (2, "spleen", 27, 1, 3), (7, "label 7", 1, 5, 5)]
    assert stats[0].volume_ml == pytest.approx(27 * 2.0 * 0.5 * 0.5 / 1000)
    table = statistics_table(stats).splitlines()
    assert table[0].split("\t") == ["value", "name", "voxels", "volume_ml", "first_slice", "last_slice"]
    assert table[1].split("\t")[:3] == ["2", "spleen", "27"]
    assert label_statistics(np.zeros((2, 3, 3), np.uint8), (1, 1, 1)) == []
