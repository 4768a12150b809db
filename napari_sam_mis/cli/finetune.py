"""`napari-sam-mis finetune`: click-train LiteMedSAM's prompt encoder + mask decoder on labelled images."""
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
                    "--model litemedsam_clicks --checkpoint <out>), recipe.json and a resumable checkpoint.pt.")
    parser.add_argument("--data", nargs="+", required=True, metavar="PATH",
                        help="IMAGE:LABELS pairs (NIfTI + NIfTI labels, DICOM folder + SEG, PNG + mask PNG), "
                             ".npz with imgs/gts, a folder with images/ + masks/ (<image>_<organ>_<n>.png), or a "
                             "folder of images with label NIfTI files (names with seg/label/mask/gt)")
    parser.add_argument("--out", required=True, help="output folder (weights, recipe.json, checkpoint.pt, cache)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="learning rate (default %(default)s)")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="objects per step (default %(default)s)")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every,
                        help="save checkpoint.pt every N steps (default %(default)s)")
    parser.add_argument("--slice-stride", type=int, default=defaults.slice_stride,
                        help="use every k-th labelled slice of a volume (default %(default)s)")
    parser.add_argument("--flip", action="store_true", help="also train on mirrored slices (twice the encoding)")
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

    recipe = Recipe(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                    checkpoint_every=args.checkpoint_every, slice_stride=args.slice_stride, flip=args.flip)
    summary = finetune(args.data, args.out, recipe, resume=args.resume, device=args.device, progress=_print_progress)
    print(json.dumps(summary))
    return 0
