"""SamEngine: one loaded model with its own preprocessing, image encoder and prompt decoder.

All three families share SAM's prompt encoder and mask decoder; they differ in how a slice
becomes model input:
- litemedsam: 3 channels, longest side to 256 (cv2 area), min-max to [0, 1], pad bottom/right
  (bowang-lab/MedSAM, branch LiteMedSAM, CVPR24_LiteMedSAM_infer.py).
- sam: segment_anything's ResizeLongestSide to 1024 and the model's pixel mean/std + padding.
- medsam: resize to 1024x1024 (bicubic, anti-aliased), min-max to [0, 1] (MedSAM_Inference.py).

Backends (``SamEngine.load(..., backend=...)``, or the NAPARI_SAM_MIS_BACKEND variable):
- ``eager``: the model modules as built, fp32 (the reference).
- ``fast``: fp32, LiteMedSAM's encoder rewritten for the CPU (fast_tinyvit.py) and the prompt
  decoder with per-slice caching (fast_decoder.py); numerically the same up to float rounding.
  On the CPU it also keeps freed memory in the process between calls (cpu_allocator.py).
- ``bf16`` / ``fp16``: ``fast`` with the image encoder under autocast (the decoder stays fp32);
  on CUDA the encoder runs in batches of CUDA_BATCH slices.
- ``auto`` (default): ``fast``. Reduced precision is opt-in: on this project's reference CPU
  (no bf16 instructions) bf16 is emulated and 20x slower, and its Dice on GPUs is unmeasured.
A backend that does not apply falls back: ``fp16`` on a CPU to ``fast``, and a model whose
encoder is not LiteMedSAM's TinyViT keeps its own encoder (the fast decoder still applies).
See docs/performance.md.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .cpu_allocator import keep_freed_memory
from .models import DEFAULT_MODEL, ModelSpec, build_model, file_sha256, get_spec, resolve_device

BACKENDS = ("auto", "eager", "fast", "bf16", "fp16")
BACKEND_ENV = "NAPARI_SAM_MIS_BACKEND"
DECODE_THREADS_ENV = "NAPARI_SAM_MIS_DECODE_THREADS"
# CUDA: slices per encoder call; LiteMedSAM needs about 0.25 GB of activations per slice in fp16.
CUDA_BATCH = 16


@dataclass(frozen=True)
class SliceGeometry:
    """Where an original (H, W) slice lies inside the square model input."""

    original: tuple[int, int]  # (H, W) of the slice
    resized: tuple[int, int]  # (h, w) of the image content inside the model input
    scale: tuple[float, float]  # (sy, sx): model-input pixels per original pixel
    input_size: int


@dataclass
class SliceEmbedding:
    """An encoded slice: image features (1, 256, 64, 64) on the engine's device + its geometry."""

    features: object  # torch.Tensor
    geometry: SliceGeometry


def to_uint8_rgb(display: np.ndarray) -> np.ndarray:
    """0..255 display values (H, W) or (H, W, 3) -> uint8 (H, W, 3), truncating as the recipe does."""
    img = np.asarray(display)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=-1)
    return img


