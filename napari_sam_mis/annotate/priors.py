"""SAM prior maps of a slice, after SAMAug (Zhang et al., "Input Augmentation with SAM: Boosting
Medical Image Segmentation with Segmentation Foundation Model", 2023): the model's masks for a
grid of prompts give a *segmentation prior* and a *boundary prior*, extra input channels for an
ordinary U-Net (``export-dataset --priors``).

Recipe (``PriorRecipe``): a box-trained model (LiteMedSAM) gets square-ish boxes of several
sizes (shares of the slice's height and width) centred on a regular grid, neighbouring boxes
decoded in one call (``SamEngine.decode_candidates``: on the CPU fast path over the image tokens
around the group only, as for click candidates); other models get a grid of single positive points with three masks each. A mask is
kept when the decoder's predicted IoU, its stability (SAM's: area at logit > +1 over area at
logit > -1) and its edge contrast (the median display value on a RING_PX ring just inside the
mask against one just outside) reach their minimums: a box inside a homogeneous organ gives a
blob of the box's size whose edge has no contrast. Kept masks that overlap an earlier
(better-scored) one by DEDUP_IOU are dropped, so one structure leaves one edge. Segmentation prior: per pixel, the
largest probability (sigmoid of the logit) among the kept masks; boundary prior: 1 on a band of
BAND_PX pixels either side of a kept mask's edge. The minimums were chosen on six slices of the
TotalSegmentator example CT (edge recall and precision against its organ map, docs/io.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from napari_sam_mis.annotate.prompts import Prompt, to_model_frame

BOX_SIZES = (1 / 8, 1 / 4, 1 / 2, 3 / 4)  # box sides as shares of the slice's rows and columns
GRID_STEP = 0.5  # box centres lie this share of the box side apart
GROUP = 3  # boxes decoded together: GROUP x GROUP neighbouring centres of one size
POINTS_PER_SIDE = 12  # models that are not box-trained: a 12 x 12 grid of points
POINT_BATCH = 8
IOU_MIN = 0.7
STABILITY_MIN = 0.6
STABILITY_OFFSET = 1.0
CONTRAST_MIN = 10.0  # display levels (0..255): 16 HU in the soft-tissue window
RING_PX = 2
MIN_PIXELS = 16
DEDUP_IOU = 0.8
BAND_PX = 1


@dataclass(frozen=True)
class PriorRecipe:
    """Everything the prior maps depend on besides the embeddings (part of their cache key)."""

    box_sizes: tuple = BOX_SIZES
    grid_step: float = GRID_STEP
    points_per_side: int = POINTS_PER_SIDE
    iou_min: float = IOU_MIN
    stability_min: float = STABILITY_MIN
    contrast_min: float = CONTRAST_MIN
    min_pixels: int = MIN_PIXELS
    dedup_iou: float = DEDUP_IOU
    band_px: int = BAND_PX

    def key(self) -> dict:
        return {"samaug": 1, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}


def box_groups(shape, recipe: PriorRecipe) -> list[list[tuple]]:
    """The recipe's boxes (row0, col0, row1, col1) on a slice of ``shape``, in groups of
    neighbouring boxes of one size."""
    rows, cols = shape[:2]
    groups = []
    for size in recipe.box_sizes:
        n = max(int(np.ceil((1 - size) / (size * recipe.grid_step) - 1e-9)) + 1, 1)
        centres = np.linspace(size / 2, 1 - size / 2, n)
        for i in range(0, n, GROUP):
            for j in range(0, n, GROUP):
                groups.append([(rows * (a - size / 2), cols * (b - size / 2), rows * (a + size / 2) - 1,
                                cols * (b + size / 2) - 1) for a in centres[i:i + GROUP] for b in centres[j:j + GROUP]])
    return groups


def _candidates(session, z: int, recipe: PriorRecipe):
    """Yield (logits (K, H, W) torch float32 at the slice's size, predicted IoU (K,)) per decoder call."""
    import torch

    engine, emb = session.engine, session.embedding(z)
    frame = session.plane.resampled_prompt
    scale = emb.geometry.scale
    if engine.spec.box_trained:
        for group in box_groups(session.plane.shape, recipe):
            boxes = np.stack([to_model_frame(frame(Prompt(box=b)), scale)[2] for b in group])
            low_res, iou = engine.decode_candidates(emb.features, torch.from_numpy(boxes).to(engine.device))
            with torch.inference_mode():
                yield engine.upscale(low_res, emb.geometry)[:, 0].float().cpu(), iou[:, 0].float().cpu()
        return
    rows, cols = session.plane.shape
    n = recipe.points_per_side
    grid = [((a + 0.5) * rows / n, (b + 0.5) * cols / n) for a in range(n) for b in range(n)]
    for i in range(0, len(grid), POINT_BATCH):
        coords = np.stack([to_model_frame(frame(Prompt(points=[p], labels=[1])), scale)[0] for p in grid[i:i + POINT_BATCH]])
        labels = torch.ones(len(coords), 1, device=engine.device)
        low_res, iou = engine.decode(emb.features, torch.from_numpy(coords).to(engine.device), labels, multimask=True)
        with torch.inference_mode():
            logits = engine.upscale(low_res, emb.geometry).float().cpu()
        yield logits.flatten(0, 1), iou.flatten().float().cpu()


def kept_masks(session, z: int, recipe: PriorRecipe | None = None) -> list[tuple[float, np.ndarray]]:
    """(predicted IoU, probability map (H, W) float32) of the masks the recipe keeps on slice z,
    best first, duplicates dropped."""
    import torch

    recipe = recipe or PriorRecipe()
    display = np.asarray(session.display_slice(z), np.float32)
    display = display.mean(axis=-1) if display.ndim == 3 else display
    found = []
    for logits, iou in _candidates(session, z, recipe):
        inner = (logits > STABILITY_OFFSET).flatten(1).sum(1)
        outer = (logits > -STABILITY_OFFSET).flatten(1).sum(1).clamp(min=1)
        area = (logits > 0).flatten(1).sum(1)
        ok = (iou >= recipe.iou_min) & (inner / outer >= recipe.stability_min) & (area >= recipe.min_pixels)
        for k in torch.nonzero(ok)[:, 0].tolist():
            prob = torch.sigmoid(logits[k]).numpy()
            if edge_contrast(prob > 0.5, display) >= recipe.contrast_min:
                found.append((float(iou[k]), prob))
    found.sort(key=lambda item: -item[0])
    kept, masks = [], []
    for score, prob in found:
        mask = prob > 0.5
        if all((mask & m).sum() < recipe.dedup_iou * (mask | m).sum() for m in masks):
            kept.append((score, prob))
            masks.append(mask)
    return kept


def edge_contrast(mask: np.ndarray, display: np.ndarray, ring: int = RING_PX) -> float:
    """|median display value on a ring just inside ``mask`` - on a ring just outside| (0 when
    either ring is empty)."""
    from scipy import ndimage

    inside = mask & ~ndimage.binary_erosion(mask, iterations=ring, border_value=1)
    outside = ndimage.binary_dilation(mask, iterations=ring) & ~mask
    if not inside.any() or not outside.any():
        return 0.0
    return abs(float(np.median(display[inside])) - float(np.median(display[outside])))


def slice_priors(session, z: int, recipe: PriorRecipe | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(segmentation prior, boundary prior) of slice z: float32 maps of the slice's shape in [0, 1]."""
    from scipy import ndimage

    recipe = recipe or PriorRecipe()
    seg = np.zeros(session.plane.shape, np.float32)
    boundary = np.zeros_like(seg)
    for _, prob in kept_masks(session, z, recipe):
        np.maximum(seg, prob, out=seg)
        mask = prob > 0.5
        grown = ndimage.binary_dilation(mask, iterations=recipe.band_px)
        shrunk = ndimage.binary_erosion(mask, iterations=recipe.band_px, border_value=1)
        boundary[grown & ~shrunk] = 1.0
    return seg, boundary


def volume_priors(session, progress=None, recipe: PriorRecipe | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(segmentation prior, boundary prior) of every slice along the session's axis, float32 arrays
    of the volume's (z, y, x) shape, values rounded to float16 as the cache stores them (a
    cached export equals a fresh one). With a disk cache (``session.cache_path``) the slices are
    stored as they finish and read back on a later call. ``progress(done, total)`` after each slice."""
    recipe = recipe or PriorRecipe()
    store = None
    if session.cache_path is not None:
        from napari_sam_mis.embeddings.priors_store import PriorStore

        store = PriorStore(session.cache_path, session.signature(), recipe.key(), session.plane.shape)
    shape = session.volume.array.shape[:3]
    seg_vol, boundary_vol = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    step = max(session.batch_size, 1)
    for start in range(0, session.n_slices, step):
        chunk = range(start, min(start + step, session.n_slices))
        cached = {z: store.load(z) for z in chunk} if store is not None else {}
        session.embed([z for z in chunk if cached.get(z) is None])  # one batch (the encoder's on CUDA)
        for z in chunk:
            maps = cached.get(z)
            if maps is None:
                maps = slice_priors(session, z, recipe)
                if store is not None:
                    store.save(z, *maps)
            session.plane.take(seg_vol, z)[...] = np.asarray(maps[0], np.float16)
            session.plane.take(boundary_vol, z)[...] = np.asarray(maps[1], np.float16)
            if progress is not None:
                progress(z + 1, session.n_slices)
    return seg_vol, boundary_vol


def prior_channels(engine, cache_dir=None, progress=None, recipe: PriorRecipe | None = None):
    """``extra_channels`` for ``io.dataset.export_nnunet_dataset``: a volume -> its two prior maps
    (axial slices, the volume's default window), named for nnU-Net. ``engine``: a SamEngine or a
    function that loads one (called on the first volume, after the export's checks have passed).
    ``progress(case, done, total)`` after each slice, ``case`` counting the volumes from 1."""
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.io.dataset import ExtraChannel

    state = {"engine": engine, "case": 0}

    def channels(volume) -> list:
        if callable(state["engine"]):
            state["engine"] = state["engine"]()
        state["case"] += 1
        case = state["case"]
        session = AnnotationSession(volume, state["engine"], cache_dir=cache_dir)
        report = None if progress is None else (lambda done, total: progress(case, done, total))
        seg, boundary = volume_priors(session, report, recipe)
        return [ExtraChannel("sam_segmentation_prior", seg), ExtraChannel("sam_boundary_prior", boundary)]

    return channels
