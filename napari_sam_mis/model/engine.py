"""SamEngine: one loaded model with its family's preprocessing, the image encoder and the prompt decoder.

The backends and devices are in backend.py, the family-specific steps in families.py, the CPU
fast paths in kernels/.
"""
from __future__ import annotations

import threading
from contextlib import nullcontext

import numpy as np

from napari_sam_mis.model.backend import choose_backend, resolve_device
from napari_sam_mis.model.build import build_model
from napari_sam_mis.model.families import to_uint8_rgb
from napari_sam_mis.model.kernels.allocator import keep_freed_memory
from napari_sam_mis.model.registry import DEFAULT_MODEL, ModelSpec, get_spec
from napari_sam_mis.model.slices import SliceEmbedding, SliceGeometry
from napari_sam_mis.model.threads import DecodePriority, default_decode_threads, intra_op_threads
from napari_sam_mis.model.weights import file_sha256

# CUDA: slices per encoder call; LiteMedSAM needs about 0.25 GB of activations per slice in fp16.
CUDA_BATCH = 16


class SamEngine:
    """Model + preprocessing + batched encode + decoder call. Thread-safe for inference."""

    def __init__(self, module, spec: ModelSpec, device, weights_path, backend: str | None = None):
        self.module = module.to(device)
        self.spec = spec
        self.device = device
        self.weights_path = weights_path
        self._weights_sha256 = None
        self.backend, self.backend_reason = choose_backend(backend, device)
        self.priority = DecodePriority()
        self.decode_threads = default_decode_threads() if device.type == "cpu" else None
        self._fast_encoder = None
        self._fast_decoder = None
        self._dense_positional_encoding = None
        self._proposer = None  # built on first use (``click_proposer``)
        self._proposer_lock = threading.Lock()
        self.proposes_clicks = spec.click_proposer is not None
        if self.backend != "eager":
            self._build_fast_paths()
            if device.type == "cpu":
                keep_freed_memory()

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, checkpoint=None, device: str = "auto", backend: str | None = None) -> "SamEngine":
        spec = get_spec(name)
        dev = resolve_device(device)
        module, path = build_model(name, checkpoint)
        engine = cls(module, spec, dev, path, backend)
        if checkpoint is not None:  # other encoder weights: the proposer's masks would not fit its embeddings
            engine.proposes_clicks = False
        return engine

    @property
    def click_proposer(self) -> "SamEngine | None":
        """The spec's click-trained model on the same image encoder, for the click path's proposal
        (None when there is none, or when this engine runs a checkpoint of its own)."""
        if not self.proposes_clicks:
            return None
        with self._proposer_lock:
            if self._proposer is None:
                self._proposer = SamEngine.load(self.spec.click_proposer, None, str(self.device), self.backend)
                self._proposer.priority = self.priority  # its decodes pause this engine's encoder too
                self._proposer.decode_threads = self.decode_threads
            return self._proposer

    def _build_fast_paths(self) -> None:
        from napari_sam_mis.model.kernels.mask_decoder import FastMaskDecoder

        encoder = self.module.image_encoder
        if self.spec.family.has_tinyvit and hasattr(encoder, "patch_embed") and hasattr(encoder, "neck"):
            from napari_sam_mis.model.kernels.tinyvit import FastTinyViT

            self._fast_encoder = FastTinyViT(encoder).eval()
        self._fast_decoder = FastMaskDecoder(self.module.prompt_encoder, self.module.mask_decoder)

    @property
    def encoder_path(self) -> str:
        """What runs the image encoder: 'eager', 'fast' or 'fast+bf16' etc."""
        if self.backend == "eager":
            return "eager"
        base = "fast" if self._fast_encoder is not None else "eager"
        return base if self.backend == "fast" else f"{base}+{self.backend}"

    def dense_positional_encoding(self):
        """The decoder's dense positional encoding (1, C, 64, 64): the same for every prompt and
        slice, so it is computed once per engine."""
        if self._dense_positional_encoding is None:
            import torch

            with torch.inference_mode():
                self._dense_positional_encoding = self.module.prompt_encoder.get_dense_pe()
        return self._dense_positional_encoding

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
        return self.spec.family.geometry(shape, self.input_size)

    def preprocess(self, display: np.ndarray):
        """One slice of 0..255 display values -> (float32 array 3 x S x S, SliceGeometry)."""
        img = to_uint8_rgb(display)
        geom = self.geometry(img.shape[:2])
        return self.spec.family.preprocess(img, geom, self.module), geom

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
    def decode(self, features, coords=None, labels=None, boxes=None, mask_logits=None, multimask=False):
        """Model-frame prompts (torch tensors on the device, batch B) -> (low-res logits, iou).

        coords (B, N, 2) in model-input (x, y) pixels, labels (B, N) with 1 positive / 0 negative,
        boxes (B, 4) x0 y0 x1 y1, mask_logits (B, 1, 256, 256). Returns (B, C, 256, 256), (B, C).
        On the fast path a single box prompt's logits are computed only around the box
        (``FastMaskDecoder.region``) and are -20 beyond.
        """
        import torch

        with self.priority.decoding(), intra_op_threads(self.decode_threads):
            if self._fast_decoder is not None:
                return self._fast_decoder(features, coords, labels, boxes, mask_logits, multimask)
            prompt_encoder = self.module.prompt_encoder
            with torch.inference_mode():
                points = (coords, labels) if coords is not None else None
                sparse, dense = prompt_encoder(points=points, boxes=boxes, masks=mask_logits)
                return self.module.mask_decoder(
                    image_embeddings=features,
                    image_pe=self.dense_positional_encoding(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                )

    def decode_candidates(self, features, boxes):
        """Candidate boxes (K, 4) on one slice -> (low-res logits (K, 1, 256, 256), iou (K, 1)), for
        choosing among them, in one batched call: on the CPU fast path over the image tokens around
        the boxes only (``FastMaskDecoder.box_candidates``, an approximation), otherwise over all."""
        if self._fast_decoder is None or self.device.type != "cpu" or features.shape[0] != 1:
            return self.decode(features, boxes=boxes)
        with self.priority.decoding(), intra_op_threads(self.decode_threads):
            return self._fast_decoder.box_candidates(features, boxes)

    def upscale(self, low_res, geom: SliceGeometry):
        """Low-res logits (B, C, 256, 256) -> logits at the slice's original size (B, C, H, W)."""
        with intra_op_threads(self.decode_threads):
            return self.spec.family.upscale(low_res, geom, self.module)
