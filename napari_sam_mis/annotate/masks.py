"""Prompt + slice embedding -> full-resolution mask, the model's score and low-res logits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_sam_mis.annotate.prompts import Prompt, to_model_frame
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.slices import SliceEmbedding


@dataclass
class MaskResult:
    mask: np.ndarray  # (H, W) bool at the slice's original size
    score: float  # the decoder's predicted IoU of the chosen mask
    low_res_logits: np.ndarray  # (1, 256, 256) float32: feed back as Prompt.mask_logits


def mask_for_prompt(engine: SamEngine, emb: SliceEmbedding, prompt: Prompt, multimask: bool | None = None) -> MaskResult:
    """The mask of one prompt. A lone point is ambiguous: by default the decoder gives three masks and
    the one with the best predicted IoU is kept."""
    if prompt.is_empty and prompt.mask_logits is None:
        raise ValueError("empty prompt: give at least one point, a box or a mask")
    import torch

    if multimask is None:
        multimask = prompt.is_single_point
    coords, labels, box = to_model_frame(prompt, emb.geometry.scale)
    dev = engine.device
    t_coords = torch.from_numpy(coords)[None].to(dev) if coords is not None else None
    t_labels = torch.from_numpy(labels)[None].to(dev) if labels is not None else None
    t_box = torch.from_numpy(box)[None].to(dev) if box is not None else None
    t_mask = None
    if prompt.mask_logits is not None:
        t_mask = torch.as_tensor(np.asarray(prompt.mask_logits, np.float32)).reshape(1, 1, *prompt.mask_logits.shape[-2:]).to(dev)
    low_res, iou = engine.decode(emb.features, t_coords, t_labels, t_box, t_mask, multimask)
    best = int(torch.argmax(iou[0]))
    chosen = low_res[:, best : best + 1]
    with torch.inference_mode():
        mask = engine.upscale(chosen, emb.geometry)[0, 0] > 0
    return MaskResult(mask.cpu().numpy(), float(iou[0, best]), chosen[0].float().cpu().numpy())


def masks_for_boxes(engine: SamEngine, emb: SliceEmbedding, boxes, frame=None) -> list[MaskResult]:
    """Decode several boxes (row0, col0, row1, col1) on one slice in one decoder call
    (``SamEngine.decode_candidates``). ``frame``: an optional Prompt -> Prompt map applied to each
    box before the model frame (a resampled plane's)."""
    import torch

    if len(boxes) == 0:
        return []
    frame = frame or (lambda p: p)
    model_boxes = np.stack([to_model_frame(frame(Prompt(box=b)), emb.geometry.scale)[2] for b in boxes])
    low_res, iou = engine.decode_candidates(emb.features, torch.from_numpy(model_boxes).to(engine.device))
    with torch.inference_mode():
        masks = (engine.upscale(low_res, emb.geometry)[:, 0] > 0).cpu().numpy()
    logits = low_res.float().cpu().numpy()
    scores = iou[:, 0].float().cpu().numpy()
    return [MaskResult(masks[i], float(scores[i]), logits[i]) for i in range(len(boxes))]


def low_res_pixels(geometry, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each row and column of the (size, size) low-res logits: the slice pixel it lies over."""
    sy, sx = geometry.scale[0] * size / geometry.input_size, geometry.scale[1] * size / geometry.input_size
    rows = np.clip(((np.arange(size) + 0.5) / sy).astype(int), 0, geometry.original[0] - 1)
    cols = np.clip(((np.arange(size) + 0.5) / sx).astype(int), 0, geometry.original[1] - 1)
    return rows, cols


def logits_for_mask(mask: np.ndarray, geometry, size: int = 256) -> np.ndarray:
    """Low-res logits (1, size, size) that stand for ``mask`` when fed back as mask prompt (+/-4)."""
    rows, cols = low_res_pixels(geometry, size)
    return np.where(np.asarray(mask, bool)[np.ix_(rows, cols)], 4.0, -4.0).astype(np.float32)[None]
