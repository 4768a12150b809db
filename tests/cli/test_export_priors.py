"""`export-dataset --priors` with the real LiteMedSAM on one slice of the MSD spleen crop: the
dataset passes nnU-Net's own integrity check, a second export reads the priors from the cache,
and bad arguments end with one ``error:`` line (exit 2) before the model loads."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.cli import main

from ..helpers import SPLEEN_CT, SPLEEN_LABEL, need


@pytest.fixture
def spleen_crop(tmp_path):
    """Slice 15 of the spleen CT and its label (a 3D grid of one slice), as NIfTI files of their own."""
    paths = []
    for src, name in ((SPLEEN_CT, "ct.nii.gz"), (SPLEEN_LABEL, "label.nii.gz")):
        nib.save(nib.load(str(need(src))).slicer[:, :, 15:16], str(tmp_path / name))
        paths.append(tmp_path / name)
    return paths


def _export(ct, label, out, *extra):
    return main(["export-dataset", "--case", str(ct), str(label), "--out", str(out), "--id", "9", "--name", "Spleen",
                 *map(str, extra)])


def _one_error(capsys, code, *words):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]


def test_priors_export_passes_nnunet_verification_and_the_second_reads_the_cache(spleen_crop, tmp_path, capsys,
                                                                                 monkeypatch):
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity").verify_dataset_integrity
    from napari_sam_mis.model.engine import SamEngine

    real = SamEngine.decode_candidates
    calls = []
    monkeypatch.setattr(SamEngine, "decode_candidates", lambda self, *a: calls.append(1) or real(self, *a))
    ct, label = spleen_crop
    raw, cache = tmp_path / "raw", tmp_path / "cache"
    assert _export(ct, label, raw, "--priors", "--device", "cpu", "--cache-dir", cache) == 0
    err = capsys.readouterr().err
    assert "priors case 1: slice 1/1" in err and calls
    out = raw / "Dataset009_Spleen"
    info = json.loads((out / "dataset.json").read_text())
    assert info["channel_names"] == {"0": "CT", "1": "noNorm", "2": "noNorm"}
    assert info["channel_descriptions"] == {"0": "CT", "1": "sam_segmentation_prior", "2": "sam_boundary_prior"}
    verify(str(out), 1)

    image = nib.load(out / "imagesTr" / "Spleen_001_0000.nii.gz")
    seg_file, boundary_file = (out / "imagesTr" / f"Spleen_001_000{k}.nii.gz" for k in (1, 2))
    seg = np.asanyarray(nib.load(seg_file).dataobj)
    assert np.array_equal(nib.load(seg_file).affine, image.affine) and seg.shape == image.shape
    spleen = np.asanyarray(nib.load(label).dataobj) > 0
    assert 0 <= seg.min() and seg.max() <= 1 and seg[spleen].mean() > 0.9
    boundary = np.asanyarray(nib.load(boundary_file).dataobj)

    calls.clear()
    assert _export(ct, label, raw, "--priors", "--device", "cpu", "--cache-dir", cache, "--overwrite") == 0
    assert not calls  # the priors came from the cache
    assert np.array_equal(np.asanyarray(nib.load(seg_file).dataobj), seg)
    assert np.array_equal(np.asanyarray(nib.load(boundary_file).dataobj), boundary)


@pytest.mark.parametrize("case", ["model without --priors", "unknown model", "missing checkpoint", "empty labels",
                                  "cache is a file"])
def test_priors_errors_are_one_line_and_leave_nothing(case, spleen_crop, tmp_path, capsys, monkeypatch):
    from napari_sam_mis.model.engine import SamEngine

    ct, label = spleen_crop
    raw = tmp_path / "raw"
    args = ["--priors", "--device", "cpu", "--cache-dir", tmp_path / "cache"]
    if case == "model without --priors":
        args, words = ["--model", "sam_vit_b"], ["--model only apply with --priors"]
    elif case == "unknown model":
        args, words = args + ["--model", "no_such_model"], ["unknown model 'no_such_model'"]
    elif case == "missing checkpoint":
        args, words = args + ["--model", "sam_vit_b"], ["needs a checkpoint file"]
    elif case == "empty labels":
        empty = tmp_path / "empty.nii.gz"
        img = nib.load(label)
        nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), str(empty))
        label, words = empty, ["empty.nii.gz", "labels are empty"]
    else:
        (tmp_path / "cache").write_text("not a folder")
        words = ["cache", "is a file"]
    if case in ("model without --priors", "unknown model", "empty labels"):
        monkeypatch.setattr(SamEngine, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    _one_error(capsys, _export(ct, label, raw, *args), *words)
    assert not raw.exists() or not any(raw.iterdir())
