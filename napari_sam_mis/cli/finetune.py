"""`napari-sam-mis finetune`: click-train LiteMedSAM's prompt encoder + mask decoder on labelled images
(``--hold-out``: tune on part of the slices, measure on the rest; ``--name``: offer it as a model)."""
from __future__ import annotations

import argparse
import json
import sys

from napari_sam_mis.training.finetune import Recipe


def register(subparsers) -> argparse.ArgumentParser:
    defaults = Recipe()
    parser = subparsers.add_parser(
        "finetune", help="click-train LiteMedSAM's decoder on your labelled images (image encoder frozen)",
        description="Fine-tune LiteMedSAM's prompt encoder and mask decoder so that clicks give the masks its boxes "
                    "give (self-distillation on your labels). Writes <out>/litemedsam_clicks.pt (use it with "
                    "--model litemedsam_clicks --checkpoint <out>), recipe.json and a resumable checkpoint.pt. "
                    "With --name the output goes to the tuned-models folder and the model is offered as NAME "
                    "(CLI --model and the widget).")
    parser.add_argument("--data", nargs="+", required=True, metavar="PATH",
                        help="IMAGE:LABELS pairs (NIfTI + NIfTI labels, DICOM folder + SEG, PNG + mask PNG), "
                             ".npz with imgs/gts, a folder with images/ + masks/ (<image>_<organ>_<n>.png), or a "
                             "folder of images with label NIfTI files (names with seg/label/mask/gt)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="output folder (weights, recipe.json, checkpoint.pt, cache)")
    where.add_argument("--name", help="a name for the tuned model: its folder in the tuned-models folder "
                                      "($NAPARI_SAM_MIS_MODELS, else the user data folder)")
    parser.add_argument("--hold-out", type=float, default=None, metavar="SHARE",
                        help="hold back this share of each label volume's labelled slices (the last along the slice "
                             "axis) and report box and one-click Dice on them before and after (writes tune.json)")
    parser.add_argument("--start-from", default=defaults.start_from,
                        help="LiteMedSAM model whose decoder training starts from (default %(default)s)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="learning rate (default %(default)s)")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="objects per step (default %(default)s)")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every,
                        help="save checkpoint.pt every N steps (default %(default)s)")
    parser.add_argument("--slice-stride", type=int, default=defaults.slice_stride,
                        help="use every k-th labelled slice of a volume (default %(default)s)")
    parser.add_argument("--flip", action="store_true", help="also train on mirrored slices (twice the encoding)")
    parser.add_argument("--variants", default="", metavar="NAMES",
                        help="also train on altered copies of every slice, comma-separated: zoom_out (the slice at "
                             "half size: small objects), invert (the display values flipped: another contrast)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    parser.set_defaults(func=run_finetune)
    return parser


def _print_progress(p) -> None:
    if p.stage == "train":
        if p.done == 1 or p.done % 10 == 0 or p.done == p.total:
            print(f"step {p.done}/{p.total} loss {p.loss:.4f} train Dice {p.dice:.3f} {p.message}", file=sys.stderr, flush=True)
    elif p.stage in ("embed", "teacher"):
        if p.done == p.total:
            print(f"{p.stage}: {p.done}/{p.total} {p.message}", file=sys.stderr, flush=True)
    else:
        print(f"{p.stage}: {p.message}", file=sys.stderr, flush=True)


def run_finetune(args) -> int:
    from napari_sam_mis.training.finetune import finetune
    from napari_sam_mis.training.tune import tune, tuned_model_folder

    recipe = Recipe(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, checkpoint_every=args.checkpoint_every,
                    slice_stride=args.slice_stride, flip=args.flip, start_from=args.start_from,
                    variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()))
    out = args.out or tuned_model_folder(args.name)
    if args.hold_out is None:
        summary = finetune(args.data, out, recipe, resume=args.resume, device=args.device, progress=_print_progress)
    else:
        summary = tune(args.data, out, recipe, args.hold_out, resume=args.resume, device=args.device,
                       progress=_print_progress)
    print(json.dumps(summary))
    return 0
