"""An encoded slice, and where an original slice lies inside the square model input."""
from __future__ import annotations

from dataclasses import dataclass


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
