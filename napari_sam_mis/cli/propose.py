"""`napari-sam-mis propose`: automatic proposals on every slice (or a range) -> a labels file of
proposal ids, linked across neighbouring slices (annotate/proposals.py)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from napari_sam_mis.cli.common import add_model_args, load_engine, read_image, window_from_args
from napari_sam_mis.errors import InputError

MAX_IDS = 255  # the label writers store 0..255


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "propose", help="automatic proposals (objects found without prompts) -> labels file of proposal ids",
        description="On each slice along the first array axis, the objects the model finds from a grid of box "
                    "prompts; a proposal overlapping one of the slice before keeps its id. Slices outside "
                    "--slices are 0. With more than 255 ids, the 255 largest are kept (the file holds 0..255). "
                    "Embeddings go to the disk cache the widget uses. Progress goes to stderr; stdout gets a "
                    "JSON summary.")
    p.add_argument("image", help="NIfTI, NRRD, DICOM folder, CVPR24 .npz or 2D image")
    p.add_argument("--slices", nargs=2, type=int, metavar=("FROM", "TO"), help="only slices FROM..TO (inclusive)")
    p.add_argument("--out", required=True, help="output labels (.nii.gz, .nii or .nrrd)")
    add_model_args(p)
    p.set_defaults(func=run_propose)
    return p


def checked_slices(args, n_slices: int) -> range:
    if args.slices is None:
        return range(n_slices)
    low, high = args.slices
    if not 0 <= low <= high < n_slices:
        raise InputError(args.image, f"--slices {low} {high}: the image has slices 0..{n_slices - 1} "
                                     "(FROM <= TO)")
    return range(low, high + 1)


def checked_out(args, volume):
    """The output path, refused before any work when it can't be written as labels."""
    from napari_sam_mis.io.atomic import refuse_sources
    from napari_sam_mis.io.formats import is_nifti, is_nrrd

    out = refuse_sources(args.out, [volume.source, *volume.meta.get("dicom_files", [])])
    if not (is_nifti(out) or is_nrrd(out)):
        raise InputError(out, "proposals are written as NIfTI (.nii, .nii.gz) or NRRD (.nrrd)")
    if out.is_dir():
        raise InputError(out, "is a folder; give a file name")
    return out


def largest_ids(ids, keep: int = MAX_IDS):
    """Ids renumbered 1..n by voxel count (largest first), at most ``keep`` of them; -> (labels, dropped)."""
    import numpy as np

    values, counts = np.unique(ids[ids > 0], return_counts=True)
    order = values[np.argsort(-counts, kind="stable")]
    lookup = np.zeros(int(ids.max()) + 1 if ids.size else 1, np.uint8)
    lookup[order[:keep]] = np.arange(1, min(keep, len(order)) + 1)
    return lookup[ids], max(0, len(order) - keep)


def run_propose(args) -> int:
    from napari_sam_mis.annotate.proposals import propose_volume
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.annotate.window import window_summary
    from napari_sam_mis.embeddings.store import default_cache_dir
    from napari_sam_mis.io import write_labels

    volume = read_image(args)
    slices = checked_slices(args, volume.shape[0])
    out = checked_out(args, volume)
    window = window_from_args(args, volume)
    engine = load_engine(args)
    print(f"model {engine.name} on {engine.device}; {window_summary(volume, window)}", file=sys.stderr)
    session = AnnotationSession(volume, engine, window, cache_dir=default_cache_dir())
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"slice {slices[done - 1]}: {done}/{total} ({(time.perf_counter() - t0) / done:.1f} s/slice)",
              file=sys.stderr, flush=True)

    ids = propose_volume(session, slices, progress)
    labels, dropped = largest_ids(ids)
    n = int(labels.max())
    written = write_labels(labels, volume, out, segments={i: f"proposal {i}" for i in range(1, n + 1)})
    summary = {"written": [str(p) for p in written], "slices": [slices[0], slices[-1]], "proposals": n}
    print(json.dumps({**summary, "dropped_smallest": dropped} if dropped else summary))
    return 0
