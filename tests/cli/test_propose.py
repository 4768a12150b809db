"""`napari-sam-mis propose` on the spleen crop: a labels file of proposal ids with the image's
geometry, 0 outside --slices; bad input ends with one error line naming the file (exit 2)."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.cli import main


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_propose_writes_proposal_ids_on_the_images_grid(spleen_copy, tmp_path, capsys):
    ct, label = spleen_copy
    out = tmp_path / "proposals.nii.gz"
    code, stdout, err = _run(capsys, ["propose", ct, "--slices", 14, 15, "--out", out, "--device", "cpu"])
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["slices"] == [14, 15] and summary["proposals"] >= 1
    written, image = nib.load(str(out)), nib.load(str(ct))
    assert written.shape == image.shape
    np.testing.assert_allclose(written.affine, image.affine, atol=1e-5)
    ids = np.asarray(written.dataobj)  # (x, y, z): the package's slice z is the last axis here
    assert not ids[..., :14].any() and not ids[..., 16:].any()
    assert ids[..., 14].any() and ids[..., 15].any()
    spleen = np.asarray(nib.load(str(label)).dataobj) > 0
    on_spleen = ids[..., 15][spleen[..., 15]]
    assert np.count_nonzero(on_spleen) > 0.5 * on_spleen.size, "the spleen is proposed"


@pytest.mark.parametrize("case", ["slices outside the image", "slices reversed", "output is the image",
                                  "output is a folder", "output format", "image missing"])
def test_bad_input_is_one_error_line_before_the_model_loads(case, spleen_copy, tmp_path, capsys, monkeypatch):
    from napari_sam_mis.model.engine import SamEngine

    monkeypatch.setattr(SamEngine, "load", lambda *a, **k: pytest.fail("the model was loaded for bad input"))
    ct, _ = spleen_copy
    out = tmp_path / "proposals.nii.gz"
    folder = tmp_path / "taken.nii.gz"
    folder.mkdir()
    image, argv, named = {
        "slices outside the image": (ct, ["--slices", 20, 40, "--out", out], ct.name),
        "slices reversed": (ct, ["--slices", 15, 14, "--out", out], ct.name),
        "output is the image": (ct, ["--out", ct], ct.name),
        "output is a folder": (ct, ["--out", folder], folder.name),
        "output format": (ct, ["--out", tmp_path / "proposals.png"], "proposals.png"),
        "image missing": (tmp_path / "missing.nii.gz", ["--out", out], "missing.nii.gz"),
    }[case]
    before = ct.read_bytes()
    code, _, err = _run(capsys, ["propose", image, *argv, "--device", "cpu"])
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert named in lines[0], lines[0]
    assert not out.exists() and ct.read_bytes() == before