def cpu_supports_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AVX512-BF16 or AMX); else bf16 is emulated."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_backend(backend: str | None, device) -> str:
    """The backend to use on ``device``: the request (argument, else $NAPARI_SAM_MIS_BACKEND,
    else auto) made concrete; a request that cannot run here falls back to ``fast``."""
    import torch

    requested = backend or os.environ.get(BACKEND_ENV) or "auto"
    if requested not in BACKENDS:
        source = "backend" if backend else BACKEND_ENV
        raise ModelError(f"{source}={requested!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    if requested == "auto":
        return "fast"
    if requested == "fp16" and device.type != "cuda":
        return "fast"  # no half-precision matrix units on the CPU path
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return requested


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
def _intra_op_threads(n: int | None):
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


class SamEngine:
    """Model + preprocessing + batched encode + decoder call. Thread-safe for inference."""

    def __init__(self, module, spec: ModelSpec, device, weights_path, backend: str | None = None):
        self.module = module.to(device)
        self.spec = spec
        self.device = device
        self.weights_path = weights_path
        self._weights_sha256 = None
        self.backend = resolve_backend(backend, device)
        self.priority = DecodePriority()
        self.decode_threads = default_decode_threads() if device.type == "cpu" else None
        self._fast_encoder = None
        self._fast_decoder = None
        self._dense_pe = None
        if self.backend != "eager":
            self._build_fast_paths()
            if device.type == "cpu":
                keep_freed_memory()

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, checkpoint=None, device: str = "auto", backend: str | None = None) -> "SamEngine":
        spec = get_spec(name)
        dev = resolve_device(device)
        module, path = build_model(name, checkpoint)
        return cls(module, spec, dev, path, backend)

    def _build_fast_paths(self) -> None:
        from .fast_decoder import FastMaskDecoder

        encoder = self.module.image_encoder
        if self.spec.family == "litemedsam" and hasattr(encoder, "patch_embed") and hasattr(encoder, "neck"):
            from .fast_tinyvit import FastTinyViT

            self._fast_encoder = FastTinyViT(encoder).eval()
        self._fast_decoder = FastMaskDecoder(self.module.prompt_encoder, self.module.mask_decoder)

    @property
    def encoder_path(self) -> str:
        """What runs the image encoder: 'eager', 'fast' or 'fast+bf16' etc."""
        if self.backend == "eager":
            return "eager"
        base = "fast" if self._fast_encoder is not None else "eager"
        return base if self.backend == "fast" else f"{base}+{self.backend}"

    def dense_pe(self):
        """The decoder's dense positional encoding (1, C, 64, 64): the same for every prompt and
        slice, so it is computed once per engine."""
        if self._dense_pe is None:
            import torch

            with torch.inference_mode():
                self._dense_pe = self.module.prompt_encoder.get_dense_pe()
        return self._dense_pe

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def weights_sha256(self) -> str:
        if self._weights_sha256 is None:
            self._weights_sha256 = file_sha256(self.weights_path)
        return self._weights_sha256

    # -- preprocessing ---------------------------------------------------------------------
    def geometry(self, shape: tuple[int, int]) -> SliceGeometry:
        h, w = int(shape[0]), int(shape[1])
        size = self.input_size
        if self.spec.family == "medsam":
            return SliceGeometry((h, w), (size, size), (size / h, size / w), size)
        scale = size / max(h, w)
        return SliceGeometry((h, w), (int(h * scale + 0.5), int(w * scale + 0.5)), (scale, scale), size)

    def preprocess(self, display: np.ndarray):
        """One slice of 0..255 display values -> (float32 array 3 x S x S, SliceGeometry)."""
        img = to_uint8_rgb(display)
        geom = self.geometry(img.shape[:2])
        family = self.spec.family
        if family == "litemedsam":
            import cv2

            h, w = geom.resized
            small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
            small = (small - small.min()) / np.clip(small.max() - small.min(), 1e-8, None)
            out = np.zeros((self.input_size, self.input_size, 3), np.float32)
            out[:h, :w] = small
            return np.ascontiguousarray(out.transpose(2, 0, 1)), geom
        if family == "sam":
            import torch
            from segment_anything.utils.transforms import ResizeLongestSide

            resized = ResizeLongestSide(self.input_size).apply_image(img)
            x = torch.as_tensor(resized).permute(2, 0, 1).contiguous().float()
            with torch.no_grad():
                x = self.module.preprocess(x.to(self.module.pixel_mean.device)[None])[0]
            return x.cpu().numpy(), geom
        if family == "medsam":
            from skimage.transform import resize

            size = self.input_size
            big = resize(img, (size, size), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
            big = big.astype(np.float32)
            big = (big - big.min()) / np.clip(big.max() - big.min(), 1e-8, None)
            return np.ascontiguousarray(big.transpose(2, 0, 1)), geom
        raise ValueError(f"unknown model family {family!r}")

    # -- encoder ---------------------------------------------------------------------------
    def _autocast(self):
        import torch

        if self.backend in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.backend == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return nullcontext()

    def _encode_chunk(self, x):
        """One call of the image encoder on a batch already on the device -> fp32 features."""
        with self._autocast():
            if self._fast_encoder is not None:
                out = self._fast_encoder(x, self.priority.wait if self.device.type == "cpu" else None)
            else:
                self.priority.wait()
                out = self.module.image_encoder(x)
        return out.float()

    def encode(self, batch: np.ndarray):
        """Preprocessed images (B, 3, S, S) -> image features (B, 256, 64, 64) on the device.

        CPU: one slice per encoder call (batching gains nothing there and multiplies memory),
        pausing between steps while a decode runs. CUDA: batches of CUDA_BATCH from pinned memory.
        """
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with torch.inference_mode():
            if self.device.type == "cuda":
                x = x.pin_memory().to(self.device, non_blocking=True)
                step = CUDA_BATCH if self.backend != "eager" else len(x)
            else:
                x = x.to(self.device)
                step = 1 if self.backend != "eager" else len(x)
            parts = [self._encode_chunk(x[i : i + step]) for i in range(0, len(x), max(step, 1))]
            return parts[0] if len(parts) == 1 else torch.cat(parts)

    def embed_slices(self, slices) -> list[SliceEmbedding]:
        """Display slices (each (H, W) or (H, W, 3), 0..255) -> one SliceEmbedding each, in one batch."""
        prepared = [self.preprocess(s) for s in slices]
        feats = self.encode(np.stack([p[0] for p in prepared]))
        return [SliceEmbedding(feats[i : i + 1], g) for i, (_, g) in enumerate(prepared)]

    # -- decoder ---------------------------------------------------------------------------
    def decode_raw(self, features, coords=None, labels=None, boxes=None, mask_logits=None, multimask=False):
        """Model-frame prompts (torch tensors on the device, batch B) -> (low-res logits, iou).

        coords (B, N, 2) in model-input (x, y) pixels, labels (B, N) with 1 positive / 0 negative,
        boxes (B, 4) x0 y0 x1 y1, mask_logits (B, 1, 256, 256). Returns (B, C, 256, 256), (B, C).
        On the fast path a single box prompt's logits are computed only around the box
        (``FastMaskDecoder.region``) and are -20 beyond.
        """
        import torch

        with self.priority.decoding(), _intra_op_threads(self.decode_threads):
            if self._fast_decoder is not None:
                return self._fast_decoder(features, coords, labels, boxes, mask_logits, multimask)
            pe = self.module.prompt_encoder
            with torch.inference_mode():
                points = (coords, labels) if coords is not None else None
                sparse, dense = pe(points=points, boxes=boxes, masks=mask_logits)
                return self.module.mask_decoder(
                    image_embeddings=features,
                    image_pe=self.dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                )

    def decode_candidates(self, features, boxes):
        """Candidate boxes (K, 4) on one slice -> (low-res logits (K, 1, 256, 256), iou (K, 1)), for
        choosing among them, in one batched call: on the CPU fast path over the image tokens around
        the boxes only (``FastMaskDecoder.box_candidates``, an approximation), otherwise over all."""
        if self._fast_decoder is None or self.device.type != "cpu" or features.shape[0] != 1:
            return self.decode_raw(features, boxes=boxes)
        with self.priority.decoding(), _intra_op_threads(self.decode_threads):
            return self._fast_decoder.box_candidates(features, boxes)

    def upscale(self, low_res, geom: SliceGeometry):
        """Low-res logits (B, C, 256, 256) -> logits at the slice's original size (B, C, H, W)."""
        import torch.nn.functional as F

        with _intra_op_threads(self.decode_threads):
            if self.spec.family == "sam":
                return self.module.postprocess_masks(low_res, geom.resized, geom.original)
            lr = low_res.shape[-1]
            h = max(1, round(geom.resized[0] * lr / self.input_size))
            w = max(1, round(geom.resized[1] * lr / self.input_size))
            return F.interpolate(low_res[..., :h, :w], size=geom.original, mode="bilinear", align_corners=False)
