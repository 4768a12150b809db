"""`napari-sam-mis view`: napari with the plugin docked, on the sample CT or on PATH."""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("view", help="open napari with the plugin docked (sample CT, or PATH)")
    p.add_argument("path", nargs="?", help="NIfTI or NRRD file or DICOM folder; default: the synthetic abdominal CT")
    p.set_defaults(func=run_view)
    return p


def run_view(args) -> int:
    from napari_sam_mis._qt.launch import launch  # Qt only for this command

    launch(args.path)
    return 0
