"""AnnotationSession: one image, one model, one window, and the embeddings computed so far.

A plain object (no global state): the widget owns one, scripts and tests build their own.
Embedding and decoding may run in different threads; the caches are guarded by a lock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from napari_sam_mis import __version__
from napari_sam_mis.annotate.clicks import mask_for_clicks
from napari_sam_mis.annotate.masks import MaskResult, mask_for_prompt
from napari_sam_mis.annotate.neighbour_check import checked_by_neighbour
from napari_sam_mis.annotate.planes import SlicePlane
from napari_sam_mis.annotate.prompts import Prompt
from napari_sam_mis.annotate.uncertainty import Uncertainty, box_uncertainty
from napari_sam_mis.annotate.window import Window, apply_window
from napari_sam_mis.embeddings.compute import center_out_order, iter_embeddings
from napari_sam_mis.embeddings.store import (
    DEFAULT_MEMORY_SLICES,
    STORE_DTYPE,
    EmbeddingStore,
    SliceLRU,
    geometry_to_dict,
    volume_hash,
)
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.slices import SliceEmbedding
from napari_sam_mis.volume import Volume


class AnnotationSession:
    """Slices along ``axis`` (0 axial, 1 coronal, 2 sagittal) of one volume, one model, one window.

    Embeddings live in a RAM LRU of ``memory_slices`` slices; with a ``cache_dir`` they are also
    written to disk (float16, see embeddings/store.py) as each slice finishes and read back on a later
    run. By default the LRU holds DEFAULT_MEMORY_SLICES with a disk cache and is unbounded without
    one (a bounded RAM-only cache would recompute evicted slices). One session per axis: each has
    its own signature.
    """

    def __init__(self, volume: Volume, engine: SamEngine, window: Window | None = None, batch_size: int = 4,
                 axis: int = 0, cache_dir=None, memory_slices: int | None = None):
        self.volume = volume
        self.engine = engine
        self.batch_size = batch_size
        self.plane = SlicePlane.of(volume, axis)
        self.geometry = self.plane.geometry(engine)
        self.cache_dir = cache_dir
        self._lock = threading.RLock()
        if memory_slices is None and cache_dir is not None:
            memory_slices = DEFAULT_MEMORY_SLICES
        self._memory = SliceLRU(memory_slices)
        self._store: EmbeddingStore | None = None
        self._voxel_hash = volume_hash(volume.array) if cache_dir is not None else None
        self._last_clicks: dict[int, _Clicks] = {}
        self.set_window(window or Window.for_volume(volume))

    @property
    def axis(self) -> int:
        return self.plane.axis

    @property
    def n_slices(self) -> int:
        """Number of slices along this session's axis."""
        return self.plane.n_slices

    @property
    def cache_path(self):
        """The disk folder of the current signature's embeddings (None without a disk cache)."""
        return None if self._store is None else self._store.dir

    # -- window ----------------------------------------------------------------------------
    def set_window(self, window: Window) -> None:
        """Change the intensity window: embeddings of the old one no longer apply (another signature)."""
        store = None
        if self.cache_dir is not None:
            store = EmbeddingStore(self.cache_dir, self.signature(window), self.geometry, self._embedding_shape())
        with self._lock:
            self.window = window
            self._bounds = window.bounds(self.volume.array)
            self._memory.clear()
            self._store = store

    def signature(self, window: Window | None = None) -> dict:
        """Everything the embeddings depend on; a cached entry is used only when all of it matches."""
        return {
            "voxels": self._voxel_hash,
            "window": (window or self.window).key(),
            "model": self.engine.name,
            "weights_sha256": self.engine.weights_sha256,
            # bf16/fp16 encoders give other features; eager and fast agree up to float rounding
            "encoder_precision": {"bf16": "bf16", "fp16": "fp16"}.get(getattr(self.engine, "backend", ""), "fp32"),
            "plane": self.plane.key(),
            "geometry": geometry_to_dict(self.geometry),
            "embedding": [list(self._embedding_shape()), STORE_DTYPE],
            "package": __version__,
        }

    def _embedding_shape(self) -> tuple[int, int, int]:
        prompt_encoder = self.engine.module.prompt_encoder  # the decoder's expected image embedding size
        return (int(prompt_encoder.embed_dim), *(int(v) for v in prompt_encoder.image_embedding_size))

    def display_slice(self, z: int) -> np.ndarray:
        """Slice z along the axis as 0..255 display values, the model's input before its own preprocessing."""
        keep_zero = self.window.kind == "percentile"
        return apply_window(self.plane.take(self.volume.array, z), self._bounds, keep_zero=keep_zero)

    def _model_slice(self, z: int) -> np.ndarray:
        return self.plane.resample(self.display_slice(z))

    # -- embeddings ------------------------------------------------------------------------
    def has_embedding(self, z: int) -> bool:
        with self._lock:
            return z in self._memory or (self._store is not None and self._store.has(z))

    @property
    def n_embedded(self) -> int:
        """Slices of this session with an embedding (a stray chunk of another slice count does not count)."""
        with self._lock:
            done = self._memory.keys()
            if self._store is not None:
                done |= self._store.slices()
            return len(done & set(range(self.n_slices)))

    def verify_cache(self) -> list[int]:
        """Read the disk cache's chunks back and drop the damaged ones; returns those slices."""
        return [] if self._store is None else self._store.verify()

    def missing(self, center: int = 0) -> list[int]:
        """Slices without an embedding, nearest to ``center`` first."""
        return [z for z in center_out_order(center, self.n_slices) if not self.has_embedding(z)]

    def embed(self, indices) -> list[int]:
        """Compute (in batches) and store embeddings for ``indices``; returns the slices done."""
        return [z for z, _ in self.iter_embed(indices)]

    def iter_embed(self, indices):
        """Like ``embed`` but yields (z, embedding) as each slice is stored (for progress/cancel)."""
        import torch

        with self._lock:
            window, store = self.window, self._store
        todo = [z for z in indices if not self.has_embedding(z)]
        for z, emb in iter_embeddings(self.engine, self._model_slice, todo, self.batch_size):
            emb.geometry = self.geometry
            if store is not None:  # written even if the window changed meanwhile: valid for its own signature
                half = emb.features.detach().to("cpu", dtype=torch.float16)
                store.save(z, half.numpy())
                emb.features = half.to(emb.features.device, dtype=emb.features.dtype)  # as a later load sees it
            with self._lock:
                if self.window is not window:  # window changed meanwhile: this result is stale
                    return
                self._memory.put(z, emb)
            yield z, emb

    def embedding(self, z: int) -> SliceEmbedding:
        """The embedding of slice z: from RAM, else from disk, else computed now."""
        with self._lock:
            emb = self._memory.get(z)
            store = self._store
        if emb is not None:
            return emb
        if store is not None:
            features = store.load(z)
            if features is not None:
                import torch

                emb = SliceEmbedding(torch.from_numpy(features).float()[None].to(self.engine.device), self.geometry)
                with self._lock:
                    if self._store is store:
                        self._memory.put(z, emb)
                return emb
        for _, emb in self.iter_embed([z]):
            return emb
        return self.embedding(z)  # the window changed while computing: compute for the new one

    # -- prompts -> masks ------------------------------------------------------------------
    def predict(self, z: int, prompt: Prompt) -> MaskResult:
        """The mask of one prompt on slice z, nothing remembered."""
        if self.engine.spec.box_trained and prompt.points:
            # a box-trained model ignores points: clicks become candidate boxes or correct the box's mask
            # (annotate/clicks.py)
            return mask_for_clicks(self.engine, self.embedding(z), self.display_slice(z), prompt,
                                   self.plane.spacing, self.plane.resampled_prompt)
        return mask_for_prompt(self.engine, self.embedding(z), self.plane.resampled_prompt(prompt))

    def uncertainty(self, z: int, box) -> Uncertainty:
        """Where the mask of ``box`` on slice z is unsure, and the next click (annotate/uncertainty.py)."""
        return box_uncertainty(self.engine, self.embedding(z), box, self.display_slice(z).shape[:2],
                               self.plane.resampled_prompt)

    def segment(self, z: int, prompt: Prompt, neighbour: np.ndarray | None = None) -> MaskResult:
        """The mask of an annotator's prompt on slice z. A follow-up click refines the last mask:
        when the prompt is the last click-only prompt of slice z plus one click, the last result's
        low-res logits are fed back as mask prompt (unless the prompt brings its own). ``neighbour``:
        the object's mask on an adjacent slice, which bounds a first click's mask
        (``annotate.neighbour_check``)."""
        last = self._last_clicks.get(z)
        if (last is not None and prompt.box is None and prompt.mask_logits is None
                and len(prompt.points) == len(last.points) + 1
                and np.allclose(prompt.points[:-1], last.points) and list(prompt.labels[:-1]) == last.labels):
            prompt = replace(prompt, mask_logits=last.logits)
        result = checked_by_neighbour(self, z, prompt, self.predict(z, prompt), neighbour)
        if prompt.points and prompt.box is None:
            self._last_clicks[z] = _Clicks([tuple(p) for p in prompt.points], list(prompt.labels), result.low_res_logits)
        else:
            self._last_clicks.pop(z, None)
        return result


@dataclass
class _Clicks:
    """The last click-only prompt of a slice and the logits it gave."""

    points: list
    labels: list
    logits: np.ndarray
