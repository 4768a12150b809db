"""A hostile environment: read-only folders, a full disk, folders that are files, two processes on
one cache, a write killed with SIGKILL. The command ends with exit 2 and one ``error:`` line that
names the file, and nothing the user had is lost. Inputs are built from ../shared/data."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.cli import main

from ..helpers import SAMMED2D, SPLEEN_CT, need
from .test_bad_input import _assert_clear_error, _digest, _run

BOX = ["--box", 12, 80, 60, 140, 130, "--device", "cpu"]


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _old_output(command, ct, label, folder):
    """What an earlier run left in ``folder``: labels of ``segment``, a dataset of ``export-dataset``;
    returns (argv, the files that must stay as they are)."""
    if command == "segment":
        from napari_sam_mis.io import read_volume, write_labels

        out = folder / "old.nii.gz"
        written = write_labels(np.ones(read_volume(ct).shape, np.uint8), read_volume(ct), out)
        return ["segment", ct, *BOX, "--out", out], written
    argv = ["export-dataset", "--case", ct, label, "--out", folder, "--id", 9, "--name", "Old"]
    assert main([str(a) for a in argv]) == 0
    return [*argv, "--overwrite"], sorted(p for p in folder.rglob("*") if p.is_file())


# -- read-only folders and a full disk ----------------------------------------------------------

@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file modes")
@pytest.mark.parametrize("command", ["segment", "export-dataset"])
def test_read_only_output_folder(command, spleen_copy, tmp_path, capsys):
    ct, label = spleen_copy
    folder = tmp_path / "read_only"
    folder.mkdir()
    out = folder / ("o.nii.gz" if command == "segment" else "")
    argv = ["segment", ct, *BOX, "--out", out] if command == "segment" else \
        ["export-dataset", "--case", ct, label, "--out", folder, "--id", 9, "--name", "S"]
    folder.chmod(0o555)
    try:
        code, err = _run(capsys, argv)
    finally:
        folder.chmod(0o755)
    _assert_clear_error(code, err, folder)
    assert list(folder.iterdir()) == []


def _refuse_temporaries_in(folder, monkeypatch):
    """A folder that refuses new files, as a read-only one does (for root, too)."""
    real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp

    def refused(real):
        def make(suffix=None, prefix=None, dir=None, **kwargs):
            if dir is not None and os.path.samefile(dir, folder):  # the error names the temporary, as the real one
                raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}a1b2c3d4{suffix or ''}"))
            return real(suffix=suffix, prefix=prefix, dir=dir, **kwargs)
        return make

    monkeypatch.setattr(tempfile, "mkstemp", refused(real_mkstemp))
    monkeypatch.setattr(tempfile, "mkdtemp", refused(real_mkdtemp))


def _fill_the_disk(monkeypatch):
    """Every NIfTI write stops half-way with ENOSPC, which (like a real write) names no file."""
    def full(img, filename):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nib, "save", full)


@pytest.mark.parametrize("fault", ["read-only folder", "full disk"])
@pytest.mark.parametrize("command", ["segment", "export-dataset"])
def test_a_failed_write_keeps_the_old_output_and_names_it(command, fault, spleen_copy, tmp_path, capsys, monkeypatch):
    ct, label = spleen_copy
    folder = tmp_path / "out"
    folder.mkdir()
    argv, old_files = _old_output(command, ct, label, folder)
    before = [_digest(p) for p in old_files]
    if fault == "full disk":
        _fill_the_disk(monkeypatch)
    else:
        _refuse_temporaries_in(folder, monkeypatch)
    code, err = _run(capsys, argv)
    shown = old_files[0] if command == "segment" else folder / "Dataset009_Old"
    _assert_clear_error(code, err, shown)
    assert [_digest(p) for p in old_files] == before
    assert _hidden(folder) == []


# -- a file where a folder belongs ---------------------------------------------------------------

@pytest.mark.parametrize("case", ["finetune --out", "embed --cache-dir", "cache folder from the environment",
                                  "segment --out inside a file"])
def test_a_file_where_a_folder_belongs(case, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    small = tmp_path / "small.nii.gz"
    img = nib.load(str(need(SPLEEN_CT)))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, 13:14], img.affine), str(small))
    pair = f"{need(SAMMED2D / 'images' / 's0619_32.png')}:{SAMMED2D / 'masks' / 's0619_32_colon_000.png'}"
    argv = {
        "finetune --out": ["finetune", "--data", pair, "--out", blocker, "--steps", 1],
        "embed --cache-dir": ["embed", small, "--cache-dir", blocker, "--device", "cpu"],
        "cache folder from the environment": ["embed", small, "--device", "cpu"],
        "segment --out inside a file": ["segment", small, "--box", 0, 80, 60, 140, 130, "--out", blocker / "o.nii.gz",
                                        "--device", "cpu"],
    }[case]
    if case == "cache folder from the environment":
        monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(blocker))
    code, err = _run(capsys, argv)
    _assert_clear_error(code, err, blocker)
    assert blocker.read_text() == "not a folder"


# -- two processes, one cache ----------------------------------------------------------------------

def _embed_argv(image, cache) -> list[str]:
    return ["embed", str(image), "--cache-dir", str(cache), "--device", "cpu", "--batch", "1"]


def _chunks(cache) -> dict[int, np.ndarray]:
    return {int(p.name[:5]): np.load(p) for p in sorted(cache.glob("*/*.npy"))}


def test_two_processes_embed_one_volume_into_one_cache(tmp_path, capsys):
    img = nib.load(str(need(SPLEEN_CT)))
    image = tmp_path / "two_slices.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, 13:15], img.affine), str(image))
    shared, alone = tmp_path / "shared_cache", tmp_path / "alone_cache"
    runs = [subprocess.Popen([sys.executable, "-m", "napari_sam_mis", *_embed_argv(image, shared)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [run.communicate(timeout=240) for run in runs]
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0 and "Traceback" not in err, err
        assert json.loads(out.strip().splitlines()[-1])["complete"]
    assert main(_embed_argv(image, shared)) == 0  # a third run finds everything
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["complete"] and summary["computed"] == 0 and summary["damaged_before"] == 0
    assert main(_embed_argv(image, alone)) == 0
    together, single = _chunks(shared), _chunks(alone)
    assert sorted(together) == sorted(single) == [0, 1]
    for z in single:
        np.testing.assert_allclose(together[z].astype(np.float32), single[z].astype(np.float32), atol=2e-2)
    assert _hidden(next(shared.iterdir())) == []


def test_opening_a_cache_leaves_another_process_s_write_in_progress(tmp_path):
    from napari_sam_mis.embeddings.store import EmbeddingStore
    from napari_sam_mis.io.atomic import _HOST
    from napari_sam_mis.model.slices import SliceGeometry

    args = (tmp_path, {"image": "x"}, SliceGeometry((4, 4), (4, 4), (1.0, 1.0), 4), (1, 2, 2))
    store = EmbeddingStore(*args)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = store.dir / f".00000.0000abcd.npy.{_HOST}-{writer.pid}.x1y2z3.tmp.npy"
        live.write_bytes(b"half of a chunk")
        EmbeddingStore(*args)
        assert live.exists(), "a live writer's temporary file was deleted"
    finally:
        writer.kill()
        writer.wait()
    EmbeddingStore(*args)
    assert not live.exists(), "a dead writer's temporary file is left behind"


# -- SIGKILL in the middle of a labels write ---------------------------------------------------------

_WRITER = """
import sys, time
import nibabel as nib
import numpy as np
from napari_sam_mis.io import read_volume, write_labels

