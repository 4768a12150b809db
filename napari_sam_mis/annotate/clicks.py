"""Clicks for box-trained models (LiteMedSAM, MedSAM): clicks -> candidate boxes -> the best mask.

A box-trained decoder ignores a lone point (Dice ~0 on the spleen), so clicks are turned into
box prompts the model understands:

1. Candidates. Without a previous mask: two boxes around an image-driven region hint (the
   intensity-similar connected region of the display slice around the first positive click, at
   two tolerances) and a context square of fixed physical size centred on that click. With a
   previous mask (its low-res logits fed back): that mask's box, widened to take in the positive
   clicks outside it (tightly and with the click's region hint), or cut on each side to put a
   negative click inside it outside. Every box is then made to hold all positive clicks and,
   where it can, to leave out the negative ones.
2. Decoding (``masks.masks_for_boxes``): a first click keeps its first candidate alone when it is
   ``confident``; candidates spanning a large part of the slice are decoded the first alone and
   the others only when needed, small ones all in one call. When the first click's first
   candidate is not confident, the click-trained proposer's mask for the click joins them
   (``SamEngine.click_proposer``). A follow-up click decodes all its candidates in one call.
3. Selection: predicted IoU + share of positive clicks inside - share of negative clicks inside
   + agreement with the other candidates (mean mask IoU) + half the IoU with the proposer's mask
   - a penalty when the mask runs along its box border (the box cut the object).
4. Clicks have the last word: a negative click still inside the mask removes the part of the
   mask nearer to it than to any positive click; a positive click still outside adds its local
   region hint. A correction keeps its promises (``keep_promises``): a negative click only
   removes, a positive one only adds, near itself.
5. A first click's mask that leaked out of the clicked object (the click near its edge,
   ``clicked_near_edge``; hardly overlapping the proposer's mask and more than twice its size,
   ``outgrows``) gives way to the proposer's mask.

Clicks on a box: the box is decoded as drawn and the clicks edit its mask (``_box_and_clicks``);
what positive clicks inside the box add stays inside it.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import inner_distance, iou, mask_box
from napari_sam_mis.annotate.masks import MaskResult, low_res_pixels, mask_for_prompt, masks_for_boxes
from napari_sam_mis.annotate.prompts import NEGATIVE, POSITIVE, Prompt, normalized_box
from napari_sam_mis.annotate.region_hint import RegionHints
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.slices import SliceEmbedding

HINTS = ((20.0, 1.1), (10.0, 1.3))  # (intensity tolerance in display units, box scale factor)
CONTEXT_SQUARES_MM = (60.0,)  # side of the context box centred on the first click
MAX_CANDIDATES = 3  # boxes decoded per click (docs/clicks.md)
ONE_CALL_SHARE = 1 / 16  # a first click's candidates spanning at most this share of the slice are
# decoded in one call (cheap: the CPU decodes them over a window of image tokens); larger ones
# the first alone, and the others only when it is not confident
BOX_PAD_PX = 2.0  # added on every side of a candidate box
CLICK_MARGIN_PX = 4.0  # how far a box reaches past a positive click / stops before a negative one
BORDER_RUN = 0.3  # mask covering more than this share of a box side: the box cut the object
CONFIDENT_IOU = 0.91  # a first click's first candidate is kept alone from this predicted IoU on ...
CONFIDENT_BORDER_RUN = 0.05  # ... when its mask covers at most this share of any box side
ADD_REGION_TOLERANCE = 10.0  # region hint of a positive corrective click: what it adds
REMOVE_REGION_TOLERANCE = 20.0  # ... of a negative one: what it removes
MAX_REMOVED_SHARE = 0.5  # a negative click never removes more than this share of the mask
PROPOSAL_AGREEMENT = 0.5  # weight of a candidate's IoU with the click-trained proposer's mask
LEAK_AGREEMENT = 0.1  # a first click's mask with at most this IoU with the proposer's mask, ...
LEAK_RATIO = 2.0  # ... more than this many times its area, ...
LEAK_DEPTH = 0.5  # ... and the click nearer its edge than this share of its deepest point: a leak


# -- boxes (row0, col0, row1, col1) in slice pixels ------------------------------------------
def _bbox(mask: np.ndarray):
    box = mask_box(mask)
    return None if box is None else tuple(float(v) for v in box)


def _bbox_share(boxes, shape) -> float:
    """The share of the slice that the boxes' common bounding box covers."""
    r0, c0 = max(0.0, min(b[0] for b in boxes)), max(0.0, min(b[1] for b in boxes))
    r1, c1 = min(shape[0], max(b[2] for b in boxes)), min(shape[1], max(b[3] for b in boxes))
    return max(0.0, r1 - r0) * max(0.0, c1 - c0) / (shape[0] * shape[1])


