"""Peak memory (RSS) while embedding a 300-slice 512 x 512 CT: everything-in-RAM vs disk store + LRU.

naive: a dict of float32 embeddings (256 x 64 x 64 x 4 B = 4 MiB per slice), as a session
       without a disk cache would keep them all.
store: AnnotationSession with the disk cache (float16 chunks) and a RAM LRU of --lru slices.

Each case runs in a fresh process on the CPU. With the real LiteMedSAM encoder (slow: ~1 s a
slice on a free CPU) only --real-slices slices are embedded and the growth per slice is
extrapolated to 300; a fake encoder (random features, same shapes) then runs all 300 slices of
both cases to show the real curve. The volume is synthetic (int16 noise + ellipses).

    python benchmarks/bench_embedding_memory.py [--real-slices 40] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

SHAPE = (300, 512, 512)
GOAL_GB = 3.0


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthetic_ct(shape=SHAPE) -> np.ndarray:
    """int16 HU-like noise with a body ellipse and an ellipsoid organ, built slice by slice (no big temporaries)."""
    rng = np.random.default_rng(0)
    vol = np.empty(shape, np.int16)
    yy, xx = np.ogrid[: shape[1], : shape[2]]
    body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 230.0) ** 2 < 1
    for z in range(shape[0]):
        sl = rng.normal(-100, 40, size=shape[1:])
        sl[body] += 140
        sl[((z - 150) / 120.0) ** 2 + ((yy - 220) / 80.0) ** 2 + ((xx - 300) / 60.0) ** 2 < 1] += 60
        vol[z] = sl
    return vol


class PeakSampler:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``peak`` is the largest."""

    def __init__(self, interval: float = 0.01):
        import threading

        self.interval, self.peak = interval, rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def fake_encoder(engine):
    """Random features of the real shape, fast: the memory behaviour without the encoder's cost."""
    import torch

    from napari_sam_mis.model.slices import SliceEmbedding

    def embed_slices(slices):
        return [SliceEmbedding(torch.randn(1, 256, 64, 64), engine.geometry(np.shape(s)[:2])) for s in slices]

    return embed_slices


def run_case(case: str, encoder: str, n: int, lru: int, batch: int) -> dict:
    """One measurement in this process; returns the figures as a dict."""
    import torch

    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.annotate.window import Window
    from napari_sam_mis.model.engine import SamEngine
    from napari_sam_mis.volume import Volume

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    engine = SamEngine.load("litemedsam", device="cpu")
    if encoder == "fake":
        engine.embed_slices = fake_encoder(engine)
    volume = Volume(synthetic_ct(), spacing=(1.0, 0.7, 0.7), modality="CT")
    window = Window.preset("soft tissue")
    with tempfile.TemporaryDirectory() as cache:
        if case == "naive":
            session = AnnotationSession(volume, engine, window, batch_size=batch, memory_slices=None)
        else:
            session = AnnotationSession(volume, engine, window, batch_size=batch, cache_dir=cache, memory_slices=lru)
        engine.embed_slices([session.display_slice(0)])  # warm-up: allocator pools and lazy imports
        base = rss_mb()
        t0 = time.perf_counter()
        samples = []
        with PeakSampler() as sampler:
            for _ in session.iter_embed(range(n)):
                samples.append(rss_mb())
        seconds = time.perf_counter() - t0
        end = rss_mb()
        disk = sum(f.stat().st_size for f in (session.cache_path.glob("*.npy") if session.cache_path else []))
        assert session.n_embedded == n
    return {
        "case": case, "encoder": encoder, "slices": n, "lru_slices": lru if case == "store" else None,
        "base_rss_mb": round(base, 1), "end_rss_mb": round(end, 1), "peak_rss_mb": round(sampler.peak, 1),
        "process_peak_rss_mb": round(peak_rss_mb(), 1),
        "growth_mb": round(end - base, 1), "mb_per_slice": round((end - base) / n, 3),
        "rss_mb_after_each_slice": [round(v, 1) for v in samples],
        "seconds": round(seconds, 2), "s_per_slice": round(seconds / n, 4), "disk_mb": round(disk / 2**20, 1),
    }


