"""Clicks with the box-trained LiteMedSAM (core/clicks.py), on real slices and the bundled weights."""
from dataclasses import replace

import numpy as np
import pytest

from napari_sam_mis.annotate.clicks import candidate_boxes, mask_for_clicks
from napari_sam_mis.annotate.geometry import dice
from napari_sam_mis.annotate.prompts import NEGATIVE, POSITIVE, Prompt
from napari_sam_mis.annotate.region_hint import RegionHints, region_hint
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.evaluation.protocol import segment_simulated
from napari_sam_mis.evaluation.simulate import corrective_click, farthest_interior_point
from napari_sam_mis.io import read_label_array, read_volume
from napari_sam_mis.model.registry import get_spec

from ..helpers import ABDOMEN_MR, ABDOMEN_MR_LABEL, LESION_9, SPLEEN_CT, SPLEEN_LABEL, need


def _largest_slice(gt):
    return int(np.argmax(gt.reshape(gt.shape[0], -1).sum(axis=1)))


@pytest.fixture(scope="module")
def spleen(lite_engine):
    volume = read_volume(need(SPLEEN_CT))
    gt = read_label_array(need(SPLEEN_LABEL), volume) > 0
    return AnnotationSession(volume, lite_engine), gt, _largest_slice(gt)


@pytest.fixture(scope="module")
def lesion(lite_engine):
    volume = read_volume(need(LESION_9))
    gt = read_label_array(LESION_9, volume) > 0
    return AnnotationSession(volume, lite_engine), gt, _largest_slice(gt)


def _click(point, label=POSITIVE, **kw):
    return Prompt(points=[point], labels=[label], **kw)


@pytest.fixture
def decoder_calls(lite_engine, monkeypatch):
    """Prompts decoded by every engine.decode / engine.decode_candidates call in the test."""
    calls = []
    raw, candidates = lite_engine.decode, lite_engine.decode_candidates

    def counted_raw(features, coords=None, labels=None, boxes=None, mask_logits=None, multimask=False):
        calls.append(len(boxes) if boxes is not None else len(coords))
        return raw(features, coords, labels, boxes, mask_logits, multimask)

    def counted_candidates(features, boxes):
        calls.append(len(boxes))
        return candidates(features, boxes)

    monkeypatch.setattr(lite_engine, "decode", counted_raw)
    monkeypatch.setattr(lite_engine, "decode_candidates", counted_candidates)
    return calls


def test_box_trained_models_are_marked():
    assert get_spec("litemedsam").box_trained and get_spec("medsam_vit_b").box_trained
    assert not get_spec("sam_vit_b").box_trained


def test_one_click_segments_the_spleen_where_the_plain_path_fails(spleen, lite_engine, monkeypatch, decoder_calls):
    session, gt, z = spleen
    click = _click(farthest_interior_point(gt[z]))
    good = session.predict(z, click)
    assert dice(good.mask, gt[z]) >= 0.9
    assert decoder_calls == [1]  # its first candidate is confident: the others are not decoded
    assert good.low_res_logits.shape == (1, 256, 256)
    # the same click through the plain point path (as for a model trained with clicks) is useless
    monkeypatch.setattr(lite_engine, "spec", replace(lite_engine.spec, box_trained=False))
    assert dice(session.predict(z, click).mask, gt[z]) < 0.5


def test_an_unsure_first_candidate_brings_in_the_others(spleen, monkeypatch, decoder_calls):
    from napari_sam_mis.annotate import clicks

    session, gt, z = spleen
    monkeypatch.setattr(clicks, "CONFIDENT_IOU", 1.01)  # no first candidate is confident
    result = session.predict(z, _click(farthest_interior_point(gt[z])))
    assert decoder_calls == [1, 2]
    assert dice(result.mask, gt[z]) >= 0.9


def test_one_click_segments_a_lesion(lesion, decoder_calls):
    session, gt, z = lesion
    result = session.predict(z, _click(farthest_interior_point(gt[z])))
    assert dice(result.mask, gt[z]) >= 0.85
    assert 0.0 < result.score <= 1.0
    assert decoder_calls == [3]  # a small object's candidates: all in one call


