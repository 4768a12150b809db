"""The interactive protocol of the CVPR 2025 challenge "Foundation Models for Interactive 3D
Biomedical Image Segmentation" (as nnInteractive and others report it), for one label:

0. A first prompt on the object's middle slice (the tight box of its ground truth there, or a
   click at its interior point farthest from the boundary), then propagation through the volume:
   within the object's slice range for a box (the challenge's box is a 3D box), to where the
   object ends for a click.
1. N corrective clicks. Each goes to the centre (the maximum of the distance transform, in mm)
   of the largest 3D connected error component: positive for a missed region, negative for an
   extra one, on that component's slice. The clicked slice is decoded again with all its clicks
   (on the first slice also its box; elsewhere the current mask's logits are fed back; on a slice
   without a mask the neighbour's mask bounds a fresh one, ``annotate.neighbour_check``), and the
   correction is propagated from it both ways (``annotate.propagate.repropagate``: until it is
   absorbed, or up to the next slice that has clicks of its own).

Dice and NSD (2 mm) over the whole volume are measured after step 0 and after every click;
their AUC is the trapezoid over the steps (unit step: N clicks give at most N).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import mask_box
from napari_sam_mis.annotate.masks import MaskResult, logits_for_mask
from napari_sam_mis.annotate.neighbour_check import checked_by_neighbour, neighbour_mask
from napari_sam_mis.annotate.prompts import NEGATIVE, POSITIVE, Prompt
from napari_sam_mis.annotate.propagate import repropagate
from napari_sam_mis.evaluation.metrics import NSD_TOLERANCE_MM, dice, surface_dice
from napari_sam_mis.evaluation.protocol import labels_to_evaluate, middle_slice
from napari_sam_mis.evaluation.simulate import farthest_interior_point

FIRST_PROMPTS = ("box", "click")
DEFAULT_CLICKS = 5


def error_click(pred: np.ndarray, gt: np.ndarray, spacing) -> tuple[int, tuple[int, int], int] | None:
    """(z, (row, col), label) at the centre of the largest 3D connected error component, or None."""
    best = None
    for region, label in ((gt & ~pred, POSITIVE), (pred & ~gt, NEGATIVE)):
        lab, n = ndimage.label(region)
        if not n:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        i = int(np.argmax(sizes))
        if best is None or sizes[i] > best[0]:
            best = (int(sizes[i]), lab, i + 1, label)
    if best is None:
        return None
    _, lab, index, label = best
    box = ndimage.find_objects((lab == index).astype(np.int8))[0]
    part = np.pad(lab[box] == index, 1)
    depth = ndimage.distance_transform_edt(part, sampling=spacing)
    z, r, c = (int(v) - 1 + s.start for v, s in zip(np.unravel_index(int(np.argmax(depth)), depth.shape), box))
    return z, (r, c), label


@dataclass
class _Run:
    """Masks and logits per slice, the clicks given per slice and the slices prompted by hand."""

    shape: tuple
    results: dict = field(default_factory=dict)  # z -> MaskResult
    clicks: dict = field(default_factory=dict)  # z -> ([(row, col)], [label])
    anchors: set = field(default_factory=set)

    def masks(self) -> dict:
        return {z: r.mask for z, r in self.results.items()}

    def volume(self) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        for z, r in self.results.items():
            out[z] = r.mask
        return out


def _set_and_propagate(session, run: _Run, z: int, result: MaskResult, low: int | None, high: int | None) -> None:
    masks = run.masks()
    run.results[z] = result
    run.anchors.add(z)
    changes, _ = repropagate(session, z, result, masks, run.anchors, low, high)
    for k, r in changes.items():
        if r is None:
            run.results.pop(k, None)
        else:
            run.results[k] = MaskResult(r.mask, r.score, r.low_res_logits)


def _logits_to_correct(session, run: _Run, z: int) -> np.ndarray | None:
    """Logits of the mask a click on slice z corrects (None where the slice has none). A click on
    a slice the propagation did not reach starts afresh: starting from the mask propagated from a
    neighbour instead did worse on the validation cases (docs/evaluation.md)."""
    current = run.results.get(z)
    if current is None or not current.mask.any():
        return None
    if current.low_res_logits is not None:
        return current.low_res_logits
    return logits_for_mask(current.mask, session.embedding(z).geometry)


def interactive_label(session, gt: np.ndarray, first: str = "box", clicks: int = DEFAULT_CLICKS,
                      tolerance_mm: float = NSD_TOLERANCE_MM) -> dict:
    """The protocol for one label's ground truth ``gt`` (z, y, x) bool on the session's volume."""
    if first not in FIRST_PROMPTS:
        raise ValueError(f"unknown first prompt {first!r}; choose one of {FIRST_PROMPTS}")
    gt = np.asarray(gt, bool)
    spacing = session.volume.spacing
    zs = np.flatnonzero(gt.reshape(gt.shape[0], -1).any(axis=1))
    z0 = middle_slice(zs)
    low, high = (int(zs.min()), int(zs.max())) if first == "box" else (None, None)
    box0 = mask_box(gt[z0]) if first == "box" else None
    run = _Run(gt.shape)
    if first == "box":
        start = session.predict(z0, Prompt(box=box0))
        run.clicks[z0] = ([], [])
    else:
        point = farthest_interior_point(gt[z0])
        start = session.predict(z0, Prompt(points=[point], labels=[POSITIVE]))
        run.clicks[z0] = ([point], [POSITIVE])
    _set_and_propagate(session, run, z0, start, low, high)
    pred = run.volume()
    dices, nsds, placed = [dice(pred, gt)], [surface_dice(pred, gt, spacing, tolerance_mm)], []
    for _ in range(clicks):
        click = error_click(pred, gt, spacing)
        if click is None:  # perfect: the remaining steps keep the score
            dices.append(dices[-1])
            nsds.append(nsds[-1])
            continue
        z, point, label = click
        placed.append([z, int(point[0]), int(point[1]), int(label)])
        points, labels = run.clicks.setdefault(z, ([], []))
        points.append(point)
        labels.append(label)
        logits = None if z == z0 and box0 is not None else _logits_to_correct(session, run, z)
        prompt = Prompt(points=list(points), labels=list(labels), box=box0 if z == z0 else None, mask_logits=logits)
        result = session.predict(z, prompt)
        result = checked_by_neighbour(session, z, prompt, result, neighbour_mask(run.masks(), z))
        _set_and_propagate(session, run, z, result, low, high)
        pred = run.volume()
        dices.append(dice(pred, gt))
        nsds.append(surface_dice(pred, gt, spacing, tolerance_mm))
    return {"dice_per_step": dices, "nsd_per_step": nsds, "final_dice": dices[-1], "final_nsd": nsds[-1],
            "dice_auc": float(np.trapezoid(dices)), "nsd_auc": float(np.trapezoid(nsds)), "clicks": placed}


def evaluate_interactive(session, labels: np.ndarray, first: str = "box", clicks: int = DEFAULT_CLICKS,
                         names: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """The protocol for every label; the steps' Dice and NSD averaged over labels, in the CLI's JSON shape."""
    t0 = time.perf_counter()
    per_label = {}
    for value, key, gt in labels_to_evaluate(session, labels, names):
        res = per_label[key] = interactive_label(session, gt, first, clicks)
        if progress:
            progress(f"label {value}: Dice per step " + " ".join(f"{d:.3f}" for d in res["dice_per_step"]))
    steps = {k: np.mean([r[k] for r in per_label.values()], axis=0).tolist() for k in ("dice_per_step", "nsd_per_step")}
    return {
        "protocol": "interactive",
        "first": first,
        "clicks": clicks,
        **steps,
        "final_dice": steps["dice_per_step"][-1],
        "final_nsd": steps["nsd_per_step"][-1],
        "dice_auc": float(np.trapezoid(steps["dice_per_step"])),
        "nsd_auc": float(np.trapezoid(steps["nsd_per_step"])),
        "per_label": per_label,
        "model": session.engine.name,
        "seconds": round(time.perf_counter() - t0, 3),
    }
