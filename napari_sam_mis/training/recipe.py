"""Click training's recipe (everything that decides the trained weights, stored with them) and its progress reports."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from napari_sam_mis.errors import SamMisError
from napari_sam_mis.model.registry import get_spec

BASE_MODEL = "litemedsam"
VARIANTS = ("zoom_out", "invert")  # altered copies of the training slices (train_set.py)


@dataclass
class Recipe:
    """Everything that decides the trained weights (stored with them)."""

    steps: int = 600
    batch: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: int = 20  # linear warm-up steps, then constant learning rate
    seed: int = 0
    gt_weight: float = 0.5  # target = gt_weight * GT + (1 - gt_weight) * frozen model's box mask ...
    teacher_min_dice: float = 0.8  # ... where that box mask has at least this Dice with GT, else GT alone
    min_area: int = 16  # objects smaller than this (pixels of the 256x256 model frame) are skipped
    flip: bool = False  # also train on left-right mirrored slices (doubles the encoding time)
    slice_stride: int = 1  # use every k-th labelled slice of a volume
    variants: tuple = ()  # also train on these altered copies of every slice (VARIANTS)
    scenario_weights: tuple = (0.4, 0.35, 0.25)  # one click / several clicks / box
    max_corrections: int = 2  # corrective clicks per sample: 0..max_corrections
    iou_weight: float = 1.0
    checkpoint_every: int = 50
    start_from: str = BASE_MODEL  # the LiteMedSAM model whose prompt encoder + decoder training starts from

    def check(self) -> None:
        for name in ("steps", "batch", "checkpoint_every", "slice_stride"):
            if int(getattr(self, name)) < 1:
                raise SamMisError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise SamMisError(f"--lr must be positive, got {self.lr}")
        if not 0.0 <= self.gt_weight <= 1.0:
            raise SamMisError(f"gt_weight must lie in 0..1, got {self.gt_weight}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise SamMisError(f"unknown slice variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
        if not get_spec(self.start_from).family.click_trainable:
            raise SamMisError(f"--start-from: {self.start_from!r} is not a LiteMedSAM model; training starts from one")


@dataclass
class Progress:
    stage: str  # "read", "embed", "teacher", "train", "done", "stopped"
    done: int
    total: int
    message: str = ""
    loss: float | None = None
    dice: float | None = None


ProgressCallback = Callable[[Progress], "bool | None"]  # returning False stops training (after a checkpoint)


def report(progress, stage, done, total, message="", **kw):
    return progress(Progress(stage, done, total, message, **kw)) if progress else None

