"""Safe output: never overwrite a source image, and write through a temporary file then rename."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from napari_sam_mis.errors import InputError


def refuse_sources(path, sources) -> Path:
    """Return ``path`` resolved; raise if it is one of the source files (or inside a source folder)."""
    out = Path(path).expanduser().resolve()
    for src in sources:
        if not src:
            continue
        src = Path(src).expanduser().resolve()
        if out == src or (src.is_dir() and src in out.parents):
            raise InputError(out, f"refusing to write over or into the source image {src}; choose another path")
    return out


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same extension); on success it replaces ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(out.suffixes[-2:]) if out.name.endswith(".nii.gz") else out.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".tmp{suffix}", dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
