"""Automatic proposals with the real LiteMedSAM on the MSD spleen crop: the spleen is among the
proposals of its middle slice, kept proposals do not overlap past the NMS threshold, and linking
gives the spleen one id across neighbouring slices. The selection steps on their own too."""
from __future__ import annotations

import numpy as np
import pytest

from napari_sam_mis.annotate.geometry import iou
from napari_sam_mis.annotate.proposals import (
    DEFAULTS,
    Proposal,
    distinct_boxes,
    grid_boxes,
    link,
    mask_ious,
    non_max_suppression,
    propose_slice,
    propose_volume,
)
from napari_sam_mis.evaluation.protocol import middle_slice


@pytest.fixture(scope="module")
def spleen_session(spleen, lite_engine):
    from napari_sam_mis.annotate.session import AnnotationSession

    ct, gt = spleen
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    return AnnotationSession(ct, lite_engine), gt, middle_slice(zs)


@pytest.fixture(scope="module")
def middle_proposals(spleen_session):
    session, _, z = spleen_session
    return propose_slice(session, z)


def test_a_proposal_matches_the_spleen_on_its_middle_slice(spleen_session, middle_proposals):
    _, gt, z = spleen_session
    best = max(iou(p.mask, gt[z]) for p in middle_proposals)
    assert best >= 0.5, best
    for p in middle_proposals:
        assert p.mask.shape == gt[z].shape and p.mask.dtype == bool and p.mask.any()
        r0, c0, r1, c1 = p.box
        assert p.mask[r0 : r1 + 1, c0 : c1 + 1].sum() == p.mask.sum()
    assert [p.score for p in middle_proposals] == sorted((p.score for p in middle_proposals), reverse=True)


def test_kept_proposals_overlap_by_at_most_the_threshold(middle_proposals):
    ious = mask_ious(np.stack([p.mask for p in middle_proposals]))
    np.fill_diagonal(ious, 0)
    assert ious.max() <= DEFAULTS.nms_iou


def test_linking_gives_the_spleen_one_id_across_neighbouring_slices(spleen_session):
    session, gt, z = spleen_session
    calls = []
    ids = propose_volume(session, [z - 1, z, z + 1], lambda done, total: calls.append((done, total)))
    assert ids.shape == gt.shape and calls == [(1, 3), (2, 3), (3, 3)]
    assert not ids[: z - 1].any() and not ids[z + 2 :].any()
    spleen_ids = set()
    for k in (z - 1, z, z + 1):
        values, counts = np.unique(ids[k][gt[k] & (ids[k] > 0)], return_counts=True)
        best = int(values[np.argmax(counts)])
        assert iou(ids[k] == best, gt[k]) >= 0.5, k
        spleen_ids.add(best)
    assert len(spleen_ids) == 1, spleen_ids


def _disk(shape, centre, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def test_link_carries_ids_only_across_enough_overlap():
    shape = (64, 64)
    before = [(7, Proposal(_disk(shape, (20, 20), 8), 0.9, (12, 12, 28, 28))),
              (9, Proposal(_disk(shape, (45, 45), 6), 0.8, (39, 39, 51, 51)))]
    moved = Proposal(_disk(shape, (21, 21), 8), 0.9, (13, 13, 29, 29))  # overlaps id 7 well
    elsewhere = Proposal(_disk(shape, (45, 10), 5), 0.7, (40, 5, 50, 15))  # overlaps nothing
    linked, next_id = link(before, [elsewhere, moved], 10, threshold=0.3)
    assert [pid for pid, _ in linked] == [10, 7] and next_id == 11
    linked, next_id = link([], [moved], 1, threshold=0.3)
    assert [pid for pid, _ in linked] == [1] and next_id == 2


def test_mask_nms_keeps_the_better_of_two_overlapping_masks():
    shape = (40, 40)
    masks = np.stack([_disk(shape, (20, 20), 8), _disk(shape, (20, 21), 8), _disk(shape, (5, 5), 3)])
    assert non_max_suppression(masks, [1, 0, 2], 0.5) == [1, 2]
    assert non_max_suppression(masks, [1, 0, 2], 0.95) == [1, 0, 2]


def test_grid_boxes_cover_the_slice_and_near_duplicates_go():
    boxes = grid_boxes((100, 60), 20.0, 1.0)
    assert len(boxes) == 5 * 3
    assert boxes[:, 0].min() == 0 and boxes[:, 2].max() == 99 and boxes[:, 3].max() == 59
    again = np.concatenate([boxes, boxes + 0.5])
    assert len(distinct_boxes(again, 0.7)) == len(boxes)


def test_a_point_trained_model_gets_point_prompts(spleen):
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.model.engine import SamEngine

    ct, gt = spleen
    engine = SamEngine.load("litemedsam_clicks", device="cpu")
    assert not engine.spec.box_trained
    z = int(np.argmax(gt.sum(axis=(1, 2))))
    found = propose_slice(AnnotationSession(ct, engine), z)
    assert found and all(p.mask.shape == gt[z].shape for p in found)
