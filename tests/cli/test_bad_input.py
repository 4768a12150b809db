"""Bad input and a hostile environment on the command line: exit 2, one ``error:`` line that names
the file, no traceback, and nothing the user had is lost. Inputs are built from ../shared/data."""
from __future__ import annotations

import hashlib
import os
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.cli import main

from ..helpers import DATA, SPLEEN_CT, need

SPINE_T1 = DATA / "sct_spine_mr" / "t1w.nii.gz"


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _run(capsys, argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def _assert_clear_error(code, err, *names):
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])


def _box(*box):
    return ["--box", *box, "--device", "cpu"]


@pytest.mark.parametrize("case", [
    "label 0", "label 300", "box outside the slice", "NaN in the box", "click outside the slice",
    "window width 0", "window width NaN", "point label 2",
])
def test_segment_arguments_are_checked_before_the_model_runs(case, spleen_copy, tmp_path, capsys, monkeypatch):
    from napari_sam_mis.model.engine import SamEngine

    monkeypatch.setattr(SamEngine, "load", lambda *a, **k: pytest.fail("the model was loaded for bad arguments"))
    ct, _ = spleen_copy
    out = tmp_path / "out.nii.gz"
    argv = {
        "label 0": _box(12, 80, 60, 140, 130) + ["--label", 0],
        "label 300": _box(12, 80, 60, 140, 130) + ["--label", 300],
        "box outside the slice": _box(12, 80, 60, 140, 400),
        "NaN in the box": _box(12, "nan", 60, 140, 130),
        "click outside the slice": ["--point", 12, -5, 60, "--device", "cpu"],
        "window width 0": _box(12, 80, 60, 140, 130) + ["--level", 40, "--width", 0],
        "window width NaN": _box(12, 80, 60, 140, 130) + ["--level", 40, "--width", "nan"],
        "point label 2": ["--point", 12, 80, 60, 2, "--device", "cpu"],
    }[case]
    code, err = _run(capsys, ["segment", ct, *argv, "--out", out])
    _assert_clear_error(code, err)
    assert not out.exists()


@pytest.mark.parametrize("window", [("40", "0"), ("40", "nan"), ("nan", "400"), ("40", "-inf")],
                         ids=["width 0", "width NaN", "level NaN", "width -Inf"])
def test_embed_refuses_a_window_without_a_finite_level_and_positive_width(window, spleen_copy, tmp_path, capsys,
                                                                          monkeypatch):
    from napari_sam_mis.model.engine import SamEngine

    monkeypatch.setattr(SamEngine, "load", lambda *a, **k: pytest.fail("the model was loaded for a bad window"))
    ct, _ = spleen_copy
    cache = tmp_path / "cache"
    level, width = window
    code, err = _run(capsys, ["embed", ct, f"--level={level}", f"--width={width}", "--cache-dir", cache])
    _assert_clear_error(code, err, "--level/--width")
    assert not cache.exists(), "nothing is embedded with a NaN window"


def test_eval_json_never_overwrites_the_image_or_its_labels(spleen_copy, capsys):
    ct, label = spleen_copy
    before = _digest(ct), _digest(label)
    for target in (ct, label):
        code, err = _run(capsys, ["eval", ct, label, "--json", target, "--device", "cpu"])
        _assert_clear_error(code, err, target.name)
    assert (_digest(ct), _digest(label)) == before


def test_eval_with_empty_labels_is_an_error_not_nan(spleen_copy, tmp_path, capsys):
    ct, label = spleen_copy
    img = nib.load(str(label))
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), str(empty))
    code, err = _run(capsys, ["eval", ct, empty, "--device", "cpu"])
    _assert_clear_error(code, err, "empty.nii.gz")


