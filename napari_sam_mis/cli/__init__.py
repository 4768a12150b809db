"""The ``napari-sam-mis`` command: eval, segment, view, embed, export-dataset, finetune, bench.

One module per command, each with ``register(subparsers)``; ``common`` holds what they share.
"""
from __future__ import annotations

import argparse
import sys

from napari_sam_mis.cli import bench, embed, evaluate, export, finetune, segment, view
from napari_sam_mis.errors import SamMisError

COMMANDS = (evaluate, segment, view, embed, export, finetune, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-sam-mis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
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
