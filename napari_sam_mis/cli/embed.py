"""`napari-sam-mis embed`: precompute an image's slice embeddings into the disk cache.

The widget (and any session given the same cache folder) then finds them instead of computing.
Each slice is written as soon as it is encoded, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from napari_sam_mis.annotate.planes import AXIS_NAMES
from napari_sam_mis.cli.common import add_model_args, load_engine, read_image, window_from_args
from napari_sam_mis.embeddings.store import CACHE_ENV


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "embed", help="precompute slice embeddings into the disk cache (resumable)",
        description="Encode every slice of IMAGE along --axis and store the embeddings (float16) in the cache "
                    f"folder: --cache-dir, else ${CACHE_ENV}, else the user cache directory. Slices already cached "
                    "with the same image, model, window and axis are skipped. Progress goes to stderr; the last "
                    "stdout line is a JSON summary.")
    parser.add_argument("image", help="NIfTI, NRRD, DICOM folder, CVPR24 .npz or 2D image")
    parser.add_argument("--axis", type=int, default=0, choices=(0, 1, 2),
                        help="slicing axis of the (z, y, x) array: 0 axial, 1 coronal, 2 sagittal (default 0)")
    parser.add_argument("--cache-dir", help=f"cache folder (default: ${CACHE_ENV} or the user cache directory)")
    parser.add_argument("--batch", type=int, default=4, help="slices per encoder call (default 4)")
    add_model_args(parser)
    parser.set_defaults(func=run_embed)
    return parser


def run_embed(args) -> int:
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.embeddings.store import default_cache_dir
    from napari_sam_mis.errors import SamMisError

    if args.batch < 1:
        raise SamMisError(f"--batch must be at least 1, got {args.batch}")
    volume = read_image(args)
    window = window_from_args(args, volume)
    engine = load_engine(args)
    cache_dir = args.cache_dir or default_cache_dir()
    session = AnnotationSession(volume, engine, window, batch_size=args.batch, axis=args.axis,
                                cache_dir=cache_dir, memory_slices=args.batch)
    n = session.n_slices
    damaged = session.verify_cache()  # a damaged chunk is computed again, not counted as done
    todo = sorted(session.missing())
    cached = n - len(todo)
    print(f"{engine.name} on {engine.device}: {n} {AXIS_NAMES[args.axis]} slices, {cached} already cached",
          file=sys.stderr)
    t0 = time.perf_counter()
    computed, interrupted = 0, False
    try:
        for z, _ in session.iter_embed(todo):
            computed += 1
            rate = (time.perf_counter() - t0) / computed
            print(f"slice {z}: {cached + computed}/{n} ({rate:.2f} s/slice)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted: {cached + computed}/{n} slices cached; run again to resume", file=sys.stderr)
    summary = {
        "image": str(args.image), "axis": args.axis, "slices": n, "cached_before": cached, "computed": computed,
        "damaged_before": len(damaged), "complete": session.n_embedded == n, "interrupted": interrupted, "model": engine.name,
        "window": session.window.key(), "cache": str(session.cache_path),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    print(json.dumps(summary))
    return 130 if interrupted else 0
