"""Cold start: from the command (`napari-sam-mis view PATH`, what `./run.sh PATH` runs) to the first
mask that can be shown, broken down by stage, in fresh processes with an empty embedding cache.

Each run is a new Python process doing what `view` does (imports, the napari window, the image
opened with this plugin's reader, the widget docked: the model loads and the first slice is
embedded in the background), then a box is drawn on the slice shown as soon as its embedding is
ready; the clock stops when the preview holds the mask. The first run also warms the OS file
cache; the table gives the median of the runs after it.

    xvfb-run -a .venv/bin/python benchmarks/cold_start.py [--image CT.nii.gz] [--runs 4] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT.parent / "shared" / "data" / "msd_spleen_crop" / "spleen2_ct.nii.gz"
STAGES = ("python started", "imports: torch", "imports: napari + widget", "napari window", "image read and shown",
          "widget docked", "model loaded", "first slice embedded", "first mask shown")

CHILD = r"""
import json, sys, time
t0 = float(sys.argv[1]); marks = [("python started", time.time() - t0)]
def mark(name): marks.append((name, time.time() - t0))
from napari_sam_mis._qt.torch_guard import import_torch_early
import_torch_early(); mark("imports: torch")
import napari
from qtpy.QtWidgets import QApplication
from napari_sam_mis._qt.annotate_widget import AnnotateWidget
mark("imports: napari + widget")
viewer = napari.Viewer(title="napari-sam-mis"); mark("napari window")
viewer.open(sys.argv[2], plugin="napari-sam-mis")
app = QApplication.instance(); app.processEvents(); mark("image read and shown")
widget = AnnotateWidget(viewer); viewer.window.add_dock_widget(widget, name="SAM annotation", area="right")
app.processEvents(); mark("widget docked")
def until(ok):
    end = time.time() + 600
    while not ok():
        app.processEvents(); time.sleep(0.005)
        if time.time() > end: raise SystemExit("timed out")
until(lambda: widget.engine is not None); mark("model loaded")
z = widget.current_z()
until(lambda: widget.session is not None and widget.session.has_embedding(z)); mark("first slice embedded")
rows, cols = widget.volume.shape[1:]
r0, c0, r1, c1 = rows // 4, cols // 4, 3 * rows // 4, 3 * cols // 4
corners = [[z, r0, c0], [z, r0, c1], [z, r1, c1], [z, r1, c0]]
import numpy as np
widget.shapes_layer.add_rectangles(np.array([corners], float))
until(lambda: widget.preview_layer.data[z].any()); app.processEvents(); mark("first mask shown")
print("MARKS " + json.dumps(marks))
widget.embedding.cancel(); viewer.close()
"""


def one_run(image: Path) -> dict:
    env = dict(os.environ, NAPARI_SAM_MIS_CACHE=tempfile.mkdtemp(), NAPARI_SAM_MIS_SESSIONS=tempfile.mkdtemp())
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, repr(t0), str(image)], capture_output=True, text=True,
                         env=env, timeout=900)
    line = next((x for x in out.stdout.splitlines() if x.startswith("MARKS ")), None)
    if line is None:
        raise SystemExit(f"the run failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(line[len("MARKS "):]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=4, help="runs; the first warms the file cache and is not counted")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    runs = [one_run(args.image) for _ in range(args.runs)]
    counted = runs[1:] or runs
    median = {s: statistics.median(r[s] for r in counted) for s in STAGES}
    print(f"cold start on {args.image.name}, median of {len(counted)} runs ({os.cpu_count()} cores); goal <= 5 s")
    print(f"{'stage':28s} {'at s':>7s} {'takes s':>8s}")
    before = 0.0
    for stage in STAGES:
        print(f"{stage:28s} {median[stage]:7.2f} {median[stage] - before:8.2f}")
        before = median[stage]
    if args.json:
        Path(args.json).write_text(json.dumps({"image": args.image.name, "cores": os.cpu_count(), "runs": runs,
                                               "median": median}, indent=1))


if __name__ == "__main__":
    main()
