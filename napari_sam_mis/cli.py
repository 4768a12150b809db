"""The ``napari-sam-mis`` command: eval, segment, view, embed, export-dataset, finetune, bench."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .core.evaluate import MODES, PROMPT_KINDS
from .core.models import DEFAULT_MODEL, REGISTRY
from .core.window import CT_PRESETS
from .errors import SamMisError


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, choices=list(REGISTRY), help="model name (default: %(default)s)")
    p.add_argument("--checkpoint", help="checkpoint file for sam_vit_* / medsam_vit_b (never downloaded); for "
                   "litemedsam_clicks: a `finetune` output folder or weights file instead of the shipped one")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--window", choices=sorted(CT_PRESETS), help="CT window preset (default: soft tissue for CT)")
    p.add_argument("--level", type=float, help="custom CT window level in HU (with --width)")
    p.add_argument("--width", type=float, help="custom CT window width in HU (with --level)")


def _window(args, volume):
    from .core.window import Window

    if args.level is not None or args.width is not None:
        if args.level is None or args.width is None:
            raise SamMisError("--level and --width go together")
        return Window("level_width", args.level, args.width)
    if args.window:
        return Window.preset(args.window)
    return Window.for_volume(volume)


def _session(args, volume):
    from .core.engine import SamEngine
    from .core.session import AnnotationSession

    engine = SamEngine.load(args.model, args.checkpoint, args.device)
    print(f"model {engine.name} on {engine.device}", file=sys.stderr)
    return AnnotationSession(volume, engine, _window(args, volume))


def read_label_array(path, volume):
    """Ground-truth labels for ``volume`` from a NIfTI, DICOM-SEG, CVPR24 npz or mask image."""
    from .io.raster import read_mask_raster, read_npz_labels

    name = str(path).lower()
    if name.endswith(".npz"):
        return read_npz_labels(path, volume.shape)
    if name.endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")):
        return read_mask_raster(path, volume.shape[1:])
    from .io import read_labels

    return read_labels(path, volume).array


def cmd_eval(args) -> int:
    from .core.evaluate import evaluate
    from .io import read_volume

    volume = read_volume(args.image)
    labels = read_label_array(args.labels or args.image, volume)
    session = _session(args, volume)
    result = evaluate(session, labels, args.prompt, args.mode, progress=lambda m: print(m, file=sys.stderr))
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return 0


def _parse_point(values):
    if len(values) not in (3, 4):
        raise SamMisError(f"--point takes Z ROW COL [LABEL], got {values}")
    return int(values[0]), (float(values[1]), float(values[2])), int(values[3]) if len(values) == 4 else 1


def cmd_segment(args) -> int:
    import numpy as np

    from .core.prompts import Prompt
    from .core.propagate import propagated_masks
    from .io import read_volume, write_labels

    volume = read_volume(args.image)
    points = [_parse_point(p) for p in args.point or []]
    slices = {int(args.box[0])} if args.box else set()
    slices |= {z for z, _, _ in points}
    if len(slices) != 1:
        raise SamMisError("give a --box and/or --point prompts, all on the same slice Z")
    z = slices.pop()
    if not 0 <= z < volume.n_slices:
        raise SamMisError(f"slice {z} is outside the image (0..{volume.n_slices - 1})")
    prompt = Prompt(
        points=[rc for _, rc, _ in points], labels=[lab for _, _, lab in points],
        box=tuple(args.box[1:]) if args.box else None,
    )
    session = _session(args, volume)
    start = session.decode(z, prompt)
    low, high = args.slices if args.slices else (None, None)
    masks = propagated_masks(session, z, start, low=low, high=high) if args.propagate else {z: start.mask}
    labels = np.zeros(volume.shape, np.uint8)
    for zz, m in masks.items():
        labels[zz][m] = args.label
    written = write_labels(labels, volume, args.out, segments={args.label: args.name})
    print(json.dumps({"written": [str(p) for p in written], "slices": sorted(masks), "voxels": int((labels > 0).sum())}))
    return 0


def cmd_view(args) -> int:
    from ._napari.launch import launch

    launch(args.path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-sam-mis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="Dice of simulated prompts against ground truth")
    p.add_argument("image", help="NIfTI, DICOM folder, CVPR24 .npz (imgs/gts) or 2D PNG")
    p.add_argument("labels", nargs="?", help="ground truth (NIfTI, .npz, PNG mask); default: the image's npz")
    p.add_argument("--prompt", default="box", choices=PROMPT_KINDS,
                   help="simulated prompt; clicks3 = one click + two corrective clicks (interactive protocol)")
    p.add_argument("--mode", default="2d", choices=MODES, help="2d: every slice prompted; 3d: middle slice + propagation")
    p.add_argument("--json", help="also write the result JSON to this file")
    _add_model_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "segment",
        help="segment from a box and/or points without the GUI",
        description="Coordinates are napari's: Z is the slice index along the first array axis, ROW and COL are "
        "pixel indices in that slice (row down, col right), as shown in napari's status bar.",
    )
    p.add_argument("image")
    p.add_argument("--box", nargs=5, type=float, metavar=("Z", "ROW0", "COL0", "ROW1", "COL1"), help="box corners on slice Z")
    p.add_argument("--point", nargs="+", action="append", metavar="Z ROW COL [LABEL]",
                   help="a click on slice Z; LABEL 1 positive (default) or 0 negative; repeatable")
    p.add_argument("--propagate", action="store_true", help="carry the mask to the neighbouring slices until it ends")
    p.add_argument("--slices", nargs=2, type=int, metavar=("FROM", "TO"),
                   help="with --propagate: stay within slices FROM..TO (inclusive)")
    p.add_argument("--out", required=True, help="output labels (.nii.gz, or .dcm for DICOM-SEG of a DICOM series)")
    p.add_argument("--label", type=int, default=1, help="label value to write (default 1)")
    p.add_argument("--name", default="segment", help="label name for the sidecar / SEG (default: segment)")
    _add_model_args(p)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("view", help="open napari with the plugin docked (sample CT, or PATH)")
    p.add_argument("path", nargs="?", help="NIfTI file or DICOM folder; default: the synthetic abdominal CT")
    p.set_defaults(func=cmd_view)

    from . import _cli_bench, _cli_embed, _cli_export, _cli_finetune

    for module in (_cli_embed, _cli_export, _cli_finetune, _cli_bench):
        module.register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SamMisError as exc:
        print(f"napari-sam-mis: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
