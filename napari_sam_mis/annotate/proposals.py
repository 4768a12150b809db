"""Automatic proposals: the objects the model finds on a slice without a prompt from anyone.

1. Prompts the model understands, over the whole slice. For a box-trained model (LiteMedSAM):
   boxes around the intensity-similar regions grown from seeds on a grid (``region_hint``, as a
   click's candidate boxes) and boxes of a few sides centred on a regular grid (objects without
   a homogeneous inside), near-duplicate boxes dropped. Otherwise one positive point per grid
   node, with its three candidate masks.
2. They are decoded a few neighbours per decoder call (a small window of image tokens each).
3. A mask is kept when it is neither near-empty nor most of the slice (the body), and the
   decoder trusts it (predicted IoU); near-identical masks are merged.
4. Each (the best MAX_SECOND) is decoded again from its own box, a little widened, as the model
   was trained, unless its prompt was about that box already; it stays when the decoder trusts
   it (predicted IoU, and stability: the mask at logit > 1 against > -1).
5. De-duplication by mask IoU, best score (predicted IoU x stability) first.
Along a volume, a proposal overlapping one of the slice before by ``link_iou`` takes its id.
The defaults were chosen on the validation split (docs/proposals.md).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_sam_mis.annotate.geometry import mask_box, widened_box


@dataclass(frozen=True)
class ProposalSettings:
    seed_step: float = 0.04  # region seeds' grid step, a share of the slice's longer side
    hint_tolerances: tuple[float, ...] = (20.0, 10.0)  # display units around a seed's level
    min_region_share: float = 0.0005  # smaller regions give no box (and at least min_pixels)
    box_sides: tuple[float, ...] = (0.32, 0.64)  # grid boxes' side, a share of the longer side
    stride: float = 1.0  # grid step, a share of the box side
    point_step: float = 0.1  # a point-trained model's grid step, a share of the longer side
    distinct_box_iou: float = 0.7  # a box overlapping an earlier one more is not decoded
    min_pixels: int = 16  # smaller masks are noise
    max_share: float = 0.5  # larger masks (share of the slice) are the body or the background
    first_iou: float = 0.6  # predicted IoU a first mask needs to be decoded again
    min_iou: float = 0.7  # predicted IoU of the second decode
    min_stability: float = 0.8
    nms_iou: float = 0.5  # of two masks overlapping more, the lower score goes
    link_iou: float = 0.3  # overlap with a proposal of the slice before that carries its id


DEFAULTS = ProposalSettings()
GROUP = 4  # boxes per decoder call
DECODE_THREADS = 1  # the many small decoder calls ran far slower on two CPU threads (docs/proposals.md)
HINT_PAD = (0.05, 2.0)  # added around a region's box: share of its side, pixels (as a click's boxes)
REFINE_PAD = (0.05, 3.0)  # added around a mask's box for its second decode: share of its side, model pixels
REGION_SIDE = 256  # regions are grown on the slice brought down to this longer side
SAME_MASK_IOU = 0.8  # first masks overlapping more are one (merged before the second decode)
MAX_SECOND = 48  # first masks decoded again, at most (the best scores)
SAME_BOX_IOU = 0.8  # a mask decoded from about its own box is not decoded again


@dataclass
class Proposal:
    mask: np.ndarray  # (H, W) bool on the slice
    score: float  # predicted IoU x stability
    box: tuple[int, int, int, int]  # the mask's (row0, col0, row1, col1)


@dataclass
class Decoded:
    """K prompts decoded on one slice: masks (K, H, W) bool, predicted IoU, stability and their
    boxes (K, 4; 0 for points)."""

    masks: np.ndarray
    iou: np.ndarray
    stability: np.ndarray
    boxes: np.ndarray

    @property
    def score(self) -> np.ndarray:
        return self.iou * self.stability

    def take(self, index) -> Decoded:
        return Decoded(*(getattr(self, f)[index] for f in FIELDS))

    @classmethod
    def join(cls, parts: list[Decoded], shape) -> Decoded:
        if not parts:
            return cls(np.zeros((0, *shape), bool), np.zeros(0), np.zeros(0), np.zeros((0, 4)))
        return cls(*(np.concatenate([getattr(d, f) for d in parts]) for f in FIELDS))


FIELDS = ("masks", "iou", "stability", "boxes")


# -- prompts --------------------------------------------------------------------------------
def _centres(n: int, step: float) -> np.ndarray:
    count = max(1, int(np.ceil(n / step)))
    return (n - 1) / 2 + (np.arange(count) - (count - 1) / 2) * step


def grid_boxes(shape: tuple[int, int], side: float, stride: float) -> np.ndarray:
    """Boxes (N, 4) of ``side`` pixels centred on a grid of step ``stride`` * side, clipped."""
    r, c = np.meshgrid(_centres(shape[0], side * stride), _centres(shape[1], side * stride), indexing="ij")
    boxes = np.stack([r - side / 2, c - side / 2, r + side / 2, c + side / 2], axis=-1).reshape(-1, 4)
    return np.clip(boxes, 0, [shape[0] - 1, shape[1] - 1, shape[0] - 1, shape[1] - 1])


def _padded(box, pad, shape, scale=(1.0, 1.0)):
    share, px = pad
    r0, c0, r1, c1 = box
    return widened_box(box, (share * (r1 - r0 + 1) + px / scale[0], share * (c1 - c0 + 1) + px / scale[1]), shape)


def region_boxes(display: np.ndarray, settings: ProposalSettings = DEFAULTS) -> np.ndarray:
    """Boxes (N, 4) around the regions ``region_hint`` grows from seeds on a grid, at each tolerance
    (on the slice brought down to REGION_SIDE pixels, about what the model sees). A seed is skipped
    when a region of that tolerance holds it and was grown from a level within half the tolerance
    of its own (it would grow the same region); a nested object of another level still gets one."""
    from scipy import ndimage

    from napari_sam_mis.annotate.region_hint import SMOOTH_SIGMA_PX, RegionHints

    display = np.asarray(display.mean(axis=-1) if display.ndim == 3 else display, np.float32)
    shape = display.shape
    f = min(1.0, REGION_SIDE / max(shape))
    if f < 1:
        display = ndimage.zoom(display, f, order=1)
    hints, (h, w) = RegionHints(display), display.shape
    level = ndimage.median_filter(ndimage.gaussian_filter(display, SMOOTH_SIGMA_PX), size=5, mode="nearest")
    step = settings.seed_step * max(h, w)
    seeds = [(int(round(r)), int(round(c))) for r in _centres(h, step) for c in _centres(w, step)]
    smallest = max(settings.min_pixels * f * f, settings.min_region_share * h * w)
    boxes = []
    for tolerance in settings.hint_tolerances:
        grown_from = np.full((h, w), np.nan, np.float32)  # the seed level of the region holding a pixel
        for seed in seeds:
            if abs(level[seed] - grown_from[seed]) <= tolerance / 2:
                continue
            region = hints(seed, tolerance)
            grown_from[region] = level[seed]
            if smallest <= region.sum() <= settings.max_share * h * w:
                r0, c0, r1, c1 = (v / f for v in mask_box(region))
                boxes.append(_padded((r0, c0, r1 + 1 / f - 1, c1 + 1 / f - 1), HINT_PAD, shape))
    return np.array(boxes, float).reshape(-1, 4)


def box_iou(boxes: np.ndarray, box) -> np.ndarray:
    """IoU of each of ``boxes`` (N, 4) with ``box`` (pixels counted inclusively)."""
    dr = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]) + 1, 0, None)
    dc = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]) + 1, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    inter = dr * dc
    return inter / (areas + (box[2] - box[0] + 1) * (box[3] - box[1] + 1) - inter)


def distinct_boxes(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """``boxes`` without those overlapping an earlier one by more than ``threshold`` (box IoU)."""
    kept: list[int] = []
    for i, b in enumerate(boxes):
        if not kept or box_iou(boxes[kept], b).max() <= threshold:
            kept.append(i)
    return boxes[kept]


def candidate_boxes(session, z: int, settings: ProposalSettings = DEFAULTS) -> np.ndarray:
    """The region boxes and the grid boxes of slice z, near-duplicates dropped."""
    shape = session.plane.shape
    grid = [grid_boxes(shape, side * max(shape), settings.stride) for side in settings.box_sides]
    return distinct_boxes(np.concatenate([region_boxes(session.display_slice(z), settings), *grid]),
                          settings.distinct_box_iou)


def neighbour_groups(boxes: np.ndarray, size: int = GROUP) -> list[np.ndarray]:
    """Indices of ``boxes`` in groups of ``size``: each box with the nearest others of about its
    side (within a factor 2), so that each decoder call's window of image tokens stays small."""
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1
    centres = np.stack([boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], axis=1) / 2
    left = list(np.argsort(sides))
    groups = []
    while left:
        first, rest = left[0], np.array(left[1:], int)
        near = rest[sides[rest] <= 2 * sides[first]]
        near = near[np.argsort(np.abs(centres[near] - centres[first]).max(axis=1), kind="stable")][: size - 1]
        group = {first, *near.tolist()}
        groups.append(np.array([first, *near.tolist()]))
        left = [i for i in left if i not in group]
    return groups


