"""The command line on real data with the real weights: eval's JSON, 2D PNGs, segment --propagate."""
import json
from pathlib import Path

import numpy as np
import pytest

from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.cli import main
from napari_sam_mis.evaluation.protocol import evaluate
from napari_sam_mis.io import read_volume
from napari_sam_mis.io.raster import read_mask_raster

from ..helpers import LESION_9, SAMMED2D, SPLEEN_CT, SPLEEN_LABEL, need

KEYS = {"mean_dice", "per_label", "prompt", "mode", "model", "seconds"}


def run_cli(capsys, *args) -> dict:
    assert main([str(a) for a in args]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    return json.loads(last)


def test_eval_prints_json_last_and_writes_it(capsys, tmp_path):
    out = tmp_path / "r.json"
    res = run_cli(capsys, "eval", need(LESION_9), "--prompt", "box", "--mode", "2d", "--device", "cpu", "--json", out)
    assert set(res) == KEYS
    assert res["prompt"] == "box" and res["mode"] == "2d" and res["model"] == "litemedsam"
    assert list(res["per_label"]) == ["1"]
    assert res["mean_dice"] > 0.89  # the LiteMedSAM recipe gives 0.909 here
    assert json.loads(out.read_text()) == res


def test_eval_uncertainty_adds_auroc_and_click_gains(capsys):
    """On the validation lesion (figures in docs/uncertainty.md): the map ranks the box mask's
    wrong pixels above its right ones, and the JSON says how much the suggested click gives."""
    res = run_cli(capsys, "eval", need(LESION_9), "--prompt", "box", "--device", "cpu", "--uncertainty")
    assert set(res) >= KEYS | {"uncertainty_auroc", "suggested_click_gain", "error_click_gain", "uncertainty_slices"}
    assert res["uncertainty_slices"] == 7 and res["uncertainty_auroc"] > 0.65
    assert -1 <= res["suggested_click_gain"] <= 1 and -1 <= res["error_click_gain"] <= 1


@pytest.mark.slow
def test_eval_spleen_box_2d_reaches_096(capsys):
    res = run_cli(capsys, "eval", need(SPLEEN_CT), need(SPLEEN_LABEL), "--prompt", "box", "--mode", "2d", "--device", "cpu")
    assert res["mean_dice"] >= 0.96


@pytest.mark.slow
def test_eval_spleen_3d_propagates_from_one_box(capsys):
    res = run_cli(capsys, "eval", need(SPLEEN_CT), need(SPLEEN_LABEL), "--mode", "3d", "--device", "cpu")
    assert res["mode"] == "3d" and res["mean_dice"] >= 0.93  # 0.943 (the published recipe: 0.874)


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["point", "points5", "points5+5", "box+point"])
def test_every_prompt_kind_runs(capsys, prompt):
    res = run_cli(capsys, "eval", need(LESION_9), "--prompt", prompt, "--device", "cpu")
    assert res["prompt"] == prompt and 0.0 <= res["mean_dice"] <= 1.0


@pytest.mark.slow
def test_eval_every_sammed2d_png_mask(lite_engine, capsys):
    images = sorted((need(SAMMED2D) / "images").glob("*.png"))
    masks = sorted((SAMMED2D / "masks").glob("*.png"))
    assert len(images) == 5 and len(masks) == 30
    results = {}
    for image in images:
        session = AnnotationSession(read_volume(image), lite_engine)
        for mask in (m for m in masks if m.name.startswith(image.stem + "_")):
            gt = read_mask_raster(mask, session.volume.shape[1:])
            results[mask.name] = evaluate(session, gt, "box", "2d")["mean_dice"]
    assert len(results) == 30
    # LiteMedSAM with tight boxes on these 30 organs (ribs and small vessels included): mean 0.68
    assert np.mean(list(results.values())) > 0.6, results
    assert sum(d > 0.8 for d in results.values()) >= 12, results  # 14 of 30 measured
    # and the CLI itself on one PNG pair gives the same figure
    first = next(m for m in masks if m.name.startswith(images[0].stem))
    res = run_cli(capsys, "eval", images[0], first, "--device", "cpu")
    assert res["mean_dice"] == pytest.approx(results[first.name], abs=1e-6)


def test_segment_box_with_propagation_writes_aligned_nifti(capsys, tmp_path):
    import nibabel as nib

    gt = np.asarray(nib.load(need(SPLEEN_LABEL)).dataobj).transpose(2, 1, 0) > 0
    z = int(np.argmax(gt.sum(axis=(1, 2))))
    rows, cols = np.nonzero(gt[z])
    out = tmp_path / "spleen.nii.gz"
    res = run_cli(capsys, "segment", SPLEEN_CT, "--box", z, rows.min(), cols.min(), rows.max(), cols.max(),
                  "--propagate", "--out", out, "--name", "spleen", "--device", "cpu")
    assert Path(res["written"][0]) == out and len(res["slices"]) > 10
    assert set(res["stops"]) == {"up", "down"} and all(isinstance(m, str) and m for m in res["stops"].values())
    img = nib.load(out)
    np.testing.assert_array_equal(img.affine, nib.load(SPLEEN_CT).affine)
    pred = np.asarray(img.dataobj).transpose(2, 1, 0) > 0
    assert 2 * (pred & gt).sum() / (pred.sum() + gt.sum()) > 0.85


def test_cli_errors_are_clear(capsys, tmp_path):
    assert main(["eval", str(tmp_path / "missing.nii.gz")]) == 2
    assert "missing.nii.gz: no such file" in capsys.readouterr().err
    assert main(["segment", str(need(SPLEEN_CT)), "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "give a --box" in capsys.readouterr().err
    assert main(["eval", str(LESION_9), "--model", "sam_vit_b"]) == 2
    assert "needs a checkpoint file" in capsys.readouterr().err


def test_segment_writes_seg_of_an_anonymised_series_only_with_new_uids(capsys, tmp_path):
    """The TotalSegmentator DICOM series has blank Study/Series UIDs: refused with one line that
    names the way out, written with --new-uids."""
    series = need(SAMMED2D.parent / "totalseg_example" / "example_ct_dicom")
    args = ["segment", str(series), "--box", "9", "200", "150", "300", "260", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "a.dcm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "error: " in err[-1] and "--new-uids" in err[-1] and "Traceback" not in "".join(err)
    assert not any(line.startswith("model ") for line in err), "refused before the model is loaded"
    assert not (tmp_path / "a.dcm").exists()
    res = run_cli(capsys, *args, "--out", tmp_path / "b.dcm", "--new-uids")
    assert Path(res["written"][0]).is_file() and res["voxels"] > 0
