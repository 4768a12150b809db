"""The napari-sam-mis command: eval, segment, propose, view, embed, batch, export-dataset, finetune, bench.

One module per command, each with ``register(subparsers)``; ``common`` holds what they share.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from napari_sam_mis.cli import batch, bench, embed, evaluate, export, finetune, propose, segment, view
from napari_sam_mis.errors import SamMisError

COMMANDS = (evaluate, segment, propose, view, embed, batch, export, finetune, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-sam-mis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None) -> int:
    """Run a command; a problem with the input or the environment (a file that can't be read or
    written, a full disk) ends it with one ``error:`` line naming the file, and exit status 2."""
    args = build_parser().parse_args(argv)
    # the model libraries' deprecation notices are not the user's business
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(timm|torch)(\.|$)")
    try:
        return args.func(args)
    except SamMisError as exc:
        return _error(str(exc))
    except OSError as exc:
        where = exc.filename2 or exc.filename  # a rename's destination, else the file
        what = exc.strerror or str(exc)
        return _error(f"{where}: {what}" if where else what)


def _error(message: str) -> int:
    one_line = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"napari-sam-mis: error: {one_line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