# -- decoding -------------------------------------------------------------------------------
def _decoded(engine, emb, low_res, iou) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-res logits -> masks at the slice's size, predicted IoU and stability."""
    import torch

    with torch.inference_mode():
        logits = engine.upscale(low_res, emb.geometry)[:, 0].float()
        high, low = (logits > 1).flatten(1).sum(1), (logits > -1).flatten(1).sum(1)
        stability = high / low.clamp(min=1)
        return (logits > 0).cpu().numpy(), iou.float().cpu().numpy().reshape(-1), stability.cpu().numpy()


def decode_boxes(session, emb, boxes: np.ndarray) -> Decoded:
    """Boxes (K, 4) on one slice, neighbours decoded together (``SamEngine.decode_candidates``)."""
    import torch

    from napari_sam_mis.annotate.prompts import Prompt, to_model_frame

    engine, parts = session.engine, []
    if len(boxes) == 0:
        return Decoded.join([], session.plane.shape)
    for idx in neighbour_groups(boxes):
        group = boxes[idx]
        model = np.stack([to_model_frame(session.plane.resampled_prompt(Prompt(box=tuple(b))), emb.geometry.scale)[2]
                          for b in group])
        low_res, iou = engine.decode_candidates(emb.features, torch.from_numpy(model).to(engine.device))
        masks, iou, stability = _decoded(engine, emb, low_res, iou)
        parts.append((idx, Decoded(masks, iou, stability, group)))
    order = np.argsort(np.concatenate([idx for idx, _ in parts]), kind="stable")
    return Decoded.join([d for _, d in parts], session.plane.shape).take(order)


