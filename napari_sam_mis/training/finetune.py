"""Click training for LiteMedSAM by self-distillation: the image encoder stays frozen, the prompt
encoder and mask decoder learn to turn clicks into the masks the model draws from boxes.

1. ``read_sources``: labelled images (NIfTI/DICOM + labels, CVPR24 npz, PNG + masks) -> objects.
2. ``build_train_set``: every labelled slice is windowed as the annotation session shows it
   (``AnnotationSession.display_slice``), optionally mirrored, encoded once by the frozen encoder;
   every connected piece of every label becomes one object with a target = blend of its ground
   truth and the frozen model's own mask for the object's box (when the two agree).
3. ``train``: interactive-style steps: each batch gets one prompt scenario (one click, a few
   positive/negative clicks, or a box), then 0-2 corrective clicks placed in the biggest error of
   the current prediction, optionally with the previous logits as mask prompt. Loss = BCE + Dice
   on the 256x256 low-res logits (minimum over the three masks for a lone click) + MSE of the
   predicted IoU. Checkpoints hold optimizer and RNG state, so ``resume`` continues exactly.

Output folder: ``litemedsam_clicks.pt`` (fp16 prompt encoder + mask decoder, see
``model/decoder_weights.py``), ``recipe.json``, ``checkpoint.pt`` and ``train_set_cache.npz``.
"""
from __future__ import annotations

from pathlib import Path

from napari_sam_mis.errors import InputError
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.training.loop import train
from napari_sam_mis.training.recipe import BASE_MODEL, ProgressCallback, Recipe, report
from napari_sam_mis.training.sources import read_sources
from napari_sam_mis.training.train_set import build_train_set

CACHE_NAME = "train_set_cache.npz"


def finetune(data, out_dir, recipe: Recipe | None = None, resume: bool = False, device: str = "cpu",
             progress: ProgressCallback | None = None) -> dict:
    """Read ``data`` items, build (or reuse) the encoded training set in ``out_dir``, train."""

    recipe = recipe or Recipe()
    recipe.check()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; the output must be a folder (weights, recipe.json, checkpoint.pt)")
    out.mkdir(parents=True, exist_ok=True)
    sources = read_sources(data)
    report(progress, "read", len(sources), len(sources), f"{len(sources)} labelled images")
    engine = SamEngine.load(BASE_MODEL, device=device)
    train_set = build_train_set(sources, engine, recipe, out / CACHE_NAME, progress)
    report(progress, "read", len(train_set), len(train_set),
            f"{len(train_set)} objects on {len(train_set.features)} slices")
    return train(train_set, engine, recipe, out, resume, progress)