def test_export_overwrite_never_deletes_the_cases_own_files(spleen_copy, capsys):
    ct, label = spleen_copy
    out_root = ct.parent.parent
    dataset = out_root / "Dataset501_Spleen"
    dataset.mkdir()
    inside_ct, inside_label = dataset / "ct.nii.gz", dataset / "label.nii.gz"
    shutil.move(ct, inside_ct)
    shutil.move(label, inside_label)
    before = _digest(inside_ct)
    code, err = _run(capsys, ["export-dataset", "--case", inside_ct, inside_label, "--out", out_root, "--id", 501,
                              "--name", "Spleen", "--overwrite"])
    _assert_clear_error(code, err, "Dataset501_Spleen")
    assert _digest(inside_ct) == before and inside_label.exists()


def test_an_output_path_that_is_a_folder_is_a_clear_error(spleen_copy, tmp_path, capsys):
    ct, _ = spleen_copy
    folder = tmp_path / "taken.nii.gz"
    folder.mkdir()
    code, err = _run(capsys, ["segment", ct, *_box(12, 80, 60, 140, 130), "--out", folder])
    _assert_clear_error(code, err, folder)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("fault", ["NaN voxel", "+Inf voxel", "all NaN", "NaN pixdim", "NaN voxel, export-dataset"])
def test_nifti_with_non_finite_values_or_geometry_is_refused(fault, tmp_path, capsys):
    data = np.full((8, 9, 4), 50.0, np.float32)
    data[0, 0, 0] = -1000.0
    affine = np.eye(4)
    if fault.startswith("NaN voxel"):
        data[3, 3, 1] = np.nan
    elif fault == "+Inf voxel":
        data[3, 3, 1] = np.inf
    elif fault == "all NaN":
        data[:] = np.nan
    img = nib.Nifti1Image(data, affine)
    if fault == "NaN pixdim":  # (nibabel itself repairs a zero pixdim)
        img.header["pixdim"][3] = np.nan
    path = tmp_path / "broken.nii.gz"
    nib.save(img, str(path))
    if fault.endswith("export-dataset"):
        labels = tmp_path / "labels.nii.gz"
        nib.save(nib.Nifti1Image(np.ones(data.shape, np.uint8), affine), str(labels))
        argv = ["export-dataset", "--case", path, labels, "--out", tmp_path / "raw", "--id", 4, "--name", "N"]
    else:
        argv = ["segment", path, "--box", 1, 1, 1, 6, 6, "--out", tmp_path / "o.nii.gz"]
    code, err = _run(capsys, argv)
    _assert_clear_error(code, err, "broken.nii.gz")
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "raw").exists()


def test_mr_in_nifti_gets_the_mr_window_and_the_cli_says_why(capsys):
    from napari_sam_mis.annotate.window import Window
    from napari_sam_mis.io import read_volume

    volume = read_volume(need(SPINE_T1))
    assert volume.modality == "MR" and "inferred" in volume.meta["modality_source"]
    assert Window.for_volume(volume).kind == "percentile"
    ct = read_volume(need(SPLEEN_CT))
    assert ct.modality == "CT" and Window.for_volume(ct).kind == "level_width"
    assert Window.for_volume(volume, "CT").kind == "level_width"  # the user's choice wins