def test_the_click_trained_proposal_wins_on_a_small_vessel(lite_engine, monkeypatch):
    """Abdominal MR at 3 mm (pseudo ground truth): the IVC covers ~25 pixels of a slice, the region
    hints around a click there leak, and the click-trained proposer's mask is the candidate kept."""
    volume = read_volume(need(ABDOMEN_MR))
    volume.modality = "MR"
    ivc = read_label_array(need(ABDOMEN_MR_LABEL), volume) == 24
    session = AnnotationSession(volume, lite_engine)
    assert lite_engine.click_proposer is not None and lite_engine.click_proposer.name == "litemedsam_clicks"
    with_proposal, without = [], []
    for z in (2, 3, 5):
        click = _click(farthest_interior_point(ivc[z]))
        with_proposal.append(dice(session.predict(z, click).mask, ivc[z]))
        monkeypatch.setattr(lite_engine, "proposes_clicks", False)
        without.append(dice(session.predict(z, click).mask, ivc[z]))
        monkeypatch.undo()
    assert min(with_proposal) >= 0.5 and max(without) <= 0.2, (with_proposal, without)


def test_a_first_mask_that_leaked_gives_way_to_the_proposal(lite_engine, monkeypatch):
    """Abdominal MR at 3 mm (pseudo ground truth), the portal/splenic vein (class 25, ~26 pixels a
    slice): a click at its middle gives a candidate of ~2,200 pixels with the click near its edge,
    which the leak check replaces by the proposer's mask."""
    from napari_sam_mis.annotate import clicks

    volume = read_volume(need(ABDOMEN_MR))
    volume.modality = "MR"
    vein = read_label_array(need(ABDOMEN_MR_LABEL), volume) == 25
    session = AnnotationSession(volume, lite_engine)
    checked, unchecked = [], []
    for z in (11, 12):
        click = _click(farthest_interior_point(vein[z]))
        result = session.predict(z, click)
        assert result.mask[click.points[0]] and result.mask.sum() <= 10 * vein[z].sum()
        checked.append(dice(result.mask, vein[z]))
        monkeypatch.setattr(clicks, "clicked_near_edge", lambda *a: False)
        unchecked.append(session.predict(z, click).mask.sum())
        monkeypatch.undo()
    assert min(checked) >= 0.25 and min(unchecked) >= 50 * vein[11].sum(), (checked, unchecked)


def test_the_leak_check_on_constructed_masks():
    from napari_sam_mis.annotate.clicks import clicked_near_edge, outgrows

    big = np.zeros((64, 64), bool)
    big[10:50, 10:50] = True
    small = np.zeros_like(big)
    small[10:14, 10:14] = True
    assert clicked_near_edge(big, (11, 11)) and not clicked_near_edge(big, (30, 30))
    assert not clicked_near_edge(big, (5, 5))  # outside the mask
    assert outgrows(big, small) and not outgrows(small, big)
    inside = np.zeros_like(big)
    inside[10:30, 10:30] = True
    assert not outgrows(big, inside)  # they agree (IoU 0.25)
    assert not outgrows(big, np.zeros_like(big))  # no proposal


def test_a_checkpoint_of_its_own_has_no_proposer():
    from napari_sam_mis.model.engine import SamEngine
    from napari_sam_mis.model.weights import bundled_litemedsam_path

    engine = SamEngine.load("litemedsam", checkpoint=bundled_litemedsam_path(), device="cpu")
    assert engine.click_proposer is None


def test_jittered_clicks_still_segment_the_lesion(lesion):
    session, gt, z = lesion
    r, c = farthest_interior_point(gt[z])
    scores = [dice(session.predict(z, _click((r + dr, c + dc))).mask, gt[z]) for dr, dc in ((3, -3), (-3, 2))]
    assert min(scores) >= 0.8


