"""Propagation, locked slices, stop criteria, slice ranges and key-slice fill on real CT with
the bundled LiteMedSAM weights (spleen crop: the 20 slices holding the spleen are embedded once)."""
from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from napari_sam_mis.annotate.fill import fill_between, fill_slices, interpolated_shape, signed_distance
from napari_sam_mis.annotate.geometry import dice, mask_box
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.propagate import (
    DOWN,
    UP,
    PropagationSettings,
    SliceLocks,
    _from_slice,
    propagate,
    propagated_masks,
    slice_range,
)
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.evaluation.protocol import middle_slice

from ..helpers import LESION_9, SPLEEN_CT, SPLEEN_LABEL, need


@pytest.fixture(scope="module")
def spleen(lite_engine):
    from napari_sam_mis.io import read_labels, read_volume

    volume = read_volume(need(SPLEEN_CT))
    gt = read_labels(need(SPLEEN_LABEL), volume).array > 0
    session = AnnotationSession(volume, lite_engine)
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    session.embed(range(int(zs.min()), int(zs.max()) + 1))
    return session, gt, zs


def start_result(session, gt, z):
    return session.predict(z, Prompt(box=mask_box(gt[z])))


def test_spleen_from_one_box_within_its_range(spleen):
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    masks = propagated_masks(session, z0, start_result(session, gt, z0), low=int(zs.min()), high=int(zs.max()))
    # the range is reached, but for the spleen's tiny top slice, where the mask shrinks by half
    assert list(range(zs.min(), zs.max())) == sorted(masks)[: len(zs) - 1]
    pred = np.zeros_like(gt)
    for z, m in masks.items():
        pred[z] = m
    d = dice(pred, gt)
    print(f"spleen, one box on slice {z0} + propagation: Dice {d:.4f}")
    assert d >= 0.92  # 0.943 measured; the box-only recipe gives 0.87-0.88


def test_slice_range_limits_and_cancel(spleen, lite_engine):
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    start = start_result(session, gt, z0)
    assert [r.z for r in propagate(session, z0, start, UP, stop_z=z0 + 2)] == [z0 + 1, z0 + 2]
    assert [r.z for r in propagate(session, z0, start, DOWN, stop_z=z0 - 3)] == [z0 - 1, z0 - 2, z0 - 3]
    assert list(slice_range(26, 25, UP)) == [] and list(slice_range(26, 3, DOWN, stop_z=-5)) == [2, 1, 0]
    # the slices a shrinking correction clears past a stop: from the stop on, at either edge too
    assert _from_slice(20, 0, UP, 2) == [0, 1, 2] and _from_slice(20, 19, DOWN, 18) == [19, 18]
    assert _from_slice(20, 5, UP, 3) == [] and _from_slice(20, 20, UP) == [] and _from_slice(20, 17, UP) == [17, 18, 19]
    with pytest.raises(ValueError, match="direction"):
        list(propagate(session, z0, start, 2))
    with pytest.raises(ValueError, match="outside the volume"):
        slice_range(26, 26, UP)
    # cancel = stop iterating: slices after the last one taken are never even embedded
    fresh = AnnotationSession(session.volume, lite_engine)
    taken = [r.z for r in islice(propagate(fresh, z0, start.mask, UP), 2)]
    assert taken == [z0 + 1, z0 + 2]
    assert not fresh.has_embedding(z0 + 3)


def test_locked_slices_are_never_overwritten(spleen):
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    locks = SliceLocks([z0 + 4, z0 - 2])
    assert locks.toggle(z0 + 6) and not locks.toggle(z0 + 6) and list(locks) == [z0 - 2, z0 + 4]
    masks = propagated_masks(session, z0, start_result(session, gt, z0), locked=locks)
    assert sorted(masks) == list(range(z0 - 1, z0 + 4)), "propagation stops before a locked slice"
    # correction: slice z0 + 4 is fixed by hand (here: its ground truth) and re-propagated upwards
    corrected = gt[z0 + 4].copy()
    results = list(propagate(session, z0 + 4, corrected, UP, stop_z=int(zs.max()), locked=locks))
    assert results and all(r.z > z0 + 4 for r in results)
    assert corrected.sum() == gt[z0 + 4].sum(), "the reference mask is not modified"


def test_stop_criteria(spleen, lite_engine):
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    start = start_result(session, gt, z0)
    assert list(propagate(session, z0, start, UP, settings=PropagationSettings(min_score=0.999))) == []
    assert list(propagate(session, z0, start, UP, settings=PropagationSettings(min_iou=0.999))) == []
    assert list(propagate(session, z0, np.zeros_like(gt[z0]), UP)) == [], "an empty mask has nowhere to go"
    # a lesion that ends inside the volume: without a range, propagation stops where it ends
    from napari_sam_mis.io import read_volume
    from napari_sam_mis.io.raster import read_npz_labels

    volume = read_volume(need(LESION_9))
    lesion = read_npz_labels(LESION_9, volume.shape) > 0
    lzs = np.flatnonzero(lesion.any(axis=(1, 2)))
    lz0 = middle_slice(lzs)
    lsession = AnnotationSession(volume, lite_engine)
    masks = propagated_masks(lsession, lz0, start_result(lsession, lesion, lz0))
    reached = sorted(masks)
    print(f"lesion on slices {lzs.min()}..{lzs.max()}, propagation reached {reached[0]}..{reached[-1]}")
    assert lzs.min() - 1 <= reached[0] and reached[-1] <= lzs.max() + 1
    pred = np.zeros_like(lesion)
    for z, m in masks.items():
        pred[z] = m
    assert dice(pred, lesion) >= 0.9  # 0.94 measured


