"""Embedding throughput of `batch --task embed` with 1 and 2 local Dask workers, beside
single-process `embed` of the same cases, in one run (each with an empty cache of its own).

Cases: the MSD spleen crop (26 slices), the TotalSegmentator CT (30) and DeepLesion 000009 (13).

    python benchmarks/batch_scaling.py [--workers 1 2] [--json benchmarks/results_batch_scaling.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = {"spleen": DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz",
         "totalseg": DATA / "totalseg_example" / "example_ct_sm.nii.gz",
         "lesion9": DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz"}


def single_process(cache: Path) -> tuple[float, int]:
    from napari_sam_mis.cli import main

    slices, t0 = 0, time.perf_counter()
    for image in CASES.values():
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["embed", str(image), "--cache-dir", str(cache), "--device", "cpu"]) == 0
        slices += json.loads(out.getvalue().strip().splitlines()[-1])["computed"]
    return time.perf_counter() - t0, slices


def batch(workers: int, cache: Path, out: Path, manifest: Path) -> tuple[float, int]:
    from napari_sam_mis.batch.manifest import read_manifest
    from napari_sam_mis.batch.runner import run_batch
    from napari_sam_mis.batch.work import Settings

    settings = Settings(task="embed", out_dir=str(out), device="cpu", cache_dir=str(cache))
    t0 = time.perf_counter()
    summary = run_batch(read_manifest(manifest, need_prompts=False), settings, workers=workers, say=lambda _: None)
    assert summary["done"] == len(CASES), summary
    return time.perf_counter() - t0, summary["slices"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", help="write the table as JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = tmp / "manifest.csv"
        manifest.write_text("case,image\n" + "".join(f"{c},{p}\n" for c, p in CASES.items()))
        seconds, slices = single_process(tmp / "cache-single")
        rows.append({"run": "embed, one process (naive)", "workers": 1, "seconds": seconds, "slices": slices})
        for n in args.workers:
            seconds, done = batch(n, tmp / f"cache-{n}", tmp / f"out-{n}", manifest)
            rows.append({"run": f"batch, {n} local worker(s)", "workers": n, "seconds": seconds, "slices": done})
    base = rows[0]["slices"] / rows[0]["seconds"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {rows[0]['slices']} slices in "
          f"{len(CASES)} cases (LiteMedSAM, CPU)")
    print(f"{'run':32s} {'seconds':>8s} {'slices/s':>9s} {'vs embed':>9s}")
    for row in rows:
        row["slices_per_s"] = round(row["slices"] / row["seconds"], 3)
        row["ratio"] = round(row["slices_per_s"] / base, 2)
        print(f"{row['run']:32s} {row['seconds']:8.1f} {row['slices_per_s']:9.2f} {row['ratio']:8.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": os.cpu_count(), "python": sys.version.split()[0],
                                               "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