def test_negative_click_removes_a_region(spleen, decoder_calls):
    session, gt, z = spleen
    first = session.predict(z, _click(farthest_interior_point(gt[z])))
    # ask for the spleen without its upper quarter: the protocol puts a negative click there
    rows = np.flatnonzero(gt[z].any(axis=1))
    target = gt[z].copy()
    target[: rows[0] + (rows[-1] - rows[0]) // 4] = False
    point, label = corrective_click(first.mask, target)
    assert label == NEGATIVE and first.mask[point]
    second = session.predict(z, Prompt(points=[farthest_interior_point(gt[z]), point], labels=[POSITIVE, NEGATIVE],
                                      mask_logits=first.low_res_logits))
    assert not second.mask[point]
    assert second.mask.sum() < first.mask.sum()
    assert dice(second.mask, target) > dice(first.mask, target) + 0.02
    assert len(decoder_calls) == 2  # one decoder call per click


def test_follow_up_clicks_improve_a_poor_first_mask(lite_engine):
    """Abdominal MR at 3 mm (pseudo ground truth), the spinal cord (class 21) and the aorta (23) on
    slices where the first click's mask runs several times past them (Dice 0.22-0.28): two
    corrective clicks, each honoured, bring them to 0.71-0.88 (measured)."""
    volume = read_volume(need(ABDOMEN_MR))
    volume.modality = "MR"
    labels = read_label_array(need(ABDOMEN_MR_LABEL), volume)
    session = AnnotationSession(volume, lite_engine)
    for value, z in ((21, 10), (21, 19), (23, 11)):
        gt = labels[z] == value
        prompt = _click(farthest_interior_point(gt))
        result = session.predict(z, prompt)
        before = dice(result.mask, gt)
        for _ in range(2):
            point, label = corrective_click(result.mask, gt)
            prompt = Prompt(points=[*prompt.points, point], labels=[*prompt.labels, label], mask_logits=result.low_res_logits)
            result = session.predict(z, prompt)
            assert result.mask[point] == (label == POSITIVE)  # each click is honoured
        assert before < 0.3 and dice(result.mask, gt) >= before + 0.3, (value, z, before, dice(result.mask, gt))


def test_clicks3_protocol_signs_and_result(lesion):
    session, gt, z = lesion
    truth = gt[z]
    hole = truth.copy()
    hole[farthest_interior_point(truth)] = False
    hole = hole & ~np.pad(truth, 4)[8:, 4:-4]  # lose a band on one side: a missed region
    point, label = corrective_click(hole, truth)
    assert label == POSITIVE and truth[point] and not hole[point]
    extra = truth | np.roll(truth, 12, axis=1)  # a copy beside it: an extra region
    point, label = corrective_click(extra, truth)
    assert label == NEGATIVE and extra[point] and not truth[point]
    assert corrective_click(truth, truth) is None
    assert dice(segment_simulated(session, z, truth, "clicks3").mask, truth) >= 0.85


def test_clicks_at_the_image_border(spleen, lite_engine):
    session, gt, z = spleen
    h, w = gt.shape[1:]
    display = np.asarray(session.display_slice(z), np.float32)
    for corner in ((0, 0), (h - 1, w - 1), (0, w - 1), (h // 2, 0)):
        for box in candidate_boxes(RegionHints(display), [corner], [], None, (0.8, 0.8)):
            assert 0 <= box[0] <= corner[0] <= box[2] <= h - 1 and 0 <= box[1] <= corner[1] <= box[3] <= w - 1
        assert region_hint(display, corner, 20.0)[corner]
        result = session.predict(z, _click(corner))
        assert result.mask.shape == (h, w)
    with pytest.raises(ValueError, match="outside the slice"):
        mask_for_clicks(lite_engine, session.embedding(z), display, _click((h + 5, 3)))
    only_negative = session.predict(z, _click((h // 2, w // 2), NEGATIVE))
    assert not only_negative.mask.any()


def test_region_hints_searched_in_a_window_equal_the_whole_slice_search(lesion, spleen, monkeypatch):
    """A region hint is searched near the click first; it must be the one a search of the whole
    reach finds, for small objects (lesion, 512 x 512) and large ones (spleen), at any seed."""
    from napari_sam_mis.annotate import region_hint as hints

    rng = np.random.default_rng(0)
    cases = []
    for session, gt, z in (lesion, spleen):
        display = np.asarray(session.display_slice(z), np.float32)
        inside = np.argwhere(gt[z])
        seeds = [tuple(inside[i]) for i in rng.choice(len(inside), 6)]
        seeds += [tuple(int(v) for v in rng.integers(0, display.shape)) for _ in range(6)]
        cases += [(display, seed) for seed in seeds]
    windowed = [[region_hint(d, s, t) for t in (10.0, 20.0)] for d, s in cases]
    monkeypatch.setattr(hints, "HINT_WINDOW_PX", 10_000)
    for (d, s), got in zip(cases, windowed):
        for t, g in zip((10.0, 20.0), got):
            np.testing.assert_array_equal(g, region_hint(d, s, t), err_msg=f"seed {s}, tolerance {t}")


def test_hole_filling_matches_scipy():
    from scipy import ndimage

    from napari_sam_mis.annotate.region_hint import _fill_holes

    rng = np.random.default_rng(0)
    for _ in range(100):
        shape = tuple(int(v) for v in rng.integers(1, 50, 2))
        region = ndimage.binary_opening(rng.random(shape) > rng.uniform(0.2, 0.7))
        assert np.array_equal(_fill_holes(region), ndimage.binary_fill_holes(region))


def test_pairwise_iou_of_candidate_masks():
    from napari_sam_mis.annotate.clicks import _pairwise_iou

    a = np.zeros((10, 10), bool)
    a[:4] = True  # 40 pixels
    b = np.zeros((10, 10), bool)
    b[2:6] = True  # 40 pixels, 20 shared with a
    iou = _pairwise_iou(np.stack([a, b, np.zeros((10, 10), bool)]))
    np.testing.assert_allclose(iou, [[1, 1 / 3, 0], [1 / 3, 1, 0], [0, 0, 0]])


def _logits_mask(session, z, logits):
    import torch

    emb = session.embedding(z)
    t = torch.as_tensor(np.asarray(logits, np.float32)).reshape(1, 1, *np.shape(logits)[-2:])
    return (session.engine.upscale(t, emb.geometry)[0, 0] > 0).numpy()


@pytest.mark.parametrize("seed", range(4))
def test_corrections_keep_their_promises(spleen, seed):
    """On real slices, random corrective clicks: a negative click never grows the mask it corrects
    and leaves its pixel outside; a positive click only adds and lies inside the result."""
    session, gt, z = spleen
    rng = np.random.default_rng(seed)
    zs = np.flatnonzero(gt.reshape(gt.shape[0], -1).any(axis=1))
    z = int(rng.choice(zs))
    prompt = _click(farthest_interior_point(gt[z]))
    result = session.predict(z, prompt)
    for _ in range(3):
        shown = _logits_mask(session, z, result.low_res_logits)  # the mask the next click corrects
        inside, outside = np.argwhere(shown), np.argwhere(~shown)
        negative = rng.random() < 0.5 and len(inside) > 1
        point = tuple(int(v) for v in (inside if negative else outside)[rng.integers(len(inside if negative else outside))])
        label = NEGATIVE if negative else POSITIVE
        prompt = Prompt(points=[*prompt.points, point], labels=[*prompt.labels, label], mask_logits=result.low_res_logits)
        result = session.predict(z, prompt)
        if negative:
            assert not result.mask[point] and not (result.mask & ~shown).any()
        else:
            assert result.mask[point] and not (shown & ~result.mask).any()
        assert all(result.mask[p] for p, lab in zip(prompt.points, prompt.labels) if lab == POSITIVE)


def test_a_click_on_a_box_is_never_worse_than_the_box(spleen, lesion):
    """box+point: where the box's mask holds the click it is the box's mask exactly."""
    from napari_sam_mis.evaluation.simulate import simulate_prompt

    for session, gt, z in (spleen, lesion):
        box = session.predict(z, simulate_prompt(gt[z], "box"))
        both = session.predict(z, simulate_prompt(gt[z], "box+point"))
        assert box.mask[farthest_interior_point(gt[z])]
        assert np.array_equal(box.mask, both.mask)
        # a negative click on the box's mask removes its pixel and nothing grows
        edge = np.argwhere(box.mask & ~gt[z]) if (box.mask & ~gt[z]).any() else np.argwhere(box.mask)
        point = tuple(int(v) for v in edge[len(edge) // 2])
        prompt = simulate_prompt(gt[z], "box")
        fixed = session.predict(z, Prompt(points=[point], labels=[NEGATIVE], box=prompt.box))
        assert not fixed.mask[point] and not (fixed.mask & ~box.mask).any()


def test_a_click_inside_a_box_adds_only_inside_it(lite_engine):
    """Abdominal MR at 3 mm (pseudo ground truth), the iliopsoas tip (class 49) on slices 0 and 4:
    the box's mask misses the click, whose intensity region runs out of the box. What the click
    adds stays inside the box drawn; a click outside the box still extends the mask past it."""
    from napari_sam_mis.annotate.clicks import _box_region, _near
    from napari_sam_mis.annotate.geometry import mask_box

    volume = read_volume(need(ABDOMEN_MR))
    volume.modality = "MR"
    psoas = read_label_array(need(ABDOMEN_MR_LABEL), volume) == 49
    session = AnnotationSession(volume, lite_engine)
    for z in (0, 4):
        box, point = mask_box(psoas[z]), farthest_interior_point(psoas[z])
        boxed = session.predict(z, Prompt(box=box)).mask
        hint = RegionHints(np.asarray(session.display_slice(z), np.float32))(point, 10.0) & _near(boxed.shape, point, boxed)
        inside = _box_region(box, boxed.shape)
        assert not boxed[point] and (hint & ~inside).any()  # the click's region reaches out of the box
        clicked = session.predict(z, Prompt(box=box, points=[point], labels=[POSITIVE])).mask
        assert clicked[point] and not (clicked & ~boxed & ~inside).any()
        assert dice(clicked, psoas[z]) > dice(boxed, psoas[z])
    r0, c0, r1, c1 = box
    outside = (int(r1) + 6, int(c1))  # below the box: the user extends it
    extended = session.predict(4, Prompt(box=box, points=[outside], labels=[POSITIVE])).mask
    assert extended[outside]


def test_a_negative_click_on_a_box_removes_only_near_itself(lite_engine):
    """The dcmqi CT's spine (semi-automatic label): its box's mask, then a negative click on a part
    the mask has beyond the label. The click leaves the mask and nothing grows, and the removal
    stays local: cutting away all that is nearer to the click than to the mask's anchor point
    took 1,742 of its 4,406 pixels here."""
    from napari_sam_mis.annotate.geometry import mask_box

    from ..helpers import DATA

    volume = read_volume(need(DATA / "dcmqi_ct3slice_liver_seg" / "ct"))
    spine = read_label_array(need(DATA / "dcmqi_ct3slice_liver_seg" / "liver_spine_seg.nrrd"), volume)[1] == 2
    session = AnnotationSession(volume, lite_engine)
    box = mask_box(spine)
    boxed = session.predict(1, Prompt(box=box)).mask
    extra = boxed & ~spine
    target = tuple(int(v) for v in np.argwhere(extra)[len(np.argwhere(extra)) // 2])
    corrected = session.predict(1, Prompt(points=[target], labels=[NEGATIVE], box=box)).mask
    assert not corrected[target] and not (corrected & ~boxed).any()
    assert (boxed & ~corrected).sum() <= 0.1 * boxed.sum()
    assert dice(corrected, spine) >= dice(boxed, spine) - 0.01
