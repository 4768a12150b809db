"""Which slices to embed next: slices a prompt is waiting for first, then (unless cancelled) the
missing slices nearest the current one. Thread-safe; the GUI's embedding worker asks it batch by batch."""
from __future__ import annotations

import threading


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
