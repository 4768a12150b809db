"""SAMAug prior maps on disk, beside the slice embeddings they were computed from.

Layout: ``<embedding folder>/priors/<key>/meta.json`` and ``<z>.<crc32>.npy`` per slice, each a
float16 (2, rows, cols) array (segmentation prior, boundary prior). The key hashes the
embeddings' signature and the prior recipe, so another image, model, window, axis or recipe
opens another folder; meta.json is checked on open and a chunk's CRC-32 (over its slice index
and bytes) on load. A damaged or stale entry is dropped with a warning, and its slice is
computed again. Chunks are written through a temporary file and a rename.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_sam_mis.embeddings.chunks import ChunkFolder
from napari_sam_mis.embeddings.store import signature_key

PRIORS_FOLDER = "priors"
PRIORS_FORMAT = 1
PRIORS_DTYPE = "float16"


class PriorCacheWarning(UserWarning):
    """A cached prior map or its metadata was stale or damaged and is recomputed."""


class PriorStore:
    """The prior maps of one (embedding signature, recipe) in ``<embedding folder>/priors/<key>/``."""

    def __init__(self, embedding_folder, signature: dict, recipe: dict, shape: tuple[int, int]):
        self.shape = (2, *(int(s) for s in shape))
        meta = {"format": PRIORS_FORMAT, "signature": signature, "recipe": recipe,
                "shape": list(self.shape), "dtype": PRIORS_DTYPE}
        key = signature_key({"signature": signature, "recipe": recipe})
        self._chunks = ChunkFolder(Path(embedding_folder) / PRIORS_FOLDER / key, meta, self.shape, PRIORS_DTYPE,
                                   "prior cache", PriorCacheWarning, "its recipe or signature does not match")

    @property
    def dir(self) -> Path:
        return self._chunks.dir

    def has(self, z: int) -> bool:
        return self._chunks.has(z)

    def save(self, z: int, seg: np.ndarray, boundary: np.ndarray) -> None:
        self._chunks.save(z, np.stack([seg, boundary]))

    def load(self, z: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Slice z's (segmentation, boundary) priors as float16, or None when absent or damaged
        (a damaged chunk is removed, with a warning)."""
        arr = self._chunks.load(z)
        return None if arr is None else (arr[0], arr[1])
