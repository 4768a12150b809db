"""`batch` on a real Dask scheduler with two worker processes on loopback: the labels equal the
single-process `segment` voxel for voxel, a rerun does nothing, a failed case does not stop the
others, and a worker killed mid-run is survived."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.cli import main

from ..helpers import DATA, SPLEEN_CT, SPLEEN_LABEL, need

pytest.importorskip("distributed")

TOTALSEG_CT = DATA / "totalseg_example" / "example_ct_sm.nii.gz"
TOTALSEG_SEG = DATA / "totalseg_example" / "example_seg.nii.gz"
HEADER = "case,image,z,r0,c0,r1,c1,label,name\n"


def _box_of(label_path, image_path, value):
    """(z, r0, c0, r1, c1) of the label's largest slice, with a margin of 3 pixels."""
    from napari_sam_mis.io import read_label_array, read_volume

    mask = read_label_array(label_path, read_volume(image_path)) == value
    z = int(np.argmax(mask.reshape(len(mask), -1).sum(axis=1)))
    rr, cc = np.nonzero(mask[z])
    return z, rr.min() - 3, cc.min() - 3, rr.max() + 3, cc.max() + 3


@pytest.fixture(scope="module")
def two_cases(tmp_path_factory):
    """The spleen with its box, and 10 slices of the TotalSegmentator CT with a liver box."""
    folder = tmp_path_factory.mktemp("cases")
    liver_ct, liver_seg = folder / "liver_ct.nii.gz", folder / "liver_seg.nii.gz"
    nib.save(nib.load(need(TOTALSEG_CT)).slicer[:, :, 20:30], str(liver_ct))
    nib.save(nib.load(need(TOTALSEG_SEG)).slicer[:, :, 20:30], str(liver_seg))
    boxes = {"spleen": (need(SPLEEN_CT), _box_of(SPLEEN_LABEL, SPLEEN_CT, 1), 1),
             "liver": (liver_ct, _box_of(liver_seg, liver_ct, 5), 5)}
    manifest = folder / "manifest.csv"
    manifest.write_text(HEADER + "".join(f"{case},{image},{','.join(str(int(v)) for v in box)},{value},{case}\n"
                                         for case, (image, box, value) in boxes.items()))
    return manifest, boxes


def _batch(capsys, *argv):
    code = main(["batch", *map(str, argv)])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_two_workers_give_the_single_process_labels_and_a_rerun_does_nothing(two_cases, tmp_path, capsys):
    from napari_sam_mis.io import read_label_array, read_volume

    manifest, boxes = two_cases
    out = tmp_path / "out"
    code, summary = _batch(capsys, manifest, "--out", out, "--workers", 2, "--device", "cpu")
    assert code == 0 and summary["cases"] == 2 and summary["done"] == 2 and summary["failed"] == 0, summary
    assert summary["workers"] and all(w.startswith("tcp://127.0.0.1") for w in summary["workers"])
    assert summary["slices_per_s"] > 0
    for case, (image, (z, r0, c0, r1, c1), value) in boxes.items():
        ref = tmp_path / f"{case}_ref.nii.gz"
        assert main(["segment", str(image), "--box", *map(str, (z, r0, c0, r1, c1)), "--propagate",
                     "--label", str(value), "--name", case, "--out", str(ref), "--device", "cpu"]) == 0
        volume = read_volume(image)
        ours = read_label_array(out / case / "labels.nii.gz", volume)
        assert ours.any() and np.array_equal(ours, read_label_array(ref, volume)), case
        assert json.loads((out / case / "labels.json").read_text())["labels"][str(value)]["name"] == case
    capsys.readouterr()
    code, again = _batch(capsys, manifest, "--out", out, "--workers", 2, "--device", "cpu")
    assert code == 0 and again["skipped"] == 2 and again["done"] == 0


def test_a_failing_case_is_reported_and_the_others_go_on(two_cases, tmp_path, capsys):
    manifest, _ = two_cases
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a NIfTI")
    rows = manifest.read_text().splitlines()
    liver = next(r for r in rows if r.startswith("liver"))
    bad = tmp_path / "manifest.csv"
    bad.write_text("\n".join([HEADER.strip(), liver, f"broken,{broken},0,1,1,5,5,1,x"]) + "\n")
    code, summary = _batch(capsys, bad, "--out", tmp_path / "out", "--workers", 2, "--device", "cpu")
    assert code == 1 and summary["done"] == 1 and summary["failed"] == 1
    assert "broken.nii.gz" in summary["failures"]["broken"]
    assert not (tmp_path / "out" / "broken" / "record.json").exists()


def test_a_worker_killed_mid_run_is_survived(tmp_path, capsys):
    """Three small embed cases on a scheduler with two workers; one worker is killed while it runs a
    case: the scheduler gives the case to a worker again and every case ends done."""
    from distributed import Client, LocalCluster

    from napari_sam_mis.batch.manifest import read_manifest
    from napari_sam_mis.batch.runner import run_batch
    from napari_sam_mis.batch.work import Settings

    rows = []
    for i in range(3):
        path = tmp_path / f"crop{i}.nii.gz"
        nib.save(nib.load(need(SPLEEN_CT)).slicer[:, :, 10 + 3 * i: 13 + 3 * i], str(path))
        rows.append(f"crop{i},{path}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("case,image\n" + "\n".join(rows) + "\n")
    settings = Settings(task="embed", out_dir=str(tmp_path / "out"), device="cpu", cache_dir=str(tmp_path / "cache"),
                        torch_threads=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        result = {}
        thread = threading.Thread(target=lambda: result.update(run_batch(
            read_manifest(manifest, need_prompts=False), settings, scheduler=cluster.scheduler_address, say=print)))
        thread.start()
        deadline = time.monotonic() + 120
        busy = []
        while not busy and time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            time.sleep(0.2)
        assert busy, "no case started"
        time.sleep(2.0)  # inside the case (the model is loading or the slices are being encoded)
        os.kill(pids[busy[0]], signal.SIGKILL)
        thread.join(timeout=600)
    assert result["done"] == 3 and result["failed"] == 0, result
    for i in range(3):
        assert json.loads((tmp_path / "out" / f"crop{i}" / "record.json").read_text())["result"]["slices"] >= 0
