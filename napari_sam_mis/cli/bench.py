"""`napari-sam-mis bench`: the naive LiteMedSAM recipe and our engine side by side, in one run.

Naive = the published LiteMedSAM inference recipe (evaluation/naive_recipe.py), in a process of
its own. Ours = ``SamEngine`` with its default (or the requested) backend and
``annotate.masks.mask_for_prompt``. The two are timed in turn, so machine load hits them alike:
encoder calls alternating, decoder prompts in blocks of DECODE_BLOCK per path. The table shows medians and the
ratio naive/ours. Also: decode latency while a background thread encodes.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from napari_sam_mis.evaluation.naive_recipe import NaiveProcess, NaiveRecipe
from napari_sam_mis.evaluation.timing import PeakRSS, decode_while_encoding, timed

DECODE_BLOCK = 5  # decoder prompts timed in a row per path before switching to the other


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="naive recipe vs our engine: encoder and decoder speed, memory",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run_bench)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="image (NIfTI, NRRD, DICOM folder, npz); default: the synthetic abdominal phantom")
    p.add_argument("--labels", help="ground truth for --image (prompts come from it); default: the npz's gts")
    p.add_argument("--backend", help="our engine's backend (auto, eager, fast, bf16, fp16); default: auto")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or all (cpu and, when present, cuda)")
    p.add_argument("--enc-n", type=int, default=5, help="encoder repetitions per path (default 5)")
    p.add_argument("--dec-n", type=int, default=20, help="decoder repetitions per prompt kind and path (default 20)")
    p.add_argument("--batch", type=int, default=4, help="slices per batched encoder call (default 4)")
    p.add_argument("--threads", type=int, help="torch intra-op threads for both paths (default: torch's choice)")
    p.add_argument("--json", help="write the results to this JSON file")



def _box_and_points(gt) -> "object":
    from napari_sam_mis.annotate.geometry import mask_box
    from napari_sam_mis.annotate.prompts import Prompt
    from napari_sam_mis.evaluation.simulate import farthest_interior_point

    box = mask_box(gt)
    r0, c0, r1, c1 = box
    inside = farthest_interior_point(gt)
    outside = (max(r0 - 3, 0), max(c0 - 3, 0))  # just outside the box's corner: a negative click
    return Prompt(points=[inside, outside], labels=[1, 0], box=box)


def _prompts(gt):
    from napari_sam_mis.evaluation.simulate import simulate_prompt

    return {"box": simulate_prompt(gt, "box"), "point": simulate_prompt(gt, "point"), "box+points": _box_and_points(gt)}


def _load_case(args):
    if args.image:
        from napari_sam_mis.io import read_label_array, read_volume

        volume = read_volume(args.image)
        labels = read_label_array(args.labels or args.image, volume)
    else:
        from napari_sam_mis.io.phantom import abdomen_phantom

        volume, labels = abdomen_phantom()
    return volume, np.asarray(labels) > 0


def bench_device(device_name: str, args, volume, labels) -> dict:
    import torch

    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.model.engine import SamEngine

    engine = SamEngine.load("litemedsam", device=device_name, backend=args.backend)
    session = AnnotationSession(volume, engine)
    zs = np.flatnonzero(labels.any(axis=(1, 2)))
    z = int(zs[len(zs) // 2])
    batch_z = [int(v) for v in np.linspace(0, volume.n_slices - 1, max(1, args.batch)).round()]
    displays = {zz: session.display_slice(zz) for zz in {z, *batch_z}}
    prompts = _prompts(labels[z])
    naive_in = {zz: NaiveRecipe.image_tensor(d) for zz, d in displays.items()}
    with NaiveProcess(device_name, args.threads, naive_in, z, prompts, volume.shape[1:]) as naive:
        result = _measure(naive, engine, displays, z, batch_z, prompts, args, torch.device(device_name))
    result["image_shape"] = list(volume.shape)
    return result


def _measure(naive, engine, displays, z, batch_z, prompts, args, device) -> dict:
    """Naive (in its process) and ours, interleaved; -> the table rows and every sample."""
    from napari_sam_mis.annotate.masks import mask_for_prompt

    nb = len(batch_z)
    ours_in = {zz: engine.preprocess(d)[0] for zz, d in displays.items()}
    ours_batch = np.stack([ours_in[b] for b in batch_z])
    times: dict[str, dict[str, list[float]]] = {}

    def record(metric, path, value):
        times.setdefault(metric, {"naive": [], "ours": []})[path].append(value)

    # Warm-up (first calls allocate and pick kernels; the naive process warmed up as it started).
    ours_emb = engine.embed_slices([displays[z]])[0]
    for p in prompts.values():
        mask_for_prompt(engine, ours_emb, p)

    # Encoder: one slice per call, then a batch; interleaved.
    rss = {"naive": 0.0, "ours": 0.0}
    for _ in range(args.enc_n):
        record("encoder s/slice", "naive", naive("encode"))
        record("encoder s/slice", "ours", timed(lambda: engine.encode(ours_in[z][None]), device))
    for _ in range(max(1, args.enc_n // 2)):
        t, mib = naive("encode_batch", batch_z)
        record(f"encoder slices/s (batch {nb})", "naive", nb / t)
        rss["naive"] = max(rss["naive"], mib)
        with PeakRSS() as m:
            t = timed(lambda: engine.encode(ours_batch), device)
        record(f"encoder slices/s (batch {nb})", "ours", nb / t)
        rss["ours"] = max(rss["ours"], m.mib)

    # Decoder: prompt -> full-resolution mask (numpy), per prompt kind; interleaved in blocks of
    # DECODE_BLOCK prompts per path, as an annotator's prompts come one after another (a decode
    # right after the other process's runs ~40 % slower on the 2-core machine, see performance.md).
    block = max(1, min(args.dec_n, DECODE_BLOCK))
    for _ in range(-(-args.dec_n // block)):
        for kind, p in prompts.items():
            for _ in range(block):
                record(f"decoder ms ({kind})", "naive", naive("decode", kind))
            for _ in range(block):
                record(f"decoder ms ({kind})", "ours", 1000 * timed(lambda: mask_for_prompt(engine, ours_emb, p), device))

    # Decoding while a background thread encodes (what annotating during embedding feels like).
    busy = "decoder ms (box) while encoding"
    for ms in naive("decode_while_encoding", args.dec_n):
        record(busy, "naive", ms)
    for ms in decode_while_encoding(lambda: engine.encode(ours_in[z][None]),
                                    lambda: mask_for_prompt(engine, ours_emb, prompts["box"]), args.dec_n, device):
        record(busy, "ours", ms)

    rows = []
    for metric, v in times.items():
        a, b = float(np.median(v["naive"])), float(np.median(v["ours"]))
        higher_is_better = "slices/s" in metric
        rows.append({"metric": metric, "naive": a, "ours": b, "ratio": (b / a) if higher_is_better else (a / b),
                     "n": len(v["ours"])})
    # (ours reuses memory it already holds, so its rise is often ~0: no ratio then)
    rows.append({"metric": f"RSS rise MiB (encode {nb} slices)", "naive": rss["naive"], "ours": rss["ours"],
                 "ratio": rss["naive"] / rss["ours"] if rss["ours"] >= 1.0 else None, "n": max(1, args.enc_n // 2)})
    idle = next(r for r in rows if r["metric"] == "decoder ms (box)")["ours"]
    busy_ms = next(r for r in rows if r["metric"] == busy)["ours"]
    return {"device": device.type, "backend": engine.backend, "backend_reason": engine.backend_reason,
            "encoder_path": engine.encoder_path, "slice": z,
            "rows": rows, "ours_busy_over_idle": busy_ms / idle, "naive_process_peak_rss_mib": naive("peak_rss_mib"),
            "raw": times}


def print_table(result: dict) -> None:
    print(f"\n{result['device']}: ours = backend {result['backend']} ({result['backend_reason']}; "
          f"encoder {result['encoder_path']}), "
          f"image {tuple(result['image_shape'])}, slice {result['slice']}")
    print(f"{'metric':<36}{'naive':>10}{'ours':>10}{'naive/ours':>12}{'n':>5}")
    for r in result["rows"]:
        ratio = f"{r['ratio']:>11.2f}x" if r["ratio"] is not None else f"{'-':>12}"
        print(f"{r['metric']:<36}{r['naive']:>10.3f}{r['ours']:>10.3f}{ratio}{r['n']:>5}")
    print(f"ours: decode while encoding / idle = {result['ours_busy_over_idle']:.2f}")


def run_bench(args) -> int:
    import os

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    volume, labels = _load_case(args)
    if not labels.any():
        from napari_sam_mis.errors import InputError

        raise InputError(args.labels or args.image or "phantom", "the ground truth is empty: no object to prompt")
    devices = ["cpu"] if args.device in ("cpu", "all") else [args.device]
    if args.device == "all" and torch.cuda.is_available():
        devices.append("cuda")
    from napari_sam_mis.model.kernels.cpu import cpu_model, cpu_supports_bf16

    meta = {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_bf16": cpu_supports_bf16(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    print(f"{meta['cpu']}, {meta['cores']} cores, torch {meta['torch']} ({meta['torch_threads']} threads)")
    results = []
    for dev in devices:
        result = bench_device(dev, args, volume, labels)
        print_table(result)
        results.append(result)
    import resource

    meta["process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    naive_peak = max(r["naive_process_peak_rss_mib"] for r in results)
    print(f"peak RSS: ours {meta['process_peak_rss_mib']:.0f} MiB (this process, all devices), "
          f"naive {naive_peak:.0f} MiB (its own process)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=2)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run_bench(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