def decode_points(session, emb, settings: ProposalSettings = DEFAULTS, chunk: int = 16) -> Decoded:
    """For a model that understands points: a positive point per grid node, three masks each."""
    import torch

    from napari_sam_mis.annotate.prompts import Prompt, to_model_frame

    engine, shape = session.engine, session.plane.shape
    step = settings.point_step * max(shape)
    rows, cols = np.meshgrid(_centres(shape[0], step), _centres(shape[1], step), indexing="ij")
    points = np.stack([rows.ravel(), cols.ravel()], axis=1)
    parts = []
    for i in range(0, len(points), chunk):
        coords = np.stack([to_model_frame(session.plane.resampled_prompt(Prompt(points=[tuple(p)], labels=[1])),
                                          emb.geometry.scale)[0] for p in points[i : i + chunk]])
        t_coords = torch.from_numpy(coords).to(engine.device)
        low_res, iou = engine.decode(emb.features, t_coords, torch.ones(t_coords.shape[:2], device=engine.device),
                                     multimask=True)
        masks, iou, stability = _decoded(engine, emb, low_res.flatten(0, 1)[:, None], iou.flatten())
        parts.append(Decoded(masks, iou, stability, np.zeros((len(masks), 4))))
    return Decoded.join(parts, shape)


def first_masks(session, z: int, settings: ProposalSettings = DEFAULTS) -> Decoded:
    """Step 1-2: the slice's prompts decoded (boxes for a box-trained model, else points)."""
    emb = session.embedding(z)
    if session.engine.spec.box_trained:
        return decode_boxes(session, emb, candidate_boxes(session, z, settings))
    return decode_points(session, emb, settings)


