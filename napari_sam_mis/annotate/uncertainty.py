"""Where a box's mask is unsure, and where the next click should go (after UR-SAM: Zhang et al.,
"Uncertainty-aware SAM", an ensemble of perturbed prompts whose spread marks the doubtful pixels).

The box and ENSEMBLE - 1 jittered copies (each corner moved by a normal step of JITTER of the
box's side, a fixed seed) are decoded in one batched decoder call. A pixel's probability is the
mean of the members' probabilities (sigmoid of their logits; or, with ``soft`` off, the share of
their masks that hold it); its uncertainty is 1 - |2p - 1| (0: all sure and agreed, 1: p = 0.5). The next click goes to the middle (the farthest point from its border) of the
most uncertain region, positive where the ensemble's majority holds it, negative elsewhere; no
ground truth is involved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_sam_mis.annotate.geometry import inner_distance

ENSEMBLE = 8
JITTER = 0.04  # chosen on validation (docs/uncertainty.md)
SOFT = True  # members vote with their probabilities (chosen on validation: docs/uncertainty.md)
UNSURE = 0.5  # uncertainty at or above which a pixel belongs to an unsure region (a quarter of the ensemble)


@dataclass
class Uncertainty:
    probability: np.ndarray  # (H, W): the ensemble's mean probability of the pixel
    map: np.ndarray  # (H, W) in 0..1: 1 - |2p - 1|

    def next_click(self, min_pixels: int = 4) -> tuple[tuple[float, float], int] | None:
        """((row, col), sign) in the most uncertain region (largest total uncertainty), or None when
        the ensemble agrees everywhere; sign 1 (positive) where most members hold the point."""
        from scipy import ndimage

        regions, n = ndimage.label(self.map >= UNSURE)
        if n == 0:
            return None
        weight = ndimage.sum(self.map, regions, index=np.arange(1, n + 1))
        best = int(np.argmax(weight)) + 1
        region = regions == best
        if region.sum() < min_pixels:
            return None
        depth = inner_distance(region)
        r, c = np.unravel_index(int(np.argmax(depth)), region.shape)
        return (float(r), float(c)), int(self.probability[r, c] >= 0.5)


def ensemble_boxes(box, shape, n: int = ENSEMBLE, jitter: float | None = None, seed: int = 0) -> list[tuple]:
    """The box and n - 1 jittered copies inside a slice of ``shape`` (rows, cols)."""
    jitter = JITTER if jitter is None else jitter
    r0, c0, r1, c1 = (float(v) for v in box)
    h, w = max(r1 - r0, 1.0), max(c1 - c0, 1.0)
    rng = np.random.default_rng(seed)
    out = [(r0, c0, r1, c1)]
    for step in rng.normal(0.0, jitter, size=(n - 1, 4)):
        a0, b0 = np.clip([r0 + step[0] * h, c0 + step[1] * w], 0, [shape[0] - 1, shape[1] - 1])
        a1, b1 = np.clip([r1 + step[2] * h, c1 + step[3] * w], 0, [shape[0] - 1, shape[1] - 1])
        out.append((min(a0, a1), min(b0, b1), max(a0, a1), max(b0, b1)))
    return out


def box_uncertainty(engine, emb, box, shape, frame=None, n: int = ENSEMBLE, soft: bool | None = None) -> Uncertainty:
    """The ensemble's probability and uncertainty for ``box`` on one slice (one decoder call).
    ``soft``: a member's vote is its sigmoid probability, not its thresholded mask."""
    import torch

    from napari_sam_mis.annotate.prompts import Prompt, to_model_frame

    frame = frame or (lambda p: p)
    soft = SOFT if soft is None else soft
    boxes = np.stack([to_model_frame(frame(Prompt(box=b)), emb.geometry.scale)[2]
                      for b in ensemble_boxes(box, shape, n)])
    low_res, _ = engine.decode_candidates(emb.features, torch.from_numpy(boxes).to(engine.device))
    with torch.inference_mode():
        logits = engine.upscale(low_res, emb.geometry)[:, 0].float()
        votes = torch.sigmoid(logits) if soft else (logits > 0).float()
        probability = votes.mean(dim=0).cpu().numpy()
    return Uncertainty(probability, 1.0 - np.abs(2.0 * probability - 1.0))
