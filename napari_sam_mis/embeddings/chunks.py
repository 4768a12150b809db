"""A folder of per-slice arrays, one checksummed ``<z>.<crc32>.npy`` file each, under a
``meta.json`` that says what they hold: the disk layout the embedding and prior caches share.

The metadata is checked on open (a mismatch or an unreadable file empties the folder, with a
warning), each chunk's CRC-32 (over its slice index and bytes), shape and dtype on load (a
damaged chunk is removed, with a warning). Chunks are written through a temporary file and a
rename. Thread-safe.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np

from napari_sam_mis.io.atomic import remove_stale_temps, write_bytes_atomic


def chunk_crc(z: int, data: bytes) -> int:
    """CRC-32 of a chunk's bytes and its slice index: a chunk renamed to another slice fails it."""
    return zlib.crc32(data, zlib.crc32(f"{int(z)}:".encode()))


def read_chunk(path: Path, z: int, shape, dtype) -> np.ndarray:
    """A chunk file of slice z (named ``<z>.<crc>.npy``) checked against its CRC, shape and dtype;
    ValueError or OSError says what is wrong."""
    data = path.read_bytes()
    if chunk_crc(z, data) != int(path.name.split(".")[1], 16):
        raise ValueError("checksum mismatch")
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    if arr.shape != tuple(shape) or arr.dtype != np.dtype(dtype):
        raise ValueError(f"shape {arr.shape} {arr.dtype}, expected {tuple(shape)} {np.dtype(dtype)}")
    return arr


class ChunkFolder:
    """The chunks of ``folder`` (created if needed), each of ``shape`` and ``dtype``; ``meta`` is
    what meta.json must hold. ``what`` names the cache in warnings of class ``warning``;
    ``mismatch`` says why a different meta.json is dropped."""

    def __init__(self, folder, meta: dict, shape, dtype: str, what: str, warning: type[Warning], mismatch: str):
        self.dir = Path(folder)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self._what, self._warning = what, warning
        self._lock = threading.Lock()
        self._chunks: dict[int, str] = {}  # slice -> file name
        self._open(meta, mismatch)

    def _open(self, meta: dict, mismatch: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            try:
                same = json.loads(meta_path.read_text()) == json.loads(json.dumps(meta))
                problem = None if same else mismatch
            except (OSError, ValueError) as exc:
                problem = f"its metadata is unreadable ({exc})"
            if problem is None:
                self._scan()
                return
            warnings.warn(f"{self._what} {self.dir}: {problem}; recomputing", self._warning, stacklevel=4)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())

    def _scan(self) -> None:
        remove_stale_temps(self.dir)  # left by interrupted writes (never another process's write in progress)
        for name in os.listdir(self.dir):
            parts = name.split(".")
            if len(parts) == 3 and parts[2] == "npy" and parts[0].isdigit():
                self._chunks[int(parts[0])] = name

    def has(self, z: int) -> bool:
        with self._lock:
            return int(z) in self._chunks

    def slices(self) -> set[int]:
        with self._lock:
            return set(self._chunks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunks)

    def save(self, z: int, arr: np.ndarray) -> None:
        """Write slice z's array (converted to this folder's shape and dtype)."""
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr).reshape(self.shape).astype(self.dtype), allow_pickle=False)
        data = buf.getvalue()
        name = f"{int(z):05d}.{chunk_crc(z, data):08x}.npy"
        write_bytes_atomic(self.dir / name, data)
        with self._lock:
            old = self._chunks.get(int(z))
            self._chunks[int(z)] = name
        if old is not None and old != name:
            (self.dir / old).unlink(missing_ok=True)

    def load(self, z: int) -> np.ndarray | None:
        """Slice z's array, or None when absent or damaged (a damaged chunk is removed, with a warning)."""
        with self._lock:
            name = self._chunks.get(int(z))
        if name is None:
            return None
        path = self.dir / name
        try:
            return read_chunk(path, z, self.shape, self.dtype)
        except (OSError, ValueError) as exc:
            warnings.warn(f"{self._what} chunk {path} is damaged ({exc}); recomputing slice {z}",
                          self._warning, stacklevel=3)
            with self._lock:
                if self._chunks.get(int(z)) == name:
                    del self._chunks[int(z)]
            path.unlink(missing_ok=True)
            return None
