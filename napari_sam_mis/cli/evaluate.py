"""`napari-sam-mis eval`: Dice of simulated prompts against ground truth."""
from __future__ import annotations

import argparse
import json
import sys

from napari_sam_mis.cli.common import add_model_args, read_image, session_from_args
from napari_sam_mis.errors import InputError, SamMisError
from napari_sam_mis.evaluation.interactive import DEFAULT_CLICKS, FIRST_PROMPTS
from napari_sam_mis.evaluation.protocol import MODES
from napari_sam_mis.evaluation.simulate import PROMPT_KINDS
from napari_sam_mis.io.atomic import refuse_sources, write_bytes_atomic


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval", help="Dice of simulated prompts against ground truth")
    p.add_argument("image", help="NIfTI, NRRD, DICOM folder, CVPR24 .npz (imgs/gts) or 2D PNG")
    p.add_argument("labels", nargs="?", help="ground truth (NIfTI, NRRD, DICOM-SEG, .npz, PNG mask); default: the image's npz")
    p.add_argument("--prompt", default="box", choices=PROMPT_KINDS,
                   help="simulated prompt; clicks3 = one click + two corrective clicks (interactive protocol)")
    p.add_argument("--mode", default="2d", choices=MODES, help="2d: every slice prompted; 3d: middle slice + propagation")
    p.add_argument("--protocol", choices=("prompts", "interactive"), default="prompts",
                   help="prompts: --prompt on every slice or --mode 3d; interactive: a first prompt on the middle "
                        "slice, propagation, then --clicks corrective clicks at the largest 3D error (CVPR 2025 "
                        "interactive challenge); Dice and NSD (2 mm) per step")
    p.add_argument("--first", choices=FIRST_PROMPTS, default="box", help="interactive: the first prompt (default: box)")
    p.add_argument("--clicks", type=int, default=DEFAULT_CLICKS, help="interactive: corrective clicks (default: %(default)s)")
    p.add_argument("--uncertainty", action="store_true",
                   help="also: the box ensemble's uncertainty map against the box mask's errors (AUROC) and the gain "
                        "of its suggested click, on every slice (docs/uncertainty.md)")
    p.add_argument("--json", help="also write the result JSON to this file")
    add_model_args(p)
    p.set_defaults(func=run_eval)
    return p


def run_eval(args) -> int:
    from napari_sam_mis.evaluation.interactive import evaluate_interactive
    from napari_sam_mis.evaluation.protocol import evaluate
    from napari_sam_mis.io import read_label_array

    if args.clicks < 0:
        raise SamMisError(f"--clicks must be 0 or more, got {args.clicks}")
    volume = read_image(args)
    labels_path = args.labels or args.image
    out = refuse_sources(args.json, [volume.source, labels_path, *volume.meta.get("dicom_files", [])]) if args.json else None
    labels = read_label_array(labels_path, volume)
    if not labels.any():
        raise InputError(labels_path, "holds no labelled voxel: there is nothing to evaluate against")
    session = session_from_args(args, volume)
    progress = lambda m: print(m, file=sys.stderr)
    if args.protocol == "interactive":
        result = evaluate_interactive(session, labels, args.first, args.clicks, progress=progress)
    else:
        result = evaluate(session, labels, args.prompt, args.mode, progress=progress)
    if args.uncertainty:
        from napari_sam_mis.evaluation.uncertainty_eval import evaluate_uncertainty

        result.update(evaluate_uncertainty(session, labels, progress=progress))
    line = json.dumps(result)
    if out is not None:
        write_bytes_atomic(out, (line + "\n").encode())
    print(line)
    return 0
