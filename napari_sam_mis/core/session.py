"""AnnotationSession: one image, one model, one window, and the embeddings computed so far.

A plain object (no global state): the widget owns one, scripts and tests build their own.
Embedding and decoding may run in different threads; the cache is guarded by a lock.
"""
from __future__ import annotations

import threading

import numpy as np

from .decode import DecodeResult, decode
from .embeddings import center_out_order, iter_embeddings
from .engine import SamEngine, SliceEmbedding
from .prompts import Prompt
from .volume import Volume
from .window import Window, apply_window


class AnnotationSession:
    def __init__(self, volume: Volume, engine: SamEngine, window: Window | None = None, batch_size: int = 4):
        self.volume = volume
        self.engine = engine
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._cache: dict[int, SliceEmbedding] = {}
        self.set_window(window or Window.for_volume(volume))

    # -- window ----------------------------------------------------------------------------
    def set_window(self, window: Window) -> None:
        """Change the intensity window; embeddings computed with the old one are dropped."""
        with self._lock:
            self.window = window
            self._bounds = window.bounds(self.volume.array)
            self._cache.clear()

    def display_slice(self, z: int) -> np.ndarray:
        """Slice z as 0..255 display values, the model's input before its own preprocessing."""
        keep_zero = self.window.kind == "percentile"
        return apply_window(self.volume.slice(z), self._bounds, keep_zero=keep_zero)

    # -- embeddings ------------------------------------------------------------------------
    def has_embedding(self, z: int) -> bool:
        return z in self._cache

    @property
    def n_embedded(self) -> int:
        return len(self._cache)

    def missing(self, center: int = 0) -> list[int]:
        """Slices without an embedding, nearest to ``center`` first."""
        return [z for z in center_out_order(center, self.volume.n_slices) if z not in self._cache]

    def embed(self, indices) -> list[int]:
        """Compute (in batches) and store embeddings for ``indices``; returns the slices done."""
        return [z for z, _ in self.iter_embed(indices)]

    def iter_embed(self, indices):
        """Like ``embed`` but yields (z, embedding) as each slice is stored (for progress/cancel)."""
        window = self.window
        todo = [z for z in indices if z not in self._cache]
        for z, emb in iter_embeddings(self.engine, self.display_slice, todo, self.batch_size):
            with self._lock:
                if self.window is not window:  # window changed meanwhile: this result is stale
                    return
                self._cache[z] = emb
            yield z, emb

    def embedding(self, z: int) -> SliceEmbedding:
        """The embedding of slice z, computed now if it is not ready."""
        emb = self._cache.get(z)
        if emb is None:
            self.embed([z])
            emb = self._cache[z]
        return emb

    # -- decoding --------------------------------------------------------------------------
    def decode(self, z: int, prompt: Prompt) -> DecodeResult:
        return decode(self.engine, self.embedding(z), prompt)
