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
import json
import os
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from napari_sam_mis.embeddings.chunks import ChunkFolder
from napari_sam_mis.errors import InputError
from napari_sam_mis.io.atomic import file_in_the_way
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
        folder = Path(root).expanduser() / signature_key(self.signature)
        in_the_way = file_in_the_way(folder.parent)
        if in_the_way is not None:
            raise InputError(in_the_way, f"is a file, so the embedding cache folder {folder.parent} can't be "
                                         f"created; give a folder (--cache-dir or ${CACHE_ENV})")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"embedding cache folder {folder} can't be created: {exc}") from exc
        meta = {"format": STORE_FORMAT, "signature": self.signature, "geometry": geometry_to_dict(geometry),
                "shape": list(self.shape), "dtype": STORE_DTYPE}
        self._chunks = ChunkFolder(folder, meta, self.shape, STORE_DTYPE, "embedding cache", EmbeddingCacheWarning,
                                   "its signature does not match this image/model/window")

    @property
    def dir(self) -> Path:
        return self._chunks.dir

    def has(self, z: int) -> bool:
        return self._chunks.has(z)

    def verify(self) -> list[int]:
        """Read every chunk and drop the damaged ones (with a warning); returns the slices dropped."""
        return [z for z in sorted(self.slices()) if self.load(z) is None]

    def slices(self) -> set[int]:
        return self._chunks.slices()

    def __len__(self) -> int:
        return len(self._chunks)

    def save(self, z: int, features: np.ndarray) -> None:
        """Write slice z's features (any float dtype, this store's shape) as float16."""
        self._chunks.save(z, features)

    def load(self, z: int) -> np.ndarray | None:
        """Slice z's float16 features, or None when absent; a damaged chunk is removed with a warning."""
        return self._chunks.load(z)
