"""Safe output: never overwrite a source image; write through temporary files beside the outputs,
then rename them, so that a reader sees the old files or the new ones, never half of one.

A temporary file is named ``.<name>.<host>-<pid>.<random>.tmp<suffix>``: a later write (or the
embedding cache) removes it only when it is provably stale, that is when the process that wrote
it, on this host, is gone, or it is older than STALE_AFTER_S. Outputs get the mode a plain
``open`` would give them under the user's umask (a temporary file is created 0600).
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from napari_sam_mis.errors import InputError

STALE_AFTER_S = 24 * 3600
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP = re.compile(r"^\.(?P<target>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.tmp")
_UMASK_LOCK = threading.Lock()


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


def _umask() -> int:
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(folder: bool = False) -> int:
    """The mode ``open`` (0666) or ``mkdir`` (0777) gives under the current umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """True for a temporary file of ``atomic_paths`` whose writer is gone (or that is very old)."""
    m = _TEMP.match(path.name)
    if m is None:
        return False
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except OSError:
        return False
    return age > STALE_AFTER_S or (m["host"] == _HOST and not _alive(int(m["pid"])))


def remove_stale_temps(folder, target: str | None = None) -> int:
    """Remove the stale temporary files in ``folder`` (of ``target`` only, when given); returns how many."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for p in entries:
        m = _TEMP.match(p.name)
        if m and (target is None or m["target"] == target) and is_stale_temp(p):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def file_in_the_way(folder: Path) -> Path | None:
    """The file that lies where ``folder`` (or a folder above it) should be, if any."""
    first = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return first if first is not None and not first.is_dir() else None


def _make_folder_of(out: Path) -> None:
    """Create ``out``'s folder; a file lying in the way is named as the problem."""
    blocker = file_in_the_way(out.parent)
    if blocker is not None:
        raise NotADirectoryError(20, f"is a file, so {out.name} can't be written inside it", str(blocker))
    out.parent.mkdir(parents=True, exist_ok=True)


def _temp_beside(out: Path) -> Path:
    suffix = "".join(out.suffixes[-2:]) if out.name.lower().endswith(".nii.gz") else out.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.{_HOST}-{os.getpid()}.", suffix=f".tmp{suffix}", dir=out.parent)
    os.close(fd)
    os.chmod(tmp, default_mode())
    return Path(tmp)


def naming(exc: OSError, path, always: bool = False) -> OSError:
    """``exc`` as the same kind of OSError naming ``path``: a failed write (a full disk) names no
    file, a failed temporary file names a hidden one; the user wants to know which output failed.
    Unless ``always``, an error that names a file of the user's is kept."""
    named = exc.filename2 is not None or (exc.filename is not None and _TEMP.match(Path(exc.filename).name) is None)
    if named and not always:
        return exc  # e.g. a rename's error, which names its destination
    return OSError(exc.errno, exc.strerror or str(exc), str(path))  # picks the subclass of errno


@contextmanager
def atomic_paths(paths):
    """Yield temporary paths beside ``paths`` (same extensions); when the block succeeds, each
    replaces its path, all written before any is renamed. On failure nothing is replaced; an
    OSError names the output (the first, when several are written as a unit)."""
    outs = [Path(p) for p in paths]
    temps = []
    try:
        for out in outs:
            _make_folder_of(out)
            remove_stale_temps(out.parent, out.name)  # left by a killed write of the same file
            temps.append(_temp_beside(out))
        yield temps
        for tmp, out in zip(temps, outs):
            os.replace(tmp, out)
    except OSError as exc:
        named = naming(exc, outs[0] if outs else "")
        if named is exc:
            raise
        raise named from exc
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


@contextmanager
def atomic_path(path):
    """``atomic_paths`` for one file."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
