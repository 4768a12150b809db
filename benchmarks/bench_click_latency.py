"""Click-to-mask-shown latency in a real napari viewer with the SAM widget docked.

For each prompt the clock starts when the prompt enters the prompt layer (what a mouse
release does) and stops at the first canvas draw after the preview layer holds the mask,
i.e. when the user sees it. The slice's embedding is computed beforehand (not part of the
latency). Prints a table (median, p90 in ms) and, with --json PATH, writes the numbers.

    xvfb-run -a python benchmarks/bench_click_latency.py --n 20 [--image spleen.nii.gz] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", help="NIfTI file (default: the synthetic abdominal phantom)")
    ap.add_argument("--n", type=int, default=20, help="prompts per kind (>= 20 for the report)")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args(argv)

    from napari_sam_mis._qt.torch_guard import import_torch_early

    import_torch_early()
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_sam_mis._qt.annotate_widget import AnnotateWidget

    viewer = napari.Viewer(show=True)
    if args.image:
        from napari_sam_mis.io import read_volume

        vol = read_volume(args.image)
        viewer.add_image(vol.array, scale=vol.spacing, metadata={"volume": vol}, name="image")
    else:
        viewer.open_sample("napari-sam-mis", "abdomen_phantom")
        vol = viewer.layers[0].metadata["volume"]
    z = vol.n_slices // 2
    viewer.dims.set_current_step(0, z)
    widget = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(widget, area="right")
    app = QApplication.instance()

    deadline = time.time() + 300
    while not (widget.session is not None and widget.session.has_embedding(z)):
        app.processEvents()
        time.sleep(0.01)
        if time.time() > deadline:
            print("embedding did not finish", file=sys.stderr)
            return 1
    widget.embedding.cancel()
    for _ in range(20):
        app.processEvents()

    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    draws: list[float] = []
    canvas.events.draw.connect(lambda event: draws.append(time.perf_counter()))
    h, w = vol.shape[1:]
    rng = np.random.default_rng(0)

    def wait_shown(t0: float) -> float:
        """ms from t0 to the first canvas draw after the preview layer received the new mask."""
        while True:
            app.processEvents()
            shown_at = widget.last_decode_time
            if shown_at > t0:
                after = [d for d in draws if d >= shown_at]
                if after:
                    decoded.append((shown_at - t0) * 1000)
                    return (after[0] - t0) * 1000
            if time.perf_counter() - t0 > 30:
                raise TimeoutError("mask not shown within 30 s")

    results: dict[str, list[float]] = {"box": [], "click (box + point)": [], "lone click": []}
    decoded: list[float] = []  # prompt -> preview data updated (decode + layer refresh), all kinds
    for _ in range(args.n):
        widget.clear_prompts()
        for _ in range(5):
            app.processEvents()
        cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
        hh, hw = rng.uniform(0.08, 0.2) * h, rng.uniform(0.08, 0.2) * w
        corners = [[z, cy - hh, cx - hw], [z, cy - hh, cx + hw], [z, cy + hh, cx + hw], [z, cy + hh, cx - hw]]
        draws.clear()
        t0 = time.perf_counter()
        widget.shapes_layer.add_rectangles(np.array([corners]))
        results["box"].append(wait_shown(t0))

        widget.points_layer.feature_defaults = {"positive": bool(rng.integers(0, 2))}
        draws.clear()
        t0 = time.perf_counter()
        widget.points_layer.add(np.array([[z, cy + rng.uniform(-hh, hh) / 2, cx + rng.uniform(-hw, hw) / 2]]))
        results["click (box + point)"].append(wait_shown(t0))

        widget.clear_prompts()  # a lone click: the candidate-box path of annotate/clicks.py
        for _ in range(5):
            app.processEvents()
        widget.points_layer.feature_defaults = {"positive": True}
        draws.clear()
        t0 = time.perf_counter()
        widget.points_layer.add(np.array([[z, cy, cx]]))
        results["lone click"].append(wait_shown(t0))

    import torch

    rows = []
    print(f"click-to-mask-shown latency, {widget.engine.name} on {widget.engine.device}, image {vol.shape}")
    print(f"{'prompt':<22}{'n':>4}{'median ms':>11}{'p90 ms':>9}")
    for name, values in results.items():
        arr = np.asarray(values)
        row = {"prompt": name, "n": len(arr), "median_ms": float(np.median(arr)), "p90_ms": float(np.percentile(arr, 90))}
        rows.append(row)
        print(f"{name:<22}{row['n']:>4}{row['median_ms']:>11.1f}{row['p90_ms']:>9.1f}")
    d = np.asarray(decoded)
    print(f"{'(preview data updated)':<22}{len(d):>4}{np.median(d):>11.1f}{np.percentile(d, 90):>9.1f}")
    rows.append({"prompt": "preview updated (not yet drawn)", "n": len(d), "median_ms": float(np.median(d)),
                 "p90_ms": float(np.percentile(d, 90))})
    if args.json:
        meta = {
            "model": widget.engine.name,
            "device": str(widget.engine.device),
            "image_shape": list(vol.shape),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        }
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": rows, "raw_ms": results}, fh, indent=2)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
