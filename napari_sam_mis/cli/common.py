"""What the commands share: the model and window arguments, and a session built from them."""
from __future__ import annotations

import argparse
import sys

from napari_sam_mis.annotate.window import CT_PRESETS, Window, window_summary
from napari_sam_mis.errors import SamMisError
from napari_sam_mis.model.registry import DEFAULT_MODEL, model_names


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, choices=model_names(), help="model name (default: %(default)s)")
    p.add_argument("--checkpoint", help="checkpoint file for sam_vit_* / medsam_vit_b (never downloaded); for "
                   "litemedsam_clicks: a `finetune` output folder or weights file instead of the shipped one")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--window", choices=sorted(CT_PRESETS), help="CT window preset (default: soft tissue for CT)")
    p.add_argument("--level", type=float, help="custom CT window level in HU (with --width)")
    p.add_argument("--width", type=float, help="custom CT window width in HU (with --level)")
    p.add_argument("--modality", choices=("auto", "CT", "MR"), default="auto",
                   help="the image's modality, which picks the default window; auto: the file's tag (DICOM), "
                        "else inferred from the intensities (NIfTI has none)")
    p.add_argument("--series", help="in a DICOM folder holding several series: the one to use (description or UID)")


def read_image(args):
    """The image named on the command line (``--series`` picks one series of a DICOM folder)."""
    from napari_sam_mis.io import read_volume

    return read_volume(args.image, series=args.series)


def window_from_args(args, volume) -> Window:
    """The window the arguments ask for; ``--modality`` sets the volume's modality first."""
    if args.modality != "auto":
        volume.modality = args.modality
        volume.meta["modality_source"] = "given with --modality"
    if args.level is not None or args.width is not None:
        if args.level is None or args.width is None:
            raise SamMisError("--level and --width go together")
        window = Window("level_width", args.level, args.width)
    elif args.window:
        window = Window.preset(args.window)
    else:
        window = Window.for_volume(volume)
    if window.kind == "level_width":
        try:
            window.bounds(volume.array)
        except ValueError as exc:
            raise SamMisError(f"--level/--width: {exc}") from None
    return window


def load_engine(args):
    from napari_sam_mis.model.engine import SamEngine

    return SamEngine.load(args.model, args.checkpoint, args.device)


def session_from_args(args, volume):
    from napari_sam_mis.annotate.session import AnnotationSession

    window = window_from_args(args, volume)
    engine = load_engine(args)
    print(f"model {engine.name} on {engine.device}; {window_summary(volume, window)}", file=sys.stderr)
    return AnnotationSession(volume, engine, window)