def test_modality_flag_overrides_the_inference(spleen_copy, tmp_path, capsys):
    ct, _ = spleen_copy
    out = tmp_path / "o.nii.gz"
    code = main(["segment", str(ct), "--box", "12", "80", "60", "140", "130", "--modality", "MR",
                 "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0 and "modality MR (given with --modality); window pct:0.5-99.5" in err


def test_cli_names_the_inferred_modality(capsys, tmp_path):
    out = tmp_path / "o.nii.gz"
    code = main(["segment", str(need(SPINE_T1)), "--box", "30", "20", "20", "40", "40", "--out", str(out),
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0 and "modality MR (inferred from the intensities" in err


def test_labels_and_sidecar_are_written_as_a_unit(spleen_copy, tmp_path, monkeypatch):
    """With room for the NIfTI but not the sidecar, the old pair stays as it was."""
    from pathlib import Path

    from napari_sam_mis.io import read_volume, write_labels

    ct, label = spleen_copy
    volume = read_volume(ct)
    labels = (read_volume(label).array > 0).astype(np.uint8)
    out = tmp_path / "work.nii.gz"
    written = write_labels(labels, volume, out, segments={1: "spleen"})
    before = [_digest(p) for p in written]
    real_write_text = Path.write_text

    def full_disk(self, *a, **k):
        if self.name.startswith(".work.json"):
            raise OSError(28, "No space left on device", str(self))
        return real_write_text(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        write_labels(labels * 2, volume, out, segments={2: "lesion"})
    assert [_digest(p) for p in written] == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_outputs_follow_the_umask(spleen_copy, tmp_path, capsys):
    ct, label = spleen_copy
    old = os.umask(0o022)
    try:
        code = main(["export-dataset", "--case", str(ct), str(label), "--out", str(tmp_path / "raw"), "--id", "7",
                     "--name", "Spleen"])
        from napari_sam_mis.io import read_volume, write_labels

        volume = read_volume(ct)
        written = write_labels(np.zeros(volume.shape, np.uint8), volume, tmp_path / "l.nii.gz")
    finally:
        os.umask(old)
    assert code == 0
    dataset = tmp_path / "raw" / "Dataset007_Spleen"
    assert dataset.stat().st_mode & 0o777 == 0o755
    assert (dataset / "dataset.json").stat().st_mode & 0o777 == 0o644
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written)


def test_only_stale_temporary_files_are_removed(tmp_path):
    from napari_sam_mis.io.atomic import _HOST, remove_stale_temps, write_bytes_atomic

    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    stale = tmp_path / f".x.npy.{_HOST}-{dead}.abcd1234.tmp.npy"
    live = tmp_path / f".x.npy.{_HOST}-{os.getpid()}.abcd1234.tmp.npy"  # a write in progress
    other = tmp_path / ".notes.txt"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    assert remove_stale_temps(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()
    stale.write_bytes(b"partial")
    write_bytes_atomic(tmp_path / "x.npy", b"data")  # a write cleans up after a killed write of the same file
    assert not stale.exists() and live.exists() and (tmp_path / "x.npy").read_bytes() == b"data"


@pytest.mark.parametrize("case", ["3000 x 2 slice", "1e-4 mm pixels"])
def test_extreme_slice_shapes_and_voxel_sizes(case, tmp_path, capsys):
    """A 3000 x 2 slice is segmented; voxel sizes that would make a huge resampled slice are refused."""
    if case == "3000 x 2 slice":
        thin = tmp_path / "thin.nii.gz"
        data = np.full((2, 3000, 1), -1000.0, np.float32)  # NIfTI (x, y, z): one 3000 x 2 axial slice
        data[:, 1000:2000] = 40.0
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(thin))
        code = main(["segment", str(thin), "--box", "0", "900", "0", "2100", "1", "--out", str(tmp_path / "t.nii.gz"),
                     "--device", "cpu"])
        assert code == 0, capsys.readouterr().err
        return
    tiny = tmp_path / "tiny.nii.gz"
    nib.save(nib.Nifti1Image(np.full((64, 64, 8), -1000.0, np.float32), np.diag([1e-4, 1e-4, 5.0, 1.0])), str(tiny))
    code, err = _run(capsys, ["embed", tiny, "--axis", "1", "--device", "cpu"])
    _assert_clear_error(code, err, "tiny.nii.gz", "voxel sizes")


@pytest.mark.parametrize("target", ["missing", "text file"])
def test_view_of_something_it_cannot_open_is_one_error_line_before_any_window(target, tmp_path, capsys):
    path = tmp_path / "missing.nii.gz"
    if target == "text file":
        path = tmp_path / "notes.txt"
        path.write_text("not an image")
    code, err = _run(capsys, ["view", path])
    _assert_clear_error(code, err, path.name)


def test_the_reader_opens_cvpr24_npz_images():
    from napari_sam_mis._napari.readers import napari_get_reader

    path = need(DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz")
    (data, kwargs, kind), = napari_get_reader(str(path))(str(path))
    assert kind == "image" and data.shape == (13, 512, 512) and kwargs["metadata"]["volume"].windowed
