"""`napari-sam-mis export-dataset`: annotated studies -> nnU-Net v2 raw dataset."""
from __future__ import annotations

import argparse
import sys
import time

from napari_sam_mis.embeddings.store import CACHE_ENV
from napari_sam_mis.model.registry import DEFAULT_MODEL, get_spec


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export-dataset", help="write image/label pairs as an nnU-Net v2 raw dataset",
        description="Write image/label pairs (NIfTI, DICOM folders, DICOM-SEG) into the nnU-Net v2 raw layout: "
                    "<out>/DatasetXXX_<name>/imagesTr, labelsTr and dataset.json.")
    parser.add_argument("--case", nargs=2, action="append", required=True, metavar=("IMAGE", "LABELS"),
                        help="an image (file or DICOM folder) and its labels (.nii.gz or DICOM-SEG); repeat per case")
    parser.add_argument("--out", required=True, help="folder that receives DatasetXXX_<name> (e.g. $nnUNet_raw)")
    parser.add_argument("--id", type=int, required=True, help="nnU-Net dataset id, 1..999")
    parser.add_argument("--name", required=True, help="dataset name (letters, digits, '_' or '-')")
    parser.add_argument("--label", action="append", default=[], metavar="VALUE=NAME",
                        help="name a label value (overrides names stored with the labels); repeatable")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--allow-other-frame", action="store_true",
                        help="accept a DICOM-SEG whose frame of reference is not its image's (another patient or scan)")
    priors = parser.add_argument_group("SAM prior channels (SAMAug)")
    priors.add_argument("--priors", action="store_true",
                        help="add SAM's segmentation and boundary prior maps as input channels 1 and 2 "
                             "(axial slices, each image's default window; cached with the embeddings)")
    priors.add_argument("--model", default=DEFAULT_MODEL, help="with --priors: the model (default: %(default)s)")
    priors.add_argument("--checkpoint", help="with --priors: checkpoint file for models without bundled weights")
    priors.add_argument("--device", default="auto", help="with --priors: auto, cpu, cuda, cuda:N, mps")
    priors.add_argument("--cache-dir", help=f"with --priors: embedding and prior cache folder (default: ${CACHE_ENV} "
                                            "or the user cache directory)")
    parser.set_defaults(func=run_export)
    return parser


def run_export(args) -> int:
    from napari_sam_mis.errors import InputError, SamMisError
    from napari_sam_mis.io.dataset import export_nnunet_dataset

    given = [flag for flag, value, default in (("--model", args.model, DEFAULT_MODEL), ("--checkpoint", args.checkpoint, None),
                                               ("--device", args.device, "auto"), ("--cache-dir", args.cache_dir, None))
             if value != default]
    if given and not args.priors:
        raise SamMisError(f"{', '.join(given)} only apply with --priors")
    if args.priors:
        get_spec(args.model)  # an unknown name is refused before anything is read

    segments = None
    if args.label:
        try:
            segments = {int(v): n for v, n in (item.split("=", 1) for item in args.label)}
        except ValueError as exc:
            raise InputError("--label", f"expected VALUE=NAME, got {args.label}") from exc
    out = export_nnunet_dataset([tuple(c) for c in args.case], args.out, dataset_id=args.id, name=args.name,
                                segments=segments, overwrite=args.overwrite, allow_other_frame=args.allow_other_frame,
                                extra_channels=_priors(args) if args.priors else None)
    print(out)
    return 0


def _priors(args):
    """The prior channels' callable; the model loads only once the cases have passed their checks."""
    from napari_sam_mis.annotate.priors import prior_channels
    from napari_sam_mis.embeddings.store import default_cache_dir
    from napari_sam_mis.model.engine import SamEngine

    clock = {"last": time.perf_counter()}

    def load():
        engine = SamEngine.load(args.model, args.checkpoint, args.device)
        print(f"priors: model {engine.name} on {engine.device}", file=sys.stderr)
        clock["last"] = time.perf_counter()
        return engine

    def progress(case: int, done: int, total: int) -> None:
        now = time.perf_counter()
        print(f"priors case {case}: slice {done}/{total} ({now - clock['last']:.2f} s)", file=sys.stderr, flush=True)
        clock["last"] = now

    return prior_channels(load, args.cache_dir or default_cache_dir(), progress)