volume, out, moment = read_volume(sys.argv[1]), sys.argv[2], sys.argv[3]
new = np.zeros(volume.shape, np.uint8)
new[5:10, 50:100, 50:100] = 1
if moment == "inside the write":
    def stuck(img, filename):
        open(filename, "wb").write(b"half a file")
        print("writing", flush=True)
        time.sleep(600)
    nib.save = stuck
else:
    print("writing", flush=True)
for i in range(10**6):
    write_labels(new, volume, out, segments={1: "new"})
"""


@pytest.mark.parametrize("moment", ["inside the write", "at a random moment"])
def test_a_labels_write_killed_leaves_old_or_new_and_no_litter(moment, spleen_copy, tmp_path):
    from napari_sam_mis.io import read_labels, read_volume, write_labels

    ct, _ = spleen_copy
    volume = read_volume(ct)
    out = tmp_path / "labels.nii.gz"
    old = np.zeros(volume.shape, np.uint8)
    old[0:2, 0:10, 0:10] = 1
    write_labels(old, volume, out, segments={1: "old"})
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(ct), str(out), moment], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "writing"
    if moment == "at a random moment":
        import random
        import time

        time.sleep(random.uniform(0.3, 1.5))
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    labels = read_labels(out, volume)
    assert int(labels.array.sum()) in (2 * 10 * 10, 5 * 50 * 50)
    assert labels.segments[1].name in ("old", "new")
    if moment == "inside the write":
        assert labels.segments[1].name == "old" and _hidden(tmp_path)  # the killed write's temporary files
    write_labels(old, volume, out, segments={1: "next"})
    assert _hidden(tmp_path) == [], "the next write removes what the killed one left"
    assert read_labels(out, volume).segments[1].name == "next"
