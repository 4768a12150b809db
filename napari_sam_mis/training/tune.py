"""Tuning the decoder on a user's own labels, with an honest check: the labelled slices of each
image are split in two contiguous parts along the slice axis; ``finetune`` click-trains on the
first and the Dice of a box and of one click is measured on the held-back rest, with the start
model before and the tuned model after. ``tune.json`` in the output folder keeps the split and
both figures; a stopped run resumes from its checkpoint."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.errors import SamMisError
from napari_sam_mis.evaluation.protocol import evaluate
from napari_sam_mis.io.atomic import atomic_path
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.registry import REGISTRY, tuned_models_dir
from napari_sam_mis.training.finetune import finetune
from napari_sam_mis.training.recipe import ProgressCallback, Recipe, report
from napari_sam_mis.training.sources import LabelledImage, read_sources

TUNE_NAME = "tune.json"
PROMPTS = ("box", "point")  # what the held-back slices are segmented with
TUNED_MODEL = "litemedsam_clicks"  # a tuned folder is loaded as this model's --checkpoint


def tuned_model_folder(name: str) -> Path:
    """The folder of a new tuned model ``name`` in the tuned-models folder (offered as a model)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise SamMisError(f"tuned model name {name!r}: use letters, digits, '.', '_' or '-'")
    if name in REGISTRY:
        raise SamMisError(f"tuned model name {name!r} is a built-in model's; choose another")
    return tuned_models_dir() / name


def held_back_slices(labels: np.ndarray, holdout: float) -> np.ndarray:
    """The labelled slices held back: the last ``holdout`` share of them along the slice axis."""
    zs = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    n_held = int(round(holdout * len(zs)))
    if n_held == 0 or n_held == len(zs):
        raise SamMisError(f"{len(zs)} labelled slices cannot be split to hold back {holdout:.0%} of them; "
                          "label more slices or change the share held back")
    return zs[len(zs) - n_held:]


def split_held_back(image: LabelledImage, holdout: float) -> tuple[LabelledImage, np.ndarray, list[int]]:
    """(the image with only its training slices labelled, held-back labels, held-back slices)."""
    if image.labels is None or image.masks:
        raise SamMisError(f"{image.name}: tuning with held-back slices needs a label volume")
    held = held_back_slices(image.labels, holdout)
    train_labels, held_labels = image.labels.copy(), np.zeros_like(image.labels)
    train_labels[held] = 0
    held_labels[held] = image.labels[held]
    return replace(image, labels=train_labels), held_labels, [int(z) for z in held]


def held_back_dice(engine, images, held_labels) -> dict[str, float]:
    """Mean over images and labels of the held-back slices' Dice, per prompt kind."""
    out = {}
    for kind in PROMPTS:
        per_label = []
        for image, labels in zip(images, held_labels):
            per_label += evaluate(AnnotationSession(image.volume, engine), labels, kind)["per_label"].values()
        out[kind] = round(float(np.mean(per_label)), 4)
    return out


def tune(data, out_dir, recipe: Recipe | None = None, holdout: float = 0.5, resume: bool = False,
         device: str = "cpu", progress: ProgressCallback | None = None) -> dict:
    """Click-train on the first part of each image's labelled slices, measure on the rest.

    ``data``: ``LabelledImage`` items or ``finetune``'s --data items. Returns ``finetune``'s summary
    with ``held_back`` (slices per image), ``before`` and ``after`` ({prompt: Dice}); after is
    missing when the run was stopped (``stopped_at``)."""
    recipe = recipe or Recipe()
    recipe.check()
    if not 0.0 < holdout < 1.0:
        raise SamMisError(f"--hold-out must lie between 0 and 1, got {holdout}")
    out = Path(out_dir)
    parts = [split_held_back(image, holdout) for image in read_sources(data)]
    train_images, held_labels = [p[0] for p in parts], [p[1] for p in parts]
    split = {image.name: held for image, (_, _, held) in zip(train_images, parts)}
    record = read_record(out / TUNE_NAME) if resume else {}
    if record.get("held_back") != split or record.get("start_from") != recipe.start_from or "before" not in record:
        report(progress, "evaluate", 0, 2, f"Dice of {recipe.start_from} on the held-back slices")
        before_engine = SamEngine.load(recipe.start_from, device=device)
        record = {"start_from": recipe.start_from, "held_back": split,
                  "before": held_back_dice(before_engine, train_images, held_labels)}
        _write_record(out / TUNE_NAME, record)
    summary = finetune(train_images, out, recipe, resume=resume, device=device, progress=progress)
    if "stopped_at" in summary:
        return {**summary, **record}
    report(progress, "evaluate", 1, 2, "Dice of the tuned model on the held-back slices")
    tuned = SamEngine.load(TUNED_MODEL, checkpoint=out, device=device)
    record["after"] = held_back_dice(tuned, train_images, held_labels)
    _write_record(out / TUNE_NAME, record)
    report(progress, "evaluate", 2, 2, "held-back Dice " + ", ".join(
        f"{k} {record['before'][k]:.3f} -> {record['after'][k]:.3f}" for k in PROMPTS))
    return {**summary, **record}


def read_record(path: Path) -> dict:
    """A run's tune.json (empty when there is none or it is damaged: then it is measured again)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_record(path: Path, record: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