def _scaled(box, factor: float, pad: float = BOX_PAD_PX):
    r0, c0, r1, c1 = box
    cr, cc = (r0 + r1) / 2, (c0 + c1) / 2
    hr, hc = (r1 - r0 + 1) * factor / 2 + pad, (c1 - c0 + 1) * factor / 2 + pad
    return (cr - hr, cc - hc, cr + hr, cc + hc)


def _clip(box, shape):
    r0, c0, r1, c1 = box
    return (max(0.0, r0), max(0.0, c0), min(shape[0] - 1.0, r1), min(shape[1] - 1.0, c1))


def _inside(box, point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _take_in(box, point, margin: float = CLICK_MARGIN_PX):
    """Widen ``box`` so that ``point`` lies at least ``margin`` inside it."""
    r, c = point
    return (min(box[0], r - margin), min(box[1], c - margin), max(box[2], r + margin), max(box[3], c + margin))


def _cuts(box, point, positives, margin: float = CLICK_MARGIN_PX):
    """The boxes left by cutting one side of ``box`` to put ``point`` outside (keeping the
    positive clicks inside), largest first."""
    r, c = point
    r0, c0, r1, c1 = box
    out = []
    for cut in ((r + margin, c0, r1, c1), (r0, c0, r - margin, c1), (r0, c + margin, r1, c1), (r0, c0, r1, c - margin)):
        if cut[0] < cut[2] and cut[1] < cut[3] and all(_inside(cut, p) for p in positives):
            out.append(cut)
    return sorted(out, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def fit_to_clicks(box, positives, negatives, shape):
    """Make ``box`` hold every positive click and, where one side can be cut without losing a
    positive click, leave out each negative click."""
    for p in positives:
        box = _take_in(box, p)
    for n in negatives:
        if _inside(box, n):
            cuts = _cuts(box, n, positives)
            if cuts:
                box = cuts[0]
    return _clip(box, shape)


# -- candidates --------------------------------------------------------------------------------
def candidate_boxes(hints: RegionHints, positives, negatives, previous, spacing_rc) -> list[tuple]:
    """Candidate boxes for the clicks (see the module docstring)."""
    shape = hints.shape
    seed = positives[0]
    boxes = []
    if previous is None or not previous.any():
        for tolerance, factor in HINTS:
            boxes.append(_scaled(_bbox(hints(seed, tolerance)), factor))
        for side in CONTEXT_SQUARES_MM:
            hr, hc = side / spacing_rc[0] / 2, side / spacing_rc[1] / 2
            boxes.append((seed[0] - hr, seed[1] - hc, seed[0] + hr, seed[1] + hc))
    else:
        base = _bbox(previous)
        missed = [p for p in positives if not previous[p]]
        extra = [n for n in negatives if previous[n]]
        boxes.append(base)
        if missed:
            grown = previous.copy()
            for p in missed:
                grown |= hints(p, ADD_REGION_TOLERANCE) & _near(shape, p, previous)
            boxes.append(_bbox(grown))
            boxes.append(_scaled(base, 1.0, 2 * CLICK_MARGIN_PX))
        for n in extra:
            boxes.extend(_cuts(base, n, positives)[:2])
    # the previous mask's box keeps its negatives inside: a click removes a corner there, not a side
    boxes = [fit_to_clicks(b, positives, [] if i == 0 and previous is not None else negatives, shape)
             for i, b in enumerate(boxes)]
    unique = []
    for b in boxes:
        if all(max(abs(x - y) for x, y in zip(b, u)) > 0.5 for u in unique):
            unique.append(b)
    return unique[:MAX_CANDIDATES]


def _near(shape, point, mask) -> np.ndarray:
    """Pixels no farther from ``point`` than twice its distance to ``mask`` (plus a few pixels)."""
    rows, cols = np.nonzero(mask)
    gap = float(np.min(np.hypot(rows - point[0], cols - point[1]))) if rows.size else 0.0
    radius = 2 * gap + CLICK_MARGIN_PX
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - point[0]) ** 2 + (x - point[1]) ** 2 <= radius * radius


# -- scoring -----------------------------------------------------------------------------------
def border_run(mask: np.ndarray, box) -> float:
    """The largest share of a box side (inside the image) that the mask covers."""
    h, w = mask.shape
    r0, c0 = int(round(max(0, box[0]))), int(round(max(0, box[1])))
    r1, c1 = int(round(min(h - 1, box[2]))), int(round(min(w - 1, box[3])))
    sides = []
    if r0 > 0:
        sides.append(mask[r0, c0 : c1 + 1])
    if r1 < h - 1:
        sides.append(mask[r1, c0 : c1 + 1])
    if c0 > 0:
        sides.append(mask[r0 : r1 + 1, c0])
    if c1 < w - 1:
        sides.append(mask[r0 : r1 + 1, c1])
    return max((float(s.mean()) for s in sides if s.size), default=0.0)


def _pairwise_iou(masks: np.ndarray) -> np.ndarray:
    """IoU of every pair of boolean masks (k, H, W); a mask with itself: 1, or 0 when empty."""
    k = len(masks)
    area = masks.reshape(k, -1).sum(axis=1)
    out = np.diag((area > 0).astype(np.float64))
    for i in range(k):
        for j in range(i + 1, k):
            inter = np.count_nonzero(masks[i] & masks[j])
            union = area[i] + area[j] - inter
            out[i, j] = out[j, i] = inter / union if union else 0.0
    return out


def candidate_scores(masks, edited, ious, boxes, positives, negatives, expected=None, proposal=None) -> np.ndarray:
    """Higher is better. ``masks`` as decoded, ``edited`` after ``apply_clicks``; ``expected``: the
    previous mask edited by the clicks (follow-up clicks change a mask locally, so agreeing with it
    counts); ``proposal``: the click-trained proposer's mask (agreeing with it counts, weighted)."""
    k = len(masks)
    pos_in = np.array([np.mean([m[p] for p in positives]) for m in masks])
    neg_in = np.array([np.mean([m[n] for n in negatives]) if negatives else 0.0 for m in edited])
    agree = (_pairwise_iou(edited).sum(axis=1) - 1.0) / (k - 1) if k > 1 else np.zeros(k)
    runs = np.array([border_run(m, b) > BORDER_RUN for m, b in zip(masks, boxes)], np.float32)
    score = np.asarray(ious) + 2 * pos_in - neg_in + agree - 2 * runs
    if expected is not None:
        score += _pairwise_iou(np.concatenate([expected[None], edited]))[0, 1:]
    if proposal is not None:
        score += PROPOSAL_AGREEMENT * _pairwise_iou(np.concatenate([proposal[None], edited]))[0, 1:]
    return score


def confident(result: MaskResult, box, positives, negatives) -> bool:
    """A first candidate good enough to skip the others: a high predicted IoU, every positive
    click inside, no negative click inside, and not cut by its box."""
    m = result.mask
    return (result.score >= CONFIDENT_IOU and all(m[p] for p in positives) and not any(m[n] for n in negatives)
            and border_run(m, box) <= CONFIDENT_BORDER_RUN)


def clicked_near_edge(mask: np.ndarray, click) -> bool:
    """The click lies nearer the mask's edge than ``LEAK_DEPTH`` of its deepest point (a user
    clicks the middle of what they want)."""
    if not mask[click]:
        return False
    rows, cols = ndimage.find_objects(mask.astype(np.uint8))[0]  # the mask's extent: a small transform
    depth = inner_distance(mask[rows, cols])
    return bool(depth[click[0] - rows.start, click[1] - cols.start] < LEAK_DEPTH * depth.max())


def outgrows(mask: np.ndarray, proposal: np.ndarray) -> bool:
    """The mask hardly overlaps the proposer's and is much larger than it."""
    return bool(proposal.any() and iou(mask, proposal) <= LEAK_AGREEMENT and mask.sum() > LEAK_RATIO * proposal.sum())


# -- clicks have the last word -----------------------------------------------------------------
def apply_clicks(mask, hints: RegionHints, positives, negatives) -> np.ndarray:
    """Remove what a negative click inside the mask claims; add what a positive click outside claims."""
    mask = mask.copy()
    if negatives and any(mask[n] for n in negatives):
        nearer = _distance_to(mask.shape, negatives) < _distance_to(mask.shape, positives)
        for n in negatives:
            if mask[n]:  # the part of the mask like the clicked spot and nearer to it than to a positive
                local = _near(mask.shape, n, ~mask)
                claimed, _ = ndimage.label(mask & nearer & local & hints(n, REMOVE_REGION_TOLERANCE))
                part = claimed == claimed[n]
                if part.sum() <= MAX_REMOVED_SHARE * mask.sum():
                    mask &= ~part
    for p in positives:
        if not mask[p]:
            region = hints(p, ADD_REGION_TOLERANCE) & _near(mask.shape, p, mask)
            region[p] = True
            if negatives:
                region &= _distance_to(mask.shape, [p]) < _distance_to(mask.shape, negatives)
            mask |= region
    return mask


def keep_promises(mask, previous, positives, negatives, newest_negative: bool) -> np.ndarray:
    """What a correction must do whatever the model says: a negative click only removes (never
    grows the mask it corrects) and leaves its pixel outside; a positive click only adds, near
    itself (within twice its distance from the mask it corrects, plus a margin), and every
    positive click is inside (docs/clicks.md has the validation figures)."""
    mask = mask.copy()
    if previous is not None:
        mask = mask & previous if newest_negative else mask | previous
        if not newest_negative and previous.any() and positives:  # what the newest click adds lies near it
            mask = previous | (mask & _near(mask.shape, positives[-1], previous))
    for n in negatives:
        if mask[n]:  # the part nearer to the click than to any positive one goes, however large
            nearer = _distance_to(mask.shape, [n]) < _distance_to(mask.shape, positives)
            part, _ = ndimage.label(mask & nearer)
            mask &= part != part[n]
    for p in positives:
        mask[p] = True
    return mask


def anchor_point(previous: np.ndarray, negatives) -> tuple[int, int]:
    """Where a mask corrected by negative clicks alone is surely right: deepest inside it and far
    from the clicks (it stands in for a positive click)."""
    depth = inner_distance(previous)
    score = np.minimum(depth, _distance_to(previous.shape, negatives)) if negatives else depth
    r, c = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(r), int(c)


def _distance_to(shape, points) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    return np.min([np.hypot(y - r, x - c) for r, c in points], axis=0)


def _edit_logits(logits: np.ndarray, before: np.ndarray, after: np.ndarray, geom) -> np.ndarray:
    """Low-res logits (1, L, L) changed where the clicks edited the mask, so that feeding them back
    reproduces the edited mask."""
    if np.array_equal(before, after):
        return logits
    rows, cols = low_res_pixels(geom, logits.shape[-1])
    added = (after & ~before)[np.ix_(rows, cols)]
    removed = (before & ~after)[np.ix_(rows, cols)]
    out = logits.copy()
    out[0][added] = np.maximum(out[0][added], 4.0)
    out[0][removed] = np.minimum(out[0][removed], -4.0)
    return out


def _box_and_clicks(engine, emb, hints, box, points, labels, frame) -> MaskResult:
    """The box decoded as drawn (widened only to reach a positive click outside it), its mask
    then edited by the clicks in order; re-decoding other boxes did worse on the validation cases
    (docs/clicks.md). When every positive click lies inside the box, nothing is added outside it."""
    positives = [p for p, lab in zip(points, labels) if lab == POSITIVE]
    box = drawn = normalized_box(box)
    for p in positives:
        if not _inside(box, p):
            box = _take_in(box, p)
    box_prompt = Prompt(box=_clip(box, hints.shape))  # decoded as a plain box is (never over a token window)
    boxed = mask_for_prompt(engine, emb, frame(box_prompt) if frame else box_prompt)
    mask = boxed.mask
    for k in range(len(points)):  # each click corrects the mask the clicks before it gave
        pos = [p for p, lab in zip(points[: k + 1], labels) if lab == POSITIVE]
        neg = [p for p, lab in zip(points[: k + 1], labels) if lab == NEGATIVE]
        if all(mask[p] for p in pos) and not any(mask[n] for n in neg):
            continue
        pos = pos or [anchor_point(mask, neg)]
        mask = keep_promises(apply_clicks(boxed.mask, hints, pos, neg), mask, pos, neg, labels[k] == NEGATIVE)
    if box == drawn:  # every positive click inside the box: what they add stays inside it too
        mask = boxed.mask & mask | _box_region(drawn, mask.shape) & mask
    return MaskResult(mask, boxed.score, _edit_logits(boxed.low_res_logits, boxed.mask, mask, emb.geometry))


def _box_region(box, shape) -> np.ndarray:
    """The pixels a box (row0, col0, row1, col1) covers, its border included."""
    r0, c0, r1, c1 = box
    region = np.zeros(shape, bool)
    region[max(0, int(np.floor(r0))): int(np.ceil(r1)) + 1, max(0, int(np.floor(c0))): int(np.ceil(c1)) + 1] = True
    return region


def _proposal(proposer: SamEngine, emb: SliceEmbedding, prompt: Prompt, frame) -> MaskResult:
    """The click-trained proposer's mask for the clicks alone, on the same embedding, decoded over
    all image tokens (over the candidates' window only, it lost 0.016 of mean validation Dice)."""
    clicks = Prompt(points=prompt.points, labels=prompt.labels)
    return mask_for_prompt(proposer, emb, frame(clicks) if frame else clicks)


# -- entry point -------------------------------------------------------------------------------
def mask_for_clicks(engine: SamEngine, emb: SliceEmbedding, display: np.ndarray, prompt: Prompt,
                  spacing_rc: tuple[float, float] = (1.0, 1.0), frame=None) -> MaskResult:
    """Clicks (and optionally a box, or the previous low-res logits) on one slice -> mask.

    With a box, the box's mask is edited by the clicks (``_box_and_clicks``); with logits, the
    clicks correct the mask the logits give. A correction keeps its promises (``keep_promises``).

    ``display`` is the slice as 0..255 display values (the model's input before preprocessing);
    ``spacing_rc`` its pixel size in mm (row, col) for the context boxes; ``frame`` an optional
    Prompt -> Prompt map applied to each candidate box before the model frame (a resampled plane's).
    """
    import torch

    display = np.asarray(display, np.float32)
    if display.ndim == 3:
        display = display.mean(axis=-1)
    shape = display.shape
    if display.shape != tuple(emb.geometry.original):
        raise ValueError(f"display slice {display.shape} does not match the embedding's slice {emb.geometry.original}")
    points = [(int(round(r)), int(round(c))) for r, c in prompt.points]
    for r, c in points:
        if not (0 <= r < shape[0] and 0 <= c < shape[1]):
            raise ValueError(f"click ({r}, {c}) lies outside the slice of shape {shape}")
    positives = [p for p, lab in zip(points, prompt.labels) if int(lab) == POSITIVE]
    negatives = [p for p, lab in zip(points, prompt.labels) if int(lab) == NEGATIVE]
    hints = RegionHints(display)
    if prompt.box is not None:
        return _box_and_clicks(engine, emb, hints, prompt.box, points, [int(v) for v in prompt.labels], frame)
    previous = None
    if prompt.mask_logits is not None:
        logits = torch.as_tensor(np.asarray(prompt.mask_logits, np.float32)).reshape(1, 1, *np.shape(prompt.mask_logits)[-2:])
        with torch.inference_mode():
            previous = (engine.upscale(logits.to(engine.device), emb.geometry)[0, 0] > 0).cpu().numpy()
    first_click = previous is None or not previous.any()
    if not positives:
        if first_click:  # only negative clicks: nothing is asked for
            empty = np.full((1, 256, 256), -20.0, np.float32)
            return MaskResult(np.zeros(shape, bool), 0.0, empty)
        positives = [anchor_point(previous, negatives)]
    boxes = candidate_boxes(hints, positives, negatives, previous, spacing_rc)
    first_alone = first_click and _bbox_share(boxes, shape) > ONE_CALL_SHARE
    decoded = masks_for_boxes(engine, emb, boxes[:1] if first_alone else boxes, frame)
    proposal = None
    if first_click and confident(decoded[0], boxes[0], positives, negatives):
        decoded, boxes = decoded[:1], boxes[:1]
    else:
        if first_alone:
            decoded += masks_for_boxes(engine, emb, boxes[1:], frame)
        if first_click and engine.click_proposer is not None:
            proposal = _proposal(engine.click_proposer, emb, prompt, frame)
            if proposal.mask.any():
                decoded.append(proposal)
                boxes.append(_scaled(_bbox(proposal.mask), 1.1))
    masks = np.stack([r.mask for r in decoded])
    ious = np.array([r.score for r in decoded])
    edited = np.stack([apply_clicks(m, hints, positives, negatives) for m in masks])
    expected = None if first_click else apply_clicks(previous, hints, positives, negatives)
    best = int(np.argmax(candidate_scores(masks, edited, ious, boxes, positives, negatives, expected,
                                          proposal.mask if proposal is not None and proposal.mask.any() else None)))
    chosen, mask = decoded[best], edited[best]
    if first_click and engine.click_proposer is not None and clicked_near_edge(mask, positives[0]):
        if proposal is None:  # a confident first candidate, checked for a leak
            proposal = _proposal(engine.click_proposer, emb, prompt, frame)
        if outgrows(mask, proposal.mask):  # it leaked out of the clicked object
            chosen, mask = proposal, apply_clicks(proposal.mask, hints, positives, negatives)
    if not first_click:
        newest_negative = bool(prompt.labels) and int(prompt.labels[-1]) == NEGATIVE
        mask = keep_promises(mask, previous, positives, negatives, newest_negative)
    logits = _edit_logits(chosen.low_res_logits, chosen.mask, mask, emb.geometry)
    return MaskResult(mask, float(chosen.score), logits)