def in_subprocess(case: str, encoder: str, n: int, lru: int, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--_case", case, "--_encoder", encoder, "--_n", str(n), "--lru", str(lru),
           "--batch", str(batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def extrapolate(real: dict, fake: dict) -> float:
    """Peak RSS at 300 slices with the real encoder: its measured peak over the first slices plus
    what the same case added from that slice to the last one in the full 300-slice (fake) run.

    (The real run's own growth understates the naive case: the embeddings first fill memory the
    encoder's activations freed, so its slope over a few slices is no guide.)"""
    curve = fake["rss_mb_after_each_slice"]
    return round(real["peak_rss_mb"] + curve[-1] - curve[real["slices"] - 1], 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real-slices", type=int, default=40, help="slices encoded by the real model per case")
    ap.add_argument("--lru", type=int, default=64, help="RAM LRU size of the store (slices)")
    ap.add_argument("--batch", type=int, default=1, help="slices per encoder call")
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    ap.add_argument("--_encoder", help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._case:  # child process: one measurement
        print(json.dumps(run_case(args._case, args._encoder, args._n, args.lru, args.batch)))
        return 0

    rows = []
    for encoder, n in (("real", args.real_slices), ("fake", SHAPE[0])):
        for case in ("naive", "store"):
            print(f"running {case} with the {encoder} encoder on {n} slices…", file=sys.stderr, flush=True)
            rows.append(in_subprocess(case, encoder, n, args.lru, args.batch))
    for real, fake in zip(rows[:2], rows[2:]):
        real["est_peak_rss_mb_at_300"] = extrapolate(real, fake)
        fake["est_peak_rss_mb_at_300"] = fake["peak_rss_mb"]

    print(f"\nPeak RSS embedding a {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} int16 volume on the CPU "
          f"(LiteMedSAM, store LRU {args.lru} slices, one process per row)")
    head = f"{'case':6} {'encoder':7} {'slices':>6} {'base MB':>8} {'peak MB':>8} {'growth MB':>9} {'MB/slice':>8} " \
           f"{'peak@300 MB':>11} {'s/slice':>8} {'disk MB':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['case']:6} {r['encoder']:7} {r['slices']:6d} {r['base_rss_mb']:8.0f} {r['peak_rss_mb']:8.0f} "
              f"{r['growth_mb']:9.0f} {r['mb_per_slice']:8.2f} {r['est_peak_rss_mb_at_300']:11.0f} "
              f"{r['s_per_slice']:8.3f} {r['disk_mb']:8.0f}")
    marks = (1, 16, 64, 150, 300)
    print("\nRSS (MB) after slice k, full runs with the fake encoder: " + ", ".join(f"k={k}" for k in marks))
    for r in rows[2:]:
        curve = r["rss_mb_after_each_slice"]
        print(f"{r['case']:6} " + " ".join(f"{curve[k - 1]:8.0f}" for k in marks))
    by = {(r["case"], r["encoder"]): r for r in rows}
    ratios = {
        f"{enc}_peak_at_300_naive_over_store": round(
            by[("naive", enc)]["est_peak_rss_mb_at_300"] / by[("store", enc)]["est_peak_rss_mb_at_300"], 2)
        for enc in ("real", "fake")
    }
    ratios["fake_growth_naive_over_store"] = round(by[("naive", "fake")]["growth_mb"] / max(by[("store", "fake")]["growth_mb"], 1), 1)
    goal = by[("store", "real")]["est_peak_rss_mb_at_300"] <= GOAL_GB * 1024
    print(f"ratios naive/store: {ratios}; store peak at 300 slices <= {GOAL_GB} GB: {goal}")
    result = {"volume": list(SHAPE), "dtype": "int16", "lru_slices": args.lru, "batch": args.batch, "rows": rows,
              "ratios": ratios, "goal_gb": GOAL_GB, "store_meets_goal": goal,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
