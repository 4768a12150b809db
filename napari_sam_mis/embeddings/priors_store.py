"""SAMAug prior maps on disk, beside the slice embeddings they were computed from.

Layout: ``<embedding folder>/priors/<key>/meta.json`` and ``<z>.<crc32>.npy`` per slice, each a
float16 (2, rows, cols) array (segmentation prior, boundary prior). The key hashes the
embeddings' signature and the prior recipe, so another image, model, window, axis or recipe
opens another folder; meta.json is checked on open and a chunk's CRC-32 (over its slice index
and bytes) on load. A damaged or stale entry is dropped with a warning, and its slice is
computed again. Chunks are written through a temporary file and a rename.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from napari_sam_mis.embeddings.store import chunk_crc, read_chunk, signature_key
from napari_sam_mis.io.atomic import remove_stale_temps, write_bytes_atomic

PRIORS_FOLDER = "priors"
PRIORS_FORMAT = 1
PRIORS_DTYPE = "float16"


class PriorCacheWarning(UserWarning):
    """A cached prior map or its metadata was stale or damaged and is recomputed."""


class PriorStore:
    """The prior maps of one (embedding signature, recipe) in ``<embedding folder>/priors/<key>/``."""

    def __init__(self, embedding_folder, signature: dict, recipe: dict, shape: tuple[int, int]):
        self.shape = (2, *(int(s) for s in shape))
        self._meta = {"format": PRIORS_FORMAT, "signature": signature, "recipe": recipe,
                      "shape": list(self.shape), "dtype": PRIORS_DTYPE}
        key = signature_key({"signature": signature, "recipe": recipe})
        self.dir = Path(embedding_folder) / PRIORS_FOLDER / key
        self._chunks: dict[int, str] = {}
        self._open()

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            try:
                same = json.loads(meta_path.read_text()) == json.loads(json.dumps(self._meta))
                problem = None if same else "its recipe or signature does not match"
            except (OSError, ValueError) as exc:
                problem = f"its metadata is unreadable ({exc})"
            if problem is None:
                remove_stale_temps(self.dir)
                for name in os.listdir(self.dir):
                    parts = name.split(".")
                    if len(parts) == 3 and parts[0].isdigit() and parts[2] == "npy":
                        self._chunks[int(parts[0])] = name
                return
            warnings.warn(f"prior cache {self.dir}: {problem}; recomputing", PriorCacheWarning, stacklevel=3)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(meta_path, json.dumps(self._meta, indent=1, sort_keys=True).encode())

    def has(self, z: int) -> bool:
        return int(z) in self._chunks

    def save(self, z: int, seg: np.ndarray, boundary: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.stack([seg, boundary]).reshape(self.shape).astype(PRIORS_DTYPE), allow_pickle=False)
        data = buf.getvalue()
        name = f"{int(z):05d}.{chunk_crc(z, data):08x}.npy"
        write_bytes_atomic(self.dir / name, data)
        old = self._chunks.get(int(z))
        self._chunks[int(z)] = name
        if old is not None and old != name:
            (self.dir / old).unlink(missing_ok=True)

    def load(self, z: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Slice z's (segmentation, boundary) priors as float16, or None when absent or damaged
        (a damaged chunk is removed, with a warning)."""
        name = self._chunks.get(int(z))
        if name is None:
            return None
        path = self.dir / name
        try:
            arr = read_chunk(path, z, self.shape, PRIORS_DTYPE)
        except (OSError, ValueError) as exc:
            warnings.warn(f"prior cache chunk {path} is damaged ({exc}); recomputing slice {z}",
                          PriorCacheWarning, stacklevel=2)
            self._chunks.pop(int(z), None)
            path.unlink(missing_ok=True)
            return None
        return arr[0], arr[1]
