"""Preprocessing faithful to each model, prompts on real data with the real weights, coordinates."""
import cv2
import numpy as np
import pytest
import torch

from napari_sam_mis.annotate.geometry import dice
from napari_sam_mis.annotate.masks import mask_for_prompt, masks_for_boxes
from napari_sam_mis.annotate.prompts import Prompt, to_model_frame
from napari_sam_mis.evaluation.simulate import farthest_interior_point, simulate_prompt
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.registry import get_spec

from ..helpers import tiny_sam


def test_litemedsam_preprocessing_matches_the_recipe(lite_engine, spleen_slice):
    disp, _ = spleen_slice
    # The recipe step by step: uint8, 3 channels, area resize of the longest side to 256,
    # min-max to [0, 1], zero padding at the bottom/right.
    img = np.repeat(disp.astype(np.uint8)[:, :, None], 3, axis=-1)
    h, w = img.shape[:2]
    s = 256 / max(h, w)
    nh, nw = int(h * s + 0.5), int(w * s + 0.5)
    ref = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32)
    ref = (ref - ref.min()) / max(ref.max() - ref.min(), 1e-8)
    ref = np.pad(ref, ((0, 256 - nh), (0, 256 - nw), (0, 0))).transpose(2, 0, 1)
    ours, geom = lite_engine.preprocess(disp)
    assert geom.resized == (nh, nw) and geom.original == (h, w)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    # Boxes are scaled by 256 / max(H, W).
    _, _, box = to_model_frame(Prompt(box=(10, 20, 100, 150)), geom.scale)
    np.testing.assert_allclose(box, np.array([20, 10, 150, 100]) * 256 / max(h, w), rtol=1e-6)


def test_box_prompt_segments_the_spleen(lite_engine, spleen_slice):
    disp, gt = spleen_slice
    emb = lite_engine.embed_slices([disp])[0]
    assert tuple(emb.features.shape) == (1, 256, 64, 64)
    res = mask_for_prompt(lite_engine, emb, simulate_prompt(gt, "box"))
    assert res.mask.shape == gt.shape and res.mask.dtype == bool
    assert dice(res.mask, gt) > 0.93
    assert 0.5 < res.score <= 1.1
    assert res.low_res_logits.shape == (1, 256, 256)


def test_points_box_points_and_mask_prompts(lite_engine, spleen_slice):
    disp, gt = spleen_slice
    emb = lite_engine.embed_slices([disp])[0]
    box = mask_for_prompt(lite_engine, emb, simulate_prompt(gt, "box"))
    both = mask_for_prompt(lite_engine, emb, simulate_prompt(gt, "box+point"))
    assert dice(both.mask, gt) > 0.85
    # The previous low-res logits as mask prompt, with the box, keep the object.
    again = mask_for_prompt(lite_engine, emb, Prompt(box=simulate_prompt(gt, "box").box, mask_logits=box.low_res_logits))
    assert dice(again.mask, gt) > 0.85
    # A lone point is ambiguous: three masks, the best predicted IoU is returned.
    pt = Prompt(points=[farthest_interior_point(gt)], labels=[1])
    single = mask_for_prompt(lite_engine, emb, pt)
    _, iou = lite_engine.decode(
        emb.features, *(torch.from_numpy(a)[None] for a in to_model_frame(pt, emb.geometry.scale)[:2]), multimask=True
    )
    assert iou.shape == (1, 3)
    assert single.score == pytest.approx(float(iou.max()), abs=1e-5)
    # Negative points everywhere inside the object remove it from a box mask.
    neg = mask_for_prompt(lite_engine, emb, Prompt(points=[farthest_interior_point(gt)], labels=[0], box=simulate_prompt(gt, "box").box))
    assert neg.mask.sum() < box.mask.sum()


def test_batched_boxes_equal_single_decodes(lite_engine, spleen_slice):
    disp, gt = spleen_slice
    emb = lite_engine.embed_slices([disp])[0]
    boxes = [simulate_prompt(gt, "box").box, (5, 5, 60, 90)]
    batched = masks_for_boxes(lite_engine, emb, boxes)
    for b, res in zip(boxes, batched):
        single = mask_for_prompt(lite_engine, emb, Prompt(box=b))
        assert dice(single.mask, res.mask) > 0.99


def test_coordinates_follow_napari_row_col(lite_engine, spleen_slice):
    """On a strongly non-square crop, (row, col) prompts land where napari shows them: the
    transposed image with the transposed box gives the transposed mask."""
    disp, gt = spleen_slice
    rows = np.flatnonzero(gt.any(axis=1))
    crop = slice(max(rows[0] - 10, 0), rows[-1] + 10)
    wide = ((0, 0), (0, 2 * disp.shape[1]))  # dark tissue-free area to the right
    img, mask = np.pad(disp[crop], wide), np.pad(gt[crop], wide)
    assert img.shape[1] > 1.5 * img.shape[0]
    box = simulate_prompt(mask, "box").box
    a = mask_for_prompt(lite_engine, lite_engine.embed_slices([img])[0], Prompt(box=box)).mask
    t_box = (box[1], box[0], box[3], box[2])
    b = mask_for_prompt(lite_engine, lite_engine.embed_slices([np.ascontiguousarray(img.T)])[0], Prompt(box=t_box)).mask
    assert dice(a, mask) > 0.85
    assert dice(b.T, a) > 0.9
    # The one conversion point: (row, col) -> (x, y).
    coords, labels, _ = to_model_frame(Prompt(points=[(10, 50)], labels=[1]), (2.0, 3.0))
    np.testing.assert_allclose(coords, [[150.0, 20.0]])


@pytest.mark.parametrize("name", ["sam_vit_b", "medsam_vit_b"])
def test_sam_family_paths_with_a_tiny_model(name):
    engine = SamEngine(tiny_sam(), get_spec(name), torch.device("cpu"), weights_path=None)
    img = (np.arange(120 * 200) % 255).reshape(120, 200).astype(np.float32)
    x, geom = engine.preprocess(img)
    assert x.shape == (3, 1024, 1024)
    if name == "sam_vit_b":
        from segment_anything.utils.transforms import ResizeLongestSide

        assert geom.resized == (614, 1024) and geom.scale == (1024 / 200, 1024 / 200)
        raw = ResizeLongestSide(1024).apply_image(np.repeat(img.astype(np.uint8)[..., None], 3, -1)).astype(np.float32)
        mean = np.array([123.675, 116.28, 103.53], np.float32)
        std = np.array([58.395, 57.12, 57.375], np.float32)
        np.testing.assert_allclose(x[:, :614, :].transpose(1, 2, 0), (raw - mean) / std, atol=1e-4)
        assert np.all(x[:, 614:, :] == 0)
    else:
        assert geom.resized == (1024, 1024) and geom.scale == (1024 / 120, 1024 / 200)
        assert x.min() == 0.0 and x.max() == 1.0
    emb = engine.embed_slices([img])[0]
    res = mask_for_prompt(engine, emb, Prompt(points=[(60, 100)], labels=[1], box=(20, 30, 90, 170)))
    assert res.mask.shape == (120, 200) and res.low_res_logits.shape == (1, 256, 256)
