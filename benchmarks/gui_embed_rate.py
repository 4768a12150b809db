"""The widget's background embedding rate against `napari-sam-mis embed`'s, in one run on the same
image (each with an empty cache), and how responsive napari stays meanwhile.

CLI: the `embed` command's own loop (``AnnotationSession.iter_embed`` in batches of 4). GUI: the
widget docked on the image opened with this plugin's reader, its background job embedding every
slice; a 10 ms Qt timer measures the gaps in napari's event loop while it runs. Rates count the
slices after the first (the first slice's wait is the cold start's business:
benchmarks/cold_start.py).

    xvfb-run -a .venv/bin/python benchmarks/gui_embed_rate.py [--image CT.nii.gz] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT.parent / "shared" / "data" / "totalseg_example" / "example_ct_sm.nii.gz"


def cli_rate(image: Path) -> dict:
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.io import read_volume
    from napari_sam_mis.model.engine import SamEngine

    volume = read_volume(image)
    session = AnnotationSession(volume, SamEngine.load("litemedsam", device="cpu"), batch_size=4,
                                cache_dir=tempfile.mkdtemp(), memory_slices=4)
    stamps = [time.perf_counter() for _ in session.iter_embed(sorted(session.missing()))]
    return {"slices": len(stamps), "seconds_after_first": stamps[-1] - stamps[0],
            "s_per_slice": (stamps[-1] - stamps[0]) / (len(stamps) - 1)}


def gui_rate(image: Path, batch: int | None = None) -> dict:
    """The widget's background job; ``batch``: slices per encoder call instead of the widget's own
    choice (1 on a CPU), set as soon as the job starts."""
    from napari_sam_mis._qt.torch_guard import import_torch_early

    import_torch_early()
    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    os.environ["NAPARI_SAM_MIS_CACHE"] = tempfile.mkdtemp()
    os.environ["NAPARI_SAM_MIS_SESSIONS"] = tempfile.mkdtemp()
    viewer = napari.Viewer(title="napari-sam-mis")
    viewer.open(str(image), plugin="napari-sam-mis")
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
    ticks, stamps = [], []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    loop = QEventLoop()
    seen = [0]

    def check():  # napari's own event loop runs meanwhile, idle between events as in use
        session = widget.session
        if session is not None and batch and widget.embedding.scheduler.plan.batch_size != batch:
            widget.embedding.scheduler.plan.batch_size = batch
        if session is not None and session.n_embedded > seen[0]:
            seen[0] = session.n_embedded
            stamps.append(time.perf_counter())
        if session is not None and session.n_embedded == session.n_slices:
            loop.quit()

    poll = QTimer()
    poll.timeout.connect(check)
    poll.start(20)
    QTimer.singleShot(1_200_000, loop.quit)
    loop.exec_()
    poll.stop()
    if widget.session is None or widget.session.n_embedded < widget.session.n_slices:
        raise SystemExit("the widget did not embed every slice in time")
    timer.stop()
    n = widget.session.n_slices
    gaps = [b - a for a, b in zip(ticks, ticks[1:]) if a >= stamps[0]]
    viewer.close()
    return {"batch": batch or "widget's own", "slices": n, "seconds_after_first": stamps[-1] - stamps[0], "s_per_slice": (stamps[-1] - stamps[0]) / (n - 1),
            "event_loop_gap_ms_median": 1000 * statistics.median(gaps),
            "event_loop_gap_ms_p99": 1000 * sorted(gaps)[int(0.99 * (len(gaps) - 1))],
            "event_loop_gap_ms_max": 1000 * max(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    cli = cli_rate(args.image)
    guis = [gui_rate(args.image), gui_rate(args.image, batch=4)]
    print(f"{args.image.name}: {cli['slices']} slices, {os.cpu_count()} cores")
    print(f"{'run':40s} {'s/slice':>8s} {'vs CLI':>7s} {'loop gap p99 / max ms':>22s}")
    print(f"{'napari-sam-mis embed (CLI loop, batch 4)':40s} {cli['s_per_slice']:8.3f} {1.0:6.2f}x")
    for gui in guis:
        name = f"widget background job, batch {gui['batch']}"
        print(f"{name:40s} {gui['s_per_slice']:8.3f} {gui['s_per_slice'] / cli['s_per_slice']:6.2f}x "
              f"{gui['event_loop_gap_ms_p99']:13.0f} / {gui['event_loop_gap_ms_max']:.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"image": args.image.name, "cores": os.cpu_count(), "cli": cli,
                                               "gui": guis}, indent=1))


if __name__ == "__main__":
    main()