# -- selection ------------------------------------------------------------------------------
def mask_ious(masks: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """(K, L) IoU of each of ``masks`` (K, H, W) with each of ``others`` (default: themselves)."""
    a = masks.reshape(len(masks), -1).astype(np.float32)
    b = a if others is None else others.reshape(len(others), -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def non_max_suppression(masks: np.ndarray, order, threshold: float) -> list[int]:
    """Of ``order`` (indices into ``masks``, best first), those no better one overlaps by more than
    ``threshold`` IoU. Each pair is compared within the intersection of the masks' boxes only."""
    kept: list[tuple[int, tuple, int]] = []  # (index, box, area)
    for i in np.asarray(order, int):
        box, area = mask_box(masks[i]), int(masks[i].sum())
        if box is None:
            continue
        for j, other, other_area in kept:
            r0, c0 = max(box[0], other[0]), max(box[1], other[1])
            r1, c1 = min(box[2], other[2]), min(box[3], other[3])
            if r0 > r1 or c0 > c1:
                continue
            inter = int(np.count_nonzero(masks[i, r0 : r1 + 1, c0 : c1 + 1] & masks[j, r0 : r1 + 1, c0 : c1 + 1]))
            if inter > threshold * (area + other_area - inter):
                break
        else:
            kept.append((int(i), box, area))
    return [i for i, _, _ in kept]


def _sized(d: Decoded, settings: ProposalSettings) -> np.ndarray:
    area = d.masks.sum(axis=(1, 2))
    return (area >= settings.min_pixels) & (area <= settings.max_share * np.prod(d.masks.shape[1:]))


def second_masks(session, z: int, first: Decoded, settings: ProposalSettings = DEFAULTS) -> Decoded:
    """Steps 3-4: the plausible first masks of slice z (merged when near-identical, at most
    MAX_SECOND, best first), each decoded again from its own box a little widened, unless it was
    decoded from about that box already (box IoU >= SAME_BOX_IOU)."""
    ok = np.flatnonzero(_sized(first, settings) & (first.iou >= settings.first_iou))
    ok = non_max_suppression(first.masks, ok[np.argsort(-first.score[ok], kind="stable")], SAME_MASK_IOU)[:MAX_SECOND]
    emb, shape = session.embedding(z), session.plane.shape
    own = np.array([_padded(mask_box(first.masks[i]), REFINE_PAD, shape, emb.geometry.scale) for i in ok]).reshape(-1, 4)
    same = np.array([box_iou(first.boxes[i : i + 1], b)[0] >= SAME_BOX_IOU for i, b in zip(ok, own)], bool)
    again = decode_boxes(session, emb, own[~same])
    return Decoded.join([first.take(np.asarray(ok, int)[same]), again], shape)


def chosen(second: Decoded, settings: ProposalSettings = DEFAULTS) -> list[Proposal]:
    """Step 5: the second masks the decoder trusts, de-duplicated, best first."""
    good = np.flatnonzero(_sized(second, settings) & (second.iou >= settings.min_iou)
                          & (second.stability >= settings.min_stability))
    kept = non_max_suppression(second.masks, good[np.argsort(-second.score[good], kind="stable")], settings.nms_iou)
    return [Proposal(second.masks[i], float(second.score[i]), mask_box(second.masks[i])) for i in kept]


def propose_slice(session, z: int, settings: ProposalSettings = DEFAULTS) -> list[Proposal]:
    """The proposals of slice z along the session's axis, best score first."""
    from napari_sam_mis.model.threads import intra_op_threads

    session.embedding(z)  # computed with every thread, when it still has to be
    with intra_op_threads(DECODE_THREADS):
        return chosen(second_masks(session, z, first_masks(session, z, settings), settings), settings)


# -- volume ---------------------------------------------------------------------------------
def link(previous: list[tuple[int, Proposal]], current: list[Proposal], next_id: int,
         threshold: float) -> tuple[list[tuple[int, Proposal]], int]:
    """(id, proposal) for ``current``: the id of the previous slice's proposal it overlaps by IoU >=
    ``threshold`` (best pairs first, each id once), else a new id from ``next_id``; and the next
    free id."""
    ids = [0] * len(current)
    if previous and current:
        ious = mask_ious(np.stack([p.mask for p in current]), np.stack([p.mask for _, p in previous]))
        taken = set()
        for flat in np.argsort(-ious, axis=None, kind="stable"):
            i, j = np.unravel_index(flat, ious.shape)
            if ious[i, j] < threshold:
                break
            if ids[i] == 0 and j not in taken:
                ids[i] = previous[j][0]
                taken.add(j)
    for i in range(len(current)):
        if ids[i] == 0:
            ids[i], next_id = next_id, next_id + 1
    return list(zip(ids, current)), next_id


def paint(plane: np.ndarray, linked: list[tuple[int, Proposal]]) -> None:
    """Write each proposal's id into ``plane`` (H, W); the best score claims a pixel first."""
    for pid, p in sorted(linked, key=lambda item: -item[1].score):
        plane[p.mask & (plane == 0)] = pid


def propose_volume(session, slices=None, progress: Callable[[int, int], None] | None = None,
                   settings: ProposalSettings = DEFAULTS) -> np.ndarray:
    """Proposal ids (int32, on the volume's (z, y, x) grid) of ``slices`` along the session's axis
    (default: all), linked across neighbouring slices; 0 elsewhere. ``progress(done, total)``."""
    out = np.zeros(session.volume.array.shape[:3], np.int32)
    slices = sorted(set(range(session.n_slices) if slices is None else slices))
    previous: list[tuple[int, Proposal]] = []
    next_id = 1
    for done, z in enumerate(slices, 1):
        if done > 1 and z != slices[done - 2] + 1:
            previous = []  # not neighbours: nothing to link to
        previous, next_id = link(previous, propose_slice(session, z, settings), next_id, settings.link_iou)
        paint(out[(slice(None),) * session.axis + (z,)], previous)
        if progress:
            progress(done, len(slices))
    return out
