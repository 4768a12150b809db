"""Keep freed memory in the process between model calls, instead of glibc handing it back.

By default glibc gives a large freed block back to the operating system (blocks above its mmap
threshold are unmapped, and free memory at the top of the heap is trimmed once it exceeds a few
MB). Every call of the decoder then touches its ~15 MB of intermediate tensors as fresh pages,
which the kernel maps and zeroes one 4 KiB page fault at a time (docs/performance.md has the
counts). With the settings below, blocks up to 32 MB come from the heap and up to 64 MB of free
heap is kept, so a call takes a few page faults. The price is up to 64 MB of memory that
stays with the process after a call. Applied once per process by the CPU engine (``SamEngine``
with a backend other than ``eager``); set NAPARI_SAM_MIS_KEEP_FREED_MEMORY=0 to leave glibc's
defaults. Elsewhere than on glibc (macOS, Windows, musl) nothing is changed.
"""
from __future__ import annotations

import ctypes
import os
import sys

ENV = "NAPARI_SAM_MIS_KEEP_FREED_MEMORY"
# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = (
    (M_MMAP_THRESHOLD, 32 << 20),  # glibc's largest allowed value on 64-bit systems
    (M_TRIM_THRESHOLD, 64 << 20),
    (M_TOP_PAD, 16 << 20),
)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply ``SETTINGS`` to glibc's malloc, once per process; True if they are in force."""
    global _applied
    if _applied is None:
        _applied = False
        if os.environ.get(ENV, "1") != "0" and sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # not glibc
                return False
            _applied = all(mallopt(param, value) == 1 for param, value in SETTINGS)
    return _applied
