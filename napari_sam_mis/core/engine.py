"""SamEngine: one loaded model with its own preprocessing, image encoder and prompt decoder.

All three families share SAM's prompt encoder and mask decoder; they differ in how a slice
becomes model input:
- litemedsam: 3 channels, longest side to 256 (cv2 area), min-max to [0, 1], pad bottom/right
  (bowang-lab/MedSAM, branch LiteMedSAM, CVPR24_LiteMedSAM_infer.py).
- sam: segment_anything's ResizeLongestSide to 1024 and the model's pixel mean/std + padding.
- medsam: resize to 1024x1024 (bicubic, anti-aliased), min-max to [0, 1] (MedSAM_Inference.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import DEFAULT_MODEL, ModelSpec, build_model, file_sha256, get_spec, resolve_device


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


class SamEngine:
    """Model + preprocessing + batched encode + decoder call. Thread-safe for inference."""

    def __init__(self, module, spec: ModelSpec, device, weights_path):
        self.module = module.to(device)
        self.spec = spec
        self.device = device
        self.weights_path = weights_path
        self._weights_sha256 = None

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, checkpoint=None, device: str = "auto") -> "SamEngine":
        spec = get_spec(name)
        dev = resolve_device(device)
        module, path = build_model(name, checkpoint)
        return cls(module, spec, dev, path)

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
    def encode(self, batch: np.ndarray):
        """Preprocessed images (B, 3, S, S) -> image features (B, 256, 64, 64) on the device."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        with torch.inference_mode():
            return self.module.image_encoder(x)

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
        """
        import torch

        pe = self.module.prompt_encoder
        with torch.inference_mode():
            points = (coords, labels) if coords is not None else None
            sparse, dense = pe(points=points, boxes=boxes, masks=mask_logits)
            return self.module.mask_decoder(
                image_embeddings=features,
                image_pe=pe.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )

    def upscale(self, low_res, geom: SliceGeometry):
        """Low-res logits (B, C, 256, 256) -> logits at the slice's original size (B, C, H, W)."""
        import torch.nn.functional as F

        if self.spec.family == "sam":
            return self.module.postprocess_masks(low_res, geom.resized, geom.original)
        lr = low_res.shape[-1]
        h = max(1, round(geom.resized[0] * lr / self.input_size))
        w = max(1, round(geom.resized[1] * lr / self.input_size))
        return F.interpolate(low_res[..., :h, :w], size=geom.original, mode="bilinear", align_corners=False)
