"""Click training (`napari-sam-mis finetune`) and the shipped `litemedsam_clicks` model, on real data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_sam_mis.errors import InputError, ModelError, SamMisError
from napari_sam_mis.model.decoder_weights import WEIGHTS_NAME, read_decoder_weights, tuned_state
from napari_sam_mis.training.loop import CHECKPOINT_NAME, train
from napari_sam_mis.training.recipe import Recipe
from napari_sam_mis.training.sources import read_sources
from napari_sam_mis.training.train_set import build_train_set

from ..helpers import SAMMED2D, SPLEEN_CT, SPLEEN_LABEL, malicious_checkpoint, need

TINY = dict(batch=2, lr=1e-4, warmup=2, checkpoint_every=2)


def _pair():
    """One real CT slice with one organ mask (SAM-Med2D demo): the smallest training input."""
    image = need(SAMMED2D / "images" / "s0619_32.png")
    mask = need(SAMMED2D / "masks" / "s0619_32_colon_000.png")
    return f"{image}:{mask}"


@pytest.fixture(scope="module")
def tiny_set(lite_engine):
    return build_train_set(read_sources([_pair()]), lite_engine, Recipe(**TINY))


@pytest.fixture(scope="module")
def straight_run(tiny_set, lite_engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train(tiny_set, lite_engine, Recipe(steps=4, seed=3, **TINY), out)
    return read_decoder_weights(out, "litemedsam_clicks")["state"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_finetune_end_to_end_writes_loadable_weights(tmp_path, capsys):
    from napari_sam_mis.cli import main
    from napari_sam_mis.model.engine import SamEngine

    out = tmp_path / "run"
    assert main(["finetune", "--data", _pair(), "--out", str(out), "--steps", "3", "--batch", "2", "--seed", "1",
                 "--checkpoint-every", "2", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["steps_done"] == 3 and summary["objects"] >= 1
    assert "step 3/3" in captured.err  # progress reached the command line
    weights = out / WEIGHTS_NAME
    assert weights.stat().st_size < 10e6
    assert json.loads((out / "recipe.json").read_text())["recipe"]["seed"] == 1
    state = read_decoder_weights(weights, "litemedsam_clicks")["state"]
    assert all(k.startswith(("prompt_encoder.", "mask_decoder.")) for k in state)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    engine = SamEngine.load("litemedsam_clicks", checkpoint=str(out), device="cpu")
    base = SamEngine.load("litemedsam", device="cpu")
    tuned, plain = tuned_state(engine.module), tuned_state(base.module)
    assert any(not torch.equal(tuned[k], plain[k]) for k in tuned)  # training moved the decoder
    assert all(torch.equal(a, b) for a, b in zip(engine.module.image_encoder.state_dict().values(),
                                                 base.module.image_encoder.state_dict().values()))


def test_resume_continues_from_the_checkpoint_step(tiny_set, lite_engine, straight_run, tmp_path):
    recipe = Recipe(steps=4, seed=3, **TINY)
    seen = []

    def stop_at_2(p):
        seen.append((p.stage, p.done))
        return not (p.stage == "train" and p.done == 2)

    result = train(tiny_set, lite_engine, recipe, tmp_path, progress=stop_at_2)
    assert result["stopped_at"] == 2 and not (tmp_path / WEIGHTS_NAME).exists()
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["step"] == 2
    seen.clear()
    summary = train(tiny_set, lite_engine, recipe, tmp_path, resume=True, progress=seen.append)
    assert summary["resumed_from"] == 2
    assert [p.done for p in seen if p.stage == "train"] == [3, 4]
    assert _same(read_decoder_weights(tmp_path, "x")["state"], straight_run)  # as if never interrupted


def test_same_seed_same_weights_other_seed_differs(tiny_set, lite_engine, straight_run, tmp_path):
    train(tiny_set, lite_engine, Recipe(steps=4, seed=3, **TINY), tmp_path / "again")
    assert _same(read_decoder_weights(tmp_path / "again", "x")["state"], straight_run)
    train(tiny_set, lite_engine, Recipe(steps=4, seed=4, **TINY), tmp_path / "other")
    assert not _same(read_decoder_weights(tmp_path / "other", "x")["state"], straight_run)


def test_resume_refuses_another_recipe(tiny_set, lite_engine, tmp_path):
    from napari_sam_mis.errors import SamMisError

    with pytest.raises(SamMisError, match="no checkpoint"):
        train(tiny_set, lite_engine, Recipe(steps=2, **TINY), tmp_path, resume=True)
    train(tiny_set, lite_engine, Recipe(steps=2, seed=3, **TINY), tmp_path)
    with pytest.raises(SamMisError, match="another recipe"):
        train(tiny_set, lite_engine, Recipe(steps=3, seed=9, **TINY), tmp_path, resume=True)


def test_shipped_click_model_segments_spleen_from_one_click(lite_engine):
    """One click in the middle of the spleen through the plain decoder path: the click-trained
    decoder answers with much of the organ, the box-trained LiteMedSAM decoder with nothing.
    (See models/MODEL_CARD.md for the measured Dice.)"""
    from napari_sam_mis.annotate.geometry import dice
    from napari_sam_mis.annotate.masks import mask_for_prompt
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.evaluation.simulate import simulate_prompt
    from napari_sam_mis.io import read_labels, read_volume
    from napari_sam_mis.model.engine import SamEngine

    volume = read_volume(need(SPLEEN_CT))
    gt = read_labels(need(SPLEEN_LABEL), volume).array > 0
    areas = gt.sum(axis=(1, 2))
    z = int(np.argsort(areas)[len(areas) * 3 // 4])  # a slice with a large spleen section
    prompt = simulate_prompt(gt[z], "point")
    emb = AnnotationSession(volume, lite_engine).embedding(z)  # the image encoder is the same in both
    tuned_dice = dice(mask_for_prompt(SamEngine.load("litemedsam_clicks", device="cpu"), emb, prompt).mask, gt[z])
    plain_dice = dice(mask_for_prompt(lite_engine, emb, prompt).mask, gt[z])
    assert plain_dice < 0.02, plain_dice  # the box-trained decoder draws (almost) nothing for a lone click
    assert tuned_dice > 0.4, (tuned_dice, plain_dice)  # 0.54 with the shipped weights


def test_broken_or_mismatched_weights_give_clear_errors(tmp_path):
    from napari_sam_mis.model.engine import SamEngine
    from napari_sam_mis.model.weights import bundled_litemedsam_path

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="broken.pt.*not a readable"):
        SamEngine.load("litemedsam_clicks", checkpoint=str(broken), device="cpu")
    with pytest.raises(ModelError, match="not a napari-sam-mis decoder-weights file"):
        SamEngine.load("litemedsam_clicks", checkpoint=str(bundled_litemedsam_path()), device="cpu")
    with pytest.raises(ModelError, match="not found"):
        SamEngine.load("litemedsam_clicks", checkpoint=str(tmp_path / "missing"), device="cpu")
    from napari_sam_mis.model.registry import get_spec
    from napari_sam_mis.model.weights import SHIPPED_DIR

    payload = torch.load(SHIPPED_DIR / get_spec("litemedsam_clicks").decoder_overlay, weights_only=True)
    name = "mask_decoder.iou_prediction_head.layers.0.weight"
    payload["state"][name] = payload["state"][name][:, :10]
    wrong = tmp_path / "wrong_shape.pt"
    torch.save(payload, wrong)
    with pytest.raises(ModelError, match="wrong_shape.pt.*iou_prediction_head"):
        SamEngine.load("litemedsam_clicks", checkpoint=str(wrong), device="cpu")


def test_bad_data_items_name_the_path(tmp_path):
    with pytest.raises(InputError, match="nothing_here"):
        read_sources([str(tmp_path / "nothing_here")])
    (tmp_path / "a.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="no label NIfTI"):
        read_sources([str(tmp_path)])


@pytest.mark.parametrize("fault", ["truncated", "foreign", "not a checkpoint", "code in the pickle"])
def test_resume_from_a_bad_checkpoint_names_it(fault, tiny_set, lite_engine, tmp_path):
    from napari_sam_mis.errors import SamMisError

    recipe = Recipe(steps=2, seed=3, **TINY)
    train(tiny_set, lite_engine, recipe, tmp_path)
    ckpt = tmp_path / CHECKPOINT_NAME
    if fault == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
    elif fault == "foreign":
        torch.save({"model": {"w": torch.zeros(2)}}, str(ckpt))
    elif fault == "not a checkpoint":
        ckpt.write_text("hello")
    else:
        malicious_checkpoint(ckpt, tmp_path / "code_ran", wrap=lambda payload: {"step": 2, "mask_decoder": payload})
    with pytest.raises(SamMisError, match=f"{CHECKPOINT_NAME} is not a") as info:
        train(tiny_set, lite_engine, Recipe(steps=3, seed=3, **TINY), tmp_path, resume=True)
    assert "\n" not in str(info.value) and not (tmp_path / "code_ran").exists()


def test_a_damaged_training_cache_is_rebuilt(lite_engine, tmp_path):
    cache = tmp_path / "train_set_cache.npz"
    first = build_train_set(read_sources([_pair()]), lite_engine, Recipe(**TINY), cache)
    cache.write_bytes(cache.read_bytes()[:2000])
    with pytest.warns(UserWarning, match="damaged"):
        again = build_train_set(read_sources([_pair()]), lite_engine, Recipe(**TINY), cache)
    assert np.array_equal(again.masks, first.masks) and len(again) == len(first)


def test_slice_variants_make_small_and_inverted_copies(lite_engine):
    """The zoomed-out copy holds the object at a quarter of its area, in the middle of a canvas
    of the slice's size; the inverted copy flips the display values; each is one more slice."""
    from napari_sam_mis.training.train_set import _variants

    image = np.zeros((60, 80), np.float32)
    image[10:50, 20:60] = 200.0
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    views = {tag: (img, ms) for tag, img, ms in _variants(image, [mask], Recipe(flip=True, variants=("zoom_out", "invert")))}
    assert set(views) == {"", " mirrored", " zoom_out", " mirrored zoom_out", " invert", " mirrored invert"}
    small, (small_mask,) = views[" zoom_out"]
    assert small.shape == image.shape and small_mask.sum() == mask.sum() // 4
    rows, cols = np.nonzero(small_mask)
    assert abs(rows.mean() - 29.5) <= 1 and abs(cols.mean() - 39.5) <= 1  # the object stays in the middle
    assert small[0, 0] == 0.0 and small[29, 39] == 200.0  # the border's value fills the canvas
    inverted, (same,) = views[" invert"]
    assert np.array_equal(inverted, 255 - image) and np.array_equal(same, mask)
    with pytest.raises(SamMisError, match="unknown slice variant"):
        Recipe(variants=("rotate",)).check()
    one = build_train_set(read_sources([_pair()]), lite_engine, Recipe(**TINY))
    three = build_train_set(read_sources([_pair()]), lite_engine, Recipe(variants=("zoom_out", "invert"), **TINY))
    assert len(three.features) == 3 * len(one.features) and any(n.endswith("zoom_out") for n in three.slice_names)
