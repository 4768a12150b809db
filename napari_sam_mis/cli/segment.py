"""`napari-sam-mis segment`: a box and/or clicks on one slice -> labels file, optionally propagated."""
from __future__ import annotations

import argparse
import json
import sys

from napari_sam_mis.cli.common import add_model_args, read_image, session_from_args
from napari_sam_mis.errors import SamMisError


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment",
        help="segment from a box and/or points without the GUI",
        description="Coordinates are array indices, as napari's data coordinates: Z is the slice index along "
        "the first array axis, ROW and COL are pixel indices in that slice (row down, col right). napari's "
        "status bar shows world coordinates in mm: divide them by the voxel size.",
    )
    p.add_argument("image")
    p.add_argument("--box", nargs=5, type=float, metavar=("Z", "ROW0", "COL0", "ROW1", "COL1"), help="box corners on slice Z")
    p.add_argument("--point", nargs="+", action="append", metavar="Z ROW COL [LABEL]",
                   help="a click on slice Z; LABEL 1 positive (default) or 0 negative; repeatable")
    p.add_argument("--propagate", action="store_true", help="carry the mask to the neighbouring slices until it ends")
    p.add_argument("--slices", nargs=2, type=int, metavar=("FROM", "TO"),
                   help="with --propagate: stay within slices FROM..TO (inclusive)")
    p.add_argument("--out", required=True, help="output labels (.nii.gz, or .dcm for DICOM-SEG of a DICOM series)")
    p.add_argument("--label", type=int, default=1, help="label value to write, 1..255 (default 1)")
    p.add_argument("--name", default="segment", help="label name for the sidecar / SEG (default: segment)")
    p.add_argument("--new-uids", action="store_true",
                   help="DICOM-SEG of an anonymised series (blank Study/Series UIDs): generate new UIDs for it")
    add_model_args(p)
    p.set_defaults(func=run_segment)
    return p


def parse_point(values):
    """Z ROW COL [LABEL] -> (z, (row, col), label)."""
    if len(values) not in (3, 4):
        raise SamMisError(f"--point takes Z ROW COL [LABEL], got {values}")
    return int(values[0]), (float(values[1]), float(values[2])), int(values[3]) if len(values) == 4 else 1


def run_segment(args) -> int:
    import numpy as np

    from napari_sam_mis.annotate.prompts import Prompt
    from napari_sam_mis.annotate.volume_segment import check_prompt, segment_volume
    from napari_sam_mis.io import write_labels

    if not 1 <= args.label <= 255:
        raise SamMisError(f"--label must lie in 1..255 (0 is background), got {args.label}")
    volume = read_image(args)
    points = [parse_point(p) for p in args.point or []]
    slices = {int(args.box[0])} if args.box else set()
    slices |= {z for z, _, _ in points}
    if len(slices) != 1:
        raise SamMisError("give a --box and/or --point prompts, all on the same slice Z")
    z = slices.pop()
    prompt = Prompt(
        points=[rc for _, rc, _ in points], labels=[lab for _, _, lab in points],
        box=tuple(args.box[1:]) if args.box else None,
    )
    check_prompt(volume, z, prompt, args.image)
    if str(args.out).lower().endswith(".dcm"):  # refused before the model runs, not after
        from napari_sam_mis.io.dicom_seg import check_seg_source

        check_seg_source(volume, args.out, args.new_uids)
    session = session_from_args(args, volume)
    low, high = args.slices if args.slices else (None, None)
    result = segment_volume(session, z, prompt, through=args.propagate, low=low, high=high)
    for word, stop in result.stops.items():
        print(f"propagation {word}: {stop.message}", file=sys.stderr)
    labels = np.zeros(volume.shape, np.uint8)
    result.paint(labels, args.label)
    written = write_labels(labels, volume, args.out, segments={args.label: args.name}, new_uids=args.new_uids)
    out = {"written": [str(p) for p in written], "slices": sorted(result.masks), "voxels": int((labels > 0).sum())}
    stops = {word: stop.message for word, stop in result.stops.items()}
    print(json.dumps({**out, "stops": stops} if stops else out))
    return 0
