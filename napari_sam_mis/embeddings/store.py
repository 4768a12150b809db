"""Slice embeddings on disk (float16, one checksummed file per slice) and a RAM LRU in front.

Layout: ``<cache dir>/<signature key>/meta.json`` (the full signature and the slice geometry)
and ``<z>.<crc32>.npy`` per slice. The key is a hash of the signature (voxel content, window,
model + weights, slicing axis, package version, embedding shape/dtype, preprocessing geometry),
so any change opens another folder; meta.json is checked on open, and each chunk's CRC-32 (in
its name) on load. A stale or damaged entry is dropped with a warning and recomputed. Chunks
are written through a temporary file and a rename, as each slice finishes: an interrupted run
resumes where it stopped. A plain folder of .npy files was chosen over zarr after measuring
(docs/volumes.md): as fast for 2 MiB chunks, atomic per chunk, and no extra dependency.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import threading
import warnings
import zlib
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.atomic import file_in_the_way, remove_stale_temps, write_bytes_atomic
from napari_sam_mis.model.slices import SliceGeometry

CACHE_ENV = "NAPARI_SAM_MIS_CACHE"
STORE_FORMAT = 2  # 2: a chunk's CRC covers its slice index too
STORE_DTYPE = "float16"
DEFAULT_MEMORY_SLICES = 64  # RAM LRU: 64 x 4 MiB float32 = 256 MiB for 256x64x64 embeddings


class EmbeddingCacheWarning(UserWarning):
    """A cached embedding or its metadata was stale or damaged and is recomputed."""


def default_cache_dir() -> Path:
    """$NAPARI_SAM_MIS_CACHE, else the user cache directory (platformdirs) + /embeddings."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-sam-mis")) / "embeddings"


def volume_hash(array: np.ndarray) -> str:
    """blake2b of the voxel values (+ shape and dtype), hashed slab by slab (no full copy)."""
    arr = np.asarray(array)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{arr.shape}|{arr.dtype.str}".encode())
    for slab in arr if arr.ndim > 1 else arr[None]:
        h.update(np.ascontiguousarray(slab).data)
    return h.hexdigest()


def signature_key(signature: dict) -> str:
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:32]


def geometry_to_dict(geom: SliceGeometry) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(geom).items()}


def geometry_from_dict(d: dict) -> SliceGeometry:
    return SliceGeometry(
        original=tuple(int(v) for v in d["original"]),
        resized=tuple(int(v) for v in d["resized"]),
        scale=tuple(float(v) for v in d["scale"]),
        input_size=int(d["input_size"]),
    )


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


class SliceLRU:
    """At most ``capacity`` items (None: unbounded), least recently used evicted first. Not locked."""

    def __init__(self, capacity: int | None = DEFAULT_MEMORY_SLICES):
        if capacity is not None and capacity < 1:
            raise ValueError(f"memory_slices must be at least 1 (or None), got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()

    def get(self, key):
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while self.capacity is not None and len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, key) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> set:
        return set(self._items)

    def clear(self) -> None:
        self._items.clear()


class EmbeddingStore:
    """The float16 embeddings of one signature in ``root/<key>/``. Thread-safe."""

    def __init__(self, root, signature: dict, geometry: SliceGeometry, shape: tuple[int, ...]):
        self.signature = dict(signature)
        self.geometry = geometry
        self.shape = tuple(int(s) for s in shape)
        self.dir = Path(root).expanduser() / signature_key(self.signature)
        self._lock = threading.Lock()
        self._chunks: dict[int, str] = {}  # slice -> file name
        self._open()

    # -- metadata ----------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"format": STORE_FORMAT, "signature": self.signature, "geometry": geometry_to_dict(self.geometry),
                "shape": list(self.shape), "dtype": STORE_DTYPE}

    def _open(self) -> None:
        in_the_way = file_in_the_way(self.dir.parent)
        if in_the_way is not None:
            raise InputError(in_the_way, f"is a file, so the embedding cache folder {self.dir.parent} can't be "
                                         f"created; give a folder (--cache-dir or ${CACHE_ENV})")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"embedding cache folder {self.dir} can't be created: {exc}") from exc
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                problem = None if meta == self._meta() else "its signature does not match this image/model/window"
            except (OSError, ValueError) as exc:
                problem = f"its metadata is unreadable ({exc})"
            if problem is None:
                self._scan()
                return
            warnings.warn(f"embedding cache {self.dir}: {problem}; recomputing", EmbeddingCacheWarning, stacklevel=3)
            self._wipe()
        write_bytes_atomic(meta_path, json.dumps(self._meta(), indent=1, sort_keys=True).encode())

    def _scan(self) -> None:
        remove_stale_temps(self.dir)  # left by interrupted writes (never another process's write in progress)
        for name in os.listdir(self.dir):
            parts = name.split(".")
            if len(parts) == 3 and parts[2] == "npy" and parts[0].isdigit():
                self._chunks[int(parts[0])] = name

    def _wipe(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._chunks.clear()

    # -- chunks --------------------------------------------------------------------------------
    def has(self, z: int) -> bool:
        with self._lock:
            return int(z) in self._chunks

    def verify(self) -> list[int]:
        """Read every chunk and drop the damaged ones (with a warning); returns the slices dropped."""
        return [z for z in sorted(self.slices()) if self.load(z) is None]

    def slices(self) -> set[int]:
        with self._lock:
            return set(self._chunks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunks)

    def save(self, z: int, features: np.ndarray) -> None:
        """Write slice z's features (any float dtype, this store's shape) as float16."""
        arr = np.asarray(features).reshape(self.shape).astype(STORE_DTYPE)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        data = buf.getvalue()
        name = f"{int(z):05d}.{chunk_crc(z, data):08x}.npy"
        write_bytes_atomic(self.dir / name, data)
        with self._lock:
            old = self._chunks.get(int(z))
            self._chunks[int(z)] = name
        if old is not None and old != name:
            (self.dir / old).unlink(missing_ok=True)

    def load(self, z: int) -> np.ndarray | None:
        """Slice z's float16 features, or None when absent; a damaged chunk is removed with a warning."""
        with self._lock:
            name = self._chunks.get(int(z))
        if name is None:
            return None
        path = self.dir / name
        try:
            arr = read_chunk(path, z, self.shape, STORE_DTYPE)
        except (OSError, ValueError) as exc:
            warnings.warn(f"embedding cache chunk {path} is damaged ({exc}); recomputing slice {z}",
                          EmbeddingCacheWarning, stacklevel=2)
            with self._lock:
                if self._chunks.get(int(z)) == name:
                    del self._chunks[int(z)]
            path.unlink(missing_ok=True)
            return None
        return arr
