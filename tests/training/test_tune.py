"""Tuning on a user's labels with held-back slices (training/tune.py, `finetune --hold-out`), and
tuned models offered by name, on the MSD spleen crop with the real weights."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from napari_sam_mis.errors import ModelError, SamMisError
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.registry import get_spec, model_names
from napari_sam_mis.training.loop import CHECKPOINT_NAME
from napari_sam_mis.training.recipe import Recipe
from napari_sam_mis.training.sources import LabelledImage
from napari_sam_mis.training.tune import TUNE_NAME, held_back_slices, tune, tuned_model_folder

FAST = dict(batch=2, lr=1e-4, warmup=2, checkpoint_every=2, start_from="litemedsam_clicks")


@pytest.fixture(scope="module")
def four_slices(spleen):
    """The spleen's four largest slices (in order) as one small labelled image."""
    ct, gt = spleen
    zs = np.sort(np.argsort(gt.sum(axis=(1, 2)))[-4:])
    return LabelledImage("spleen4", replace(ct, array=ct.array[zs], source=""), gt[zs].astype(np.int32))


def test_held_back_slices_are_the_last_labelled_ones():
    labels = np.zeros((10, 4, 4), np.int32)
    labels[[2, 3, 5, 8], 1, 1] = 1
    assert held_back_slices(labels, 0.5).tolist() == [5, 8]
    assert held_back_slices(labels, 0.25).tolist() == [8]
    with pytest.raises(SamMisError, match="1 labelled slices cannot be split"):
        held_back_slices(labels[:3], 0.5)


def test_tuned_model_names_are_checked():
    for bad in ("", "../x", "a b", "litemedsam"):
        with pytest.raises(SamMisError, match="tuned model name"):
            tuned_model_folder(bad)
    with pytest.raises(ModelError, match="unknown model 'nothing-tuned'"):
        get_spec("nothing-tuned")


def test_tune_reports_held_back_dice_and_offers_the_model_by_name(four_slices):
    out = tuned_model_folder("spleen-tuned")
    stops = []

    def stop_at_two(p):
        if p.stage == "train" and p.done == 2 and not stops:
            stops.append(p.done)
            return False
        return None

    first = tune([four_slices], out, Recipe(steps=4, **FAST), holdout=0.5, progress=stop_at_two)
    assert first["stopped_at"] == 2 and "after" not in first and (out / CHECKPOINT_NAME).is_file()
    assert first["held_back"] == {"spleen4": [2, 3]}  # the last two of the four slices
    assert "spleen-tuned" not in model_names()  # no weights yet: not offered
    before = first["before"]
    assert set(before) == {"box", "point"} and before["box"] > 0.8  # the start model on the held slices

    done = tune([four_slices], out, Recipe(steps=4, **FAST), holdout=0.5, resume=True)
    assert done["resumed_from"] == 2 and done["steps_done"] == 4
    assert done["before"] == before  # measured once, kept in tune.json
    assert all(0.0 <= v <= 1.0 for v in done["after"].values())
    assert json.loads((out / TUNE_NAME).read_text())["after"] == done["after"]
    assert "spleen-tuned" in model_names()
    engine = SamEngine.load("spleen-tuned", device="cpu")
    assert not engine.spec.box_trained and engine.name == "spleen-tuned"


def test_cli_finetune_hold_out_names_the_model(four_slices, tmp_path, capsys):
    import nibabel as nib

    from napari_sam_mis.cli import main

    image, labels = tmp_path / "ct.nii.gz", tmp_path / "ct_seg.nii.gz"
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(four_slices.volume.array, (2, 1, 0)).astype(np.int16), affine), image)
    nib.save(nib.Nifti1Image(np.transpose(four_slices.labels, (2, 1, 0)).astype(np.uint8), affine), labels)
    assert main(["finetune", "--data", f"{image}:{labels}", "--name", "cli-tuned", "--hold-out", "0.5",
                 "--steps", "2", "--batch", "2", "--start-from", "litemedsam_clicks"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["before"]) == set(summary["after"]) == {"box", "point"}
    assert "cli-tuned" in model_names()
    assert main(["finetune", "--data", f"{image}:{labels}", "--name", "x", "--hold-out", "1.5"]) == 2
    assert "--hold-out must lie between 0 and 1" in capsys.readouterr().err