def test_key_slice_fill(spleen):
    session, gt, zs = spleen
    keys = list(range(int(zs.min()), int(zs.max()) + 1, 5))  # 3, 8, 13, 18 (+ 22)
    keys += [] if keys[-1] == zs.max() else [int(zs.max())]
    key_masks = {z: gt[z] for z in keys}
    assert fill_slices(key_masks) == [z for z in range(keys[0], keys[-1] + 1) if z not in keys]
    locked = {keys[1] + 1}
    filled = {r.z: r.mask for r in fill_between(session, key_masks, locked=locked)}
    assert sorted(filled) == [z for z in fill_slices(key_masks) if z not in locked]
    pred, naive = np.zeros_like(gt), np.zeros_like(gt)
    for z in keys:
        pred[z] = naive[z] = gt[z]
    for z, m in filled.items():
        pred[z] = m
    pred[keys[1] + 1] = gt[keys[1] + 1]  # the locked slice keeps what the user has there
    for za, zb in zip(keys, keys[1:]):
        for z in range(za + 1, zb):
            t = (z - za) / (zb - za)
            naive[z] = interpolated_shape(signed_distance(gt[za]), signed_distance(gt[zb]), t) > 0
    d, d_naive = dice(pred, gt), dice(naive, gt)
    print(f"key slices {keys}: Dice {d:.4f} (shape interpolation alone {d_naive:.4f})")
    assert d >= 0.95 and d > d_naive


def test_a_stop_says_where_and_why(spleen, lite_engine):
    """Without a range, propagating the spleen upwards ends where the object ends, and says so."""
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    run = propagate(session, z0, start_result(session, gt, z0), UP)
    reached = [r.z for r in run]
    assert run.stop.reason in ("overlap", "empty", "growth", "leak", "edge")
    if run.stop.z is not None:
        assert run.stop.z == reached[-1] + 1 and run.stop.message.startswith(f"stopped at slice {run.stop.z}: ")
    # a range: the stop says it reached its end
    bounded = propagate(session, z0, start_result(session, gt, z0), UP, stop_z=z0 + 2)
    assert [r.z for r in bounded] == [z0 + 1, z0 + 2]
    assert bounded.stop.reason == "range" and f"slice {z0 + 2}" in bounded.stop.message
    locked = propagate(session, z0, start_result(session, gt, z0), DOWN, locked=[z0 - 2])
    assert [r.z for r in locked] == [z0 - 1] and locked.stop.reason == "locked" and locked.stop.z == z0 - 2


def test_a_jump_in_area_stops_and_can_be_continued(spleen):
    """Started from a small piece of the spleen, the next slice's mask jumps: stopped, with the
    slice and the overlap in words; ``accept_first`` goes on past it."""
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    small = np.zeros_like(gt[z0])
    rows, cols = np.nonzero(gt[z0])
    r, c = int(np.median(rows)), int(np.median(cols))
    small[r - 6:r + 6, c - 6:c + 6] = gt[z0][r - 6:r + 6, c - 6:c + 6]  # a small piece of the spleen
    run = propagate(session, z0, small, UP)
    list(run)
    assert run.stop.reason == "overlap" and f"stopped at slice {run.stop.z}: " in run.stop.message
    assert "overlap IoU" in run.stop.message
    go_on = propagate(session, z0, small, UP, stop_z=z0 + 1, accept_first=True)
    assert [r.z for r in go_on] == [z0 + 1] and go_on.stop.reason == "range"


def test_stop_words_say_how_the_area_changed():
    from napari_sam_mis.annotate.propagate import _ratio_words

    assert _ratio_words(3.04) == "the mask grew 3.0 times in area"
    assert _ratio_words(1.6) == "the mask grew by 60 % in area"
    assert _ratio_words(0.47) == "the mask shrank to 47 % of its area"


def test_growth_against_the_start_slice_stops(spleen):
    session, gt, zs = spleen
    z0 = middle_slice(zs)
    run = propagate(session, z0, start_result(session, gt, z0), UP, settings=PropagationSettings(max_growth=0.5))
    assert list(run) == [] and run.stop.reason == "growth" and "outgrew" in run.stop.message


def test_a_leak_outside_the_intensity_range_is_trimmed():
    from napari_sam_mis.annotate.propagate import trim_to_range

    display = np.zeros((40, 40), np.float32)
    display[10:30, 10:30] = 120.0  # the object
    display[10:30, 30:38] = 250.0  # a bright neighbour the mask leaked into
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:38] = True
    previous = np.zeros_like(mask)
    previous[12:28, 12:28] = True
    trimmed = trim_to_range(mask, display, (100.0, 140.0), previous)
    assert trimmed[10:30, 10:30].sum() >= 380 and not trimmed[:, 31:].any()


def test_repropagation_of_a_removal_only_removes(spleen):
    """A correction that only removed from slice z (a negative click) only removes from its
    neighbours' masks and is absorbed where the masks agree again."""
    from napari_sam_mis.annotate.propagate import repropagate

    session, gt, zs = spleen
    z0 = middle_slice(zs)
    start = start_result(session, gt, z0)
    masks = propagated_masks(session, z0, start, low=int(zs.min()), high=int(zs.max()))
    leaky = {z: m.copy() for z, m in masks.items()}
    for z in (z0 - 1, z0, z0 + 1):
        leaky[z][:5, :] = True  # a leak along the top edge on three slices
    changes, stops = repropagate(session, z0, masks[z0], leaky, anchors=[], low=int(zs.min()), high=int(zs.max()))
    assert changes, "the removal reached the neighbours"
    for z, r in changes.items():
        assert r is None or not (r.mask & ~leaky[z]).any(), f"slice {z} grew"
    assert not changes[z0 + 1].mask[:5].any() and not changes[z0 - 1].mask[:5].any()
    assert len(stops) == 2
