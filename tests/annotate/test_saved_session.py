"""A session's work on disk: written as a unit, found again by the image's voxels, a damaged one
named, and forgotten on request."""
from __future__ import annotations

import numpy as np
import pytest

from napari_sam_mis.annotate.saved_session import (
    SessionState,
    forget_session,
    load_session,
    save_session,
    session_folder,
)
from napari_sam_mis.errors import InputError


def _labels(ct):
    labels = np.zeros(ct.shape, np.uint16)
    labels[10:14, 40:60, 50:70] = 2
    return labels


def test_a_session_comes_back_for_the_same_voxels_from_any_path(spleen, tmp_path):
    from dataclasses import replace

    ct, _ = spleen
    state = SessionState(segments={"2": {"name": "spleen", "color": [157, 108, 216]}}, selected=2, locked=[10, 13],
                         points=[[12.0, 50.0, 60.0]], positive=[False], boxes=[[[11, 40, 50], [11, 60, 70]]],
                         window={"window": "liver"}, model={"name": "litemedsam"})
    folder = save_session(ct, _labels(ct), state, session_folder(ct, tmp_path))
    moved = replace(ct, source="/elsewhere/copy.nii.gz")  # the same scan, opened from another path
    back = load_session(moved, session_folder(moved, tmp_path))
    assert back.folder == folder and np.array_equal(back.labels, _labels(ct))
    assert back.state.segments["2"]["name"] == "spleen" and back.state.locked == [10, 13]
    assert back.state.points == [[12.0, 50.0, 60.0]] and back.state.positive == [False]
    assert back.state.window == {"window": "liver"} and back.state.saved_at > 0
    other = replace(ct, array=ct.array + 1)
    assert load_session(other, session_folder(other, tmp_path)) is None, "another image has no session"
    assert sorted(p.name for p in folder.iterdir()) == ["labels.json", "labels.nii.gz", "session.json"]


@pytest.mark.parametrize("damage", ["not json", "unknown field", "other format", "labels missing"])
def test_a_damaged_session_is_named(damage, spleen, tmp_path):
    ct, _ = spleen
    folder = save_session(ct, _labels(ct), SessionState(), session_folder(ct, tmp_path))
    meta = folder / "session.json"
    if damage == "not json":
        meta.write_text('{"format": 1, "segm')
    elif damage == "unknown field":
        meta.write_text('{"format": 1, "brushes": []}')
    elif damage == "other format":
        meta.write_text('{"format": 99}')
    else:
        (folder / "labels.nii.gz").unlink()
    with pytest.raises(InputError) as info:
        load_session(ct, folder)
    assert folder.name in str(info.value)


def test_labels_out_of_range_are_refused_and_the_last_session_kept(spleen, tmp_path):
    ct, _ = spleen
    folder = session_folder(ct, tmp_path)
    save_session(ct, _labels(ct), SessionState(selected=2), folder)
    bad = _labels(ct)
    bad[0, 0, 0] = 300
    with pytest.raises(InputError):
        save_session(ct, bad, SessionState(selected=1), folder)
    back = load_session(ct, folder)
    assert back.state.selected == 2 and np.array_equal(back.labels, _labels(ct))


def test_forget(spleen, tmp_path):
    ct, _ = spleen
    folder = save_session(ct, _labels(ct), SessionState(), session_folder(ct, tmp_path))
    assert forget_session(folder) and not session_folder(ct, tmp_path).exists()
    assert not forget_session(folder) and load_session(ct, folder) is None
