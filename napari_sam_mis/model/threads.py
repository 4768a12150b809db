"""Threads on a CPU with few cores: how many a decode uses, and decoding before background encoding."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from napari_sam_mis.errors import ModelError

DECODE_THREADS_ENV = "NAPARI_SAM_MIS_DECODE_THREADS"


def default_decode_threads() -> int | None:
    """Intra-op threads for CPU decoding: $NAPARI_SAM_MIS_DECODE_THREADS, else torch's default
    (None). A background encode pauses between its short steps while a decode runs
    (``DecodePriority``), so the decoder can use every core."""
    value = os.environ.get(DECODE_THREADS_ENV)
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ModelError(f"{DECODE_THREADS_ENV}={value!r} must be a positive integer")
    return n


@contextmanager
def intra_op_threads(n: int | None):
    """torch's intra-op thread count for the calling thread only (OpenMP's setting is per thread)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DecodePriority:
    """Lets decoding go before background encoding on a CPU with few cores.

    A decode marks itself active for its duration; the encoder calls ``wait`` between its steps
    (each a few tens of ms) and pauses there while any decode is active.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._active = 0

    @contextmanager
    def decoding(self):
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def wait(self) -> None:
        if self._active:
            with self._cond:
                self._cond.wait_for(lambda: self._active == 0, timeout=5.0)
